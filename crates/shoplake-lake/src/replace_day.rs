//! Replacing one day partition with rows already in memory.
//!
//! Delta-rs's write operation goes through a DataFusion plan: it scans the input,
//! checks every row against the `replaceWhere` predicate, sorts and copies each batch to split
//! it by partition, and the caller loads the table from its log before every write. A run
//! holds each day's rows in memory and knows their day, so none of that is needed: the rows
//! are checked to be of that day, encoded straight into the day's directory by delta-rs's
//! file writer (which also gathers the statistics the log records), and one commit removes
//! the day's old files and adds the new ones. The caller keeps the table handle, and each
//! commit moves it forward by reading only the new log entry.

use chrono::NaiveDate;
use datafusion::arrow::array::{Array, Date32Array, RecordBatch};
use datafusion::arrow::compute::{cast, partition};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::ScalarValue;
use delta_kernel::expressions::Scalar;
use deltalake::kernel::Action;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::writer::DeltaWriter;
use deltalake::{DeltaTable, FilterOp, FilterValue};
use futures::TryStreamExt;
use indexmap::IndexMap;

use crate::error::{LakeError, Result};
use crate::lake::Lake;
use crate::tables::{EVENT_DATE, TableDef};
use crate::time::date_to_days;
use crate::writers::{WriterFactory, commit_files};

/// Replaces the `event_date = date` partition of `table` with `batches`, in one commit; other
/// days are untouched. Every row must belong to `date`. Returns the table at the new version.
///
/// `table` may be a handle on a table that does not exist yet: the same commit creates it.
pub async fn replace_day(
    lake: &Lake,
    table: DeltaTable,
    def: &TableDef,
    date: NaiveDate,
    batches: Vec<RecordBatch>,
    commit: CommitProperties,
) -> Result<DeltaTable> {
    let name = def.qualified_name();
    if def.partition_by != Some(EVENT_DATE) {
        return Err(LakeError::Inconsistent(format!(
            "{name} is not partitioned by {EVENT_DATE}"
        )));
    }
    let schema = def.arrow_schema();
    let batches = batches
        .into_iter()
        .map(|b| conform(&name, &schema, date, b))
        .collect::<Result<Vec<_>>>()?;
    let delta = |e| LakeError::delta(name.clone(), e);
    // For a table that does not exist yet, the files go where it will be; the commit below
    // creates it.
    let mut writer = WriterFactory::new(lake, def, &table).writer()?;
    let partition = IndexMap::from([(EVENT_DATE.to_string(), Scalar::Date(date_to_days(date)))]);
    let mut adds = Vec::new();
    // The value of `def.file_per_value_of` in the file being written.
    let mut file_value: Option<ScalarValue> = None;
    for batch in batches.into_iter().filter(|b| b.num_rows() > 0) {
        for (slice, value) in runs_of(&batch, def.file_per_value_of)? {
            if file_value.is_some() && file_value != value {
                // Flushing closes the file; the next rows open another.
                adds.extend(writer.flush().await.map_err(delta)?);
            }
            file_value = value;
            writer
                .write_partition(slice, &partition, deltalake::writer::WriteMode::Default)
                .await
                .map_err(delta)?;
        }
    }
    adds.extend(writer.flush().await.map_err(delta)?);

    let day = date.format("%Y-%m-%d").to_string();
    let mut actions: Vec<Action> = Vec::new();
    if table.version().is_some() {
        let of_day = [(EVENT_DATE, FilterOp::Eq, FilterValue::Scalar(day.as_str()))];
        let old_files: Vec<_> = table
            .get_active_add_actions_by_partitions(&of_day)
            .try_collect()
            .await
            .map_err(delta)?;
        actions.extend(
            old_files
                .iter()
                .map(|file| Action::Remove(file.remove_action(true))),
        );
    }
    actions.extend(adds.into_iter().map(Action::Add));

    let operation = DeltaOperation::Write {
        mode: SaveMode::Overwrite,
        partition_by: Some(vec![EVENT_DATE.to_string()]),
        predicate: Some(format!("{EVENT_DATE} = '{day}'")),
    };
    commit_files(def, table, actions, operation, commit).await
}

/// `batch` cut into runs of one value of `column` (the whole batch, with no value, when the
/// table has no such column).
fn runs_of(
    batch: &RecordBatch,
    column: Option<&str>,
) -> Result<Vec<(RecordBatch, Option<ScalarValue>)>> {
    let Some(column) = column else {
        return Ok(vec![(batch.clone(), None)]);
    };
    let values = batch
        .column_by_name(column)
        .ok_or_else(|| LakeError::Inconsistent(format!("rows to write have no column {column}")))?;
    partition(std::slice::from_ref(values))?
        .ranges()
        .into_iter()
        .map(|range| {
            let value = ScalarValue::try_from_array(values, range.start)?;
            Ok((
                batch.slice(range.start, range.end - range.start),
                Some(value),
            ))
        })
        .collect()
}

/// Brings a batch to the table's declared types (string views become strings) and checks
/// that every row is of `date`.
fn conform(
    name: &str,
    schema: &SchemaRef,
    date: NaiveDate,
    batch: RecordBatch,
) -> Result<RecordBatch> {
    if batch.num_columns() != schema.fields().len() {
        return Err(LakeError::Inconsistent(format!(
            "rows for {name} have {} columns, the table has {}",
            batch.num_columns(),
            schema.fields().len()
        )));
    }
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (field, (column, got)) in schema
        .fields()
        .iter()
        .zip(batch.columns().iter().zip(batch.schema().fields()))
    {
        if field.name() != got.name() {
            return Err(LakeError::Inconsistent(format!(
                "rows for {name} have column {} where the table has {}",
                got.name(),
                field.name()
            )));
        }
        columns.push(if column.data_type() == field.data_type() {
            column.clone()
        } else {
            cast(column, field.data_type())?
        });
    }
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    let days = batch
        .column_by_name(EVENT_DATE)
        .and_then(|c| c.as_any().downcast_ref::<Date32Array>())
        .ok_or_else(|| LakeError::Inconsistent(format!("{name} has no date {EVENT_DATE}")))?;
    let want = date_to_days(date);
    if days.null_count() > 0 || days.values().iter().any(|d| *d != want) {
        return Err(LakeError::Inconsistent(format!(
            "rows written to {name} for {date} include rows of another day"
        )));
    }
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::DataType;
    use datafusion::prelude::SessionContext;

    use super::*;
    use crate::partitions::partition_files;
    use crate::tables;
    use crate::testing::{clean_rows as rows, replace_clean_day as replace};

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2020, 4, d).unwrap()
    }

    /// (day, event_id) of every row of `clean.events`, read back through delta-rs's own
    /// provider in a plain DataFusion session.
    async fn lake_rows(lake: &Lake) -> Vec<(String, i64)> {
        let table = lake.load(&tables::clean_events()).await.unwrap().unwrap();
        let ctx = SessionContext::new();
        table.update_datafusion_session(&ctx.state()).unwrap();
        ctx.register_table("events", table.table_provider().await.unwrap())
            .unwrap();
        let batches = ctx
            .sql(
                "SELECT CAST(event_date AS VARCHAR) AS d, event_id FROM events \
                 ORDER BY d, event_id",
            )
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let mut out = Vec::new();
        for b in batches {
            let d = cast(b.column(0), &DataType::Utf8).unwrap();
            let d = d.as_any().downcast_ref::<StringArray>().unwrap();
            let id = b.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
            out.extend((0..b.num_rows()).map(|i| (d.value(i).to_string(), id.value(i))));
        }
        out
    }

    fn expected(days: &[(u32, i64, i64)]) -> Vec<(String, i64)> {
        days.iter()
            .flat_map(|&(d, tag, n)| {
                (0..n).map(move |i| (day(d).format("%Y-%m-%d").to_string(), tag * 1000 + i))
            })
            .collect()
    }

    #[tokio::test]
    async fn replaces_exactly_one_day_in_one_commit() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let def = tables::clean_events();

        // The first write creates the table; the second adds a day.
        let table = lake.uninitialized(&def).await.unwrap();
        let table = replace(&lake, table, day(1), vec![rows(day(1), 1, 3, false)]);
        let table = table.await.unwrap();
        let table = replace(&lake, table, day(2), vec![rows(day(2), 2, 2, true)]);
        let table = table.await.unwrap();
        assert_eq!(lake_rows(&lake).await, expected(&[(1, 1, 3), (2, 2, 2)]));

        // Replacing day 1 (two batches of views, one empty) leaves day 2 alone.
        let new_day_1 = vec![
            rows(day(1), 5, 4, true),
            rows(day(1), 6, 0, true),
            rows(day(1), 7, 1, true),
        ];
        let table = replace(&lake, table, day(1), new_day_1.clone());
        let table = table.await.unwrap();
        let want = expected(&[(1, 5, 4), (1, 7, 1), (2, 2, 2)]);
        assert_eq!(lake_rows(&lake).await, want);
        let version = table.version();
        let days = partition_files(&table).await.unwrap();
        assert_eq!(days[&day(1)].rows, Some(5));
        assert_eq!(days[&day(2)].rows, Some(2));

        // The handle moved forward by the commits equals the table read back from its log.
        let reloaded = lake.load(&def).await.unwrap().unwrap();
        assert_eq!(reloaded.version(), version);
        assert_eq!(partition_files(&reloaded).await.unwrap(), days);

        // The same rows again: one more version, the same content.
        let table = replace(&lake, table, day(1), new_day_1).await.unwrap();
        assert_eq!(table.version(), version.map(|v| v + 1));
        assert_eq!(lake_rows(&lake).await, want);

        // No rows: the day is emptied, the other stays.
        let table = replace(&lake, table, day(1), Vec::new()).await.unwrap();
        assert_eq!(lake_rows(&lake).await, expected(&[(2, 2, 2)]));
        assert!(!partition_files(&table).await.unwrap().contains_key(&day(1)));
    }

    #[tokio::test]
    async fn refuses_rows_of_another_day_and_commits_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let def = tables::clean_events();
        let table = lake.uninitialized(&def).await.unwrap();
        let table = replace(&lake, table, day(1), vec![rows(day(1), 1, 3, false)]);
        let table = table.await.unwrap();
        let version = table.version();
        let mixed = vec![rows(day(2), 2, 2, false), rows(day(3), 3, 1, false)];
        let err = replace(&lake, table, day(2), mixed).await.unwrap_err();
        assert!(err.to_string().contains("rows of another day"), "{err}");
        assert_eq!(lake.load(&def).await.unwrap().unwrap().version(), version);
        assert_eq!(lake_rows(&lake).await, expected(&[(1, 1, 3)]));

        let not_by_day = tables::dim_users();
        let handle = lake.uninitialized(&not_by_day).await.unwrap();
        let commit = CommitProperties::default();
        let err = replace_day(&lake, handle, &not_by_day, day(1), Vec::new(), commit);
        let err = err.await.unwrap_err().to_string();
        assert!(err.contains("not partitioned by event_date"), "{err}");
    }
}
