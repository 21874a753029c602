//! Landing committed transactions in the lake, exactly once.
//!
//! Whole transactions are gathered (a transaction's changes are added only at its commit),
//! then written together: one commit per `raw.cdc_*` table that has rows, then one row of
//! `meta.cdc_progress`. Each of those commits carries the application transaction
//! `shoplake-cdc-<slot>` at the highest commit LSN it holds, in the same atomic Delta commit
//! as the rows. Only after the progress commit is the position acknowledged to the server.
//!
//! After a crash, the server resends from the lake's progress. A transaction at or below it
//! is skipped whole; one above it is landed in each table that does not already hold it
//! (a crash between two tables' commits leaves the first table ahead). So every change is in
//! the lake once: the LSN, table and key of a row image are unique.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use deltalake::kernel::Transaction;
use deltalake::kernel::transaction::CommitProperties;
use shoplake_lake::cdc_tables::{OLTP_TABLES, cdc_table_of, meta_cdc_progress};
use shoplake_lake::{Lake, LakeError};

use super::images::{ChangeMeta, Image, Op, TableRows};
use super::state::{LakeState, app_id};
use crate::error::{OltpError, Result};

/// A Delta checkpoint every this many versions of a table.
const CHECKPOINT_EVERY: u64 = 100;

/// A transaction being received.
#[derive(Debug, Clone)]
pub struct Txn {
    /// Transaction id.
    pub xid: u32,
    /// Commit LSN.
    pub commit_lsn: u64,
    /// Commit time, microseconds.
    pub commit_micros: i64,
    /// Its changes to the store's tables, in order.
    pub changes: Vec<(&'static str, Op, Image)>,
    /// Heartbeats it carries: the slots whose row it wrote.
    pub beats: Vec<String>,
}

/// Counts of what was landed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Landed {
    /// Transactions with changes.
    pub transactions: u64,
    /// Row images, by table and op.
    pub changes: HashMap<(&'static str, &'static str), u64>,
    /// Landings (progress rows).
    pub landings: u64,
    /// Transactions skipped because the lake held them already.
    pub skipped: u64,
}

/// Gathers committed transactions and writes them.
pub struct Lander {
    lake: Lake,
    slot: String,
    app: String,
    rows: HashMap<&'static str, TableRows>,
    state: LakeState,
    pending_txns: u64,
    pending_changes: usize,
    pending_counts: HashMap<(&'static str, &'static str), u64>,
    last_commit_lsn: u64,
    last_commit_micros: Option<i64>,
    /// Position to acknowledge once the pending transactions are landed.
    last_end_lsn: Option<u64>,
    first_pending: Option<Instant>,
    /// What was landed since the start.
    pub landed: Landed,
}

impl Lander {
    /// A lander at the lake's `state` for `slot`.
    pub fn new(lake: Lake, slot: &str, state: LakeState) -> Lander {
        let rows = OLTP_TABLES
            .iter()
            .map(|t| (*t, TableRows::new(cdc_table_of(t).expect("declared"))))
            .collect();
        Lander {
            lake,
            slot: slot.to_string(),
            app: app_id(slot),
            rows,
            state,
            pending_txns: 0,
            pending_changes: 0,
            pending_counts: HashMap::new(),
            last_commit_lsn: 0,
            last_commit_micros: None,
            last_end_lsn: None,
            first_pending: None,
            landed: Landed::default(),
        }
    }

    /// The LSN the lake holds everything up to.
    pub fn lake_lsn(&self) -> Option<u64> {
        self.state.lsn
    }

    /// Row images waiting.
    pub fn pending_changes(&self) -> usize {
        self.pending_changes
    }

    /// When the oldest waiting transaction was added.
    pub fn first_pending(&self) -> Option<Instant> {
        self.first_pending
    }

    /// The image columns of a store table.
    pub fn columns_of(&self, table: &str) -> Option<&[&'static str]> {
        self.rows.get(table).map(|r| r.image_columns())
    }

    /// Adds a committed transaction (ending at `end_lsn`). Returns false when the lake held
    /// it already.
    pub fn add(&mut self, txn: Txn, end_lsn: u64) -> Result<bool> {
        self.last_end_lsn = Some(end_lsn);
        if self.state.lsn.is_some_and(|l| txn.commit_lsn <= l) {
            self.landed.skipped += 1;
            return Ok(false);
        }
        if txn.changes.is_empty() {
            return Ok(true);
        }
        let mut added = 0;
        for (i, (table, op, image)) in txn.changes.iter().enumerate() {
            let seq = i as i64 + 1;
            if self
                .state
                .tables
                .get(table)
                .is_some_and(|l| txn.commit_lsn <= *l)
            {
                continue;
            }
            let rows = self
                .rows
                .get_mut(table)
                .ok_or_else(|| OltpError::Mapping(format!("no raw.cdc table for {table}")))?;
            rows.push(
                image,
                ChangeMeta {
                    op: *op,
                    lsn: txn.commit_lsn,
                    commit_micros: txn.commit_micros,
                    xid: txn.xid,
                    seq,
                },
            )?;
            *self.pending_counts.entry((table, op.code())).or_default() += 1;
            added += 1;
        }
        self.pending_changes += added;
        self.pending_txns += 1;
        self.last_commit_lsn = self.last_commit_lsn.max(txn.commit_lsn);
        self.last_commit_micros = Some(txn.commit_micros);
        self.first_pending.get_or_insert_with(Instant::now);
        Ok(true)
    }

    /// Writes what is waiting; returns the position to acknowledge (None when nothing was
    /// received since the last one).
    pub async fn flush(&mut self) -> Result<Option<u64>> {
        if self.pending_txns == 0 {
            return Ok(self.last_end_lsn.take());
        }
        let lsn = self.last_commit_lsn;
        let (app, slot) = (self.app.clone(), self.slot.clone());
        let commit = || {
            CommitProperties::default()
                .with_application_transaction(Transaction::new(app.clone(), lsn as i64))
                .with_metadata([
                    ("shoplake.cdc.slot".to_string(), serde_json::json!(slot)),
                    ("shoplake.cdc.lsn".to_string(), serde_json::json!(lsn)),
                ])
        };
        for table in OLTP_TABLES {
            let rows = self
                .rows
                .get_mut(table)
                .expect("every store table has rows");
            if rows.is_empty() {
                continue;
            }
            let def = rows.def().clone();
            let batch = rows.finish()?;
            write_rows(&self.lake, &def, batch, commit()).await?;
            self.state.tables.insert(table, lsn);
        }
        let progress = progress_row(
            &self.slot,
            "stream",
            lsn,
            self.last_commit_micros,
            self.pending_txns as i64,
            self.pending_changes as i64,
        )?;
        write_rows(&self.lake, &meta_cdc_progress(), progress, commit()).await?;
        self.state.lsn = Some(lsn);
        self.landed.transactions += self.pending_txns;
        self.landed.landings += 1;
        for (k, n) in self.pending_counts.drain() {
            *self.landed.changes.entry(k).or_default() += n;
        }
        self.pending_txns = 0;
        self.pending_changes = 0;
        self.first_pending = None;
        Ok(self.last_end_lsn.take())
    }
}

/// Appends `batch` to `def`'s table in one commit (by day for `raw.cdc_events`), with a
/// checkpoint every [`CHECKPOINT_EVERY`] versions.
pub(crate) async fn write_rows(
    lake: &Lake,
    def: &shoplake_lake::TableDef,
    batch: RecordBatch,
    commit: CommitProperties,
) -> Result<()> {
    let table = if def.partition_by.is_some() {
        shoplake_lake::append_days::append_by_day(
            lake,
            def,
            futures::stream::iter([Ok::<_, LakeError>(batch)]),
            commit,
            1,
        )
        .await?
    } else {
        let frame = lake.session().read_batch(batch).map_err(LakeError::from)?;
        shoplake_lake::write::append_table(lake, def, frame, commit).await?
    };
    shoplake_pipeline::crash_switch::committed();
    if table
        .version()
        .is_some_and(|v| v > 0 && v % CHECKPOINT_EVERY == 0)
    {
        shoplake_lake::write::checkpoint(&table, &def.qualified_name()).await?;
    }
    Ok(())
}

/// One row of `meta.cdc_progress`.
pub(crate) fn progress_row(
    slot: &str,
    phase: &str,
    lsn: u64,
    last_commit_micros: Option<i64>,
    transactions: i64,
    changes: i64,
) -> Result<RecordBatch> {
    let def = meta_cdc_progress();
    let utc: Arc<str> = Arc::from("UTC");
    RecordBatch::try_new(
        def.arrow_schema(),
        vec![
            Arc::new(StringArray::from(vec![slot])),
            Arc::new(StringArray::from(vec![phase])),
            Arc::new(Int64Array::from(vec![lsn as i64])),
            Arc::new(
                TimestampMicrosecondArray::from(vec![last_commit_micros])
                    .with_timezone(utc.clone()),
            ),
            Arc::new(Int64Array::from(vec![transactions])),
            Arc::new(Int64Array::from(vec![changes])),
            Arc::new(
                TimestampMicrosecondArray::from(vec![Utc::now().timestamp_micros()])
                    .with_timezone(utc),
            ),
        ],
    )
    .map_err(|e| OltpError::Mapping(format!("meta.cdc_progress: {e}")))
}
