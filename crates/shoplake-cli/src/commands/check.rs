//! `shoplake check`: the quality checks on the published tables.

use chrono::Utc;
use shoplake_lake::Lake;
use shoplake_quality::checks::{CheckOutcome, Severity, check_published};

use crate::cli::CheckArgs;
use crate::config::Settings;
use crate::{Exit, gate, usage};

pub async fn run(lake: &Lake, settings: &Settings, args: &CheckArgs) -> Result<(), Exit> {
    let checks: Vec<_> = match &args.table {
        Some(table) => {
            if shoplake_lake::tables::by_name(table).is_none() {
                return Err(usage(anyhow::anyhow!(
                    "unknown table '{table}'; tables are named layer.table, e.g. clean.events"
                )));
            }
            settings
                .checks
                .iter()
                .filter(|c| &c.table == table)
                .cloned()
                .collect()
        }
        None => settings.checks.clone(),
    };
    let checked = check_published(lake, &checks, Utc::now()).await?;
    let (run_id, outcomes) = (checked.run_id, checked.outcomes);

    let failed: Vec<&CheckOutcome> = outcomes.iter().filter(|o| !o.passed).collect();
    println!(
        "{} checks evaluated, {} passed, {} failed (results stored as run {run_id} in quality.results)",
        outcomes.len(),
        outcomes.len() - failed.len(),
        failed.len()
    );
    if !failed.is_empty() {
        print_failures(&failed);
    }
    let errors = failed
        .iter()
        .filter(|o| o.check.severity == Severity::Error)
        .count();
    if errors > 0 {
        return Err(gate(anyhow::anyhow!(
            "{errors} check(s) of severity error failed"
        )));
    }
    Ok(())
}

/// One line per failed check, with up to three offending rows under it.
pub fn print_failures(failures: &[&CheckOutcome]) {
    for o in failures {
        let day = o.partition.map(|d| format!(" [{d}]")).unwrap_or_default();
        println!(
            "  {:<5} {}{} {}: {} (required: {})",
            o.check.severity, o.check.table, day, o.check.name, o.observed, o.threshold
        );
        for row in o.sample.iter().take(3) {
            println!("          {row}");
        }
    }
}
