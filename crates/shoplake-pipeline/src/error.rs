//! The error type of pipeline runs.

use chrono::NaiveDate;
use shoplake_lake::{Accounting, LakeError};
use shoplake_sql::SqlError;
use thiserror::Error;

/// Result alias for the pipeline.
pub type Result<T, E = PipelineError> = std::result::Result<T, E>;

/// What can stop a run.
#[derive(Debug, Error)]
pub enum PipelineError {
    /// Reading or writing the lake failed.
    #[error(transparent)]
    Lake(#[from] LakeError),
    /// A statement over the lake failed to plan.
    #[error(transparent)]
    Sql(#[from] SqlError),
    /// The query engine failed.
    #[error("query engine: {0}")]
    DataFusion(Box<shoplake_lake::datafusion::error::DataFusionError>),
    /// Arrow failed.
    #[error("arrow: {0}")]
    Arrow(#[from] shoplake_lake::arrow::error::ArrowError),
    /// The row accounting of a day does not add up: a bug, never published.
    #[error("row accounting of {date} does not add up: {rows}")]
    Accounting {
        /// The day.
        date: NaiveDate,
        /// Where its raw rows went.
        rows: Accounting,
    },
    /// A published table breaks its declared contract (a column missing, a value outside
    /// its allowed set): the lake was changed by something else than shoplake.
    #[error("{0}")]
    Contract(String),
    /// The run was asked for something impossible.
    #[error("{0}")]
    Usage(String),
    /// A file of the run's scratch space could not be used.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A task of the run stopped unexpectedly (it panicked or was cancelled): a bug.
    #[error("internal error: {0}")]
    Internal(String),
}

impl PipelineError {
    /// A task that stopped without finishing its work.
    pub fn stopped(task: impl std::fmt::Display, e: tokio::task::JoinError) -> Self {
        PipelineError::Internal(format!("{task} stopped: {e}"))
    }
}

impl From<shoplake_lake::datafusion::error::DataFusionError> for PipelineError {
    fn from(e: shoplake_lake::datafusion::error::DataFusionError) -> Self {
        PipelineError::DataFusion(Box::new(e))
    }
}

impl From<shoplake_lake::datafusion::parquet::errors::ParquetError> for PipelineError {
    fn from(e: shoplake_lake::datafusion::parquet::errors::ParquetError) -> Self {
        shoplake_lake::datafusion::error::DataFusionError::from(e).into()
    }
}
