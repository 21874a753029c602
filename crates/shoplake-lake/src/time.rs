//! The lake's calendar arithmetic, defined once: days as Arrow `Date32` (days since
//! 1970-01-01) and instants as microseconds since the epoch, UTC.

use chrono::{Datelike, Months, NaiveDate};

/// Microseconds in a second.
pub const MICROS_PER_SECOND: i64 = 1_000_000;
/// Microseconds in an hour.
pub const MICROS_PER_HOUR: i64 = 3_600 * MICROS_PER_SECOND;
/// Microseconds in a day (UTC has no leap seconds in this arithmetic, as in Arrow's).
pub const MICROS_PER_DAY: i64 = 24 * MICROS_PER_HOUR;

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("the epoch is a date")
}

/// Days since 1970-01-01, the Arrow `Date32` representation.
pub fn date_to_days(date: NaiveDate) -> i32 {
    (date - epoch()).num_days() as i32
}

/// Inverse of [`date_to_days`].
pub fn days_to_date(days: i32) -> NaiveDate {
    epoch() + chrono::Duration::days(i64::from(days))
}

/// The first day of `day`'s calendar month.
pub fn month_of(day: NaiveDate) -> NaiveDate {
    day.with_day(1).expect("every month has a first day")
}

/// The last day of `day`'s calendar month.
pub fn month_end(day: NaiveDate) -> NaiveDate {
    month_of(day)
        .checked_add_months(Months::new(1))
        .and_then(|next| next.pred_opt())
        .expect("the lake's dates are far from the calendar's ends")
}

/// The day (as [`date_to_days`]) an instant in microseconds falls on; instants before the
/// epoch fall on the day before, not on day 0 (floor division).
pub fn day_of_micros(micros: i64) -> i32 {
    micros.div_euclid(MICROS_PER_DAY) as i32
}

/// The hour of day, 0-23, of an instant in microseconds.
pub fn hour_of_micros(micros: i64) -> i32 {
    micros.div_euclid(MICROS_PER_HOUR).rem_euclid(24) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_days_round_trip() {
        let d = NaiveDate::from_ymd_opt(2020, 4, 1).unwrap();
        assert_eq!(date_to_days(d), 18353);
        assert_eq!(days_to_date(18353), d);
    }

    #[test]
    fn instants_before_the_epoch_fall_on_the_day_before() {
        assert_eq!(day_of_micros(0), 0);
        assert_eq!(day_of_micros(MICROS_PER_DAY - 1), 0);
        assert_eq!(day_of_micros(-1), -1);
        assert_eq!(hour_of_micros(-1), 23);
        assert_eq!(hour_of_micros(MICROS_PER_HOUR * 25), 1);
    }
}
