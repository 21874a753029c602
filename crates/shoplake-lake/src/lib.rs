//! Lake storage for shoplake.
//!
//! The lake is a directory (or object-store prefix) of Delta tables laid out by layer:
//! `<lake>/raw/events`, `<lake>/clean/events`, `<lake>/model/fact_user_events`, ... Every
//! table's Arrow schema, partitioning and column meanings are declared once, in [`tables`];
//! the writers, the SQL catalog (`shoplake-sql`) and the data dictionary all read those
//! declarations. Writes are Delta commits: a day replaced ([`replace_day`]), a file's days
//! appended ([`append_days`]), a table overwritten ([`overwrite`]), a small table appended
//! to ([`mod@write`]).
//!
//! This crate depends on none of shoplake's other crates.

#![deny(missing_docs)]

pub mod accounting;
pub mod append_days;
pub mod built_from;
pub mod cdc_tables;
pub mod dictionary;
pub mod error;
mod evolve;
pub mod lake;
pub mod overwrite;
pub mod partitions;
pub mod progress;
pub mod replace_day;
pub mod tables;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod time;
pub mod write;
mod writers;

pub use accounting::Accounting;
pub use error::{LakeError, Result};
pub use lake::Lake;
pub use progress::{NoProgress, Progress};
pub use tables::{ColumnDef, TableDef};

/// Re-exports so that the other crates use exactly the same Arrow, DataFusion and Delta versions.
pub use datafusion;
pub use datafusion::arrow;
pub use deltalake;
