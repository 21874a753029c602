//! The aggregate dimensions, `model.dim_products`, `dim_categories`, `dim_sessions` and
//! `dim_users`, from one pass over the fact table, a day partition at a time, one day per
//! core at once.
//!
//! As SQL (kept as the tests' independent answer in `model/reference_sql.rs`) they were a
//! large share of a month's run (see bench/results/2026-11-28-66600000-at-e3ae728.md): each
//! of 66 M events was hashed by its 36-byte session id into a table of 14 M groups that
//! spilled, and the ordered `first_value` / `last_value` kept a vector of `ScalarValue`s per
//! group. Here each day is scanned once and folded twice:
//!
//! - into products and categories ([`super::products`]): one entry per product and category,
//!   on a thread of its own that the day folds pass their batches to;
//! - into (session, user) parts and per-user totals (a day holds about half a million
//!   sessions, small enough to stay in cache), each sorted by key and spilled to an Arrow IPC
//!   file in the scratch directory. The days' files are then merged in key order (sessions
//!   in two ranges of ids, and users, on three threads): a session that crosses midnight
//!   meets its other days there and comes out whole, and a user's days add up to the user
//!   (a session the user had on two days counted once). Both come out in key order, ready
//!   to write; no table ever holds every session.
//!
//! The files: `day_fold` folds and spills a day, `spilled` is the spilled files' columns,
//! `sessions` and `users` merge them (with itertools' k-way merge, ties broken by day),
//! `staging` writes the staged dimensions.
//!
//! Memory: a day's fold per core (about 150 MB each for a month of 66 M events), products and
//! categories (about 250 bytes a product), one batch per day file while merging, and the
//! merged users (about 100 bytes each) until they are written.

mod day_fold;
mod ids;
mod sessions;
mod spilled;
mod staging;
mod users;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::NaiveDate;
use shoplake_lake::arrow::array::RecordBatch;
use shoplake_lake::datafusion::common::HashMap;
use shoplake_lake::datafusion::prelude::SessionContext;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::products::{ProductDimensions, ProductFold};
use crate::error::{PipelineError, Result};
use day_fold::{DayFold, DayPart, fold_day};
use ids::text_order;
use sessions::merge_sessions;
use users::{merge_users, write_users};

/// The four dimensions, sessions and users staged as Parquet files in the scratch directory
/// (in their tables' schemas, ordered by key), and the events they were built from.
#[derive(Debug)]
pub struct Staged {
    /// `model.dim_products` and `model.dim_categories`, in memory (one row per product or
    /// category).
    pub products: ProductDimensions,
    /// `model.dim_sessions`, in files to be read one after another (ranges of ids).
    pub sessions: Vec<PathBuf>,
    /// `model.dim_users`.
    pub users: PathBuf,
    /// Fact rows read; equal to the sum of `events` over any of the four dimensions.
    pub events: u64,
    /// Wall seconds folding the days (the scan included), before the merges.
    pub fold_seconds: f64,
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
    std::fs::create_dir_all(&dir).map_err(|e| scratch_error(&dir, e))?;
    // A JoinSet aborts the folds still running if one fails and this returns early.
    let mut folds = JoinSet::new();
    let mut parts = Vec::new();
    // Products and categories are folded once, on their own thread, from the batches the days
    // pass on.
    let (to_products, mut batches) = mpsc::channel::<RecordBatch>(16);
    let products = tokio::task::spawn_blocking(move || {
        let mut fold = ProductFold::default();
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
            let (ctx, dir, to_products) = (ctx.clone(), dir.clone(), to_products.clone());
            let fold = spare.pop().unwrap_or_default();
            folds.spawn(async move {
                let done = fold_day(&ctx, day, &dir, &to_products, fold).await;
                done.map(|(part, fold)| (i, part, fold))
            });
        }
        match folds.join_next().await {
            Some(done) => {
                let (i, part, fold) =
                    done.map_err(|e| PipelineError::stopped("folding a day of the fact", e))??;
                parts.push((i, part));
                spare.push(fold);
            }
            None => break,
        }
    }
    drop(spare);
    drop(to_products);
    let products = products
        .await
        .map_err(|e| PipelineError::stopped("folding the products and categories", e))??;
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
    let stopped = |e| PipelineError::stopped("merging the sessions and users", e);
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
        products,
        sessions,
        users,
        events,
        fold_seconds: folded,
    })
}

/// A scratch file or directory that could not be used.
fn scratch_error(path: &Path, source: std::io::Error) -> PipelineError {
    PipelineError::Io {
        context: format!("cannot use scratch file {}", path.display()),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::products::tests::{build_products, context};
    use crate::model::{fact_user_events, reference_sql};
    use shoplake_lake::arrow::array::{
        AsArray, Date32Array, Decimal128Array, Int64Array, StringArray,
    };
    use shoplake_lake::arrow::compute::{cast, concat_batches};
    use shoplake_lake::arrow::datatypes::Int64Type;
    use shoplake_lake::datafusion::prelude::ParquetReadOptions;
    use shoplake_lake::tables;

    const DAY: i64 = shoplake_lake::time::MICROS_PER_DAY;
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
                    Arc::new(StringArray::new_null(len)),
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
        // Every day's rows reached the products fold (tested against its SQL in products.rs).
        let whole = build_products(&ctx).await;
        assert_eq!(staged.products.products, whole.products);
        assert_eq!(staged.products.categories, whole.categories);
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
