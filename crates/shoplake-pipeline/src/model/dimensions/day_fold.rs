//! One day of the fact folded into (session, user) parts and users' day totals, sorted by
//! key and spilled ([`super::spilled`]); the day's batches are also passed on to the products
//! and categories fold.
//!
//! A day holds about half a million sessions on the month's data, small enough to stay in
//! cache. The fold allocates nothing per session: the ids in one arena, the sessions in a
//! vector by number, the products as (session, product) pairs.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use futures::TryStreamExt;
use hashbrown::{DefaultHashBuilder, HashTable};
use shoplake_lake::arrow::array::RecordBatch;
use shoplake_lake::arrow::datatypes::{Decimal128Type, Int64Type, TimestampMicrosecondType};
use shoplake_lake::arrow::ipc::writer::FileWriter;
use shoplake_lake::datafusion::prelude::SessionContext;
use std::hash::BuildHasher;
use tokio::sync::mpsc;

use super::ids::prefix;
use super::spilled::{PartRows, create, part_schema, user_batch, user_schema};
use super::staging::CHUNK;
use super::users::User;
use crate::error::{PipelineError, Result};
use crate::model::columns::{Counts, FACT, primitive};
use crate::texts::Texts;

/// (event_time, event_id): the order of events.
pub(super) type At = (i64, i64);

/// One user's events within one session on one day (or, while merging, on several days).
#[derive(Debug, Clone)]
pub(super) struct Part {
    pub(super) first: At,
    pub(super) last_time: i64,
    pub(super) counts: Counts,
}

impl Part {
    fn new(at: At) -> Self {
        Part {
            first: at,
            last_time: at.0,
            counts: Counts::default(),
        }
    }

    pub(super) fn merge(&mut self, other: &Part) {
        self.first = self.first.min(other.first);
        self.last_time = self.last_time.max(other.last_time);
        self.counts.merge(&other.counts);
    }
}

/// A session of one day: its first user's part, and the other users' (rare).
struct DaySession {
    user: i64,
    part: Part,
    others: Vec<(i64, Part)>,
}

/// The sessions of one day, folded without an allocation per session: the ids in one
/// arena, the sessions in a vector by number, the products as (session, product) pairs.
/// A worker keeps one and clears it between days, so its memory is reused rather than
/// returned to the system and faulted in again.
#[derive(Default)]
pub(super) struct DayFold {
    /// Session numbers, hashed by their ids.
    index: HashTable<u32>,
    hasher: DefaultHashBuilder,
    /// The ids, one after another; session `n` ends at `id_ends[n]`.
    ids: String,
    id_ends: Vec<usize>,
    /// By session number.
    sessions: Vec<DaySession>,
    products: Vec<(u32, i64)>,
}

impl DayFold {
    fn clear(&mut self) {
        self.index.clear();
        self.ids.clear();
        self.id_ends.clear();
        self.sessions.clear();
        self.products.clear();
    }

    fn id(&self, n: u32) -> &str {
        let n = n as usize;
        let start = if n == 0 { 0 } else { self.id_ends[n - 1] };
        &self.ids[start..self.id_ends[n]]
    }

    /// The number of session `id`, added (with `user`'s first event `at`) when new.
    fn session(&mut self, id: &str, user: i64, at: At) -> Result<u32> {
        let hash = self.hasher.hash_one(id);
        let (ids, ends) = (&self.ids, &self.id_ends);
        let text = |n: u32| {
            let n = n as usize;
            &ids[if n == 0 { 0 } else { ends[n - 1] }..ends[n]]
        };
        if let Some(&n) = self.index.find(hash, |&n| text(n) == id) {
            return Ok(n);
        }
        let n = u32::try_from(self.sessions.len()).map_err(|_| {
            PipelineError::Contract("a day holds more than 4 billion sessions".into())
        })?;
        self.ids.push_str(id);
        self.id_ends.push(self.ids.len());
        self.sessions.push(DaySession {
            user,
            part: Part::new(at),
            others: Vec::new(),
        });
        let hasher = &self.hasher;
        let (ids, ends) = (&self.ids, &self.id_ends);
        self.index.insert_unique(hash, n, |&m| {
            let m = m as usize;
            hasher.hash_one(&ids[if m == 0 { 0 } else { ends[m - 1] }..ends[m]])
        });
        Ok(n)
    }

    fn add(&mut self, batch: &RecordBatch) -> Result<()> {
        let session = Texts::of(batch, FACT, "session_id")?;
        let user = primitive::<Int64Type>(batch, "user_id")?;
        let product = primitive::<Int64Type>(batch, "product_id")?;
        let time = primitive::<TimestampMicrosecondType>(batch, "event_time")?;
        let id = primitive::<Int64Type>(batch, "event_id")?;
        let kind = Texts::of(batch, FACT, "event_type")?;
        let price = primitive::<Decimal128Type>(batch, "price")?;
        // Every column is declared non-null in the fact table.
        for i in 0..batch.num_rows() {
            let (at, user) = ((time.value(i), id.value(i)), user.value(i));
            let n = self.session(session.value(i), user, at)?;
            let s = &mut self.sessions[n as usize];
            let part = if s.user == user {
                &mut s.part
            } else {
                match s.others.iter().position(|(u, _)| *u == user) {
                    Some(p) => &mut s.others[p].1,
                    None => {
                        s.others.push((user, Part::new(at)));
                        &mut s.others.last_mut().expect("just pushed").1
                    }
                }
            };
            part.first = part.first.min(at);
            part.last_time = part.last_time.max(at.0);
            part.counts.add(kind.value(i), price.value(i))?;
            self.products.push((n, product.value(i)));
        }
        Ok(())
    }
}

/// What a day's fold leaves for the merge: two files, none for a day without rows.
#[derive(Debug)]
pub(super) struct DayPart {
    /// The (session, user) parts, ordered by that key ([`super::spilled::part_schema`]).
    pub(super) sessions: Option<PathBuf>,
    /// The users' totals of the day, ordered by user ([`super::spilled::user_schema`]).
    pub(super) users: Option<PathBuf>,
    /// The day's middle session id, to split the merge in two halves.
    pub(super) middle: Option<String>,
    pub(super) events: u64,
}

/// Folds a day into (session, user) parts and users' totals, spilled to `dir`; passes its
/// batches on to the products and categories fold.
pub(super) async fn fold_day(
    ctx: &SessionContext,
    day: NaiveDate,
    dir: &Path,
    products: &mpsc::Sender<RecordBatch>,
    mut fold: DayFold,
) -> Result<(DayPart, DayFold)> {
    let sql = format!(
        "SELECT session_id, user_id, product_id, event_time, event_id, event_type, price, \
         category_id, category_code, brand FROM model.fact_user_events \
         WHERE event_date = DATE '{day}'"
    );
    let mut stream = ctx.sql(&sql).await?.execute_stream().await?;
    fold.clear();
    let mut events = 0u64;
    while let Some(batch) = stream.try_next().await? {
        events += batch.num_rows() as u64;
        fold.add(&batch)?;
        // A closed channel means the products fold failed; `build` reports why.
        let _ = products.send(batch).await;
    }
    if fold.sessions.is_empty() {
        let part = DayPart {
            sessions: None,
            users: None,
            middle: None,
            events,
        };
        return Ok((part, fold));
    }
    let paths = (
        dir.join(format!("sessions-{day}.arrow")),
        dir.join(format!("users-{day}.arrow")),
    );
    let (s, u) = paths.clone();
    let (fold, middle) =
        tokio::task::spawn_blocking(move || spill_day(&fold, &s, &u).map(|middle| (fold, middle)))
            .await
            .map_err(|e| PipelineError::stopped(format!("spilling the sessions of {day}"), e))??;
    let part = DayPart {
        sessions: Some(paths.0),
        users: Some(paths.1),
        middle: Some(middle),
        events,
    };
    Ok((part, fold))
}

/// Writes a day's (session, user) parts, ordered by that key, to `sessions_path`, and its
/// users' totals, ordered by user, to `users_path`.
fn spill_day(fold: &DayFold, sessions_path: &Path, users_path: &Path) -> Result<String> {
    let order = sessions_in_id_order(fold);
    let middle = fold.id(order[order.len() / 2]).to_string();
    let (product_starts, session_products) = products_by_session(fold);
    let mut writer = FileWriter::try_new(create(sessions_path)?, &part_schema())?;
    let mut users: Vec<(i64, &Part)> = Vec::with_capacity(fold.sessions.len());
    for chunk in order.chunks(CHUNK) {
        let mut rows = PartRows::default();
        for &n in chunk {
            let s = &fold.sessions[n as usize];
            let id = fold.id(n);
            let products =
                &session_products[product_starts[n as usize]..product_starts[n as usize + 1]];
            // The session's parts by user; the products go on the first row.
            let mut parts: Vec<(i64, &Part)> = Vec::with_capacity(1 + s.others.len());
            parts.push((s.user, &s.part));
            parts.extend(s.others.iter().map(|(u, p)| (*u, p)));
            parts.sort_unstable_by_key(|(u, _)| *u);
            for (k, (user, part)) in parts.iter().enumerate() {
                rows.push(id, *user, part, if k == 0 { products } else { &[] });
                users.push((*user, part));
            }
        }
        writer.write(&rows.finish()?)?;
    }
    writer.finish()?;

    users.sort_unstable_by_key(|(u, _)| *u);
    let mut totals: Vec<(i64, User)> = Vec::new();
    for (user, part) in users {
        // One session of the day; the day itself is counted once per user.
        let session = User {
            first_seen: part.first.0,
            last_seen: part.last_time,
            active_days: 0,
            sessions: 1,
            counts: part.counts,
        };
        match totals.last_mut() {
            Some((last, total)) if *last == user => total.merge(&session),
            _ => totals.push((
                user,
                User {
                    active_days: 1,
                    ..session
                },
            )),
        }
    }
    let mut writer = FileWriter::try_new(create(users_path)?, &user_schema())?;
    for chunk in totals.chunks(CHUNK) {
        writer.write(&user_batch(chunk)?)?;
    }
    writer.finish()?;
    Ok(middle)
}

/// The day's session numbers in the byte order of their ids. They are sorted as (first eight
/// bytes, number) pairs, which needs no look-up of an id; only the rare runs of ids that
/// share their first eight bytes are then ordered by the whole id. Sorting the numbers by
/// comparing ids spent a tenth of a month's dimension build finding and comparing them.
fn sessions_in_id_order(fold: &DayFold) -> Vec<u32> {
    let mut keyed: Vec<(u64, u32)> = (0..fold.sessions.len() as u32)
        .map(|n| (prefix(fold.id(n)), n))
        .collect();
    keyed.sort_unstable();
    let mut order: Vec<u32> = keyed.iter().map(|&(_, n)| n).collect();
    let mut start = 0;
    while start < keyed.len() {
        let end = start + keyed[start..].partition_point(|k| k.0 == keyed[start].0);
        if end - start > 1 {
            order[start..end].sort_unstable_by(|&a, &b| fold.id(a).cmp(fold.id(b)));
        }
        start = end;
    }
    order
}

/// Each session's distinct products of the day, ascending: session `n`'s are
/// `products[starts[n]..starts[n + 1]]`. The (session, product) pairs are placed by session
/// with a counting pass, and only each session's few products are sorted.
fn products_by_session(fold: &DayFold) -> (Vec<usize>, Vec<i64>) {
    let sessions = fold.sessions.len();
    let mut starts = vec![0usize; sessions + 1];
    for &(n, _) in &fold.products {
        starts[n as usize + 1] += 1;
    }
    for n in 0..sessions {
        starts[n + 1] += starts[n];
    }
    let mut next = starts.clone();
    let mut products = vec![0i64; fold.products.len()];
    for &(n, product) in &fold.products {
        products[next[n as usize]] = product;
        next[n as usize] += 1;
    }
    // Sort and deduplicate each session's slice, packing them to the front.
    let mut kept = 0;
    let mut distinct_starts = vec![0usize; sessions + 1];
    for n in 0..sessions {
        let from = starts[n];
        let distinct = sort_distinct(&mut products[from..starts[n + 1]]);
        products.copy_within(from..from + distinct, kept);
        kept += distinct;
        distinct_starts[n + 1] = kept;
    }
    products.truncate(kept);
    (distinct_starts, products)
}

/// Sorts `values` and moves each distinct value once to the front; returns how many there are.
fn sort_distinct(values: &mut [i64]) -> usize {
    values.sort_unstable();
    let mut kept = 0;
    for i in 0..values.len() {
        if kept == 0 || values[kept - 1] != values[i] {
            values[kept] = values[i];
            kept += 1;
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_spills_in_id_order_with_each_session_s_distinct_products() {
        // Ids that share their first eight bytes, or differ only after them.
        let ids = [
            "abcdefgh2",
            "b",
            "abcdefgh",
            "abcdefgh10",
            "a",
            "abcdefgh1",
            "",
            "abcdefgg~",
            "a\0",
            "abcdefgh\0",
        ];
        let mut fold = DayFold::default();
        let mut expected: Vec<(&str, Vec<i64>)> = Vec::new();
        for (k, id) in ids.iter().enumerate() {
            let n = fold.session(id, 1, (k as i64, 0)).unwrap();
            // Products repeated, out of order, and one session without a second product.
            let products: Vec<i64> = (0..k as i64).map(|p| (p * 7) % 5).collect();
            for &p in products.iter().chain(products.iter().rev()) {
                fold.products.push((n, p));
            }
            let mut distinct = products.clone();
            distinct.sort_unstable();
            distinct.dedup();
            expected.push((id, distinct));
        }
        // The pairs arrive interleaved across sessions, as a day's rows do.
        fold.products.reverse();
        let order: Vec<&str> = sessions_in_id_order(&fold)
            .into_iter()
            .map(|n| fold.id(n))
            .collect();
        let mut sorted = ids.to_vec();
        sorted.sort_unstable();
        assert_eq!(order, sorted);
        let (starts, products) = products_by_session(&fold);
        for (n, (id, distinct)) in expected.iter().enumerate() {
            assert_eq!(fold.id(n as u32), *id);
            assert_eq!(
                &products[starts[n]..starts[n + 1]],
                distinct.as_slice(),
                "{id}"
            );
        }
        assert_eq!(starts.len(), ids.len() + 1);
        assert_eq!(
            products.len(),
            expected.iter().map(|(_, p)| p.len()).sum::<usize>()
        );
    }
}
