//! `shoplake profile`: the exploratory profile of an export (CSV / CSV.gz) or a lake table.
//!
//! A lake table is profiled in place, in the lake's query session (its memory limit). An export
//! is read with the project's own robust reader (malformed lines become flagged rows, never a
//! crash) on a blocking thread that hands batches over a small channel, so memory holds a few
//! batches whatever the file size; the profile copies that one-shot stream once to a temporary
//! Parquet directory and runs its queries on the copy.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use anyhow::{Context, anyhow};
use futures::StreamExt;
use shoplake_ingest::files::{Lineage, RawBatchReader, discover, until_finished};
use shoplake_lake::Progress;
use shoplake_lake::arrow::array::RecordBatch;
use shoplake_lake::datafusion::error::DataFusionError;
use shoplake_lake::datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use shoplake_lake::write::stream_to_dataframe;
use shoplake_lake::{Lake, SqlCatalog, tables};
use shoplake_quality::profile::{Format, Profile, ProfileError, ProfileOptions, Sample, profile};

use crate::cli::{ProfileArgs, ProfileFormat};
use crate::progress::Bars;
use crate::{Exit, usage};

pub async fn run(lake: &Lake, args: &ProfileArgs, bars: &Bars) -> Result<(), Exit> {
    if let Some(f) = args.sample
        && !(f > 0.0 && f <= 1.0)
    {
        return Err(usage(anyhow!(
            "--sample {f} is outside (0, 1]; give the fraction of rows to profile, e.g. --sample 0.05"
        )));
    }
    let mut options = ProfileOptions::new(args.target.clone());
    options.sample = args.sample.map(|fraction| Sample {
        fraction,
        seed: args.seed,
    });
    options.approx = args.approx;

    // Check the output first: a wrong --out should not cost a whole profile.
    let out = match &args.out {
        Some(path) => Some(OutFile::create(path)?),
        None => None,
    };

    let found = if tables::by_name(&args.target).is_some() {
        let catalog = SqlCatalog::open(lake).await?;
        let input = catalog
            .context()
            .table(args.target.as_str())
            .await
            .with_context(|| format!("cannot read {}", args.target))?;
        profile(catalog.context(), input, &options, bars)
            .await
            .map_err(profile_error)?
    } else {
        profile_file(lake, &args.target, &options, bars).await?
    };

    let text = found.render(format(args.format));
    match out {
        Some(file) => file.finish(&text)?,
        None => {
            let stdout = std::io::stdout();
            let mut lock = stdout.lock();
            match lock.write_all(text.as_bytes()).and_then(|()| lock.flush()) {
                Ok(()) => {}
                // `shoplake profile ... | head` is not a failure.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                Err(e) => return Err(Exit::from(e)),
            }
        }
    }
    Ok(())
}

fn format(f: ProfileFormat) -> Format {
    match f {
        ProfileFormat::Table => Format::Table,
        ProfileFormat::Md => Format::Md,
        ProfileFormat::Json => Format::Json,
        ProfileFormat::Html => Format::Html,
    }
}

fn profile_error(e: ProfileError) -> Exit {
    if e.is_usage() {
        usage(e)
    } else {
        Exit::from(e)
    }
}

/// Profiles an export file (or a directory of its files), streamed through the robust reader.
async fn profile_file(
    lake: &Lake,
    target: &str,
    options: &ProfileOptions,
    bars: &Bars,
) -> Result<Profile, Exit> {
    let path = PathBuf::from(target);
    if !path.exists() {
        let names: Vec<String> = tables::all().iter().map(|t| t.qualified_name()).collect();
        return Err(usage(anyhow!(
            "'{target}' is neither an existing file nor a lake table ({})",
            names.join(", ")
        )));
    }
    // The same checks as `shoplake ingest` (readable, not empty, header), before any work.
    let files = discover(std::slice::from_ref(&path)).map_err(crate::commands::ingest::exit_for)?;
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
    let profiling = profile(&ctx, input, &options, bars);
    tokio::pin!(profiling);
    let mut ticker = tokio::time::interval(std::time::Duration::from_millis(250));
    let mut shown = 0u64;
    let found = loop {
        tokio::select! {
            result = &mut profiling => break result,
            _ = ticker.tick() => {
                let now = rows_read.load(Ordering::Relaxed);
                bars.advance(now.saturating_sub(shown));
                shown = now;
            }
        }
    };
    // A read failure (corrupt gzip, I/O error) surfaces as a failed query: report its cause.
    match reader.await {
        Ok(Err(reason)) => return Err(Exit::from(anyhow!(reason))),
        Err(e) => return Err(Exit::from(anyhow!("the file reader failed: {e}"))),
        Ok(Ok(())) => {}
    }
    found.map_err(profile_error)
}

/// The `--out` file, checked up front and written at the end (an existing file is replaced
/// only when the profile is ready).
struct OutFile {
    path: PathBuf,
}

impl OutFile {
    fn create(path: &Path) -> Result<Self, Exit> {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !parent.is_dir() {
            return Err(usage(anyhow!(
                "cannot write --out {}: the directory {} does not exist",
                path.display(),
                parent.display()
            )));
        }
        if path.is_dir() {
            return Err(usage(anyhow!(
                "cannot write --out {}: it is a directory; give a file name",
                path.display()
            )));
        }
        Ok(OutFile {
            path: path.to_path_buf(),
        })
    }

    fn finish(self, text: &str) -> Result<(), Exit> {
        std::fs::write(&self.path, text)
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        Ok(())
    }
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
