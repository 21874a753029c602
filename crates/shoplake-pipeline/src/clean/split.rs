//! Applies the cleaning rules to raw batches: valid rows become typed `clean.events` rows,
//! each with its row key (how exact duplicates are found, see [`super::order`]), and failing
//! rows become `clean.rejects` rows with their reason.

use std::sync::Arc;

use shoplake_lake::arrow::array::{
    Array, ArrayRef, Date32Builder, Decimal128Builder, Int64Builder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder, UInt32Array,
};
use shoplake_lake::arrow::compute::{cast, take};
use shoplake_lake::arrow::error::ArrowError;
use shoplake_lake::tables;

use crate::error::Result;
use crate::texts::Texts;

/// The table a split reads, as its errors name it.
const RAW: &str = "raw.events";
use super::categories::KnownCategories;
use super::rules::{RawFields, RejectReason, RuleOptions, identity, malformed_detail, validate};

/// What the rules of a run are: their settings, and the categories that repair ids a
/// spreadsheet mangled (none when no raw row of the run can hold one).
#[derive(Debug, Clone, Default)]
pub struct CleanRules {
    /// The rules' settings.
    pub options: RuleOptions,
    /// Known categories, to repair category ids in scientific notation.
    pub known: Option<Arc<KnownCategories>>,
}

/// The valid and rejected rows of one raw batch.
#[derive(Debug)]
pub struct Split {
    /// Typed rows in the `clean.events` schema (exact duplicates among them).
    pub valid: RecordBatch,
    /// The row key of each valid row ([`super::rules::identity`]).
    pub keys: Vec<u128>,
    /// Rows in the `clean.rejects` schema.
    pub rejects: RecordBatch,
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef, ArrowError> {
    batch
        .column_by_name(name)
        .ok_or_else(|| ArrowError::SchemaError(format!("raw batch has no column {name}")))
}

/// Splits a batch of `raw.events` rows.
///
/// Rows are equal when their nine source fields have equal typed values (see
/// [`super::rules::identity`]), which is also what makes their event ids equal; the 128-bit
/// key makes a false match (about 10^-20 among 2^64 rows) the only way two different rows
/// could be taken for copies (the day's sort also asks for equal type, time and id; the
/// fallback's key set does not).
pub fn split(raw: &RecordBatch, rules: &CleanRules) -> Result<Split> {
    let fields: Vec<Texts> = tables::SOURCE_COLUMNS
        .iter()
        .map(|n| Texts::of(raw, RAW, n))
        .collect::<Result<_>>()?;
    let error = Texts::of(raw, RAW, "_error")?;
    let rows = raw.num_rows();

    let clean_def = tables::clean_events();
    let mut event_id = Int64Builder::with_capacity(rows);
    let mut event_time = TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC");
    let mut event_type = StringBuilder::with_capacity(rows, rows * 5);
    let mut product_id = Int64Builder::with_capacity(rows);
    let mut category_id = Int64Builder::with_capacity(rows);
    let mut category_code = StringBuilder::with_capacity(rows, rows * 16);
    let mut brand = StringBuilder::with_capacity(rows, rows * 8);
    let mut price = Decimal128Builder::with_capacity(rows).with_precision_and_scale(10, 2)?;
    let mut user_id = Int64Builder::with_capacity(rows);
    let mut session = StringBuilder::with_capacity(rows, rows * 36);
    let mut event_date = Date32Builder::with_capacity(rows);
    let mut data_issue = StringBuilder::new();

    let mut keys = Vec::with_capacity(rows);
    let mut reject_rows: Vec<u32> = Vec::new();
    let mut reasons = StringBuilder::new();
    let mut details = StringBuilder::new();

    for i in 0..rows {
        if !error.is_null(i) {
            reject_rows.push(i as u32);
            reasons.append_value(RejectReason::MalformedRow.code());
            details.append_value(malformed_detail(error.value(i)));
            continue;
        }
        let get = |c: usize| fields[c].get(i);
        let f = RawFields {
            event_time: get(0),
            event_type: get(1),
            product_id: get(2),
            category_id: get(3),
            category_code: get(4),
            brand: get(5),
            price: get(6),
            user_id: get(7),
            user_session: get(8),
        };
        match validate(&f, &rules.options) {
            Ok(mut e) => {
                match e.category_mangled {
                    None => data_issue.append_null(),
                    Some(printed) => {
                        let fixed = rules
                            .known
                            .as_ref()
                            .and_then(|k| k.repair(e.product_id, e.category_code, &printed));
                        if let Some(id) = fixed {
                            e.category_id = id;
                            data_issue.append_value(tables::CATEGORY_ID_REPAIRED);
                        } else {
                            data_issue.append_value(tables::CATEGORY_ID_UNKNOWN);
                        }
                    }
                }
                let (id, key) = identity(&f, &e);
                keys.push(key);
                event_id.append_value(id);
                event_time.append_value(e.event_time_micros);
                event_type.append_value(e.event_type);
                product_id.append_value(e.product_id);
                category_id.append_value(e.category_id);
                category_code.append_value(e.category_code);
                brand.append_value(e.brand);
                price.append_value(e.price_cents);
                user_id.append_value(e.user_id);
                session.append_value(e.user_session);
                event_date.append_value(e.event_date);
            }
            Err(r) => {
                reject_rows.push(i as u32);
                reasons.append_value(r.reason.code());
                details.append_value(r.detail);
            }
        }
    }

    let valid_columns: Vec<ArrayRef> = vec![
        Arc::new(event_id.finish()),
        Arc::new(event_time.finish()),
        Arc::new(event_type.finish()),
        Arc::new(product_id.finish()),
        Arc::new(category_id.finish()),
        Arc::new(category_code.finish()),
        Arc::new(brand.finish()),
        Arc::new(price.finish()),
        Arc::new(user_id.finish()),
        Arc::new(session.finish()),
        Arc::new(event_date.finish()),
        Arc::new(data_issue.finish()),
    ];
    let valid = RecordBatch::try_new(clean_def.arrow_schema(), valid_columns)?;

    let rejects_def = tables::clean_rejects();
    let indices = UInt32Array::from(reject_rows);
    let mut reject_columns: Vec<ArrayRef> =
        vec![Arc::new(reasons.finish()), Arc::new(details.finish())];
    for field in rejects_def.arrow_schema().fields().iter().skip(2) {
        // Taken first, so that only the rejected rows are cast to the declared type.
        let taken = take(column(raw, field.name())?, &indices, None)?;
        reject_columns.push(if taken.data_type() == field.data_type() {
            taken
        } else {
            cast(&taken, field.data_type())?
        });
    }
    let rejects = RecordBatch::try_new(rejects_def.arrow_schema(), reject_columns)?;
    Ok(Split {
        valid,
        keys,
        rejects,
    })
}
