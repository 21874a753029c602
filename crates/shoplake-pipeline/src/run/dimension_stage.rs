//! The dimensions of a run: rebuilt from the whole fact table once the days are committed,
//! checked with the fact's referential checks, and published only when no `error` check
//! fails.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Instant;

use chrono::NaiveDate;
use shoplake_lake::datafusion::prelude::{DataFrame, ParquetReadOptions};
use shoplake_lake::deltalake::kernel::transaction::CommitProperties;
use shoplake_lake::overwrite::overwrite_table;
use shoplake_lake::partitions::partition_files;
use shoplake_lake::tables::{self, TableDef};
use shoplake_lake::{Lake, Progress};
use shoplake_quality::checks::{Check, CheckOutcome, Publication};
use shoplake_sql::SqlCatalog;

use super::{RunReport, batches_frame};
use crate::error::{PipelineError, Result};
use crate::model::marts::sessions::session_mart;
use crate::model::{dim_time, dimensions};
use crate::{crash_switch, gates};

/// The progress bar's steps: four dimensions staged, their checks, and six writes (the four,
/// the calendar, the sessions mart).
const STEPS: u64 = 4 + 1 + 6;

/// Rebuilds every dimension from the fact table as it is now; publishes them only when no
/// `error` check on them (or on the fact's keys) fails.
pub(super) async fn rebuild_dimensions(
    lake: &Lake,
    checks: &[Check],
    report: &mut RunReport,
    progress: &dyn Progress,
) -> Result<()> {
    let catalog = SqlCatalog::open(lake).await?;
    progress.start("dimensions", Some(STEPS), "steps");
    // Each dimension is computed once: sessions and users into Parquet files in a scratch
    // directory, products and categories (a batch each) and the calendar in memory. Their
    // checks and writes read those rather than aggregating the fact table again.
    lake.clear_scratch();
    let scratch = lake.scratch_dir(&report.run_id)?;
    let result = stage_check_publish(lake, &catalog, &scratch, checks, report, progress).await;
    lake.clear_scratch();
    result
}

async fn stage_check_publish(
    lake: &Lake,
    catalog: &SqlCatalog,
    scratch: &Path,
    checks: &[Check],
    report: &mut RunReport,
    progress: &dyn Progress,
) -> Result<()> {
    let started = Instant::now();
    let mut candidates = stage(lake, catalog, scratch, report, progress).await?;
    let ctx = catalog.context();
    gates::register_candidates(ctx, &candidates)?;
    // The sessions mart, from the sessions about to be published.
    let sessions_mart = (tables::mart_session_daily(), session_mart(ctx).await?);
    gates::register_candidates(ctx, std::slice::from_ref(&sessions_mart))?;
    candidates.push(sessions_mart);
    report.metrics.dimension_build_seconds = started.elapsed().as_secs_f64();

    // Gate: the dimensions as rebuilt, with the published fact and other tables.
    let started = Instant::now();
    let dim_checks: Vec<&Check> = checks.iter().filter(|c| c.runs_with_dimensions()).collect();
    let outcomes = gates::evaluate_tables(ctx, &dim_checks).await?;
    report.metrics.dimension_checks_seconds = started.elapsed().as_secs_f64();
    progress.advance(1);
    let blocked = outcomes.iter().any(CheckOutcome::blocks);
    let publication = Publication::unless_blocked(blocked);
    report
        .checks
        .extend(outcomes.into_iter().map(|o| (o, publication)));
    if blocked {
        report.dimensions_blocked = true;
        progress.finish("dimensions not published: a check failed");
        return Ok(());
    }

    let started = Instant::now();
    // Side by side, each table with a writer per partition of its rows: dim_sessions alone
    // took most of the time. Each is a commit of its own, in whatever order they finish.
    let writes = candidates.into_iter().map(|(def, df)| async move {
        let writing = Instant::now();
        let table = overwrite_table(lake, &def, df, CommitProperties::default()).await?;
        crash_switch::committed();
        let rows = shoplake_lake::partitions::table_rows(&table).await?;
        tracing::debug!(
            table = %def.qualified_name(),
            rows,
            seconds = writing.elapsed().as_secs_f64(),
            "dimension written"
        );
        progress.advance(1);
        Ok::<_, PipelineError>((def.qualified_name(), rows))
    });
    report
        .dimensions
        .extend(futures::future::try_join_all(writes).await?);
    report.metrics.dimension_writes_seconds = started.elapsed().as_secs_f64();
    progress.finish("dimensions rebuilt");
    Ok(())
}

/// Builds the five dimensions into `scratch` and memory: each as a DataFrame in its table's
/// schema, ready to check and write.
async fn stage(
    lake: &Lake,
    catalog: &SqlCatalog,
    scratch: &Path,
    report: &mut RunReport,
    progress: &dyn Progress,
) -> Result<Vec<(TableDef, DataFrame)>> {
    let ctx = catalog.context();
    let fact = lake.load(&tables::fact_user_events()).await?;
    let fact_days = match &fact {
        Some(fact) => partition_files(fact).await?,
        None => BTreeMap::new(),
    };
    let fact_rows: u64 = fact_days.values().filter_map(|p| p.rows).sum();
    let event_days: BTreeSet<NaiveDate> = fact_days
        .values()
        .filter(|p| p.rows != Some(0))
        .map(|p| p.date)
        .collect();
    let days: Vec<NaiveDate> = event_days.iter().copied().collect();
    // A day being folded holds about 150 MB on the month's data: one day per core.
    let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
    let staged = dimensions::build(ctx, &days, scratch, parallel).await?;
    // Every fact row must have been folded (the partition statistics count the rows each
    // file holds).
    if staged.events != fact_rows {
        return Err(PipelineError::Contract(format!(
            "the dimensions were built from {} fact rows, the fact table holds {fact_rows}",
            staged.events
        )));
    }
    report.metrics.dimension_fold_seconds = staged.fold_seconds;

    let mut candidates: Vec<(TableDef, DataFrame)> = Vec::new();
    for (def, batch) in [
        (tables::dim_products(), staged.products.products),
        (tables::dim_categories(), staged.products.categories),
    ] {
        let frame = batches_frame(ctx, def.arrow_schema(), vec![batch])?;
        candidates.push((def, frame));
        progress.advance(1);
    }
    for (def, paths) in [
        (tables::dim_users(), std::slice::from_ref(&staged.users)),
        (tables::dim_sessions(), staged.sessions.as_slice()),
    ] {
        let paths: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        let frame = ctx
            .read_parquet(paths, ParquetReadOptions::default())
            .await?;
        candidates.push((def, frame));
        progress.advance(1);
    }
    let calendar = dim_time::calendar(&event_days)?;
    candidates.push((
        tables::dim_time(),
        batches_frame(ctx, tables::dim_time().arrow_schema(), vec![calendar])?,
    ));
    Ok(candidates)
}
