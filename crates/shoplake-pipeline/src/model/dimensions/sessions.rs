//! `model.dim_sessions`: the spilled days of (session, user) parts merged in key order, a
//! range of session ids at a time, and staged.
//!
//! A session that crosses midnight meets its other days in the merge and comes out whole. Its
//! user is the user of its first event; a session shared by several users (rare) counts all
//! their events.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use shoplake_lake::arrow::array::{ArrayRef, BooleanArray, Date32Array, RecordBatch, StringArray};
use shoplake_lake::datafusion::common::HashMap;
use shoplake_lake::tables;
use shoplake_lake::time::{MICROS_PER_SECOND, day_of_micros};

use super::day_fold::{At, Part};
use super::ids::text_order;
use super::spilled::{PartColumns, Row, SpilledRows, part_schema};
use super::staging::{CHUNK, Staging};
use crate::error::Result;
use crate::model::columns::{Counts, counts, int, time};

/// A session being merged from its parts.
#[derive(Debug, Default)]
struct Session {
    id: String,
    user: i64,
    first: At,
    last_time: i64,
    counts: Counts,
    products: Vec<i64>,
}

impl Session {
    /// Adds a (session, user) part merged over its days.
    fn add(&mut self, user: i64, part: &Part) {
        // Parts come by user id, so equal first events keep the smallest user.
        if part.first < self.first {
            self.first = part.first;
            self.user = user;
        }
        self.last_time = self.last_time.max(part.last_time);
        self.counts.merge(&part.counts);
    }
}

/// The parts of one spilled day whose session ids are from `from` (included) to `to`
/// (excluded).
fn in_range(
    rows: SpilledRows<PartColumns>,
    from: Option<String>,
    to: Option<String>,
) -> impl Iterator<Item = Result<Row<PartColumns>>> {
    let before = move |r: &Result<Row<PartColumns>>| match (r, &from) {
        (Ok(r), Some(from)) => text_order(r.columns.session(r.row), from) == Ordering::Less,
        _ => false,
    };
    let within = move |r: &Result<Row<PartColumns>>| match (r, &to) {
        (Ok(r), Some(to)) => text_order(r.columns.session(r.row), to) == Ordering::Less,
        _ => true,
    };
    rows.skip_while(before).take_while(within)
}

/// The merge's order: session id, user, then day (errors first, to stop the merge).
fn merge_order(a: &Result<Row<PartColumns>>, b: &Result<Row<PartColumns>>) -> bool {
    match (a, b) {
        (Err(_), _) => true,
        (_, Err(_)) => false,
        (Ok(a), Ok(b)) => {
            let (ca, cb) = (&a.columns, &b.columns);
            text_order(ca.session(a.row), cb.session(b.row))
                .then(ca.user(a.row).cmp(&cb.user(b.row)))
                .then(a.run.cmp(&b.run))
                == Ordering::Less
        }
    }
}

/// Merges the spilled days (in day order) of (session, user) parts into the staged
/// `model.dim_sessions` at `path`. Returns, per user, how many times one of the user's
/// sessions was counted on more than one day (the day totals of users count it on each).
///
/// Only the sessions with ids from `from` (included) to `to` (excluded) are merged, so that
/// ranges of ids can be merged side by side.
pub(super) fn merge_sessions(
    days: &[PathBuf],
    path: &Path,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<HashMap<i64, i64>> {
    let runs = days
        .iter()
        .enumerate()
        .map(|(run, p)| {
            let rows = SpilledRows::open(p, part_schema(), PartColumns::of, run)?;
            Ok(in_range(
                rows,
                from.map(str::to_string),
                to.map(str::to_string),
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let merged = itertools::kmerge_by(runs, merge_order);
    let mut repeats: HashMap<i64, i64> = HashMap::new();
    let mut out = Staging::create(&tables::dim_sessions(), path)?;
    let mut rows: Vec<Session> = Vec::with_capacity(CHUNK);
    // The (session, user) part being merged, and the session it belongs to.
    let mut part: Option<(i64, Part)> = None;
    let mut session = Session::default();
    for row in merged {
        let row = row?;
        let (columns, r) = (&row.columns, row.row);
        let (id, user) = (columns.session(r), columns.user(r));
        let in_session = part.is_some();
        let same_session = in_session && session.id == id;
        match &mut part {
            Some((u, p)) if same_session && *u == user => {
                p.merge(&columns.part(r));
                *repeats.entry(user).or_default() += 1;
            }
            _ => {
                if let Some((u, p)) = part.take() {
                    session.add(u, &p);
                }
                if !same_session {
                    if in_session {
                        rows.push(std::mem::take(&mut session));
                        if rows.len() == CHUNK {
                            out.write(session_batch(&mut rows)?)?;
                        }
                    }
                    session.id.push_str(id);
                    session.first = (i64::MAX, i64::MAX);
                    session.last_time = i64::MIN;
                }
                part = Some((user, columns.part(r)));
            }
        }
        columns.products(r, &mut session.products);
    }
    if let Some((u, p)) = part.take() {
        session.add(u, &p);
        rows.push(session);
    }
    if !rows.is_empty() {
        out.write(session_batch(&mut rows)?)?;
    }
    out.close()?;
    Ok(repeats)
}

/// A batch of `model.dim_sessions` from merged sessions (emptying `rows`).
fn session_batch(rows: &mut Vec<Session>) -> Result<RecordBatch> {
    let def = tables::dim_sessions();
    for s in rows.iter_mut() {
        s.products.sort_unstable();
        s.products.dedup();
    }
    let start = |s: &Session| s.first.0;
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(rows.iter().map(|s| &s.id))),
        int(rows.iter().map(|s| s.user)),
        time(rows.iter().map(start)),
        time(rows.iter().map(|s| s.last_time)),
        int(rows
            .iter()
            .map(|s| (s.last_time - start(s)) / MICROS_PER_SECOND)),
        Arc::new(Date32Array::from_iter_values(
            rows.iter().map(|s| day_of_micros(start(s))),
        )),
        int(rows.iter().map(|s| s.products.len() as i64)),
        Arc::new(BooleanArray::from_iter(
            rows.iter().map(|s| Some(s.counts.purchases > 0)),
        )),
    ];
    columns.extend(counts(&def, rows.iter().map(|s| s.counts))?);
    rows.clear();
    Ok(RecordBatch::try_new(def.arrow_schema(), columns)?)
}
