//! Reading the fact table's columns as a scan delivers them, and building the count columns
//! every aggregate dimension ends with: shared by the folds that build dimensions in Rust.

use std::sync::Arc;

use shoplake_lake::arrow::array::{
    Array, ArrayRef, AsArray, Decimal128Array, Int64Array, PrimitiveArray, RecordBatch,
    StringBuilder, TimestampMicrosecondArray,
};
use shoplake_lake::arrow::datatypes::{ArrowPrimitiveType, DataType};
use shoplake_lake::tables::TableDef;

use crate::error::{PipelineError, Result};

/// The table the folds read, as their errors name it.
pub(crate) const FACT: &str = "model.fact_user_events";

/// Event counts per type and revenue (cents), as in the SQL dimensions.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counts {
    pub(crate) events: i64,
    pub(crate) views: i64,
    pub(crate) carts: i64,
    pub(crate) removes: i64,
    pub(crate) purchases: i64,
    pub(crate) revenue_cents: i128,
}

impl Counts {
    pub(crate) fn add(&mut self, event_type: &str, price_cents: i128) -> Result<()> {
        self.events += 1;
        match event_type {
            "view" => self.views += 1,
            "cart" => self.carts += 1,
            "remove_from_cart" => self.removes += 1,
            "purchase" => {
                self.purchases += 1;
                self.revenue_cents += price_cents;
            }
            other => {
                return Err(PipelineError::Contract(format!(
                    "model.fact_user_events holds an unknown event_type {other:?}; \
                     rebuild its days with `shoplake run --from DAY --to DAY`"
                )));
            }
        }
        Ok(())
    }

    /// Adds counts gathered elsewhere (another day, another part of the same key).
    pub(crate) fn merge(&mut self, other: &Counts) {
        self.events += other.events;
        self.views += other.views;
        self.carts += other.carts;
        self.removes += other.removes;
        self.purchases += other.purchases;
        self.revenue_cents += other.revenue_cents;
    }
}

pub(crate) fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef> {
    batch.column_by_name(name).ok_or_else(|| {
        PipelineError::Contract(format!("model.fact_user_events has no column {name}"))
    })
}

pub(crate) fn primitive<'a, T: ArrowPrimitiveType>(
    batch: &'a RecordBatch,
    name: &str,
) -> Result<&'a PrimitiveArray<T>> {
    let array = column(batch, name)?;
    array.as_primitive_opt::<T>().ok_or_else(|| {
        PipelineError::Contract(format!(
            "model.fact_user_events.{name} is {}, not {}",
            array.data_type(),
            T::DATA_TYPE
        ))
    })
}

pub(crate) fn int(values: impl Iterator<Item = i64>) -> ArrayRef {
    Arc::new(Int64Array::from_iter_values(values))
}

pub(crate) fn text<'a>(values: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    let mut builder = StringBuilder::new();
    for v in values {
        builder.append_option(v);
    }
    Arc::new(builder.finish())
}

pub(crate) fn time(values: impl Iterator<Item = i64>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from_iter_values(values).with_timezone("UTC"))
}

/// A decimal column with the precision and scale `def` declares for `name`.
pub(crate) fn price(
    def: &TableDef,
    name: &str,
    values: impl Iterator<Item = i128>,
) -> Result<ArrayRef> {
    let schema = def.arrow_schema();
    let field = schema.field_with_name(name)?;
    let (precision, scale) = match field.data_type() {
        DataType::Decimal128(p, s) => (*p, *s),
        other => {
            return Err(PipelineError::Contract(format!(
                "{}.{name} is {other}, not a decimal",
                def.qualified_name()
            )));
        }
    };
    Ok(Arc::new(
        Decimal128Array::from_iter_values(values).with_precision_and_scale(precision, scale)?,
    ))
}

/// The count columns (events, views, carts, removes, purchases, revenue).
pub(crate) fn counts(
    def: &TableDef,
    values: impl Iterator<Item = Counts> + Clone,
) -> Result<Vec<ArrayRef>> {
    Ok(vec![
        int(values.clone().map(|c| c.events)),
        int(values.clone().map(|c| c.views)),
        int(values.clone().map(|c| c.carts)),
        int(values.clone().map(|c| c.removes)),
        int(values.clone().map(|c| c.purchases)),
        price(def, "revenue", values.map(|c| c.revenue_cents))?,
    ])
}
