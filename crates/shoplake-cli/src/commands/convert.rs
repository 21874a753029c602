//! `shoplake convert`.

use shoplake_ingest::IngestError;
use shoplake_pipeline::convert::{
    ConvertError, ConvertOptions, ConvertReport, REJECTS_FILE, convert,
};

use crate::cli::{ConvertArgs, ReportFormat};
use crate::commands::ingest::exit_for;
use crate::config::Settings;
use crate::progress::Bars;
use crate::{Exit, usage};

pub fn run(args: &ConvertArgs, settings: &Settings, quiet: bool) -> Result<(), Exit> {
    let mut options = ConvertOptions::new(args.paths.clone(), args.out.clone());
    options.overwrite = args.overwrite;
    options.zstd_level = args.zstd_level;
    if let Some(n) = args.threads {
        options.workers = n;
    }
    // Row groups in progress take at most a quarter of the memory budget and the duplicate
    // check's keys another quarter; the rest is left to the chunks in flight, the batches
    // being built and the allocator's slack (peak RSS lands near the limit, at times above it;
    // see BENCHMARKS.md).
    options.writer_memory = settings.memory_limit / 4;
    options.key_memory = settings.memory_limit / 4;
    options.rules = settings.rules;
    let bars = Bars::new(quiet || args.format == ReportFormat::Json);
    let report = convert(&options, &bars).map_err(|e| match e {
        ConvertError::Input(e @ IngestError::Usage(_))
        | ConvertError::Input(e @ IngestError::Missing { .. })
        | ConvertError::Input(e @ IngestError::EmptyDirectory(_)) => exit_for(e),
        ConvertError::Input(e) => Exit::from(e),
        e @ (ConvertError::Usage(_) | ConvertError::Exists(_)) => usage(e),
        other => Exit::from(other),
    })?;
    match args.format {
        ReportFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serialises")
        ),
        ReportFormat::Table if !quiet => print_report(&report),
        ReportFormat::Table => {}
    }
    Ok(())
}

fn print_report(r: &ConvertReport) {
    let reasons: Vec<String> = r
        .rejected_by_reason
        .iter()
        .map(|(reason, n)| format!("{reason} {n}"))
        .collect();
    let files: usize = r.days.iter().map(|d| d.files).sum();
    println!(
        "read {} lines from {} file(s) ({:.1} MB): {} rows written, {} exact duplicates dropped, {} rejected{}",
        r.lines,
        r.inputs.len(),
        r.input_bytes as f64 / 1e6,
        r.rows,
        r.duplicates,
        r.rejected,
        if reasons.is_empty() {
            String::new()
        } else {
            format!(" ({})", reasons.join(", "))
        }
    );
    if let (Some(first), Some(last)) = (r.days.first(), r.days.last()) {
        println!(
            "wrote {} days ({} to {}) in {files} Parquet files ({:.1} MB) under {} in {:.1}s ({:.2} M lines/s)",
            r.days.len(),
            first.date,
            last.date,
            r.parquet_bytes as f64 / 1e6,
            r.out,
            r.seconds,
            r.lines as f64 / r.seconds.max(1e-9) / 1e6
        );
    }
    if r.repaired > 0 || r.unknown_category > 0 {
        println!(
            "of the rows written, {} had a category id in scientific notation repaired from a known category, {} could not be repaired (category_id -1, data_issue says so)",
            r.repaired, r.unknown_category
        );
    }
    if r.rejected > 0 {
        println!(
            "rejected lines with their reasons: {}/{REJECTS_FILE}",
            r.out
        );
    }
}
