//! Where changes come from: a replication slot, read through a small interface so that the
//! replication library can be replaced without touching the landing logic.
//!
//! [`ChangeSource`] opens the slot: it creates it with an exported snapshot (and copies the
//! tables through that snapshot) or resumes it at a given LSN, and yields a
//! [`ChangeStream`] of decoded messages. The implementation here is pg_walstream (pgoutput,
//! libpq). Its own reconnect logic and its automatic acknowledgements are not used: the
//! stream runs without retries and acknowledges exactly what [`ChangeStream::confirm`] is
//! told, which is only ever what the lake holds.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use pg_walstream::{
    CancellationToken, ColumnValue, EventType, LogicalReplicationStream, ReplicationError,
    ReplicationStreamConfig, RetryConfig, RowData, SharedLsnFeedback, SnapshotOutcome,
    StreamingMode,
};
use tokio::sync::mpsc;

use super::images::{Image, Value};

/// How often the stream tells the server what the lake holds.
const FEEDBACK_EVERY: Duration = Duration::from_secs(1);
use crate::error::{OltpError, Result};

/// One decoded message of the stream.
#[derive(Debug, Clone)]
pub enum Message {
    /// A transaction starts.
    Begin {
        /// Transaction id.
        xid: u32,
        /// Its commit LSN.
        commit_lsn: u64,
        /// Its commit time, microseconds since the epoch.
        commit_micros: i64,
    },
    /// A table's columns (sent before its first change, and again after a schema change).
    Relation {
        /// Table name.
        table: Arc<str>,
        /// Column names, in order.
        columns: Vec<String>,
    },
    /// A row inserted.
    Insert {
        /// Table name.
        table: Arc<str>,
        /// The new row.
        new: Image,
    },
    /// A row updated.
    Update {
        /// Table name.
        table: Arc<str>,
        /// The row before (under REPLICA IDENTITY FULL, whole).
        old: Option<Image>,
        /// The row after (an unchanged TOASTed column is absent).
        new: Image,
    },
    /// A row deleted.
    Delete {
        /// Table name.
        table: Arc<str>,
        /// The row before (under REPLICA IDENTITY FULL, whole; else its key).
        old: Image,
    },
    /// Tables truncated.
    Truncate {
        /// Their names.
        tables: Vec<String>,
    },
    /// A transaction committed.
    Commit {
        /// Its commit LSN.
        commit_lsn: u64,
        /// The end of its commit record: the position to acknowledge once it is landed.
        end_lsn: u64,
    },
}

/// A running stream of changes.
pub trait ChangeStream: Send {
    /// The next message, or `None` if none came within `wait`.
    fn next(
        &mut self,
        wait: Duration,
    ) -> impl std::future::Future<Output = Result<Option<Message>>> + Send;

    /// Tells the server that everything up to `lsn` is safely stored: the slot may release
    /// the WAL before it.
    fn confirm(&mut self, lsn: u64);

    /// Ends the stream, sending the last acknowledgement.
    fn close(self) -> impl std::future::Future<Output = ()> + Send;
}

/// One row of the initial snapshot.
#[derive(Debug, Clone)]
pub struct SnapshotRow {
    /// Table name.
    pub table: Arc<str>,
    /// The table's columns, in order.
    pub columns: Arc<Vec<String>>,
    /// The row.
    pub image: Image,
}

/// A slot being opened: either a new one whose snapshot must be copied first, or an
/// existing one.
pub enum Opened<S: ChangeStream, R: SnapshotReader<S>> {
    /// The slot was created now: read `R` to the end, then it gives the stream.
    Created(R),
    /// The slot existed: nothing to copy.
    Existing(S),
}

/// The initial snapshot being read.
pub trait SnapshotReader<S: ChangeStream>: Send {
    /// The slot's consistent point: every row of the snapshot is the database at this LSN.
    fn consistent_point(&self) -> u64;

    /// The next row, or `None` once every table is copied.
    fn next_row(&mut self)
    -> impl std::future::Future<Output = Result<Option<SnapshotRow>>> + Send;

    /// After the last row: the stream, starting at the consistent point.
    fn into_stream(self) -> impl std::future::Future<Output = Result<S>> + Send;
}

/// Opens replication slots of one database.
pub trait ChangeSource {
    /// The stream type.
    type Stream: ChangeStream;
    /// The snapshot reader type.
    type Snapshot: SnapshotReader<Self::Stream>;

    /// Creates the slot with an exported snapshot, or opens it if it exists (then without
    /// a snapshot, at `resume_at` when given).
    fn open(
        &self,
        resume_at: Option<u64>,
    ) -> impl std::future::Future<Output = Result<Opened<Self::Stream, Self::Snapshot>>> + Send;
}

/// pg_walstream over libpq.
#[derive(Debug, Clone)]
pub struct Walstream {
    /// libpq connection string with `replication=database`.
    pub conninfo: String,
    /// The slot.
    pub slot: String,
    /// The publication.
    pub publication: String,
    /// How often the server is told what is stored (and asked for a keepalive).
    pub feedback_interval: Duration,
}

impl Walstream {
    fn config(&self) -> ReplicationStreamConfig {
        let mut config = ReplicationStreamConfig::new(
            self.slot.clone(),
            self.publication.clone(),
            1,
            StreamingMode::Off,
            self.feedback_interval,
            Duration::from_secs(30),
            Duration::from_secs(3600),
            RetryConfig {
                max_attempts: 1,
                initial_delay: Duration::from_millis(100),
                max_delay: Duration::from_millis(100),
                multiplier: 1.0,
                max_duration: Duration::from_secs(30),
                jitter: false,
            },
        );
        config.slot_options.snapshot = Some("export".into());
        config
    }

    async fn connect(&self) -> Result<LogicalReplicationStream> {
        LogicalReplicationStream::new(&self.conninfo, self.config())
            .await
            .map_err(replication_error)
    }
}

/// A pg_walstream error in our terms, keeping whether a reconnect may cure it.
fn replication_error(e: ReplicationError) -> OltpError {
    OltpError::Replication {
        transient: e.is_transient(),
        message: e.to_string(),
    }
}

impl ChangeSource for Walstream {
    type Stream = WalstreamStream;
    type Snapshot = WalstreamSnapshot;

    async fn open(
        &self,
        resume_at: Option<u64>,
    ) -> Result<Opened<WalstreamStream, WalstreamSnapshot>> {
        let stream = self.connect().await?;
        match stream.snapshot().await.map_err(replication_error)? {
            SnapshotOutcome::Available(mut snapshot) => {
                // The heartbeat table is in the publication only to move the slot.
                snapshot.retain_tables(|t| {
                    &*t.relation().relation_name != crate::schema::HEARTBEAT_TABLE
                });
                let consistent_point = snapshot.consistent_point().value();
                Ok(Opened::Created(WalstreamSnapshot {
                    rows: snapshot.rows(),
                    consistent_point,
                    columns: Default::default(),
                }))
            }
            SnapshotOutcome::Unavailable(mut stream) => {
                stream.start(resume_at).await.map_err(replication_error)?;
                Ok(Opened::Existing(WalstreamStream::spawn(stream)))
            }
        }
    }
}

/// The snapshot of a slot pg_walstream just created.
pub struct WalstreamSnapshot {
    rows: pg_walstream::SnapshotRows,
    consistent_point: u64,
    columns: std::collections::HashMap<String, Arc<Vec<String>>>,
}

impl SnapshotReader<WalstreamStream> for WalstreamSnapshot {
    fn consistent_point(&self) -> u64 {
        self.consistent_point
    }

    async fn next_row(&mut self) -> Result<Option<SnapshotRow>> {
        let Some(row) = self.rows.next_row().await.map_err(replication_error)? else {
            return Ok(None);
        };
        let table: Arc<str> = row.relation.relation_name.clone();
        let columns = self
            .columns
            .entry(table.to_string())
            .or_insert_with(|| {
                Arc::new(
                    row.relation
                        .columns
                        .iter()
                        .map(|c| c.name.to_string())
                        .collect(),
                )
            })
            .clone();
        Ok(Some(SnapshotRow {
            table,
            columns,
            image: image(row.data),
        }))
    }

    async fn into_stream(self) -> Result<WalstreamStream> {
        let mut stream = self.rows.finish().await.map_err(replication_error)?;
        stream.start(None).await.map_err(replication_error)?;
        Ok(WalstreamStream::spawn(stream))
    }
}

fn image(row: RowData) -> Image {
    Image(
        row.iter()
            .map(|(name, value)| {
                let value = match value {
                    ColumnValue::Null => Value::Null,
                    ColumnValue::Text(b) | ColumnValue::Binary(b) => Value::Text(b.clone()),
                };
                (name.clone(), value)
            })
            .collect(),
    )
}

/// The stream, read by a task of its own (so that waiting with a deadline never cuts a read
/// in half) and handed over a bounded channel.
pub struct WalstreamStream {
    messages: mpsc::Receiver<Result<Message>>,
    feedback: Arc<SharedLsnFeedback>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl WalstreamStream {
    fn spawn(mut stream: LogicalReplicationStream) -> WalstreamStream {
        let feedback = stream.shared_lsn_feedback.clone();
        let cancel = CancellationToken::new();
        let (tx, messages) = mpsc::channel(4096);
        let token = cancel.clone();
        let task = tokio::spawn(async move {
            // The server hears what the lake holds every second, whether or not messages
            // come, and while the lander is busy (a keepalive unanswered for
            // wal_sender_timeout ends the connection).
            let mut feedback_tick = tokio::time::interval(FEEDBACK_EVERY);
            feedback_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            'read: loop {
                let event = tokio::select! {
                    _ = token.cancelled() => break,
                    _ = feedback_tick.tick() => {
                        let _ = stream.send_feedback().await;
                        continue;
                    }
                    event = stream.next_event(&token) => event,
                };
                let message = match event {
                    Ok(event) => match convert(event.event_type) {
                        Some(m) => Ok(m),
                        None => continue,
                    },
                    Err(e) if e.is_cancelled() => break,
                    Err(e) => Err(replication_error(e)),
                };
                let failed = message.is_err();
                let permit = loop {
                    tokio::select! {
                        _ = token.cancelled() => break 'read,
                        _ = feedback_tick.tick() => {
                            let _ = stream.send_feedback().await;
                        }
                        permit = tx.reserve() => match permit {
                            Ok(permit) => break permit,
                            Err(_) => break 'read,
                        },
                    }
                };
                permit.send(message);
                if failed {
                    break;
                }
            }
            // The last acknowledgement, then the connection closes.
            let _ = stream.send_feedback().await;
            let _ = stream.stop().await;
        });
        WalstreamStream {
            messages,
            feedback,
            cancel,
            task,
        }
    }
}

impl ChangeStream for WalstreamStream {
    async fn next(&mut self, wait: Duration) -> Result<Option<Message>> {
        match tokio::time::timeout(wait, self.messages.recv()).await {
            Err(_) => Ok(None),
            Ok(Some(m)) => m.map(Some),
            Ok(None) => Err(OltpError::Replication {
                message: "the replication connection closed".into(),
                transient: true,
            }),
        }
    }

    fn confirm(&mut self, lsn: u64) {
        self.feedback.update_flushed_lsn(lsn);
        self.feedback.update_applied_lsn(lsn);
    }

    async fn close(self) {
        self.cancel.cancel();
        drop(self.messages);
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

fn micros(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_micros()
}

/// pg_walstream's event in our terms; None for what we do not need (types, origins).
fn convert(event: EventType) -> Option<Message> {
    Some(match event {
        EventType::Begin {
            transaction_id,
            final_lsn,
            commit_timestamp,
        } => Message::Begin {
            xid: transaction_id,
            commit_lsn: final_lsn.value(),
            commit_micros: micros(commit_timestamp),
        },
        EventType::Commit {
            commit_lsn,
            end_lsn,
            ..
        } => Message::Commit {
            commit_lsn: commit_lsn.value(),
            end_lsn: end_lsn.value(),
        },
        EventType::Relation {
            relation_name,
            columns,
            ..
        } => Message::Relation {
            table: relation_name,
            columns: columns.iter().map(|c| c.name.to_string()).collect(),
        },
        EventType::Insert { table, data, .. } => Message::Insert {
            table,
            new: image(data),
        },
        EventType::Update {
            table,
            old_data,
            new_data,
            ..
        } => Message::Update {
            table,
            old: old_data.map(image),
            new: image(new_data),
        },
        EventType::Delete {
            table, old_data, ..
        } => Message::Delete {
            table,
            old: image(old_data),
        },
        EventType::Truncate { tables, .. } => Message::Truncate {
            tables: tables.iter().map(|t| t.to_string()).collect(),
        },
        _ => return None,
    })
}

/// Bytes of text, for tests and heartbeats.
pub fn text_value(s: &str) -> Value {
    Value::Text(Bytes::copy_from_slice(s.as_bytes()))
}
