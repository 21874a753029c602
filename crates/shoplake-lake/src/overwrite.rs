//! Replacing the whole content of an unpartitioned table, encoded on every core.
//!
//! delta-rs writes an unpartitioned table through a single writer, whatever the number of
//! input partitions: the month's 14 M sessions were most of the dimensions' write time, on one
//! core while the other waited (see bench/results/2026-11-29-66600000-at-f0340e1.md).
//! Here each partition of the input plan has a writer and a file of its own, and one commit
//! removes the table's files and adds the new ones.

use datafusion::physical_plan::execute_stream_partitioned;
use datafusion::prelude::DataFrame;
use deltalake::DeltaTable;
use deltalake::kernel::Action;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::writer::DeltaWriter;
use futures::{StreamExt, TryStreamExt};

use crate::error::{LakeError, Result};
use crate::lake::Lake;
use crate::tables::TableDef;
use crate::write::conform;
use crate::writers::{WriterFactory, WriterPool, Written, commit_files, is_abandoned};

/// Replaces every row of the unpartitioned table `def` with the rows of `input`, in one
/// commit; returns the table at the new version. A table that does not exist yet is created
/// by that commit. If reading `input` fails, nothing is committed.
pub async fn overwrite_table(
    lake: &Lake,
    def: &TableDef,
    input: DataFrame,
    commit: CommitProperties,
) -> Result<DeltaTable> {
    let name = def.qualified_name();
    let (table, mut pool, factory) = open(lake, def).await?;
    let input = conform(def, input)?;
    let task = input.task_ctx();
    let plan = input.create_physical_plan().await?;
    for mut rows in execute_stream_partitioned(plan, std::sync::Arc::new(task))? {
        let mut writer = factory.writer()?;
        let name = name.clone();
        pool.spawn(|abandoned| async move {
            let delta = |e| LakeError::delta(name.clone(), e);
            while let Some(batch) = rows.next().await {
                if is_abandoned(&abandoned) {
                    break;
                }
                let written = match batch {
                    Ok(batch) => writer.write(batch).await.map_err(delta),
                    Err(e) => Err(LakeError::from(e)),
                };
                if let Err(e) = written {
                    writer.reset();
                    return Written::failed(Vec::new(), e);
                }
            }
            if is_abandoned(&abandoned) {
                writer.reset();
                return Written::ok(Vec::new());
            }
            // One file, closed here: nothing was closed before.
            match writer.flush().await {
                Ok(files) => Written::ok(files),
                Err(e) => Written::failed(Vec::new(), delta(e)),
            }
        });
    }
    let adds = pool.finish(None).await?;
    commit_overwrite(def, table, adds, commit).await
}

/// Replaces every row of the unpartitioned table `def` with the rows of `parts`, in one
/// commit, like [`overwrite_table`], but one part after another, each into files of its own:
/// a part's rows (a month, say) never share a file with another part's, so that a reader
/// asking for one part skips the others' files by their statistics, and only one part's
/// plan runs at a time (its memory, not the whole table's). Each part's rows are written in
/// the order its plan yields them.
pub async fn overwrite_table_by_parts(
    lake: &Lake,
    def: &TableDef,
    parts: Vec<DataFrame>,
    commit: CommitProperties,
) -> Result<DeltaTable> {
    let name = def.qualified_name();
    let (table, mut pool, factory) = open(lake, def).await?;
    let mut inputs = Vec::with_capacity(parts.len());
    for part in parts {
        inputs.push(conform(def, part)?);
    }
    pool.spawn(|abandoned| async move {
        let mut files = Vec::new();
        for input in inputs {
            let delta = |e| LakeError::delta(name.clone(), e);
            let mut rows = match input.execute_stream().await {
                Ok(rows) => rows,
                Err(e) => return Written::failed(files, e.into()),
            };
            let mut writer = match factory.writer() {
                Ok(writer) => writer,
                Err(e) => return Written::failed(files, e),
            };
            while let Some(batch) = rows.next().await {
                if is_abandoned(&abandoned) {
                    writer.reset();
                    return Written::ok(files);
                }
                let written = match batch {
                    Ok(batch) => writer.write(batch).await.map_err(delta),
                    Err(e) => Err(LakeError::from(e)),
                };
                if let Err(e) = written {
                    writer.reset();
                    return Written::failed(files, e);
                }
            }
            match writer.flush().await {
                Ok(closed) => files.extend(closed),
                Err(e) => return Written::failed(files, delta(e)),
            }
        }
        Written::ok(files)
    });
    let adds = pool.finish(None).await?;
    commit_overwrite(def, table, adds, commit).await
}

/// The unpartitioned table `def` as it is (or new), with the pool and the factory of the
/// writers that replace its content.
async fn open(lake: &Lake, def: &TableDef) -> Result<(DeltaTable, WriterPool, WriterFactory)> {
    if def.partition_by.is_some() {
        return Err(LakeError::Inconsistent(format!(
            "{} is partitioned; its days are replaced one at a time",
            def.qualified_name()
        )));
    }
    let table = lake.load_or_new(def).await?;
    let pool = WriterPool::new(def, &table);
    let factory = WriterFactory::new(lake, def, &table);
    Ok((table, pool, factory))
}

/// Commits `adds` as the whole content of `table`: its files are removed by the same commit.
async fn commit_overwrite(
    def: &TableDef,
    table: DeltaTable,
    adds: Vec<deltalake::kernel::Add>,
    commit: CommitProperties,
) -> Result<DeltaTable> {
    let name = def.qualified_name();
    let mut actions: Vec<Action> = Vec::new();
    if table.version().is_some() {
        let old: Vec<_> = table
            .get_active_add_actions_by_partitions(&[])
            .try_collect()
            .await
            .map_err(|e| LakeError::delta(name.clone(), e))?;
        actions.extend(old.iter().map(|f| Action::Remove(f.remove_action(true))));
    }
    actions.extend(adds.into_iter().map(Action::Add));
    let operation = DeltaOperation::Write {
        mode: SaveMode::Overwrite,
        partition_by: None,
        predicate: None,
    };
    commit_files(def, table, actions, operation, commit).await
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use datafusion::arrow::array::{AsArray, Int64Array, RecordBatch};
    use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema};
    use datafusion::datasource::MemTable;
    use datafusion::physical_plan::stream::RecordBatchStreamAdapter;

    use crate::tables::{ColumnDef, TableDef};

    fn def() -> TableDef {
        TableDef {
            layer: "model",
            name: "numbers",
            partition_by: None,
            file_per_value_of: None,
            grain: "one number",
            description: "Numbers, for the tests.",
            columns: vec![ColumnDef {
                name: "n",
                data_type: DataType::Int64,
                nullable: false,
                description: "A number.",
                source: "test",
            }],
        }
    }

    fn lake_in(dir: &tempfile::TempDir) -> Lake {
        Lake::open(dir.path().to_str().unwrap()).unwrap()
    }

    /// A DataFrame with a partition per (start, end) of `parts`, holding start..end.
    fn numbers(lake: &Lake, parts: &[(i64, i64)]) -> DataFrame {
        let schema = def().arrow_schema();
        let partitions = parts
            .iter()
            .map(|r| {
                vec![
                    RecordBatch::try_new(
                        schema.clone(),
                        vec![Arc::new(Int64Array::from_iter_values(r.0..r.1))],
                    )
                    .unwrap(),
                ]
            })
            .collect();
        lake.session()
            .read_table(Arc::new(MemTable::try_new(schema, partitions).unwrap()))
            .unwrap()
    }

    /// The table's numbers, sorted, and its number of files.
    async fn contents(lake: &Lake) -> (Vec<i64>, usize) {
        let table = lake.load(&def()).await.unwrap().unwrap();
        let ctx = lake.session();
        table.update_datafusion_session(&ctx.state()).unwrap();
        let provider = table.table_provider().await.unwrap();
        let batches = ctx.read_table(provider).unwrap().collect().await.unwrap();
        let mut numbers: Vec<i64> = batches
            .iter()
            .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
            .collect();
        numbers.sort_unstable();
        (numbers, table.get_file_uris().unwrap().count())
    }

    #[tokio::test]
    async fn replaces_every_row_with_a_file_per_input_partition() {
        let dir = tempfile::tempdir().unwrap();
        let lake = lake_in(&dir);
        let input = numbers(&lake, &[(0, 1000), (1000, 1500), (1500, 1501)]);
        let table = overwrite_table(&lake, &def(), input, Default::default())
            .await
            .unwrap();
        // Created by the commit that adds the files.
        assert_eq!(table.version(), Some(0));
        let (rows, files) = contents(&lake).await;
        assert_eq!(rows, (0..1501).collect::<Vec<_>>());
        assert_eq!(files, 3);

        let input = numbers(&lake, &[(5, 10), (20, 25)]);
        let table = overwrite_table(&lake, &def(), input, Default::default())
            .await
            .unwrap();
        assert_eq!(table.version(), Some(1));
        let (rows, files) = contents(&lake).await;
        assert_eq!(rows, vec![5, 6, 7, 8, 9, 20, 21, 22, 23, 24]);
        assert_eq!(files, 2);

        // No rows at all: the table is emptied.
        let input = numbers(&lake, &[(0, 0)]);
        overwrite_table(&lake, &def(), input, Default::default())
            .await
            .unwrap();
        assert_eq!(contents(&lake).await, (vec![], 0));
    }

    #[tokio::test]
    async fn a_failed_read_commits_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let lake = lake_in(&dir);
        overwrite_table(&lake, &def(), numbers(&lake, &[(0, 3)]), Default::default())
            .await
            .unwrap();
        let schema = def().arrow_schema();
        let good =
            RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![7, 8]))])
                .unwrap();
        let rows = futures::stream::iter(vec![
            Ok(good),
            Err(datafusion::error::DataFusionError::Execution(
                "the input failed".into(),
            )),
        ]);
        let stream = Box::pin(RecordBatchStreamAdapter::new(schema.clone(), rows));
        let input =
            crate::write::stream_to_dataframe(&lake.session(), schema.clone(), stream).unwrap();
        let err = overwrite_table(&lake, &def(), input, Default::default())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("the input failed"), "{err}");
        let table = lake.load(&def()).await.unwrap().unwrap();
        assert_eq!(table.version(), Some(0));
        assert_eq!(contents(&lake).await, (vec![0, 1, 2], 1));

        // One failing partition among good ones: no commit either.
        let failing = futures::stream::iter(vec![Err(
            datafusion::error::DataFusionError::Execution("one part failed".into()),
        )]);
        let stream = Box::pin(RecordBatchStreamAdapter::new(schema.clone(), failing));
        let bad =
            crate::write::stream_to_dataframe(&lake.session(), schema.clone(), stream).unwrap();
        let input = numbers(&lake, &[(10, 5000), (5000, 9000)])
            .union(bad)
            .unwrap();
        let err = overwrite_table(&lake, &def(), input, Default::default())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("one part failed"), "{err}");
        assert_eq!(contents(&lake).await, (vec![0, 1, 2], 1));
        // The good parts' files, if they were closed before the failure, are deleted.
        let on_disk = std::fs::read_dir(lake.local_table_dir(&def()).unwrap())
            .unwrap()
            .filter(|e| {
                let path = e.as_ref().unwrap().path();
                path.extension().is_some_and(|x| x == "parquet")
            })
            .count();
        assert_eq!(on_disk, 1);

        // Nor is a table created by a failed first write.
        let other = tempfile::tempdir().unwrap();
        let lake = lake_in(&other);
        let failing = futures::stream::iter(vec![Err(
            datafusion::error::DataFusionError::Execution("the input failed".into()),
        )]);
        let stream = Box::pin(RecordBatchStreamAdapter::new(schema.clone(), failing));
        let input = crate::write::stream_to_dataframe(&lake.session(), schema, stream).unwrap();
        overwrite_table(&lake, &def(), input, Default::default())
            .await
            .unwrap_err();
        assert!(lake.load(&def()).await.unwrap().is_none());
    }

    /// The numbers of each of the table's files, each file's sorted.
    async fn files_numbers(lake: &Lake) -> Vec<Vec<i64>> {
        let table = lake.load(&def()).await.unwrap().unwrap();
        let ctx = lake.session();
        let mut files = Vec::new();
        for uri in table.get_file_uris().unwrap() {
            let path = uri.strip_prefix("file://").unwrap_or(&uri).to_string();
            let batches = ctx
                .read_parquet(path, Default::default())
                .await
                .unwrap()
                .collect()
                .await
                .unwrap();
            let mut numbers: Vec<i64> = batches
                .iter()
                .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
                .collect();
            numbers.sort_unstable();
            files.push(numbers);
        }
        files.sort();
        files
    }

    #[tokio::test]
    async fn by_parts_writes_each_part_into_files_of_its_own_in_one_commit() {
        let dir = tempfile::tempdir().unwrap();
        let lake = lake_in(&dir);
        overwrite_table(&lake, &def(), numbers(&lake, &[(0, 3)]), Default::default())
            .await
            .unwrap();
        // A part of two input partitions is still one file; an empty part, none.
        let parts = vec![
            numbers(&lake, &[(100, 150), (150, 200)]),
            numbers(&lake, &[(0, 0)]),
            numbers(&lake, &[(10, 20)]),
        ];
        let table = overwrite_table_by_parts(&lake, &def(), parts, Default::default())
            .await
            .unwrap();
        assert_eq!(table.version(), Some(1));
        assert_eq!(
            files_numbers(&lake).await,
            vec![(10..20).collect::<Vec<_>>(), (100..200).collect()]
        );

        // A failing part: nothing is committed and the parts written before it are deleted.
        let schema = def().arrow_schema();
        let failing = futures::stream::iter(vec![Err(
            datafusion::error::DataFusionError::Execution("the second part failed".into()),
        )]);
        let stream = Box::pin(RecordBatchStreamAdapter::new(schema.clone(), failing));
        let bad = crate::write::stream_to_dataframe(&lake.session(), schema, stream).unwrap();
        let parts = vec![numbers(&lake, &[(1, 5)]), bad];
        let err = overwrite_table_by_parts(&lake, &def(), parts, Default::default())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("the second part failed"), "{err}");
        assert_eq!(lake.load(&def()).await.unwrap().unwrap().version(), Some(1));
        let on_disk = std::fs::read_dir(lake.local_table_dir(&def()).unwrap())
            .unwrap()
            .filter(|e| {
                let path = e.as_ref().unwrap().path();
                path.extension().is_some_and(|x| x == "parquet")
            })
            .count();
        // The first overwrite's file (removed from the table, still on disk) and the two live.
        assert_eq!(on_disk, 3);
    }

    #[tokio::test]
    async fn a_partitioned_table_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let lake = lake_in(&dir);
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let input = lake
            .session()
            .read_table(Arc::new(MemTable::try_new(schema, vec![vec![]]).unwrap()))
            .unwrap();
        let err = overwrite_table(
            &lake,
            &crate::tables::raw_events(),
            input,
            Default::default(),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("is partitioned"), "{err}");
    }
}
