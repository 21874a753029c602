//! `shoplake cdc`: change data capture from the store's database into `raw.cdc_<table>`.
//!
//! A session: check the server ([`preflight`]), open the slot ([`source`]): a new slot's
//! exported snapshot is copied first ([`snapshot`]), an existing one resumes at the lake's
//! position ([`state`]); then stream, gathering whole transactions and landing them
//! ([`land`]) when a second has passed or enough rows wait, acknowledging to the server only
//! what the lake holds. A heartbeat row written every few seconds comes back through the
//! stream, so the slot advances (and the server releases WAL) when the store is quiet, and
//! `--catch-up` knows when everything committed before it started is in.
//!
//! A lost connection or a restarted server ends the session; the next one resumes from the
//! lake. A server that is not ready (wal_level, privilege, replica identity, a missing slot)
//! or data that does not fit the lake's tables ends the command with a one-line error that
//! says what to do.

pub mod images;
pub mod land;
pub mod preflight;
pub mod snapshot;
pub mod source;
pub mod state;
pub mod status;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pg_walstream::CancellationToken;
use shoplake_lake::cdc_tables::OLTP_TABLES;
use shoplake_lake::{Lake, Progress};

use crate::connect::DbUrl;
use crate::error::{OltpError, Result};
use crate::schema::HEARTBEAT_TABLE;
use images::{Image, Op};
use land::{Lander, Txn};
use source::{ChangeSource, ChangeStream, Message, Opened, Walstream};
use state::LakeState;

/// Change data capture settings.
#[derive(Debug, Clone)]
pub struct CdcOptions {
    /// Replication slot.
    pub slot: String,
    /// Publication.
    pub publication: String,
    /// Stop once everything committed before the start is in the lake.
    pub catch_up: bool,
    /// Drop the slot and the lake's `raw.cdc_*` rows and start over from a new snapshot.
    pub resnapshot: bool,
    /// How often a heartbeat is written.
    pub heartbeat: Duration,
    /// Longest a received transaction waits before it is landed.
    pub flush_interval: Duration,
    /// Row images that make a landing without waiting.
    pub flush_rows: usize,
    /// How long to keep reconnecting after a lost connection before giving up (`--catch-up`
    /// gives up after this; a streaming run keeps trying).
    pub retry_for: Duration,
}

impl Default for CdcOptions {
    fn default() -> Self {
        CdcOptions {
            slot: "shoplake".into(),
            publication: "shoplake".into(),
            catch_up: false,
            resnapshot: false,
            heartbeat: Duration::from_secs(10),
            flush_interval: Duration::from_secs(1),
            flush_rows: 200_000,
            retry_for: Duration::from_secs(120),
        }
    }
}

/// What a `cdc` run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CdcReport {
    /// The snapshot, when one was taken.
    pub snapshot: Option<snapshot::SnapshotReport>,
    /// Transactions landed.
    pub transactions: u64,
    /// Row images landed, by (table, op).
    pub changes: HashMap<(&'static str, &'static str), u64>,
    /// Landings.
    pub landings: u64,
    /// Transactions the lake held already (resent after a restart).
    pub skipped: u64,
    /// Heartbeats seen.
    pub heartbeats: u64,
    /// Sessions that ended with a lost connection and were resumed.
    pub reconnects: u64,
    /// The lake's position at the end.
    pub lake_lsn: Option<u64>,
    /// Wall time, seconds.
    pub seconds: f64,
}

impl CdcReport {
    /// Row images landed in all.
    pub fn change_total(&self) -> u64 {
        self.changes.values().sum()
    }
}

/// How a session ended.
enum SessionEnd {
    /// `--catch-up` reached its target.
    CaughtUp,
    /// Asked to stop.
    Stopped,
}

/// Streams changes into the lake until `stop` is cancelled (or, with `catch_up`, until the
/// lake holds everything committed before the start).
pub async fn run_cdc(
    lake: &Lake,
    db: &DbUrl,
    options: &CdcOptions,
    stop: CancellationToken,
    progress: &dyn Progress,
) -> Result<CdcReport> {
    let started = Instant::now();
    let mut report = CdcReport::default();
    let mut failing_since: Option<Instant> = None;
    let mut resnapshot = options.resnapshot;
    let mut catch_up_target: Option<u64> = None;
    // Sessions that got as far as streaming, and how many of them the retry clock has seen.
    let mut established_sessions = 0u64;
    let mut counted_sessions = 0u64;
    loop {
        let outcome = session(
            lake,
            db,
            options,
            resnapshot,
            &mut catch_up_target,
            &stop,
            progress,
            &mut report,
            &mut established_sessions,
        )
        .await;
        match outcome {
            Ok(SessionEnd::CaughtUp) | Ok(SessionEnd::Stopped) => break,
            Err(e) if !e.is_transient() => return Err(e),
            // A first connection that fails is a wrong URL or a server that is down: say so
            // now rather than retry.
            Err(e) if established_sessions == 0 => return Err(e),
            Err(e) => {
                resnapshot = false;
                if established_sessions > counted_sessions {
                    // The session got as far as streaming: the failures start again from now.
                    counted_sessions = established_sessions;
                    failing_since = None;
                }
                let since = *failing_since.get_or_insert_with(Instant::now);
                if options.catch_up && since.elapsed() > options.retry_for {
                    return Err(e);
                }
                report.reconnects += 1;
                tracing::warn!("{e}; resuming from the lake's position");
                let wait = Duration::from_millis(500 * u64::from(report.reconnects.min(20) as u32));
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(wait.min(Duration::from_secs(5))) => {}
                }
                continue;
            }
        }
    }
    report.lake_lsn = LakeState::read(lake, &options.slot).await?.lsn;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

#[allow(clippy::too_many_arguments)]
async fn session(
    lake: &Lake,
    db: &DbUrl,
    options: &CdcOptions,
    resnapshot: bool,
    catch_up_target: &mut Option<u64>,
    stop: &CancellationToken,
    progress: &dyn Progress,
    report: &mut CdcReport,
    established: &mut u64,
) -> Result<SessionEnd> {
    let client = db.connect().await?;
    let slot = &options.slot;
    let mut slot_info = preflight::preflight(&client, slot, &options.publication).await?;
    if resnapshot {
        if let Some(info) = &slot_info {
            if let Some(pid) = info.active_pid {
                return Err(OltpError::NotReady(format!(
                    "replication slot {slot} is in use by process {pid}: stop that client first"
                )));
            }
            preflight::drop_slot(&client, slot).await?;
            slot_info = None;
        }
        snapshot::clear_tables(lake, slot).await?;
    }
    let mut state = LakeState::read(lake, slot).await?;
    if resnapshot {
        state.lsn = None;
        state.tables.clear();
    }
    if let Some(other) = state.latest_slot.as_ref()
        && other != slot
        && state.lsn.is_none()
        && !resnapshot
    {
        return Err(OltpError::NotReady(format!(
            "the lake's raw.cdc tables are fed by slot {other}: run with --slot {other}, or \
             with --resnapshot to start over from slot {slot}"
        )));
    }

    match (&state.lsn, &slot_info) {
        (Some(lsn), None) => {
            return Err(OltpError::NotReady(format!(
                "replication slot {slot} is gone (the lake holds its changes up to {}): the \
                 changes since are lost to the lake; run `shoplake cdc --resnapshot` to start over \
                 from a new snapshot",
                format_lsn(*lsn)
            )));
        }
        (None, Some(info)) => {
            // A slot without a landed snapshot: an interrupted first run left it.
            if let Some(pid) = info.active_pid {
                return Err(OltpError::NotReady(format!(
                    "replication slot {slot} is in use by process {pid}: stop that client first"
                )));
            }
            tracing::info!("dropping slot {slot}, left by a snapshot that did not finish");
            preflight::drop_slot(&client, slot).await?;
        }
        _ => {}
    }

    let source = Walstream {
        conninfo: db.replication_url(),
        slot: slot.clone(),
        publication: options.publication.clone(),
        feedback_interval: options.heartbeat.min(Duration::from_secs(10)),
    };
    let mut stream = match source.open(state.lsn).await? {
        Opened::Created(reader) => {
            let (stream, snap) =
                snapshot::land_snapshot(lake, slot, reader, stop, progress).await?;
            report.snapshot = Some(snap);
            state = LakeState::read(lake, slot).await?;
            stream
        }
        Opened::Existing(stream) => {
            if state.lsn.is_none() {
                stream.close().await;
                return Err(OltpError::NotReady(format!(
                    "replication slot {slot} was created by another client while this one \
                     started: choose another --slot"
                )));
            }
            stream
        }
    };
    if options.catch_up && catch_up_target.is_none() {
        *catch_up_target = Some(preflight::heartbeat(&client, slot).await?);
    }
    *established += 1;
    let mut lander = Lander::new(lake.clone(), slot, state);
    let result = stream_changes(
        &client,
        &mut stream,
        &mut lander,
        options,
        *catch_up_target,
        stop,
        report,
    )
    .await;
    merge(report, &lander);
    stream.close().await;
    result
}

fn merge(report: &mut CdcReport, lander: &Lander) {
    let l = &lander.landed;
    report.transactions += l.transactions;
    report.landings += l.landings;
    report.skipped += l.skipped;
    for (k, n) in &l.changes {
        *report.changes.entry(*k).or_default() += n;
    }
}

/// `hi/lo`, as PostgreSQL writes an LSN.
pub fn format_lsn(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xffff_ffff)
}

async fn stream_changes<S: ChangeStream>(
    client: &tokio_postgres::Client,
    stream: &mut S,
    lander: &mut Lander,
    options: &CdcOptions,
    catch_up_target: Option<u64>,
    stop: &CancellationToken,
    report: &mut CdcReport,
) -> Result<SessionEnd> {
    let mut current: Option<Txn> = None;
    let mut next_beat = Instant::now() + options.heartbeat;
    let mut caught_up = false;
    let slot = options.slot.as_str();
    loop {
        // Land when the oldest waiting transaction has waited long enough.
        let due = lander.first_pending().map(|t| t + options.flush_interval);
        if due.is_some_and(|d| d <= Instant::now())
            || lander.pending_changes() >= options.flush_rows
        {
            land(lander, stream).await?;
        }
        if caught_up && current.is_none() {
            land(lander, stream).await?;
            return Ok(SessionEnd::CaughtUp);
        }
        if Instant::now() >= next_beat {
            preflight::heartbeat(client, slot).await?;
            next_beat = Instant::now() + options.heartbeat;
        }
        let now = Instant::now();
        let wait = [Some(next_beat), due]
            .into_iter()
            .flatten()
            .map(|t| t.saturating_duration_since(now))
            .min()
            .unwrap_or(Duration::from_secs(1))
            .clamp(Duration::from_millis(5), Duration::from_secs(1));
        let message = tokio::select! {
            _ = stop.cancelled() => {
                // Land what is complete; a transaction in the middle is resent next time.
                land(lander, stream).await?;
                return Ok(SessionEnd::Stopped);
            }
            m = stream.next(wait) => m?,
        };
        let Some(message) = message else { continue };
        match message {
            Message::Begin {
                xid,
                commit_lsn,
                commit_micros,
            } => {
                current = Some(Txn {
                    xid,
                    commit_lsn,
                    commit_micros,
                    changes: Vec::new(),
                    beats: Vec::new(),
                });
            }
            Message::Relation { table, columns } => {
                if &*table != HEARTBEAT_TABLE {
                    let declared = lander
                        .columns_of(&table)
                        .ok_or_else(|| unknown_table(&table))?;
                    snapshot::check_columns(&table, declared, &columns)?;
                }
            }
            Message::Insert { table, new } => {
                change(&mut current, lander, &table, Op::Insert, new, None)?
            }
            Message::Update { table, old, new } => {
                change(&mut current, lander, &table, Op::Update, new, old)?
            }
            Message::Delete { table, old } => {
                change(&mut current, lander, &table, Op::Delete, old, None)?
            }
            Message::Truncate { tables } => {
                return Err(OltpError::Mapping(format!(
                    "TRUNCATE of {} in the store's database: the lake cannot replay it row by row; \
                     run `shoplake cdc --resnapshot` to start over from a new snapshot",
                    tables.join(", ")
                )));
            }
            Message::Commit {
                commit_lsn,
                end_lsn,
            } => {
                let Some(txn) = current.take() else {
                    return Err(OltpError::replication(format!(
                        "a commit at {} without its begin",
                        format_lsn(commit_lsn)
                    )));
                };
                report.heartbeats += txn.beats.len() as u64;
                if catch_up_target.is_some_and(|target| {
                    txn.commit_lsn >= target && txn.beats.iter().any(|s| s == slot)
                }) {
                    caught_up = true;
                }
                let has_rows = !txn.changes.is_empty();
                lander.add(txn, end_lsn)?;
                if !has_rows && lander.first_pending().is_none() {
                    // Only heartbeats, nothing waiting: the slot may move past it now.
                    if let Some(lsn) = lander.flush().await? {
                        stream.confirm(lsn);
                    }
                }
            }
        }
    }
}

async fn land<S: ChangeStream>(lander: &mut Lander, stream: &mut S) -> Result<()> {
    if let Some(lsn) = lander.flush().await? {
        stream.confirm(lsn);
    }
    Ok(())
}

fn unknown_table(table: &str) -> OltpError {
    OltpError::Mapping(format!(
        "table {table} is in the publication but has no raw.cdc table: remove it with \
         ALTER PUBLICATION ... DROP TABLE {table};"
    ))
}

fn change(
    current: &mut Option<Txn>,
    lander: &Lander,
    table: &Arc<str>,
    op: Op,
    mut image: Image,
    old: Option<Image>,
) -> Result<()> {
    let txn = current.as_mut().ok_or_else(|| {
        OltpError::replication(format!("a change to {table} outside a transaction"))
    })?;
    if &**table == HEARTBEAT_TABLE {
        if op != Op::Delete
            && let Some(images::Value::Text(t)) = image.get("slot")
        {
            txn.beats.push(String::from_utf8_lossy(t).into_owned());
        }
        return Ok(());
    }
    let name = OLTP_TABLES
        .iter()
        .copied()
        .find(|t| **t == **table)
        .ok_or_else(|| unknown_table(table))?;
    if let Some(old) = &old {
        image.complete_from(old);
    }
    let declared = lander.columns_of(name).expect("a store table");
    if op == Op::Update
        && let Some(missing) = declared.iter().find(|c| image.get(c).is_none())
    {
        return Err(OltpError::Mapping(format!(
            "an update of {name} left out {missing} (an unchanged large value) and the row \
             before it was not sent: run ALTER TABLE {name} REPLICA IDENTITY FULL; then \
             `shoplake cdc --resnapshot`"
        )));
    }
    txn.changes.push((name, op, image));
    Ok(())
}
