//! `shoplake generate`.

use std::time::Instant;

use shoplake_ingest::generate::{GenerateOptions, generate_to_path};
use shoplake_lake::Progress;

use crate::cli::GenerateArgs;
use crate::progress::Bars;
use crate::{Exit, usage};

pub fn run(args: &GenerateArgs, quiet: bool) -> Result<(), Exit> {
    let options = GenerateOptions {
        rows: args.rows,
        seed: args.seed,
        start: args.start,
        days: args.days,
        gap_day: args.gap_day,
    };
    write(&options, &args.out, quiet).map(|_| ())
}

/// Generates `options` into `out`, showing progress; prints a one-line summary.
pub fn write(
    options: &GenerateOptions,
    out: &std::path::Path,
    quiet: bool,
) -> Result<shoplake_ingest::generate::GenerateReport, Exit> {
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| usage(anyhow::anyhow!("cannot create {}: {e}", parent.display())))?;
    }
    let bars = Bars::new(quiet);
    bars.start("generate", Some(options.rows), "rows");
    let started = Instant::now();
    let mut last = 0u64;
    let report = generate_to_path(options, out, &mut |rows| {
        bars.advance(rows - last);
        last = rows;
    })
    .map_err(|e| match e {
        shoplake_ingest::generate::GenerateError::InvalidOptions(_) => usage(e),
        other => Exit::from(other),
    })?;
    let seconds = started.elapsed().as_secs_f64();
    bars.finish("done");
    if !quiet {
        println!(
            "wrote {} rows ({} exact duplicates, {} to {}) to {} in {:.1}s ({:.1} M rows/s)",
            report.rows,
            report.duplicates,
            report.first_event,
            report.last_event,
            out.display(),
            seconds,
            report.rows as f64 / seconds.max(1e-9) / 1e6
        );
    }
    Ok(report)
}
