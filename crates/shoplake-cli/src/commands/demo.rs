//! `shoplake demo`: generate, ingest, run, and show what the lake now answers.

use shoplake_ingest::generate::GenerateOptions;
use shoplake_lake::Lake;
use shoplake_pipeline::{RunOptions, run as run_pipeline};
use shoplake_sql::SqlCatalog;

use crate::Exit;
use crate::cli::DemoArgs;
use crate::config::{Settings, demo_file};
use crate::output::print_query;
use crate::progress::Bars;

/// Rows per layer, from the tables themselves.
const LAYERS: &str = "SELECT table_name, rows FROM (
  SELECT 1 AS k, 'raw.events' AS table_name, COUNT(*) AS rows FROM raw.events
  UNION ALL SELECT 2, 'clean.events', COUNT(*) FROM clean.events
  UNION ALL SELECT 3, 'clean.rejects', COUNT(*) FROM clean.rejects
  UNION ALL SELECT 4, 'model.fact_user_events', COUNT(*) FROM model.fact_user_events
  UNION ALL SELECT 5, 'model.dim_sessions', COUNT(*) FROM model.dim_sessions
  UNION ALL SELECT 6, 'model.dim_users', COUNT(*) FROM model.dim_users
  UNION ALL SELECT 7, 'model.dim_products', COUNT(*) FROM model.dim_products)
ORDER BY k";

/// Session funnel: of all sessions, how many viewed, carted, purchased.
pub const FUNNEL: &str = "SELECT COUNT(*) AS sessions,
  SUM(CASE WHEN views > 0 THEN 1 ELSE 0 END) AS with_view,
  SUM(CASE WHEN carts > 0 THEN 1 ELSE 0 END) AS with_cart,
  SUM(CASE WHEN converted THEN 1 ELSE 0 END) AS with_purchase,
  round(100.0 * SUM(CASE WHEN carts > 0 THEN 1 ELSE 0 END) / COUNT(*), 2) AS cart_rate_pct,
  round(100.0 * SUM(CASE WHEN converted THEN 1 ELSE 0 END) / COUNT(*), 2) AS purchase_rate_pct
FROM model.dim_sessions";

/// Top categories by revenue.
pub const TOP_CATEGORIES: &str = "SELECT category_l1 AS category,
  COUNT(*) AS events,
  SUM(CASE WHEN event_type = 'purchase' THEN 1 ELSE 0 END) AS purchases,
  SUM(CASE WHEN event_type = 'purchase' THEN price ELSE 0 END) AS revenue
FROM model.fact_user_events
GROUP BY category_l1
ORDER BY revenue DESC, category
LIMIT 5";

pub async fn run(
    lake: &Lake,
    settings: &Settings,
    args: &DemoArgs,
    bars: &Bars,
    quiet: bool,
) -> Result<(), Exit> {
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| demo_file(&settings.lake));
    let options = GenerateOptions {
        rows: args.rows,
        seed: args.seed,
        ..GenerateOptions::default()
    };
    crate::commands::generate::write(&options, &out, quiet)?;
    let ingested = crate::commands::ingest::ingest(lake, std::slice::from_ref(&out), bars).await?;
    if !quiet {
        crate::commands::ingest::print_report(&ingested, settings.rules);
    }
    let options = RunOptions {
        rules: settings.rules,
        ..RunOptions::default()
    };
    let report = run_pipeline(lake, &options, bars).await?;
    if !quiet {
        if report.days.is_empty() {
            println!("lake already up to date");
        } else {
            println!(
                "run {}: {} days rebuilt, {}, {:.1}s",
                report.run_id,
                report.days.len(),
                report.total(),
                report.seconds
            );
        }
    }
    let catalog = SqlCatalog::open(lake).await?;
    for (title, sql) in [
        ("rows per layer", LAYERS),
        ("conversion funnel (sessions)", FUNNEL),
        ("top categories by revenue", TOP_CATEGORIES),
    ] {
        print_query(&catalog, title, sql, false).await?;
    }
    println!("\nthe lake is at {}", lake.root());
    println!("next:");
    println!("  shoplake status                      tables, partitions, rows and the latest runs");
    println!("  shoplake query \"SELECT * FROM model.dim_sessions LIMIT 5\"");
    println!(
        "  shoplake report funnel               the BI reports (`shoplake report` lists them)"
    );
    println!("  shoplake serve                       the dashboard at http://127.0.0.1:8080/");
    println!(
        "  shoplake ingest MORE.csv.gz && shoplake run   land more data, rebuild only what changed"
    );
    Ok(())
}
