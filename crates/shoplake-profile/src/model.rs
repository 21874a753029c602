//! The figures of a profile, as plain data.
//!
//! One struct tree, serialised as the `--format json` document (field names are the stable
//! schema; [`PROFILE_FORMAT_VERSION`] changes when a field changes meaning or disappears) and
//! rendered as text, Markdown or HTML by [`super::render`]. Counts are `u64`; prices, means and
//! quantiles are `f64` (prices have two decimals, so their `f64` is exact to the cent).

use serde::{Deserialize, Serialize};

/// Version of the JSON document's schema.
pub const PROFILE_FORMAT_VERSION: u32 = 1;

/// Everything a profile found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Schema version of this document ([`PROFILE_FORMAT_VERSION`]).
    pub format_version: u32,
    /// What was profiled (a file path or a table name), as given by the caller.
    pub source: String,
    /// Whether the input held the export's text columns or typed lake columns.
    pub input_kind: InputKind,
    /// True when every figure is exact: no sample and no sketches.
    pub exact: bool,
    /// The sample the figures describe, when one was drawn.
    pub sample: Option<SampleInfo>,
    /// How distinct values were counted.
    pub distinct_counts: DistinctMethod,
    /// Caveats a reader must see next to the figures (sample, sketches, definitions).
    pub notes: Vec<String>,
    /// Row counts and exact duplicates.
    pub rows: RowCounts,
    /// Missing and distinct values of each of the nine source columns, in source order.
    pub columns: Vec<ColumnProfile>,
    /// Rows per event_type, most frequent first (a missing type has `value: null`).
    pub event_types: Vec<ValueCount>,
    /// Price statistics.
    pub price: PriceProfile,
    /// Time range, rows per day and per hour, near-empty days.
    pub time: TimeProfile,
    /// The ten most frequent category codes (missing excluded).
    pub top_categories: Vec<ValueCount>,
    /// The ten most frequent brands (missing excluded).
    pub top_brands: Vec<ValueCount>,
    /// Session length and duration, purchases without a cart.
    pub sessions: SessionProfile,
    /// The conversion funnel view -> cart -> purchase.
    pub funnel: Funnel,
    /// Suggested cleaning rules, each with the rows it would affect.
    pub cleaning_rules: Vec<CleaningRule>,
}

/// Shape of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputKind {
    /// The export's nine text columns (a CSV file, `raw.events`): timestamps and prices are
    /// parsed, and rows whose text does not parse are counted.
    Text,
    /// Typed lake columns (`clean.events`, `model.fact_user_events`).
    Typed,
}

/// How distinct values were counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DistinctMethod {
    /// Exact (`COUNT(DISTINCT)` as a spilling GROUP BY).
    Exact,
    /// HyperLogLog sketch (`approx_distinct`), typically within a few percent.
    Approximate,
}

/// The reproducible sample the figures describe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleInfo {
    /// Fraction of rows drawn, in (0, 1].
    pub fraction: f64,
    /// Seed of the draw: the same seed draws the same rows.
    pub seed: u64,
    /// Rows in the sample (every count in the profile is the sample's own, not scaled).
    pub rows: u64,
}

/// Row counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowCounts {
    /// Rows profiled.
    pub total: u64,
    /// Distinct rows over the nine source columns (as delivered; a malformed line by its text).
    pub distinct: u64,
    /// Exact duplicates: `total - distinct`.
    pub duplicates: u64,
    /// Lines that could not be split into nine fields (inputs with lineage columns only).
    pub malformed: u64,
}

/// One source column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnProfile {
    /// Column name (`user_session` also for a table that calls it `session_id`).
    pub name: String,
    /// Rows where it is null or the empty string.
    pub missing: u64,
    /// Distinct non-missing values (approximate when `distinct_counts` says so).
    pub distinct: u64,
}

/// A value and how many rows have it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValueCount {
    /// The value; `None` for missing.
    pub value: Option<String>,
    /// Rows.
    pub rows: u64,
}

/// One quantile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quantile {
    /// The probability, e.g. 0.25.
    pub p: f64,
    /// The value (linear interpolation between closest ranks, like `percentile_cont`).
    pub value: f64,
}

/// One bar of the price histogram: rows with `from <= price < to`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistogramBin {
    /// Lower bound.
    pub from: f64,
    /// Upper bound.
    pub to: f64,
    /// Rows.
    pub rows: u64,
}

/// Price statistics (the seed's table E and more).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceProfile {
    /// Rows with a readable price.
    pub count: u64,
    /// Mean.
    pub mean: Option<f64>,
    /// Sample standard deviation.
    pub stddev: Option<f64>,
    /// Minimum.
    pub min: Option<f64>,
    /// Maximum (the price cap in a real export).
    pub max: Option<f64>,
    /// p01, p25, p50, p75, p99 (exact).
    pub quantiles: Vec<Quantile>,
    /// Rows whose price equals the maximum (mass at the cap).
    pub rows_at_max: u64,
    /// `rows_at_max / count`.
    pub share_at_max: f64,
    /// Rows with price 0.00, per event_type (types without any are left out).
    pub zero_by_event_type: Vec<ValueCount>,
    /// Rows with a price that is missing or not a number with at most two decimals.
    pub unreadable: u64,
    /// Histogram of prices in equal-width bins with round edges (about 30, covering 0 and every
    /// price).
    pub histogram: Vec<HistogramBin>,
}

/// Rows of one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayCount {
    /// `YYYY-MM-DD` (UTC).
    pub date: String,
    /// Rows.
    pub rows: u64,
    /// Fewer rows than 10 % of the median day.
    pub near_empty: bool,
}

/// Rows of one hour of the day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HourCount {
    /// 0-23 (UTC).
    pub hour: u32,
    /// Rows.
    pub rows: u64,
}

/// Time range and volume over time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeProfile {
    /// First valid event time, `YYYY-MM-DD HH:MM:SS UTC`.
    pub first: Option<String>,
    /// Last valid event time.
    pub last: Option<String>,
    /// Rows without a valid event time (missing or unreadable).
    pub without_valid_time: u64,
    /// Every day from the first to the last, days without rows included.
    pub days: Vec<DayCount>,
    /// Median rows per day over `days`.
    pub median_day_rows: f64,
    /// A day below this many rows is near-empty (10 % of the median).
    pub near_empty_threshold: f64,
    /// The near-empty days.
    pub near_empty_days: Vec<String>,
    /// Rows per hour of day, all 24 hours.
    pub hours: Vec<HourCount>,
}

/// Summary of a distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    /// Mean.
    pub mean: Option<f64>,
    /// Median (exact).
    pub p50: Option<f64>,
    /// 90th percentile (exact).
    pub p90: Option<f64>,
    /// Maximum.
    pub max: Option<f64>,
}

/// Sessions (rows with a session id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionProfile {
    /// Distinct sessions.
    pub sessions: u64,
    /// Events per session.
    pub length_events: Distribution,
    /// Seconds from a session's first to its last valid event time.
    pub duration_seconds: Distribution,
    /// Purchase rows (all).
    pub purchases: u64,
    /// Purchase rows that have a session and a product.
    pub purchases_in_sessions: u64,
    /// Of those, purchases with no cart event of the same product in the same session.
    pub purchases_without_cart: u64,
    /// `purchases_without_cart / purchases_in_sessions`.
    pub share_without_cart: f64,
}

/// One step of the funnel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunnelStep {
    /// `view`, `cart` or `purchase`.
    pub step: String,
    /// Sessions that reached this step through all the earlier ones (a session with a view,
    /// with a view and a cart, with a view, a cart and a purchase).
    pub sessions: u64,
    /// Events of this type (all rows).
    pub events: u64,
}

/// The conversion funnel view -> cart -> purchase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Funnel {
    /// What the chart counts: `sessions` (nested: each step counts the sessions that also have
    /// all earlier steps).
    pub unit: String,
    /// view, cart, purchase.
    pub steps: Vec<FunnelStep>,
}

/// A suggested cleaning rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CleaningRule {
    /// Stable identifier, e.g. `drop_exact_duplicates`.
    pub id: String,
    /// What to do, in words.
    pub action: String,
    /// Rows it would affect (rules are counted independently: a row can fall under several).
    pub rows: u64,
    /// `rows / total`.
    pub share: f64,
}
