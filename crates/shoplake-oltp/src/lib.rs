//! The store's PostgreSQL side of shoplake.
//!
//! In the original design the store's app writes to a normalized PostgreSQL database and a
//! replication service copies every change into the lake's raw layer. This crate is both
//! ends of that:
//!
//! - [`schema`]: the normalized schema (`shoplake oltp init`), versioned for migrations;
//! - [`load`]: an export loaded the way the app would have written it (`shoplake oltp load`),
//!   every line it cannot place counted by reason;
//! - [`simulate`]: live app traffic with inserts, updates and deletes (`shoplake oltp simulate`);
//! - [`cdc`]: change data capture into `raw.cdc_<table>` Delta tables (`shoplake cdc`),
//!   exactly once: the slot's position is stored in the lake, in the same commit as the rows.
//!
//! The lake side of the tables is declared in `shoplake_lake::cdc_tables`.

#![deny(missing_docs)]

pub mod cdc;
pub mod connect;
pub mod error;
pub mod load;
pub mod schema;
pub mod simulate;
mod synthetic;
pub mod testing;

pub use error::{OltpError, Result};
/// Stops `cdc` (cancel it from a signal handler).
pub use pg_walstream::CancellationToken;
