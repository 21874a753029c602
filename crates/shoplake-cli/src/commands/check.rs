//! `shoplake check`: the quality checks on the published tables.

use chrono::{NaiveDate, Utc};
use shoplake_lake::arrow::array::{Array, AsArray};
use shoplake_lake::arrow::compute::cast;
use shoplake_lake::arrow::datatypes::{DataType, Int64Type};
use shoplake_lake::{Lake, SqlCatalog};
use shoplake_quality::checks::{
    CheckOutcome, DayAccounting, Severity, evaluate_all, write_results,
};

use crate::cli::CheckArgs;
use crate::config::Settings;
use crate::{Exit, gate, usage};

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

async fn accounting(catalog: &SqlCatalog) -> Result<Vec<DayAccounting>, Exit> {
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
            days.push(DayAccounting {
                date: NaiveDate::parse_from_str(dates.value(row), "%Y-%m-%d")?,
                raw: int(0, row),
                clean: int(1, row),
                duplicates: int(2, row),
                rejected: int(3, row),
            });
        }
    }
    Ok(days)
}

pub async fn run(lake: &Lake, settings: &Settings, args: &CheckArgs) -> Result<(), Exit> {
    let checks: Vec<_> = match &args.table {
        Some(table) => {
            if shoplake_lake::tables::by_name(table).is_none() {
                return Err(usage(anyhow::anyhow!(
                    "unknown table '{table}'; tables are named layer.table, e.g. clean.events"
                )));
            }
            settings
                .checks
                .iter()
                .filter(|c| &c.table == table)
                .cloned()
                .collect()
        }
        None => settings.checks.clone(),
    };
    let catalog = SqlCatalog::open(lake).await?;
    let now = Utc::now();
    let outcomes = evaluate_all(
        &checks,
        catalog.context(),
        &accounting(&catalog).await?,
        now,
    )
    .await?;
    let run_id = format!("check-{}", now.format("%Y%m%dT%H%M%SZ"));
    let stored: Vec<(CheckOutcome, &str)> = outcomes.iter().map(|o| (o.clone(), "-")).collect();
    write_results(lake, &run_id, now, &stored).await?;

    let failed: Vec<&CheckOutcome> = outcomes.iter().filter(|o| !o.passed).collect();
    println!(
        "{} checks evaluated, {} passed, {} failed (results stored as run {run_id} in quality.results)",
        outcomes.len(),
        outcomes.len() - failed.len(),
        failed.len()
    );
    if !failed.is_empty() {
        print_failures(&failed);
    }
    let errors = failed
        .iter()
        .filter(|o| o.check.severity == Severity::Error)
        .count();
    if errors > 0 {
        return Err(gate(anyhow::anyhow!(
            "{errors} check(s) of severity error failed"
        )));
    }
    Ok(())
}

/// One line per failed check, with up to three offending rows under it.
pub fn print_failures(failures: &[&CheckOutcome]) {
    for o in failures {
        let day = o.partition.map(|d| format!(" [{d}]")).unwrap_or_default();
        println!(
            "  {:<5} {}{} {}: {} (required: {})",
            o.check.severity, o.check.table, day, o.check.name, o.observed, o.threshold
        );
        for row in o.sample.iter().take(3) {
            println!("          {row}");
        }
    }
}
