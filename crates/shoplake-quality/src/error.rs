//! The error type of checking the published lake.

use shoplake_lake::LakeError;
use shoplake_lake::datafusion::error::DataFusionError;
use shoplake_sql::SqlError;
use thiserror::Error;

/// Result alias for the quality crate.
pub type Result<T, E = QualityError> = std::result::Result<T, E>;

/// What can stop `shoplake check`.
#[derive(Debug, Error)]
pub enum QualityError {
    /// Reading a table failed.
    #[error(transparent)]
    Sql(#[from] SqlError),
    /// Writing the outcomes failed.
    #[error(transparent)]
    Lake(#[from] LakeError),
    /// A check's query failed.
    #[error(transparent)]
    DataFusion(Box<DataFusionError>),
}

impl From<DataFusionError> for QualityError {
    fn from(e: DataFusionError) -> Self {
        QualityError::DataFusion(Box::new(e))
    }
}

impl From<shoplake_lake::arrow::error::ArrowError> for QualityError {
    fn from(e: shoplake_lake::arrow::error::ArrowError) -> Self {
        DataFusionError::from(e).into()
    }
}
