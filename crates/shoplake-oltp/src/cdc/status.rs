//! The slot's lag, for `shoplake status`.

use shoplake_lake::Lake;

use crate::connect::DbUrl;
use crate::error::{OltpError, Result};

/// How far the lake is behind the store's database.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotLag {
    /// WAL the server keeps for the slot beyond what the lake confirmed.
    pub bytes: i64,
    /// Seconds: while a client streams, PostgreSQL's own `flush_lag` of it (how long the
    /// newest WAL took to be confirmed; 0 when it is caught up); with none streaming, the
    /// seconds since the lake's last landing.
    pub seconds: f64,
    /// Whether a client streams from the slot now.
    pub active: bool,
}

/// The slot's lag, or None when there is no such slot.
pub async fn slot_lag(lake: &Lake, db: &DbUrl, slot: &str) -> Result<Option<SlotLag>> {
    let client = db.connect().await?;
    let q = |what: &'static str| move |e| OltpError::sql(what, e);
    let Some(row) = client
        .query_opt(
            "SELECT (pg_current_wal_lsn() - confirmed_flush_lsn)::bigint, active_pid,
                    (SELECT extract(epoch FROM coalesce(r.flush_lag, interval '0'))::float8
                     FROM pg_stat_replication r WHERE r.pid = s.active_pid)
             FROM pg_replication_slots s WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .map_err(q("reading the slot"))?
    else {
        return Ok(None);
    };
    let bytes: Option<i64> = row.get(0);
    let active: Option<i32> = row.get(1);
    let flush_lag: Option<f64> = row.get(2);
    let seconds = match (active, flush_lag) {
        (Some(_), Some(s)) => s,
        _ => {
            let landed = super::state::last_landed_micros(lake, slot).await?;
            landed.map_or(0.0, |t| {
                (chrono::Utc::now().timestamp_micros() - t).max(0) as f64 / 1e6
            })
        }
    };
    Ok(Some(SlotLag {
        bytes: bytes.unwrap_or(0).max(0),
        seconds,
        active: active.is_some(),
    }))
}
