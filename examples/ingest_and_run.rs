//! Land an export in a lake and bring the lake up to date, with the library crates only:
//! generate a small export, ingest it into `raw.events`, run the pipeline, and print where
//! every raw row went.
//!
//! ```sh
//! cargo run --release -p shoplake-examples --example ingest_and_run [LAKE_DIR]
//! ```
//! Without LAKE_DIR the lake is made in a temporary directory and removed at the end.

use chrono::NaiveDate;
use shoplake_ingest::generate::{GenerateOptions, generate_to_path};
use shoplake_lake::{Lake, NoProgress};
use shoplake_pipeline::{RunOptions, run};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let scratch = tempfile::tempdir()?;
    let lake_dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| scratch.path().join("lake").display().to_string());

    // A week of a small store's events, as the store's export would deliver them.
    let export = scratch.path().join("events.csv");
    let options = GenerateOptions {
        rows: 50_000,
        seed: 42,
        start: NaiveDate::from_ymd_opt(2020, 4, 1).ok_or("bad date")?,
        days: 7,
        gap_day: None,
    };
    generate_to_path(&options, &export, &mut |_| {})?;

    let lake = Lake::open(&lake_dir)?;
    let ingested = shoplake_ingest::ingest_paths(&lake, &[export], &NoProgress).await?;
    println!("ingested {} rows into raw.events", ingested.rows());

    let report = run(&lake, &RunOptions::default(), &NoProgress).await?;
    for day in &report.days {
        println!("{}  {}", day.date, day.rows);
    }
    println!("total       {}", report.total());
    for (table, rows) in &report.dimensions {
        println!("{table}: {rows} rows");
    }
    Ok(())
}
