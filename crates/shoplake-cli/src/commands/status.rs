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
    cdc_status(lake, &catalog, args).await
}

/// Change data capture: the lake's position and, given the database, the slot's lag.
async fn cdc_status(lake: &Lake, catalog: &SqlCatalog, args: &StatusArgs) -> Result<(), Exit> {
    let def = shoplake_lake::cdc_tables::meta_cdc_progress();
    if lake.load(&def).await?.is_none() {
        return Ok(());
    }
    print_query(
        catalog,
        "change data capture (latest landing per slot)",
        "SELECT slot, phase, lsn, CAST(last_commit_time AS VARCHAR) AS last_commit, \
         CAST(landed_at AS VARCHAR) AS landed_at, transactions, changes \
         FROM (SELECT *, row_number() OVER (PARTITION BY slot ORDER BY landed_at DESC) AS n \
               FROM meta.cdc_progress) WHERE n = 1 ORDER BY slot",
        true,
    )
    .await?;
    let Some(db) = &args.db else {
        println!("(--db URL shows the slot's lag)");
        return Ok(());
    };
    let url = shoplake_oltp::connect::DbUrl::parse(db).map_err(crate::commands::oltp::exit_for)?;
    let lag = shoplake_oltp::cdc::status::slot_lag(lake, &url, &args.slot)
        .await
        .map_err(crate::commands::oltp::exit_for)?;
    match lag {
        None => println!("slot {}: none on {}", args.slot, url.target()),
        Some(lag) => println!(
            "slot {} on {}: {} bytes of WAL behind, {:.1} s behind{}",
            args.slot,
            url.target(),
            lag.bytes,
            lag.seconds,
            if lag.active {
                ""
            } else {
                " (no client streaming now)"
            }
        ),
    }
    Ok(())
}
