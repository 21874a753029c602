//! The error type of SQL over the lake.

use shoplake_lake::LakeError;
use shoplake_lake::datafusion::error::DataFusionError;
use thiserror::Error;

/// Result alias for SQL over the lake.
pub type Result<T, E = SqlError> = std::result::Result<T, E>;

/// What can go wrong planning or running a statement over the lake.
#[derive(Debug, Error)]
pub enum SqlError {
    /// Reading a table's Delta state failed.
    #[error(transparent)]
    Lake(#[from] LakeError),
    /// The query engine refused or failed the statement.
    #[error(transparent)]
    DataFusion(Box<DataFusionError>),
    /// A statement names a table the lake does not have.
    #[error("{}", unknown_table_message(.name, .suggestions))]
    UnknownTable {
        /// The name as the statement wrote it.
        name: String,
        /// Lake tables whose names are close to it.
        suggestions: Vec<String>,
    },
    /// A statement that the read-only policy refuses (DDL, DML, `SET`, `COPY`).
    #[error("{0}")]
    NotAllowed(String),
}

impl From<DataFusionError> for SqlError {
    fn from(e: DataFusionError) -> Self {
        SqlError::DataFusion(Box::new(e))
    }
}

fn unknown_table_message(name: &str, suggestions: &[String]) -> String {
    match suggestions {
        [] => format!(
            "no table named {name}; `shoplake status` lists the lake's tables (layer.table)"
        ),
        [one] => format!("no table named {name}; did you mean {one}?"),
        many => format!(
            "no table named {name}; did you mean one of {}?",
            many.join(", ")
        ),
    }
}
