//! `shoplake ingest`.

use shoplake_ingest::files::FileOutcome;
use shoplake_ingest::{IngestError, IngestReport, ingest_paths};
use shoplake_lake::Lake;

use crate::cli::IngestArgs;
use crate::progress::Bars;
use crate::{Exit, usage};

pub async fn run(lake: &Lake, args: &IngestArgs, bars: &Bars, quiet: bool) -> Result<(), Exit> {
    let report = ingest(lake, &args.paths, bars).await?;
    if !quiet {
        print_report(&report);
        if report.rows() > 0 {
            println!("next: `shoplake run` to bring clean and model tables up to date");
        }
    }
    Ok(())
}

/// Ingests and maps errors to exit codes: a wrong argument is a usage error (2).
pub async fn ingest(
    lake: &Lake,
    paths: &[std::path::PathBuf],
    bars: &Bars,
) -> Result<IngestReport, Exit> {
    ingest_paths(lake, paths, bars).await.map_err(exit_for)
}

/// A wrong argument is a usage error (2); anything else a failure (1).
pub fn exit_for(e: IngestError) -> Exit {
    if e.is_usage() {
        usage(e)
    } else {
        Exit::from(e)
    }
}

pub fn print_report(report: &IngestReport) {
    for file in &report.files {
        match file {
            FileOutcome::Ingested {
                source,
                stats,
                raw_version,
                seconds,
                ..
            } => {
                let days = match (stats.first_date, stats.last_date) {
                    (Some(a), Some(b)) if a == b => format!("day {a}"),
                    (Some(a), Some(b)) => format!("days {a} to {b}"),
                    _ => "no days".to_string(),
                };
                println!(
                    "ingested {source}: {} rows ({} malformed), {days}, raw.events version {raw_version}, {seconds:.1}s",
                    stats.rows, stats.malformed
                );
            }
            FileOutcome::AlreadyIngested { source, batch_id } => {
                println!(
                    "skipped {source}: this content was already ingested (batch {batch_id}); nothing added"
                );
            }
        }
    }
}
