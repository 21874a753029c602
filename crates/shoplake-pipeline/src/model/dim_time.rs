//! `model.dim_time`: the calendar from the first to the last day of the fact table.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{Datelike, NaiveDate, Weekday};
use shoplake_lake::arrow::array::{
    BooleanArray, Date32Array, Int32Array, RecordBatch, StringArray,
};
use shoplake_lake::arrow::error::ArrowError;
use shoplake_lake::tables;
use shoplake_lake::time::date_to_days;

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// The calendar rows for every day between the first and last of `event_days` (inclusive).
pub fn calendar(event_days: &BTreeSet<NaiveDate>) -> Result<RecordBatch, ArrowError> {
    let days: Vec<NaiveDate> = match (event_days.first(), event_days.last()) {
        (Some(first), Some(last)) => first.iter_days().take_while(|d| d <= last).collect(),
        _ => Vec::new(),
    };
    let ints = |f: &dyn Fn(&NaiveDate) -> i32| {
        Arc::new(Int32Array::from(days.iter().map(f).collect::<Vec<_>>()))
    };
    let day_name = |d: &NaiveDate| match d.weekday() {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    };
    RecordBatch::try_new(
        tables::dim_time().arrow_schema(),
        vec![
            Arc::new(Date32Array::from(
                days.iter().map(|d| date_to_days(*d)).collect::<Vec<_>>(),
            )),
            ints(&|d| d.year()),
            ints(&|d| (d.month0() / 3 + 1) as i32),
            ints(&|d| d.month() as i32),
            Arc::new(StringArray::from(
                days.iter()
                    .map(|d| MONTHS[d.month0() as usize])
                    .collect::<Vec<_>>(),
            )),
            ints(&|d| d.day() as i32),
            ints(&|d| d.ordinal() as i32),
            ints(&|d| d.weekday().number_from_monday() as i32),
            Arc::new(StringArray::from(
                days.iter().map(day_name).collect::<Vec<_>>(),
            )),
            ints(&|d| d.iso_week().week() as i32),
            Arc::new(BooleanArray::from(
                days.iter()
                    .map(|d| matches!(d.weekday(), Weekday::Sat | Weekday::Sun))
                    .collect::<Vec<_>>(),
            )),
            Arc::new(BooleanArray::from(
                days.iter()
                    .map(|d| event_days.contains(d))
                    .collect::<Vec<_>>(),
            )),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoplake_lake::arrow::array::{Array, AsArray};
    use shoplake_lake::arrow::datatypes::Int32Type;

    #[test]
    fn fills_gaps_and_names_days() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let days: BTreeSet<_> = [d("2020-04-04"), d("2020-04-06")].into();
        let batch = calendar(&days).unwrap();
        assert_eq!(batch.num_rows(), 3);
        let dow = batch
            .column_by_name("day_of_week")
            .unwrap()
            .as_primitive::<Int32Type>();
        // 2020-04-04 was a Saturday.
        assert_eq!((dow.value(0), dow.value(1), dow.value(2)), (6, 7, 1));
        let has = batch.column_by_name("has_events").unwrap().as_boolean();
        assert!(has.value(0) && !has.value(1) && has.value(2));
        let q = batch
            .column_by_name("quarter")
            .unwrap()
            .as_primitive::<Int32Type>();
        assert_eq!(q.value(0), 2);
        assert_eq!(calendar(&BTreeSet::new()).unwrap().num_rows(), 0);
        assert!(batch.column(0).null_count() == 0);
    }
}
