//! `shoplake query` / `shoplake sql`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use shoplake_lake::Lake;
use shoplake_lake::datafusion::physical_plan::collect;
use shoplake_sql::SqlCatalog;

use crate::cli::QueryArgs;
use crate::output::write_batches;
use crate::{Exit, usage};

pub async fn run(lake: &Lake, args: &QueryArgs) -> Result<(), Exit> {
    let started = Instant::now();
    let catalog = SqlCatalog::open(lake).await?;
    // Planning errors (bad SQL, unknown table or column, a write statement) are the user's.
    let df = catalog.sql(&args.sql).await.map_err(usage)?;
    let schema = df.schema().inner().clone();
    // What `DataFrame::collect` does, with the physical plan (where the scans list and prune
    // their files) counted as planning.
    let task = Arc::new(df.task_ctx());
    let plan = df.create_physical_plan().await?;
    let planned = started.elapsed();
    let batches = collect(plan, task).await?;
    let ran = started.elapsed();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    write_batches(&mut out, &schema, &batches, args.format)?;
    if args.timing {
        eprintln!("{}", timing_line(planned, ran));
    }
    Ok(())
}

/// `Time: 0.043 s (planning 0.018 s, execution 0.025 s)`: the statement's time, then how it
/// splits.
fn timing_line(planned: Duration, ran: Duration) -> String {
    format!(
        "Time: {:.3} s (planning {:.3} s, execution {:.3} s)",
        ran.as_secs_f64(),
        planned.as_secs_f64(),
        (ran - planned).as_secs_f64()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timing_line_adds_up() {
        let line = timing_line(Duration::from_millis(18), Duration::from_micros(43_400));
        assert_eq!(line, "Time: 0.043 s (planning 0.018 s, execution 0.025 s)");
    }
}
