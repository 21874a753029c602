//! Where a profile's rows come from: a lake table, profiled in place in the lake's query
//! session, or an export file (CSV / CSV.gz, or a directory of them) read with the ingest's
//! robust reader.
//!
//! An export is read on a blocking thread that hands batches over a small channel, so memory
//! holds a few batches whatever the file size (malformed lines become flagged rows, never a
//! crash); the profile copies that one-shot stream once to a temporary Parquet directory and
//! runs its queries on the copy.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use datafusion::arrow::array::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::StreamExt;
use shoplake_ingest::files::{Lineage, RawBatchReader, discover, until_finished};
use shoplake_lake::write::stream_to_dataframe;
use shoplake_lake::{Lake, Progress, tables};
use shoplake_sql::SqlCatalog;

use crate::{Profile, ProfileError, ProfileOptions, profile};

/// Profiles `target`: a lake table by its name (`raw.events`, `model.fact_user_events`, ...),
/// else an export file or a directory of them.
pub async fn profile_target(
    lake: &Lake,
    target: &str,
    options: &ProfileOptions,
    progress: &dyn Progress,
) -> Result<Profile, ProfileError> {
    if tables::by_name(target).is_some() {
        profile_table(lake, target, options, progress).await
    } else {
        profile_export(lake, Path::new(target), options, progress).await
    }
}

/// Profiles a lake table in place.
pub async fn profile_table(
    lake: &Lake,
    table: &str,
    options: &ProfileOptions,
    progress: &dyn Progress,
) -> Result<Profile, ProfileError> {
    let catalog = SqlCatalog::open(lake).await?;
    let input = catalog.context().table(table).await?;
    profile(catalog.context(), input, options, progress).await
}

/// Profiles an export file (or a directory of its files), streamed through the robust reader.
pub async fn profile_export(
    lake: &Lake,
    path: &Path,
    options: &ProfileOptions,
    progress: &dyn Progress,
) -> Result<Profile, ProfileError> {
    if !path.exists() {
        return Err(ProfileError::NoSuchInput {
            target: path.display().to_string(),
            tables: tables::all().iter().map(|t| t.qualified_name()).collect(),
        });
    }
    // The same checks as `shoplake ingest` (readable, not empty, header), before any work.
    let files = discover(&[PathBuf::from(path)])?;
    let schema = tables::raw_events().arrow_schema();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<RecordBatch, DataFusionError>>(4);
    let finished = Arc::new(AtomicBool::new(false));
    let reader = {
        let finished = finished.clone();
        tokio::task::spawn_blocking(move || -> Result<(), String> {
            for file in files {
                let read_err = |e: &dyn std::fmt::Display| {
                    format!("cannot read '{}': {e}", file.path.display())
                };
                let lineage = Lineage {
                    source: file.path.display().to_string(),
                    batch_id: String::new(),
                    ingested_at_micros: 0,
                };
                let batches = RawBatchReader::open(&file.path, file.gzip, lineage)
                    .map_err(|e| read_err(&e))?;
                for batch in batches {
                    let failure = batch.as_ref().err().map(|e| read_err(e));
                    let batch = batch.map_err(|e| DataFusionError::ArrowError(Box::new(e), None));
                    if tx.blocking_send(batch).is_err() {
                        // The profile stopped reading (it failed and says why).
                        return Ok(());
                    }
                    if let Some(reason) = failure {
                        return Err(reason);
                    }
                }
            }
            finished.store(true, Ordering::SeqCst);
            Ok(())
        })
    };
    let rows_read = Arc::new(AtomicU64::new(0));
    let stream = Box::pin(RecordBatchStreamAdapter::new(
        schema.clone(),
        counted(
            until_finished(rx, finished, || {
                DataFusionError::Execution(
                    "the file reader stopped before the end of the file".into(),
                )
            }),
            rows_read.clone(),
        ),
    ));
    let ctx = lake.session();
    let input = stream_to_dataframe(&ctx, schema, stream)?;
    let mut options = options.clone();
    options.scan_once = true;

    // Rows read so far feed the progress of the step that copies the input.
    let profiling = profile(&ctx, input, &options, progress);
    tokio::pin!(profiling);
    let mut ticker = tokio::time::interval(std::time::Duration::from_millis(250));
    let mut shown = 0u64;
    let found = loop {
        tokio::select! {
            result = &mut profiling => break result,
            _ = ticker.tick() => {
                let now = rows_read.load(Ordering::Relaxed);
                progress.advance(now.saturating_sub(shown));
                shown = now;
            }
        }
    };
    // A read failure (corrupt gzip, I/O error) surfaces as a failed query: report its cause.
    match reader.await {
        Ok(Err(reason)) => return Err(ProfileError::Read(reason)),
        Err(e) => {
            return Err(ProfileError::Internal(format!(
                "the file reader failed: {e}"
            )));
        }
        Ok(Ok(())) => {}
    }
    found
}

/// Adds the rows of each batch that goes by to `rows_read` (for progress).
fn counted(
    batches: impl futures::Stream<Item = Result<RecordBatch, DataFusionError>> + Send,
    rows_read: Arc<AtomicU64>,
) -> impl futures::Stream<Item = Result<RecordBatch, DataFusionError>> + Send {
    batches.inspect(move |batch| {
        if let Ok(b) = batch {
            rows_read.fetch_add(b.num_rows() as u64, Ordering::Relaxed);
        }
    })
}
