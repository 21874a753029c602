//! Landing checked files in `raw.events`, one Delta commit per file.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use chrono::{NaiveDate, Utc};
use futures::StreamExt;
use shoplake_lake::arrow::array::{
    Date32Array, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use shoplake_lake::datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use shoplake_lake::deltalake::kernel::Transaction;
use shoplake_lake::deltalake::kernel::transaction::CommitProperties;
use shoplake_lake::write::{WriteMode, date_to_days, stream_to_dataframe, write_table};
use shoplake_lake::{Lake, LakeError, Progress, tables};

use super::discover::{SourceFile, discover};
use super::reader::{Lineage, RawBatchReader, ReadStats};

/// Why an ingest could not be done. Messages say what to do.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The arguments make no sense.
    #[error("{0}")]
    Usage(String),
    /// A path does not exist or cannot be listed.
    #[error("cannot open '{}': {reason}; check the path", path.display())]
    Missing {
        /// The path.
        path: PathBuf,
        /// The OS error.
        reason: String,
    },
    /// A directory without any `*.csv` / `*.csv.gz`.
    #[error("directory '{}' has no .csv or .csv.gz files; pass the files themselves or the directory that holds them", .0.display())]
    EmptyDirectory(PathBuf),
    /// A file of zero bytes or without a header.
    #[error("'{}' is empty; an export starts with the header line `{}`", .0.display(), super::EXPECTED_HEADER)]
    EmptyFile(PathBuf),
    /// A file with a header but no data line.
    #[error("'{}' has a header but no rows; nothing to ingest", .0.display())]
    NoRows(PathBuf),
    /// The first line is not the export header.
    #[error("'{}' has the wrong header `{found}`; expected `{}` (the store's event export)", path.display(), super::EXPECTED_HEADER)]
    WrongHeader {
        /// The file.
        path: PathBuf,
        /// What its first line is.
        found: String,
    },
    /// The file could not be read (permissions, corrupt gzip).
    #[error("cannot read '{}': {reason}; nothing from this file was ingested", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        reason: String,
    },
    /// Writing to the lake failed.
    #[error(transparent)]
    Lake(#[from] LakeError),
}

/// What happened to one file.
#[derive(Debug, Clone)]
pub enum FileOutcome {
    /// Landed in `raw.events`.
    Ingested {
        /// The file.
        source: String,
        /// Its content hash.
        batch_id: String,
        /// Lines read and flagged.
        stats: ReadStats,
        /// Version of raw.events that holds it.
        raw_version: i64,
        /// Wall time.
        seconds: f64,
    },
    /// Its content was ingested before; nothing was added.
    AlreadyIngested {
        /// The file.
        source: String,
        /// Its content hash.
        batch_id: String,
    },
}

/// Result of an ingest call.
#[derive(Debug, Clone, Default)]
pub struct IngestReport {
    /// One entry per file, in the order ingested.
    pub files: Vec<FileOutcome>,
}

impl IngestReport {
    /// Rows added to raw.events.
    pub fn rows(&self) -> u64 {
        self.files
            .iter()
            .map(|f| match f {
                FileOutcome::Ingested { stats, .. } => stats.rows,
                FileOutcome::AlreadyIngested { .. } => 0,
            })
            .sum()
    }

    /// Malformed lines among them.
    pub fn malformed(&self) -> u64 {
        self.files
            .iter()
            .map(|f| match f {
                FileOutcome::Ingested { stats, .. } => stats.malformed,
                FileOutcome::AlreadyIngested { .. } => 0,
            })
            .sum()
    }
}

fn app_id(batch_id: &str) -> String {
    format!("shoplake-ingest-{batch_id}")
}

/// Content hash of a file (xxh3-128 of its bytes as stored), hex.
pub fn content_hash(path: &std::path::Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(format!("{:032x}", hasher.digest128()))
}

/// Ingests files and directories into `raw.events`.
///
/// All inputs are checked before the first write; then each file is one commit. A file whose
/// content is already in the lake is skipped and reported as such.
pub async fn ingest_paths(
    lake: &Lake,
    paths: &[PathBuf],
    progress: &dyn Progress,
) -> Result<IngestReport, IngestError> {
    let files = discover(paths)?;
    let def = tables::raw_events();
    let mut report = IngestReport::default();
    for file in files {
        let outcome = ingest_one(lake, &def, &file, progress).await?;
        report.files.push(outcome);
    }
    Ok(report)
}

async fn ingest_one(
    lake: &Lake,
    def: &tables::TableDef,
    file: &SourceFile,
    progress: &dyn Progress,
) -> Result<FileOutcome, IngestError> {
    let started = Instant::now();
    let source = file.path.display().to_string();
    let read_err = |e: std::io::Error| IngestError::Read {
        path: file.path.clone(),
        reason: e.to_string(),
    };
    let batch_id = {
        let path = file.path.clone();
        tokio::task::spawn_blocking(move || content_hash(&path))
            .await
            .map_err(|e| read_err(std::io::Error::other(e)))?
            .map_err(read_err)?
    };
    let already = match lake.load(def).await? {
        Some(table) => table
            .snapshot()
            .map_err(|e| LakeError::delta(def.qualified_name(), e))?
            .transaction_version(table.log_store().as_ref(), app_id(&batch_id))
            .await
            .map_err(|e| LakeError::delta(def.qualified_name(), e))?,
        None => None,
    };
    if already.is_some() {
        return Ok(FileOutcome::AlreadyIngested { source, batch_id });
    }

    let ingested_at = Utc::now();
    let lineage = Lineage {
        source: file
            .path
            .file_name()
            .map_or_else(|| source.clone(), |n| n.to_string_lossy().into_owned()),
        batch_id: batch_id.clone(),
        ingested_at_micros: ingested_at.timestamp_micros(),
    };
    let reader = RawBatchReader::open(&file.path, file.gzip, lineage).map_err(read_err)?;
    let schema = reader.schema();

    // The parser runs on a blocking thread and hands batches over a small channel, so memory
    // holds a few batches whatever the file size.
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let parser = tokio::task::spawn_blocking(move || {
        let mut reader = reader;
        let mut failure = None;
        for batch in reader.by_ref() {
            let batch = batch.inspect_err(|e| failure = Some(e.to_string()));
            let failed = batch.is_err();
            if tx.blocking_send(batch).is_err() || failed {
                break;
            }
        }
        (reader.stats().clone(), failure)
    });
    progress.start(
        &format!("ingest {}", lineage_name(&file.path)),
        Some(file.bytes),
        "bytes",
    );
    let rows_stream = tokio_stream_from(rx).map(move |b| {
        b.map_err(|e| {
            shoplake_lake::datafusion::error::DataFusionError::ArrowError(Box::new(e), None)
        })
    });
    let stream = Box::pin(RecordBatchStreamAdapter::new(schema.clone(), rows_stream));
    let ctx = lake.session();
    let input = stream_to_dataframe(&ctx, schema, stream).map_err(IngestError::Lake)?;
    let commit = CommitProperties::default()
        .with_application_transaction(Transaction::new(app_id(&batch_id), 1))
        .with_metadata([
            ("shoplake.batch_id".to_string(), serde_json::json!(batch_id)),
            ("shoplake.source".to_string(), serde_json::json!(source)),
        ]);
    let written = write_table(lake, def, input, WriteMode::Append, commit).await;
    let (stats, failure) = parser
        .await
        .map_err(|e| read_err(std::io::Error::other(e)))?;
    // A read failure (corrupt gzip, I/O error) surfaces as a failed write: report its cause.
    if let Some(reason) = failure {
        return Err(IngestError::Read {
            path: file.path.clone(),
            reason,
        });
    }
    let table = written?;
    let raw_version = table.version().unwrap_or(0) as i64;
    let seconds = started.elapsed().as_secs_f64();
    progress.advance(file.bytes);
    progress.finish(&format!(
        "{} rows, {} malformed",
        stats.rows, stats.malformed
    ));
    log_ingest(
        lake,
        &batch_id,
        &source,
        &stats,
        file.bytes,
        raw_version,
        ingested_at,
        seconds,
    )
    .await?;
    Ok(FileOutcome::Ingested {
        source,
        batch_id,
        stats,
        raw_version,
        seconds,
    })
}

fn lineage_name(path: &std::path::Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[allow(clippy::too_many_arguments)]
async fn log_ingest(
    lake: &Lake,
    batch_id: &str,
    source: &str,
    stats: &ReadStats,
    bytes: u64,
    raw_version: i64,
    ingested_at: chrono::DateTime<Utc>,
    seconds: f64,
) -> Result<(), IngestError> {
    let def = tables::meta_ingests();
    let days = |d: Option<NaiveDate>| d.map(date_to_days);
    let batch = RecordBatch::try_new(
        def.arrow_schema(),
        vec![
            Arc::new(StringArray::from(vec![batch_id])),
            Arc::new(StringArray::from(vec![source])),
            Arc::new(Int64Array::from(vec![stats.rows as i64])),
            Arc::new(Int64Array::from(vec![stats.malformed as i64])),
            Arc::new(Int64Array::from(vec![bytes as i64])),
            Arc::new(Date32Array::from(vec![days(stats.first_date)])),
            Arc::new(Date32Array::from(vec![days(stats.last_date)])),
            Arc::new(Int64Array::from(vec![raw_version])),
            Arc::new(
                TimestampMicrosecondArray::from(vec![ingested_at.timestamp_micros()])
                    .with_timezone("UTC"),
            ),
            Arc::new(Float64Array::from(vec![seconds])),
        ],
    )
    .map_err(LakeError::from)?;
    let ctx = lake.session();
    let df = ctx.read_batch(batch).map_err(LakeError::from)?;
    write_table(
        lake,
        &def,
        df,
        WriteMode::Append,
        CommitProperties::default(),
    )
    .await?;
    Ok(())
}
