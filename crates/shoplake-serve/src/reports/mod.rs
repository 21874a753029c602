//! The BI reports: each answers one question of the original design from the marts, over a
//! range of days, optionally for one category (a code or any of its prefixes:
//! `electronics` takes in `electronics.smartphone`) and one brand.
//!
//! Every figure is exact. Counts of events, revenue and units add up across days and are
//! summed from the day rows. Figures that do not add up are computed over the range, never
//! summed: distinct users are the distinct user ids of the user marts' rows in the range;
//! sessions are counted on the day they start (`model.mart_session_daily`), so each session
//! counts once; medians (session duration, events per session, prices) come from the exact
//! counts of each value over the range (a weighted median), not from per-day medians.
//!
//! The months a range covers whole are read from the month marts (`model.mart_user_monthly`,
//! `model.mart_product_monthly`), its other days from the day marts (`split.rs`): a user's
//! or a product's month row is the sum of its day rows, and a user is one row a month, so
//! users over one month need no grouping at all. A month mart is used only while the day
//! mart it was built from is unchanged (its commit records that day mart's version); a lake
//! whose run stopped before the month marts were rewritten is read from its days.
//!
//! The category and brand filters apply to what the events carry (events, revenue, products,
//! categories, brands, prices). Users and sessions are kept per day and user, not per
//! product: a report that shows them under a filter says that they are the store's.

mod funnel;
mod prices;
mod products;
mod ranking;
mod sessions;
mod split;
mod summary;
pub mod table;
mod trends;
mod users;

use chrono::NaiveDate;
use serde::Serialize;
use shoplake_lake::arrow::array::{Array, AsArray};
use shoplake_lake::arrow::compute::cast;
use shoplake_lake::arrow::datatypes::DataType;
use shoplake_lake::built_from;
use shoplake_lake::tables::{self, TableDef};
use shoplake_sql::{SqlCatalog, SqlError};

use split::Split;

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
    /// Where the range's user rows come from.
    pub users: Split,
    /// Where the range's product rows come from.
    pub products: Split,
}

/// The per-user columns of [`Scope::user_rows`].
const USER_COLUMNS: &str =
    "user_id, active_days, purchase_days, events, views, carts, removes, purchases, revenue";
/// The columns of [`Scope::product_source`].
const PRODUCT_COLUMNS: &str = "product_id, category_id, category_code, category_l1, brand, price, \
                               views, carts, removes, purchases, revenue";

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
        format!("{}{}", self.days(), self.product_filters())
    }

    /// One row per user active in the range (the columns of [`USER_COLUMNS`]): `active_days`
    /// and `purchase_days` are the days of the range the user had an event, and bought.
    pub fn user_rows(&self) -> String {
        let split = &self.users;
        let monthly = split.month_filter().map(|months| {
            format!("SELECT {USER_COLUMNS} FROM model.mart_user_monthly WHERE {months}")
        });
        if split.is_one_month()
            && let Some(one_month) = monthly
        {
            // A user is one row a month.
            return one_month;
        }
        let daily = split.day_filter().map(|days| {
            format!(
                "SELECT user_id, 1 AS active_days,
                        CASE WHEN purchases > 0 THEN 1 ELSE 0 END AS purchase_days,
                        events, views, carts, removes, purchases, revenue
                 FROM model.mart_user_daily WHERE {days}"
            )
        });
        let rows: Vec<String> = daily.into_iter().chain(monthly).collect();
        format!(
            "SELECT user_id, SUM(active_days) AS active_days, SUM(purchase_days) AS purchase_days,
                    SUM(events) AS events, SUM(views) AS views, SUM(carts) AS carts,
                    SUM(removes) AS removes, SUM(purchases) AS purchases, SUM(revenue) AS revenue
             FROM ({}) GROUP BY user_id",
            rows.join(" UNION ALL ")
        )
    }

    /// The users active in the range whose rows meet `condition` (on the user marts'
    /// columns: `views > 0`), counted: over one month the month's rows, otherwise the
    /// distinct user ids of the months' and days' rows (counted by one key: fast).
    pub fn distinct_users(&self, condition: Option<&str>) -> String {
        let split = &self.users;
        let and = condition.map(|c| format!(" AND {c}")).unwrap_or_default();
        let monthly = split.month_filter().map(|months| {
            format!("SELECT user_id FROM model.mart_user_monthly WHERE {months}{and}")
        });
        if split.is_one_month()
            && let Some(one_month) = monthly
        {
            return format!("(SELECT COUNT(*) FROM ({one_month}))");
        }
        let daily = split
            .day_filter()
            .map(|days| format!("SELECT user_id FROM model.mart_user_daily WHERE {days}{and}"));
        let rows: Vec<String> = daily.into_iter().chain(monthly).collect();
        format!(
            "(SELECT COUNT(*) FROM (SELECT user_id, COUNT(*) FROM ({}) GROUP BY user_id))",
            rows.join(" UNION ALL ")
        )
    }

    /// The range's product rows under the category and brand filters (the columns of
    /// [`PRODUCT_COLUMNS`], not grouped: a product has a row per price, and per day or month).
    pub fn product_source(&self) -> String {
        let split = &self.products;
        let filters = self.product_filters();
        let daily = split.day_filter().map(|days| {
            format!("SELECT {PRODUCT_COLUMNS} FROM model.mart_product_daily WHERE {days}{filters}")
        });
        let monthly = split.month_filter().map(|months| {
            format!(
                "SELECT {PRODUCT_COLUMNS} FROM model.mart_product_monthly WHERE {months}{filters}"
            )
        });
        let rows: Vec<String> = daily.into_iter().chain(monthly).collect();
        rows.join(" UNION ALL ")
    }

    /// ` AND ...` for the category and brand filters (empty without).
    fn product_filters(&self) -> String {
        let mut filter = String::new();
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

/// How `from..=to` (over a lake with events from `first` to `last`) reads the rows that
/// `month_mart` adds up by month from `day_mart`: its whole months from the month mart when
/// that was built from the day mart as it is now, every day from the day mart otherwise.
async fn month_split(
    catalog: &SqlCatalog,
    (from, to, first, last): (NaiveDate, NaiveDate, NaiveDate, NaiveDate),
    month_mart: TableDef,
    day_mart: TableDef,
) -> Result<Split, ReportError> {
    let split = Split::new(from, to, first, last);
    if split.months.is_empty() {
        return Ok(split);
    }
    let Some(months) = catalog.table(&month_mart).await? else {
        return Ok(Split::days(from, to));
    };
    let days = catalog.table(&day_mart).await?.and_then(|t| t.version());
    let fresh = built_from::is_built_from(&months, &day_mart, days)
        .await
        .map_err(SqlError::from)?;
    Ok(if fresh { split } else { Split::days(from, to) })
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
    let users = month_split(
        catalog,
        (from, to, first, last),
        tables::mart_user_monthly(),
        tables::mart_user_daily(),
    )
    .await?;
    let products = month_split(
        catalog,
        (from, to, first, last),
        tables::mart_product_monthly(),
        tables::mart_product_daily(),
    )
    .await?;
    let scope = Scope {
        catalog,
        from,
        to,
        category: params.category.clone(),
        brand: params.brand.clone(),
        limit: params.limit.unwrap_or(DEFAULT_LIMIT),
        min_views: params.min_views.unwrap_or(DEFAULT_MIN_VIEWS),
        users,
        products,
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
