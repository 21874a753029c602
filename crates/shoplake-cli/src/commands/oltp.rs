//! `shoplake oltp`: the store's PostgreSQL database.

use shoplake_oltp::OltpError;
use shoplake_oltp::connect::DbUrl;
use shoplake_oltp::load::{LoadOptions, load_export};
use shoplake_oltp::schema::init;
use shoplake_oltp::simulate::{SimulateOptions, simulate};

use crate::cli::{OltpArgs, OltpCommand};
use crate::output::thousands;
use crate::progress::Bars;
use crate::{Exit, usage};

/// A bad URL or a missing file is a usage error (2); the rest a failure (1).
pub fn exit_for(e: OltpError) -> Exit {
    match e {
        OltpError::BadUrl(_) | OltpError::Read { .. } => usage(e),
        e => Exit::from(e),
    }
}

pub async fn run(args: &OltpArgs, bars: &Bars, quiet: bool) -> Result<(), Exit> {
    match &args.command {
        OltpCommand::Init { db } => {
            let url = DbUrl::parse(&db.db).map_err(exit_for)?;
            let mut client = url.connect().await.map_err(exit_for)?;
            let report = init(&mut client).await.map_err(exit_for)?;
            if !quiet {
                if report.applied.is_empty() {
                    println!(
                        "{}: the schema is at version {}; nothing to do",
                        url.target(),
                        report.to_version
                    );
                } else {
                    for (version, description) in &report.applied {
                        println!(
                            "{}: applied migration {version}: {description}",
                            url.target()
                        );
                    }
                    println!(
                        "schema version {} -> {}",
                        report.from_version, report.to_version
                    );
                }
            }
        }
        OltpCommand::Load { file, db, batch } => {
            if !file.exists() {
                return Err(usage(anyhow::anyhow!("{}: no such file", file.display())));
            }
            let url = DbUrl::parse(&db.db).map_err(exit_for)?;
            let mut client = url.connect().await.map_err(exit_for)?;
            let options = LoadOptions {
                batch_events: *batch,
            };
            let report = load_export(&mut client, file, options, bars)
                .await
                .map_err(exit_for)?;
            if quiet {
                return Ok(());
            }
            if report.already_loaded {
                println!(
                    "skipped {}: already loaded into {} ({} lines); nothing added",
                    report.source,
                    url.target(),
                    thousands(report.lines)
                );
                return Ok(());
            }
            println!(
                "loaded {} into {}: {} lines, {} events in {} transactions, {:.1}s ({:.0} events/s)",
                report.source,
                url.target(),
                thousands(report.lines),
                thousands(report.events),
                report.batches,
                report.seconds,
                report.events as f64 / report.seconds.max(1e-9)
            );
            if report.resumed_after > 0 {
                println!(
                    "  resumed after line {} (committed by an interrupted load)",
                    thousands(report.resumed_after)
                );
            }
            println!(
                "  derived: {} users, {} sessions, {} products ({} updated), {} brands, {} category nodes",
                thousands(report.users),
                thousands(report.sessions),
                thousands(report.products),
                thousands(report.product_updates),
                thousands(report.brands),
                thousands(report.categories)
            );
            if report.unplaced.is_empty() {
                println!("  every line placed");
            } else {
                println!(
                    "  {} lines not placed (the schema cannot hold them):",
                    thousands(report.unplaced_total())
                );
                for (reason, n) in &report.unplaced {
                    println!("    {reason:<26} {:>12}", thousands(*n));
                }
            }
            println!("next: `shoplake cdc --db URL --catch-up` to copy the database into the lake");
        }
        OltpCommand::Simulate {
            db,
            rate,
            duration,
            seed,
        } => {
            let url = DbUrl::parse(&db.db).map_err(exit_for)?;
            let mut client = url.connect().await.map_err(exit_for)?;
            let options = SimulateOptions {
                rate: *rate,
                duration: *duration,
                seed: *seed,
            };
            let report = simulate(&mut client, options).await.map_err(exit_for)?;
            if quiet {
                return Ok(());
            }
            println!(
                "simulated {:.1}s against {}: {} transactions, {} events ({:.0}/s asked {rate}/s){}",
                report.seconds,
                url.target(),
                thousands(report.transactions),
                thousands(report.events),
                report.events_per_second(),
                if report.late_ticks > 0 {
                    format!(", {} ticks could not keep up", report.late_ticks)
                } else {
                    String::new()
                }
            );
            println!(
                "  {:<12} {:>10} {:>10} {:>10}",
                "table", "inserts", "updates", "deletes"
            );
            for table in shoplake_lake::cdc_tables::OLTP_TABLES {
                println!(
                    "  {table:<12} {:>10} {:>10} {:>10}",
                    thousands(report.count(table, "insert")),
                    thousands(report.count(table, "update")),
                    thousands(report.count(table, "delete"))
                );
            }
        }
    }
    Ok(())
}
