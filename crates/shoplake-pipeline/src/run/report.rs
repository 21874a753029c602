//! What a run did: per day, per dimension, per check, and how long each step took.

use chrono::NaiveDate;
use serde::Serialize;
use shoplake_lake::Accounting;
use shoplake_quality::checks::{CheckOutcome, Publication, Severity};

use crate::plan::{DayReason, RunPlan};

/// The outcome of one day.
#[derive(Debug, Clone, PartialEq)]
pub struct DayReport {
    /// The day.
    pub date: NaiveDate,
    /// Why it was rebuilt.
    pub reason: DayReason,
    /// Where its raw rows went, as committed (clean and rejected rows read back from the
    /// tables' statistics).
    pub rows: Accounting,
    /// Fact rows written.
    pub fact_rows: u64,
    /// Wall time of the day.
    pub seconds: f64,
}

/// Wall seconds of a run's steps (written to `meta.runs.steps` as JSON, by these names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct RunMetrics {
    /// The days: cleaning, the fact, their checks and writes.
    pub days_seconds: f64,
    /// Part of `days_seconds` spent waiting for a day's cleaning (what the writes of the day
    /// before did not hide).
    pub waiting_for_cleaning_seconds: f64,
    /// Part of `days_seconds` spent on the days' checks.
    pub day_checks_seconds: f64,
    /// Part of `days_seconds` spent writing the days (and the checkpoints after the last).
    pub day_writes_seconds: f64,
    /// The dimensions: built, checked and written.
    pub dimensions_seconds: f64,
    /// Building dim_products, dim_categories, dim_sessions and dim_users from the fact.
    pub dimension_build_seconds: f64,
    /// Part of the build spent scanning and folding the fact's days.
    pub dimension_fold_seconds: f64,
    /// The dimensions' checks (and the fact's referential checks).
    pub dimension_checks_seconds: f64,
    /// Writing the dimensions.
    pub dimension_writes_seconds: f64,
    /// The month marts: aggregated from the day marts and written.
    pub month_marts_seconds: f64,
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
    /// Rows of each rebuilt month mart.
    pub month_marts: Vec<(String, u64)>,
    /// Wall time per step.
    pub metrics: RunMetrics,
    /// Wall time of the run.
    pub seconds: f64,
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// Every check evaluated, with what became of the data it checked.
    pub checks: Vec<(CheckOutcome, Publication)>,
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
        failed.sort_by_key(|o| o.check.severity != Severity::Error);
        failed
    }

    /// The accounting of every published day together.
    pub fn total(&self) -> Accounting {
        self.days.iter().map(|d| d.rows).sum()
    }

    /// Fact rows written.
    pub fn fact_rows(&self) -> u64 {
        self.days.iter().map(|d| d.fact_rows).sum()
    }
}
