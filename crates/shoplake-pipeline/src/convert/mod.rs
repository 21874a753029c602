//! `shoplake convert`: exports straight to clean, day-partitioned Parquet, without a lake.
//!
//! The reduced job users run with DuckDB, Polars or Spark, done with shoplake's own rules:
//! read CSV / CSV.gz exports, type every field, refuse what the cleaning rules refuse (into
//! `_rejects.csv`, with file, line and reason), drop exact duplicates, fill a missing brand or
//! category_code with `unknown`, add hour_of_day and day_of_week, and write zstd Parquet
//! under `event_date=YYYY-MM-DD/`. No Delta log, rejects table, fact or dimensions: that is
//! `ingest` + `run`.
//!
//! It streams. One thread inflates the input into chunks of whole lines; parse workers apply
//! the rules and append rows to their own per-day Parquet writers, whose row groups in
//! progress are kept within a memory budget. The row keys used to drop duplicates are kept
//! per day within their own budget, cold days moving to disk (see `seen`). Lines whose
//! category id a spreadsheet printed in scientific notation are held back (their text, in
//! memory: a spreadsheet holds at most about a million rows) until every exact row has been
//! seen, then cleaned against those rows' categories, as a run repairs them
//! ([`crate::clean::categories`]).
//!
//! Output is published whole or not at all: everything is written into a hidden staging
//! directory next to the output and renamed into place at the end, so a killed conversion
//! leaves the previous output (or none) and the next one starts afresh.

mod chunks;
mod deferred;
mod output;
mod rejects;
mod seen;
mod worker;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use serde::Serialize;
use shoplake_ingest::IngestError;
use shoplake_ingest::files::{SourceFile, discover};
use shoplake_lake::time::days_to_date;
use shoplake_lake::{Accounting, Progress};

pub use output::output_schema;
pub use rejects::REJECTS_FILE;

use chunks::read_chunks;
use rejects::RejectSink;
use seen::SeenRows;
use worker::{Shared, Worker, WorkerTotals};

use crate::clean::rules::RuleOptions;

/// The name of the run report written inside the output directory.
pub const REPORT_FILE: &str = "_report.json";

/// Why a conversion failed. Messages say what to do.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// A bad input path or file (see [`IngestError`]).
    #[error(transparent)]
    Input(#[from] IngestError),
    /// The arguments make no sense.
    #[error("{0}")]
    Usage(String),
    /// The output directory exists and replacing it was not asked for.
    #[error("'{}' already exists; pass --overwrite to replace it", .0.display())]
    Exists(PathBuf),
    /// An input file could not be read to its end.
    #[error("cannot read '{}': {reason}; nothing was written", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        reason: String,
    },
    /// Writing the output failed.
    #[error("cannot write '{}': {reason}", path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        reason: String,
    },
    /// Arrow could not build a batch.
    #[error(transparent)]
    Arrow(#[from] shoplake_lake::arrow::error::ArrowError),
    /// The counts do not add up: a bug, reported rather than published.
    #[error("internal error, nothing published: {0}")]
    Accounting(String),
}

impl ConvertError {
    pub(crate) fn write(path: &Path, e: impl std::fmt::Display) -> Self {
        ConvertError::Write {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }
    }
}

/// What to convert and how.
#[derive(Debug, Clone)]
pub struct ConvertOptions {
    /// Files (.csv, .csv.gz) or directories holding them.
    pub inputs: Vec<PathBuf>,
    /// The output directory.
    pub out: PathBuf,
    /// Replace `out` when it exists.
    pub overwrite: bool,
    /// Parse workers (the inflating thread comes on top).
    pub workers: usize,
    /// zstd level of the Parquet pages.
    pub zstd_level: i32,
    /// Bytes of Parquet row groups in progress held in memory, over all workers.
    pub writer_memory: usize,
    /// Bytes of duplicate-check keys held in memory before cold days move to disk.
    pub key_memory: usize,
    /// Inflated bytes per chunk handed to a worker.
    pub chunk_bytes: usize,
    /// The cleaning rules' settings (`[rules]`), as for a run.
    pub rules: RuleOptions,
}

impl ConvertOptions {
    /// Defaults: one worker per core, zstd level 1, 512 MiB of row groups, 1 GiB of keys,
    /// 4 MiB chunks.
    pub fn new(inputs: Vec<PathBuf>, out: PathBuf) -> Self {
        ConvertOptions {
            inputs,
            out,
            overwrite: false,
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            zstd_level: 1,
            writer_memory: 512 << 20,
            key_memory: 1 << 30,
            chunk_bytes: 4 << 20,
            rules: RuleOptions::default(),
        }
    }
}

/// Rows of one day of the output.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DayCounts {
    /// The day.
    pub date: NaiveDate,
    /// Rows written.
    pub rows: u64,
    /// Rows dropped as exact duplicates of a written row.
    pub duplicates: u64,
    /// Parquet files of the day.
    pub files: usize,
}

/// What a conversion did. `lines` = `rows` + `duplicates` + `rejected`.
#[derive(Debug, Clone, Serialize)]
pub struct ConvertReport {
    /// The input files, in the order read.
    pub inputs: Vec<String>,
    /// The output directory.
    pub out: String,
    /// Data lines read (headers excluded).
    pub lines: u64,
    /// Rows written.
    pub rows: u64,
    /// Valid rows dropped as exact duplicates.
    pub duplicates: u64,
    /// Lines refused, in `_rejects.csv`.
    pub rejected: u64,
    /// Rows written whose category id (in scientific notation) was repaired.
    pub repaired: u64,
    /// Rows written whose category id (in scientific notation) is unknown (-1).
    pub unknown_category: u64,
    /// Rejected lines per reason code.
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// Per day, in date order.
    pub days: Vec<DayCounts>,
    /// Bytes of Parquet written.
    pub parquet_bytes: u64,
    /// Bytes of input read as stored (compressed when gzip).
    pub input_bytes: u64,
    /// Days whose duplicate-check keys were moved to disk to stay within the budget.
    pub key_days_spilled: u64,
    /// Spilled key files (a day has 16) read back because rows of their day came later.
    pub key_files_reloaded: u64,
    /// Wall time.
    pub seconds: f64,
}

impl ConvertReport {
    /// Where the lines went: lines = rows + duplicates + rejected.
    pub fn accounting(&self) -> Accounting {
        Accounting {
            raw: self.lines,
            clean: self.rows,
            duplicates: self.duplicates,
            rejected: self.rejected,
            repaired: self.repaired,
            unknown_category: self.unknown_category,
        }
    }
}

/// Converts the inputs; see the module documentation.
pub fn convert(
    opts: &ConvertOptions,
    progress: &dyn Progress,
) -> Result<ConvertReport, ConvertError> {
    let started = Instant::now();
    if opts.workers == 0 {
        return Err(ConvertError::Usage("--threads must be at least 1".into()));
    }
    let sources = discover(&opts.inputs)?;
    let out = &opts.out;
    if out.exists() && !opts.overwrite {
        return Err(ConvertError::Exists(out.clone()));
    }
    let staging = sibling(out, "partial")?;
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(|e| ConvertError::write(&staging, e))?;
    }
    std::fs::create_dir_all(&staging).map_err(|e| ConvertError::write(&staging, e))?;

    let result = convert_into(opts, &sources, &staging, progress);
    let mut report = match result {
        Ok(report) => report,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    report.out = out.display().to_string();
    report.seconds = started.elapsed().as_secs_f64();
    let json = serde_json::to_vec_pretty(&report).expect("report serialises");
    let report_path = staging.join(REPORT_FILE);
    std::fs::write(&report_path, json).map_err(|e| ConvertError::write(&report_path, e))?;
    publish(&staging, out)?;
    Ok(report)
}

/// A hidden path next to `out`: `.NAME.<what>`.
fn sibling(out: &Path, what: &str) -> Result<PathBuf, ConvertError> {
    let name = out.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
        ConvertError::Usage(format!("'{}' is not a directory name", out.display()))
    })?;
    Ok(out.with_file_name(format!(".{name}.{what}")))
}

/// Moves the staging directory to `out`, replacing what was there.
fn publish(staging: &Path, out: &Path) -> Result<(), ConvertError> {
    if out.exists() {
        let old = sibling(out, "old")?;
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(|e| ConvertError::write(&old, e))?;
        }
        std::fs::rename(out, &old).map_err(|e| ConvertError::write(out, e))?;
        std::fs::rename(staging, out).map_err(|e| ConvertError::write(out, e))?;
        std::fs::remove_dir_all(&old).map_err(|e| ConvertError::write(&old, e))?;
    } else {
        if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| ConvertError::write(parent, e))?;
        }
        std::fs::rename(staging, out).map_err(|e| ConvertError::write(out, e))?;
    }
    Ok(())
}

fn convert_into(
    opts: &ConvertOptions,
    sources: &[SourceFile],
    staging: &Path,
    progress: &dyn Progress,
) -> Result<ConvertReport, ConvertError> {
    let paths: Vec<PathBuf> = sources.iter().map(|s| s.path.clone()).collect();
    let input_bytes: u64 = sources.iter().map(|s| s.bytes).sum();
    let props = output::writer_properties(opts.zstd_level)?;
    let spill_dir = staging.join("_keys");
    std::fs::create_dir_all(&spill_dir).map_err(|e| ConvertError::write(&spill_dir, e))?;
    let seen = Arc::new(SeenRows::new(opts.key_memory, &spill_dir));
    let rejects = Arc::new(Mutex::new(RejectSink::create(staging, &paths)?));
    let bytes_read = Arc::new(AtomicU64::new(0));
    let failed = AtomicBool::new(false);
    let reading_done = AtomicBool::new(false);
    let (send, receive) = mpsc::sync_channel::<chunks::Chunk>(opts.workers * 2);
    let receive = Mutex::new(receive);
    let budget = (opts.writer_memory / opts.workers).max(1 << 20);
    let shared = Shared {
        staging: staging.to_path_buf(),
        props,
        seen: seen.clone(),
        rejects: rejects.clone(),
        budget,
        rules: opts.rules,
        spill: spill_dir.clone(),
    };

    progress.start("convert", Some(input_bytes), "bytes");
    let (read_result, worker_results) = std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let result = read_all(sources, opts.chunk_bytes, &bytes_read, &failed, send);
            reading_done.store(true, Ordering::SeqCst);
            result
        });
        let workers: Vec<_> = (0..opts.workers)
            .map(|id| {
                let mut worker = Worker::new(id, shared.clone(), None);
                let (receive, failed) = (&receive, &failed);
                scope.spawn(move || -> Result<WorkerTotals, ConvertError> {
                    let _guard = FailOnPanic(failed);
                    loop {
                        let next = receive
                            .lock()
                            .unwrap_or_else(|poisoned| poisoned.into_inner())
                            .recv();
                        let Ok(chunk) = next else { break };
                        if let Err(e) = worker.process(&chunk) {
                            failed.store(true, Ordering::SeqCst);
                            return Err(e);
                        }
                    }
                    worker.finish()
                })
            })
            .collect();
        let mut shown = 0;
        let mut show = || {
            let now = bytes_read.load(Ordering::Relaxed);
            progress.advance(now.saturating_sub(shown));
            shown = shown.max(now);
        };
        while !reading_done.load(Ordering::SeqCst) {
            show();
            std::thread::sleep(Duration::from_millis(100));
        }
        show();
        let read_result = reader.join();
        let worker_results: Vec<_> = workers.into_iter().map(|w| w.join()).collect();
        (read_result, worker_results)
    });

    let read_result =
        read_result.map_err(|_| ConvertError::Accounting("reader panicked".into()))?;
    let mut totals = Vec::new();
    for r in worker_results {
        let r = r.map_err(|_| ConvertError::Accounting("a worker panicked".into()))?;
        totals.push(r?);
    }
    read_result?;
    // Lines whose category id a spreadsheet printed in scientific notation waited for every
    // exact row to be seen; they are cleaned now, against all the categories the input has.
    // One worker cleans them: they are rare in a store's own export, and an export saved in
    // a spreadsheet is small.
    let deferred: Vec<_> = totals
        .iter_mut()
        .filter_map(|t| t.deferred.take())
        .collect();
    if !deferred.is_empty() {
        let known = deferred::known_categories(staging)?;
        let mut late = Worker::new(opts.workers, shared, Some(Arc::new(known)));
        for file in deferred {
            file.replay(|group| late.process_deferred(group))?;
        }
        totals.push(late.finish()?);
    } else {
        // The shared handles go, so that the rejects file can be closed below.
        drop(shared);
    }
    let rejected_rows = Arc::into_inner(rejects)
        .expect("workers are done")
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .finish()?;
    let (key_days_spilled, key_files_reloaded) = seen.spill_counts();
    drop(seen);
    std::fs::remove_dir_all(&spill_dir).map_err(|e| ConvertError::write(&spill_dir, e))?;
    let mut report = merge(sources, totals, rejected_rows, staging, input_bytes)?;
    report.key_days_spilled = key_days_spilled;
    report.key_files_reloaded = key_files_reloaded;
    progress.finish(&format!(
        "{} rows written, {} duplicates, {} rejected",
        report.rows, report.duplicates, report.rejected
    ));
    Ok(report)
}

/// Reads every file in order into the chunk queue; closes the queue when done.
fn read_all(
    sources: &[SourceFile],
    chunk_bytes: usize,
    bytes_read: &Arc<AtomicU64>,
    failed: &AtomicBool,
    send: mpsc::SyncSender<chunks::Chunk>,
) -> Result<(), ConvertError> {
    for (i, source) in sources.iter().enumerate() {
        read_chunks(i, source, chunk_bytes, bytes_read.clone(), |chunk| {
            hand_over(&send, chunk, failed)
        })
        .map_err(|e| {
            failed.store(true, Ordering::SeqCst);
            ConvertError::Read {
                path: source.path.clone(),
                reason: e.to_string(),
            }
        })?;
    }
    Ok(())
}

/// Queues a chunk for the workers; false when they stopped (an error or a panic), so that
/// the reader never waits forever on a queue nobody empties.
fn hand_over(
    send: &mpsc::SyncSender<chunks::Chunk>,
    chunk: chunks::Chunk,
    failed: &AtomicBool,
) -> bool {
    let mut chunk = chunk;
    loop {
        if failed.load(Ordering::SeqCst) {
            return false;
        }
        match send.try_send(chunk) {
            Ok(()) => return true,
            Err(mpsc::TrySendError::Full(back)) => {
                chunk = back;
                std::thread::sleep(Duration::from_micros(200));
            }
            Err(mpsc::TrySendError::Disconnected(_)) => return false,
        }
    }
}

/// Marks the conversion failed when a worker thread unwinds.
struct FailOnPanic<'a>(&'a AtomicBool);

impl Drop for FailOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::SeqCst);
        }
    }
}

/// Adds up the workers' counts and checks that every line is accounted for.
fn merge(
    sources: &[SourceFile],
    totals: Vec<WorkerTotals>,
    rejected_rows: u64,
    staging: &Path,
    input_bytes: u64,
) -> Result<ConvertReport, ConvertError> {
    let mut lines = 0;
    let (mut repaired, mut unknown_category) = (0, 0);
    let mut rejected_by_reason: BTreeMap<String, u64> = BTreeMap::new();
    let mut days: BTreeMap<i32, DayCounts> = BTreeMap::new();
    for t in totals {
        lines += t.lines;
        repaired += t.repaired;
        unknown_category += t.unknown_category;
        for (reason, n) in t.rejected {
            *rejected_by_reason.entry(reason.to_string()).or_default() += n;
        }
        for d in t.days {
            if d.written != d.rows_in_file {
                return Err(ConvertError::Accounting(format!(
                    "{} rows written for {} but the file holds {}",
                    d.written,
                    days_to_date(d.day),
                    d.rows_in_file
                )));
            }
            let entry = days.entry(d.day).or_insert_with(|| DayCounts {
                date: days_to_date(d.day),
                rows: 0,
                duplicates: 0,
                files: 0,
            });
            entry.rows += d.written;
            entry.duplicates += d.duplicates;
            entry.files += usize::from(d.written > 0);
        }
    }
    let rows: u64 = days.values().map(|d| d.rows).sum();
    let duplicates: u64 = days.values().map(|d| d.duplicates).sum();
    let rejected: u64 = rejected_by_reason.values().sum();
    let accounting = Accounting {
        raw: lines,
        clean: rows,
        duplicates,
        rejected,
        repaired,
        unknown_category,
    };
    if rejected != rejected_rows || !accounting.balances() {
        return Err(ConvertError::Accounting(format!(
            "the lines do not add up: {accounting} ({rejected_rows} in {REJECTS_FILE})"
        )));
    }
    Ok(ConvertReport {
        inputs: sources
            .iter()
            .map(|s| s.path.display().to_string())
            .collect(),
        out: String::new(),
        lines,
        rows,
        duplicates,
        rejected,
        repaired,
        unknown_category,
        rejected_by_reason,
        days: days.into_values().collect(),
        parquet_bytes: directory_bytes(staging, "parquet"),
        input_bytes,
        key_days_spilled: 0,
        key_files_reloaded: 0,
        seconds: 0.0,
    })
}

/// Total size of the files ending in `.ext` under `dir`.
fn directory_bytes(dir: &Path, ext: &str) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| {
            let path = e.path();
            if path.is_dir() {
                directory_bytes(&path, ext)
            } else if path.extension().is_some_and(|x| x == ext) {
                e.metadata().map_or(0, |m| m.len())
            } else {
                0
            }
        })
        .sum()
}
