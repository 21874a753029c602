//! Executing a run: rebuild the planned days, then the dimensions, then record the run.
//!
//! Crash safety: every table write is one atomic Delta commit, and the run's memory
//! (`meta.run_days`, which the planner reads) is written last. A run killed at any point
//! leaves each partition either old or new, and the next run replans the same days and
//! rebuilds them to the same content.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, NaiveDate, Utc};
use shoplake_lake::arrow::array::{
    Date32Array, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use shoplake_lake::arrow::datatypes::SchemaRef;
use shoplake_lake::datafusion::datasource::MemTable;
use shoplake_lake::datafusion::prelude::{DataFrame, ParquetReadOptions, SessionContext};
use shoplake_lake::deltalake::DeltaTable;
use shoplake_lake::deltalake::kernel::transaction::CommitProperties;
use shoplake_lake::overwrite::overwrite_table;
use shoplake_lake::partitions::partition_files;
use shoplake_lake::replace_day::replace_day;
use shoplake_lake::tables::TableDef;
use shoplake_lake::write::{WriteMode, checkpoint, date_to_days, write_table};
use shoplake_lake::{Lake, Progress, SqlCatalog, tables};
use shoplake_quality::checks::{Check, CheckOutcome, DayAccounting, write_results};

use crate::clean::{CleanDay, clean_day};
use crate::error::{PipelineError, Result};
use crate::model::{dim_time, dimensions, fact_user_events};
use crate::plan::{DayReason, PlannedDay, RunPlan, Selection, plan};
use crate::{crash_switch, gates};

/// What to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Which days.
    pub selection: Selection,
    /// Only plan; write nothing.
    pub dry_run: bool,
    /// Checks that gate publishing (default: the built-in checks).
    pub checks: Vec<Check>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            selection: Selection::Incremental,
            dry_run: false,
            checks: shoplake_quality::checks::builtin(),
        }
    }
}

/// The outcome of one day.
#[derive(Debug, Clone, PartialEq)]
pub struct DayReport {
    /// The day.
    pub date: NaiveDate,
    /// Why it was rebuilt.
    pub reason: DayReason,
    /// Raw rows read.
    pub raw_rows: u64,
    /// Clean rows written.
    pub clean_rows: u64,
    /// Exact duplicates removed.
    pub duplicates: u64,
    /// Rows quarantined.
    pub rejected: u64,
    /// Fact rows written.
    pub fact_rows: u64,
    /// Wall time of the day.
    pub seconds: f64,
}

/// The outcome of a run (the metrics also written to `meta.runs`).
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    /// Run id (empty for a dry run or a run with nothing to do).
    pub run_id: String,
    /// The plan that was executed.
    pub plan: RunPlan,
    /// One entry per rebuilt day.
    pub days: Vec<DayReport>,
    /// Rows of each rebuilt dimension.
    pub dimensions: Vec<(String, u64)>,
    /// Wall time per step.
    pub steps: Vec<(String, f64)>,
    /// Wall time of the run.
    pub seconds: f64,
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// Every check evaluated, with whether the data it checked was published.
    pub checks: Vec<(CheckOutcome, String)>,
    /// Days not published because an `error` check failed on them.
    pub blocked_days: Vec<NaiveDate>,
    /// Whether the dimensions were not published because an `error` check failed.
    pub dimensions_blocked: bool,
}

impl RunReport {
    /// Whether an `error` check stopped something from being published (exit code 3).
    pub fn gate_failed(&self) -> bool {
        !self.blocked_days.is_empty() || self.dimensions_blocked
    }

    /// The failed checks, errors first.
    pub fn failures(&self) -> Vec<&CheckOutcome> {
        let mut failed: Vec<&CheckOutcome> = self
            .checks
            .iter()
            .map(|(o, _)| o)
            .filter(|o| !o.passed)
            .collect();
        failed.sort_by_key(|o| o.check.severity != shoplake_quality::checks::Severity::Error);
        failed
    }

    /// Sum of a per-day figure.
    pub fn total(&self, f: impl Fn(&DayReport) -> u64) -> u64 {
        self.days.iter().map(f).sum()
    }
}

/// A DataFrame over batches already in memory (may be empty).
fn batches_frame(
    ctx: &SessionContext,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
) -> Result<DataFrame> {
    let table = MemTable::try_new(schema, vec![batches])?;
    Ok(ctx.read_table(Arc::new(table))?)
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
    let ctx = catalog.context();
    let day_checks: Vec<&Check> = options
        .checks
        .iter()
        .filter(|c| !c.runs_with_dimensions())
        .collect();
    // Rows per published clean day, for the row_count check's trailing median.
    let mut clean_day_rows: BTreeMap<NaiveDate, u64> =
        match lake.load(&tables::clean_events()).await? {
            Some(t) => partition_files(&t)
                .await?
                .into_values()
                .map(|p| (p.date, p.rows.unwrap_or(0)))
                .collect(),
            None => BTreeMap::new(),
        };

    // A planned day's raw rows, from the partition statistics (0 when unknown).
    let raw_rows = |day: &PlannedDay| day.raw.as_ref().and_then(|r| r.rows).unwrap_or(0);
    let total_raw: u64 = plan.days.iter().map(raw_rows).sum();
    progress.start("clean + fact", Some(total_raw), "rows");
    let mut clean_seconds = 0.0;
    // Parts of it: waiting for the day's cleaning (what the write of the day before did not
    // hide), the day's checks, and its three writes.
    let (mut wait_seconds, mut check_seconds, mut write_seconds) = (0.0, 0.0, 0.0);
    // The next day is cleaned while the current one is checked and written: the cleaning and
    // the day's two large writes share the cores.
    let mut prefetch: Option<tokio::task::JoinHandle<Result<CleanDay>>> = None;
    // Loaded once: each day's commits move these handles forward.
    let mut day_tables = DayTables::open(lake).await?;
    for (i, day) in plan.days.iter().enumerate() {
        let day_started = Instant::now();
        let cleaned = match prefetch.take() {
            Some(task) => task.await.map_err(|e| {
                PipelineError::Usage(format!("cleaning {} stopped: {e}", day.date))
            })??,
            None => clean_day(ctx, day.date, raw_rows(day)).await?,
        };
        wait_seconds += day_started.elapsed().as_secs_f64();
        if let Some(next) = plan.days.get(i + 1) {
            let (ctx, date, rows) = (ctx.clone(), next.date, raw_rows(next));
            prefetch = Some(tokio::spawn(
                async move { clean_day(&ctx, date, rows).await },
            ));
        }
        let (clean_rows, rejected) = (cleaned.clean_rows(), cleaned.rejected());
        let day_rows = DayRows {
            fact: fact_user_events::from_clean(&cleaned.clean)?,
            clean: cleaned.clean,
            rejects: cleaned.rejects,
        };
        let frame = |def: TableDef, batches: &[RecordBatch]| {
            batches_frame(ctx, def.arrow_schema(), batches.to_vec())
        };

        // Gate: the day's checks run on exactly the rows about to be published.
        gates::register_candidates(
            ctx,
            &[
                (
                    tables::clean_events(),
                    frame(tables::clean_events(), &day_rows.clean)?,
                ),
                (
                    tables::clean_rejects(),
                    frame(tables::clean_rejects(), &day_rows.rejects)?,
                ),
                (
                    tables::fact_user_events(),
                    frame(tables::fact_user_events(), &day_rows.fact)?,
                ),
            ],
        )?;
        let accounting = DayAccounting {
            date: day.date,
            raw: cleaned.raw_rows,
            clean: clean_rows,
            duplicates: cleaned.duplicates,
            rejected,
        };
        let trailing = |n: u32| -> Vec<u64> {
            let from = day.date - chrono::Duration::days(i64::from(n));
            from.iter_days()
                .take_while(|d| *d < day.date)
                .map(|d| clean_day_rows.get(&d).copied().unwrap_or(0))
                .collect()
        };
        let checks_started = Instant::now();
        let outcomes =
            gates::evaluate_day(ctx, &day_checks, day.date, accounting, &trailing).await?;
        check_seconds += checks_started.elapsed().as_secs_f64();
        let blocked = outcomes.iter().any(CheckOutcome::blocks);
        let published = if blocked { "no" } else { "yes" };
        report
            .checks
            .extend(outcomes.into_iter().map(|o| (o, published.to_string())));
        progress.advance(cleaned.raw_rows);
        if blocked {
            report.blocked_days.push(day.date);
            continue;
        }

        let writes_started = Instant::now();
        day_tables = day_tables.replace(lake, day.date, day_rows).await?;
        write_seconds += writes_started.elapsed().as_secs_f64();

        // Verify what was committed, from the tables' own statistics.
        let written_clean = rows_of_day(&day_tables.clean, day.date).await?;
        let written_rejects = rows_of_day(&day_tables.rejects, day.date).await?;
        let fact_rows = rows_of_day(&day_tables.fact, day.date).await?;
        if cleaned.raw_rows != written_clean + cleaned.duplicates + written_rejects
            || fact_rows != written_clean
        {
            return Err(PipelineError::Accounting {
                date: day.date,
                raw: cleaned.raw_rows,
                clean: written_clean,
                duplicates: cleaned.duplicates,
                rejected: written_rejects,
            });
        }
        clean_day_rows.insert(day.date, written_clean);
        let seconds = day_started.elapsed().as_secs_f64();
        clean_seconds += seconds;
        report.days.push(DayReport {
            date: day.date,
            reason: day.reason,
            raw_rows: cleaned.raw_rows,
            clean_rows: written_clean,
            duplicates: cleaned.duplicates,
            rejected: written_rejects,
            fact_rows,
            seconds,
        });
    }
    if !report.days.is_empty() {
        let started = Instant::now();
        day_tables.checkpoint().await;
        write_seconds += started.elapsed().as_secs_f64();
    }
    progress.finish(&format!(
        "{} days, {} clean rows",
        report.days.len(),
        report.total(|d| d.clean_rows)
    ));
    report.steps.push(("clean + fact".into(), clean_seconds));
    report
        .steps
        .push(("clean + fact: waiting for cleaning".into(), wait_seconds));
    report
        .steps
        .push(("clean + fact: day checks".into(), check_seconds));
    report
        .steps
        .push(("clean + fact: day writes".into(), write_seconds));

    if !report.days.is_empty() {
        let dims_started = Instant::now();
        rebuild_dimensions(lake, &options.checks, &mut report, progress).await?;
        report
            .steps
            .push(("dimensions".into(), dims_started.elapsed().as_secs_f64()));
    }

    report.seconds = started.elapsed().as_secs_f64();
    record_run(lake, &report, &options.selection, started_at).await?;
    Ok(report)
}

/// The three tables a run rewrites day by day.
struct DayTables {
    clean: DeltaTable,
    rejects: DeltaTable,
    fact: DeltaTable,
}

/// One day's rows for each of them.
struct DayRows {
    clean: Vec<RecordBatch>,
    rejects: Vec<RecordBatch>,
    fact: Vec<RecordBatch>,
}

impl DayTables {
    async fn open(lake: &Lake) -> Result<Self> {
        Ok(DayTables {
            clean: lake.load_or_new(&tables::clean_events()).await?,
            rejects: lake.load_or_new(&tables::clean_rejects()).await?,
            fact: lake.load_or_new(&tables::fact_user_events()).await?,
        })
    }

    /// A checkpoint of each: a run commits each of them once per day. Only a speed-up for
    /// readers, so a failure is a warning: the days are committed already.
    async fn checkpoint(&self) {
        for (table, def) in [
            (&self.clean, tables::clean_events()),
            (&self.rejects, tables::clean_rejects()),
            (&self.fact, tables::fact_user_events()),
        ] {
            if let Err(e) = checkpoint(table, &def.qualified_name()).await {
                tracing::warn!("no checkpoint of {}: {e}", def.qualified_name());
            }
        }
    }

    /// Replaces `date` in all three tables: one commit each.
    ///
    /// The fact is encoded on another worker thread while clean and rejects are written here
    /// (each write encodes on one thread), beside the next day's cleaning. The three
    /// commits are independent; until `meta.run_days` records the day, a crash between them
    /// only means the next run rebuilds it.
    async fn replace(self, lake: &Lake, date: NaiveDate, rows: DayRows) -> Result<Self> {
        let fact_write = {
            let (lake, table) = (lake.clone(), self.fact);
            tokio::spawn(async move {
                replace_one(&lake, table, tables::fact_user_events(), date, rows.fact).await
            })
        };
        let clean_and_rejects = async {
            let clean = replace_one(lake, self.clean, tables::clean_events(), date, rows.clean);
            let clean = clean.await?;
            let rejects = replace_one(
                lake,
                self.rejects,
                tables::clean_rejects(),
                date,
                rows.rejects,
            );
            Ok::<_, shoplake_lake::LakeError>((clean, rejects.await?))
        }
        .await;
        // Wait for the fact's write whatever happened here, so no write outlives the run.
        let fact = fact_write.await.map_err(|e| {
            PipelineError::Usage(format!("writing the fact of {date} stopped: {e}"))
        })?;
        let (clean, rejects) = clean_and_rejects?;
        Ok(DayTables {
            clean,
            rejects,
            fact: fact?,
        })
    }
}

/// Replaces `date` in one table, then tells the crash switch (tests) that a commit landed.
async fn replace_one(
    lake: &Lake,
    table: DeltaTable,
    def: TableDef,
    date: NaiveDate,
    rows: Vec<RecordBatch>,
) -> shoplake_lake::Result<DeltaTable> {
    let table = replace_day(lake, table, &def, date, rows, CommitProperties::default()).await?;
    crash_switch::committed();
    Ok(table)
}

/// Rows of one day partition of a table just written, from its statistics.
async fn rows_of_day(table: &DeltaTable, date: NaiveDate) -> Result<u64> {
    let days = partition_files(table).await?;
    Ok(days.get(&date).and_then(|p| p.rows).unwrap_or(0))
}

/// Rebuilds every dimension from the fact table as it is now; publishes them only when no
/// `error` check on them (or on the fact's keys) fails.
async fn rebuild_dimensions(
    lake: &Lake,
    checks: &[Check],
    report: &mut RunReport,
    progress: &dyn Progress,
) -> Result<()> {
    let catalog = SqlCatalog::open(lake).await?;
    // Each table (the two folded catalog ones, sessions and users, the calendar) is built and
    // written, and the checks are one step more; the calendar is built with them.
    let built = 5;
    progress.start("dimensions", Some(2 * built), "steps");
    // Each dimension is computed once: sessions and users into Parquet files in a scratch
    // directory, the catalog ones (a batch each, one row per product or category) and the
    // calendar in memory. Their checks and writes read those rather than aggregating the
    // fact table again.
    lake.clear_scratch();
    let scratch = lake.scratch_dir(&report.run_id)?;
    let result = stage_check_publish(lake, &catalog, &scratch, checks, report, progress).await;
    lake.clear_scratch();
    result
}

async fn stage_check_publish(
    lake: &Lake,
    catalog: &SqlCatalog,
    scratch: &std::path::Path,
    checks: &[Check],
    report: &mut RunReport,
    progress: &dyn Progress,
) -> Result<()> {
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
    let mut candidates: Vec<(TableDef, DataFrame)> = Vec::new();
    let started = Instant::now();
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
    report.steps.push((
        "build model.dim_products, dim_categories, dim_sessions, dim_users".into(),
        started.elapsed().as_secs_f64(),
    ));
    report
        .steps
        .push(("build dimensions: days".into(), staged.seconds.0));
    for (def, batch) in [
        (tables::dim_products(), staged.catalog.products),
        (tables::dim_categories(), staged.catalog.categories),
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

    // Gate: the dimensions as rebuilt, with the published fact and other tables.
    let started = Instant::now();
    gates::register_candidates(ctx, &candidates)?;
    let dim_checks: Vec<&Check> = checks.iter().filter(|c| c.runs_with_dimensions()).collect();
    let outcomes = gates::evaluate_tables(ctx, &dim_checks).await?;
    report
        .steps
        .push(("dimension checks".into(), started.elapsed().as_secs_f64()));
    progress.advance(1);
    let blocked = outcomes.iter().any(CheckOutcome::blocks);
    let published = if blocked { "no" } else { "yes" };
    report
        .checks
        .extend(outcomes.into_iter().map(|o| (o, published.to_string())));
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
    report
        .steps
        .push(("dimension writes".into(), started.elapsed().as_secs_f64()));
    progress.finish("dimensions rebuilt");
    Ok(())
}

async fn record_run(
    lake: &Lake,
    report: &RunReport,
    selection: &Selection,
    started_at: DateTime<Utc>,
) -> Result<()> {
    let finished_at = Utc::now();
    let ctx = lake.session();
    let n = report.days.len();
    let micros = |t: DateTime<Utc>| t.timestamp_micros();
    let fingerprints: Vec<String> = report
        .days
        .iter()
        .map(|d| {
            report
                .plan
                .days
                .iter()
                .find(|p| p.date == d.date)
                .and_then(|p| p.raw.as_ref())
                .map(|r| r.fingerprint.clone())
                .unwrap_or_default()
        })
        .collect();
    let col_i64 = |f: &dyn Fn(&DayReport) -> u64| {
        Arc::new(Int64Array::from(
            report.days.iter().map(|d| f(d) as i64).collect::<Vec<_>>(),
        ))
    };
    let days = RecordBatch::try_new(
        tables::meta_run_days().arrow_schema(),
        vec![
            Arc::new(StringArray::from(vec![report.run_id.as_str(); n])),
            Arc::new(Date32Array::from(
                report
                    .days
                    .iter()
                    .map(|d| date_to_days(d.date))
                    .collect::<Vec<_>>(),
            )),
            col_i64(&|d| d.raw_rows),
            col_i64(&|d| d.clean_rows),
            col_i64(&|d| d.duplicates),
            col_i64(&|d| d.rejected),
            Arc::new(StringArray::from(fingerprints)),
            Arc::new(
                TimestampMicrosecondArray::from(vec![micros(finished_at); n]).with_timezone("UTC"),
            ),
        ],
    )?;
    // With the dimensions held back, the days are not marked built: the next run rebuilds
    // them (to the same content) and, with them, the dimensions.
    if !report.dimensions_blocked {
        let df = batches_frame(&ctx, days.schema(), vec![days])?;
        write_table(
            lake,
            &tables::meta_run_days(),
            df,
            WriteMode::Append,
            CommitProperties::default(),
        )
        .await?;
        crash_switch::committed();
    }

    let trigger = match selection {
        Selection::Incremental => "incremental".to_string(),
        Selection::Dates(d) => match (d.first(), d.last()) {
            (Some(a), Some(b)) if a == b => format!("date {a}"),
            (Some(a), Some(b)) => format!("dates {a}..{b}"),
            _ => "dates".to_string(),
        },
    };
    let steps = serde_json::to_string(
        &report
            .steps
            .iter()
            .cloned()
            .collect::<std::collections::BTreeMap<_, _>>(),
    )
    .unwrap_or_default();
    let fact_rows = report.total(|d| d.fact_rows);
    let run = RecordBatch::try_new(
        tables::meta_runs().arrow_schema(),
        vec![
            Arc::new(StringArray::from(vec![report.run_id.as_str()])),
            Arc::new(
                TimestampMicrosecondArray::from(vec![micros(started_at)]).with_timezone("UTC"),
            ),
            Arc::new(
                TimestampMicrosecondArray::from(vec![micros(finished_at)]).with_timezone("UTC"),
            ),
            Arc::new(StringArray::from(vec![trigger])),
            Arc::new(Int64Array::from(vec![n as i64])),
            Arc::new(Int64Array::from(vec![report.total(|d| d.raw_rows) as i64])),
            Arc::new(Int64Array::from(
                vec![report.total(|d| d.clean_rows) as i64],
            )),
            Arc::new(Int64Array::from(
                vec![report.total(|d| d.duplicates) as i64],
            )),
            Arc::new(Int64Array::from(vec![report.total(|d| d.rejected) as i64])),
            Arc::new(Int64Array::from(vec![fact_rows as i64])),
            Arc::new(Float64Array::from(vec![report.seconds])),
            Arc::new(StringArray::from(vec![steps])),
        ],
    )?;
    let df = batches_frame(&ctx, run.schema(), vec![run])?;
    let outcomes: Vec<(CheckOutcome, &str)> = report
        .checks
        .iter()
        .map(|(o, p)| (o.clone(), p.as_str()))
        .collect();
    write_results(lake, &report.run_id, finished_at, &outcomes).await?;
    crash_switch::committed();
    write_table(
        lake,
        &tables::meta_runs(),
        df,
        WriteMode::Append,
        CommitProperties::default(),
    )
    .await?;
    Ok(())
}
