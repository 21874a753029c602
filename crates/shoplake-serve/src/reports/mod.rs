//! The BI reports: each answers one question of the original design from the marts, over a
//! range of days, optionally for one category (a code or any of its prefixes:
//! `electronics` takes in `electronics.smartphone`) and one brand.
//!
//! Every figure is exact. Counts of events, revenue and units add up across days and are
//! summed from the day rows. Figures that do not add up are computed over the range, never
//! summed: distinct users are the distinct user ids of `model.mart_user_daily` in the range;
//! sessions are counted on the day they start (`model.mart_session_daily`), so each session
//! counts once; medians (session duration, events per session, prices) come from the exact
//! counts of each value over the range (a weighted median), not from per-day medians.
//!
//! The category and brand filters apply to what the events carry (events, revenue, products,
//! categories, brands, prices). Users and sessions are kept per day and user, not per
//! product: a report that shows them under a filter says that they are the store's.

mod funnel;
mod prices;
mod products;
mod ranking;
mod sessions;
mod summary;
pub mod table;
mod trends;
mod users;

use chrono::NaiveDate;
use serde::Serialize;
use shoplake_lake::arrow::array::{Array, AsArray};
use shoplake_lake::arrow::compute::cast;
use shoplake_lake::arrow::datatypes::DataType;
use shoplake_sql::{SqlCatalog, SqlError};

pub use table::Table;

/// Default rows of a ranking.
pub const DEFAULT_LIMIT: usize = 20;
/// Most rows a ranking may ask for.
pub const MAX_LIMIT: usize = 10_000;
/// Default minimum views of a product in the "high traffic, low conversion" list.
pub const DEFAULT_MIN_VIEWS: u64 = 100;

/// What a report is asked for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReportParams {
    /// First day (default: the lake's first).
    pub from: Option<NaiveDate>,
    /// Last day, included (default: the lake's last).
    pub to: Option<NaiveDate>,
    /// A category code, or a prefix of one at a dot.
    pub category: Option<String>,
    /// A brand.
    pub brand: Option<String>,
    /// Rows of a ranking (default [`DEFAULT_LIMIT`]).
    pub limit: Option<usize>,
    /// Minimum views of the products report's "high traffic, low conversion" list.
    pub min_views: Option<u64>,
}

/// A report that could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// No report has that name.
    #[error("no report named '{name}'; the reports are {}", known.join(", "))]
    UnknownReport {
        /// The name asked for.
        name: String,
        /// The reports there are.
        known: Vec<String>,
    },
    /// The parameters make no sense (a range that ends before it starts, a limit of 0).
    #[error("{0}")]
    BadParams(String),
    /// Reading the marts failed.
    #[error(transparent)]
    Sql(#[from] SqlError),
}

impl ReportError {
    /// Whether the caller asked for something wrong (a usage error, an HTTP 400).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            ReportError::UnknownReport { .. } | ReportError::BadParams(_)
        )
    }
}

impl From<shoplake_lake::datafusion::error::DataFusionError> for ReportError {
    fn from(e: shoplake_lake::datafusion::error::DataFusionError) -> Self {
        ReportError::Sql(e.into())
    }
}

/// A report, listed.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct ReportInfo {
    /// Its name (`shoplake report NAME`, `/api/reports/NAME`).
    pub name: &'static str,
    /// Its title.
    pub title: &'static str,
    /// The question it answers.
    pub answers: &'static str,
}

/// Every report.
pub const REPORTS: [ReportInfo; 9] = [
    ReportInfo {
        name: "summary",
        title: "Summary",
        answers: "The headline figures of the period: events, revenue, purchases, users, sessions and the share of sessions that buy.",
    },
    ReportInfo {
        name: "funnel",
        title: "Conversion funnel",
        answers: "How many go from a view to a cart to a purchase, counted by events, by sessions and by users, with each step's conversion and drop-off, per day and for the period.",
    },
    ReportInfo {
        name: "products",
        title: "Products",
        answers: "Which products are viewed most, how often their views turn into carts and purchases, and which draw much traffic but convert poorly.",
    },
    ReportInfo {
        name: "sessions",
        title: "Sessions",
        answers: "How many sessions a user has, how long a session lasts and how many events it holds (averages, medians, distributions).",
    },
    ReportInfo {
        name: "categories",
        title: "Categories",
        answers: "Which categories bring the most revenue and units, with their views and conversion.",
    },
    ReportInfo {
        name: "brands",
        title: "Brands",
        answers: "Which brands bring the most revenue and units, with their views and conversion.",
    },
    ReportInfo {
        name: "trends",
        title: "Trends",
        answers: "When the store is busy: events by hour of day, by day and by ISO week, per event type.",
    },
    ReportInfo {
        name: "prices",
        title: "Prices",
        answers: "The average, median and range of the prices the events carried, by category and by brand.",
    },
    ReportInfo {
        name: "users",
        title: "Users",
        answers: "The most active users, and the recurrent ones: active on several days, buying on several days.",
    },
];

/// Every report.
pub fn list() -> &'static [ReportInfo] {
    &REPORTS
}

/// A report made: its range, the filters, notes on how to read it, and its tables.
#[derive(Debug, Clone)]
pub struct Report {
    /// The report's name.
    pub name: &'static str,
    /// Its title.
    pub title: &'static str,
    /// The range reported on (the lake's days when not asked; `None` for an empty lake).
    pub range: Option<(NaiveDate, NaiveDate)>,
    /// The filters applied.
    pub category: Option<String>,
    /// See `category`.
    pub brand: Option<String>,
    /// How to read it (which figures a filter leaves out, what a threshold is).
    pub notes: Vec<String>,
    /// Its tables.
    pub tables: Vec<Table>,
}

impl Report {
    /// The report as the JSON API answers it.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "report": self.name,
            "title": self.title,
            "from": self.range.map(|r| r.0.to_string()),
            "to": self.range.map(|r| r.1.to_string()),
            "category": self.category,
            "brand": self.brand,
            "notes": self.notes,
            "tables": self.tables.iter().map(Table::to_json).collect::<Vec<_>>(),
        })
    }
}

/// What every report's queries share: the range and filters as SQL.
pub(crate) struct Scope<'a> {
    pub catalog: &'a SqlCatalog,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub category: Option<String>,
    pub brand: Option<String>,
    pub limit: usize,
    pub min_views: u64,
}

impl Scope<'_> {
    /// `event_date` within the range.
    pub fn days(&self) -> String {
        format!(
            "event_date BETWEEN DATE '{}' AND DATE '{}'",
            self.from, self.to
        )
    }

    /// The days, and the category and brand filters, for a table with `category_code` and
    /// `brand` (`model.mart_product_daily`).
    pub fn product_rows(&self) -> String {
        let mut filter = self.days();
        if let Some(c) = &self.category {
            let c = literal(c);
            filter.push_str(&format!(
                " AND (category_code = {c} OR starts_with(category_code, {c} || '.'))"
            ));
        }
        if let Some(b) = &self.brand {
            filter.push_str(&format!(" AND brand = {}", literal(b)));
        }
        filter
    }

    /// Whether a category or brand filter is set.
    pub fn filtered(&self) -> bool {
        self.category.is_some() || self.brand.is_some()
    }

    /// A table from a query.
    pub async fn table(&self, name: &str, title: &str, sql: &str) -> Result<Table, ReportError> {
        let frame = self.catalog.sql(sql).await?;
        let schema = frame.schema().inner().clone();
        let batches = frame.collect().await?;
        Ok(Table::new(name, title, schema, batches))
    }
}

/// A SQL string literal.
pub(crate) fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The first and last day of the lake's marts, `None` when it has none.
async fn lake_range(catalog: &SqlCatalog) -> Result<Option<(NaiveDate, NaiveDate)>, ReportError> {
    let sql = "SELECT CAST(MIN(event_date) AS VARCHAR), CAST(MAX(event_date) AS VARCHAR) \
               FROM model.mart_funnel_daily";
    let batches = catalog.sql(sql).await?.collect().await?;
    let Some(b) = batches.iter().find(|b| b.num_rows() > 0) else {
        return Ok(None);
    };
    let day = |c: usize| -> Option<NaiveDate> {
        let text = cast(b.column(c), &DataType::Utf8).ok()?;
        let text = text.as_string::<i32>();
        (!text.is_null(0))
            .then(|| NaiveDate::parse_from_str(text.value(0), "%Y-%m-%d").ok())
            .flatten()
    };
    Ok(day(0).zip(day(1)))
}

/// Checks `params` against the report's rules (whatever the lake holds).
pub fn validate(name: &str, params: &ReportParams) -> Result<&'static ReportInfo, ReportError> {
    let Some(info) = REPORTS.iter().find(|r| r.name == name) else {
        return Err(ReportError::UnknownReport {
            name: name.to_string(),
            known: list().iter().map(|r| r.name.to_string()).collect(),
        });
    };
    if let (Some(from), Some(to)) = (params.from, params.to)
        && from > to
    {
        return Err(ReportError::BadParams(format!(
            "the range ends ({to}) before it starts ({from}); give from <= to"
        )));
    }
    if let Some(limit) = params.limit
        && !(1..=MAX_LIMIT).contains(&limit)
    {
        return Err(ReportError::BadParams(format!(
            "limit {limit} is outside 1..={MAX_LIMIT}"
        )));
    }
    for (what, value) in [("category", &params.category), ("brand", &params.brand)] {
        if value
            .as_deref()
            .is_some_and(|v| v.trim().is_empty() || v.len() > 200)
        {
            return Err(ReportError::BadParams(format!(
                "the {what} filter must be 1 to 200 characters"
            )));
        }
    }
    Ok(info)
}

/// Makes report `name` over the lake as `catalog` sees it.
pub async fn run(
    catalog: &SqlCatalog,
    name: &str,
    params: &ReportParams,
) -> Result<Report, ReportError> {
    let info = validate(name, params)?;
    let mut report = Report {
        name: info.name,
        title: info.title,
        range: None,
        category: params.category.clone(),
        brand: params.brand.clone(),
        notes: Vec::new(),
        tables: Vec::new(),
    };
    let Some((first, last)) = lake_range(catalog).await? else {
        report.notes.push(
            "the lake has no events yet: `shoplake ingest` an export, then `shoplake run`".into(),
        );
        return Ok(report);
    };
    let from = params.from.unwrap_or(first);
    let to = params.to.unwrap_or(last);
    if from > to {
        return Err(ReportError::BadParams(format!(
            "the range {from} to {to} is empty (the lake holds {first} to {last})"
        )));
    }
    report.range = Some((from, to));
    let scope = Scope {
        catalog,
        from,
        to,
        category: params.category.clone(),
        brand: params.brand.clone(),
        limit: params.limit.unwrap_or(DEFAULT_LIMIT),
        min_views: params.min_views.unwrap_or(DEFAULT_MIN_VIEWS),
    };
    let (tables, notes) = match info.name {
        "summary" => summary::build(&scope).await?,
        "funnel" => funnel::build(&scope).await?,
        "products" => products::build(&scope).await?,
        "sessions" => sessions::build(&scope).await?,
        "categories" => ranking::build(&scope, ranking::By::Category).await?,
        "brands" => ranking::build(&scope, ranking::By::Brand).await?,
        "trends" => trends::build(&scope).await?,
        "prices" => prices::build(&scope).await?,
        "users" => users::build(&scope).await?,
        other => unreachable!("{other} is listed but not built"),
    };
    report.tables = tables;
    report.notes.extend(notes);
    Ok(report)
}

/// The note of a report whose user or session figures a filter does not narrow.
pub(crate) fn store_wide(scope: &Scope<'_>, what: &str) -> Option<String> {
    scope.filtered().then(|| {
        format!("{what} are the whole store's: the category and brand filters apply to what the events carry")
    })
}
