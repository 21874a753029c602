//! The aggregate queries behind every figure of a profile.
//!
//! Each figure is a DataFusion aggregate over the prepared views (see [`super::input`]); only
//! aggregated results, never input rows, come back to Rust. Everything that could grow with the
//! input is a GROUP BY, which spills under the session's memory limit:
//!
//! - distinct counts: `SELECT COUNT(*) FROM (SELECT c ... GROUP BY c)`, one column at a time
//!   (several `COUNT(DISTINCT)` in one query would each hold an in-memory set);
//! - exact quantiles: DataFusion's `percentile_cont` keeps every value in memory, so instead the
//!   values are grouped into (value, rows) pairs, a window function accumulates the rows in value
//!   order, and the p-quantile is read off that cumulative distribution with the same
//!   definition as `percentile_cont` (rank `p * (n - 1)`, linear interpolation between the two
//!   closest ranks); ranks are computed in integers from percent values, so no rounding can pick
//!   a neighbouring rank (`quantiles`);
//! - sessions: one GROUP BY session, whose per-session figures are then summarised;
//! - the price mean and standard deviation come from exact decimal sums of cents and squared
//!   cents, so they are exact up to the final division and identical from run to run (a
//!   floating-point `STDDEV_SAMP` depends on the order in which parallel partial aggregates are
//!   merged, and would make the same sample print different last digits).

use chrono::{Days, NaiveDate};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::prelude::SessionContext;
use shoplake_lake::Progress;

use crate::input::{EVENT_TYPES, Prepared, SOURCE_COLUMNS};
use crate::model::*;
use crate::svg::nice_step;
use crate::{ProfileError, ProfileOptions};

/// Price quantiles reported, in percent.
const PRICE_PERCENTS: [i64; 5] = [1, 25, 50, 75, 99];
/// About this many bars in the price histogram.
const PRICE_BINS: i64 = 30;
/// How many top categories and brands.
const TOP: usize = 10;
/// A day with fewer rows than this share of the median day is near-empty.
const NEAR_EMPTY_SHARE: f64 = 0.10;

type Rows = Vec<Vec<ScalarValue>>;

async fn rows(ctx: &SessionContext, sql: &str) -> Result<Rows, ProfileError> {
    let batches = ctx.sql(sql).await?.collect().await?;
    let mut out = Vec::new();
    for batch in &batches {
        for r in 0..batch.num_rows() {
            let row = batch
                .columns()
                .iter()
                .map(|c| ScalarValue::try_from_array(c, r))
                .collect::<Result<Vec<_>, _>>()?;
            out.push(row);
        }
    }
    Ok(out)
}

fn int(v: &ScalarValue) -> Option<i64> {
    match v.cast_to(&DataType::Int64) {
        Ok(ScalarValue::Int64(x)) => x,
        _ => None,
    }
}

fn count(v: &ScalarValue) -> u64 {
    int(v).unwrap_or(0).max(0) as u64
}

fn float(v: &ScalarValue) -> Option<f64> {
    match v.cast_to(&DataType::Float64) {
        Ok(ScalarValue::Float64(x)) => x,
        _ => None,
    }
}

fn text(v: &ScalarValue) -> Option<String> {
    if v.is_null() {
        return None;
    }
    match v.cast_to(&DataType::Utf8) {
        Ok(ScalarValue::Utf8(x)) => x,
        _ => Some(v.to_string()),
    }
}

/// The unscaled integer of a decimal (cents for scale 2).
fn decimal(v: &ScalarValue) -> Option<i128> {
    match v {
        ScalarValue::Decimal128(x, _, _) => *x,
        _ => None,
    }
}

/// Sample standard deviation from the count, the sum of cents and the sum of squared cents:
/// `sqrt((n * S2 - S1^2) / (n * (n - 1))) / 100`, with the numerator in exact integers.
fn sample_stddev(n: u64, cents: Option<i128>, squares: Option<i128>) -> Option<f64> {
    let (s1, s2) = (cents?, squares?);
    if n < 2 {
        return None;
    }
    let n = i128::from(n);
    let numerator = n
        .checked_mul(s2)
        .and_then(|a| s1.checked_mul(s1).and_then(|b| a.checked_sub(b)));
    let numerator = match numerator {
        Some(exact) => exact as f64,
        None => n as f64 * s2 as f64 - (s1 as f64) * (s1 as f64),
    };
    Some((numerator.max(0.0) / (n * (n - 1)) as f64).sqrt() / 100.0)
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn ratio(sum: Option<f64>, n: u64) -> Option<f64> {
    (n > 0).then(|| sum.unwrap_or(0.0) / n as f64)
}

/// Exact quantiles of the distributions given by `hist`, a query returning `(kind, value, c)`:
/// `c` rows have `value` in distribution `kind`, which holds `n` values in all (`kinds` lists
/// each kind with its `n`, known from an earlier count). Returns `(kind, percent, value)`.
///
/// The p-quantile is the value at 0-based rank `p * (n - 1)`, interpolated linearly between the
/// two closest ranks (the definition of `percentile_cont`). The ranks are computed here in
/// integers from the percent, and one pass over the cumulative distribution finds, for each
/// rank, the smallest value whose cumulative count exceeds it.
async fn quantiles(
    ctx: &SessionContext,
    hist: &str,
    kinds: &[(&str, u64)],
    percents: &[i64],
) -> Result<Vec<(String, i64, f64)>, ProfileError> {
    let mut columns = Vec::new();
    let mut wanted = Vec::new();
    for &(kind, n) in kinds {
        if n == 0 {
            continue;
        }
        for &pct in percents {
            let scaled = pct.unsigned_abs() * (n - 1);
            let (lo, hi) = (scaled / 100, scaled.div_ceil(100));
            for rank in [lo, hi] {
                columns.push(format!(
                    "MIN(CASE WHEN kind = '{kind}' AND below > {rank} THEN value END) AS q{}",
                    columns.len()
                ));
            }
            wanted.push((kind, pct, (scaled % 100) as f64 / 100.0));
        }
    }
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "WITH h AS ({hist}), \
         cum AS (SELECT kind, value, SUM(c) OVER (PARTITION BY kind ORDER BY value \
                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS below FROM h) \
         SELECT {} FROM cum",
        columns.join(", ")
    );
    let r = rows(ctx, &sql).await?;
    let Some(r) = r.first() else {
        return Ok(Vec::new());
    };
    Ok(wanted
        .iter()
        .enumerate()
        .filter_map(|(i, &(kind, pct, frac))| {
            let lo = float(&r[2 * i])?;
            let hi = float(&r[2 * i + 1])?;
            Some((kind.to_string(), pct, lo + (hi - lo) * frac))
        })
        .collect())
}

fn quantile_of(qs: &[(String, i64, f64)], kind: &str, pct: i64) -> Option<f64> {
    qs.iter()
        .find(|(k, p, _)| k == kind && *p == pct)
        .map(|(_, _, v)| *v)
}

fn median(values: &mut [u64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_unstable();
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2] as f64
    } else {
        (values[n / 2 - 1] as f64 + values[n / 2] as f64) / 2.0
    }
}

/// Runs every query and assembles the profile.
pub async fn compute(
    ctx: &SessionContext,
    p: &Prepared,
    options: &ProfileOptions,
    progress: &dyn Progress,
) -> Result<Profile, ProfileError> {
    let t = format!("\"{}\"", p.typed);
    let b = format!("\"{}\"", p.base);
    let known_types = EVENT_TYPES
        .iter()
        .map(|e| format!("'{e}'"))
        .collect::<Vec<_>>()
        .join(", ");

    // 1. One scan for the plain counts.
    progress.start("profile: counts", None, "rows");
    let mut select = vec![
        "COUNT(*)".to_string(),
        "SUM(CASE WHEN malformed THEN 1 ELSE 0 END)".to_string(),
    ];
    select.extend(SOURCE_COLUMNS.iter().map(|c| format!("COUNT({c})")));
    select.extend([
        "SUM(CASE WHEN event_time IS NOT NULL AND ts IS NULL THEN 1 ELSE 0 END)".to_string(),
        "SUM(CASE WHEN NOT malformed AND price_value IS NULL THEN 1 ELSE 0 END)".to_string(),
        "COUNT(price_value)".to_string(),
        // Exact sums (cents and cents squared) make the mean and the standard deviation exact
        // up to one final division, and the same whatever order the rows are added in.
        "CAST(SUM(price_value) AS DECIMAL(38, 2))".to_string(),
        "CAST(SUM(price_value * price_value) AS DECIMAL(38, 4))".to_string(),
        "MIN(price_value)".to_string(),
        "MAX(price_value)".to_string(),
        "SUM(CASE WHEN price_value <= 0 THEN 1 ELSE 0 END)".to_string(),
        "SUM(CASE WHEN NOT malformed AND (user_session IS NULL OR trim(user_session) = '') THEN 1 ELSE 0 END)".to_string(),
        format!("SUM(CASE WHEN NOT malformed AND (event_type IS NULL OR event_type NOT IN ({known_types})) THEN 1 ELSE 0 END)"),
        "to_char(MIN(ts), '%Y-%m-%d %H:%M:%S')".to_string(),
        "to_char(MAX(ts), '%Y-%m-%d %H:%M:%S')".to_string(),
        "COUNT(ts)".to_string(),
    ]);
    if options.approx {
        select.extend(
            SOURCE_COLUMNS
                .iter()
                .map(|c| format!("approx_distinct({c})")),
        );
    }
    let r = rows(ctx, &format!("SELECT {} FROM {t}", select.join(", "))).await?;
    let r = r
        .first()
        .ok_or_else(|| ProfileError::Internal("the count query returned no row".into()))?;
    let total = count(&r[0]);
    let malformed = count(&r[1]);
    let present: Vec<u64> = (0..9).map(|i| count(&r[2 + i])).collect();
    let mut i = 11;
    let mut next = || {
        i += 1;
        &r[i - 1]
    };
    let bad_ts = count(next());
    let unreadable_price = count(next());
    let price_count = count(next());
    let price_cents = decimal(next());
    let price_cents_squared = decimal(next());
    let price_min_raw = next().clone();
    let price_max_raw = next().clone();
    let non_positive = count(next());
    let no_session = count(next());
    let unknown_type = count(next());
    let first = text(next()).map(|s| format!("{s} UTC"));
    let last = text(next()).map(|s| format!("{s} UTC"));
    let with_time = count(next());
    let approx_distinct: Vec<u64> = if options.approx {
        (0..9).map(|_| count(next())).collect()
    } else {
        Vec::new()
    };
    progress.advance(total);
    progress.finish(&format!("{total} rows"));

    // 2. Exact duplicates over the nine source columns (a malformed line by its text).
    progress.start("profile: duplicates", None, "rows");
    let group = SOURCE_COLUMNS
        .iter()
        .map(|c| c.to_string())
        .chain(["raw_line".to_string()])
        .collect::<Vec<_>>()
        .join(", ");
    let r = rows(
        ctx,
        &format!("SELECT COUNT(*) FROM (SELECT 1 AS one FROM {b} GROUP BY {group})"),
    )
    .await?;
    let distinct_rows = r.first().map_or(0, |r| count(&r[0]));
    let duplicates = total.saturating_sub(distinct_rows);
    progress.finish(&format!("{duplicates} exact duplicates"));

    // 3. Distinct values per column.
    let distinct: Vec<u64> = if options.approx {
        approx_distinct
    } else {
        progress.start("profile: distinct values", Some(9), "columns");
        let mut out = Vec::with_capacity(9);
        for c in SOURCE_COLUMNS {
            let r = rows(
                ctx,
                &format!(
                    "SELECT COUNT(*) FROM (SELECT {c} FROM {b} WHERE {c} IS NOT NULL GROUP BY {c})"
                ),
            )
            .await?;
            out.push(r.first().map_or(0, |r| count(&r[0])));
            progress.advance(1);
        }
        progress.finish("9 columns");
        out
    };
    let columns: Vec<ColumnProfile> = SOURCE_COLUMNS
        .iter()
        .enumerate()
        .map(|(i, c)| ColumnProfile {
            name: c.to_string(),
            missing: total - present[i].min(total),
            distinct: distinct[i],
        })
        .collect();

    // 4. Event types, with zero prices.
    progress.start("profile: event types", None, "rows");
    let r = rows(
        ctx,
        &format!(
            "SELECT event_type, COUNT(*) AS n, SUM(CASE WHEN price_value = 0 THEN 1 ELSE 0 END) AS z \
             FROM {t} GROUP BY event_type ORDER BY n DESC, event_type NULLS LAST"
        ),
    )
    .await?;
    let event_types: Vec<ValueCount> = r
        .iter()
        .map(|r| ValueCount {
            value: text(&r[0]),
            rows: count(&r[1]),
        })
        .collect();
    let zero_by_event_type: Vec<ValueCount> = r
        .iter()
        .filter(|r| count(&r[2]) > 0)
        .map(|r| ValueCount {
            value: text(&r[0]),
            rows: count(&r[2]),
        })
        .collect();
    let events_of = |kind: &str| {
        event_types
            .iter()
            .find(|e| e.value.as_deref() == Some(kind))
            .map_or(0, |e| e.rows)
    };
    progress.finish(&format!("{} types", event_types.len()));

    // 5. Rows per day and per hour.
    progress.start("profile: time", None, "rows");
    let r = rows(
        ctx,
        &format!(
            "SELECT ev_day, ev_hour, COUNT(*) AS n, GROUPING(ev_day) AS g FROM {t} \
             WHERE ts IS NOT NULL GROUP BY GROUPING SETS ((ev_day), (ev_hour))"
        ),
    )
    .await?;
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    let mut day_rows: Vec<(NaiveDate, u64)> = Vec::new();
    let mut hours: Vec<HourCount> = (0..24).map(|hour| HourCount { hour, rows: 0 }).collect();
    for row in &r {
        if int(&row[3]) == Some(0) {
            let days = match &row[0] {
                ScalarValue::Date32(Some(d)) => Some(*d),
                other => int(other).map(|d| d as i32),
            };
            if let Some(d) = days
                .and_then(|d| epoch.checked_add_signed(chrono::TimeDelta::try_days(i64::from(d))?))
            {
                day_rows.push((d, count(&row[2])));
            }
        } else if let Some(h) = int(&row[1])
            && let Some(slot) = hours.get_mut(h.clamp(0, 23) as usize)
        {
            slot.rows += count(&row[2]);
        }
    }
    day_rows.sort();
    let mut days: Vec<DayCount> = Vec::new();
    if let (Some(&(lo, _)), Some(&(hi, _))) = (day_rows.first(), day_rows.last()) {
        let mut d = lo;
        let mut k = 0;
        while d <= hi {
            let rows = match day_rows.get(k) {
                Some(&(day, n)) if day == d => {
                    k += 1;
                    n
                }
                _ => 0,
            };
            days.push(DayCount {
                date: d.format("%Y-%m-%d").to_string(),
                rows,
                near_empty: false,
            });
            match d.checked_add_days(Days::new(1)) {
                Some(n) => d = n,
                None => break,
            }
        }
    }
    let median_day_rows = median(&mut days.iter().map(|d| d.rows).collect::<Vec<_>>());
    let near_empty_threshold = median_day_rows * NEAR_EMPTY_SHARE;
    for d in &mut days {
        d.near_empty = (d.rows as f64) < near_empty_threshold;
    }
    let near_empty_days: Vec<String> = days
        .iter()
        .filter(|d| d.near_empty)
        .map(|d| d.date.clone())
        .collect();
    progress.finish(&format!(
        "{} days, {} near-empty",
        days.len(),
        near_empty_days.len()
    ));

    // 6. Prices: quantiles, mass at the maximum, histogram.
    progress.start("profile: prices", None, "rows");
    let price_min = float(&price_min_raw);
    let price_max = float(&price_max_raw);
    let qs = quantiles(
        ctx,
        &format!(
            "SELECT 'price' AS kind, CAST(price_value AS DOUBLE) AS value, COUNT(*) AS c \
             FROM {t} WHERE price_value IS NOT NULL GROUP BY price_value"
        ),
        &[("price", price_count)],
        &PRICE_PERCENTS,
    )
    .await?;
    let price_quantiles: Vec<Quantile> = PRICE_PERCENTS
        .iter()
        .filter_map(|&pct| {
            Some(Quantile {
                p: pct as f64 / 100.0,
                value: quantile_of(&qs, "price", pct)?,
            })
        })
        .collect();
    let (rows_at_max, histogram) = match (price_min, price_max) {
        (Some(min), Some(max)) => {
            let max_literal = format!("CAST('{price_max_raw}' AS DECIMAL(10, 2))");
            // Round bin edges (1, 2 or 5 times a power of ten), about PRICE_BINS of them, from
            // a multiple of the width at or below min(0, min); bins are [from, to).
            let width = nice_step((max - min.min(0.0)).max(0.0), PRICE_BINS as f64);
            let first = (min.min(0.0) / width).floor();
            let bins = ((max / width).floor() - first) as i64 + 1;
            let lo = first * width;
            let r = rows(
                ctx,
                &format!(
                    "SELECT LEAST(GREATEST(CAST(floor(CAST(price_value AS DOUBLE) / {width} - ({first})) AS BIGINT), 0), {}) AS bin, \
                     COUNT(*) AS n, SUM(CASE WHEN price_value = {max_literal} THEN 1 ELSE 0 END) AS at_max \
                     FROM {t} WHERE price_value IS NOT NULL GROUP BY 1 ORDER BY 1",
                    bins - 1
                ),
            )
            .await?;
            let edge = |i: i64| ((lo + width * i as f64) * 1e9).round() / 1e9;
            let mut histogram: Vec<HistogramBin> = (0..bins)
                .map(|i| HistogramBin {
                    from: edge(i),
                    to: edge(i + 1),
                    rows: 0,
                })
                .collect();
            let mut at_max = 0;
            for row in &r {
                if let Some(bin) = int(&row[0]).and_then(|i| histogram.get_mut(i as usize)) {
                    bin.rows += count(&row[1]);
                }
                at_max += count(&row[2]);
            }
            (at_max, histogram)
        }
        _ => (0, Vec::new()),
    };
    progress.finish(&format!("{price_count} prices"));

    // 7. Top categories and brands.
    progress.start("profile: categories and brands", None, "rows");
    let mut tops = Vec::new();
    for c in ["category_code", "brand"] {
        let r = rows(
            ctx,
            &format!(
                "SELECT {c}, COUNT(*) AS n FROM {b} WHERE {c} IS NOT NULL \
                 GROUP BY {c} ORDER BY n DESC, {c} LIMIT {TOP}"
            ),
        )
        .await?;
        tops.push(
            r.iter()
                .map(|r| ValueCount {
                    value: text(&r[0]),
                    rows: count(&r[1]),
                })
                .collect::<Vec<_>>(),
        );
    }
    let top_brands = tops.pop().unwrap_or_default();
    let top_categories = tops.pop().unwrap_or_default();
    progress.finish("top 10 each");

    // 8. Sessions: length, duration, funnel.
    progress.start("profile: sessions", None, "rows");
    let sessions_cte = format!(
        "s AS (SELECT user_session, COUNT(*) AS n, \
         date_part('epoch', MAX(ts)) - date_part('epoch', MIN(ts)) AS dur, \
         MAX(CASE WHEN event_type = 'view' THEN 1 ELSE 0 END) AS v, \
         MAX(CASE WHEN event_type = 'cart' THEN 1 ELSE 0 END) AS c, \
         MAX(CASE WHEN event_type = 'purchase' THEN 1 ELSE 0 END) AS p \
         FROM {t} WHERE user_session IS NOT NULL GROUP BY user_session)"
    );
    let r = rows(
        ctx,
        &format!(
            "WITH {sessions_cte} SELECT COUNT(*), SUM(n), MAX(n), COUNT(dur), SUM(dur), MAX(dur), \
             SUM(v), SUM(v * c), SUM(v * c * p) FROM s"
        ),
    )
    .await?;
    let r = r
        .first()
        .ok_or_else(|| ProfileError::Internal("the session query returned no row".into()))?;
    let sessions = count(&r[0]);
    let events_in_sessions = float(&r[1]);
    let max_length = float(&r[2]);
    let with_duration = count(&r[3]);
    let duration_sum = float(&r[4]);
    let max_duration = float(&r[5]);
    let funnel_sessions = [count(&r[6]), count(&r[7]), count(&r[8])];
    let qs = quantiles(
        ctx,
        &format!(
            "WITH {sessions_cte}, \
             g AS (SELECT CASE WHEN GROUPING(n) = 0 THEN 'length' ELSE 'duration' END AS kind, \
                   CASE WHEN GROUPING(n) = 0 THEN CAST(n AS DOUBLE) ELSE dur END AS value, \
                   COUNT(*) AS c FROM s GROUP BY GROUPING SETS ((n), (dur))) \
             SELECT kind, value, c FROM g WHERE value IS NOT NULL"
        ),
        &[("length", sessions), ("duration", with_duration)],
        &[50, 90],
    )
    .await?;
    let length_events = Distribution {
        mean: ratio(events_in_sessions, sessions),
        p50: quantile_of(&qs, "length", 50),
        p90: quantile_of(&qs, "length", 90),
        max: max_length,
    };
    let duration_seconds = Distribution {
        mean: ratio(duration_sum, with_duration),
        p50: quantile_of(&qs, "duration", 50),
        p90: quantile_of(&qs, "duration", 90),
        max: max_duration,
    };
    progress.finish(&format!("{sessions} sessions"));

    // 9. Purchases without a cart of the same product in the same session.
    progress.start("profile: purchases", None, "rows");
    let r = rows(
        ctx,
        &format!(
            "WITH g AS (SELECT user_session, product_id, \
             SUM(CASE WHEN event_type = 'purchase' THEN 1 ELSE 0 END) AS p, \
             SUM(CASE WHEN event_type = 'cart' THEN 1 ELSE 0 END) AS c \
             FROM {t} WHERE user_session IS NOT NULL AND product_id IS NOT NULL \
             AND event_type IN ('purchase', 'cart') GROUP BY user_session, product_id) \
             SELECT SUM(p), SUM(CASE WHEN c = 0 THEN p ELSE 0 END) FROM g"
        ),
    )
    .await?;
    let (purchases_in_sessions, purchases_without_cart) =
        r.first().map_or((0, 0), |r| (count(&r[0]), count(&r[1])));
    progress.finish(&format!(
        "{purchases_without_cart} of {purchases_in_sessions} without a cart"
    ));

    let missing_of = |name: &str| {
        columns
            .iter()
            .find(|c| c.name == name)
            .map_or(0, |c| c.missing)
    };
    let rule = |id: &str, action: &str, rows: u64| CleaningRule {
        id: id.to_string(),
        action: action.to_string(),
        rows,
        share: share(rows, total),
    };
    let mut cleaning_rules = Vec::new();
    if p.has_lineage {
        cleaning_rules.push(rule(
            "quarantine_malformed_lines",
            "quarantine lines that cannot be split into the nine fields",
            malformed,
        ));
    }
    cleaning_rules.push(rule(
        "drop_exact_duplicates",
        "remove exact duplicate rows (identical in all nine columns), keeping one",
        duplicates,
    ));
    if p.kind == InputKind::Text {
        cleaning_rules.push(rule(
            "drop_bad_timestamps",
            "reject rows whose event_time is not a real instant written YYYY-MM-DD HH:MM:SS UTC",
            bad_ts,
        ));
    }
    cleaning_rules.extend([
        rule(
            "drop_unknown_event_types",
            "reject rows whose event_type is not view, cart, remove_from_cart or purchase",
            unknown_type,
        ),
        rule(
            "drop_unreadable_prices",
            "reject rows whose price is missing or not a number with at most two decimals",
            unreadable_price,
        ),
        rule(
            "fill_brand_unknown",
            "fill a missing brand with `unknown`",
            missing_of("brand"),
        ),
        rule(
            "fill_category_code_unknown",
            "fill a missing category_code with `unknown`",
            missing_of("category_code"),
        ),
        rule(
            "drop_null_session",
            "reject rows without a user_session",
            no_session,
        ),
        rule(
            "drop_non_positive_prices",
            "reject rows with a price of 0.00 or below",
            non_positive,
        ),
    ]);

    let mut notes = Vec::new();
    let sample = options.sample.as_ref().map(|s| SampleInfo {
        fraction: s.fraction,
        seed: s.seed,
        rows: total,
    });
    match &sample {
        Some(s) => notes.push(format!(
            "ESTIMATES: every figure describes a reproducible random sample of {} rows \
             (fraction {} of the input, seed {}); counts are the sample's own, not scaled up.",
            s.rows, s.fraction, s.seed
        )),
        None => notes.push(format!("Exact figures over all {total} rows.")),
    }
    if total == 0 {
        notes.push("The input has no rows.".to_string());
    }
    if options.approx {
        notes.push(
            "Distinct counts are APPROXIMATE (HyperLogLog sketch, --approx); \
             every other figure is computed exactly."
                .to_string(),
        );
    }
    notes.push(
        "Missing means null or the empty string. Cleaning rules are counted independently: \
         a row can fall under several."
            .to_string(),
    );
    if total > with_time {
        notes.push(format!(
            "{} rows without a valid event time are left out of the day and hour counts.",
            total - with_time
        ));
    }

    Ok(Profile {
        format_version: PROFILE_FORMAT_VERSION,
        source: options.source.clone(),
        input_kind: p.kind,
        exact: options.sample.is_none() && !options.approx,
        sample,
        distinct_counts: if options.approx {
            DistinctMethod::Approximate
        } else {
            DistinctMethod::Exact
        },
        notes,
        rows: RowCounts {
            total,
            distinct: distinct_rows,
            duplicates,
            malformed,
        },
        columns,
        price: PriceProfile {
            count: price_count,
            mean: price_cents.and_then(|s| ratio(Some(s as f64 / 100.0), price_count)),
            stddev: sample_stddev(price_count, price_cents, price_cents_squared),
            min: price_min,
            max: price_max,
            quantiles: price_quantiles,
            rows_at_max,
            share_at_max: share(rows_at_max, price_count),
            zero_by_event_type,
            unreadable: unreadable_price,
            histogram,
        },
        time: TimeProfile {
            first,
            last,
            without_valid_time: total - with_time.min(total),
            days,
            median_day_rows,
            near_empty_threshold,
            near_empty_days,
            hours,
        },
        top_categories,
        top_brands,
        sessions: SessionProfile {
            sessions,
            length_events,
            duration_seconds,
            purchases: events_of("purchase"),
            purchases_in_sessions,
            purchases_without_cart,
            share_without_cart: share(purchases_without_cart, purchases_in_sessions),
        },
        funnel: Funnel {
            unit: "sessions".to_string(),
            steps: ["view", "cart", "purchase"]
                .iter()
                .zip(funnel_sessions)
                .map(|(step, sessions)| FunnelStep {
                    step: step.to_string(),
                    sessions,
                    events: events_of(step),
                })
                .collect(),
        },
        event_types,
        cleaning_rules,
    })
}
