//! SQL over the lake.
//!
//! - [`catalog`]: every lake table registered as `layer.table` in one DataFusion session,
//!   each read at its latest version the first time a statement names it; the catalog that
//!   `query`, `check`, `status`, the run's planner and gates, and the servers all share.
//! - [`policy`]: what a reader may run (read-only statements), and errors that name the
//!   user's own tables.
//! - [`mod@session`]: the engine session with shoplake's extensions installed.
//! - [`stats_counts`] and [`count_by_key`]: the extensions, an optimizer rule that answers
//!   grouped `count(*)` from Parquet footers and an operator that counts rows by one integer
//!   key; [`provider`] is the table provider that lets the first find a table's files.
//!
//! ```no_run
//! # async fn example() -> Result<(), shoplake_sql::SqlError> {
//! let lake = shoplake_lake::Lake::open("./lake")?;
//! let catalog = shoplake_sql::SqlCatalog::open(&lake).await?;
//! let batches = catalog
//!     .sql("SELECT event_type, count(*) FROM model.fact_user_events GROUP BY 1")
//!     .await?
//!     .collect()
//!     .await?;
//! # let _ = batches;
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]

pub mod catalog;
pub mod count_by_key;
pub mod error;
pub mod policy;
pub mod provider;
pub mod session;
pub mod stats_counts;

pub use catalog::{SqlCatalog, register_visible_tables};
pub use error::{Result, SqlError};
pub use policy::read_only_sql_options;
pub use session::session;
