//! Data quality for shoplake.
//!
//! - [`checks`]: declarative checks (not_null, unique, accepted_values, range, row_count,
//!   freshness, referential integrity, schema contract, row accounting, custom SQL) with
//!   severities; `error` stops a layer from being published, `warn` is recorded.
//!
//! The exploratory profile of an export or table, which decides nothing, is the
//! `shoplake-profile` crate.

#![deny(missing_docs)]

pub mod checks;
pub mod error;

pub use error::{QualityError, Result};
