//! The initial snapshot: every row of every store table as of the slot's consistent point,
//! landed as `_op = 'snapshot'` rows with `_lsn` the consistent point.
//!
//! The rows come table by table; each table is written by a writer of its own as the rows
//! stream in (a few batches in memory whatever the table's size) and committed once, with the
//! slot's application transaction at the consistent point. The progress row that marks the
//! snapshot complete is written last. A snapshot interrupted before it starts over: the
//! exported snapshot it read from is gone with the connection that exported it.

use std::time::Instant;

use chrono::Utc;
use deltalake::kernel::Transaction;
use deltalake::kernel::transaction::CommitProperties;
use futures::SinkExt;
use shoplake_lake::cdc_tables::{OLTP_TABLES, cdc_table_of, meta_cdc_progress};
use shoplake_lake::{Lake, LakeError, Progress};

use super::images::{ChangeMeta, Op, TableRows};
use super::land::{progress_row, write_rows};
use super::source::{ChangeStream, SnapshotReader};
use super::state::app_id;
use crate::error::{OltpError, Result};

/// The application transaction version that means "no position".
pub const NO_POSITION: i64 = -1;

/// Rows per batch handed to a table's writer.
const BATCH_ROWS: usize = 64 * 1024;

/// What the snapshot landed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SnapshotReport {
    /// The slot's consistent point (the rows' `_lsn` is one below it).
    pub lsn: u64,
    /// Rows per store table.
    pub rows: Vec<(&'static str, u64)>,
    /// Wall time, seconds.
    pub seconds: f64,
}

/// Removes every row of the `raw.cdc_*` tables (what an interrupted snapshot, or the slot
/// before a new snapshot, left), one commit per table that has files, and sets the lake's
/// position for `slot` to none first: a run that stops before the new snapshot completes
/// leaves no position to resume from, so the next one takes the snapshot again.
pub async fn clear_tables(lake: &Lake, slot: &str) -> Result<()> {
    let none = || {
        CommitProperties::default()
            .with_application_transaction(Transaction::new(app_id(slot), NO_POSITION))
    };
    let progress = meta_cdc_progress();
    if lake.load(&progress).await?.is_some() {
        let marker = progress_row(slot, "reset", 0, None, 0, 0)?;
        write_rows(lake, &progress, marker, none()).await?;
    }
    for t in OLTP_TABLES {
        let def = cdc_table_of(t).expect("declared");
        let Some(table) = lake.load(&def).await? else {
            continue;
        };
        let files = table
            .get_file_uris()
            .map_err(|e| LakeError::delta(def.qualified_name(), e))?
            .count();
        if files == 0 {
            continue;
        }
        table
            .delete()
            .with_commit_properties(none())
            .await
            .map_err(|e| LakeError::delta(def.qualified_name(), e))?;
    }
    Ok(())
}

/// Copies the snapshot into the lake; returns the stream that continues from it.
///
/// The snapshot holds every transaction that committed before the slot's consistent point
/// and none at or after it; its rows (and the lake's position) are stamped one below that
/// point, so a transaction committing exactly at it is streamed, not skipped.
pub async fn land_snapshot<S, R>(
    lake: &Lake,
    slot: &str,
    mut reader: R,
    stop: &pg_walstream::CancellationToken,
    progress: &dyn Progress,
) -> Result<(S, SnapshotReport)>
where
    S: ChangeStream,
    R: SnapshotReader<S>,
{
    let started = Instant::now();
    let consistent_point = reader.consistent_point();
    let lsn = consistent_point.saturating_sub(1);
    let taken_at = Utc::now().timestamp_micros();
    clear_tables(lake, slot).await?;
    let commit = || {
        CommitProperties::default()
            .with_application_transaction(Transaction::new(app_id(slot), lsn as i64))
            .with_metadata([
                ("shoplake.cdc.slot".to_string(), serde_json::json!(slot)),
                (
                    "shoplake.cdc.snapshot_lsn".to_string(),
                    serde_json::json!(lsn),
                ),
            ])
    };
    progress.start("cdc snapshot", None, "rows");
    let mut report = SnapshotReport {
        lsn: consistent_point,
        ..SnapshotReport::default()
    };
    let mut current: Option<TableWriter> = None;
    let mut total = 0u64;
    loop {
        let row = tokio::select! {
            _ = stop.cancelled() => {
                return Err(OltpError::NotReady(
                    "stopped during the initial snapshot: the next run takes it again".into(),
                ));
            }
            row = reader.next_row() => row?,
        };
        let Some(row) = row else { break };
        let switch = current.as_ref().is_none_or(|w| *w.table != *row.table);
        if switch {
            if let Some(w) = current.take() {
                report.rows.push((w.name, w.count));
                w.finish().await?;
            }
            let Some(name) = OLTP_TABLES.iter().copied().find(|t| **t == *row.table) else {
                return Err(OltpError::Mapping(format!(
                    "table {} is in the publication but has no raw.cdc table: remove it with \
                     ALTER PUBLICATION ... DROP TABLE {};",
                    row.table, row.table
                )));
            };
            let rows = TableRows::new(cdc_table_of(name).expect("declared"));
            check_columns(name, rows.image_columns(), &row.columns)?;
            current = Some(TableWriter::start(lake, name, rows, commit()));
        }
        let w = current.as_mut().expect("a writer for the row's table");
        w.count += 1;
        w.rows.push(
            &row.image,
            ChangeMeta {
                op: Op::Snapshot,
                lsn,
                commit_micros: taken_at,
                xid: 0,
                seq: w.count as i64,
            },
        )?;
        if w.rows.len() >= BATCH_ROWS {
            w.send().await?;
            progress.advance(BATCH_ROWS as u64);
        }
        total += 1;
    }
    if let Some(w) = current.take() {
        report.rows.push((w.name, w.count));
        w.finish().await?;
    }
    let marker = progress_row(slot, "snapshot", lsn, Some(taken_at), 0, total as i64)?;
    write_rows(lake, &meta_cdc_progress(), marker, commit()).await?;
    let stream = reader.into_stream().await?;
    report.seconds = started.elapsed().as_secs_f64();
    progress.finish(&format!(
        "{total} rows in {:.1} s ({:.0} rows/s)",
        report.seconds,
        total as f64 / report.seconds.max(1e-9)
    ));
    Ok((stream, report))
}

/// The store table's columns must be the ones its `raw.cdc_*` table declares.
pub fn check_columns(table: &str, declared: &[&str], got: &[String]) -> Result<()> {
    let mut want: Vec<&str> = declared.to_vec();
    let mut have: Vec<&str> = got.iter().map(String::as_str).collect();
    want.sort_unstable();
    have.sort_unstable();
    if want != have {
        return Err(OltpError::Mapping(format!(
            "the store's table {table} has columns [{}] but raw.cdc_{table} has [{}]: the \
             schema changed; shoplake stops rather than mis-map it (nothing after the last \
             landed transaction is acknowledged)",
            got.join(", "),
            declared.join(", ")
        )));
    }
    Ok(())
}

/// One table of the snapshot being written.
struct TableWriter {
    name: &'static str,
    table: String,
    rows: TableRows,
    count: u64,
    sender:
        futures::channel::mpsc::Sender<Result<datafusion::arrow::array::RecordBatch, LakeError>>,
    writer: tokio::task::JoinHandle<Result<()>>,
}

impl TableWriter {
    fn start(
        lake: &Lake,
        name: &'static str,
        rows: TableRows,
        commit: CommitProperties,
    ) -> TableWriter {
        let (sender, batches) = futures::channel::mpsc::channel(2);
        let def = rows.def().clone();
        let lake = lake.clone();
        let writer = tokio::spawn(async move {
            if def.partition_by.is_some() {
                let writers = std::thread::available_parallelism().map_or(2, |n| n.get());
                shoplake_lake::append_days::append_by_day(&lake, &def, batches, commit, writers)
                    .await?;
            } else {
                let ctx = lake.session();
                let stream: datafusion::execution::SendableRecordBatchStream = Box::pin(
                    datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(
                        def.arrow_schema(),
                        futures::StreamExt::map(batches, |b| {
                            b.map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))
                        }),
                    ),
                );
                let frame =
                    shoplake_lake::write::stream_to_dataframe(&ctx, def.arrow_schema(), stream)?;
                shoplake_lake::write::append_table(&lake, &def, frame, commit).await?;
            }
            shoplake_pipeline::crash_switch::committed();
            Ok(())
        });
        TableWriter {
            name,
            table: name.to_string(),
            rows,
            count: 0,
            sender,
            writer,
        }
    }

    async fn send(&mut self) -> Result<()> {
        let batch = self.rows.finish()?;
        if self.sender.send(Ok(batch)).await.is_err() {
            // The writer stopped: its error says why.
            return Err(OltpError::replication(format!(
                "the writer of raw.cdc_{} stopped",
                self.name
            )));
        }
        Ok(())
    }

    async fn finish(mut self) -> Result<()> {
        let sent = if self.rows.is_empty() {
            Ok(())
        } else {
            self.send().await
        };
        drop(self.sender);
        let written = self.writer.await.map_err(|e| {
            OltpError::replication(format!("the writer of raw.cdc_{} failed: {e}", self.name))
        })?;
        written?;
        sent
    }
}
