//! `shoplake cdc`.

use shoplake_lake::Lake;
use shoplake_lake::cdc_tables::OLTP_TABLES;
use shoplake_oltp::CancellationToken;
use shoplake_oltp::cdc::{CdcOptions, format_lsn, run_cdc};
use shoplake_oltp::connect::DbUrl;

use crate::cli::CdcArgs;
use crate::commands::oltp::exit_for;
use crate::output::thousands;
use crate::progress::Bars;
use crate::{Exit, usage};

pub async fn run(lake: &Lake, args: &CdcArgs, bars: &Bars, quiet: bool) -> Result<(), Exit> {
    let url = DbUrl::parse(&args.db.db).map_err(exit_for)?;
    if args.heartbeat.is_zero() || args.flush_interval.is_zero() {
        return Err(usage(anyhow::anyhow!(
            "--heartbeat and --flush-interval must be longer than zero"
        )));
    }
    let options = CdcOptions {
        slot: args.slot.clone(),
        publication: args.publication.clone(),
        catch_up: args.catch_up,
        resnapshot: args.resnapshot,
        heartbeat: args.heartbeat,
        flush_interval: args.flush_interval,
        ..CdcOptions::default()
    };
    // Ctrl-C or a TERM signal: land what is complete, acknowledge it, stop.
    let stop = CancellationToken::new();
    let on_signal = stop.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        on_signal.cancel();
    });
    if !quiet && !args.catch_up {
        eprintln!(
            "streaming changes of {} into {} (slot {}); Ctrl-C to stop",
            url.target(),
            lake.root(),
            args.slot
        );
    }
    let report = run_cdc(lake, &url, &options, stop, bars)
        .await
        .map_err(exit_for)?;
    if quiet {
        return Ok(());
    }
    if let Some(s) = &report.snapshot {
        let rows: u64 = s.rows.iter().map(|(_, n)| n).sum();
        println!(
            "snapshot at {}: {} rows in {:.1}s ({:.0} rows/s)",
            format_lsn(s.lsn),
            thousands(rows),
            s.seconds,
            rows as f64 / s.seconds.max(1e-9)
        );
        for (table, n) in &s.rows {
            println!("  raw.cdc_{table:<12} {:>12}", thousands(*n));
        }
    }
    println!(
        "streamed: {} transactions, {} row images in {} landings ({} resent transactions skipped, {} heartbeats, {} reconnects); the lake holds everything up to {}",
        thousands(report.transactions),
        thousands(report.change_total()),
        report.landings,
        report.skipped,
        report.heartbeats,
        report.reconnects,
        report.lake_lsn.map_or("-".to_string(), format_lsn)
    );
    if report.change_total() > 0 {
        println!(
            "  {:<12} {:>10} {:>10} {:>10}",
            "table", "inserts", "updates", "deletes"
        );
        for table in OLTP_TABLES {
            let n = |op: &str| report.changes.get(&(table, op)).copied().unwrap_or(0);
            println!(
                "  {table:<12} {:>10} {:>10} {:>10}",
                thousands(n("insert")),
                thousands(n("update")),
                thousands(n("delete"))
            );
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
