//! Appending a stream of rows to a table partitioned by day, encoded on every core.
//!
//! Through a DataFusion plan (delta-rs's write operation), delta-rs hash-partitions the rows by day (a copy of
//! every row), its writer copies each batch again to split it by day, and all the rows of a day
//! go to one writer, so a file in time order, as a store's export is, is encoded on one core at
//! a time. Here each batch is cut at day boundaries without copying (slices), the batches are
//! handed out in turn to one writer per core, and each writer puts its share of a day into a
//! file of its own. One commit adds every file: a reader sees all the rows or none.
//!
//! Files open at once stay few. A writer keeps a file per day it is writing, closing the one
//! written least recently when a third day comes: rows in time order (with stragglers of the
//! day before) leave at most two open per writer. Rows whose days come back after others
//! (an export ordered by user, say) are noticed, and from then on each day goes to one writer
//! only (day number modulo writers), which keeps up to `MAX_OPEN_DAYS` (32) files open: as many
//! files open in all as days interleaved, as delta-rs's writer had.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::partition;
use datafusion::arrow::datatypes::{Date32Type, SchemaRef};
use delta_kernel::expressions::Scalar;
use deltalake::DeltaTable;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::kernel::{Action, Add};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use futures::{Stream, StreamExt};
use indexmap::IndexMap;
use tokio::sync::mpsc;

use crate::error::{LakeError, Result};
use crate::lake::Lake;
use crate::tables::{EVENT_DATE, TableDef};
use crate::write::{describe, same_columns};
use crate::writers::{WriterFactory, WriterPool, Written, commit_files, is_abandoned};

/// Files a writer keeps open while the rows come in day order: the day and the one before.
const OPEN_DAYS_IN_ORDER: usize = 2;

/// Files a writer keeps open once the days are found interleaved.
const MAX_OPEN_DAYS: usize = 32;

/// Batches waiting for each writer.
const QUEUED_BATCHES: usize = 2;

/// Appends `rows` to the table declared by `def` (partitioned by `event_date`) in one
/// commit, with `commit`'s properties; returns the table at the new version. Rows are encoded
/// by `writers` writers side by side (at least one).
///
/// A table that does not exist yet is created by that commit. If `rows` yields an error,
/// nothing is committed, not even the table, and the files being written are abandoned.
pub async fn append_by_day<S, E>(
    lake: &Lake,
    def: &TableDef,
    rows: S,
    commit: CommitProperties,
    writers: usize,
) -> Result<DeltaTable>
where
    S: Stream<Item = std::result::Result<RecordBatch, E>> + Send,
    LakeError: From<E>,
{
    let name = def.qualified_name();
    if def.partition_by != Some(EVENT_DATE) {
        return Err(LakeError::Inconsistent(format!(
            "{name} is not partitioned by {EVENT_DATE}"
        )));
    }
    let schema = def.arrow_schema();
    let table = lake.load_or_new(def).await?;
    let date_column = schema.index_of(EVENT_DATE)?;

    let mut pool = WriterPool::new(def, &table);
    let factory = WriterFactory::new(lake, def, &table);
    let mut queues = Vec::new();
    for _ in 0..writers.max(1) {
        let writer = DayWriter::new(factory.clone());
        let (queue, batches) = mpsc::channel(QUEUED_BATCHES);
        queues.push(queue);
        pool.spawn(|abandoned| write_days(writer, batches, abandoned));
    }

    // Hands the batches out in turn, or each day to its writer once the days are found
    // interleaved; stops at the first input error or failed writer.
    let mut failure = None;
    let mut order = DayOrder::default();
    let mut rows = std::pin::pin!(rows);
    let mut turn = 0;
    'batches: while let Some(batch) = rows.next().await {
        let runs = batch.map_err(LakeError::from).and_then(|b| {
            check_columns(&name, &schema, &b)?;
            days_of(&b, date_column)
        });
        let runs = match runs {
            Ok(runs) => runs,
            Err(e) => {
                failure = Some(e);
                break;
            }
        };
        if runs.is_empty() {
            continue;
        }
        for (day, _) in &runs {
            order.saw(*day);
        }
        let mut shares: Vec<DayRuns> = vec![Vec::new(); queues.len()];
        if order.interleaved {
            for (day, rows) in runs {
                shares[day.rem_euclid(queues.len() as i32) as usize].push((day, rows));
            }
        } else {
            shares[turn] = runs;
            turn = (turn + 1) % queues.len();
        }
        for (queue, runs) in queues.iter().zip(shares) {
            if runs.is_empty() {
                continue;
            }
            let work = Work {
                runs,
                interleaved: order.interleaved,
            };
            if queue.send(work).await.is_err() {
                // The writer stopped on an error, which finishing the pool reports.
                break 'batches;
            }
        }
    }
    drop(queues);
    let adds = pool.finish(failure).await?;

    let operation = DeltaOperation::Write {
        mode: SaveMode::Append,
        partition_by: Some(vec![EVENT_DATE.to_string()]),
        predicate: None,
    };
    let actions = adds.into_iter().map(Action::Add).collect();
    commit_files(def, table, actions, operation, commit).await
}

/// A batch cut into its runs of one day: (day as days since the epoch, rows).
type DayRuns = Vec<(i32, RecordBatch)>;

/// What a writer is handed: rows, and whether the days were found interleaved.
struct Work {
    runs: DayRuns,
    interleaved: bool,
}

/// Watches the order of the days: a day that comes back after the rows moved on past the
/// next one means the input is not in day order. Going back to the day just left (rows
/// delivered a little late, around midnight) does not count.
#[derive(Default)]
struct DayOrder {
    current: Option<i32>,
    previous: Option<i32>,
    left: HashSet<i32>,
    interleaved: bool,
}

impl DayOrder {
    fn saw(&mut self, day: i32) {
        if self.current == Some(day) {
            return;
        }
        if self.left.contains(&day) && self.previous != Some(day) {
            self.interleaved = true;
        }
        if let Some(current) = self.current {
            self.left.insert(current);
        }
        self.previous = self.current;
        self.current = Some(day);
    }
}

/// The rows must have the table's columns, by name and type, in its order.
fn check_columns(name: &str, schema: &SchemaRef, batch: &RecordBatch) -> Result<()> {
    let got = batch.schema();
    if same_columns(schema, &got) {
        return Ok(());
    }
    Err(LakeError::Inconsistent(format!(
        "rows for {name} do not have its columns: expected [{}], got [{}]",
        describe(schema),
        describe(&got)
    )))
}

/// `batch` as slices of consecutive rows of one day (no copy).
fn days_of(batch: &RecordBatch, date_column: usize) -> Result<DayRuns> {
    if batch.num_rows() == 0 {
        return Ok(Vec::new());
    }
    let dates = batch.column(date_column);
    if dates.null_count() > 0 {
        return Err(LakeError::Inconsistent(format!(
            "{EVENT_DATE} is null in rows to append; every row needs its day"
        )));
    }
    let days = dates.as_primitive::<Date32Type>();
    Ok(partition(std::slice::from_ref(dates))?
        .ranges()
        .into_iter()
        .map(|range| {
            (
                days.value(range.start),
                batch.slice(range.start, range.end - range.start),
            )
        })
        .collect())
}

/// One writer's files: one open per day it is writing, the least recently written closed
/// when more than `max_open` would be open. Once the days are interleaved, `max_open` grows
/// to [`MAX_OPEN_DAYS`].
struct DayWriter {
    factory: WriterFactory,
    /// Open files by day, the least recently written first.
    open: Vec<(i32, RecordBatchWriter)>,
    max_open: usize,
    adds: Vec<Add>,
}

impl DayWriter {
    fn new(factory: WriterFactory) -> Self {
        DayWriter {
            factory,
            open: Vec::new(),
            max_open: OPEN_DAYS_IN_ORDER,
            adds: Vec::new(),
        }
    }

    /// Turns delta-rs's error into the lake's, naming the table.
    fn delta(&self) -> impl Fn(deltalake::DeltaTableError) -> LakeError + Send + use<> {
        let name = self.factory.name().to_string();
        move |e| LakeError::delta(name.clone(), e)
    }

    async fn write(&mut self, day: i32, rows: RecordBatch) -> Result<()> {
        let found = self.open.iter().position(|(d, _)| *d == day);
        let writer = match found {
            Some(at) => self.open.remove(at),
            None => {
                if self.open.len() >= self.max_open {
                    let (_, mut oldest) = self.open.remove(0);
                    let delta = self.delta();
                    let closed = oldest.flush().await.map_err(delta)?;
                    self.adds.extend(closed);
                }
                (day, self.factory.writer()?)
            }
        };
        // The most recently written goes last.
        self.open.push(writer);
        let partition = IndexMap::from([(EVENT_DATE.to_string(), Scalar::Date(day))]);
        let delta = self.delta();
        let (_, writer) = self.open.last_mut().expect("just pushed");
        writer
            .write_partition(rows, &partition, deltalake::writer::WriteMode::Default)
            .await
            .map_err(delta)?;
        Ok(())
    }

    /// Drops the open files.
    fn abandon(&mut self) {
        for (_, writer) in &mut self.open {
            writer.reset();
        }
    }

    /// Closes the open files; returns every file written.
    async fn finish(mut self) -> Written {
        let delta = self.delta();
        while !self.open.is_empty() {
            let (_, mut writer) = self.open.remove(0);
            match writer.flush().await {
                Ok(closed) => self.adds.extend(closed),
                Err(e) => {
                    writer.reset();
                    self.abandon();
                    return Written::failed(self.adds, delta(e));
                }
            }
        }
        Written::ok(self.adds)
    }
}

/// Writes what `queue` hands over until it closes; then closes the files and returns them,
/// or, when the append was `abandoned`, drops the open files and returns the closed ones.
async fn write_days(
    mut writer: DayWriter,
    mut queue: mpsc::Receiver<Work>,
    abandoned: Arc<AtomicBool>,
) -> Written {
    while let Some(work) = queue.recv().await {
        if work.interleaved {
            writer.max_open = MAX_OPEN_DAYS;
        }
        for (day, rows) in work.runs {
            if let Err(e) = writer.write(day, rows).await {
                writer.abandon();
                return Written::failed(writer.adds, e);
            }
        }
    }
    if is_abandoned(&abandoned) {
        writer.abandon();
        return Written::ok(writer.adds);
    }
    writer.finish().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use datafusion::arrow::array::{Date32Array, Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema};

    use crate::time::date_to_days;

    /// raw.events reduced to a line number and the day.
    fn def() -> TableDef {
        let mut def = crate::tables::raw_events();
        def.columns
            .retain(|c| c.name == "_line" || c.name == EVENT_DATE);
        def
    }

    fn lake_in(dir: &tempfile::TempDir) -> Lake {
        Lake::open(dir.path().to_str().unwrap()).unwrap()
    }

    /// Day `d` counted from 2020-04-01 as day 1.
    fn day(d: u32) -> i32 {
        date_to_days(NaiveDate::from_ymd_opt(2020, 4, 1).unwrap()) + d as i32 - 1
    }

    /// Rows numbered from `first`, of the given days, one row per entry.
    fn batch(first: i64, days: &[u32]) -> RecordBatch {
        RecordBatch::try_new(
            def().arrow_schema(),
            vec![
                Arc::new(Int64Array::from_iter_values(
                    (0..days.len() as i64).map(|i| first + i),
                )),
                Arc::new(Date32Array::from_iter_values(days.iter().map(|d| day(*d)))),
            ],
        )
        .unwrap()
    }

    /// (day, line) of every row of `batches`, sorted.
    fn rows_of(batches: &[RecordBatch]) -> Vec<(i32, i64)> {
        let mut rows = Vec::new();
        for b in batches {
            let lines = b
                .column_by_name("_line")
                .unwrap()
                .as_primitive::<Int64Type>();
            let days = b
                .column_by_name(EVENT_DATE)
                .unwrap()
                .as_primitive::<Date32Type>();
            for i in 0..b.num_rows() {
                rows.push((days.value(i), lines.value(i)));
            }
        }
        rows.sort_unstable();
        rows
    }

    /// The table's rows as [`rows_of`] gives them, and its number of files per day.
    async fn contents(lake: &Lake) -> (Vec<(i32, i64)>, Vec<(String, usize)>) {
        let table = lake.load(&def()).await.unwrap().unwrap();
        let ctx = lake.session();
        table.update_datafusion_session(&ctx.state()).unwrap();
        let provider = table.table_provider().await.unwrap();
        let batches = ctx.read_table(provider).unwrap().collect().await.unwrap();
        let mut files: Vec<(String, usize)> = Vec::new();
        for uri in table.get_file_uris().unwrap() {
            let day = uri
                .split('/')
                .find(|part| part.starts_with("event_date="))
                .unwrap()
                .to_string();
            match files.iter_mut().find(|(d, _)| *d == day) {
                Some((_, n)) => *n += 1,
                None => files.push((day, 1)),
            }
        }
        files.sort();
        (rows_of(&batches), files)
    }

    /// Parquet files on disk under the table's directory, referenced or not.
    fn parquet_files(lake: &Lake) -> usize {
        fn count(dir: &std::path::Path) -> usize {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return 0;
            };
            entries
                .map(|e| e.unwrap().path())
                .map(|p| {
                    if p.is_dir() {
                        count(&p)
                    } else {
                        usize::from(p.extension().is_some_and(|x| x == "parquet"))
                    }
                })
                .sum()
        }
        count(&lake.local_table_dir(&def()).unwrap())
    }

    fn stream(
        batches: Vec<RecordBatch>,
    ) -> impl Stream<Item = std::result::Result<RecordBatch, LakeError>> + Send {
        futures::stream::iter(batches.into_iter().map(Ok))
    }

    /// Appends `batches` to a new table with `writers` writers, checks that the table holds
    /// exactly their rows, and returns the table and its number of files per day.
    async fn append_new(
        lake: &Lake,
        batches: &[RecordBatch],
        writers: usize,
    ) -> (DeltaTable, Vec<(String, usize)>) {
        let table = append_by_day(
            lake,
            &def(),
            stream(batches.to_vec()),
            Default::default(),
            writers,
        )
        .await
        .unwrap();
        let (rows, files) = contents(lake).await;
        assert_eq!(rows, rows_of(batches));
        (table, files)
    }

    #[tokio::test]
    async fn rows_in_day_order_give_one_file_per_writer_and_day() {
        let dir = tempfile::tempdir().unwrap();
        let lake = lake_in(&dir);
        // Days 1 to 3, a day boundary inside a batch, an empty batch.
        let batches = vec![
            batch(0, &[1, 1, 1]),
            batch(3, &[1, 2, 2]),
            batch(6, &[]),
            batch(6, &[2, 2]),
            batch(8, &[2, 3, 3, 3]),
            batch(12, &[3]),
        ];
        let (table, files) = append_new(&lake, &batches, 2).await;
        // Created by the commit that adds every row.
        assert_eq!(table.version(), Some(0));
        // The batches went to the two writers in turn: each day has a file from each.
        let day_files = |n: usize| -> Vec<(String, usize)> {
            (1..=3)
                .map(|d| (format!("event_date=2020-04-0{d}"), n))
                .collect()
        };
        assert_eq!(files, day_files(2));

        // A second append adds its rows and files, and keeps the first.
        let more = vec![batch(100, &[3, 4])];
        let table = append_by_day(&lake, &def(), stream(more.clone()), Default::default(), 2)
            .await
            .unwrap();
        assert_eq!(table.version(), Some(1));
        let (rows, files) = contents(&lake).await;
        let mut all = batches.clone();
        all.extend(more);
        assert_eq!(rows, rows_of(&all));
        assert_eq!(files.iter().map(|(_, n)| n).sum::<usize>(), 8, "{files:?}");
    }

    #[tokio::test]
    async fn rows_out_of_day_order_keep_every_row_in_few_files() {
        let dir = tempfile::tempdir().unwrap();
        let lake = lake_in(&dir);
        // Five days interleaved within each batch, on one writer.
        let batches: Vec<RecordBatch> = (0..20).map(|b| batch(b * 5, &[1, 2, 3, 4, 5])).collect();
        let (_, files) = append_new(&lake, &batches, 1).await;
        // In the first batch the days come in order, and each file is closed two days later;
        // from the second batch on, the days are known to be interleaved and stay open
        // together: days 1 to 3 have two files, days 4 and 5 (never closed) one.
        let counts: Vec<usize> = files.iter().map(|(_, n)| *n).collect();
        assert_eq!(counts, vec![2, 2, 2, 1, 1], "{files:?}");
    }

    #[tokio::test]
    async fn more_days_interleaved_than_files_open_at_first() {
        let dir = tempfile::tempdir().unwrap();
        let lake = lake_in(&dir);
        let days: Vec<u32> = (1..=40).collect();
        let batches: Vec<RecordBatch> = (0..10).map(|b| batch(b * 40, &days)).collect();
        let (_, files) = append_new(&lake, &batches, 2).await;
        // Each day: the file the first batch closed, and one file of the writer it goes to
        // once the days are known interleaved (a file per run would be ten).
        assert_eq!(files.len(), 40);
        assert!(files.iter().all(|(_, n)| *n <= 2), "{files:?}");
    }

    #[tokio::test]
    async fn late_rows_of_the_day_before_are_not_taken_for_disorder() {
        let dir = tempfile::tempdir().unwrap();
        let lake = lake_in(&dir);
        let batches = vec![
            batch(0, &[1, 1, 2, 1, 2, 2]),
            batch(6, &[2, 3, 2, 3]),
            batch(10, &[3, 3, 4]),
        ];
        let (_, files) = append_new(&lake, &batches, 1).await;
        let counts: Vec<usize> = files.iter().map(|(_, n)| *n).collect();
        assert_eq!(counts, vec![1, 1, 1, 1], "{files:?}");

        let mut order = DayOrder::default();
        for d in [1, 1, 2, 1, 2, 2, 3, 2, 3, 3, 4] {
            order.saw(day(d));
        }
        assert!(!order.interleaved);
        order.saw(day(2));
        assert!(order.interleaved, "day 2 came back after days 3 and 4");
    }

    #[tokio::test]
    async fn an_input_error_commits_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let lake = lake_in(&dir);
        let rows = futures::stream::iter(vec![
            Ok(batch(0, &[1, 1])),
            Ok(batch(2, &[1, 2])),
            Err(LakeError::Inconsistent("the reader failed".into())),
            Ok(batch(4, &[2])),
        ]);
        let err = append_by_day(&lake, &def(), rows, Default::default(), 2)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("the reader failed"), "{err}");
        // Not even the table was created.
        assert!(lake.load(&def()).await.unwrap().is_none());

        // Files a writer had already closed (days 1 and 2, when days 3 and 4 came) are
        // deleted.
        let rows = futures::stream::iter(vec![
            Ok(batch(0, &[1])),
            Ok(batch(1, &[2])),
            Ok(batch(2, &[3])),
            Ok(batch(3, &[4])),
            Err(LakeError::Inconsistent("the reader failed".into())),
        ]);
        append_by_day(&lake, &def(), rows, Default::default(), 1)
            .await
            .unwrap_err();
        assert!(lake.load(&def()).await.unwrap().is_none());
        assert_eq!(parquet_files(&lake), 0);

        // On an existing table, no commit either.
        append_by_day(
            &lake,
            &def(),
            stream(vec![batch(0, &[1])]),
            Default::default(),
            2,
        )
        .await
        .unwrap();
        let rows = futures::stream::iter(vec![
            Ok(batch(10, &[1, 2])),
            Err(LakeError::Inconsistent("the reader failed".into())),
        ]);
        append_by_day(&lake, &def(), rows, Default::default(), 2)
            .await
            .unwrap_err();
        let table = lake.load(&def()).await.unwrap().unwrap();
        assert_eq!(table.version(), Some(0));
        let (rows, files) = contents(&lake).await;
        assert_eq!(rows, vec![(day(1), 0)]);
        assert_eq!(files.len(), 1);
        assert_eq!(parquet_files(&lake), 1);
    }

    #[tokio::test]
    async fn rows_with_other_columns_or_no_day_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let lake = lake_in(&dir);
        let other = Arc::new(Schema::new(vec![Field::new("x", DataType::Utf8, true)]));
        let wrong =
            RecordBatch::try_new(other, vec![Arc::new(StringArray::from(vec!["a"]))]).unwrap();
        let err = append_by_day(&lake, &def(), stream(vec![wrong]), Default::default(), 2)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("do not have its columns"), "{err}");

        // A day left null: the column is declared non-null, but a batch may carry a nullable
        // field of the same type.
        let nullable = Arc::new(Schema::new(vec![
            Field::new("_line", DataType::Int64, true),
            Field::new(EVENT_DATE, DataType::Date32, true),
        ]));
        let no_day = RecordBatch::try_new(
            nullable,
            vec![
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(Date32Array::from(vec![Some(day(1)), None])),
            ],
        )
        .unwrap();
        let err = append_by_day(&lake, &def(), stream(vec![no_day]), Default::default(), 2)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("is null"), "{err}");
        assert!(lake.load(&def()).await.unwrap().is_none());

        // A null line number passes the check of names and types, and the writer refuses
        // it: the other writer's files are dropped and nothing is committed.
        let null_line = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("_line", DataType::Int64, true),
                Field::new(EVENT_DATE, DataType::Date32, false),
            ])),
            vec![
                Arc::new(Int64Array::from(vec![None, Some(2)])),
                Arc::new(Date32Array::from(vec![day(2), day(2)])),
            ],
        )
        .unwrap();
        let rows = stream(vec![batch(0, &[1, 1]), null_line, batch(5, &[2, 3])]);
        let err = append_by_day(&lake, &def(), rows, Default::default(), 2)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("_line"), "{err}");
        assert!(lake.load(&def()).await.unwrap().is_none());
    }
}
