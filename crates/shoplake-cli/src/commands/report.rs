//! `shoplake report`: the BI reports (see the `shoplake-serve` crate).

use std::io::Write;

use shoplake_lake::Lake;
use shoplake_serve::reports::{self, ReportParams};
use shoplake_sql::SqlCatalog;

use crate::cli::{ReportArgs, ReportOutput};
use crate::{Exit, usage};

pub async fn run(lake: &Lake, args: &ReportArgs) -> Result<(), Exit> {
    let Some(name) = &args.name else {
        print!("{}", listing());
        return Ok(());
    };
    let params = ReportParams {
        from: args.from,
        to: args.to,
        category: args.category.clone(),
        brand: args.brand.clone(),
        limit: args.limit,
        min_views: args.min_views,
    };
    // Wrong names and ranges are refused before the lake is read.
    reports::validate(name, &params).map_err(usage)?;
    let catalog = SqlCatalog::open(lake).await?;
    let report = reports::run(&catalog, name, &params).await.map_err(|e| {
        if e.is_usage() {
            usage(e)
        } else {
            Exit::from(e)
        }
    })?;
    let text = match args.format {
        ReportOutput::Json => {
            let mut text = serde_json::to_string_pretty(&report.to_json())?;
            text.push('\n');
            text
        }
        ReportOutput::Csv => report
            .tables
            .iter()
            .map(|t| format!("# table {}\n{}", t.name, t.to_csv()))
            .collect::<Vec<_>>()
            .join("\n"),
        ReportOutput::Table => {
            let mut out = report.title.to_string();
            match report.range {
                Some((from, to)) => out.push_str(&format!(", {from} to {to}")),
                None => out.push_str(", no data"),
            }
            for (what, value) in [("category", &report.category), ("brand", &report.brand)] {
                if let Some(v) = value {
                    out.push_str(&format!(", {what} {v}"));
                }
            }
            out.push_str("\n\n");
            for table in &report.tables {
                out.push_str(&table.to_text());
                out.push('\n');
            }
            for note in &report.notes {
                out.push_str(&format!("note: {note}\n"));
            }
            out
        }
    };
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    match lock.write_all(text.as_bytes()).and_then(|()| lock.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Exit::from(e)),
        _ => Ok(()),
    }
}

/// The reports and what each answers.
fn listing() -> String {
    let mut out = String::from(
        "reports (shoplake report NAME [--from D] [--to D] [--category C] [--brand B] [--limit N] [-f table|csv|json]):\n",
    );
    for r in reports::list() {
        out.push_str(&format!("  {:<11} {}\n", r.name, r.answers));
    }
    out
}
