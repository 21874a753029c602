//! The error type of pipeline runs.

use chrono::NaiveDate;
use shoplake_lake::LakeError;
use thiserror::Error;

/// Result alias for the pipeline.
pub type Result<T, E = PipelineError> = std::result::Result<T, E>;

/// What can stop a run.
#[derive(Debug, Error)]
pub enum PipelineError {
    /// Reading or writing the lake failed.
    #[error(transparent)]
    Lake(#[from] LakeError),
    /// The query engine failed.
    #[error("query engine: {0}")]
    DataFusion(Box<shoplake_lake::datafusion::error::DataFusionError>),
    /// Arrow failed.
    #[error("arrow: {0}")]
    Arrow(#[from] shoplake_lake::arrow::error::ArrowError),
    /// The row accounting of a day does not add up: a bug, never published.
    #[error(
        "row accounting of {date} does not add up: raw {raw} != clean {clean} + duplicates {duplicates} + rejected {rejected}"
    )]
    Accounting {
        /// The day.
        date: NaiveDate,
        /// Raw rows.
        raw: u64,
        /// Clean rows.
        clean: u64,
        /// Duplicates removed.
        duplicates: u64,
        /// Rejected rows.
        rejected: u64,
    },
    /// A published table breaks its declared contract (a column missing, a value outside
    /// its allowed set): the lake was changed by something else than shoplake.
    #[error("{0}")]
    Contract(String),
    /// The run was asked for something impossible.
    #[error("{0}")]
    Usage(String),
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
