//! What the server must offer before a slot is opened, each lack a one-line error that says
//! what to run; the publication, created when missing; the slot's state.

use tokio_postgres::Client;

use shoplake_lake::cdc_tables::OLTP_TABLES;

use crate::error::{OltpError, Result};
use crate::schema::{HEARTBEAT_TABLE, require_schema};

/// A replication slot as the server reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotInfo {
    /// Output plugin (`pgoutput`).
    pub plugin: Option<String>,
    /// Database it decodes.
    pub database: Option<String>,
    /// Whether a connection is streaming from it now.
    pub active_pid: Option<i32>,
    /// Up to where the client confirmed (`hi/lo`).
    pub confirmed_flush: Option<String>,
}

fn q(what: &'static str) -> impl Fn(tokio_postgres::Error) -> OltpError {
    move |e| OltpError::sql(what, e)
}

/// Checks the server and the schema, creates the publication when missing, and returns the
/// slot's state (None when there is no such slot).
pub async fn preflight(client: &Client, slot: &str, publication: &str) -> Result<Option<SlotInfo>> {
    let wal_level: String = client
        .query_one("SELECT current_setting('wal_level')", &[])
        .await
        .map_err(q("reading wal_level"))?
        .get(0);
    if wal_level != "logical" {
        return Err(OltpError::NotReady(format!(
            "wal_level is '{wal_level}', change data capture needs 'logical': run \
             ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL"
        )));
    }
    let row = client
        .query_one(
            "SELECT current_user::text, rolreplication OR rolsuper FROM pg_roles
             WHERE rolname = current_user",
            &[],
        )
        .await
        .map_err(q("reading the role"))?;
    let (user, can_replicate): (String, bool) = (row.get(0), row.get(1));
    if !can_replicate {
        return Err(OltpError::NotReady(format!(
            "role {user} may not replicate: run ALTER ROLE {user} REPLICATION; as a superuser"
        )));
    }
    require_schema(client).await?;
    let tables: Vec<String> = OLTP_TABLES.iter().map(|t| t.to_string()).collect();
    let rows = client
        .query(
            "SELECT c.relname::text, c.relreplident::text FROM pg_class c
             WHERE c.oid = ANY(SELECT to_regclass(t)::oid FROM unnest($1::text[]) AS t)",
            &[&tables],
        )
        .await
        .map_err(q("reading the tables' replica identity"))?;
    let mut not_full: Vec<String> = rows
        .iter()
        .filter(|r| r.get::<_, String>(1) != "f")
        .map(|r| r.get::<_, String>(0))
        .collect();
    not_full.sort();
    if let Some(t) = not_full.first() {
        return Err(OltpError::NotReady(format!(
            "table {t} does not log whole rows (REPLICA IDENTITY FULL), which shoplake needs to \
             land deletes and unchanged large values: run ALTER TABLE {t} REPLICA IDENTITY FULL;{}",
            if not_full.len() > 1 {
                format!(" (and the same for {})", not_full[1..].join(", "))
            } else {
                String::new()
            }
        )));
    }
    ensure_publication(client, publication).await?;
    slot_info(client, slot).await
}

/// Creates the publication of the store's tables and the heartbeat table, or checks that an
/// existing one has them all, with inserts, updates and deletes.
async fn ensure_publication(client: &Client, publication: &str) -> Result<()> {
    let mut wanted: Vec<String> = OLTP_TABLES.iter().map(|t| t.to_string()).collect();
    wanted.push(HEARTBEAT_TABLE.to_string());
    let existing = client
        .query_opt(
            "SELECT pubinsert AND pubupdate AND pubdelete FROM pg_publication WHERE pubname = $1",
            &[&publication],
        )
        .await
        .map_err(q("reading the publication"))?;
    match existing {
        None => {
            let sql = format!(
                "CREATE PUBLICATION {} FOR TABLE {}",
                quote_ident(publication),
                wanted.join(", ")
            );
            client
                .batch_execute(&sql)
                .await
                .map_err(q("creating the publication"))?;
            tracing::info!("created publication {publication}");
            Ok(())
        }
        Some(row) => {
            if !row.get::<_, bool>(0) {
                return Err(OltpError::NotReady(format!(
                    "publication {publication} does not publish inserts, updates and deletes: run \
                     ALTER PUBLICATION {publication} SET (publish = 'insert, update, delete');"
                )));
            }
            let published: Vec<String> = client
                .query(
                    "SELECT tablename::text FROM pg_publication_tables WHERE pubname = $1",
                    &[&publication],
                )
                .await
                .map_err(q("reading the publication's tables"))?
                .iter()
                .map(|r| r.get(0))
                .collect();
            let missing: Vec<&String> = wanted.iter().filter(|t| !published.contains(t)).collect();
            if !missing.is_empty() {
                let list: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
                return Err(OltpError::NotReady(format!(
                    "publication {publication} lacks {}: run ALTER PUBLICATION {publication} ADD TABLE {};",
                    list.join(", "),
                    list.join(", ")
                )));
            }
            Ok(())
        }
    }
}

/// The slot's state, or None.
pub async fn slot_info(client: &Client, slot: &str) -> Result<Option<SlotInfo>> {
    let row = client
        .query_opt(
            "SELECT plugin::text, database::text, active_pid, confirmed_flush_lsn::text,
                    current_database()::text, to_jsonb(s) ->> 'wal_status'
             FROM pg_replication_slots s WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .map_err(q("reading the replication slot"))?;
    let Some(row) = row else { return Ok(None) };
    let info = SlotInfo {
        plugin: row.get(0),
        database: row.get(1),
        active_pid: row.get(2),
        confirmed_flush: row.get(3),
    };
    let here: String = row.get(4);
    if info.plugin.as_deref() != Some("pgoutput") || info.database.as_deref() != Some(&here) {
        return Err(OltpError::NotReady(format!(
            "replication slot {slot} exists but is not a pgoutput slot of database {here}: choose \
             another --slot, or drop it with SELECT pg_drop_replication_slot('{slot}');"
        )));
    }
    // PostgreSQL 13+ invalidates a slot that fell behind max_slot_wal_keep_size.
    if row.get::<_, Option<String>>(5).as_deref() == Some("lost") {
        return Err(OltpError::NotReady(format!(
            "replication slot {slot} lost WAL it needed (max_slot_wal_keep_size): the changes \
             since are lost to the lake; run `shoplake cdc --resnapshot` to start over"
        )));
    }
    Ok(Some(info))
}

/// Drops an inactive slot (one an interrupted snapshot left behind).
pub async fn drop_slot(client: &Client, slot: &str) -> Result<()> {
    client
        .execute("SELECT pg_drop_replication_slot($1)", &[&slot])
        .await
        .map_err(q("dropping the replication slot"))?;
    Ok(())
}

/// Writes this slot's heartbeat; returns the server's WAL position just before it. Every
/// transaction committed before the call commits below that position, and the stream
/// delivers transactions in commit order: once this heartbeat (a change of this slot's row
/// committed at or past the position) comes back, all of them have come.
pub async fn heartbeat(client: &Client, slot: &str) -> Result<u64> {
    let before: i64 = client
        .query_one("SELECT (pg_current_wal_lsn() - '0/0')::bigint", &[])
        .await
        .map_err(q("reading the WAL position"))?
        .get(0);
    client
        .execute(
            &format!(
                "INSERT INTO {HEARTBEAT_TABLE} (slot, beat_at) VALUES ($1, clock_timestamp())
                 ON CONFLICT (slot) DO UPDATE SET beat_at = EXCLUDED.beat_at"
            ),
            &[&slot],
        )
        .await
        .map_err(q("writing the heartbeat"))?;
    Ok(before.max(0) as u64)
}

/// A quoted identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The slot's lag: bytes of WAL the server keeps for it beyond what was confirmed.
pub async fn slot_lag_bytes(client: &Client, slot: &str) -> Result<Option<i64>> {
    Ok(client
        .query_opt(
            "SELECT (pg_current_wal_lsn() - confirmed_flush_lsn)::bigint
             FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .map_err(q("reading the slot's lag"))?
        .and_then(|r| r.get(0)))
}
