//! shoplake's pipeline: `raw -> clean -> model`, incremental and idempotent.
//!
//! - [`plan`] works out which `event_date` partitions must be rebuilt and why.
//! - [`clean`] types raw rows, quarantines failures with a reason and removes exact duplicates.
//! - [`model`] builds the star schema: the fact table per day, the dimensions from the facts.
//! - [`gates`] evaluates the quality checks on what a run is about to publish.
//! - [`mod@run`] executes a plan, commits each partition atomically and records the run.
//! - [`convert`] is the reduced job without a lake: exports straight to clean Parquet.

#![deny(missing_docs)]

pub mod clean;
pub mod convert;
pub mod crash_switch;
pub mod error;
pub mod gates;
pub mod model;
pub mod plan;
pub mod run;
mod texts;

pub use error::{PipelineError, Result};
pub use plan::{DayReason, PlannedDay, RunPlan, Selection};
pub use run::{DayReport, RunMetrics, RunOptions, RunReport, run};
