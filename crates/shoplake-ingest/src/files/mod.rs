//! File ingest: CSV and CSV.gz exports into `raw.events`.
//!
//! Each file is one Delta commit, so a file is either wholly in the lake or not at all (a
//! crash mid-file leaves nothing behind). The commit carries a Delta application transaction
//! named after the file's content hash: ingesting the same content again, under any name, is
//! detected from the table's own log and adds nothing.
//!
//! Every file is checked (exists, not empty, readable gzip, exact header) before anything is
//! written, so a bad argument leaves the lake untouched.

mod discover;
mod ingest;
mod reader;
mod scientific;

pub use discover::{SourceFile, discover};
pub use ingest::{
    FileOutcome, IngestError, IngestReport, content_hash, ingest_paths, until_finished,
};
pub use reader::{
    EXPECTED_HEADER, Lineage, MAX_LINE_BYTES, RawBatchReader, ReadStats, SOURCE_COLUMNS,
    open_counted, split_fields,
};
pub use scientific::{SCIENTIFIC_SQL, Scientific, is_scientific};
