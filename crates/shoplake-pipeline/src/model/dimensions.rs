//! The aggregate dimensions, `model.dim_products`, `dim_categories`, `dim_sessions` and
//! `dim_users`, from one pass over the fact table, a day partition at a time, one day per
//! core at once.
//!
//! As SQL (kept as the tests' independent answer in [`super::reference_sql`]) they took
//! 100 s of a month's run: each of 66 M events was hashed by its 36-byte session id into a
//! table of 14 M groups that spilled, and the ordered `first_value` / `last_value` kept a
//! vector of `ScalarValue`s per group. Here each day is scanned once and folded twice:
//!
//! - into the catalog ([`super::catalog`]): one entry per product and category, on a thread
//!   of its own that the day folds pass their batches to;
//! - into (session, user) parts and per-user totals (a day holds about half a million
//!   sessions, small enough to stay in cache), each sorted by key and spilled to an Arrow IPC
//!   file in the scratch directory. The days' files are then merged in key order (sessions
//!   in two ranges of ids, and users, on three threads): a session that crosses midnight
//!   meets its other days there and comes out whole, and a user's days add up to the user
//!   (a session the user had on two days counted once). Both come out in key order, ready
//!   to write; no table ever holds every session.
//!
//! Memory: a day's fold per core (about 150 MB each for a month of 66 M events), the catalog
//! (about 250 bytes a product), one batch per day file while merging, and the merged users
//! (about 100 bytes each) until they are written.

use std::cmp::Ordering;
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::NaiveDate;
use futures::TryStreamExt;
use hashbrown::{DefaultHashBuilder, HashTable};
use shoplake_lake::arrow::array::{
    ArrayRef, AsArray, BooleanArray, Date32Array, Decimal128Array, Int64Array, Int64Builder,
    ListArray, ListBuilder, RecordBatch, StringArray, StringBuilder,
};
use shoplake_lake::arrow::datatypes::{
    DataType, Decimal128Type, Field, Int64Type, Schema, SchemaRef, TimestampMicrosecondType,
};
use shoplake_lake::arrow::ipc::reader::FileReader;
use shoplake_lake::arrow::ipc::writer::FileWriter;
use shoplake_lake::datafusion::common::HashMap;
use shoplake_lake::datafusion::parquet::arrow::ArrowWriter;
use shoplake_lake::datafusion::parquet::file::properties::WriterProperties;
use shoplake_lake::datafusion::prelude::SessionContext;
use shoplake_lake::tables::{self, TableDef};
use std::hash::BuildHasher;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::catalog::{CatalogDimensions, Fold};
use super::columns::{Counts, FACT, counts, int, primitive, time};
use crate::error::{PipelineError, Result};
use crate::texts::Texts;

const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;
/// Rows per batch of the spilled day files and of the staged dimensions.
const CHUNK: usize = 16 * 1024;

/// The four dimensions, sessions and users staged as Parquet files in the scratch directory
/// (in their tables' schemas, ordered by key), and the events they were built from.
#[derive(Debug)]
pub struct Staged {
    /// `model.dim_products` and `model.dim_categories`, in memory (one row per product or
    /// category).
    pub catalog: CatalogDimensions,
    /// `model.dim_sessions`, in files to be read one after another (ranges of ids).
    pub sessions: Vec<PathBuf>,
    /// `model.dim_users`.
    pub users: PathBuf,
    /// Fact rows read; equal to the sum of `events` over any of the four dimensions.
    pub events: u64,
    /// Wall seconds folding the days (the scan included) and merging them.
    pub seconds: (f64, f64),
}

/// Builds the four dimensions from the `days` partitions of `model.fact_user_events` as
/// registered in `ctx`, folding `parallel` days at a time; intermediate and staged files go
/// to `scratch`.
pub async fn build(
    ctx: &SessionContext,
    days: &[NaiveDate],
    scratch: &Path,
    parallel: usize,
) -> Result<Staged> {
    let started = std::time::Instant::now();
    let dir = scratch.join("dimensions");
    std::fs::create_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
    // A JoinSet aborts the folds still running if one fails and this returns early.
    let mut folds = JoinSet::new();
    let mut parts = Vec::new();
    // The catalog is folded once, on its own thread, from the batches the days pass on.
    let (to_catalog, mut batches) = mpsc::channel::<RecordBatch>(16);
    let catalog = tokio::task::spawn_blocking(move || {
        let mut fold = Fold::default();
        while let Some(batch) = batches.blocking_recv() {
            fold.add(&batch)?;
        }
        fold.finish()
    });
    let mut pending = days.iter().copied().enumerate();
    // A finished day's fold is handed to the next day, its memory kept.
    let mut spare: Vec<DayFold> = Vec::new();
    loop {
        while folds.len() < parallel.max(1) {
            let Some((i, day)) = pending.next() else {
                break;
            };
            let (ctx, dir, to_catalog) = (ctx.clone(), dir.clone(), to_catalog.clone());
            let fold = spare.pop().unwrap_or_default();
            folds.spawn(async move {
                let done = fold_day(&ctx, day, &dir, &to_catalog, fold).await;
                done.map(|(part, fold)| (i, part, fold))
            });
        }
        match folds.join_next().await {
            Some(done) => {
                let (i, part, fold) = done.map_err(|e| {
                    PipelineError::Usage(format!("folding a day of the fact stopped: {e}"))
                })??;
                parts.push((i, part));
                spare.push(fold);
            }
            None => break,
        }
    }
    drop(spare);
    drop(to_catalog);
    let catalog = catalog
        .await
        .map_err(|e| PipelineError::Usage(format!("folding the catalog stopped: {e}")))??;
    // In day order, so that ties between days resolve the same way on every run.
    parts.sort_by_key(|(i, _)| *i);
    let parts: Vec<DayPart> = parts.into_iter().map(|(_, p)| p).collect();
    let users = dir.join("dim_users.parquet");
    let folded = started.elapsed().as_secs_f64();
    let events = parts.iter().map(|p| p.events).sum();
    let session_runs: Arc<Vec<PathBuf>> =
        Arc::new(parts.iter().filter_map(|p| p.sessions.clone()).collect());
    let user_runs: Vec<PathBuf> = parts.iter().filter_map(|p| p.users.clone()).collect();
    // Sessions are merged in two ranges of ids side by side, split at the median of the
    // days' middle ids (any split is exact; this one halves the work).
    let mut middles: Vec<&String> = parts.iter().filter_map(|p| p.middle.as_ref()).collect();
    middles.sort_unstable_by(|a, b| text_order(a, b));
    let split = middles.get(middles.len() / 2).map(|m| m.to_string());
    let ranges = match split {
        Some(split) => vec![(None, Some(split.clone())), (Some(split), None)],
        None => vec![(None, None)],
    };
    let sessions: Vec<PathBuf> = (0..ranges.len())
        .map(|i| dir.join(format!("dim_sessions-{i}.parquet")))
        .collect();
    let merges: Vec<_> = ranges
        .into_iter()
        .zip(sessions.clone())
        .map(
            |((from, to), path): ((Option<String>, Option<String>), PathBuf)| {
                let runs = session_runs.clone();
                tokio::task::spawn_blocking(move || {
                    merge_sessions(&runs, &path, from.as_deref(), to.as_deref())
                })
            },
        )
        .collect();
    let merged_users = tokio::task::spawn_blocking(move || merge_users(&user_runs));
    let stopped = |e| PipelineError::Usage(format!("merging the sessions and users stopped: {e}"));
    // All awaited before any error is returned, so none outlives the run.
    let mut merged_sessions = Vec::new();
    for merge in merges {
        merged_sessions.push(merge.await);
    }
    let merged_users = merged_users.await;
    let mut repeats: HashMap<i64, i64> = HashMap::new();
    for merged in merged_sessions {
        for (user, n) in merged.map_err(stopped)?? {
            *repeats.entry(user).or_default() += n;
        }
    }
    let mut merged_users = merged_users.map_err(stopped)??;
    for (user, n) in repeats {
        match merged_users.binary_search_by_key(&user, |(id, _)| *id) {
            Ok(i) => merged_users[i].1.sessions -= n,
            Err(_) => {
                return Err(PipelineError::Contract(format!(
                    "user {user} has a session but no activity"
                )));
            }
        }
    }
    write_users(&merged_users, &users)?;
    Ok(Staged {
        catalog,
        sessions,
        users,
        events,
        seconds: (folded, started.elapsed().as_secs_f64() - folded),
    })
}

fn io_error(path: &Path, e: impl std::fmt::Display) -> PipelineError {
    PipelineError::Usage(format!("cannot use scratch file {}: {e}", path.display()))
}

/// (event_time, event_id): the order of events.
type At = (i64, i64);

/// One user's events within one session on one day (or, while merging, on several days).
#[derive(Debug, Clone)]
struct Part {
    first: At,
    last_time: i64,
    counts: Counts,
}

impl Part {
    fn new(at: At) -> Self {
        Part {
            first: at,
            last_time: at.0,
            counts: Counts::default(),
        }
    }

    fn merge(&mut self, other: &Part) {
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
struct DayFold {
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
        let n = u32::try_from(self.sessions.len())
            .map_err(|_| PipelineError::Usage("a day holds more than 4 billion sessions".into()))?;
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
struct DayPart {
    /// The (session, user) parts, ordered by that key ([`part_schema`]).
    sessions: Option<PathBuf>,
    /// The users' totals of the day, ordered by user ([`user_schema`]).
    users: Option<PathBuf>,
    /// The day's middle session id, to split the merge in two halves.
    middle: Option<String>,
    events: u64,
}

/// One user's totals: of a day, or merged.
#[derive(Debug, Clone)]
struct User {
    first_seen: i64,
    last_seen: i64,
    active_days: i64,
    sessions: i64,
    counts: Counts,
}

impl User {
    /// Adds another part of the same user's activity (a session, or a day).
    fn merge(&mut self, other: &User) {
        self.first_seen = self.first_seen.min(other.first_seen);
        self.last_seen = self.last_seen.max(other.last_seen);
        self.active_days += other.active_days;
        self.sessions += other.sessions;
        self.counts.merge(&other.counts);
    }
}

/// The columns of a spilled day of users.
fn user_schema() -> SchemaRef {
    let i = |name| Field::new(name, DataType::Int64, false);
    Arc::new(Schema::new(vec![
        i("user_id"),
        i("first_seen"),
        i("last_seen"),
        i("sessions"),
        i("events"),
        i("views"),
        i("carts"),
        i("removes"),
        i("purchases"),
        Field::new("revenue_cents", DataType::Decimal128(38, 0), false),
    ]))
}

/// The columns of a spilled day file.
fn part_schema() -> SchemaRef {
    let i = |name| Field::new(name, DataType::Int64, false);
    Arc::new(Schema::new(vec![
        Field::new("session_id", DataType::Utf8, false),
        i("user_id"),
        i("first_time"),
        i("first_id"),
        i("last_time"),
        i("events"),
        i("views"),
        i("carts"),
        i("removes"),
        i("purchases"),
        Field::new("revenue_cents", DataType::Decimal128(38, 0), false),
        // The session's distinct products of the day, on its first user's row only.
        Field::new(
            "products",
            DataType::List(Arc::new(Field::new("item", DataType::Int64, false))),
            false,
        ),
    ]))
}

/// Folds a day into (session, user) parts and users' totals, spilled to `dir`; passes its
/// batches on to the catalog's fold.
async fn fold_day(
    ctx: &SessionContext,
    day: NaiveDate,
    dir: &Path,
    catalog: &mpsc::Sender<RecordBatch>,
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
        // A closed channel means the catalog's fold failed; `build` reports why.
        let _ = catalog.send(batch).await;
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
            .map_err(|e| {
                PipelineError::Usage(format!("spilling the sessions of {day} stopped: {e}"))
            })??;
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
    let schema = part_schema();
    let mut writer = FileWriter::try_new(create(sessions_path)?, &schema)?;
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
        writer.write(&rows.finish(&schema)?)?;
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
    let schema = user_schema();
    let mut writer = FileWriter::try_new(create(users_path)?, &schema)?;
    for chunk in totals.chunks(CHUNK) {
        let int = |f: fn(&(i64, User)) -> i64| -> ArrayRef {
            Arc::new(Int64Array::from_iter_values(chunk.iter().map(f)))
        };
        let columns = vec![
            int(|(id, _)| *id),
            int(|(_, u)| u.first_seen),
            int(|(_, u)| u.last_seen),
            int(|(_, u)| u.sessions),
            int(|(_, u)| u.counts.events),
            int(|(_, u)| u.counts.views),
            int(|(_, u)| u.counts.carts),
            int(|(_, u)| u.counts.removes),
            int(|(_, u)| u.counts.purchases),
            Arc::new(
                Decimal128Array::from_iter_values(
                    chunk.iter().map(|(_, u)| u.counts.revenue_cents),
                )
                .with_precision_and_scale(38, 0)?,
            ),
        ];
        writer.write(&RecordBatch::try_new(schema.clone(), columns)?)?;
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

/// The first eight bytes of `s` as a big-endian integer, zero-padded: comparing two of them
/// orders the strings as [`str::cmp`] does whenever they differ.
fn prefix(s: &str) -> u64 {
    let mut bytes = [0u8; 8];
    let n = s.len().min(8);
    bytes[..n].copy_from_slice(&s.as_bytes()[..n]);
    u64::from_be_bytes(bytes)
}

/// The byte order of two strings (that of `str::cmp`), deciding on the first eight bytes as
/// one integer when they differ: most session ids do, and sorting half a million of them a
/// day spent its time in `memcmp` calls.
fn text_order(a: &str, b: &str) -> Ordering {
    prefix(a).cmp(&prefix(b)).then_with(|| a.cmp(b))
}

fn create(path: &Path) -> Result<BufWriter<File>> {
    Ok(BufWriter::new(
        File::create(path).map_err(|e| io_error(path, e))?,
    ))
}

fn open(path: &Path) -> Result<FileReader<BufReader<File>>> {
    let file = File::open(path).map_err(|e| io_error(path, e))?;
    Ok(FileReader::try_new(BufReader::new(file), None)?)
}

/// Builders of a spilled batch.
#[derive(Default)]
struct PartRows {
    session: StringBuilder,
    ints: [Vec<i64>; 9],
    revenue: Vec<i128>,
    products: ListBuilder<Int64Builder>,
}

impl PartRows {
    fn push(&mut self, session: &str, user: i64, part: &Part, products: &[i64]) {
        self.session.append_value(session);
        let c = &part.counts;
        let values = [
            user,
            part.first.0,
            part.first.1,
            part.last_time,
            c.events,
            c.views,
            c.carts,
            c.removes,
            c.purchases,
        ];
        for (column, v) in self.ints.iter_mut().zip(values) {
            column.push(v);
        }
        self.revenue.push(c.revenue_cents);
        self.products.values().append_slice(products);
        self.products.append(true);
    }

    fn finish(mut self, schema: &SchemaRef) -> Result<RecordBatch> {
        let mut columns: Vec<ArrayRef> = vec![Arc::new(self.session.finish())];
        columns.extend(
            self.ints
                .into_iter()
                .map(|v| Arc::new(Int64Array::from(v)) as ArrayRef),
        );
        columns.push(Arc::new(
            Decimal128Array::from(self.revenue).with_precision_and_scale(38, 0)?,
        ));
        let products = self.products.finish();
        // The builder declares nullable items; the spilled schema says they are not.
        let (_, offsets, values, nulls) = products.into_parts();
        let item = match schema.field(11).data_type() {
            DataType::List(item) => item.clone(),
            other => unreachable!("products is declared a list, not {other}"),
        };
        columns.push(Arc::new(ListArray::try_new(item, offsets, values, nulls)?));
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
    }
}

/// A spilled day read back in key order, one row at a time.
trait Run {
    type Key<'a>: Ord
    where
        Self: 'a;

    /// The current row's key; None at the end.
    fn key(&self) -> Option<Self::Key<'_>>;

    /// How two runs' current keys compare (None, the end, after every key).
    fn compare(&self, other: &Self) -> Ordering {
        match (self.key(), other.key()) {
            (Some(a), Some(b)) => a.cmp(&b),
            (a, b) => b.is_some().cmp(&a.is_some()),
        }
    }

    /// Moves to the next row.
    fn advance(&mut self) -> Result<()>;
}

/// Reads the batches of a spilled file one after another, skipping empty ones.
struct Batches<C> {
    reader: FileReader<BufReader<File>>,
    schema: SchemaRef,
    columns: Option<C>,
    rows: usize,
    row: usize,
}

impl<C> Batches<C> {
    fn open(path: &Path, schema: SchemaRef, downcast: fn(&RecordBatch) -> C) -> Result<Self> {
        let mut batches = Batches {
            reader: open(path)?,
            schema,
            columns: None,
            rows: 0,
            row: 0,
        };
        batches.next_batch(downcast)?;
        Ok(batches)
    }

    fn next_batch(&mut self, downcast: fn(&RecordBatch) -> C) -> Result<()> {
        self.row = 0;
        self.columns = None;
        for batch in self.reader.by_ref() {
            let batch = batch?;
            if batch.schema() != self.schema {
                return Err(PipelineError::Contract(
                    "a spilled day of sessions or users has an unexpected schema".into(),
                ));
            }
            if batch.num_rows() > 0 {
                self.rows = batch.num_rows();
                self.columns = Some(downcast(&batch));
                break;
            }
        }
        Ok(())
    }

    fn advance(&mut self, downcast: fn(&RecordBatch) -> C) -> Result<()> {
        self.row += 1;
        if self.row >= self.rows {
            self.next_batch(downcast)?;
        }
        Ok(())
    }

    fn current(&self) -> Option<(&C, usize)> {
        self.columns.as_ref().map(|c| (c, self.row))
    }
}

fn int64(batch: &RecordBatch, column: usize) -> Int64Array {
    batch.column(column).as_primitive::<Int64Type>().clone()
}

fn cents(batch: &RecordBatch, column: usize) -> Decimal128Array {
    batch
        .column(column)
        .as_primitive::<Decimal128Type>()
        .clone()
}

/// The counts of a spilled row: events, views, carts, removes, purchases, then revenue.
fn spilled_counts(ints: &[Int64Array], revenue: &Decimal128Array, row: usize) -> Counts {
    Counts {
        events: ints[0].value(row),
        views: ints[1].value(row),
        carts: ints[2].value(row),
        removes: ints[3].value(row),
        purchases: ints[4].value(row),
        revenue_cents: revenue.value(row),
    }
}

/// The columns of a spilled batch of (session, user) parts, downcast once.
struct PartColumns {
    session: StringArray,
    ints: [Int64Array; 9],
    revenue: Decimal128Array,
    products: ListArray,
}

impl PartColumns {
    fn of(batch: &RecordBatch) -> Self {
        PartColumns {
            session: batch.column(0).as_string::<i32>().clone(),
            ints: std::array::from_fn(|i| int64(batch, i + 1)),
            revenue: cents(batch, 10),
            products: batch.column(11).as_list::<i32>().clone(),
        }
    }

    fn part(&self, row: usize) -> Part {
        let int = |i: usize| self.ints[i].value(row);
        Part {
            first: (int(1), int(2)),
            last_time: int(3),
            counts: spilled_counts(&self.ints[4..9], &self.revenue, row),
        }
    }

    fn products(&self, row: usize, into: &mut Vec<i64>) {
        let offsets = self.products.value_offsets();
        let (from, to) = (offsets[row] as usize, offsets[row + 1] as usize);
        let values = self.products.values().as_primitive::<Int64Type>().values();
        into.extend_from_slice(&values[from..to]);
    }
}

/// A spilled day of parts, limited to the sessions in a range of ids.
struct SessionRun {
    batches: Batches<PartColumns>,
    /// Where the range ends (excluded): the run ends at the first session id from here.
    to: Option<String>,
}

impl SessionRun {
    /// Opens `path` at the first session id from `from` (included) and ends it before `to`.
    fn open(path: &Path, from: Option<&str>, to: Option<&str>) -> Result<Self> {
        let mut run = SessionRun {
            batches: Batches::open(path, part_schema(), PartColumns::of)?,
            to: to.map(str::to_string),
        };
        if let Some(from) = from {
            while run
                .key()
                .is_some_and(|(id, _)| text_order(id, from) == Ordering::Less)
            {
                run.advance()?;
            }
        }
        Ok(run)
    }
}

impl Run for SessionRun {
    type Key<'a> = (&'a str, i64);

    fn key(&self) -> Option<(&str, i64)> {
        let (c, row) = self.batches.current()?;
        let id = c.session.value(row);
        match &self.to {
            Some(to) if text_order(id, to) != Ordering::Less => None,
            _ => Some((id, c.ints[0].value(row))),
        }
    }

    fn compare(&self, other: &Self) -> Ordering {
        match (self.key(), other.key()) {
            (Some(a), Some(b)) => text_order(a.0, b.0).then(a.1.cmp(&b.1)),
            (a, b) => b.is_some().cmp(&a.is_some()),
        }
    }

    fn advance(&mut self) -> Result<()> {
        self.batches.advance(PartColumns::of)
    }
}

/// The columns of a spilled batch of users, downcast once.
struct UserColumns {
    ints: [Int64Array; 9],
    revenue: Decimal128Array,
}

impl UserColumns {
    fn of(batch: &RecordBatch) -> Self {
        UserColumns {
            ints: std::array::from_fn(|i| int64(batch, i)),
            revenue: cents(batch, 9),
        }
    }

    fn user(&self, row: usize) -> User {
        let int = |i: usize| self.ints[i].value(row);
        User {
            first_seen: int(1),
            last_seen: int(2),
            active_days: 1,
            sessions: int(3),
            counts: spilled_counts(&self.ints[4..9], &self.revenue, row),
        }
    }
}

struct UserRun(Batches<UserColumns>);

impl Run for UserRun {
    type Key<'a> = i64;

    fn key(&self) -> Option<i64> {
        let (c, row) = self.0.current()?;
        Some(c.ints[0].value(row))
    }

    fn advance(&mut self) -> Result<()> {
        self.0.advance(UserColumns::of)
    }
}

/// A min-heap of runs by (key, index): the index (the day's order) breaks ties.
struct Heap(Vec<usize>);

impl Heap {
    fn less<R: Run>(runs: &[R], a: usize, b: usize) -> bool {
        runs[a].compare(&runs[b]).then(a.cmp(&b)) == Ordering::Less
    }

    fn new<R: Run>(runs: &[R]) -> Self {
        let mut heap = Heap(
            (0..runs.len())
                .filter(|&i| runs[i].key().is_some())
                .collect(),
        );
        for i in (0..heap.0.len() / 2).rev() {
            heap.sift_down(runs, i);
        }
        heap
    }

    fn top(&self) -> Option<usize> {
        self.0.first().copied()
    }

    /// Advances the top run and restores the order; drops the run when it is exhausted.
    fn advance_top<R: Run>(&mut self, runs: &mut [R]) -> Result<()> {
        runs[self.0[0]].advance()?;
        if runs[self.0[0]].key().is_none() {
            self.0.swap_remove(0);
        }
        if !self.0.is_empty() {
            self.sift_down(runs, 0);
        }
        Ok(())
    }

    fn sift_down<R: Run>(&mut self, runs: &[R], mut i: usize) {
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut least = i;
            if l < self.0.len() && Self::less(runs, self.0[l], self.0[least]) {
                least = l;
            }
            if r < self.0.len() && Self::less(runs, self.0[r], self.0[least]) {
                least = r;
            }
            if least == i {
                return;
            }
            self.0.swap(i, least);
            i = least;
        }
    }
}

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

/// Merges the spilled days of (session, user) parts into the staged `model.dim_sessions`.
/// Returns, per user, how many times one of the user's sessions was counted on more than
/// one day (the day totals of users count it on each).
///
/// Only the sessions with ids from `from` (included) to `to` (excluded) are merged, so that
/// ranges of ids can be merged side by side.
fn merge_sessions(
    runs: &[PathBuf],
    path: &Path,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<HashMap<i64, i64>> {
    let mut runs = runs
        .iter()
        .map(|p| SessionRun::open(p, from, to))
        .collect::<Result<Vec<_>>>()?;
    let mut heap = Heap::new(&runs);
    let mut repeats: HashMap<i64, i64> = HashMap::new();
    let mut out = Staging::create(tables::dim_sessions(), path)?;
    let mut rows: Vec<Session> = Vec::with_capacity(CHUNK);
    // The (session, user) part being merged, and the session it belongs to.
    let mut part: Option<(i64, Part)> = None;
    let mut session = Session::default();
    while let Some(top) = heap.top() {
        let (columns, row) = runs[top]
            .batches
            .current()
            .expect("the heap holds positioned runs");
        let (id, user) = (columns.session.value(row), columns.ints[0].value(row));
        let in_session = part.is_some();
        let same_session = in_session && session.id == id;
        match &mut part {
            Some((u, p)) if same_session && *u == user => {
                p.merge(&columns.part(row));
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
                part = Some((user, columns.part(row)));
            }
        }
        columns.products(row, &mut session.products);
        heap.advance_top(&mut runs)?;
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

/// Merges the spilled days of users' totals, in user order.
fn merge_users(runs: &[PathBuf]) -> Result<Vec<(i64, User)>> {
    let mut runs = runs
        .iter()
        .map(|p| Batches::open(p, user_schema(), UserColumns::of).map(UserRun))
        .collect::<Result<Vec<_>>>()?;
    let mut heap = Heap::new(&runs);
    let mut users: Vec<(i64, User)> = Vec::new();
    while let Some(top) = heap.top() {
        let (columns, row) = runs[top]
            .0
            .current()
            .expect("the heap holds positioned runs");
        let (id, day) = (columns.ints[0].value(row), columns.user(row));
        match users.last_mut() {
            // A user appears at most once a day, so each further run is another active day.
            Some((last, u)) if *last == id => u.merge(&day),
            _ => users.push((id, day)),
        }
        heap.advance_top(&mut runs)?;
    }
    Ok(users)
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
            rows.iter()
                .map(|s| start(s).div_euclid(MICROS_PER_DAY) as i32),
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

fn write_users(users: &[(i64, User)], path: &Path) -> Result<()> {
    let def = tables::dim_users();
    let mut out = Staging::create(def.clone(), path)?;
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

/// A staged dimension: a Parquet file in its table's schema (written even when empty, so
/// that it can be read back).
struct Staging {
    writer: ArrowWriter<File>,
}

impl Staging {
    fn create(def: TableDef, path: &Path) -> Result<Self> {
        let file = File::create(path).map_err(|e| io_error(path, e))?;
        // Read once, by this run: no dictionaries (session ids are all distinct) and no
        // compression.
        let properties = WriterProperties::builder()
            .set_dictionary_enabled(false)
            .build();
        Ok(Staging {
            writer: ArrowWriter::try_new(file, def.arrow_schema(), Some(properties))?,
        })
    }

    fn write(&mut self, batch: RecordBatch) -> Result<()> {
        Ok(self.writer.write(&batch)?)
    }

    fn close(self) -> Result<()> {
        self.writer.close()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::catalog::tests::context;
    use crate::model::{fact_user_events, reference_sql};
    use shoplake_lake::arrow::compute::{cast, concat_batches};
    use shoplake_lake::datafusion::prelude::ParquetReadOptions;

    const DAY: i64 = MICROS_PER_DAY;
    /// 2020-04-01T00:00:00Z.
    const APRIL_1: i64 = 1_585_699_200_000_000;

    /// Fact rows of three days in a scrambled order: sessions that cross one and two
    /// midnights, sessions of two and three users (one of them starting the session on
    /// another day than its first user), users active on several days, products seen
    /// again, every event type.
    fn facts() -> Vec<RecordBatch> {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let kinds = ["view", "cart", "remove_from_cart", "purchase"];
        let mut rows: Vec<(i64, String, i64, i64, &str, i64)> = Vec::new();
        for s in 0..400u64 {
            let session = format!("s-{:03}-{}", next(1000), s);
            let users: Vec<i64> = (0..1 + next(3) * next(2))
                .map(|_| next(60) as i64)
                .collect();
            // Starts spread over the three days, many in the last hour before midnight.
            let mut t = APRIL_1
                + next(3) as i64 * DAY
                + if next(3) == 0 {
                    DAY - 3_600_000_000 + next(3_600) as i64 * 1_000_000
                } else {
                    next(80_000) as i64 * 1_000_000
                };
            // A few sessions last more than a day.
            let step = if s % 97 == 0 {
                8 * 3_600_000_000
            } else {
                90_000_000
            };
            for _ in 0..1 + next(12) {
                let user = users[next(users.len() as u64) as usize];
                let kind = kinds[next(4) as usize];
                rows.push((
                    t,
                    session.clone(),
                    user,
                    next(25) as i64,
                    kind,
                    1 + next(90_000) as i64,
                ));
                t += next(step) as i64;
            }
        }
        // Events at the same instant in one session, told apart by event id.
        rows.push((APRIL_1 + 500, "tie".into(), 7, 1, "view", 100));
        rows.push((APRIL_1 + 500, "tie".into(), 3, 2, "purchase", 250));
        // Only days 1-3 (sessions that run past the third day are cut there).
        rows.retain(|r| r.0 < APRIL_1 + 3 * DAY);
        let mut batches = Vec::new();
        for (n, chunk) in rows.chunks(333).enumerate() {
            let len = chunk.len();
            let clean =
                RecordBatch::try_new(
                    tables::clean_events().arrow_schema(),
                    vec![
                    // Unique ids, not in time order.
                    Arc::new(Int64Array::from_iter_values(
                        (0..len).map(|i| ((n * 1000 + i) as i64 * 7919) % 100_003),
                    )),
                    Arc::new(
                        shoplake_lake::arrow::array::TimestampMicrosecondArray::from_iter_values(
                            chunk.iter().map(|r| r.0),
                        )
                        .with_timezone("UTC"),
                    ),
                    Arc::new(StringArray::from_iter_values(chunk.iter().map(|r| r.4))),
                    Arc::new(Int64Array::from_iter_values(chunk.iter().map(|r| r.3))),
                    Arc::new(Int64Array::from(vec![1; len])),
                    Arc::new(StringArray::from(vec!["a.b"; len])),
                    Arc::new(StringArray::from(vec!["acme"; len])),
                    Arc::new(
                        Decimal128Array::from_iter_values(chunk.iter().map(|r| r.5 as i128))
                            .with_precision_and_scale(10, 2)
                            .unwrap(),
                    ),
                    Arc::new(Int64Array::from_iter_values(chunk.iter().map(|r| r.2))),
                    Arc::new(StringArray::from_iter_values(chunk.iter().map(|r| r.1.as_str()))),
                    Arc::new(Date32Array::from_iter_values(
                        chunk.iter().map(|r| (r.0 / DAY) as i32),
                    )),
                ],
                )
                .unwrap();
            batches.extend(fact_user_events::from_clean(&[clean]).unwrap());
        }
        // Scrambled: the last batches first.
        batches.reverse();
        batches
    }

    fn days(n: i64) -> Vec<NaiveDate> {
        let first = NaiveDate::from_ymd_opt(2020, 4, 1).unwrap();
        (0..n).map(|i| first + chrono::Duration::days(i)).collect()
    }

    /// The staged files, one after another (the order they hold the keys in).
    async fn read(ctx: &SessionContext, paths: &[PathBuf]) -> RecordBatch {
        let mut batches = Vec::new();
        for path in paths {
            let frame = ctx
                .read_parquet(path.to_str().unwrap(), ParquetReadOptions::default())
                .await
                .unwrap();
            batches.extend(frame.collect().await.unwrap());
        }
        let schema = ctx
            .read_parquet(paths[0].to_str().unwrap(), ParquetReadOptions::default())
            .await
            .unwrap()
            .schema()
            .inner()
            .clone();
        concat_batches(&schema, &batches).unwrap()
    }

    /// Column by column, each staged column read as the SQL answer's type.
    fn assert_same(ours: &RecordBatch, theirs: &RecordBatch, table: &str) {
        assert_eq!(ours.num_columns(), theirs.num_columns(), "{table}");
        assert_eq!(ours.num_rows(), theirs.num_rows(), "{table}");
        for (i, field) in theirs.schema().fields().iter().enumerate() {
            let column = cast(ours.column(i), field.data_type()).unwrap();
            assert_eq!(
                column.as_ref(),
                theirs.column(i).as_ref(),
                "{table}.{}",
                field.name()
            );
        }
    }

    #[tokio::test]
    async fn equals_the_sql_definitions() {
        let facts = facts();
        let rows: usize = facts.iter().map(RecordBatch::num_rows).sum();
        let ctx = context(facts).await;
        let dir = tempfile::tempdir().unwrap();
        let staged = build(&ctx, &days(3), dir.path(), 2).await.unwrap();
        assert_eq!(staged.events, rows as u64);
        // Merged in two ranges of ids, each holding sessions.
        assert_eq!(staged.sessions.len(), 2);
        for range in &staged.sessions {
            assert!(read(&ctx, std::slice::from_ref(range)).await.num_rows() > 100);
        }
        let sessions = read(&ctx, &staged.sessions).await;
        let users = read(&ctx, std::slice::from_ref(&staged.users)).await;
        let sql = |q: String| {
            let ctx = ctx.clone();
            async move {
                let batches = ctx.sql(&q).await.unwrap().collect().await.unwrap();
                concat_batches(&batches[0].schema(), &batches).unwrap()
            }
        };
        let expected_sessions = sql(reference_sql::dim_sessions()).await;
        let expected_users = sql(reference_sql::dim_users()).await;
        assert_same(&sessions, &expected_sessions, "dim_sessions");
        assert_same(&users, &expected_users, "dim_users");
        // Every day's rows reached the catalog's fold (tested against its SQL in catalog.rs).
        let whole = crate::model::catalog::build(&ctx).await.unwrap();
        assert_eq!(staged.catalog.products, whole.products);
        assert_eq!(staged.catalog.categories, whole.categories);
        assert_eq!(whole.products.num_rows(), 25);

        // The fixture holds what the merge must get right.
        let crossing = sql(
            "SELECT count(*) FROM (SELECT session_id FROM model.fact_user_events \
             GROUP BY session_id HAVING count(DISTINCT event_date) > 2)"
                .into(),
        )
        .await;
        assert!(crossing.column(0).as_primitive::<Int64Type>().value(0) > 0);
        let shared = sql(
            "SELECT count(*) FROM (SELECT session_id FROM model.fact_user_events \
             GROUP BY session_id HAVING count(DISTINCT user_id) > 1 \
             AND count(DISTINCT event_date) > 1)"
                .into(),
        )
        .await;
        assert!(shared.column(0).as_primitive::<Int64Type>().value(0) > 0);
        let tie = sql(
            "SELECT user_id FROM model.fact_user_events WHERE session_id = 'tie' \
             ORDER BY event_time, event_id LIMIT 1"
                .into(),
        )
        .await;
        let tie_user = tie.column(0).as_primitive::<Int64Type>().value(0);
        let ids = sessions.column(0).as_string_view();
        let at = (0..sessions.num_rows())
            .find(|&i| ids.value(i) == "tie")
            .unwrap();
        assert_eq!(
            sessions.column(1).as_primitive::<Int64Type>().value(at),
            tie_user
        );
    }

    #[tokio::test]
    async fn the_same_whatever_the_parallelism_and_with_empty_days() {
        let ctx = context(facts()).await;
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let one = build(&ctx, &days(3), a.path(), 1).await.unwrap();
        // Two more days without events.
        let three = build(&ctx, &days(5), b.path(), 3).await.unwrap();
        assert_eq!(one.events, three.events);
        assert_eq!(
            read(&ctx, &one.sessions).await,
            read(&ctx, &three.sessions).await
        );
        assert_eq!(
            read(&ctx, std::slice::from_ref(&one.users)).await,
            read(&ctx, std::slice::from_ref(&three.users)).await
        );
    }

    #[test]
    fn text_order_is_the_byte_order() {
        let words = [
            "",
            "a",
            "ab",
            "ab\0",
            "abcdefgh",
            "abcdefgh\0",
            "abcdefghi",
            "abcdefgg~",
            "b",
            "é",
            "e\u{301}",
            "zzzzzzzzzzzz",
            "0f3a-11",
            "0f3a-1",
            "ABCDEFGHIJ",
            "abcdefgH",
        ];
        for a in words {
            for b in words {
                assert_eq!(text_order(a, b), a.cmp(b), "{a:?} vs {b:?}");
            }
        }
    }

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

    #[tokio::test]
    async fn no_days_give_empty_dimensions() {
        let ctx = context(Vec::new()).await;
        let dir = tempfile::tempdir().unwrap();
        let staged = build(&ctx, &[], dir.path(), 2).await.unwrap();
        assert_eq!(staged.events, 0);
        let sessions = read(&ctx, &staged.sessions).await;
        assert_eq!(sessions.num_rows(), 0);
        assert_eq!(sessions.num_columns(), tables::dim_sessions().columns.len());
        assert_eq!(
            read(&ctx, std::slice::from_ref(&staged.users))
                .await
                .num_rows(),
            0
        );
    }
}
