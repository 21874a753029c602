//! Executing a run: rebuild the planned days, then the dimensions, then record the run.
//!
//! Crash safety: every table write is one atomic Delta commit, and the run's memory
//! (`meta.run_days`, which the planner reads) is written last. A run killed at any point
//! leaves each partition either old or new, and the next run replans the same days and
//! rebuilds them to the same content.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, NaiveDate, Utc};
use shoplake_lake::arrow::array::{
    Date32Array, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use shoplake_lake::arrow::datatypes::SchemaRef;
use shoplake_lake::datafusion::datasource::MemTable;
use shoplake_lake::datafusion::prelude::{DataFrame, SessionContext};
use shoplake_lake::deltalake::kernel::transaction::CommitProperties;
use shoplake_lake::partitions::partition_files;
use shoplake_lake::write::{WriteMode, date_to_days, write_table};
use shoplake_lake::{Lake, Progress, SqlCatalog, tables};

use crate::clean::clean_day;
use crate::error::{PipelineError, Result};
use crate::model::{dim_time, dimensions, fact_user_events};
use crate::plan::{DayReason, RunPlan, Selection, plan};

/// What to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Which days.
    pub selection: Selection,
    /// Only plan; write nothing.
    pub dry_run: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            selection: Selection::Incremental,
            dry_run: false,
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
}

impl RunReport {
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

    let total_raw: u64 = plan
        .days
        .iter()
        .filter_map(|d| d.raw.as_ref().and_then(|r| r.rows))
        .sum();
    progress.start("clean + fact", Some(total_raw), "rows");
    let mut clean_seconds = 0.0;
    for day in &plan.days {
        let day_started = Instant::now();
        let cleaned = clean_day(ctx, day.date).await?;
        let (clean_rows, rejected) = (cleaned.clean_rows(), cleaned.rejected());
        if cleaned.raw_rows != clean_rows + cleaned.duplicates + rejected {
            return Err(PipelineError::Accounting {
                date: day.date,
                raw: cleaned.raw_rows,
                clean: clean_rows,
                duplicates: cleaned.duplicates,
                rejected,
            });
        }
        let replace = || WriteMode::ReplaceDates(vec![day.date]);
        let fact = fact_user_events::from_clean(ctx, cleaned.clean.clone()).await?;
        let clean_df = batches_frame(ctx, tables::clean_events().arrow_schema(), cleaned.clean)?;
        write_table(
            lake,
            &tables::clean_events(),
            clean_df,
            replace(),
            CommitProperties::default(),
        )
        .await?;
        let rejects_df =
            batches_frame(ctx, tables::clean_rejects().arrow_schema(), cleaned.rejects)?;
        write_table(
            lake,
            &tables::clean_rejects(),
            rejects_df,
            replace(),
            CommitProperties::default(),
        )
        .await?;
        write_table(
            lake,
            &tables::fact_user_events(),
            fact,
            replace(),
            CommitProperties::default(),
        )
        .await?;
        let seconds = day_started.elapsed().as_secs_f64();
        clean_seconds += seconds;
        progress.advance(cleaned.raw_rows);
        report.days.push(DayReport {
            date: day.date,
            reason: day.reason,
            raw_rows: cleaned.raw_rows,
            clean_rows,
            duplicates: cleaned.duplicates,
            rejected,
            seconds,
        });
    }
    progress.finish(&format!(
        "{} days, {} clean rows",
        report.days.len(),
        report.total(|d| d.clean_rows)
    ));
    report.steps.push(("clean + fact".into(), clean_seconds));

    let dims_started = Instant::now();
    rebuild_dimensions(lake, &mut report, progress).await?;
    report
        .steps
        .push(("dimensions".into(), dims_started.elapsed().as_secs_f64()));

    report.seconds = started.elapsed().as_secs_f64();
    record_run(lake, &report, &options.selection, started_at).await?;
    Ok(report)
}

/// Rebuilds every dimension from the fact table as it is now.
async fn rebuild_dimensions(
    lake: &Lake,
    report: &mut RunReport,
    progress: &dyn Progress,
) -> Result<()> {
    let catalog = SqlCatalog::open(lake).await?;
    let dims = dimensions::all();
    progress.start("dimensions", Some(dims.len() as u64 + 1), "tables");
    for dim in dims {
        let df = catalog.sql(&dim.sql).await?;
        let table = write_table(
            lake,
            &dim.def,
            df,
            WriteMode::Overwrite,
            CommitProperties::default(),
        )
        .await?;
        report
            .dimensions
            .push((dim.def.qualified_name(), table_rows(&table).await?));
        progress.advance(1);
    }
    let fact = lake.load_or_create(&tables::fact_user_events()).await?;
    let event_days: BTreeSet<NaiveDate> = partition_files(&fact)
        .await?
        .into_values()
        .filter(|p| p.rows != Some(0))
        .map(|p| p.date)
        .collect();
    let calendar = dim_time::calendar(&event_days)?;
    let rows = calendar.num_rows() as u64;
    let ctx = lake.session();
    let df = batches_frame(&ctx, tables::dim_time().arrow_schema(), vec![calendar])?;
    write_table(
        lake,
        &tables::dim_time(),
        df,
        WriteMode::Overwrite,
        CommitProperties::default(),
    )
    .await?;
    report
        .dimensions
        .push((tables::dim_time().qualified_name(), rows));
    progress.advance(1);
    progress.finish("dimensions rebuilt");
    Ok(())
}

/// Rows of a table, from its file statistics.
async fn table_rows(table: &shoplake_lake::deltalake::DeltaTable) -> Result<u64> {
    Ok(shoplake_lake::partitions::table_rows(table).await?)
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
    let df = batches_frame(&ctx, days.schema(), vec![days])?;
    write_table(
        lake,
        &tables::meta_run_days(),
        df,
        WriteMode::Append,
        CommitProperties::default(),
    )
    .await?;

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
    let fact_rows = report.total(|d| d.clean_rows);
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
