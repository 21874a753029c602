//! Planning a run: which days to rebuild, and why.
//!
//! The planner compares, for every `event_date`, the raw files that are in `raw.events` now
//! with the fingerprint of the raw files the day was last built from (`meta.run_days`).
//! A day is rebuilt when it is new, when its files changed (late data, a re-delivered file),
//! or when the user asks for it. It looks at what changed, never at the wall clock, so late
//! events for an old day are picked up by the next run.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::NaiveDate;
use shoplake_lake::arrow::array::{AsArray, RecordBatch};
use shoplake_lake::arrow::datatypes::{Date32Type, TimestampMicrosecondType};
use shoplake_lake::partitions::{PartitionFiles, partition_files};
use shoplake_lake::tables;
use shoplake_lake::time::days_to_date;
use shoplake_sql::SqlCatalog;

use crate::error::{PipelineError, Result};

/// Which days a run considers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Every day whose raw data changed since it was last built.
    Incremental,
    /// Exactly these days (from `--date` or `--from/--to`), whether changed or not.
    Dates(BTreeSet<NaiveDate>),
}

impl Selection {
    /// Every day from `from` to `to`, inclusive.
    pub fn range(from: NaiveDate, to: NaiveDate) -> Result<Self> {
        if to < from {
            return Err(PipelineError::Usage(format!(
                "--to {to} is before --from {from}; give the earlier day first"
            )));
        }
        Ok(Selection::Dates(
            from.iter_days().take_while(|d| *d <= to).collect(),
        ))
    }
}

/// Why a day is rebuilt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayReason {
    /// Never built before.
    New,
    /// Its raw files changed since it was built (new or late rows).
    Changed,
    /// Asked for by `--date` / `--from/--to`.
    Requested,
    /// Built before but has no raw rows any more: its partitions are emptied.
    Gone,
}

impl fmt::Display for DayReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DayReason::New => "new data",
            DayReason::Changed => "raw data changed",
            DayReason::Requested => "requested",
            DayReason::Gone => "no raw data any more",
        })
    }
}

/// One day to rebuild.
#[derive(Debug, Clone)]
pub struct PlannedDay {
    /// The day.
    pub date: NaiveDate,
    /// Why.
    pub reason: DayReason,
    /// Raw files of the day now (empty when gone).
    pub raw: Option<PartitionFiles>,
}

/// What a run will do.
#[derive(Debug, Clone, Default)]
pub struct RunPlan {
    /// Days to rebuild, in date order.
    pub days: Vec<PlannedDay>,
    /// Requested days that have no data at all (nothing to do for them).
    pub empty_requested: Vec<NaiveDate>,
    /// Version of raw.events planned against.
    pub raw_version: Option<i64>,
}

impl RunPlan {
    /// Whether there is nothing to rebuild.
    pub fn is_empty(&self) -> bool {
        self.days.is_empty()
    }
}

/// The fingerprint each day was last built from.
pub async fn built_fingerprints(catalog: &SqlCatalog) -> Result<BTreeMap<NaiveDate, String>> {
    let batches: Vec<RecordBatch> = catalog
        .sql("SELECT event_date, raw_fingerprint, processed_at FROM meta.run_days")
        .await?
        .collect()
        .await?;
    let mut latest: BTreeMap<NaiveDate, (i64, String)> = BTreeMap::new();
    for b in &batches {
        let dates = b.column(0).as_primitive::<Date32Type>();
        let prints = shoplake_lake::arrow::compute::cast(
            b.column(1),
            &shoplake_lake::arrow::datatypes::DataType::Utf8,
        )?;
        let prints = prints.as_string::<i32>();
        let at = b.column(2).as_primitive::<TimestampMicrosecondType>();
        for i in 0..b.num_rows() {
            let date = days_to_date(dates.value(i));
            let entry = (at.value(i), prints.value(i).to_string());
            match latest.get(&date) {
                Some((t, _)) if *t > entry.0 => {}
                _ => {
                    latest.insert(date, entry);
                }
            }
        }
    }
    Ok(latest.into_iter().map(|(d, (_, p))| (d, p)).collect())
}

/// Plans a run against the lake as `catalog` sees it.
pub async fn plan(catalog: &SqlCatalog, selection: &Selection) -> Result<RunPlan> {
    let raw_table = catalog.table(&tables::raw_events()).await?;
    let raw_days = match &raw_table {
        Some(t) => partition_files(t).await?,
        None => BTreeMap::new(),
    };
    let built = built_fingerprints(catalog).await?;
    let mut plan = RunPlan {
        raw_version: raw_table.and_then(|t| t.version()).map(|v| v as i64),
        ..RunPlan::default()
    };
    let known: BTreeSet<NaiveDate> = raw_days.keys().chain(built.keys()).copied().collect();
    match selection {
        Selection::Incremental => {
            for date in known {
                let raw = raw_days.get(&date).cloned();
                let reason = match (&raw, built.get(&date)) {
                    (Some(_), None) => Some(DayReason::New),
                    (Some(r), Some(fp)) if &r.fingerprint != fp => Some(DayReason::Changed),
                    (None, Some(fp)) if !fp.is_empty() => Some(DayReason::Gone),
                    _ => None,
                };
                if let Some(reason) = reason {
                    plan.days.push(PlannedDay { date, reason, raw });
                }
            }
        }
        Selection::Dates(dates) => {
            for date in dates {
                if known.contains(date) {
                    plan.days.push(PlannedDay {
                        date: *date,
                        reason: DayReason::Requested,
                        raw: raw_days.get(date).cloned(),
                    });
                } else {
                    plan.empty_requested.push(*date);
                }
            }
        }
    }
    Ok(plan)
}
