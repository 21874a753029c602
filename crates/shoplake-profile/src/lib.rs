//! The exploratory profile (EDA) of an event export or a lake table.
//!
//! What it reports: every table of the seed's step 2 (missing values per column; total,
//! distinct and exactly duplicated rows; distinct values per column; rows per event type; price
//! count, mean, standard deviation, minimum and maximum), what an analyst looks at next (time
//! range, rows per day and per hour with near-empty days flagged, price quantiles, top categories
//! and brands, session length and duration, purchases without a cart of the same product in the
//! same session, mass at the price cap, zero prices per event type), and suggested cleaning rules
//! with the number of rows each would affect. See [`Profile`] for every figure.
//!
//! Why it is built this way: an input can be a 66 M-row month, so nothing is collected in Rust.
//! The input is normalised once into SQL views (module `input`) and every figure is an aggregate
//! query in the caller's DataFusion session (module `queries`), whose memory pool spills to disk.
//! Figures are exact unless asked otherwise: `approx` switches only the distinct counts to a
//! HyperLogLog sketch, and a [`Sample`] makes every figure describe a reproducible sample (a
//! seeded hash of each row's content decides, so the same seed draws the same rows). Either way
//! the profile says so in [`Profile::notes`] and in every rendering.
//!
//! A profile is a different thing from the checks that gate publishing (`shoplake-quality`):
//! it describes an input before anyone trusts it, decides nothing, and draws its own charts.
//!
//! ```no_run
//! # async fn demo(lake: &shoplake_lake::Lake) -> Result<(), Box<dyn std::error::Error>> {
//! use shoplake_profile::{Format, ProfileOptions, profile_target};
//! let options = ProfileOptions::new("raw.events");
//! let found = profile_target(lake, "raw.events", &options, &shoplake_lake::NoProgress).await?;
//! println!("{}", found.render(Format::Table));
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

mod input;
pub mod model;
mod queries;
pub mod render;
pub mod sample;
pub mod sources;
mod svg;

use std::path::PathBuf;

use datafusion::error::DataFusionError;
use datafusion::prelude::{DataFrame, SessionContext};
use shoplake_lake::Progress;

pub use model::*;
pub use render::Format;
pub use sources::{profile_export, profile_table, profile_target};

/// A reproducible sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Fraction of rows to keep, in (0, 1].
    pub fraction: f64,
    /// Seed: the same seed keeps the same rows.
    pub seed: u64,
}

/// How to profile.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileOptions {
    /// What is profiled (a path or a table name), shown in the output.
    pub source: String,
    /// Profile a sample instead of every row.
    pub sample: Option<Sample>,
    /// Count distinct values with a HyperLogLog sketch instead of exactly.
    pub approx: bool,
    /// The input can be read only once (a stream): copy it to a temporary Parquet directory
    /// first (bounded memory), then run the queries on the copy.
    pub scan_once: bool,
}

impl ProfileOptions {
    /// Exact, whole input, re-readable input.
    pub fn new(source: impl Into<String>) -> Self {
        ProfileOptions {
            source: source.into(),
            sample: None,
            approx: false,
            scan_once: false,
        }
    }
}

/// Why a profile could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The input lacks some of the nine event columns.
    #[error(
        "not an event table: it has no column {}; profile an export or an event table such as raw.events, clean.events or model.fact_user_events",
        missing.join(", ")
    )]
    NotEventTable {
        /// The missing columns.
        missing: Vec<String>,
    },
    /// A column has a type the profile cannot read.
    #[error("column {column} has type {found}; the profile needs {expected}")]
    ColumnType {
        /// The column.
        column: String,
        /// Its type.
        found: String,
        /// What would do.
        expected: String,
    },
    /// The sample fraction is outside (0, 1].
    #[error("sample fraction {0} is outside (0, 1]; use e.g. 0.05 for 5 %")]
    BadSample(f64),
    /// The temporary copy of a streamed input could not be made.
    #[error("cannot create the temporary directory {}: {source}; set TMPDIR to a writable directory with free space", path.display())]
    TempDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The target is neither a file nor a lake table.
    #[error("'{target}' is neither an existing file nor a lake table ({})", tables.join(", "))]
    NoSuchInput {
        /// The target as given.
        target: String,
        /// The lake's tables.
        tables: Vec<String>,
    },
    /// An export cannot be profiled (missing, empty, wrong header, unreadable).
    #[error(transparent)]
    Input(#[from] shoplake_ingest::files::IngestError),
    /// Reading an export failed part-way (a corrupt gzip, an I/O error).
    #[error("{0}")]
    Read(String),
    /// A lake table could not be read.
    #[error(transparent)]
    Sql(#[from] shoplake_sql::SqlError),
    /// The lake could not be read.
    #[error(transparent)]
    Lake(#[from] shoplake_lake::LakeError),
    /// A query failed (reading the input, running out of disk for spilling, ...).
    #[error("profile query failed: {0}")]
    DataFusion(#[from] DataFusionError),
    /// A query answered something impossible (a bug).
    #[error("internal error: {0}")]
    Internal(String),
}

impl ProfileError {
    /// Whether the error is the caller's choice of input or options (rather than a failure).
    pub fn is_usage(&self) -> bool {
        match self {
            ProfileError::NotEventTable { .. }
            | ProfileError::ColumnType { .. }
            | ProfileError::BadSample(_)
            | ProfileError::NoSuchInput { .. } => true,
            ProfileError::Input(e) => e.is_usage(),
            _ => false,
        }
    }
}

/// Profiles `input`, whose plan belongs to `ctx` (views are registered in `ctx` under unique
/// names for the duration of the call and removed afterwards).
///
/// `input` has the nine export columns, as text (empty string = missing) or typed (timestamp
/// event_time, numeric price, the session column named `user_session` or `session_id`); extra
/// columns are ignored except the lineage columns `_error` and `_raw_line` of `raw.events`,
/// which identify malformed lines.
pub async fn profile(
    ctx: &SessionContext,
    input: DataFrame,
    options: &ProfileOptions,
    progress: &dyn Progress,
) -> Result<Profile, ProfileError> {
    if let Some(s) = &options.sample
        && !(s.fraction > 0.0 && s.fraction <= 1.0)
    {
        return Err(ProfileError::BadSample(s.fraction));
    }
    progress.start(
        if options.scan_once {
            "profile: reading the input"
        } else {
            "profile: preparing"
        },
        None,
        "rows",
    );
    let prepared = input::prepare(ctx, input, options.sample.as_ref(), options.scan_once).await?;
    progress.finish("ready");
    queries::compute(ctx, &prepared, options, progress).await
}
