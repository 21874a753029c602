//! `model.fact_user_events`: one row per clean event with calendar attributes and category
//! levels.
//!
//! The fact of a day is derived from its clean rows batch by batch: the columns it shares
//! with `clean.events` are the same Arrow arrays (no copy), and only the calendar and
//! category columns are computed. The day's checks and its write then read rows already in
//! memory instead of evaluating a projection once each.

use std::sync::Arc;

use shoplake_lake::arrow::array::{
    Array, ArrayRef, AsArray, Int32Array, RecordBatch, StringArray, StringBuilder,
};
use shoplake_lake::arrow::datatypes::TimestampMicrosecondType;
use shoplake_lake::tables;
use shoplake_lake::time::{day_of_micros, hour_of_micros};

use crate::error::{PipelineError, Result};

/// ISO weekday (Monday 1 .. Sunday 7) of a day counted from 1970-01-01, a Thursday.
pub fn iso_weekday(day: i32) -> i32 {
    (day + 3).rem_euclid(7) + 1
}

/// The levels of a dotted category code: the first level (the whole code when it has no
/// dot), the second (None when absent or empty) and everything after the second dot (None
/// when absent or empty).
pub fn category_levels(code: &str) -> (&str, Option<&str>, Option<&str>) {
    fn non_empty(s: &str) -> Option<&str> {
        (!s.is_empty()).then_some(s)
    }
    match code.split_once('.') {
        None => (code, None, None),
        Some((l1, rest)) => match rest.split_once('.') {
            None => (l1, non_empty(rest), None),
            Some((l2, l3)) => (l1, non_empty(l2), non_empty(l3)),
        },
    }
}

/// The fact rows of a day from its clean rows (in `clean.events` schema, in the order they
/// are to be written: by event_type, event_time and event_id).
///
/// `day_of_week` is ISO (Monday = 1 ... Sunday = 7); hours are UTC. `category_l3` holds every
/// level after the second, dotted.
pub fn from_clean(clean: &[RecordBatch]) -> Result<Vec<RecordBatch>> {
    clean.iter().map(fact_batch).collect()
}

fn fact_batch(clean: &RecordBatch) -> Result<RecordBatch> {
    // Clean rows come from the cleaning step in the `clean.events` schema; anything else is a
    // broken contract, reported rather than panicked on.
    let schema = clean.schema();
    let column = |name: &str| -> Result<ArrayRef> {
        schema
            .index_of(name)
            .map(|i| clean.column(i).clone())
            .map_err(|_| {
                PipelineError::Contract(format!("clean rows lack column {name} for the fact"))
            })
    };
    let wrong_type = |name: &str, array: &ArrayRef| {
        PipelineError::Contract(format!(
            "clean.events.{name} is {}, not the declared type",
            array.data_type()
        ))
    };
    let rows = clean.num_rows();
    let times = column("event_time")?;
    let times = times
        .as_primitive_opt::<TimestampMicrosecondType>()
        .ok_or_else(|| wrong_type("event_time", &times))?;
    let hour: Int32Array = times.unary(hour_of_micros);
    let weekday: Int32Array = times.unary(|t| iso_weekday(day_of_micros(t)));

    let codes = column("category_code")?;
    let codes = codes
        .as_string_opt::<i32>()
        .ok_or_else(|| wrong_type("category_code", &codes))?;
    let bytes = codes.values().len();
    let mut l1 = StringBuilder::with_capacity(rows, bytes);
    let mut l2 = StringBuilder::with_capacity(rows, bytes);
    let mut l3 = StringBuilder::with_capacity(rows, bytes);
    for code in codes.iter() {
        let (a, b, c) = category_levels(code.unwrap_or(""));
        l1.append_value(a);
        l2.append_option(b);
        l3.append_option(c);
    }
    let unknown: ArrayRef = Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
        "unknown", rows,
    )));

    let columns: Vec<ArrayRef> = vec![
        column("event_id")?,
        column("event_time")?,
        column("event_date")?,
        Arc::new(hour),
        Arc::new(weekday),
        column("event_type")?,
        column("user_id")?,
        column("user_session")?,
        column("product_id")?,
        column("category_id")?,
        column("category_code")?,
        Arc::new(l1.finish()),
        Arc::new(l2.finish()),
        Arc::new(l3.finish()),
        column("brand")?,
        column("price")?,
        unknown.clone(),
        unknown,
    ];
    Ok(RecordBatch::try_new(
        tables::fact_user_events().arrow_schema(),
        columns,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, NaiveDate};
    use shoplake_lake::datafusion::datasource::MemTable;
    use shoplake_lake::datafusion::prelude::SessionContext;
    use shoplake_lake::time::date_to_days;

    #[test]
    fn iso_weekdays_match_the_calendar() {
        for (y, m, d) in [
            (1970, 1, 1),
            (2020, 4, 1),
            (2020, 4, 5),
            (1969, 12, 29),
            (2024, 2, 29),
        ] {
            let date = NaiveDate::from_ymd_opt(y, m, d).unwrap();
            assert_eq!(
                iso_weekday(date_to_days(date)),
                date.weekday().number_from_monday() as i32,
                "{date}"
            );
        }
    }

    #[test]
    fn rows_outside_the_clean_schema_are_an_error_not_a_panic() {
        use shoplake_lake::arrow::array::{Int64Array, TimestampMicrosecondArray};
        let only_time = RecordBatch::try_from_iter([(
            "event_time",
            Arc::new(TimestampMicrosecondArray::from(vec![0i64]).with_timezone("UTC")) as ArrayRef,
        )])
        .unwrap();
        let e = from_clean(&[only_time]).unwrap_err();
        assert!(e.to_string().contains("lack column category_code"), "{e}");
        let time_as_int = RecordBatch::try_from_iter([(
            "event_time",
            Arc::new(Int64Array::from(vec![0i64])) as ArrayRef,
        )])
        .unwrap();
        let e = from_clean(&[time_as_int]).unwrap_err();
        assert!(e.to_string().contains("event_time is Int64"), "{e}");
    }

    #[test]
    fn category_levels_by_hand() {
        assert_eq!(category_levels("unknown"), ("unknown", None, None));
        assert_eq!(category_levels("a.b"), ("a", Some("b"), None));
        assert_eq!(category_levels("a.b.c"), ("a", Some("b"), Some("c")));
        assert_eq!(category_levels("a.b.c.d"), ("a", Some("b"), Some("c.d")));
        assert_eq!(category_levels("a..c"), ("a", None, Some("c")));
        assert_eq!(category_levels("a."), ("a", None, None));
        assert_eq!(category_levels("a.b."), ("a", Some("b"), None));
        assert_eq!(category_levels(".b"), ("", Some("b"), None));
    }

    /// The same columns as SQL over the clean rows, the way they were first defined.
    const SQL: &str = r#"
SELECT event_id, event_time, event_date,
  CAST(date_part('hour', event_time) AS INT) AS hour_of_day,
  CAST(CASE WHEN date_part('dow', event_time) = 0 THEN 7 ELSE date_part('dow', event_time) END AS INT) AS day_of_week,
  event_type, user_id, user_session AS session_id, product_id, category_id, category_code,
  split_part(category_code, '.', 1) AS category_l1,
  NULLIF(split_part(category_code, '.', 2), '') AS category_l2,
  NULLIF(regexp_replace(category_code, '^[^.]*\.?[^.]*\.?', ''), '') AS category_l3,
  brand, price, 'unknown' AS device_type, 'unknown' AS source_channel
FROM day_clean"#;

    #[tokio::test]
    async fn equals_the_sql_definition() {
        use shoplake_lake::arrow::array::{
            Date32Array, Decimal128Array, Int64Array, TimestampMicrosecondArray,
        };
        let codes = [
            "electronics.smartphone",
            "unknown",
            "a.b.c.d",
            "a..c",
            "appliances.kitchen.washer",
            "a.",
            ".b",
        ];
        // Instants around midnight, a Sunday, before 1970 and across hours.
        let times = [
            1_585_699_203_000_000i64, // 2020-04-01 00:00:03 Wednesday
            1_586_131_199_999_999,    // 2020-04-05 23:59:59.999999 Sunday
            1_586_131_200_000_000,    // 2020-04-06 00:00:00 Monday
            -1,                       // 1969-12-31 23:59:59.999999
            1_585_738_800_000_000,    // 2020-04-01 11:00:00
            0,
            1_709_164_800_000_000, // 2024-02-29
        ];
        let n = times.len();
        let clean = RecordBatch::try_new(
            tables::clean_events().arrow_schema(),
            vec![
                Arc::new(Int64Array::from_iter_values(0..n as i64)),
                Arc::new(TimestampMicrosecondArray::from(times.to_vec()).with_timezone("UTC")),
                Arc::new(StringArray::from(vec!["view"; n])),
                Arc::new(Int64Array::from_iter_values(100..100 + n as i64)),
                Arc::new(Int64Array::from_iter_values(200..200 + n as i64)),
                Arc::new(StringArray::from(codes.to_vec())),
                Arc::new(StringArray::from(vec!["acme"; n])),
                Arc::new(
                    Decimal128Array::from(vec![1234i128; n])
                        .with_precision_and_scale(10, 2)
                        .unwrap(),
                ),
                Arc::new(Int64Array::from_iter_values(300..300 + n as i64)),
                Arc::new(StringArray::from(vec!["s"; n])),
                Arc::new(Date32Array::from(
                    times.iter().map(|t| day_of_micros(*t)).collect::<Vec<_>>(),
                )),
                Arc::new(StringArray::new_null(n)),
            ],
        )
        .unwrap();
        let ours = from_clean(std::slice::from_ref(&clean)).unwrap();

        let ctx = SessionContext::new();
        let table = MemTable::try_new(clean.schema(), vec![vec![clean]]).unwrap();
        ctx.register_table("day_clean", Arc::new(table)).unwrap();
        let theirs = ctx.sql(SQL).await.unwrap().collect().await.unwrap();
        let theirs =
            shoplake_lake::arrow::compute::concat_batches(&theirs[0].schema(), &theirs).unwrap();
        assert_eq!(ours.len(), 1);
        assert_eq!(ours[0].num_columns(), theirs.num_columns());
        for (i, field) in ours[0].schema().fields().iter().enumerate() {
            let theirs =
                shoplake_lake::arrow::compute::cast(theirs.column(i), field.data_type()).unwrap();
            assert_eq!(
                ours[0].column(i).as_ref(),
                theirs.as_ref(),
                "{}",
                field.name()
            );
        }
    }
}
