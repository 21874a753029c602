//! `shoplake query` / `shoplake sql`.

use shoplake_lake::{Lake, SqlCatalog};

use crate::cli::QueryArgs;
use crate::output::write_batches;
use crate::{Exit, usage};

pub async fn run(lake: &Lake, args: &QueryArgs) -> Result<(), Exit> {
    let catalog = SqlCatalog::open(lake).await?;
    // Planning errors (bad SQL, unknown table or column, a write statement) are the user's.
    let df = catalog.sql(&args.sql).await.map_err(usage)?;
    let schema = df.schema().inner().clone();
    let batches = df.collect().await?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    write_batches(&mut out, &schema, &batches, args.format)?;
    Ok(())
}
