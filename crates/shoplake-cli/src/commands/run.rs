//! `shoplake run`.

use shoplake_lake::Lake;
use shoplake_pipeline::{RunOptions, RunReport, Selection, run as run_pipeline};

use crate::cli::RunArgs;
use crate::config::Settings;
use crate::progress::Bars;
use crate::{Exit, gate, usage};

pub async fn run(
    lake: &Lake,
    settings: &Settings,
    args: &RunArgs,
    bars: &Bars,
) -> Result<(), Exit> {
    let selection = match (args.date, args.from, args.to) {
        (Some(d), _, _) => Selection::Dates([d].into()),
        (None, Some(from), Some(to)) => Selection::range(from, to).map_err(usage)?,
        _ => Selection::Incremental,
    };
    let options = RunOptions {
        selection,
        dry_run: args.dry_run,
        checks: settings.checks.clone(),
        rules: settings.rules,
    };
    let report = run_pipeline(lake, &options, bars).await?;
    print_report(&report);
    gate_verdict(&report)
}

/// Prints failed checks; a failed `error` check is exit code 3.
pub fn gate_verdict(report: &RunReport) -> Result<(), Exit> {
    let failures = report.failures();
    if !failures.is_empty() {
        println!("\nfailed checks:");
        crate::commands::check::print_failures(&failures);
    }
    if report.gate_failed() {
        let mut held = Vec::new();
        if !report.blocked_days.is_empty() {
            let days: Vec<String> = report.blocked_days.iter().map(|d| d.to_string()).collect();
            held.push(format!("day(s) {}", days.join(", ")));
        }
        if report.dimensions_blocked {
            held.push("the dimensions".to_string());
        }
        return Err(gate(anyhow::anyhow!(
            "quality gate failed: {} not published (readers still see the previous version); see `shoplake query \"SELECT * FROM quality.results WHERE NOT passed\"`",
            held.join(" and ")
        )));
    }
    Ok(())
}

/// Prints the plan (dry run) or the run's accounting.
pub fn print_report(report: &RunReport) {
    for date in &report.plan.empty_requested {
        println!("{date}: no raw data; nothing to rebuild");
    }
    if report.plan.is_empty() {
        println!("lake is up to date: no day changed since the last run");
        return;
    }
    if report.dry_run {
        println!(
            "would rebuild {} day(s) (planned against raw.events version {}):",
            report.plan.days.len(),
            report
                .plan
                .raw_version
                .map_or("-".to_string(), |v| v.to_string())
        );
        println!("{:<12} {:>12} {:>6}  why", "day", "raw rows", "files");
        for d in &report.plan.days {
            let rows = d
                .raw
                .as_ref()
                .and_then(|r| r.rows)
                .map_or("-".to_string(), |r| r.to_string());
            let files = d.raw.as_ref().map_or(0, |r| r.files);
            println!("{:<12} {:>12} {:>6}  {}", d.date, rows, files, d.reason);
        }
        return;
    }
    if report.days.is_empty() {
        println!("no day published");
        return;
    }
    // Rows whose category id a spreadsheet mangled get their own columns, when there are any.
    let total = report.total();
    let issues = total.repaired > 0 || total.unknown_category > 0;
    let extra = |repaired: u64, unknown: u64| {
        if issues {
            format!(" {repaired:>9} {unknown:>9}")
        } else {
            String::new()
        }
    };
    let heading = if issues {
        format!(" {:>9} {:>9}", "repaired", "unknown")
    } else {
        String::new()
    };
    println!(
        "{:<12} {:>11} {:>11} {:>10} {:>9}{heading}  why",
        "day", "raw", "clean", "duplicates", "rejected"
    );
    for d in &report.days {
        let r = &d.rows;
        println!(
            "{:<12} {:>11} {:>11} {:>10} {:>9}{}  {}",
            d.date,
            r.raw,
            r.clean,
            r.duplicates,
            r.rejected,
            extra(r.repaired, r.unknown_category),
            d.reason
        );
    }
    println!(
        "{:<12} {:>11} {:>11} {:>10} {:>9}{}",
        "total",
        total.raw,
        total.clean,
        total.duplicates,
        total.rejected,
        extra(total.repaired, total.unknown_category)
    );
    if issues {
        println!(
            "of the clean rows, {} had a category id in scientific notation repaired from a known category, {} could not be repaired (category_id -1, their category code kept; see clean.events.data_issue)",
            total.repaired, total.unknown_category
        );
    }
    let dims: Vec<String> = report
        .dimensions
        .iter()
        .map(|(name, rows)| format!("{name} {rows}"))
        .collect();
    if dims.is_empty() {
        println!("dimensions not rebuilt");
    } else {
        println!("dimensions rebuilt: {}", dims.join(", "));
    }
    if !report.month_marts.is_empty() {
        let marts: Vec<String> = report
            .month_marts
            .iter()
            .map(|(name, rows)| format!("{name} {rows}"))
            .collect();
        println!("month marts rebuilt: {}", marts.join(", "));
    }
    println!("run {} finished in {:.1}s", report.run_id, report.seconds);
}
