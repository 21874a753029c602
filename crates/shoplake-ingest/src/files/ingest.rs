//! Landing checked files in `raw.events`, one Delta commit per file.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use chrono::{NaiveDate, Utc};
use shoplake_lake::append_days::append_by_day;
use shoplake_lake::arrow::array::{Array, AsArray};
use shoplake_lake::arrow::array::{
    Date32Array, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use shoplake_lake::arrow::compute::cast;
use shoplake_lake::arrow::datatypes::{DataType, Date32Type, Int64Type};
use shoplake_lake::arrow::error::ArrowError;
use shoplake_lake::deltalake::kernel::Transaction;
use shoplake_lake::deltalake::kernel::transaction::CommitProperties;
use shoplake_lake::time::{date_to_days, days_to_date};
use shoplake_lake::write::append_table;
use shoplake_lake::{Lake, LakeError, Progress, tables};

use super::discover::{SourceFile, discover};
use super::reader::{Lineage, RawBatchReader, ReadStats};
use super::scientific::SCIENTIFIC_SQL;

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

impl IngestError {
    /// Whether the error is the caller's choice of paths (a usage error) rather than a
    /// failure while reading or writing.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            IngestError::Usage(_) | IngestError::Missing { .. } | IngestError::EmptyDirectory(_)
        )
    }
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

/// Batch id and content hash of every file already logged in `meta.ingests`.
async fn logged_ingests(lake: &Lake) -> Result<Vec<(String, String)>, IngestError> {
    let def = tables::meta_ingests();
    let Some(table) = lake.load(&def).await? else {
        return Ok(Vec::new());
    };
    let ctx = lake.session();
    table
        .update_datafusion_session(&ctx.state())
        .map_err(|e| LakeError::delta(def.qualified_name(), e))?;
    let provider = table.table_provider().await.map_err(LakeError::from)?;
    let batches = ctx
        .read_table(provider)
        .and_then(|df| df.select_columns(&["batch_id", "content_hash"]))
        .map_err(LakeError::from)?
        .collect()
        .await
        .map_err(LakeError::from)?;
    let mut out = Vec::new();
    for b in &batches {
        let ids = cast(b.column(0), &DataType::Utf8).map_err(LakeError::from)?;
        let hashes = cast(b.column(1), &DataType::Utf8).map_err(LakeError::from)?;
        let (ids, hashes) = (ids.as_string::<i32>(), hashes.as_string::<i32>());
        for i in 0..b.num_rows() {
            out.push((ids.value(i).to_string(), hashes.value(i).to_string()));
        }
    }
    Ok(out)
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
    let logged = logged_ingests(lake).await?;
    if already.is_some() {
        // A crash between the raw commit and its log row leaves the log short: mend it.
        if !logged.iter().any(|(id, _)| id == &batch_id) {
            repair_log(lake, file, &batch_id, &source).await?;
        }
        return Ok(FileOutcome::AlreadyIngested { source, batch_id });
    }

    let ingested_at = Utc::now();
    let lineage = Lineage {
        source: lineage_name(&file.path),
        batch_id: batch_id.clone(),
        ingested_at_micros: ingested_at.timestamp_micros(),
    };
    let bytes_read = Arc::new(AtomicU64::new(0));
    let reader = RawBatchReader::open_counted(&file.path, file.gzip, lineage, bytes_read.clone())
        .map_err(read_err)?;

    // The parser runs on a blocking thread and hands batches over a small channel, so memory
    // holds a few batches whatever the file size.
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    // Set only when the parser read the whole file and its content is new. If the channel
    // closes without it (a panic in the parser, the same text already ingested from another
    // file), the stream ends with an error so that nothing is committed.
    let finished = Arc::new(AtomicBool::new(false));
    let parser_finished = finished.clone();
    let known = logged.clone();
    let parser = tokio::task::spawn_blocking(move || {
        let mut reader = reader;
        let mut failure = None;
        for batch in reader.by_ref() {
            let batch = batch.inspect_err(|e| failure = Some(e.to_string()));
            let failed = batch.is_err();
            if tx.blocking_send(batch).is_err() || failed {
                return ParseEnd {
                    stats: reader.stats().clone(),
                    failure,
                    content_hash: None,
                };
            }
        }
        let content_hash = reader.content_hash();
        if !known.iter().any(|(_, h)| h == &content_hash) {
            parser_finished.store(true, Ordering::SeqCst);
        }
        ParseEnd {
            stats: reader.stats().clone(),
            failure,
            content_hash: Some(content_hash),
        }
    });
    progress.start(
        &format!("ingest {}", lineage_name(&file.path)),
        Some(file.bytes),
        "bytes",
    );
    let unfinished =
        || ArrowError::ExternalError("the file reader stopped before the end of the file".into());
    let rows = until_finished(rx, finished.clone(), unfinished);
    let commit = CommitProperties::default()
        .with_application_transaction(Transaction::new(app_id(&batch_id), 1))
        .with_metadata([
            ("shoplake.batch_id".to_string(), serde_json::json!(batch_id)),
            ("shoplake.source".to_string(), serde_json::json!(source)),
        ]);
    // One writer per core: the parser's thread inflates and splits, the writers encode.
    let writers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let write = append_by_day(lake, def, rows, commit, writers);
    tokio::pin!(write);
    let mut ticker = tokio::time::interval(std::time::Duration::from_millis(250));
    let mut shown = 0u64;
    let written = loop {
        tokio::select! {
            result = &mut write => break result,
            _ = ticker.tick() => {
                let now = bytes_read.load(Ordering::Relaxed);
                progress.advance(now.saturating_sub(shown));
                shown = now;
            }
        }
    };
    let end = parser
        .await
        .map_err(|e| read_err(std::io::Error::other(e)))?;
    // A read failure (corrupt gzip, I/O error) surfaces as a failed write: report its cause.
    if let Some(reason) = end.failure {
        return Err(IngestError::Read {
            path: file.path.clone(),
            reason,
        });
    }
    if let Some(hash) = &end.content_hash
        && !finished.load(Ordering::SeqCst)
    {
        progress.finish("already ingested");
        let earlier = logged
            .iter()
            .find(|(_, h)| h == hash)
            .map(|(id, _)| id.clone())
            .unwrap_or_default();
        return Ok(FileOutcome::AlreadyIngested {
            source,
            batch_id: earlier,
        });
    }
    let table = written?;
    let raw_version = table.version().unwrap_or(0) as i64;
    let seconds = started.elapsed().as_secs_f64();
    progress.advance(file.bytes.saturating_sub(shown));
    progress.finish(&format!(
        "{} rows, {} malformed",
        end.stats.rows, end.stats.malformed
    ));
    let record = IngestRecord {
        batch_id: &batch_id,
        content_hash: end.content_hash.as_deref().unwrap_or_default(),
        source: &source,
        stats: &end.stats,
        bytes: file.bytes,
        raw_version,
        ingested_at,
        seconds,
    };
    log_ingest(lake, &record).await?;
    Ok(FileOutcome::Ingested {
        source,
        batch_id,
        stats: end.stats,
        raw_version,
        seconds,
    })
}

/// How the parser thread ended.
struct ParseEnd {
    stats: ReadStats,
    failure: Option<String>,
    content_hash: Option<String>,
}

/// Writes the missing `meta.ingests` row of a batch that is in raw.events, from raw itself.
async fn repair_log(
    lake: &Lake,
    file: &SourceFile,
    batch_id: &str,
    source: &str,
) -> Result<(), IngestError> {
    let read_err = |e: std::io::Error| IngestError::Read {
        path: file.path.clone(),
        reason: e.to_string(),
    };
    let def = tables::raw_events();
    let Some(table) = lake.load(&def).await? else {
        return Ok(());
    };
    let raw_version = table.version().unwrap_or(0) as i64;
    let ctx = lake.session();
    table
        .update_datafusion_session(&ctx.state())
        .map_err(|e| LakeError::delta(def.qualified_name(), e))?;
    let provider = table.table_provider().await.map_err(LakeError::from)?;
    ctx.register_table("raw_events", provider)
        .map_err(LakeError::from)?;
    let sql = format!(
        "SELECT COUNT(*), COUNT(_error), MIN(event_date), MAX(event_date), \
         CAST(MIN(_ingested_at) AS BIGINT), COUNT(NULLIF(category_id, '')), \
         SUM(CASE WHEN regexp_like(category_id, '{SCIENTIFIC_SQL}') THEN 1 ELSE 0 END) \
         FROM raw_events WHERE _batch_id = '{batch_id}'"
    );
    let batches = ctx
        .sql(&sql)
        .await
        .map_err(LakeError::from)?
        .collect()
        .await
        .map_err(LakeError::from)?;
    let Some(b) = batches.iter().find(|b| b.num_rows() > 0) else {
        return Ok(());
    };
    let int = |i: usize| -> Result<i64, IngestError> {
        let c = cast(b.column(i), &DataType::Int64).map_err(LakeError::from)?;
        let c = c.as_primitive::<Int64Type>();
        Ok(if c.is_null(0) { 0 } else { c.value(0) })
    };
    let date = |i: usize| -> Result<Option<NaiveDate>, IngestError> {
        let c = cast(b.column(i), &DataType::Date32).map_err(LakeError::from)?;
        let c = c.as_primitive::<Date32Type>();
        Ok((!c.is_null(0)).then(|| days_to_date(c.value(0))))
    };
    let stats = ReadStats {
        rows: int(0)? as u64,
        malformed: int(1)? as u64,
        first_date: date(2)?,
        last_date: date(3)?,
        category_ids: int(5)? as u64,
        scientific_category_ids: int(6)? as u64,
    };
    let ingested_at =
        chrono::DateTime::<Utc>::from_timestamp_micros(int(4)?).unwrap_or_else(Utc::now);
    let content_hash = {
        let path = file.path.clone();
        let gzip = file.gzip;
        tokio::task::spawn_blocking(move || decompressed_hash(&path, gzip))
            .await
            .map_err(|e| read_err(std::io::Error::other(e)))?
            .map_err(read_err)?
    };
    let record = IngestRecord {
        batch_id,
        content_hash: &content_hash,
        source,
        stats: &stats,
        bytes: file.bytes,
        raw_version,
        ingested_at,
        seconds: 0.0,
    };
    log_ingest(lake, &record).await
}

/// Hash of the decompressed text of a file, as [`RawBatchReader::content_hash`] computes it.
fn decompressed_hash(path: &std::path::Path, gzip: bool) -> std::io::Result<String> {
    let mut input = super::reader::open_decoded(path, gzip)?;
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(format!("{:032x}", hasher.digest128()))
}

fn lineage_name(path: &std::path::Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// The batches a reader thread sends; the stream ends with `unfinished()` instead of ending
/// quietly unless the thread set `finished` (it read the whole input), so a reader that died
/// or gave up cannot pass for a short file.
pub fn until_finished<E: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<Result<RecordBatch, E>>,
    finished: Arc<AtomicBool>,
    unfinished: impl Fn() -> E + Send + 'static,
) -> impl futures::Stream<Item = Result<RecordBatch, E>> + Send {
    let mut ended = false;
    futures::stream::poll_fn(move |cx| {
        if ended {
            return std::task::Poll::Ready(None);
        }
        match rx.poll_recv(cx) {
            std::task::Poll::Ready(None) => {
                ended = true;
                if finished.load(Ordering::SeqCst) {
                    std::task::Poll::Ready(None)
                } else {
                    std::task::Poll::Ready(Some(Err(unfinished())))
                }
            }
            other => other,
        }
    })
}

/// One row of `meta.ingests`.
struct IngestRecord<'a> {
    batch_id: &'a str,
    content_hash: &'a str,
    source: &'a str,
    stats: &'a ReadStats,
    bytes: u64,
    raw_version: i64,
    ingested_at: chrono::DateTime<Utc>,
    seconds: f64,
}

async fn log_ingest(lake: &Lake, r: &IngestRecord<'_>) -> Result<(), IngestError> {
    let def = tables::meta_ingests();
    let days = |d: Option<NaiveDate>| d.map(date_to_days);
    let batch = RecordBatch::try_new(
        def.arrow_schema(),
        vec![
            Arc::new(StringArray::from(vec![r.batch_id])),
            Arc::new(StringArray::from(vec![r.content_hash])),
            Arc::new(StringArray::from(vec![r.source])),
            Arc::new(Int64Array::from(vec![r.stats.rows as i64])),
            Arc::new(Int64Array::from(vec![r.stats.malformed as i64])),
            Arc::new(Int64Array::from(vec![r.bytes as i64])),
            Arc::new(Date32Array::from(vec![days(r.stats.first_date)])),
            Arc::new(Date32Array::from(vec![days(r.stats.last_date)])),
            Arc::new(Int64Array::from(vec![r.raw_version])),
            Arc::new(
                TimestampMicrosecondArray::from(vec![r.ingested_at.timestamp_micros()])
                    .with_timezone("UTC"),
            ),
            Arc::new(Float64Array::from(vec![r.seconds])),
            Arc::new(Int64Array::from(vec![
                r.stats.scientific_category_ids as i64,
            ])),
        ],
    )
    .map_err(LakeError::from)?;
    let ctx = lake.session();
    let df = ctx.read_batch(batch).map_err(LakeError::from)?;
    append_table(lake, &def, df, CommitProperties::default()).await?;
    Ok(())
}
