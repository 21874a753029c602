//! The days of a run: each planned day is cleaned, turned into fact rows, checked, and
//! written to `clean.events`, `clean.rejects` and the fact, one commit each, while the next
//! day is already being cleaned.

use std::sync::Arc;
use std::time::Instant;

use chrono::NaiveDate;
use shoplake_lake::arrow::array::RecordBatch;
use shoplake_lake::datafusion::prelude::SessionContext;
use shoplake_lake::deltalake::DeltaTable;
use shoplake_lake::deltalake::kernel::transaction::CommitProperties;
use shoplake_lake::partitions::partition_files;
use shoplake_lake::replace_day::replace_day;
use shoplake_lake::tables::{self, TableDef};
use shoplake_lake::write::checkpoint;
use shoplake_lake::{Accounting, Lake, Progress};
use shoplake_quality::checks::{Check, CheckOutcome, DayAccounting, DayRows, Publication};
use shoplake_sql::SqlCatalog;
use tokio::task::JoinHandle;

use super::{DayReport, RunOptions, RunReport, batches_frame};
use crate::clean::categories::{KnownCategories, may_hold_scientific_ids};
use crate::clean::rules::{RuleOptions, ScientificIds};
use crate::clean::{CleanDay, CleanRules, clean_day};
use crate::error::{PipelineError, Result};
use crate::model::fact_user_events;
use crate::model::marts::{DayMarts, day_marts};
use crate::plan::{PlannedDay, RunPlan};
use crate::{crash_switch, gates};

/// Rebuilds every planned day of `report.plan`, recording each in `report`.
pub(super) async fn rebuild_days(
    lake: &Lake,
    catalog: &SqlCatalog,
    options: &RunOptions,
    report: &mut RunReport,
    progress: &dyn Progress,
) -> Result<()> {
    let plan = report.plan.clone();
    let ctx = catalog.context();
    let rules = Arc::new(clean_rules(catalog, &plan, options.rules).await?);
    let checks: Vec<&Check> = options
        .checks
        .iter()
        .filter(|c| !c.runs_with_dimensions())
        .collect();
    // Loaded once: each day's commits move these handles forward.
    let mut tables = DayTables::open(lake).await?;
    // Rows per published day of each table, for the row_count checks' trailing median.
    let mut history = tables.history().await?;

    let total_raw: u64 = plan.days.iter().map(raw_rows).sum();
    progress.start("clean + fact", Some(total_raw), "rows");
    // The next day is cleaned while the current one is checked and written: the cleaning and
    // the day's two large writes share the cores.
    let mut prefetch: Option<JoinHandle<Result<CleanDay>>> = None;
    for (i, day) in plan.days.iter().enumerate() {
        let started = Instant::now();
        let cleaned = match prefetch.take() {
            Some(task) => task
                .await
                .map_err(|e| PipelineError::stopped(format!("cleaning {}", day.date), e))??,
            None => clean_day(ctx, day.date, raw_rows(day), &rules).await?,
        };
        report.metrics.waiting_for_cleaning_seconds += started.elapsed().as_secs_f64();
        if let Some(next) = plan.days.get(i + 1) {
            let (ctx, date, rows, rules) = (ctx.clone(), next.date, raw_rows(next), rules.clone());
            prefetch = Some(tokio::spawn(async move {
                clean_day(&ctx, date, rows, &rules).await
            }));
        }
        progress.advance(cleaned.raw_rows);
        tables = process_day(
            lake,
            ctx,
            &checks,
            &mut history,
            tables,
            day,
            cleaned,
            report,
        )
        .await?;
        let seconds = started.elapsed().as_secs_f64();
        report.metrics.days_seconds += seconds;
        if let Some(published) = report.days.last_mut().filter(|d| d.date == day.date) {
            published.seconds = seconds;
        }
    }
    if !report.days.is_empty() {
        let started = Instant::now();
        tables.checkpoint().await;
        report.metrics.day_writes_seconds += started.elapsed().as_secs_f64();
    }
    progress.finish(&format!(
        "{} days, {} clean rows",
        report.days.len(),
        report.total().clean
    ));
    Ok(())
}

/// The run's cleaning rules: the categories that repair spreadsheet-mangled ids are read only
/// when the planned days may hold such ids (and the rules repair them).
async fn clean_rules(
    catalog: &SqlCatalog,
    plan: &RunPlan,
    options: RuleOptions,
) -> Result<CleanRules> {
    let days: Vec<NaiveDate> = plan.days.iter().map(|d| d.date).collect();
    let repairing = options.scientific_ids == ScientificIds::Repair;
    let known = if repairing && may_hold_scientific_ids(catalog, &days).await? {
        let known = KnownCategories::from_lake(catalog, &days).await?;
        tracing::info!(
            "{} known categories to repair category ids in scientific notation",
            known.len()
        );
        Some(Arc::new(known))
    } else {
        None
    };
    Ok(CleanRules { options, known })
}

/// A planned day's raw rows, from the partition statistics (0 when unknown).
fn raw_rows(day: &PlannedDay) -> u64 {
    day.raw.as_ref().and_then(|r| r.rows).unwrap_or(0)
}

/// One day: the fact rows from the clean ones, the day's checks on exactly the rows about to
/// be published, then (unless an `error` check failed) the three writes and their
/// verification against the tables' statistics.
#[allow(clippy::too_many_arguments)]
async fn process_day(
    lake: &Lake,
    ctx: &SessionContext,
    checks: &[&Check],
    history: &mut DayRows,
    tables: DayTables,
    day: &PlannedDay,
    cleaned: CleanDay,
    report: &mut RunReport,
) -> Result<DayTables> {
    let accounting = cleaned.accounting()?;
    let fact = fact_user_events::from_clean(&cleaned.clean)?;
    let marts = day_marts(&fact, day.date)?;
    let rows = DayBatches {
        fact,
        clean: cleaned.clean,
        rejects: cleaned.rejects,
        marts,
    };

    // Gate: the day's checks run on exactly the rows about to be published.
    let frame = |def: TableDef, batches: &[RecordBatch]| {
        batches_frame(ctx, def.arrow_schema(), batches.to_vec()).map(|f| (def, f))
    };
    gates::register_candidates(
        ctx,
        &[
            frame(tables::clean_events(), &rows.clean)?,
            frame(tables::clean_rejects(), &rows.rejects)?,
            frame(tables::fact_user_events(), &rows.fact)?,
        ],
    )?;
    let checks_started = Instant::now();
    let day_accounting = DayAccounting {
        date: day.date,
        rows: accounting,
    };
    let outcomes = gates::evaluate_day(ctx, checks, day.date, day_accounting, history).await?;
    report.metrics.day_checks_seconds += checks_started.elapsed().as_secs_f64();
    let blocked = outcomes.iter().any(CheckOutcome::blocks);
    let publication = Publication::unless_blocked(blocked);
    report
        .checks
        .extend(outcomes.into_iter().map(|o| (o, publication)));
    if blocked {
        report.blocked_days.push(day.date);
        return Ok(tables);
    }

    let writes_started = Instant::now();
    let tables = tables.replace(lake, day.date, rows).await?;
    report.metrics.day_writes_seconds += writes_started.elapsed().as_secs_f64();

    // Verify what was committed, from the tables' own statistics.
    let committed = tables.rows_of_day(day.date).await?;
    let written = Accounting {
        clean: committed.clean,
        rejected: committed.rejects,
        ..accounting
    };
    if !written.balances() || committed.fact != committed.clean {
        return Err(PipelineError::Accounting {
            date: day.date,
            rows: written,
        });
    }
    history.set(
        &tables::clean_events().qualified_name(),
        day.date,
        committed.clean,
    );
    history.set(
        &tables::clean_rejects().qualified_name(),
        day.date,
        committed.rejects,
    );
    history.set(
        &tables::fact_user_events().qualified_name(),
        day.date,
        committed.fact,
    );
    report.days.push(DayReport {
        date: day.date,
        reason: day.reason,
        rows: written,
        fact_rows: committed.fact,
        // Set by the caller, which times the day from its cleaning on.
        seconds: 0.0,
    });
    Ok(tables)
}

/// The tables a run rewrites day by day: clean, rejects, the fact, and the day marts.
struct DayTables {
    clean: DeltaTable,
    rejects: DeltaTable,
    fact: DeltaTable,
    /// The day marts, in the order of [`mart_defs`].
    marts: Vec<DeltaTable>,
}

/// The day marts' tables.
fn mart_defs() -> [TableDef; 4] {
    [
        tables::mart_funnel_daily(),
        tables::mart_hourly(),
        tables::mart_product_daily(),
        tables::mart_user_daily(),
    ]
}

/// One day's rows for each of them.
struct DayBatches {
    clean: Vec<RecordBatch>,
    rejects: Vec<RecordBatch>,
    fact: Vec<RecordBatch>,
    marts: DayMarts,
}

/// Rows of one day in each of them, as committed.
struct Committed {
    clean: u64,
    rejects: u64,
    fact: u64,
}

impl DayTables {
    async fn open(lake: &Lake) -> Result<Self> {
        Ok(DayTables {
            clean: lake.load_or_new(&tables::clean_events()).await?,
            rejects: lake.load_or_new(&tables::clean_rejects()).await?,
            fact: lake.load_or_new(&tables::fact_user_events()).await?,
            marts: {
                let mut marts = Vec::new();
                for def in mart_defs() {
                    marts.push(lake.load_or_new(&def).await?);
                }
                marts
            },
        })
    }

    fn each(&self) -> [(&DeltaTable, TableDef); 3] {
        [
            (&self.clean, tables::clean_events()),
            (&self.rejects, tables::clean_rejects()),
            (&self.fact, tables::fact_user_events()),
        ]
    }

    /// Rows per published day of each, from the partition statistics.
    async fn history(&self) -> Result<DayRows> {
        let mut history = DayRows::default();
        for (table, def) in self.each() {
            if table.version().is_none() {
                continue;
            }
            for p in partition_files(table).await?.into_values() {
                history.set(&def.qualified_name(), p.date, p.rows.unwrap_or(0));
            }
        }
        Ok(history)
    }

    /// Rows of `date` in each, from the statistics of the files just committed.
    async fn rows_of_day(&self, date: NaiveDate) -> Result<Committed> {
        let rows = |table: &DeltaTable| {
            let table = table.clone();
            async move {
                let days = partition_files(&table).await?;
                Ok::<_, PipelineError>(days.get(&date).and_then(|p| p.rows).unwrap_or(0))
            }
        };
        Ok(Committed {
            clean: rows(&self.clean).await?,
            rejects: rows(&self.rejects).await?,
            fact: rows(&self.fact).await?,
        })
    }

    /// A checkpoint of each: a run commits each of them once per day. Only a speed-up for
    /// readers, so a failure is a warning: the days are committed already.
    async fn checkpoint(&self) {
        let marts = self.marts.iter().zip(mart_defs());
        let each = self.each().into_iter().chain(marts);
        for (table, def) in each {
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
    async fn replace(self, lake: &Lake, date: NaiveDate, rows: DayBatches) -> Result<Self> {
        // The fact, then the day marts (small), on a worker of their own.
        let fact_write = {
            let (lake, table, marts) = (lake.clone(), self.fact, self.marts);
            let m = rows.marts;
            tokio::spawn(async move {
                let fact =
                    replace_one(&lake, table, tables::fact_user_events(), date, rows.fact).await?;
                let mut written = Vec::with_capacity(marts.len());
                let batches = [m.funnel, m.hourly, m.products, m.users];
                for ((table, def), batches) in marts.into_iter().zip(mart_defs()).zip(batches) {
                    written.push(replace_one(&lake, table, def, date, batches).await?);
                }
                Ok::<_, shoplake_lake::LakeError>((fact, written))
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
        let fact = fact_write
            .await
            .map_err(|e| PipelineError::stopped(format!("writing the fact of {date}"), e))?;
        let (clean, rejects) = clean_and_rejects?;
        let (fact, marts) = fact?;
        Ok(DayTables {
            clean,
            rejects,
            fact,
            marts,
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
