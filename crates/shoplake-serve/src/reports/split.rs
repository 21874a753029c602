//! Which rows a report reads for its range: the months it covers whole from a month mart
//! (`model.mart_user_monthly`, `model.mart_product_monthly`), its other days from the day
//! mart. The two never hold the same day, so their rows add up to the range's.
//!
//! A month counts as covered when the range holds every day of it that the lake has events
//! for: the lake's first and last months are usually partial, and a range over the whole lake
//! still reads them from the month mart.

use chrono::NaiveDate;
use shoplake_lake::time::{month_end, month_of};

/// The range's days, split between a month mart and a day mart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Split {
    /// The months read from the month mart, in order.
    pub months: Vec<NaiveDate>,
    /// The other days, as spans of consecutive days (first, last), read from the day mart.
    pub spans: Vec<(NaiveDate, NaiveDate)>,
}

impl Split {
    /// Every day of `from..=to` from the day mart.
    pub fn days(from: NaiveDate, to: NaiveDate) -> Split {
        Split {
            months: Vec::new(),
            spans: vec![(from, to)],
        }
    }

    /// `from..=to` over a lake whose days with events run from `first` to `last`.
    pub fn new(from: NaiveDate, to: NaiveDate, first: NaiveDate, last: NaiveDate) -> Split {
        let (start, end) = (from.max(first), to.min(last));
        if start > end {
            return Split::days(from, to);
        }
        let mut split = Split {
            months: Vec::new(),
            spans: Vec::new(),
        };
        let mut month = month_of(start);
        while month <= end {
            let last_day = month_end(month);
            // The month's days that can hold events.
            let (held_from, held_to) = (month.max(first), last_day.min(last));
            if start <= held_from && end >= held_to {
                split.months.push(month);
            } else {
                let span = (start.max(month), end.min(last_day));
                match split.spans.last_mut() {
                    Some(previous) if previous.1.succ_opt() == Some(span.0) => previous.1 = span.1,
                    _ => split.spans.push(span),
                }
            }
            let Some(next) = last_day.succ_opt() else {
                break;
            };
            month = next;
        }
        split
    }

    /// The range is one month read whole from the month mart (where a user is one row).
    pub fn is_one_month(&self) -> bool {
        self.spans.is_empty() && self.months.len() == 1
    }

    /// `month IN (...)` for the months, `None` when there are none.
    pub fn month_filter(&self) -> Option<String> {
        (!self.months.is_empty()).then(|| {
            let months: Vec<String> = self.months.iter().map(|m| format!("DATE '{m}'")).collect();
            format!("month IN ({})", months.join(", "))
        })
    }

    /// `event_date` within the spans, `None` when there are none.
    pub fn day_filter(&self) -> Option<String> {
        (!self.spans.is_empty()).then(|| {
            let spans: Vec<String> = self
                .spans
                .iter()
                .map(|(a, b)| format!("event_date BETWEEN DATE '{a}' AND DATE '{b}'"))
                .collect();
            format!("({})", spans.join(" OR "))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn split(from: &str, to: &str, first: &str, last: &str) -> (Vec<String>, Vec<String>) {
        let s = Split::new(d(from), d(to), d(first), d(last));
        (
            s.months.iter().map(|m| m.to_string()).collect(),
            s.spans.iter().map(|(a, b)| format!("{a}..{b}")).collect(),
        )
    }

    #[test]
    fn whole_months_come_from_the_month_mart_and_the_rest_from_the_days() {
        // The whole lake, partial first and last months included.
        assert_eq!(
            split("2019-10-05", "2020-01-20", "2019-10-05", "2020-01-20"),
            (
                vec![
                    "2019-10-01".into(),
                    "2019-11-01".into(),
                    "2019-12-01".into(),
                    "2020-01-01".into()
                ],
                vec![]
            )
        );
        // A range that starts and ends inside months.
        assert_eq!(
            split("2019-10-15", "2019-12-10", "2019-10-01", "2020-01-31"),
            (
                vec!["2019-11-01".into()],
                vec![
                    "2019-10-15..2019-10-31".into(),
                    "2019-12-01..2019-12-10".into()
                ]
            )
        );
        // Two partial months side by side make one span.
        assert_eq!(
            split("2019-10-15", "2019-11-10", "2019-10-01", "2020-01-31"),
            (vec![], vec!["2019-10-15..2019-11-10".into()])
        );
        // A week inside a month; a range wider than the lake; one whole month.
        assert_eq!(
            split("2020-04-08", "2020-04-14", "2020-04-01", "2020-04-30"),
            (vec![], vec!["2020-04-08..2020-04-14".into()])
        );
        assert_eq!(
            split("2000-01-01", "2030-01-01", "2020-04-01", "2020-04-30"),
            (vec!["2020-04-01".into()], vec![])
        );
        assert_eq!(
            split("2020-02-01", "2020-02-29", "2019-01-01", "2021-01-01"),
            (vec!["2020-02-01".into()], vec![])
        );
        // Missing the month's last day is not the whole month.
        assert_eq!(
            split("2020-02-01", "2020-02-28", "2019-01-01", "2021-01-01"),
            (vec![], vec!["2020-02-01..2020-02-28".into()])
        );
        // Outside the lake: the days, which hold nothing.
        assert_eq!(
            split("2018-01-01", "2018-02-01", "2020-04-01", "2020-04-30"),
            (vec![], vec!["2018-01-01..2018-02-01".into()])
        );
    }

    #[test]
    fn filters() {
        let s = Split::new(
            d("2019-10-15"),
            d("2019-12-10"),
            d("2019-10-01"),
            d("2020-01-31"),
        );
        assert_eq!(s.month_filter().unwrap(), "month IN (DATE '2019-11-01')");
        assert_eq!(
            s.day_filter().unwrap(),
            "(event_date BETWEEN DATE '2019-10-15' AND DATE '2019-10-31' OR event_date BETWEEN DATE '2019-12-01' AND DATE '2019-12-10')"
        );
        let days = Split::days(d("2020-01-01"), d("2020-01-02"));
        assert_eq!(days.month_filter(), None);
    }
}
