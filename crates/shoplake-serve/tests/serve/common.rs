//! Lakes for the tests: the hand-made fixture, and generated events.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde_json::Value;
use shoplake_lake::{Lake, NoProgress};
use shoplake_pipeline::{RunOptions, run};
use shoplake_serve::reports::{ReportParams, run as report};
use shoplake_sql::SqlCatalog;

pub fn fixture_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shoplake-pipeline/tests/fixtures")
        .join(name)
}

/// A lake with `files` ingested and run.
pub async fn lake_of(dir: &Path, files: &[PathBuf]) -> Lake {
    let lake = Lake::open(dir.join("lake").to_str().unwrap()).unwrap();
    shoplake_ingest::ingest_paths(&lake, files, &NoProgress)
        .await
        .unwrap();
    run(&lake, &RunOptions::default(), &NoProgress)
        .await
        .unwrap();
    lake
}

/// A lake of generated events: `rows` over `days` days from 2020-04-01.
pub async fn generated_lake(dir: &Path, rows: u64, days: u32) -> Lake {
    generated_lake_from(
        dir,
        rows,
        NaiveDate::from_ymd_opt(2020, 4, 1).unwrap(),
        days,
    )
    .await
}

/// A lake of generated events: `rows` over `days` days from `start`.
pub async fn generated_lake_from(dir: &Path, rows: u64, start: NaiveDate, days: u32) -> Lake {
    let export = dir.join("events.csv");
    let options = shoplake_ingest::generate::GenerateOptions {
        rows,
        seed: 11,
        start,
        days,
        gap_day: None,
    };
    shoplake_ingest::generate::generate_to_path(&options, &export, &mut |_| {}).unwrap();
    lake_of(dir, &[export]).await
}

/// A report as the API answers it.
pub async fn report_json(lake: &Lake, name: &str, params: &ReportParams) -> Value {
    let catalog = SqlCatalog::open(lake).await.unwrap();
    report(&catalog, name, params).await.unwrap().to_json()
}

/// The rows of one table of a report.
pub fn table<'a>(report: &'a Value, name: &str) -> &'a Vec<Value> {
    report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no table {name} in {report}"))["rows"]
        .as_array()
        .unwrap()
}

/// One number of a row.
pub fn number(row: &Value, column: &str) -> f64 {
    row[column]
        .as_f64()
        .unwrap_or_else(|| panic!("{column} is not a number in {row}"))
}
