//! raw -> clean: typing, rules, quarantine and duplicate removal for one day at a time.
//!
//! Working a day at a time bounds memory by the size of the largest day, whatever the size
//! of the lake. Every valid row has a 128-bit key of its nine source fields (16 bytes a row,
//! kept beside the rows for the day); copies of a row have the same type, time and id, so
//! the day's sort puts them next to each other and drops all but the first ([`order`]). When
//! the session's memory budget cannot hold that sort, a set of the keys finds the copies and
//! DataFusion (which spills) sorts the rest. The distinct rows are written with a partition
//! replace.
//!
//! A day is sorted by (event_type, event_time, event_id) ([`order`]): clustered by event
//! type, in time order within each type. Most questions asked of the events name one type (purchases,
//! carts), and the clustering lets a reader skip the row groups and pages of the others by
//! their statistics; the fact keeps the same order.

pub mod categories;
pub mod keys;
pub mod order;
pub mod rules;
pub mod split;

use chrono::NaiveDate;
use futures::TryStreamExt;
use shoplake_lake::arrow::array::RecordBatch;
use shoplake_lake::datafusion::datasource::MemTable;
use shoplake_lake::datafusion::prelude::{SessionContext, col};
use shoplake_lake::{Accounting, tables};
use std::sync::Arc;

use crate::error::Result;
use crate::texts::Texts;
pub use split::CleanRules;

/// The cleaned content of one day, before it is written.
#[derive(Debug)]
pub struct CleanDay {
    /// The day.
    pub date: NaiveDate,
    /// Raw rows read.
    pub raw_rows: u64,
    /// Distinct valid rows, in `clean.events` schema, sorted by event_type, event_time and
    /// event_id.
    pub clean: Vec<RecordBatch>,
    /// Rejected rows, in `clean.rejects` schema, sorted by batch and line.
    pub rejects: Vec<RecordBatch>,
    /// Valid rows dropped as exact duplicates of another valid row.
    pub duplicates: u64,
}

impl CleanDay {
    /// Where the day's raw rows went.
    pub fn accounting(&self) -> Result<Accounting> {
        let rows = |batches: &[RecordBatch]| batches.iter().map(|b| b.num_rows() as u64).sum();
        let (repaired, unknown_category) = data_issues(&self.clean)?;
        Ok(Accounting {
            raw: self.raw_rows,
            clean: rows(&self.clean),
            duplicates: self.duplicates,
            rejected: rows(&self.rejects),
            repaired,
            unknown_category,
        })
    }
}

/// Rows of `clean` whose category id was repaired, and those whose category id is unknown
/// (`data_issue`).
pub fn data_issues(clean: &[RecordBatch]) -> Result<(u64, u64)> {
    let (mut repaired, mut unknown) = (0, 0);
    for batch in clean {
        let issues = Texts::of(batch, "clean.events", "data_issue")?;
        if issues.null_count() == batch.num_rows() {
            continue;
        }
        for i in 0..batch.num_rows() {
            match issues.get(i) {
                tables::CATEGORY_ID_REPAIRED => repaired += 1,
                tables::CATEGORY_ID_UNKNOWN => unknown += 1,
                _ => {}
            }
        }
    }
    Ok((repaired, unknown))
}

/// Cleans the raw partition of `date`, read through `raw_ctx` (a session where `raw.events`
/// is registered at the version the run planned with). `expected_rows` (the partition's rows
/// from its statistics, 0 when unknown) sizes the key set once rather than by doubling, when
/// one is needed.
pub async fn clean_day(
    raw_ctx: &SessionContext,
    date: NaiveDate,
    expected_rows: u64,
    rules: &CleanRules,
) -> Result<CleanDay> {
    let sql = format!(
        "SELECT * FROM raw.events WHERE event_date = DATE '{}'",
        date.format("%Y-%m-%d")
    );
    let started = std::time::Instant::now();
    let mut stream = raw_ctx.sql(&sql).await?.execute_stream().await?;
    let mut raw_rows = 0u64;
    let mut valid = Vec::new();
    let mut keys = Vec::new();
    let mut rejects = Vec::new();
    while let Some(batch) = stream.try_next().await? {
        raw_rows += batch.num_rows() as u64;
        let parts = split::split(&batch, rules)?;
        if parts.valid.num_rows() > 0 {
            valid.push(parts.valid);
            keys.push(parts.keys);
        }
        if parts.rejects.num_rows() > 0 {
            rejects.push(parts.rejects);
        }
    }
    let split_seconds = started.elapsed().as_secs_f64();
    let sort_started = std::time::Instant::now();
    let ctx = SessionContext::new_with_state(raw_ctx.state());

    let (clean, duplicates) = match order::sort_day(&valid, &keys, &ctx.runtime_env().memory_pool)?
    {
        Some(sorted) => {
            drop(valid);
            sorted
        }
        None => {
            // Capped, so that wrong statistics cannot ask for an absurd table up front.
            let capacity = expected_rows.min(1 << 25) as usize;
            let (valid, duplicates) = keys::first_copies(valid, keys, capacity)?;
            let clean_schema = tables::clean_events().arrow_schema();
            let valid_table = MemTable::try_new(clean_schema, vec![valid])?;
            let sorted = ctx
                .read_table(Arc::new(valid_table))?
                .sort(vec![
                    col("event_type").sort(true, false),
                    col("event_time").sort(true, false),
                    col("event_id").sort(true, false),
                ])?
                .collect()
                .await?;
            (sorted, duplicates)
        }
    };

    let sort_seconds = sort_started.elapsed().as_secs_f64();
    let rejects = if rejects.is_empty() {
        rejects
    } else {
        let table = MemTable::try_new(tables::clean_rejects().arrow_schema(), vec![rejects])?;
        ctx.read_table(Arc::new(table))?
            .sort(vec![
                col("_batch_id").sort(true, false),
                col("_line").sort(true, false),
            ])?
            .collect()
            .await?
    };
    tracing::debug!(
        day = %date,
        read_and_split = split_seconds,
        sort = sort_seconds,
        "day cleaned"
    );
    Ok(CleanDay {
        date,
        raw_rows,
        clean: clean.into_iter().filter(|b| b.num_rows() > 0).collect(),
        rejects,
        duplicates,
    })
}
