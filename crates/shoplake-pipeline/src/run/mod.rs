//! Executing a run: rebuild the planned days (`days.rs`), then the month marts
//! (`month_stage.rs`) and the dimensions (`dimension_stage.rs`), then record the run
//! (`record.rs`).
//!
//! Crash safety: every table write is one atomic Delta commit, and the run's memory
//! (`meta.run_days`, which the planner reads) is written last. A run killed at any point
//! leaves each partition either old or new, and the next run replans the same days and
//! rebuilds them to the same content.

mod days;
mod dimension_stage;
mod month_stage;
mod record;
mod report;

use std::time::Instant;

use chrono::{DateTime, Utc};
use shoplake_lake::{Lake, Progress};
use shoplake_quality::checks::Check;
use shoplake_sql::SqlCatalog;

use crate::clean::rules::RuleOptions;
use crate::error::Result;
use crate::plan::{Selection, plan};

pub use report::{DayReport, RunMetrics, RunReport};

/// What to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Which days.
    pub selection: Selection,
    /// Only plan; write nothing.
    pub dry_run: bool,
    /// Checks that gate publishing (default: the built-in checks).
    pub checks: Vec<Check>,
    /// The cleaning rules' settings (`[rules]`).
    pub rules: RuleOptions,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            selection: Selection::Incremental,
            dry_run: false,
            checks: shoplake_quality::checks::builtin(),
            rules: RuleOptions::default(),
        }
    }
}

/// Runs the pipeline.
pub async fn run(lake: &Lake, options: &RunOptions, progress: &dyn Progress) -> Result<RunReport> {
    let started = Instant::now();
    let started_at = Utc::now();
    let catalog = SqlCatalog::open(lake).await?;
    let plan = plan(&catalog, &options.selection).await?;
    let mut report = RunReport {
        plan: plan.clone(),
        dry_run: options.dry_run,
        ..RunReport::default()
    };
    if options.dry_run || plan.is_empty() {
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    }
    report.run_id = new_run_id(started_at);

    days::rebuild_days(lake, &catalog, options, &mut report, progress).await?;
    if !report.days.is_empty() {
        month_stage::rebuild_months(lake, &mut report, progress).await?;
        let dimensions = Instant::now();
        dimension_stage::rebuild_dimensions(lake, &options.checks, &mut report, progress).await?;
        report.metrics.dimensions_seconds = dimensions.elapsed().as_secs_f64();
    }

    report.seconds = started.elapsed().as_secs_f64();
    record::record_run(lake, &report, &options.selection, started_at).await?;
    Ok(report)
}

fn new_run_id(now: DateTime<Utc>) -> String {
    let salt = xxhash_rust::xxh3::xxh3_64(
        format!(
            "{}{}",
            now.timestamp_nanos_opt().unwrap_or_default(),
            std::process::id()
        )
        .as_bytes(),
    );
    format!("{}-{:08x}", now.format("%Y%m%dT%H%M%SZ"), salt as u32)
}

/// A DataFrame over batches already in memory (may be empty).
fn batches_frame(
    ctx: &shoplake_lake::datafusion::prelude::SessionContext,
    schema: shoplake_lake::arrow::datatypes::SchemaRef,
    batches: Vec<shoplake_lake::arrow::array::RecordBatch>,
) -> Result<shoplake_lake::datafusion::prelude::DataFrame> {
    let table = shoplake_lake::datafusion::datasource::MemTable::try_new(schema, vec![batches])?;
    Ok(ctx.read_table(std::sync::Arc::new(table))?)
}
