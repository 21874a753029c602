//! Fixtures for tests of this crate and of the crates above it (feature `testing`): rows of
//! `clean.events` whose every value is derived from a tag, a day of them written as a run
//! writes it, and an oracle of the row accounting computed from an export's text with plain
//! string handling. Not part of the product.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{
    ArrayRef, Date32Array, Decimal128Array, Int64Array, RecordBatch, StringArray, StringViewArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::prelude::SessionContext;
use deltalake::DeltaTable;
use deltalake::kernel::transaction::CommitProperties;

use crate::accounting::Accounting;
use crate::error::Result;
use crate::lake::Lake;
use crate::replace_day::replace_day;
use crate::tables;
use crate::time::{MICROS_PER_DAY, date_to_days};

/// `n` rows of `clean.events` on `date`: event ids `tag * 1000 + i`, every other value derived
/// from the id, string columns as views when `views` (the form a run's batches have).
pub fn clean_rows(date: NaiveDate, tag: i64, n: i64, views: bool) -> RecordBatch {
    let def = tables::clean_events();
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for field in def.arrow_schema().fields() {
        let ids = (0..n).map(|i| tag * 1000 + i);
        let (column, data_type): (ArrayRef, DataType) = match field.data_type() {
            DataType::Int64 => (Arc::new(Int64Array::from_iter_values(ids)), DataType::Int64),
            DataType::Utf8 => {
                let texts = ids.map(|i| format!("{}-{i}", field.name()));
                if views {
                    (
                        Arc::new(StringViewArray::from_iter_values(texts)),
                        DataType::Utf8View,
                    )
                } else {
                    (
                        Arc::new(StringArray::from_iter_values(texts)),
                        DataType::Utf8,
                    )
                }
            }
            DataType::Timestamp(_, _) => (
                Arc::new(
                    TimestampMicrosecondArray::from_iter_values(
                        ids.map(|i| i64::from(date_to_days(date)) * MICROS_PER_DAY + i),
                    )
                    .with_timezone("UTC"),
                ),
                field.data_type().clone(),
            ),
            DataType::Decimal128(p, s) => (
                Arc::new(
                    Decimal128Array::from_iter_values(ids.map(|i| i128::from(i) + 1))
                        .with_precision_and_scale(*p, *s)
                        .expect("the declared precision holds the fixture's prices"),
                ),
                field.data_type().clone(),
            ),
            DataType::Date32 => (
                Arc::new(Date32Array::from_iter_values(
                    (0..n).map(|_| date_to_days(date)),
                )),
                DataType::Date32,
            ),
            other => panic!("no fixture for {other}"),
        };
        fields.push(Field::new(field.name(), data_type, field.is_nullable()));
        columns.push(column);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .expect("the fixture's columns match their fields")
}

/// Replaces `date` of `clean.events` with `batches`, with default commit properties.
pub async fn replace_clean_day(
    lake: &Lake,
    table: DeltaTable,
    date: NaiveDate,
    batches: Vec<RecordBatch>,
) -> Result<DeltaTable> {
    let def = tables::clean_events();
    replace_day(
        lake,
        table,
        &def,
        date,
        batches,
        CommitProperties::default(),
    )
    .await
}

/// Whether the cleaning rules would refuse an export line, decided with plain string handling
/// (no code of the pipeline): nine fields, a `YYYY-MM-DD HH:MM:SS UTC` time, a known event
/// type, integer product, category and user ids, a positive price with at most two
/// decimals, a session. For lines without quoted fields, as the generator writes them.
pub fn refused(line: &str) -> bool {
    let f: Vec<&str> = line.split(',').collect();
    if f.len() != 9 {
        return true;
    }
    let time = f[0].as_bytes();
    let digits = |range: std::ops::Range<usize>| range.clone().all(|i| time[i].is_ascii_digit());
    let time_ok = time.len() == 23
        && digits(0..4)
        && digits(5..7)
        && digits(8..10)
        && digits(11..13)
        && digits(14..16)
        && digits(17..19)
        && f[0].ends_with(" UTC");
    let kind_ok = ["view", "cart", "remove_from_cart", "purchase"].contains(&f[1]);
    let ints_ok = [f[2], f[3], f[7]].iter().all(|v| v.parse::<i64>().is_ok());
    let price_ok = f[6].parse::<f64>().is_ok_and(|p| p > 0.0)
        && f[6]
            .split_once('.')
            .is_none_or(|(_, cents)| cents.len() <= 2);
    !(time_ok && kind_ok && ints_ok && price_ok && !f[8].is_empty())
}

/// Per day (the date a line starts with), where an export's data lines go: refused lines are
/// rejected, a line equal to one kept before is a duplicate, the others are clean.
pub fn expected_accounting<'a>(
    lines: impl IntoIterator<Item = &'a str>,
) -> BTreeMap<String, Accounting> {
    let mut days: BTreeMap<String, (Accounting, HashSet<&'a str>)> = BTreeMap::new();
    for line in lines {
        let day = line.get(..10).unwrap_or(line).to_string();
        let (rows, seen) = days.entry(day).or_default();
        rows.raw += 1;
        if refused(line) {
            rows.rejected += 1;
        } else if seen.insert(line) {
            rows.clean += 1;
        } else {
            rows.duplicates += 1;
        }
    }
    days.into_iter().map(|(d, (a, _))| (d, a)).collect()
}

/// A plain DataFusion session (none of shoplake's rules or providers) in which every built
/// lake table is the union of the Parquet files its Delta log lists now, with `event_date`
/// taken from each file's partition directory: an independent way to read the lake.
pub async fn plain_session(lake: &Lake) -> SessionContext {
    let ctx = SessionContext::new();
    for layer in ["raw", "clean", "model", "meta", "quality"] {
        ctx.sql(&format!("CREATE SCHEMA {layer}"))
            .await
            .expect("the lake reads");
    }
    for def in tables::all() {
        let Ok(table) = DeltaTable::try_from_url(lake.table_url(&def)).await else {
            continue;
        };
        if table.version().is_none() {
            continue;
        }
        let mut frame: Option<datafusion::prelude::DataFrame> = None;
        for uri in table.get_file_uris().expect("the lake reads") {
            let mut part = ctx
                .read_parquet(
                    uri.as_str(),
                    datafusion::prelude::ParquetReadOptions::default(),
                )
                .await
                .expect("the lake reads");
            if def.partition_by == Some("event_date") {
                let date = uri
                    .split('/')
                    .find_map(|segment| segment.strip_prefix("event_date="))
                    .expect("a day file lives under event_date=YYYY-MM-DD/")
                    .to_string();
                let day =
                    datafusion::prelude::cast(datafusion::prelude::lit(date), DataType::Date32);
                part = part.with_column("event_date", day).expect("the lake reads");
            }
            frame = Some(match frame {
                None => part,
                Some(all) => all.union(part).expect("the lake reads"),
            });
        }
        if let Some(frame) = frame {
            ctx.register_table(def.qualified_name().as_str(), frame.into_view())
                .expect("the lake reads");
        }
    }
    ctx
}
