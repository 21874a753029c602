//! Appending to the small tables through a DataFusion plan (the run log, check outcomes,
//! ingest records), the Parquet settings every lake file is written with, checkpoints, and
//! streams as DataFrames.
//!
//! The event tables are written without a plan: a day at a time by [`crate::replace_day`],
//! a file at a time by [`crate::append_days`], a whole table by [`crate::overwrite`].
//! DataFusion's own Parquet writer is never used for lake tables: it writes no Delta log.

use std::sync::{Arc, Mutex};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::dataframe::DataFrame;
use datafusion::error::DataFusionError;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::prelude::{SessionContext, cast, col};
use deltalake::DeltaTable;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::parquet::basic::{Compression, ZstdLevel};
use deltalake::parquet::file::properties::WriterProperties;
use deltalake::parquet::schema::types::ColumnPath;
use deltalake::protocol::SaveMode;

use crate::error::{LakeError, Result};
use crate::lake::Lake;
use crate::tables::TableDef;

/// Writes a checkpoint of `table` at its version: readers then load the table from one
/// Parquet file of the log instead of replaying every commit since the last one (a month of
/// daily commits made loading the fact table measurably slower than one file does; see
/// bench/results/2026-11-29-66600000-at-d1b0cb2.md).
pub async fn checkpoint(table: &DeltaTable, name: &str) -> Result<()> {
    if table.version().is_none() {
        return Ok(());
    }
    deltalake::checkpoints::create_checkpoint(table, None)
        .await
        .map_err(|e| LakeError::delta(name.to_string(), e))
}

/// Columns whose values almost never repeat: a dictionary cannot shrink them, and building
/// one (hashing every value until the dictionary page overflows) was the largest single cost
/// of writing a day (see bench/results/2026-11-28-66600000-at-917085d.md).
const NO_DICTIONARY: [&str; 4] = ["event_id", "event_time", "user_session", "session_id"];

/// Parquet settings of every lake file: zstd, row groups small enough to keep the per-partition
/// write buffers bounded, no dictionary for the near-unique columns of the event tables.
pub fn writer_properties() -> WriterProperties {
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(1).expect("zstd level 1 is valid"),
        ))
        .set_max_row_group_row_count(Some(256 * 1024));
    for column in NO_DICTIONARY {
        builder = builder.set_column_dictionary_enabled(ColumnPath::from(column), false);
    }
    builder.build()
}

/// Appends the rows of `input` to the table declared by `def`, in one commit. A table that
/// does not exist yet is created by the same commit, so a failed first write leaves nothing
/// behind.
///
/// The input's columns must be the table's (same names; representation changes such as
/// string views are cast to the declared types).
pub async fn append_table(
    lake: &Lake,
    def: &TableDef,
    input: DataFrame,
    commit: CommitProperties,
) -> Result<DeltaTable> {
    let table = lake.load_or_new(def).await?;
    let input = conform(def, input)?;
    let (state, plan) = input.into_parts();
    let mut builder = table
        .write(Vec::new())
        .with_input_plan(plan)
        .with_session_state(Arc::new(state))
        .with_writer_properties(writer_properties())
        .with_commit_properties(commit)
        .with_table_name(def.qualified_name())
        .with_description(def.description)
        .with_save_mode(SaveMode::Append);
    if let Some(p) = def.partition_by {
        builder = builder.with_partition_columns([p]);
    }
    builder
        .await
        .map_err(|e| LakeError::delta(def.qualified_name(), e))
}

/// Brings `input` to the table's declared column order and types. Only representation
/// changes are allowed (string views to strings, wider SQL results to the declared type); a
/// missing column is an error.
pub(crate) fn conform(def: &TableDef, input: DataFrame) -> Result<DataFrame> {
    let want = def.arrow_schema();
    let got = input.schema().inner().clone();
    if same_columns(&want, &got) {
        return Ok(input);
    }
    let mut exprs = Vec::with_capacity(want.fields().len());
    for field in want.fields() {
        let Ok(found) = got.field_with_name(field.name()) else {
            return Err(LakeError::Inconsistent(format!(
                "rows for {} lack column {}: expected [{}], got [{}]",
                def.qualified_name(),
                field.name(),
                describe(&want),
                describe(&got)
            )));
        };
        let column = col(datafusion::common::Column::new_unqualified(field.name()));
        exprs.push(if found.data_type() == field.data_type() {
            column
        } else {
            cast(column, field.data_type().clone()).alias(field.name())
        });
    }
    Ok(input.select(exprs)?)
}

/// Whether `got` has the columns of `want`: the same names and types, in the same order
/// (nullability aside).
pub(crate) fn same_columns(want: &SchemaRef, got: &SchemaRef) -> bool {
    want.fields().len() == got.fields().len()
        && want
            .fields()
            .iter()
            .zip(got.fields())
            .all(|(w, g)| w.name() == g.name() && w.data_type() == g.data_type())
}

/// `name type, ...`, for messages.
pub(crate) fn describe(schema: &SchemaRef) -> String {
    schema
        .fields()
        .iter()
        .map(|f| format!("{} {}", f.name(), f.data_type()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Turns a stream of record batches into a DataFrame that can be written with [`append_table`] (or [`crate::overwrite`])
/// without first collecting the stream in memory.
pub fn stream_to_dataframe(
    ctx: &SessionContext,
    schema: SchemaRef,
    stream: SendableRecordBatchStream,
) -> Result<DataFrame> {
    let partition = OneShotStream {
        schema: schema.clone(),
        stream: Mutex::new(Some(stream)),
    };
    let table = StreamingTable::try_new(schema, vec![Arc::new(partition)])?;
    Ok(ctx.read_table(Arc::new(table))?)
}

/// A stream that can be executed once.
struct OneShotStream {
    schema: SchemaRef,
    stream: Mutex<Option<SendableRecordBatchStream>>,
}

impl std::fmt::Debug for OneShotStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OneShotStream").finish_non_exhaustive()
    }
}

impl PartitionStream for OneShotStream {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let taken = self.stream.lock().map(|mut s| s.take()).unwrap_or(None);
        match taken {
            Some(stream) => stream,
            None => {
                let schema = self.schema.clone();
                Box::pin(
                    datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(
                        schema,
                        futures::stream::once(async {
                            Err(DataFusionError::Execution(
                                "an input stream was read twice".into(),
                            ))
                        }),
                    ),
                )
            }
        }
    }
}
