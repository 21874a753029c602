//! Exact key checks without SQL: whether one column's values are unique, and whether they
//! all exist in another table's column.
//!
//! In SQL both are groupings, and a referential check groups the two key sets together
//! (DataFusion's hash-join build side cannot spill, an aggregation can): on a month of events
//! that is a grouping of 80 M text keys, most of a run's check time. Here the keys go into
//! one hash table instead ([`KeyTable`]), whose memory is reserved from the session's pool,
//! and the other column is looked up in it, a partition of the scan per core. When the keys
//! do not fit, they are split by hash into passes, each a scan of the columns that keeps only
//! its share: memory stays within the budget, the answer stays exact, and nothing is written
//! to disk.
//!
//! Uniqueness of integers and dates is answered by sorting instead, when the values fit the
//! budget: a radix sort of a day's 2.3 M event ids and one pass over the sorted values take
//! a fraction of what filling the hash table does, and the ids are hashes, so nothing is
//! gained by hashing them again.
//!
//! Keys are compared as SQL compares them after coercion: integers (and dates) by value,
//! text by its bytes. Other types, and a column compared with one of another kind, return
//! `None`, and the caller answers in SQL.

use std::convert::Infallible;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use hashbrown::{DefaultHashBuilder, HashMap};

use super::evaluate::{ident, scalar_i64};
use super::key_table::{CHUNK, KeyColumn, KeyTable, is_integer_key};

/// How many offending keys a finding keeps as its sample.
const SAMPLE: usize = 5;

/// The most passes tried before giving the check back to SQL: each pass scans the columns
/// again, and past this many a spilling SQL grouping is the better plan.
const MAX_PASSES: u32 = 64;

/// What a key check found.
#[derive(Debug)]
pub struct KeyFindings {
    /// Duplicated keys (uniqueness) or rows whose key is missing from the target (inclusion).
    pub offending: u64,
    /// Up to five offending keys with their copies or rows, as the SQL form of the check
    /// returns them.
    pub sample: RecordBatch,
    /// How many passes the keys were split into to fit the memory budget.
    pub passes: u32,
    /// Whether the keys were sorted (integers and dates that fit the budget) rather than
    /// put in a hash table.
    pub sorted: bool,
}

/// How keys of a column are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    /// By integer value (signed up to 64 bits, unsigned up to 32).
    Integer,
    /// Dates by their day number; only with dates (SQL would make an integer a date).
    Date,
    /// By the text's bytes.
    Text,
}

impl KeyKind {
    fn of(data_type: &DataType) -> Option<Self> {
        match data_type {
            t if is_integer_key(t) => Some(Self::Integer),
            DataType::Date32 => Some(Self::Date),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Some(Self::Text),
            _ => None,
        }
    }
}

/// The pass a key belongs to, from the bottom half of its hash (the table places keys by
/// the top half, so a pass's keys still spread over the whole table); 24 bits are plenty
/// for [`MAX_PASSES`].
fn pass_of(hash: u64, passes: u32) -> u32 {
    (hash as u32 & 0x00ff_ffff) % passes
}

/// The non-null rows of `keys` that belong to `pass`, as (row, hash), handed to `each` a
/// chunk at a time through `buffer`. Returns the null rows.
fn chunks<E>(
    hasher: &DefaultHashBuilder,
    keys: &KeyColumn,
    (pass, passes): (u32, u32),
    buffer: &mut Vec<(usize, u64)>,
    mut each: impl FnMut(&[(usize, u64)]) -> Result<(), E>,
) -> Result<u64, E> {
    let mut nulls = 0;
    buffer.clear();
    for row in 0..keys.len() {
        if keys.is_null(row) {
            nulls += 1;
            continue;
        }
        let hash = hasher.hash_one(keys.key(row));
        if passes == 1 || pass_of(hash, passes) == pass {
            buffer.push((row, hash));
            if buffer.len() == CHUNK {
                each(buffer)?;
                buffer.clear();
            }
        }
    }
    if !buffer.is_empty() {
        each(buffer)?;
    }
    Ok(nulls)
}

/// The keys of a pass outgrew the memory budget (or a table's 2^32 keys): split the keys
/// into more passes.
struct TooBig;

/// A scan stopped by [`TooBig`], after this many rows of the table.
#[derive(Debug)]
struct Stopped {
    rows: u64,
}

fn key_query(table: &str, column: &str, non_null: bool) -> String {
    let c = ident(column);
    if non_null {
        format!("SELECT {c} FROM {table} WHERE {c} IS NOT NULL")
    } else {
        format!("SELECT {c} FROM {table}")
    }
}

/// The type of `column` in `table`, as a query over it sees it.
async fn column_type(ctx: &SessionContext, table: &str, column: &str) -> Result<DataType> {
    let df = ctx.sql(&key_query(table, column, false)).await?;
    Ok(df.schema().field(0).data_type().clone())
}

/// Calls `each` with every batch of `column` (its non-null values only, when `non_null`),
/// in one stream (the scan's partitions are read side by side behind it).
async fn scan(
    ctx: &SessionContext,
    table: &str,
    column: &str,
    non_null: bool,
    mut each: impl FnMut(&KeyColumn) -> Result<(), TooBig>,
) -> Result<Result<(), Stopped>> {
    let mut stream = ctx
        .sql(&key_query(table, column, non_null))
        .await?
        .execute_stream()
        .await?;
    let mut rows = 0;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        rows += batch.num_rows() as u64;
        if each(&KeyColumn::of(batch.column(0))?).is_err() {
            return Ok(Err(Stopped { rows }));
        }
    }
    Ok(Ok(()))
}

/// Adds the rows of `pass` in every batch of `column` to `keys`, within `reservation`.
/// Returns the column's null rows.
async fn fill(
    ctx: &SessionContext,
    (table, column): (&str, &str),
    hasher: &DefaultHashBuilder,
    pass: (u32, u32),
    keys: &mut KeyTable,
    reservation: &MemoryReservation,
) -> Result<Result<u64, Stopped>> {
    let (mut buffer, mut nulls) = (Vec::with_capacity(CHUNK), 0);
    let scanned = scan(ctx, table, column, false, |batch| {
        nulls += chunks(hasher, batch, pass, &mut buffer, |rows| {
            keys.add(batch, rows, reservation).map_err(|_| TooBig)
        })?;
        Ok(())
    })
    .await?;
    Ok(scanned.map(|()| nulls))
}

/// Runs `attempt` with one pass, then, if a pass's keys outgrew the reservation, with as many
/// passes as the share of `table` read before that suggests (a quarter more, to be safe; at
/// least twice as many, at most [`MAX_PASSES`]). `None` when [`MAX_PASSES`] did not do.
async fn in_passes<F, Fut>(
    ctx: &SessionContext,
    table: &str,
    mut attempt: F,
) -> Result<Option<(Found, u32)>>
where
    F: FnMut(u32, MemoryReservation) -> Fut,
    Fut: std::future::Future<Output = Result<Result<Found, Stopped>>>,
{
    let pool = &ctx.runtime_env().memory_pool;
    let mut passes = 1u32;
    let mut table_rows = None;
    loop {
        let reservation = MemoryConsumer::new(format!("key check on {table}")).register(pool);
        let stopped = match attempt(passes, reservation).await? {
            Ok(found) => return Ok(Some((found, passes))),
            Err(stopped) => stopped,
        };
        let rows = match table_rows {
            Some(rows) => rows,
            None => {
                let rows = scalar_i64(ctx, &format!("SELECT COUNT(*) FROM {table}")).await?;
                *table_rows.insert(rows.max(0) as u64)
            }
        };
        if passes == MAX_PASSES {
            return Ok(None);
        }
        // The pass that stopped held about 1/passes of the keys read so far.
        let needed = passes as f64 * rows as f64 / stopped.rows.max(1) as f64 * 1.25;
        passes = (needed.ceil() as u32).max(passes * 2).min(MAX_PASSES);
    }
}

/// Offending keys found so far: how many, and a sample with their copies or rows.
#[derive(Default)]
struct Found {
    offending: u64,
    sample: Vec<(Option<Vec<u8>>, u64)>,
}

impl Found {
    fn keep(&mut self, key: Option<&[u8]>, rows: u64) {
        if self.sample.len() < SAMPLE {
            self.sample.push((key.map(<[u8]>::to_vec), rows));
        }
    }

    /// Adds a batch's rows whose keys are missing. A key enters the sample at the first
    /// batch that holds it while the sample has room; since the sample only grows, every
    /// later batch with that key adds to it, and no earlier one held it: its rows are exact,
    /// whichever partition's batches come first.
    fn add_missing(&mut self, keys: &KeyColumn, rows: &[usize]) {
        self.offending += rows.len() as u64;
        let mut per_key: HashMap<&[u8], u64> = HashMap::new();
        for &row in rows {
            *per_key.entry(keys.key(row)).or_default() += 1;
        }
        for (key, n) in per_key {
            match self
                .sample
                .iter_mut()
                .find(|(k, _)| k.as_deref() == Some(key))
            {
                Some((_, rows)) => *rows += n,
                None => self.keep(Some(key), n),
            }
        }
    }

    /// The sample as the SQL form returns it: the key column, then `count_name`.
    fn into_findings(
        self,
        column: &str,
        data_type: &DataType,
        kind: KeyKind,
        count_name: &str,
        passes: u32,
    ) -> Result<KeyFindings> {
        let (keys, rows): (Vec<_>, Vec<_>) = self.sample.into_iter().unzip();
        let keys: ArrayRef = match kind {
            KeyKind::Integer | KeyKind::Date => {
                let values: Int64Array = keys
                    .iter()
                    .map(|k| {
                        k.as_ref()
                            .map(|b| i64::from_ne_bytes(b[..8].try_into().expect("8 bytes")))
                    })
                    .collect();
                match data_type {
                    DataType::Date32 => cast(&cast(&values, &DataType::Int32)?, data_type)?,
                    _ => cast(&values, data_type)?,
                }
            }
            KeyKind::Text => {
                let values: StringArray = keys
                    .iter()
                    .map(|k| k.as_ref().map(|b| String::from_utf8_lossy(b).into_owned()))
                    .collect();
                cast(&values, data_type)?
            }
        };
        let schema = Schema::new(vec![
            Field::new(column, data_type.clone(), true),
            Field::new(count_name, DataType::Int64, false),
        ]);
        let rows = Int64Array::from_iter_values(rows.into_iter().map(|r| r as i64));
        Ok(KeyFindings {
            offending: self.offending,
            sample: RecordBatch::try_new(Arc::new(schema), vec![keys, Arc::new(rows)])?,
            passes,
            sorted: false,
        })
    }
}

/// The keys of `column` in `table` that more than one row holds (several nulls count as one
/// duplicated key, as SQL's grouping makes them), with their copies.
pub async fn duplicates(
    ctx: &SessionContext,
    table: &str,
    column: &str,
) -> Result<Option<KeyFindings>> {
    let data_type = column_type(ctx, table, column).await?;
    let Some(kind) = KeyKind::of(&data_type) else {
        return Ok(None);
    };
    if kind != KeyKind::Text
        && let Some(found) = sorted_duplicates(ctx, table, column).await?
    {
        let findings = found.into_findings(column, &data_type, kind, "copies", 1)?;
        return Ok(Some(KeyFindings {
            sorted: true,
            ..findings
        }));
    }
    let hasher = DefaultHashBuilder::default();
    let found = in_passes(ctx, table, |passes, reservation| {
        let hasher = hasher.clone();
        async move {
            let mut found = Found::default();
            let mut nulls = 0;
            for pass in 0..passes {
                let mut keys = KeyTable::new(true);
                let filled = fill(
                    ctx,
                    (table, column),
                    &hasher,
                    (pass, passes),
                    &mut keys,
                    &reservation,
                )
                .await?;
                match filled {
                    Ok(n) => nulls = n,
                    Err(stopped) => return Ok(Err(stopped)),
                }
                for n in 0..keys.len() {
                    if keys.count(n) > 1 {
                        found.offending += 1;
                        found.keep(Some(keys.key(n)), keys.count(n));
                    }
                }
            }
            if nulls > 1 {
                found.offending += 1;
                found.keep(None, nulls);
            }
            Ok(Ok(found))
        }
    })
    .await?;
    found
        .map(|(found, passes)| found.into_findings(column, &data_type, kind, "copies", passes))
        .transpose()
}

/// The duplicated values of an integer or date `column`, by sorting them: `None` when the
/// values and the sort's scratch (16 bytes a row) do not fit the session's memory pool, and
/// the hash table's passes answer instead.
async fn sorted_duplicates(
    ctx: &SessionContext,
    table: &str,
    column: &str,
) -> Result<Option<Found>> {
    let pool = &ctx.runtime_env().memory_pool;
    let reservation = MemoryConsumer::new(format!("key check on {table}")).register(pool);
    // The row count (from statistics, mostly) sizes the values once, and a budget too small
    // for them is known before anything is read.
    let rows = scalar_i64(ctx, &format!("SELECT COUNT(*) FROM {table}")).await?;
    let rows = usize::try_from(rows).unwrap_or(0);
    if reservation.try_grow(rows.saturating_mul(16)).is_err() {
        return Ok(None);
    }
    let mut stream = ctx
        .sql(&key_query(table, column, false))
        .await?
        .execute_stream()
        .await?;
    let (mut values, mut nulls) = (Vec::<u64>::with_capacity(rows), 0u64);
    while let Some(batch) = stream.next().await {
        let KeyColumn::Integer(ints) = KeyColumn::of(batch?.column(0))? else {
            return Err(DataFusionError::Internal(format!(
                "{table}.{column} is not an integer key"
            )));
        };
        let needed = values.len() + ints.len();
        if needed > values.capacity() {
            // More rows than counted. Reserved before it is allocated: the vector at its new
            // capacity, and the scratch the sort will need beside it.
            let capacity = needed.max(values.capacity() * 2);
            if reservation.try_resize((capacity + needed) * 8).is_err() {
                return Ok(None);
            }
            values.reserve_exact(capacity - values.len());
        }
        nulls += ints.null_count() as u64;
        if ints.null_count() == 0 {
            values.extend(ints.values().iter().map(|&v| sortable(v)));
        } else {
            values.extend(ints.iter().flatten().map(sortable));
        }
    }
    if reservation
        .try_resize((values.capacity() + values.len()) * 8)
        .is_err()
    {
        return Ok(None);
    }
    radix_sort(&mut values);
    let mut found = Found::default();
    for run in values.chunk_by(|a, b| a == b) {
        if run.len() > 1 {
            found.offending += 1;
            found.keep(Some(&unsortable(run[0]).to_ne_bytes()), run.len() as u64);
        }
    }
    if nulls > 1 {
        found.offending += 1;
        found.keep(None, nulls);
    }
    Ok(Some(found))
}

/// An i64 as a u64 of the same order (the sign bit flipped).
fn sortable(v: i64) -> u64 {
    (v as u64) ^ (1 << 63)
}

/// The inverse of [`sortable`].
fn unsortable(v: u64) -> i64 {
    (v ^ (1 << 63)) as i64
}

/// Sorts `values` least significant digit first, 11 bits a pass (six passes cover 64 bits,
/// each scattering into 2,048 buckets, few enough to stay in cache); a pass whose digit is
/// the same in every value is skipped.
fn radix_sort(values: &mut Vec<u64>) {
    const BITS: usize = 11;
    const BUCKETS: usize = 1 << BITS;
    const PASSES: usize = 64usize.div_ceil(BITS);
    let digit = |v: u64, pass: usize| ((v >> (pass * BITS)) as usize) & (BUCKETS - 1);
    let n = values.len();
    if n < 2 {
        return;
    }
    // Every pass's histogram in one read of the values.
    let mut counts = vec![[0usize; BUCKETS]; PASSES];
    for &v in values.iter() {
        for (pass, count) in counts.iter_mut().enumerate() {
            count[digit(v, pass)] += 1;
        }
    }
    let mut scratch = vec![0u64; n];
    for (pass, count) in counts.iter().enumerate() {
        if count.contains(&n) {
            continue;
        }
        let mut offsets = [0usize; BUCKETS];
        let mut sum = 0;
        for (offset, c) in offsets.iter_mut().zip(count) {
            *offset = sum;
            sum += c;
        }
        for &v in values.iter() {
            let d = digit(v, pass);
            scratch[offsets[d]] = v;
            offsets[d] += 1;
        }
        std::mem::swap(values, &mut scratch);
    }
}

/// Looks up every non-null `column` of `table` of `pass` in `keys`, one task per partition
/// of the scan, adding the missing ones to `found`.
async fn look_up(
    ctx: &SessionContext,
    (table, column): (&str, &str),
    hasher: &DefaultHashBuilder,
    pass: (u32, u32),
    keys: Arc<KeyTable>,
    found: Found,
) -> Result<Found> {
    let streams = ctx
        .sql(&key_query(table, column, true))
        .await?
        .execute_stream_partitioned()
        .await?;
    let found = Arc::new(Mutex::new(found));
    // A task that fails ends the others: the set aborts them when it is dropped.
    let mut tasks = tokio::task::JoinSet::new();
    for mut stream in streams {
        let (keys, found, hasher) = (keys.clone(), found.clone(), hasher.clone());
        tasks.spawn(async move {
            let (mut buffer, mut numbers) = (Vec::with_capacity(CHUNK), Vec::with_capacity(CHUNK));
            let mut missing = Vec::new();
            while let Some(batch) = stream.next().await {
                let batch = KeyColumn::of(batch?.column(0))?;
                missing.clear();
                let Ok(_) = chunks::<Infallible>(&hasher, &batch, pass, &mut buffer, |rows| {
                    keys.lookup(&batch, rows, &mut numbers, |row| missing.push(row));
                    Ok(())
                });
                if !missing.is_empty() {
                    let mut found = found.lock().expect("no task panics holding it");
                    found.add_missing(&batch, &missing);
                }
            }
            Ok::<_, DataFusionError>(())
        });
    }
    while let Some(task) = tasks.join_next().await {
        task.map_err(|e| DataFusionError::External(Box::new(e)))??;
    }
    let found = Arc::into_inner(found).expect("every task has ended");
    Ok(found.into_inner().expect("no task panicked holding it"))
}

/// The rows of `table` whose non-null `column` is not among `target`'s non-null
/// `target_column` values, by key, with their rows.
pub async fn missing(
    ctx: &SessionContext,
    table: &str,
    column: &str,
    target: &str,
    target_column: &str,
) -> Result<Option<KeyFindings>> {
    let data_type = column_type(ctx, table, column).await?;
    let kind = KeyKind::of(&data_type);
    if kind.is_none() || kind != KeyKind::of(&column_type(ctx, target, target_column).await?) {
        return Ok(None);
    }
    let kind = kind.expect("checked above");
    let hasher = DefaultHashBuilder::default();
    let found = in_passes(ctx, target, |passes, reservation| {
        let hasher = hasher.clone();
        async move {
            let mut found = Found::default();
            for pass in 0..passes {
                let mut keys = KeyTable::new(false);
                let filled = fill(
                    ctx,
                    (target, target_column),
                    &hasher,
                    (pass, passes),
                    &mut keys,
                    &reservation,
                )
                .await?;
                if let Err(stopped) = filled {
                    return Ok(Err(stopped));
                }
                // Every row of a key falls in the same pass, so a sampled key's rows are
                // all counted in this one.
                let keys = Arc::new(keys);
                found = look_up(ctx, (table, column), &hasher, (pass, passes), keys, found).await?;
            }
            Ok(Ok(found))
        }
    })
    .await?;
    found
        .map(|(found, passes)| found.into_findings(column, &data_type, kind, "rows", passes))
        .transpose()
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashMap};

    use datafusion::arrow::array::{
        Array, AsArray, Date32Array, Float64Array, Int32Array, StringViewArray,
    };
    use datafusion::arrow::datatypes::Int64Type;
    use datafusion::datasource::MemTable;
    use datafusion::execution::memory_pool::FairSpillPool;
    use datafusion::execution::runtime_env::RuntimeEnvBuilder;
    use datafusion::prelude::SessionConfig;

    use super::super::evaluate::{duplicates_by_sql, missing_by_sql};
    use super::*;

    fn context(memory: usize) -> SessionContext {
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(FairSpillPool::new(memory)))
            .build_arc()
            .unwrap();
        SessionContext::new_with_config_rt(SessionConfig::new().with_target_partitions(2), runtime)
    }

    fn register(ctx: &SessionContext, name: &str, batches: Vec<RecordBatch>) {
        let table = MemTable::try_new(batches[0].schema(), vec![batches]).unwrap();
        ctx.register_table(name, Arc::new(table)).unwrap();
    }

    fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        RecordBatch::try_from_iter(columns).unwrap()
    }

    /// `t` has duplicated keys (and nulls) in every column; `r` holds some of its keys. No
    /// column has more than five offending keys, so a sample holds them all.
    fn fixture(ctx: &SessionContext) {
        let codes = [
            Some("a"),
            Some("b"),
            Some("b"),
            None,
            Some("c"),
            Some("d"),
            Some("e"),
            Some("é"),
            Some("a"),
            Some("x"),
        ];
        let days = [0, 1, 1, 2, 3, 4, 5, 5, 5, 6].map(|d| Some(18_383 + d));
        register(
            ctx,
            "t",
            vec![batch(vec![
                (
                    "id",
                    Arc::new(Int64Array::from(vec![
                        Some(1),
                        Some(2),
                        Some(2),
                        Some(3),
                        None,
                        None,
                        Some(4),
                        Some(4),
                        Some(4),
                        Some(5),
                    ])),
                ),
                (
                    "small",
                    Arc::new(Int32Array::from(vec![1, 2, 3, 1, 2, 3, 1, 2, 9, 9])),
                ),
                ("code", Arc::new(StringArray::from(codes.to_vec()))),
                ("view", Arc::new(StringViewArray::from(codes.to_vec()))),
                ("day", Arc::new(Date32Array::from(days.to_vec()))),
                ("price", Arc::new(Float64Array::from(vec![1.0; 10]))),
            ])],
        );
        register(
            ctx,
            "r",
            vec![batch(vec![
                (
                    "id",
                    Arc::new(Int64Array::from(vec![Some(1), Some(2), Some(3), None])),
                ),
                (
                    "code",
                    Arc::new(StringViewArray::from(vec![
                        Some("a"),
                        Some("b"),
                        Some("c"),
                        None,
                    ])),
                ),
                (
                    "day",
                    Arc::new(Date32Array::from(vec![18_383, 18_384, 18_385, 18_386])),
                ),
            ])],
        );
    }

    fn answer(found: KeyFindings) -> (u64, BTreeSet<String>) {
        let lines = super::super::evaluate::json_lines(&[found.sample]).unwrap();
        (found.offending, lines.into_iter().collect())
    }

    fn set(lines: &[&str]) -> BTreeSet<String> {
        lines.iter().map(|l| l.to_string()).collect()
    }

    #[tokio::test]
    async fn duplicates_are_those_of_the_sql_grouping() {
        let ctx = context(64 << 20);
        fixture(&ctx);
        // By hand, then against the SQL form, for each kind of column.
        let id = answer(duplicates(&ctx, "t", "id").await.unwrap().unwrap());
        assert_eq!(
            id,
            (
                3,
                set(&[
                    r#"{"id":2,"copies":2}"#,
                    r#"{"id":4,"copies":3}"#,
                    r#"{"copies":2}"#
                ])
            )
        );
        let code = answer(duplicates(&ctx, "t", "code").await.unwrap().unwrap());
        assert_eq!(
            code,
            (
                2,
                set(&[r#"{"code":"a","copies":2}"#, r#"{"code":"b","copies":2}"#])
            )
        );
        let day = answer(duplicates(&ctx, "t", "day").await.unwrap().unwrap());
        assert_eq!(
            day,
            (
                2,
                set(&[
                    r#"{"day":"2020-05-02","copies":2}"#,
                    r#"{"day":"2020-05-06","copies":3}"#
                ])
            )
        );
        for column in ["id", "small", "code", "view", "day"] {
            let native = answer(duplicates(&ctx, "t", column).await.unwrap().unwrap());
            let (n, lines) = duplicates_by_sql(&ctx, "t", &[column.to_string()])
                .await
                .unwrap();
            assert_eq!(native, (n, lines.into_iter().collect()), "{column}");
        }
        // Not a key type: the SQL form answers.
        assert!(duplicates(&ctx, "t", "price").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn missing_keys_are_those_of_the_sql_form() {
        let ctx = context(64 << 20);
        fixture(&ctx);
        let id = answer(missing(&ctx, "t", "id", "r", "id").await.unwrap().unwrap());
        assert_eq!(
            id,
            (4, set(&[r#"{"id":4,"rows":3}"#, r#"{"id":5,"rows":1}"#]))
        );
        let code = answer(
            missing(&ctx, "t", "code", "r", "code")
                .await
                .unwrap()
                .unwrap(),
        );
        assert_eq!(
            code,
            (
                4,
                set(&[
                    r#"{"code":"d","rows":1}"#,
                    r#"{"code":"e","rows":1}"#,
                    r#"{"code":"é","rows":1}"#,
                    r#"{"code":"x","rows":1}"#
                ])
            )
        );
        for (column, target) in [
            ("id", "id"),
            ("small", "id"),
            ("code", "code"),
            ("view", "code"),
            ("day", "day"),
        ] {
            let native = answer(
                missing(&ctx, "t", column, "r", target)
                    .await
                    .unwrap()
                    .unwrap(),
            );
            let (n, lines) = missing_by_sql(&ctx, "t", column, "r", target)
                .await
                .unwrap();
            assert_eq!(native, (n, lines.into_iter().collect()), "{column}");
        }
        // Text against integers, or integers against dates, compare after a coercion: SQL
        // answers.
        for (column, target) in [("code", "id"), ("id", "day")] {
            let found = missing(&ctx, "t", column, "r", target).await.unwrap();
            assert!(found.is_none(), "{column} against {target}");
        }
    }

    /// 20,000 rows in two partitions of 10 batches (looked up side by side): keys
    /// 0..15,000, the first 5,000 twice; the target holds every key not divisible by 7.
    fn many_keys(ctx: &SessionContext) {
        let key = |i: usize| format!("session-{:06}", i % 15_000);
        let partition = |p: usize| -> Vec<RecordBatch> {
            (p * 10..(p + 1) * 10)
                .map(|b| {
                    let keys: StringArray =
                        (b * 1000..(b + 1) * 1000).map(|i| Some(key(i))).collect();
                    batch(vec![("k", Arc::new(keys) as ArrayRef)])
                })
                .collect()
        };
        let (first, second) = (partition(0), partition(1));
        let table = MemTable::try_new(first[0].schema(), vec![first, second]).unwrap();
        ctx.register_table("many", Arc::new(table)).unwrap();
        let target: StringArray = (0..15_000)
            .filter(|i| i % 7 != 0)
            .map(|i| Some(key(i)))
            .collect();
        register(ctx, "target", vec![batch(vec![("k", Arc::new(target))])]);
    }

    fn rows_per_key(ctx_rows: &[usize]) -> HashMap<String, u64> {
        let mut rows = HashMap::new();
        for &i in ctx_rows {
            *rows
                .entry(format!("session-{:06}", i % 15_000))
                .or_default() += 1;
        }
        rows
    }

    fn sampled(found: &KeyFindings) -> Vec<(String, u64)> {
        let keys = found.sample.column(0).as_string::<i32>();
        let counts = found.sample.column(1).as_primitive::<Int64Type>();
        (0..keys.len())
            .map(|i| (keys.value(i).to_string(), counts.value(i) as u64))
            .collect()
    }

    // Two worker threads, so that the two partitions are looked up side by side.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn keys_that_do_not_fit_are_split_into_passes() {
        let (roomy, tight) = (context(64 << 20), context(96 << 10));
        many_keys(&roomy);
        many_keys(&tight);
        let all: Vec<usize> = (0..20_000).collect();
        let rows = rows_per_key(&all);

        let one = duplicates(&roomy, "many", "k").await.unwrap().unwrap();
        let split = duplicates(&tight, "many", "k").await.unwrap().unwrap();
        assert_eq!(one.passes, 1);
        assert!(split.passes > 1, "{} passes", split.passes);
        for found in [&one, &split] {
            assert_eq!(found.offending, 5_000);
            let sample = sampled(found);
            assert_eq!(sample.len(), SAMPLE);
            for (key, copies) in sample {
                assert_eq!((copies, rows[&key]), (2, 2), "{key}");
            }
        }

        let missing_rows: u64 = rows
            .iter()
            .filter(|(k, _)| k[8..].parse::<usize>().unwrap() % 7 == 0)
            .map(|(_, n)| n)
            .sum();
        let one = missing(&roomy, "many", "k", "target", "k")
            .await
            .unwrap()
            .unwrap();
        let split = missing(&tight, "many", "k", "target", "k")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(one.passes, 1);
        assert!(split.passes > 1, "{} passes", split.passes);
        for found in [&one, &split] {
            assert_eq!(found.offending, missing_rows);
            let sample = sampled(found);
            assert_eq!(sample.len(), SAMPLE);
            for (key, n) in sample {
                assert_eq!(key[8..].parse::<usize>().unwrap() % 7, 0, "{key}");
                assert_eq!(n, rows[&key], "{key}");
            }
        }
    }

    #[tokio::test]
    async fn keys_that_fit_in_no_number_of_passes_are_left_to_sql() {
        let ctx = context(256);
        many_keys(&ctx);
        assert!(duplicates(&ctx, "many", "k").await.unwrap().is_none());
        assert!(
            missing(&ctx, "many", "k", "target", "k")
                .await
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn the_radix_sort_orders_like_the_standard_sort() {
        // A fixed pseudo-random sequence (xorshift), with the extremes and repeats mixed in.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut values: Vec<u64> = (0..50_000)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                match i % 97 {
                    0 => sortable(i64::MIN),
                    1 => sortable(i64::MAX),
                    2 => sortable(-1),
                    3 => sortable(0),
                    _ => x,
                }
            })
            .collect();
        let mut expected = values.clone();
        expected.sort_unstable();
        radix_sort(&mut values);
        assert_eq!(values, expected);
        // Values that share most digits (those passes are skipped), and the trivial sizes.
        let mut close: Vec<u64> = (0..5_000u64).rev().map(|v| (v % 300) << 11).collect();
        let mut expected = close.clone();
        expected.sort_unstable();
        radix_sort(&mut close);
        assert_eq!(close, expected);
        for mut few in [vec![], vec![7u64]] {
            let expected = few.clone();
            radix_sort(&mut few);
            assert_eq!(few, expected);
        }
        let signed = [i64::MIN, -5, -1, 0, 1, i64::MAX];
        let mut keys: Vec<u64> = signed.iter().rev().map(|&v| sortable(v)).collect();
        radix_sort(&mut keys);
        let back: Vec<i64> = keys.into_iter().map(unsortable).collect();
        assert_eq!(back, signed);
    }

    /// 20,000 integer keys in two partitions: -7,000..8,000, the first 5,000 twice, and
    /// three nulls.
    fn many_integers(ctx: &SessionContext) {
        let partition = |p: usize| -> Vec<RecordBatch> {
            (p * 10..(p + 1) * 10)
                .map(|b| {
                    let keys: Int64Array = (b * 1000..(b + 1) * 1000)
                        .map(|i| (i % 7_919 != 1).then_some((i % 15_000) as i64 - 7_000))
                        .collect();
                    batch(vec![("k", Arc::new(keys) as ArrayRef)])
                })
                .collect()
        };
        let (first, second) = (partition(0), partition(1));
        let table = MemTable::try_new(first[0].schema(), vec![first, second]).unwrap();
        ctx.register_table("integers", Arc::new(table)).unwrap();
    }

    #[tokio::test]
    async fn integer_keys_are_sorted_when_they_fit_and_hashed_when_not() {
        let (roomy, tight) = (context(64 << 20), context(96 << 10));
        many_integers(&roomy);
        many_integers(&tight);
        // By hand: keys of rows 0..5,000 appear twice unless one of the two is a null row.
        let nulls: Vec<usize> = (0..20_000).filter(|i| i % 7_919 == 1).collect();
        assert_eq!(nulls.len(), 3);
        let mut copies: HashMap<i64, u64> = HashMap::new();
        for i in (0..20_000).filter(|i| !nulls.contains(i)) {
            *copies.entry((i % 15_000) as i64 - 7_000).or_default() += 1;
        }
        let duplicated = copies.values().filter(|&&n| n > 1).count() as u64;
        // Rows 1 and 15,839 are null: keys 1 and 839 keep one row (row 7,920's key had one).
        assert_eq!(duplicated, 5_000 - 2);
        let sorted = duplicates(&roomy, "integers", "k").await.unwrap().unwrap();
        let hashed = duplicates(&tight, "integers", "k").await.unwrap().unwrap();
        assert!(sorted.sorted && sorted.passes == 1);
        assert!(
            !hashed.sorted && hashed.passes > 1,
            "{} passes",
            hashed.passes
        );
        for found in [&sorted, &hashed] {
            // The keys, and the three nulls counted as one duplicated key, as SQL groups them.
            assert_eq!(found.offending, duplicated + 1);
            let keys = found.sample.column(0).as_primitive::<Int64Type>();
            let counts = found.sample.column(1).as_primitive::<Int64Type>();
            assert_eq!(keys.len(), SAMPLE);
            for i in 0..keys.len() {
                let expected = if keys.is_null(i) {
                    3
                } else {
                    copies[&keys.value(i)]
                };
                assert_eq!(counts.value(i) as u64, expected);
            }
        }
        // The sorted sample is the smallest duplicated keys.
        let keys = sorted.sample.column(0).as_primitive::<Int64Type>();
        assert_eq!(keys.value(0), -7_000);
        let (n, _) = duplicates_by_sql(&roomy, "integers", &["k".to_string()])
            .await
            .unwrap();
        assert_eq!(n, sorted.offending);
    }
}
