//! Row images (PostgreSQL's text form of each column) to the typed Arrow columns of a
//! `raw.cdc_*` table.
//!
//! A value that does not parse as its column's type stops the stream with a message naming
//! the table, column and value: a mis-mapped value is never written.

use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::array::{
    ArrayRef, Date32Builder, Decimal128Builder, Int64Builder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use shoplake_lake::TableDef;
use shoplake_lake::cdc_tables::CHANGE_COLUMNS;
use shoplake_lake::tables::EVENT_DATE;
use shoplake_lake::time::MICROS_PER_DAY;

use crate::error::{OltpError, Result};

/// One column's value in a row image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// PostgreSQL's text output of the value.
    Text(Bytes),
}

/// A row image: (column, value) for the columns the change carries. A column missing from
/// an update's new image is an unchanged TOASTed value (PostgreSQL does not resend it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Image(pub Vec<(Arc<str>, Value)>);

impl Image {
    /// The value of `column`, if the image carries it.
    pub fn get(&self, column: &str) -> Option<&Value> {
        self.0.iter().find(|(n, _)| &**n == column).map(|(_, v)| v)
    }

    /// Fills the columns this image lacks from `old` (an update's image before the change,
    /// complete under REPLICA IDENTITY FULL).
    pub fn complete_from(&mut self, old: &Image) {
        for (name, value) in &old.0 {
            if self.get(name).is_none() {
                self.0.push((name.clone(), value.clone()));
            }
        }
    }
}

/// What a change was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// A row of the initial snapshot.
    Snapshot,
    /// An insert.
    Insert,
    /// An update (the new image).
    Update,
    /// A delete (the image before it).
    Delete,
}

impl Op {
    /// The `_op` value.
    pub fn code(self) -> &'static str {
        match self {
            Op::Snapshot => "snapshot",
            Op::Insert => "insert",
            Op::Update => "update",
            Op::Delete => "delete",
        }
    }
}

/// Where a change sits: its transaction's commit and its order in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeMeta {
    /// What it was.
    pub op: Op,
    /// Commit LSN.
    pub lsn: u64,
    /// Commit time, microseconds since the epoch.
    pub commit_micros: i64,
    /// Transaction id.
    pub xid: u32,
    /// Order within the transaction, from 1.
    pub seq: i64,
}

enum ColumnBuilder {
    Int64(Int64Builder),
    Utf8(StringBuilder),
    Timestamp(TimestampMicrosecondBuilder),
    Decimal(Decimal128Builder),
}

/// Typed rows of one `raw.cdc_*` table being gathered.
pub struct TableRows {
    def: TableDef,
    /// The image columns (the table's own), in storage order.
    image_columns: Vec<&'static str>,
    builders: Vec<ColumnBuilder>,
    op: StringBuilder,
    lsn: Int64Builder,
    commit_time: TimestampMicrosecondBuilder,
    xid: Int64Builder,
    seq: Int64Builder,
    event_date: Option<Date32Builder>,
    /// Column index of event_time, for the day.
    event_time_at: Option<usize>,
    rows: usize,
}

impl TableRows {
    /// An empty set of rows for `def`.
    pub fn new(def: TableDef) -> TableRows {
        let image_columns: Vec<&'static str> = def
            .columns
            .iter()
            .map(|c| c.name)
            .filter(|n| !CHANGE_COLUMNS.contains(n) && *n != EVENT_DATE)
            .collect();
        let builders = image_columns
            .iter()
            .map(|name| {
                let column = def
                    .columns
                    .iter()
                    .find(|c| c.name == *name)
                    .expect("declared");
                match &column.data_type {
                    DataType::Int64 => ColumnBuilder::Int64(Int64Builder::new()),
                    DataType::Timestamp(TimeUnit::Microsecond, _) => {
                        ColumnBuilder::Timestamp(TimestampMicrosecondBuilder::new())
                    }
                    DataType::Decimal128(_, _) => ColumnBuilder::Decimal(Decimal128Builder::new()),
                    _ => ColumnBuilder::Utf8(StringBuilder::new()),
                }
            })
            .collect();
        let partitioned = def.partition_by == Some(EVENT_DATE);
        let event_time_at = image_columns.iter().position(|c| *c == "event_time");
        TableRows {
            image_columns,
            builders,
            op: StringBuilder::new(),
            lsn: Int64Builder::new(),
            commit_time: TimestampMicrosecondBuilder::new(),
            xid: Int64Builder::new(),
            seq: Int64Builder::new(),
            event_date: partitioned.then(Date32Builder::new),
            event_time_at,
            rows: 0,
            def,
        }
    }

    /// The table's declaration.
    pub fn def(&self) -> &TableDef {
        &self.def
    }

    /// The image columns, in storage order.
    pub fn image_columns(&self) -> &[&'static str] {
        &self.image_columns
    }

    /// Rows gathered.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// No rows gathered.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Adds one image. Every column of the image is parsed before anything is appended, so
    /// a value that does not parse leaves the rows as they were.
    pub fn push(&mut self, image: &Image, meta: ChangeMeta) -> Result<()> {
        let table = self.def.qualified_name();
        let mut parsed: Vec<Parsed> = Vec::with_capacity(self.image_columns.len());
        for (i, name) in self.image_columns.iter().enumerate() {
            let text = match image.get(name) {
                None | Some(Value::Null) => None,
                Some(Value::Text(t)) => Some(t),
            };
            let Some(text) = text else {
                parsed.push(Parsed::Null);
                continue;
            };
            let s = std::str::from_utf8(text)
                .map_err(|_| OltpError::Mapping(format!("{table}.{name}: a value is not UTF-8")))?;
            let bad = |what: &str| {
                OltpError::Mapping(format!(
                    "{table}.{name}: '{s}' is not {what}; the stream stops rather than mis-map it"
                ))
            };
            parsed.push(match &self.builders[i] {
                ColumnBuilder::Int64(_) => {
                    Parsed::Int(s.parse::<i64>().map_err(|_| bad("a 64-bit integer"))?)
                }
                ColumnBuilder::Timestamp(_) => {
                    Parsed::Int(parse_timestamptz(s).ok_or_else(|| bad("a timestamp"))?)
                }
                ColumnBuilder::Decimal(_) => Parsed::Cents(
                    shoplake_pipeline::clean::rules::parse_cents(s)
                        .ok_or_else(|| bad("a price with two decimals"))?,
                ),
                ColumnBuilder::Utf8(_) => Parsed::Text,
            });
        }
        for (i, p) in parsed.iter().enumerate() {
            let name = self.image_columns[i];
            match (&mut self.builders[i], p) {
                (ColumnBuilder::Int64(b), Parsed::Int(v)) => b.append_value(*v),
                (ColumnBuilder::Timestamp(b), Parsed::Int(v)) => b.append_value(*v),
                (ColumnBuilder::Decimal(b), Parsed::Cents(c)) => b.append_value(*c),
                (ColumnBuilder::Utf8(b), Parsed::Text) => match image.get(name) {
                    Some(Value::Text(t)) => {
                        b.append_value(std::str::from_utf8(t).unwrap_or_default())
                    }
                    _ => b.append_null(),
                },
                (ColumnBuilder::Int64(b), _) => b.append_null(),
                (ColumnBuilder::Timestamp(b), _) => b.append_null(),
                (ColumnBuilder::Decimal(b), _) => b.append_null(),
                (ColumnBuilder::Utf8(b), _) => b.append_null(),
            }
        }
        self.op.append_value(meta.op.code());
        self.lsn.append_value(meta.lsn as i64);
        self.commit_time.append_value(meta.commit_micros);
        self.xid.append_value(i64::from(meta.xid));
        self.seq.append_value(meta.seq);
        if let Some(days) = self.event_date.as_mut() {
            let at = self.event_time_at.and_then(|i| match parsed[i] {
                Parsed::Int(v) => Some(v),
                _ => None,
            });
            // A change without event_time (a delete under REPLICA IDENTITY DEFAULT) goes to
            // its commit's day.
            let micros = at.unwrap_or(meta.commit_micros);
            days.append_value(micros.div_euclid(MICROS_PER_DAY) as i32);
        }
        self.rows += 1;
        Ok(())
    }

    /// The rows as one batch of the table's schema; the builder is empty again.
    pub fn finish(&mut self) -> Result<RecordBatch> {
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.def.columns.len());
        for b in &mut self.builders {
            columns.push(match b {
                ColumnBuilder::Int64(b) => Arc::new(b.finish()),
                ColumnBuilder::Utf8(b) => Arc::new(b.finish()),
                ColumnBuilder::Timestamp(b) => Arc::new(b.finish().with_timezone("UTC")),
                ColumnBuilder::Decimal(b) => Arc::new(
                    b.finish()
                        .with_precision_and_scale(10, 2)
                        .map_err(|e| OltpError::Mapping(e.to_string()))?,
                ),
            });
        }
        columns.push(Arc::new(self.op.finish()));
        columns.push(Arc::new(self.lsn.finish()));
        columns.push(Arc::new(self.commit_time.finish().with_timezone("UTC")));
        columns.push(Arc::new(self.xid.finish()));
        columns.push(Arc::new(self.seq.finish()));
        if let Some(days) = self.event_date.as_mut() {
            columns.push(Arc::new(days.finish()));
        }
        self.rows = 0;
        RecordBatch::try_new(self.def.arrow_schema(), columns)
            .map_err(|e| OltpError::Mapping(format!("{}: {e}", self.def.qualified_name())))
    }
}

enum Parsed {
    Null,
    Int(i64),
    Cents(i128),
    Text,
}

/// PostgreSQL's text output of a `timestamptz` (`2020-04-01 00:00:03+00`,
/// `2020-04-01 02:00:03.5+02`, `... -03:30`), as microseconds since the epoch (UTC), with
/// `DateStyle` ISO. None for anything else (`infinity`, a BC date, another DateStyle).
pub fn parse_timestamptz(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || (b[10] != b' ' && b[10] != b'T') {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i64> {
        let part = s.get(from..to)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    let mut at = 19;
    let mut micros = 0i64;
    if b.get(at) == Some(&b'.') {
        let start = at + 1;
        let mut end = start;
        while end < b.len() && b[end].is_ascii_digit() {
            end += 1;
        }
        if end == start || end - start > 6 {
            return None;
        }
        let digits = &s[start..end];
        micros = digits.parse::<i64>().ok()? * 10i64.pow(6 - digits.len() as u32);
        at = end;
    }
    // The offset: +HH, +HH:MM or +HH:MM:SS (or none: UTC).
    let mut offset = 0i64;
    if at < b.len() {
        let sign = match b[at] {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let rest = &s[at + 1..];
        let parts: Vec<&str> = rest.split(':').collect();
        if parts.is_empty() || parts.len() > 3 || parts.iter().any(|p| p.len() != 2) {
            return None;
        }
        let mut secs = 0i64;
        for (i, p) in parts.iter().enumerate() {
            if !p.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let v: i64 = p.parse().ok()?;
            secs += v * [3600, 60, 1][i];
        }
        offset = sign * secs;
    }
    let date = chrono::NaiveDate::from_ymd_opt(year as i32, month as u32, day as u32)?;
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = date
        .signed_duration_since(chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?)
        .num_days();
    let local = days * 86_400 + hour * 3600 + minute * 60 + second;
    Some((local - offset) * 1_000_000 + micros)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, AsArray, Decimal128Array};
    use datafusion::arrow::datatypes::{Int64Type, TimestampMicrosecondType};

    #[test]
    fn timestamps_parse_with_their_offsets() {
        let base = 1_585_699_203_000_000; // 2020-04-01 00:00:03 UTC
        assert_eq!(parse_timestamptz("2020-04-01 00:00:03+00"), Some(base));
        assert_eq!(parse_timestamptz("2020-04-01 02:00:03+02"), Some(base));
        assert_eq!(parse_timestamptz("2020-03-31 20:30:03-03:30"), Some(base));
        assert_eq!(
            parse_timestamptz("2020-04-01 00:00:03.25+00"),
            Some(base + 250_000)
        );
        assert_eq!(
            parse_timestamptz("2020-04-01 00:00:03.000001+00"),
            Some(base + 1)
        );
        assert_eq!(parse_timestamptz("2020-04-01 00:00:03"), Some(base));
        for bad in [
            "infinity",
            "2020-04-01",
            "2020-13-01 00:00:03+00",
            "2020-04-01 00:00:03 UTC",
            "2020-04-01 00:00:03.1234567+00",
            "Wed Apr 01 00:00:03 2020 UTC",
        ] {
            assert_eq!(parse_timestamptz(bad), None, "{bad}");
        }
    }

    fn text(s: &str) -> Value {
        Value::Text(Bytes::copy_from_slice(s.as_bytes()))
    }

    fn image(pairs: &[(&str, Option<&str>)]) -> Image {
        Image(
            pairs
                .iter()
                .map(|(n, v)| (Arc::from(*n), v.map_or(Value::Null, text)))
                .collect(),
        )
    }

    #[test]
    fn images_become_typed_rows_and_bad_values_stop() {
        let mut rows = TableRows::new(shoplake_lake::cdc_tables::cdc_events());
        let meta = ChangeMeta {
            op: Op::Insert,
            lsn: 0x1_0000_0010,
            commit_micros: 1_585_699_300_000_000,
            xid: 700,
            seq: 1,
        };
        rows.push(
            &image(&[
                ("event_id", Some("41")),
                ("session_id", Some("2f7b6d5e-0a8b-4c3e-9d51-8a1c2f6e7b90")),
                ("product_id", Some("1005115")),
                ("event_type", Some("view")),
                ("event_time", Some("2020-04-01 00:00:03+00")),
                ("price", Some("1050.54")),
            ]),
            meta,
        )
        .unwrap();
        // A delete under DEFAULT identity: the key only, filed under the commit's day.
        rows.push(
            &image(&[("event_id", Some("42"))]),
            ChangeMeta {
                op: Op::Delete,
                seq: 2,
                ..meta
            },
        )
        .unwrap();
        let bad = rows.push(
            &image(&[("event_id", Some("4x3"))]),
            ChangeMeta { seq: 3, ..meta },
        );
        assert!(matches!(bad, Err(OltpError::Mapping(m)) if m.contains("raw.cdc_events.event_id")));
        assert_eq!(rows.len(), 2);
        let batch = rows.finish().unwrap();
        assert_eq!(batch.num_rows(), 2);
        let col = |n: &str| batch.column_by_name(n).unwrap().clone();
        assert_eq!(
            col("event_id").as_primitive::<Int64Type>().values(),
            &[41, 42]
        );
        assert_eq!(
            col("event_time")
                .as_primitive::<TimestampMicrosecondType>()
                .value(0),
            1_585_699_203_000_000
        );
        let price = col("price");
        let price = price.as_any().downcast_ref::<Decimal128Array>().unwrap();
        assert_eq!(price.value(0), 105054);
        assert!(price.is_null(1));
        assert_eq!(col("_op").as_string::<i32>().value(1), "delete");
        assert_eq!(
            col("_lsn").as_primitive::<Int64Type>().value(0),
            0x1_0000_0010
        );
        assert_eq!(
            col("_seq").as_primitive::<Int64Type>().values().to_vec(),
            vec![1, 2]
        );
        let days = col("event_date");
        let days = days.as_primitive::<datafusion::arrow::datatypes::Date32Type>();
        assert_eq!(days.value(0), 18353); // 2020-04-01
        assert_eq!(days.value(1), 18353);
    }

    #[test]
    fn an_update_takes_unchanged_values_from_the_old_image() {
        let mut new = image(&[("user_id", Some("7")), ("name", Some("Ana"))]);
        let old = image(&[
            ("user_id", Some("7")),
            ("name", Some("Ann")),
            ("email", Some("ann@example.com")),
        ]);
        new.complete_from(&old);
        assert_eq!(new.get("name"), Some(&text("Ana")));
        assert_eq!(new.get("email"), Some(&text("ann@example.com")));
    }
}
