//! `shoplake ingest`.

use shoplake_ingest::files::FileOutcome;
use shoplake_ingest::{IngestError, IngestReport, ingest_paths};
use shoplake_lake::Lake;

use shoplake_pipeline::clean::rules::{RuleOptions, ScientificIds};

use crate::cli::IngestArgs;
use crate::config::Settings;
use crate::output::thousands;
use crate::progress::Bars;
use crate::{Exit, usage};

pub async fn run(
    lake: &Lake,
    settings: &Settings,
    args: &IngestArgs,
    bars: &Bars,
    quiet: bool,
) -> Result<(), Exit> {
    let report = ingest(lake, &args.paths, bars).await?;
    if !quiet {
        print_report(&report, settings.rules);
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

pub fn print_report(report: &IngestReport, rules: RuleOptions) {
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
                if stats.scientific_category_ids > 0 {
                    let then = match rules.scientific_ids {
                        ScientificIds::Repair => {
                            "their categories will be matched by product and code where possible"
                        }
                        ScientificIds::Reject => {
                            "they will be rejected as bad_category_id ([rules] scientific_ids = \"reject\")"
                        }
                    };
                    println!(
                        "  {} of {} category_id values are in scientific notation (the file went through a spreadsheet, which keeps 15 significant digits); {then}",
                        thousands(stats.scientific_category_ids),
                        thousands(stats.category_ids)
                    );
                }
            }
            FileOutcome::AlreadyIngested { source, batch_id } => {
                println!(
                    "skipped {source}: this content was already ingested (batch {batch_id}); nothing added"
                );
            }
        }
    }
}
