//! `shoplake status`.

use chrono::{DateTime, Utc};
use futures::StreamExt;
use shoplake_lake::partitions::{partition_files, table_rows};
use shoplake_lake::{Lake, SqlCatalog};

use crate::Exit;
use crate::cli::{OutputFormat, StatusArgs};
use crate::output::write_batches;

pub async fn run(lake: &Lake, args: &StatusArgs) -> Result<(), Exit> {
    println!("lake: {}", lake.root());
    println!(
        "{:<24} {:>7} {:>10} {:>12} {:>6}  last update (UTC)",
        "table", "version", "partitions", "rows", "files"
    );
    let catalog = SqlCatalog::open(lake).await?;
    for (def, table) in catalog.tables() {
        let Some(table) = table else {
            println!("{:<24} {:>7}", def.qualified_name(), "-  (not built yet)");
            continue;
        };
        let files = table.get_file_uris().map(|f| f.count()).unwrap_or(0);
        let partitions = if def.partition_by.is_some() {
            partition_files(table).await?.len().to_string()
        } else {
            "-".to_string()
        };
        let rows = table_rows(table).await?;
        let updated = match table.history(Some(1)).next().await {
            Some(Ok(info)) => info
                .timestamp
                .and_then(DateTime::<Utc>::from_timestamp_millis)
                .map_or("-".to_string(), |t| {
                    t.format("%Y-%m-%d %H:%M:%S").to_string()
                }),
            _ => "-".to_string(),
        };
        println!(
            "{:<24} {:>7} {:>10} {:>12} {:>6}  {}",
            def.qualified_name(),
            table.version().unwrap_or(0),
            partitions,
            rows,
            files,
            updated
        );
    }
    let runs = catalog
        .sql(&format!(
            "SELECT run_id, trigger, days, raw_rows, clean_rows, duplicates, rejected, \
             raw_rows - clean_rows - duplicates - rejected AS unaccounted, round(seconds, 1) AS seconds \
             FROM meta.runs ORDER BY finished_at DESC LIMIT {}",
            args.runs
        ))
        .await?;
    let schema = runs.schema().inner().clone();
    let batches = runs.collect().await?;
    if batches.iter().map(|b| b.num_rows()).sum::<usize>() == 0 {
        println!("\nno run yet: `shoplake run` builds clean and model tables");
    } else {
        println!("\nlatest runs:");
        write_batches(
            &mut std::io::stdout().lock(),
            &schema,
            &batches,
            OutputFormat::Table,
        )?;
    }
    let failures = catalog
        .sql(
            "SELECT run_id, table_name, CAST(event_date AS VARCHAR) AS day, check_name, severity, observed, published \
             FROM quality.results \
             WHERE NOT passed AND checked_at = (SELECT MAX(checked_at) FROM quality.results) \
             ORDER BY severity, table_name, day, check_name LIMIT 20",
        )
        .await?;
    let schema = failures.schema().inner().clone();
    let batches = failures.collect().await?;
    if batches.iter().map(|b| b.num_rows()).sum::<usize>() > 0 {
        println!("\nfailed checks of the latest evaluation:");
        write_batches(
            &mut std::io::stdout().lock(),
            &schema,
            &batches,
            OutputFormat::Table,
        )?;
    }
    Ok(())
}
