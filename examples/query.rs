//! Ask the lake a question in SQL through the catalog every shoplake reader shares: each
//! table is `layer.table`, read at its latest version, read-only.
//!
//! ```sh
//! cargo run --release -p shoplake-examples --example query -- ./lake \
//!     "SELECT event_type, count(*) AS n FROM model.fact_user_events GROUP BY 1 ORDER BY 2 DESC"
//! ```

use shoplake_lake::Lake;
use shoplake_lake::arrow::util::pretty::pretty_format_batches;
use shoplake_sql::SqlCatalog;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(lake_dir), Some(sql)) = (args.next(), args.next()) else {
        eprintln!("usage: query LAKE_DIR SQL");
        std::process::exit(2);
    };
    let lake = Lake::open(&lake_dir)?;
    let catalog = SqlCatalog::open(&lake).await?;
    let batches = catalog.sql(&sql).await?.collect().await?;
    println!("{}", pretty_format_batches(&batches)?);
    Ok(())
}
