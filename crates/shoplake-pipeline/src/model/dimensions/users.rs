//! `model.dim_users`: the spilled days of users' totals merged in user order, and staged.

use std::path::{Path, PathBuf};

use shoplake_lake::arrow::array::{ArrayRef, RecordBatch};
use shoplake_lake::tables;

use super::spilled::{Row, SpilledRows, UserColumns, user_schema};
use super::staging::{CHUNK, Staging};
use crate::error::Result;
use crate::model::columns::{Counts, counts, int, time};

/// One user's totals: of a day, or merged.
#[derive(Debug, Clone)]
pub(super) struct User {
    pub(super) first_seen: i64,
    pub(super) last_seen: i64,
    pub(super) active_days: i64,
    pub(super) sessions: i64,
    pub(super) counts: Counts,
}

impl User {
    /// Adds another part of the same user's activity (a session, or a day).
    pub(super) fn merge(&mut self, other: &User) {
        self.first_seen = self.first_seen.min(other.first_seen);
        self.last_seen = self.last_seen.max(other.last_seen);
        self.active_days += other.active_days;
        self.sessions += other.sessions;
        self.counts.merge(&other.counts);
    }
}

/// Merges the spilled days of users' totals (in day order), in user order.
pub(super) fn merge_users(days: &[PathBuf]) -> Result<Vec<(i64, User)>> {
    let runs = days
        .iter()
        .enumerate()
        .map(|(run, p)| SpilledRows::open(p, user_schema(), UserColumns::of, run))
        .collect::<Result<Vec<_>>>()?;
    let merged = itertools::kmerge_by(
        runs,
        |a: &Result<Row<UserColumns>>, b: &Result<Row<UserColumns>>| {
            match (a, b) {
                // An error comes out first, to stop the merge.
                (Err(_), _) => true,
                (_, Err(_)) => false,
                (Ok(a), Ok(b)) => (a.columns.id(a.row), a.run) < (b.columns.id(b.row), b.run),
            }
        },
    );
    let mut users: Vec<(i64, User)> = Vec::new();
    for row in merged {
        let row = row?;
        let (id, day) = (row.columns.id(row.row), row.columns.user(row.row));
        match users.last_mut() {
            // A user appears at most once a day, so each further row is another active day.
            Some((last, u)) if *last == id => u.merge(&day),
            _ => users.push((id, day)),
        }
    }
    Ok(users)
}

/// Stages the merged users as `model.dim_users` at `path`.
pub(super) fn write_users(users: &[(i64, User)], path: &Path) -> Result<()> {
    let def = tables::dim_users();
    let mut out = Staging::create(&def, path)?;
    for chunk in users.chunks(CHUNK) {
        let mut columns: Vec<ArrayRef> = vec![
            int(chunk.iter().map(|(id, _)| *id)),
            time(chunk.iter().map(|(_, u)| u.first_seen)),
            time(chunk.iter().map(|(_, u)| u.last_seen)),
            int(chunk.iter().map(|(_, u)| u.active_days)),
            int(chunk.iter().map(|(_, u)| u.sessions)),
        ];
        columns.extend(counts(&def, chunk.iter().map(|(_, u)| u.counts))?);
        out.write(RecordBatch::try_new(def.arrow_schema(), columns)?)?;
    }
    out.close()
}
