//! Sources for shoplake: the synthetic event generator and file ingest into `raw.events`.
//!
//! - [`generate`] writes realistic store events in the source export format.
//! - [`files`] lands CSV / CSV.gz exports in `raw.events`, as delivered plus lineage, once per
//!   file content, with malformed lines kept (and flagged) rather than fatal.

#![deny(missing_docs)]

pub mod files;
pub mod generate;

pub use files::{IngestError, IngestReport, ingest_paths};
