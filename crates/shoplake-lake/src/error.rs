//! The error type of lake operations.

use thiserror::Error;

/// Result alias for lake operations.
pub type Result<T, E = LakeError> = std::result::Result<T, E>;

/// What can go wrong reading or writing the lake.
#[derive(Debug, Error)]
pub enum LakeError {
    /// The lake location could not be understood.
    #[error("lake location '{location}' is not usable: {reason}")]
    Location {
        /// The location as given.
        location: String,
        /// Why it was rejected.
        reason: String,
    },
    /// An error from the Delta layer.
    #[error("delta table {table}: {source}")]
    Delta {
        /// Table the operation was on.
        table: String,
        /// The underlying error.
        #[source]
        source: Box<deltalake::DeltaTableError>,
    },
    /// An error from the query engine.
    #[error(transparent)]
    DataFusion(Box<datafusion::error::DataFusionError>),
    /// An error from Arrow.
    #[error(transparent)]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    /// A file-system error.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Data in the lake that contradicts what shoplake wrote.
    #[error("lake state is inconsistent: {0}")]
    Inconsistent(String),
}

impl LakeError {
    /// Wraps a Delta error with the name of the table it concerns.
    pub fn delta(table: impl Into<String>, source: deltalake::DeltaTableError) -> Self {
        LakeError::Delta {
            table: table.into(),
            source: Box::new(source),
        }
    }
}

impl From<datafusion::error::DataFusionError> for LakeError {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        LakeError::DataFusion(Box::new(e))
    }
}
