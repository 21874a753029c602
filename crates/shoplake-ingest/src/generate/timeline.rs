//! When events happen: a per-minute traffic intensity over the window (daily cycle, weekday
//! effect, small day-to-day noise, an optional logging gap), and the `event_time` text.

use chrono::{Datelike, Days, NaiveDate};

use super::sampling::{Rng, unit};

/// Relative traffic per hour of day (UTC): low at night, a plateau over the day and a peak in
/// the evening. Linearly interpolated between hours.
const HOURLY: [f64; 24] = [
    0.45, 0.28, 0.18, 0.13, 0.12, 0.15, 0.25, 0.40, 0.55, 0.68, 0.76, 0.80, //
    0.82, 0.82, 0.83, 0.86, 0.90, 0.95, 1.00, 1.00, 0.95, 0.85, 0.72, 0.58,
];

/// Relative traffic per weekday, Monday first: weekends are ~15 % lower.
const WEEKDAY: [f64; 7] = [1.00, 0.98, 1.00, 1.02, 1.03, 0.86, 0.84];

/// Day-to-day noise: each day's traffic is multiplied by `1 ± DAY_NOISE / 2`.
const DAY_NOISE: f64 = 0.06;

/// Traffic of the logging-gap day relative to a normal day.
const GAP_FACTOR: f64 = 0.002;

const MINUTES_PER_DAY: u32 = 1440;

/// Maps a position `u` in `[0, 1)` along the cumulative traffic of the window to a second.
///
/// Positions must be requested in non-decreasing order: the walk over minutes only moves forward,
/// so the whole window costs O(minutes) in total and O(days) memory.
pub(super) struct Timeline {
    day_factor: Vec<f64>,
    total: f64,
    minutes: u32,
    cur_min: u32,
    cum_before: f64,
    cur_w: f64,
}

impl Timeline {
    /// The intensity for `days` days from `start`, with `gap_day` almost empty.
    pub(super) fn new(start: NaiveDate, days: u32, gap_day: Option<u32>, rng: &mut Rng) -> Self {
        let first_wd = start.weekday().num_days_from_monday();
        let day_factor: Vec<f64> = (0..days)
            .map(|d| {
                let noise = 1.0 + DAY_NOISE * (unit(rng) - 0.5);
                let gap = if gap_day == Some(d) { GAP_FACTOR } else { 1.0 };
                WEEKDAY[((first_wd + d) % 7) as usize] * noise * gap
            })
            .collect();
        let minutes = days * MINUTES_PER_DAY;
        let mut t = Timeline {
            day_factor,
            total: 0.0,
            minutes,
            cur_min: 0,
            cum_before: 0.0,
            cur_w: 0.0,
        };
        // Sum in exactly the order `time_at` accumulates, so the walk ends where the total does.
        let mut total = 0.0;
        for m in 0..minutes {
            total += t.weight(m);
        }
        t.total = total;
        t.cur_w = t.weight(0);
        t
    }

    /// Traffic weight of minute `m` of the window.
    fn weight(&self, m: u32) -> f64 {
        let day = m / MINUTES_PER_DAY;
        let in_day = m % MINUTES_PER_DAY;
        let h = (in_day / 60) as usize;
        let f = (in_day % 60) as f64 / 60.0;
        (HOURLY[h] * (1.0 - f) + HOURLY[(h + 1) % 24] * f) * self.day_factor[day as usize]
    }

    /// Share of the window's traffic that falls in its last minute.
    pub(super) fn last_minute_share(&self) -> f64 {
        if self.total > 0.0 {
            self.weight(self.minutes - 1) / self.total
        } else {
            0.0
        }
    }

    /// Second (from the window start) at cumulative-traffic position `u` (non-decreasing calls).
    pub(super) fn time_at(&mut self, u: f64) -> u32 {
        let target = u * self.total;
        while self.cur_min + 1 < self.minutes && self.cum_before + self.cur_w <= target {
            self.cum_before += self.cur_w;
            self.cur_min += 1;
            self.cur_w = self.weight(self.cur_min);
        }
        let frac = if self.cur_w > 0.0 {
            (target - self.cum_before) / self.cur_w
        } else {
            0.0
        };
        let sec = ((frac * 60.0) as u32).min(59);
        self.cur_min * 60 + sec
    }
}

/// Formats `YYYY-MM-DD HH:MM:SS UTC` for seconds since the window start; the date part is
/// computed once per day, the time of day by arithmetic.
pub(super) struct Clock {
    start: NaiveDate,
    day: u32,
    text: [u8; 24],
}

impl Clock {
    /// A clock for a window starting at midnight UTC of `start`.
    pub(super) fn new(start: NaiveDate) -> Self {
        let mut text = *b"0000-00-00 00:00:00 UTC,";
        write_date(&mut text, start);
        Clock {
            start,
            day: 0,
            text,
        }
    }

    /// The `event_time` text of second `t` of the window, followed by a comma.
    #[inline]
    pub(super) fn format(&mut self, t: u32) -> &[u8; 24] {
        let day = t / 86_400;
        if day != self.day {
            self.day = day;
            let date = self
                .start
                .checked_add_days(Days::new(day as u64))
                .expect("validated window");
            write_date(&mut self.text, date);
        }
        let s = t % 86_400;
        let (h, m, sec) = (s / 3600, (s / 60) % 60, s % 60);
        self.text[11] = b'0' + (h / 10) as u8;
        self.text[12] = b'0' + (h % 10) as u8;
        self.text[14] = b'0' + (m / 10) as u8;
        self.text[15] = b'0' + (m % 10) as u8;
        self.text[17] = b'0' + (sec / 10) as u8;
        self.text[18] = b'0' + (sec % 10) as u8;
        &self.text
    }
}

fn write_date(text: &mut [u8; 24], date: NaiveDate) {
    let y = date.year() as u32;
    let (mo, d) = (date.month(), date.day());
    text[0] = b'0' + (y / 1000 % 10) as u8;
    text[1] = b'0' + (y / 100 % 10) as u8;
    text[2] = b'0' + (y / 10 % 10) as u8;
    text[3] = b'0' + (y % 10) as u8;
    text[5] = b'0' + (mo / 10) as u8;
    text[6] = b'0' + (mo % 10) as u8;
    text[8] = b'0' + (d / 10) as u8;
    text[9] = b'0' + (d % 10) as u8;
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn clock_formats() {
        let mut c = Clock::new(NaiveDate::from_ymd_opt(2020, 4, 1).unwrap());
        assert_eq!(c.format(3), b"2020-04-01 00:00:03 UTC,");
        assert_eq!(c.format(86_400 * 30 - 1), b"2020-04-30 23:59:59 UTC,");
        assert_eq!(c.format(86_400 * 30 + 3723), b"2020-05-01 01:02:03 UTC,");
    }

    #[test]
    fn timeline_is_monotone_and_in_window() {
        let mut rng = Rng::seed_from_u64(1);
        let mut t = Timeline::new(
            NaiveDate::from_ymd_opt(2020, 4, 1).unwrap(),
            3,
            Some(1),
            &mut rng,
        );
        let mut last = 0;
        let mut per_day = [0u32; 3];
        for i in 0..30_000 {
            let s = t.time_at(i as f64 / 30_000.0);
            assert!(s >= last && s < 3 * 86_400);
            last = s;
            per_day[(s / 86_400) as usize] += 1;
        }
        assert!(per_day[1] * 100 < per_day[0], "{per_day:?}");
    }
}
