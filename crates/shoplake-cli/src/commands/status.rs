//! `shoplake status`.

use chrono::{DateTime, Utc};
use futures::StreamExt;
use shoplake_lake::Lake;
use shoplake_lake::partitions::{partition_files, table_rows};
use shoplake_sql::SqlCatalog;

use crate::Exit;
use crate::cli::StatusArgs;
use crate::output::print_query;

pub async fn run(lake: &Lake, args: &StatusArgs) -> Result<(), Exit> {
    println!("lake: {}", lake.root());
    println!(
        "{:<24} {:>7} {:>10} {:>12} {:>6}  last update (UTC)",
        "table", "version", "partitions", "rows", "files"
    );
    let catalog = SqlCatalog::open(lake).await?;
    for (def, table) in catalog.tables().await? {
        let Some(table) = &table else {
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
    let runs = format!(
        "SELECT run_id, trigger, days, raw_rows, clean_rows, duplicates, rejected, \
         raw_rows - clean_rows - duplicates - rejected AS unaccounted, round(seconds, 1) AS seconds \
         FROM meta.runs ORDER BY finished_at DESC LIMIT {}",
        args.runs
    );
    if print_query(&catalog, "latest runs", &runs, true).await? == 0 {
        println!("\nno run yet: `shoplake run` builds clean and model tables");
    }
    print_query(
        &catalog,
        "failed checks of the latest evaluation",
        "SELECT run_id, table_name, CAST(event_date AS VARCHAR) AS day, check_name, severity, observed, published \
         FROM quality.results \
         WHERE NOT passed AND checked_at = (SELECT MAX(checked_at) FROM quality.results) \
         ORDER BY severity, table_name, day, check_name LIMIT 20",
        true,
    )
    .await?;
    Ok(())
}
