//! The order a cleaned day is written in: by event type, then event_time and event_id; and
//! the exact duplicates dropped on the way.
//!
//! The day's rows are in memory already. DataFusion's sort copies them twice (each batch is
//! sorted into a new one, then the batches are merged into new ones again); here each event
//! type's rows get a 24-byte entry (event_time, event_id, where the row is), each type's
//! entries are sorted in place, and the rows are gathered into the output batches once.
//!
//! Copies of a row have equal fields, so equal type, time and id: sorted, they sit next to
//! each other, the first in input order first, except that a row as delivered comes before
//! a copy whose category id had to be repaired (that one is the duplicate). Where neighbours share a time and an id,
//! their 128-bit row keys tell copies (dropped, counted) from different rows whose 64-bit ids
//! collide (kept). Only those neighbours' keys are looked at: finding the duplicates costs
//! the sort nothing, where a hash set of every key cost a cache miss per row.
//!
//! The entries (counted per type first, so each vector is allocated once at its size) and
//! the output are reserved from the session's memory pool first. When they do not fit, or
//! the rows are not as a cleaned day's are (event_type plain text, one of the types the
//! rules allow; no null type, time or id), [`sort_day`] returns `None` and the caller sorts
//! in DataFusion, which spills.

use std::sync::Arc;

use shoplake_lake::arrow::array::{Array, AsArray, RecordBatch};
use shoplake_lake::arrow::compute::interleave_record_batch;
use shoplake_lake::arrow::datatypes::{Int64Type, TimestampMicrosecondType};
use shoplake_lake::datafusion::execution::memory_pool::{MemoryConsumer, MemoryPool};

use crate::clean::rules::EVENT_TYPES;
use crate::error::{PipelineError, Result};

/// Rows per output batch.
const OUTPUT_ROWS: usize = 64 * 1024;

/// One row to place: its sort key and where it is (which also makes every entry distinct, so
/// an unstable sort gives one order, ties on time and id in input order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    time: i64,
    id: i64,
    /// The row's batch, its top bit set when the row has a `data_issue` (a category id
    /// repaired or lost): among copies of an event, a row as delivered comes first and is
    /// the one kept.
    batch: u32,
    row: u32,
}

/// The top bit of [`Entry::batch`].
const HAS_ISSUE: u32 = 1 << 31;

impl Entry {
    fn batch(&self) -> usize {
        (self.batch & !HAS_ISSUE) as usize
    }
}

/// The first copy of each row of `batches` (in `clean.events` schema; `keys[b][r]` the row
/// key of row `r` of batch `b`) sorted by (event_type, event_time, event_id), ties in input
/// order, and how many later copies were dropped; `None` when the pool cannot hold the work,
/// or a batch's event_type is not plain text, or a row has a null type, time or id, or a type
/// not in [`EVENT_TYPES`].
pub fn sort_day(
    batches: &[RecordBatch],
    keys: &[Vec<u128>],
    pool: &Arc<dyn MemoryPool>,
) -> Result<Option<(Vec<RecordBatch>, u64)>> {
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    if rows == 0 {
        return Ok(Some((Vec::new(), 0)));
    }
    if keys.len() != batches.len()
        || batches
            .iter()
            .zip(keys)
            .any(|(b, k)| b.num_rows() != k.len())
    {
        return Err(PipelineError::Contract(
            "a cleaned batch and its row keys differ in length".into(),
        ));
    }
    let reservation = MemoryConsumer::new("sort of a cleaned day").register(pool);
    let output_bytes: usize = batches.iter().map(|b| b.get_array_memory_size()).sum();
    // The entries, and each row's type (a byte) while they are built; the caller's row keys
    // (16 bytes a row) are held until the rows are gathered.
    let entry_bytes = rows * (std::mem::size_of::<Entry>() + 1 + std::mem::size_of::<u128>());
    if reservation.try_grow(entry_bytes + output_bytes).is_err() {
        return Ok(None);
    }
    // The types in byte order, the order a sort on the text gives.
    let mut types: Vec<&str> = EVENT_TYPES.to_vec();
    types.sort_unstable();
    // Each row's type, then how many rows each type has: the vectors are allocated once.
    let mut kinds = Vec::with_capacity(batches.len());
    let mut per_type = vec![0usize; types.len()];
    for batch in batches {
        let column = batch
            .column_by_name("event_type")
            .ok_or_else(|| PipelineError::Contract("cleaned rows lack column event_type".into()))?;
        let Some(texts) = column.as_string_opt::<i32>() else {
            return Ok(None);
        };
        if texts.null_count() > 0 {
            return Ok(None);
        }
        let mut of_batch = Vec::with_capacity(batch.num_rows());
        for text in texts.iter().flatten() {
            let Some(t) = types.iter().position(|t| *t == text) else {
                return Ok(None);
            };
            per_type[t] += 1;
            of_batch.push(t as u8);
        }
        kinds.push(of_batch);
    }
    let mut by_type: Vec<Vec<Entry>> = per_type.iter().map(|&n| Vec::with_capacity(n)).collect();
    for (b, (batch, of_batch)) in batches.iter().zip(&kinds).enumerate() {
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .ok_or_else(|| PipelineError::Contract(format!("cleaned rows lack column {name}")))
        };
        let times = column("event_time")?;
        let ids = column("event_id")?;
        let (Some(times), Some(ids)) = (
            times.as_primitive_opt::<TimestampMicrosecondType>(),
            ids.as_primitive_opt::<Int64Type>(),
        ) else {
            return Ok(None);
        };
        if times.null_count() + ids.null_count() > 0 {
            return Ok(None);
        }
        // Rows without a data_issue column (or with none set) have none.
        let issues = batch
            .column_by_name("data_issue")
            .filter(|c| c.null_count() < c.len());
        let batch_number = u32::try_from(b).ok().filter(|n| n & HAS_ISSUE == 0);
        let Some(batch_number) = batch_number else {
            return Ok(None);
        };
        for (row, &t) in of_batch.iter().enumerate() {
            let issue = issues.is_some_and(|c| c.is_valid(row));
            by_type[t as usize].push(Entry {
                time: times.value(row),
                id: ids.value(row),
                batch: if issue {
                    batch_number | HAS_ISSUE
                } else {
                    batch_number
                },
                row: row as u32,
            });
        }
    }
    drop(kinds);
    let inputs: Vec<&RecordBatch> = batches.iter().collect();
    let mut out = Vec::with_capacity(rows.div_ceil(OUTPUT_ROWS));
    let mut indices = Vec::with_capacity(OUTPUT_ROWS);
    let mut duplicates = 0u64;
    for mut entries in by_type {
        // In place (no scratch beyond the reservation); entries are distinct, see `Entry`.
        entries.sort_unstable();
        duplicates += drop_copies(&mut entries, keys);
        for chunk in entries.chunks(OUTPUT_ROWS) {
            indices.clear();
            indices.extend(chunk.iter().map(|e| (e.batch(), e.row as usize)));
            out.push(interleave_record_batch(&inputs, &indices)?);
        }
    }
    Ok(Some((out, duplicates)))
}

/// Removes from sorted `entries` every row whose key equals that of a row before it with the
/// same time and id (copies are neighbours, see the module's documentation); returns how many.
fn drop_copies(entries: &mut Vec<Entry>, keys: &[Vec<u128>]) -> u64 {
    let key = |e: &Entry| keys[e.batch()][e.row as usize];
    let mut kept = 0;
    // Where the kept entries with the current (time, id) start.
    let mut run = 0;
    for i in 0..entries.len() {
        let e = entries[i];
        if kept == 0 || (entries[kept - 1].time, entries[kept - 1].id) != (e.time, e.id) {
            run = kept;
        } else {
            let k = key(&e);
            if entries[run..kept].iter().any(|earlier| key(earlier) == k) {
                continue;
            }
        }
        entries[kept] = e;
        kept += 1;
    }
    let dropped = entries.len() - kept;
    entries.truncate(kept);
    dropped as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoplake_lake::arrow::array::{
        ArrayRef, Int64Array, StringArray, TimestampMicrosecondArray,
    };
    use shoplake_lake::arrow::datatypes::{DataType, Field, Schema};
    use shoplake_lake::datafusion::datasource::MemTable;
    use shoplake_lake::datafusion::execution::memory_pool::GreedyMemoryPool;
    use shoplake_lake::datafusion::prelude::{SessionContext, col};

    fn batch(rows: &[(&str, i64, i64)]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("event_id", DataType::Int64, false),
            Field::new(
                "event_time",
                DataType::Timestamp(
                    shoplake_lake::arrow::datatypes::TimeUnit::Microsecond,
                    Some("UTC".into()),
                ),
                false,
            ),
            Field::new("event_type", DataType::Utf8, false),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.2))),
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.1))
                    .with_timezone("UTC"),
            ),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
        ];
        RecordBatch::try_new(schema, columns).unwrap()
    }

    fn rows(batches: &[RecordBatch]) -> Vec<(String, i64, i64)> {
        let mut out = Vec::new();
        for b in batches {
            let ids = b.column(0).as_primitive::<Int64Type>();
            let times = b.column(1).as_primitive::<TimestampMicrosecondType>();
            let kinds = b.column(2).as_string::<i32>();
            for i in 0..b.num_rows() {
                out.push((kinds.value(i).to_string(), times.value(i), ids.value(i)));
            }
        }
        out
    }

    fn owned(rows: &[(&str, i64, i64)]) -> Vec<(String, i64, i64)> {
        rows.iter()
            .map(|(k, t, i)| (k.to_string(), *t, *i))
            .collect()
    }

    /// The `tag` column of `batches`, in order.
    fn tags(batches: &[RecordBatch]) -> Vec<i64> {
        batches
            .iter()
            .flat_map(|b| {
                let c = b.column_by_name("tag").unwrap().as_primitive::<Int64Type>();
                c.values().to_vec()
            })
            .collect()
    }

    fn roomy() -> Arc<dyn MemoryPool> {
        Arc::new(GreedyMemoryPool::new(64 << 20))
    }

    /// A distinct key for every row: no row is a copy of another.
    fn distinct_keys(batches: &[RecordBatch]) -> Vec<Vec<u128>> {
        let mut n = 0u128;
        batches
            .iter()
            .map(|b| {
                (0..b.num_rows())
                    .map(|_| {
                        n += 1;
                        n
                    })
                    .collect()
            })
            .collect()
    }

    /// `sort_day` of rows that are all distinct: its rows.
    fn sorted(input: &[RecordBatch], pool: &Arc<dyn MemoryPool>) -> Option<Vec<RecordBatch>> {
        let (out, duplicates) = sort_day(input, &distinct_keys(input), pool).unwrap()?;
        assert_eq!(duplicates, 0);
        Some(out)
    }

    #[test]
    fn a_day_is_ordered_by_type_then_time_then_id() {
        let input = [
            batch(&[
                ("view", 5, 1),
                ("purchase", 3, 9),
                ("cart", 5, 2),
                ("view", 5, 0),
            ]),
            batch(&[("remove_from_cart", 1, 4), ("cart", 4, 7), ("view", -2, 3)]),
        ];
        let sorted = sorted(&input, &roomy()).unwrap();
        let expected = [
            ("cart", 4, 7),
            ("cart", 5, 2),
            ("purchase", 3, 9),
            ("remove_from_cart", 1, 4),
            ("view", -2, 3),
            ("view", 5, 0),
            ("view", 5, 1),
        ];
        assert_eq!(rows(&sorted), owned(&expected));
        assert_eq!(sorted[0].schema(), input[0].schema());
    }

    #[tokio::test]
    async fn the_order_is_the_one_datafusion_gives() {
        // 90,000 rows in 9 batches, 80 % of them views (more than one output batch of
        // views), times in a scrambled order with many ties, ids unique.
        let kinds = ["cart", "purchase", "view", "remove_from_cart"];
        let input: Vec<RecordBatch> = (0..9)
            .map(|b| {
                let rows: Vec<(&str, i64, i64)> = (0..10_000i64)
                    .map(|i| {
                        let n = b * 10_000 + i;
                        let kind = if n % 10 < 8 {
                            "view"
                        } else {
                            kinds[(n * 7 % 11 % 4) as usize]
                        };
                        (kind, (n * 7_919) % 1_000, n)
                    })
                    .collect();
                batch(&rows)
            })
            .collect();
        let sorted = sorted(&input, &roomy()).unwrap();
        let views = sorted
            .iter()
            .filter(|b| b.column(2).as_string::<i32>().value(0) == "view")
            .count();
        assert!(views > 1, "{views} batches of views");

        let ctx = SessionContext::new();
        let table = MemTable::try_new(input[0].schema(), vec![input.clone()]).unwrap();
        let by_datafusion = ctx
            .read_table(Arc::new(table))
            .unwrap()
            .sort(vec![
                col("event_type").sort(true, false),
                col("event_time").sort(true, false),
                col("event_id").sort(true, false),
            ])
            .unwrap()
            .collect()
            .await
            .unwrap();
        assert_eq!(rows(&sorted), rows(&by_datafusion));
    }

    #[test]
    fn too_little_memory_or_an_unknown_type_leaves_the_sort_to_datafusion() {
        let input = [batch(&[("view", 5, 1), ("cart", 3, 9)])];
        let tight: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(64));
        assert!(sorted(&input, &tight).is_none());
        let odd = [batch(&[("view", 5, 1), ("wishlist", 3, 9)])];
        assert!(sorted(&odd, &roomy()).is_none());
        assert!(sorted(&[], &roomy()).unwrap().is_empty());
        // Keys that do not match the rows are a contract error, not a wrong answer.
        assert!(sort_day(&input, &[vec![1]], &roomy()).is_err());
    }

    #[test]
    fn copies_are_dropped_and_colliding_ids_kept() {
        // Keys: 10 is one row delivered three times (twice in the first batch, once in the
        // second); 20 shares its type, time and id with 10 without being a copy (a 64-bit id
        // collision); 30 is a copy of 31's type, time and id in another type; 40 twice.
        let input = [
            batch(&[
                ("view", 5, 1),
                ("view", 5, 1),
                ("cart", 2, 8),
                ("view", 5, 1),
            ]),
            batch(&[
                ("view", 5, 1),
                ("cart", 2, 8),
                ("purchase", 9, 3),
                ("purchase", 9, 3),
            ]),
        ];
        let keys = vec![vec![10, 10, 30, 20], vec![10, 31, 40, 40]];
        let (out, duplicates) = sort_day(&input, &keys, &roomy()).unwrap().unwrap();
        assert_eq!(duplicates, 3);
        let expected = [
            ("cart", 2, 8),
            ("cart", 2, 8),
            ("purchase", 9, 3),
            ("view", 5, 1),
            ("view", 5, 1),
        ];
        assert_eq!(rows(&out), owned(&expected));

        // The first copy in input order is the one kept: tag each row, sort again.
        let mut n = 0;
        let tagged: Vec<RecordBatch> = input
            .iter()
            .map(|b| {
                let tags: ArrayRef = Arc::new(Int64Array::from_iter_values(
                    (0..b.num_rows() as i64).map(|i| {
                        n += 1;
                        n * 100 + i
                    }),
                ));
                let mut columns: Vec<(String, ArrayRef)> = b
                    .schema()
                    .fields()
                    .iter()
                    .zip(b.columns())
                    .map(|(f, c)| (f.name().clone(), c.clone()))
                    .collect();
                columns.push(("tag".to_string(), tags));
                RecordBatch::try_from_iter(columns).unwrap()
            })
            .collect();
        let (out, _) = sort_day(&tagged, &keys, &roomy()).unwrap().unwrap();
        // cart (key 30, then 31), purchase (40, first copy), view (10's first copy, then 20).
        assert_eq!(tags(&out), [302, 601, 702, 100, 403]);

        // The key set of the fallback path finds the same copies, the same first ones.
        let (firsts, dropped) = crate::clean::keys::first_copies(tagged, keys, 8).unwrap();
        assert_eq!(dropped, 3);
        let mut kept = tags(&firsts);
        kept.sort_unstable();
        assert_eq!(kept, [100, 302, 403, 601, 702]);
    }
}
