//! `shoplake check`: the checks evaluated on the published lake, their outcomes stored in
//! `quality.results`.

use chrono::{DateTime, NaiveDate, Utc};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::error::DataFusionError;
use shoplake_lake::{Accounting, Lake};
use shoplake_sql::SqlCatalog;

use super::{Check, CheckOutcome, DayAccounting, Publication, evaluate_all, write_results};
use crate::error::{QualityError, Result};

/// Per day: raw rows and duplicates as recorded when the day was last built, clean and
/// rejected rows as published now.
const ACCOUNTING: &str = "
WITH built AS (
  SELECT event_date, raw_rows, duplicates FROM (
    SELECT event_date, raw_rows, duplicates,
           ROW_NUMBER() OVER (PARTITION BY event_date ORDER BY processed_at DESC) AS latest
    FROM meta.run_days) WHERE latest = 1),
clean AS (SELECT event_date, COUNT(*) AS n FROM clean.events GROUP BY event_date),
rejected AS (SELECT event_date, COUNT(*) AS n FROM clean.rejects GROUP BY event_date)
SELECT CAST(b.event_date AS VARCHAR), b.raw_rows, COALESCE(c.n, 0), b.duplicates, COALESCE(r.n, 0)
FROM built b
LEFT JOIN clean c ON c.event_date = b.event_date
LEFT JOIN rejected r ON r.event_date = b.event_date
ORDER BY 1";

/// The accounting of every built day, as published.
pub async fn published_accounting(catalog: &SqlCatalog) -> Result<Vec<DayAccounting>> {
    let batches = catalog.sql(ACCOUNTING).await?.collect().await?;
    let mut days = Vec::new();
    for b in &batches {
        let dates = cast(b.column(0), &DataType::Utf8)?;
        let dates = dates.as_string::<i32>();
        let ints: Vec<_> = (1..5)
            .map(|i| cast(b.column(i), &DataType::Int64))
            .collect::<Result<_, _>>()?;
        let int = |c: usize, row: usize| ints[c].as_primitive::<Int64Type>().value(row) as u64;
        for row in 0..b.num_rows() {
            if dates.is_null(row) {
                continue;
            }
            let date = NaiveDate::parse_from_str(dates.value(row), "%Y-%m-%d").map_err(|e| {
                DataFusionError::Execution(format!("meta.run_days holds a bad date: {e}"))
            })?;
            days.push(DayAccounting {
                date,
                rows: Accounting {
                    raw: int(0, row),
                    clean: int(1, row),
                    duplicates: int(2, row),
                    rejected: int(3, row),
                    ..Accounting::default()
                },
            });
        }
    }
    Ok(days)
}

/// What `shoplake check` did.
#[derive(Debug, Clone)]
pub struct PublishedCheck {
    /// The id its outcomes are stored under in `quality.results` (`check-<time>`).
    pub run_id: String,
    /// Every outcome.
    pub outcomes: Vec<CheckOutcome>,
}

/// Evaluates `checks` on the published lake and stores the outcomes in `quality.results`.
pub async fn check_published(
    lake: &Lake,
    checks: &[Check],
    now: DateTime<Utc>,
) -> Result<PublishedCheck> {
    let catalog = SqlCatalog::open(lake).await?;
    let accounting = published_accounting(&catalog).await?;
    let outcomes = evaluate_all(checks, catalog.context(), &accounting, now).await?;
    let run_id = format!("check-{}", now.format("%Y%m%dT%H%M%SZ"));
    let stored: Vec<(CheckOutcome, Publication)> = outcomes
        .iter()
        .map(|o| (o.clone(), Publication::AlreadyPublished))
        .collect();
    write_results(lake, &run_id, now, &stored)
        .await
        .map_err(QualityError::from)?;
    Ok(PublishedCheck { run_id, outcomes })
}
