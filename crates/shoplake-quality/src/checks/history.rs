//! Rows per day of the day-partitioned tables: what a `row_count` check compares a day with.
//!
//! One definition for `shoplake run` (which gates each day on it) and `shoplake check` (which
//! evaluates the published days), so the two cannot disagree: the trailing window of a day
//! is the `n` calendar days before it, a day without rows counts as 0, and days before the
//! table's first day with rows are not counted (the store's data had not started).

use std::collections::BTreeMap;

use chrono::NaiveDate;

/// Rows per day, per table (`clean.events`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayRows {
    tables: BTreeMap<String, BTreeMap<NaiveDate, u64>>,
}

impl DayRows {
    /// Sets the rows of `table` on `date`.
    pub fn set(&mut self, table: &str, date: NaiveDate, rows: u64) {
        self.tables
            .entry(table.to_string())
            .or_default()
            .insert(date, rows);
    }

    /// Every calendar day from the first to the last day of `table`, with its rows (0 for a
    /// day without any).
    pub fn calendar(&self, table: &str) -> Vec<(NaiveDate, u64)> {
        let Some(days) = self.tables.get(table) else {
            return Vec::new();
        };
        let (Some(first), Some(last)) = (days.keys().next(), days.keys().next_back()) else {
            return Vec::new();
        };
        first
            .iter_days()
            .take_while(|d| d <= last)
            .map(|d| (d, days.get(&d).copied().unwrap_or(0)))
            .collect()
    }

    /// The rows of the `n` days before `day`, oldest first, as the module describes.
    pub fn trailing(&self, table: &str, day: NaiveDate, n: u32) -> Vec<u64> {
        let Some(days) = self.tables.get(table) else {
            return Vec::new();
        };
        let Some(first) = days.iter().find(|(_, rows)| **rows > 0).map(|(d, _)| *d) else {
            return Vec::new();
        };
        let from = (day - chrono::Duration::days(i64::from(n))).max(first);
        from.iter_days()
            .take_while(|d| *d < day)
            .map(|d| days.get(&d).copied().unwrap_or(0))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2020, 4, d).unwrap()
    }

    #[test]
    fn the_window_counts_gaps_as_zero_and_starts_at_the_first_day() {
        let mut rows = DayRows::default();
        rows.set("clean.events", day(3), 0);
        rows.set("clean.events", day(5), 100);
        rows.set("clean.events", day(6), 120);
        rows.set("clean.events", day(8), 90);
        rows.set("clean.rejects", day(6), 4);
        // Before the first day with rows: nothing to compare with.
        assert_eq!(rows.trailing("clean.events", day(5), 7), Vec::<u64>::new());
        assert_eq!(rows.trailing("clean.events", day(4), 7), Vec::<u64>::new());
        // Day 7 has no rows and counts as 0; the window never reaches back past day 5.
        assert_eq!(rows.trailing("clean.events", day(9), 7), [100, 120, 0, 90]);
        assert_eq!(rows.trailing("clean.events", day(9), 2), [0, 90]);
        // Each table is its own history; a table never seen has none.
        assert_eq!(rows.trailing("clean.rejects", day(8), 7), [4, 0]);
        assert_eq!(
            rows.trailing("model.fact_user_events", day(8), 7),
            Vec::<u64>::new()
        );
        assert_eq!(rows.trailing("clean.events", day(9), 0), Vec::<u64>::new());
        let calendar: Vec<u64> = rows.calendar("clean.events").iter().map(|d| d.1).collect();
        assert_eq!(calendar, [0, 0, 100, 120, 0, 90]);
        assert_eq!(rows.calendar("clean.events")[0].0, day(3));
    }
}
