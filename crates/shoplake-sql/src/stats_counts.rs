//! Grouped row counts answered from Parquet statistics.
//!
//! "Events per day and type" is the question most often asked of the event tables, and a scan
//! answers it by decoding and hashing every row, 66 M of them on a month, most of the time in
//! the hash table. The event tables are written one file per event type and day
//! ([`TableDef::file_per_value_of`]), so the answer is already in the files' footers, read
//! about ten times faster than the scan (see bench/results/2026-11-29-66600000-at-d1b0cb2.md).
//!
//! [`CountsFromStatistics`] is a logical optimizer rule that rewrites
//!
//! ```text
//! Aggregate: group by [columns], count(<literal>), ...
//!   [Projection of columns] [Filter on partition columns]
//!     TableScan: <lake table>
//! ```
//!
//! into `sum(rows)` over a table of (group values, rows) read by `FileCounts`: one row per
//! row group whose statistics show that each grouped column holds one exact value (or only
//! nulls), and one row per row for the other row groups, which are read as a scan would. The
//! values of partition columns come from the Delta log, filters on them choose the files.
//!
//! Nothing else is rewritten: other aggregates (`DISTINCT`, `FILTER`, any other function),
//! grouping sets, filters on data columns, float columns (statistics order 0.0 and -0.0 apart
//! while grouping does not), tables with deletion vectors or column mapping, and tables where
//! fewer than half the files hold one value of the grouped data columns, by the log's
//! statistics (the footers would answer little, and a scan is as fast).

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::compute::{CastOptions, cast, cast_with_options};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::util::display::FormatOptions;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema, DataFusionError, ScalarValue, TableReference};
use datafusion::datasource::{provider_as_source, source_as_provider};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::functions_aggregate::expr_fn::sum;
use datafusion::logical_expr::execution_props::ExecutionProps;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{Aggregate, Expr, LogicalPlan, TableScan, TableScanBuilder, col};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};
use datafusion::parquet::arrow::ProjectionMask;
use datafusion::parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use datafusion::parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use datafusion::parquet::arrow::async_reader::{AsyncFileReader, ParquetRecordBatchStreamBuilder};
use datafusion::parquet::errors::ParquetError;
use datafusion::parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use datafusion::physical_expr::create_physical_expr;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use deltalake::{ObjectStore, Path};
use futures::FutureExt;
use futures::future::BoxFuture;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};

use crate::provider::LakeTableProvider;
#[cfg(doc)]
use shoplake_lake::tables::TableDef;

/// Casts of partition values that fail on text the type cannot hold (instead of making it
/// null), as a scan would.
const STRICT: CastOptions<'static> = CastOptions {
    safe: false,
    format_options: FormatOptions::new(),
};

/// The column of row counts in the rewritten plan.
const ROWS: &str = "__shoplake_rows";

/// Footers read at once by one output partition.
const FOOTERS_IN_FLIGHT: usize = 8;

/// The optimizer rule: grouped `count(*)` over a lake table, from file statistics (see the
/// module's documentation).
#[derive(Debug, Default)]
pub struct CountsFromStatistics;

impl OptimizerRule for CountsFromStatistics {
    fn name(&self) -> &str {
        "shoplake_counts_from_statistics"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::TopDown)
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> datafusion::error::Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Aggregate(aggregate) = &plan else {
            return Ok(Transformed::no(plan));
        };
        match rewrite(aggregate)? {
            Some(rewritten) => Ok(Transformed::yes(rewritten)),
            None => Ok(Transformed::no(plan)),
        }
    }
}

/// One grouped column: its name, its type in the table's schema, and whether it is a
/// partition column (its value then comes from the log).
#[derive(Debug, Clone)]
struct GroupColumn {
    name: String,
    data_type: DataType,
    nullable: bool,
    partition: bool,
}

/// One data file to count: where it is, and the values of the grouped partition columns
/// (`None` for data columns), as the log writes them.
#[derive(Debug, Clone)]
struct FileToCount {
    path: Path,
    size: u64,
    rows: Option<u64>,
    partition_values: Vec<Option<String>>,
}

/// The rewritten aggregate, or `None` when the plan is not one this rule answers.
fn rewrite(aggregate: &Aggregate) -> datafusion::error::Result<Option<LogicalPlan>> {
    if aggregate.group_expr.is_empty() {
        // DataFusion answers an ungrouped count from the table's statistics already.
        return Ok(None);
    }
    let group_names: Vec<&str> = match aggregate
        .group_expr
        .iter()
        .map(|e| match e {
            Expr::Column(c) => Some(c.name.as_str()),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()
    {
        Some(names) => names,
        None => return Ok(None),
    };
    if !aggregate.aggr_expr.iter().all(is_count_of_rows) {
        return Ok(None);
    }
    let Some((scan, mut filters, alias)) = scan_below(&aggregate.input) else {
        return Ok(None);
    };
    if scan.fetch.is_some() {
        return Ok(None);
    }
    filters.extend(scan.filters.iter().cloned());
    let Ok(provider) = source_as_provider(&scan.source) else {
        return Ok(None);
    };
    let Some(lake_table) = provider.downcast_ref::<LakeTableProvider>() else {
        return Ok(None);
    };
    let Some(plan) = CountPlan::new(lake_table, &group_names, &filters)? else {
        return Ok(None);
    };

    let source = provider_as_source(Arc::new(plan.into_table()?));
    let counts = LogicalPlan::TableScan(
        TableScanBuilder::new(alias.unwrap_or_else(|| scan.table_name.clone()), source).build()?,
    );
    let group_fields = aggregate.group_expr.len();
    let sums = aggregate
        .aggr_expr
        .iter()
        .enumerate()
        .map(|(i, _)| {
            let name = aggregate.schema.field(group_fields + i).name();
            sum(col(ROWS)).alias(name)
        })
        .collect();
    let rewritten = Aggregate::try_new(Arc::new(counts), aggregate.group_expr.clone(), sums)?;
    Ok(Some(LogicalPlan::Aggregate(rewritten)))
}

/// `count(<non-null literal>)`, the form `count(*)` takes: no DISTINCT, FILTER or ORDER BY.
fn is_count_of_rows(expr: &Expr) -> bool {
    let Expr::AggregateFunction(f) = expr else {
        return false;
    };
    let p = &f.params;
    f.func.name() == "count"
        && !p.distinct
        && p.filter.is_none()
        && p.order_by.is_empty()
        && matches!(p.args.as_slice(), [Expr::Literal(v, _)] if !v.is_null())
}

/// The table scan below an aggregate, through projections of plain columns, filters (returned,
/// to be checked by the caller) and table aliases (the outermost returned: the name the
/// aggregate's columns are qualified with).
fn scan_below(plan: &LogicalPlan) -> Option<(&TableScan, Vec<Expr>, Option<TableReference>)> {
    let mut filters = Vec::new();
    let mut alias = None;
    let mut plan = plan;
    loop {
        match plan {
            LogicalPlan::TableScan(scan) => return Some((scan, filters, alias)),
            LogicalPlan::Projection(p) if p.expr.iter().all(|e| matches!(e, Expr::Column(_))) => {
                plan = &p.input;
            }
            LogicalPlan::Filter(f) => {
                filters.extend(split_conjunction(&f.predicate).into_iter().cloned());
                plan = &f.input;
            }
            LogicalPlan::SubqueryAlias(a) => {
                alias.get_or_insert_with(|| a.alias.clone());
                plan = &a.input;
            }
            _ => return None,
        }
    }
}

/// What [`FileCounts`] needs: the grouped columns, the files chosen by the filters, and the
/// store they are in.
struct CountPlan {
    groups: Vec<GroupColumn>,
    files: Vec<FileToCount>,
    store: Arc<dyn ObjectStore>,
}

impl CountPlan {
    /// `None` when the table or the grouped columns are of a kind this rule leaves to a scan.
    fn new(
        lake_table: &LakeTableProvider,
        group_names: &[&str],
        filters: &[Expr],
    ) -> datafusion::error::Result<Option<Self>> {
        let table = lake_table.table();
        let Ok(snapshot) = table.snapshot() else {
            return Ok(None);
        };
        let configuration = snapshot.metadata().configuration();
        let mapped = configuration
            .get("delta.columnMapping.mode")
            .is_some_and(|mode| mode != "none");
        if mapped {
            return Ok(None);
        }
        // In the log's order, the order their values are read in below.
        let partition_columns: Vec<&str> = snapshot
            .metadata()
            .partition_columns()
            .iter()
            .map(String::as_str)
            .collect();
        let schema = lake_table.inner().schema();
        let mut groups = Vec::with_capacity(group_names.len());
        for name in group_names {
            let Ok(field) = schema.field_with_name(name) else {
                return Ok(None);
            };
            let partition = partition_columns.contains(name);
            if !partition && !statistics_group(field.data_type()) {
                return Ok(None);
            }
            groups.push(GroupColumn {
                name: name.to_string(),
                data_type: field.data_type().clone(),
                nullable: field.is_nullable(),
                partition,
            });
        }
        // Filters may only name partition columns: they then choose whole files. They are
        // evaluated here, once per file, so they must be plain (no subquery, no random()).
        for filter in filters {
            let plain = !filter.is_volatile()
                && !filter
                    .exists(|e| {
                        Ok(matches!(
                            e,
                            Expr::ScalarSubquery(_)
                                | Expr::Exists(_)
                                | Expr::InSubquery(_)
                                | Expr::OuterReferenceColumn(..)
                                | Expr::Placeholder(_)
                        ))
                    })
                    .unwrap_or(true);
            if !plain {
                return Ok(None);
            }
            let names_partitions = filter
                .column_refs()
                .iter()
                .all(|c| partition_columns.contains(&c.name.as_str()));
            if !names_partitions {
                return Ok(None);
            }
        }

        let mut files = Vec::new();
        let mut partition_texts: Vec<Vec<Option<String>>> =
            vec![Vec::new(); partition_columns.len()];
        let only_partitions = groups.iter().all(|g| g.partition);
        let mut single_valued = 0usize;
        for view in snapshot.log_data().iter() {
            if view.deletion_vector_descriptor().is_some() {
                return Ok(None);
            }
            let path = view.path();
            if path.contains("://") {
                // A file outside the table's directory (a shallow clone): not for this reader.
                return Ok(None);
            }
            let values = view.partition_values_map();
            for (texts, name) in partition_texts.iter_mut().zip(&partition_columns) {
                texts.push(values.get(*name).cloned().flatten());
            }
            if !only_partitions && single_valued_in_log(view.stats().as_deref(), &groups) {
                single_valued += 1;
            }
            files.push(FileToCount {
                path: view.object_store_path(),
                size: view.size().max(0) as u64,
                rows: view.num_records().map(|n| n as u64),
                partition_values: groups
                    .iter()
                    .map(|g| match g.partition {
                        true => values.get(&g.name).cloned().flatten(),
                        false => None,
                    })
                    .collect(),
            });
        }
        // Footers answer little unless most files hold one value: leave those to a scan.
        if !only_partitions && single_valued * 2 < files.len() {
            return Ok(None);
        }
        if !filters.is_empty() {
            // A filter this evaluation cannot take is left to the scan.
            let Ok(keep) = files_passing(
                &schema,
                &partition_columns,
                partition_texts,
                filters,
                files.len(),
            ) else {
                return Ok(None);
            };
            files = files
                .into_iter()
                .zip(keep)
                .filter_map(|(file, keep)| keep.then_some(file))
                .collect();
        }
        Ok(Some(CountPlan {
            groups,
            files,
            store: table.log_store().object_store(None),
        }))
    }

    /// The table of (group values, rows) the rewritten aggregate sums: two partitions, the
    /// files dealt between them largest first.
    fn into_table(self) -> datafusion::error::Result<StreamingTable> {
        let mut fields: Vec<Field> = self
            .groups
            .iter()
            .map(|g| Field::new(&g.name, g.data_type.clone(), g.nullable))
            .collect();
        fields.push(Field::new(ROWS, DataType::Int64, false));
        let schema: SchemaRef = Arc::new(Schema::new(fields));
        let groups = Arc::new(self.groups);
        let mut files = self.files;
        files.sort_by_key(|f| std::cmp::Reverse(f.size));
        let mut shares: Vec<Vec<FileToCount>> = vec![Vec::new(), Vec::new()];
        let mut bytes = [0u64; 2];
        for file in files {
            let lighter = if bytes[0] <= bytes[1] { 0 } else { 1 };
            bytes[lighter] += file.size;
            shares[lighter].push(file);
        }
        let partitions: Vec<Arc<dyn PartitionStream>> = shares
            .into_iter()
            .map(|files| {
                Arc::new(FileCounts {
                    schema: schema.clone(),
                    store: self.store.clone(),
                    groups: groups.clone(),
                    files: Arc::new(files),
                }) as Arc<dyn PartitionStream>
            })
            .collect();
        StreamingTable::try_new(schema, partitions)
    }
}

/// Types whose Parquet statistics, when min equals max, name the one value grouping sees.
fn statistics_group(data_type: &DataType) -> bool {
    use DataType::*;
    matches!(
        data_type,
        Utf8 | LargeUtf8
            | Utf8View
            | Boolean
            | Int8
            | Int16
            | Int32
            | Int64
            | UInt8
            | UInt16
            | UInt32
            | UInt64
            | Date32
            | Date64
            | Timestamp(_, _)
            | Decimal128(_, _)
    )
}

/// Whether a file's log statistics show one value (and no nulls) in every grouped data column.
/// Only a hint that the footers are worth reading: log statistics may be truncated.
fn single_valued_in_log(stats: Option<&str>, groups: &[GroupColumn]) -> bool {
    let Some(stats) = stats.and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok()) else {
        return false;
    };
    groups.iter().filter(|g| !g.partition).all(|g| {
        let min = &stats["minValues"][&g.name];
        let max = &stats["maxValues"][&g.name];
        !min.is_null() && min == max && stats["nullCount"][&g.name] == 0
    })
}

/// Which files the filters (on partition columns only) keep: each is evaluated over one row
/// per file holding the file's partition values, typed as the table declares them.
fn files_passing(
    schema: &SchemaRef,
    partition_order: &[&str],
    partition_texts: Vec<Vec<Option<String>>>,
    filters: &[Expr],
    file_count: usize,
) -> datafusion::error::Result<Vec<bool>> {
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (name, texts) in partition_order.iter().zip(partition_texts) {
        let field = schema.field_with_name(name)?;
        let texts: ArrayRef = Arc::new(StringArray::from(texts));
        columns.push(cast_with_options(&texts, field.data_type(), &STRICT)?);
        fields.push(Field::new(*name, field.data_type().clone(), true));
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(file_count)),
    )?;
    // Filters above an alias name it, those below the table: columns are matched by name.
    let df_schema = DFSchema::try_from(schema.as_ref().clone())?;
    let props = ExecutionProps::new();
    let mut keep = vec![true; file_count];
    for filter in filters {
        let unqualified = filter
            .clone()
            .transform_up(|e| match e {
                Expr::Column(c) => Ok(Transformed::yes(Expr::Column(Column::new_unqualified(
                    c.name,
                )))),
                other => Ok(Transformed::no(other)),
            })?
            .data;
        let predicate = create_physical_expr(
            &unqualified,
            &df_schema,
            &props,
            &PhysicalPlanningContext::default(),
        )?;
        let result = predicate.evaluate(&batch)?.into_array(file_count)?;
        let result = result.as_boolean_opt().ok_or_else(|| {
            DataFusionError::Internal(format!("filter {filter} is not a boolean"))
        })?;
        for (i, keep) in keep.iter_mut().enumerate() {
            *keep &= result.is_valid(i) && result.value(i);
        }
    }
    Ok(keep)
}

/// One partition of the counts table: for each of its files, a row per row group answered by
/// statistics, then a row per row of the row groups that are not.
#[derive(Debug)]
struct FileCounts {
    schema: SchemaRef,
    store: Arc<dyn ObjectStore>,
    groups: Arc<Vec<GroupColumn>>,
    files: Arc<Vec<FileToCount>>,
}

impl PartitionStream for FileCounts {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let schema = self.schema.clone();
        let store = self.store.clone();
        let groups = self.groups.clone();
        let files = self.files.clone();
        let counted = stream::iter(0..self.files.len())
            .map(move |i| {
                let (store, groups, files, schema) =
                    (store.clone(), groups.clone(), files.clone(), schema.clone());
                async move { count_file(store, &groups, &files[i], schema).await }
            })
            .buffered(FOOTERS_IN_FLIGHT)
            .try_flatten();
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), counted))
    }
}

/// The rows one file contributes, as a stream: its footer has been read (when needed) by the
/// time the future is ready; the row groups that statistics do not answer are read as the
/// stream is polled.
async fn count_file(
    store: Arc<dyn ObjectStore>,
    groups: &[GroupColumn],
    file: &FileToCount,
    schema: SchemaRef,
) -> datafusion::error::Result<BoxStream<'static, datafusion::error::Result<RecordBatch>>> {
    // Partition columns' values, one per grouped column (`None` for data columns).
    let mut constants: Vec<Option<ScalarValue>> = groups
        .iter()
        .zip(&file.partition_values)
        .map(|(g, text)| {
            g.partition
                .then(|| partition_value(text.as_deref(), &g.data_type))
                .transpose()
        })
        .collect::<datafusion::error::Result<_>>()?;

    if groups.iter().all(|g| g.partition) {
        let rows = match file.rows {
            Some(rows) => rows,
            None => footer(&store, file)
                .await?
                .metadata()
                .file_metadata()
                .num_rows() as u64,
        };
        if rows == 0 {
            // An empty file makes no group (a scan sees no row of it).
            return Ok(stream::empty().boxed());
        }
        let values = constants.into_iter().flatten().map(|v| vec![v]).collect();
        let batch = rows_batch(&schema, values, vec![rows as i64])?;
        return Ok(stream::iter([Ok(batch)]).boxed());
    }

    let metadata = footer(&store, file).await?;
    let parquet = metadata.metadata();
    let row_groups = parquet.row_groups();
    for (group, constant) in groups.iter().zip(constants.iter_mut()) {
        if !group.partition && metadata.schema().field_with_name(&group.name).is_err() {
            // A column added after the file was written: null in all of its rows.
            *constant = Some(ScalarValue::try_from(&group.data_type)?);
        }
    }
    // Per grouped column, per row group: the one value its statistics show, if they do.
    let mut known: Vec<Vec<Option<ScalarValue>>> = Vec::with_capacity(groups.len());
    for (group, constant) in groups.iter().zip(&constants) {
        known.push(match constant {
            Some(value) => vec![Some(value.clone()); row_groups.len()],
            None => one_value_per_row_group(&metadata, &group.name, &group.data_type)?,
        });
    }
    let mut from_statistics: Vec<Vec<ScalarValue>> = vec![Vec::new(); groups.len()];
    let mut counts = Vec::new();
    let mut to_read = Vec::new();
    for (i, row_group) in row_groups.iter().enumerate() {
        if row_group.num_rows() == 0 {
            continue;
        }
        if known.iter().all(|values| values[i].is_some()) {
            for (column, values) in from_statistics.iter_mut().zip(&known) {
                column.push(values[i].clone().expect("checked above"));
            }
            counts.push(row_group.num_rows());
        } else {
            to_read.push(i);
        }
    }
    tracing::trace!(
        file = %file.path,
        from_statistics = counts.len(),
        read = to_read.len(),
        "row groups counted"
    );
    let mut batches: Vec<datafusion::error::Result<RecordBatch>> = Vec::new();
    if !counts.is_empty() {
        batches.push(rows_batch(&schema, from_statistics, counts));
    }
    let head = stream::iter(batches);
    if to_read.is_empty() {
        return Ok(head.boxed());
    }

    // The other row groups: their grouped data columns, one row each.
    // The grouped columns the file holds (the others are constants), by their place in it.
    let file_schema = metadata.schema();
    let read: Vec<usize> = groups
        .iter()
        .zip(&constants)
        .filter(|(_, constant)| constant.is_none())
        .map(|(g, _)| file_schema.index_of(&g.name))
        .collect::<std::result::Result<_, _>>()?;
    let mask = ProjectionMask::roots(parquet.file_metadata().schema_descr(), read);
    let reader = StoreReader::new(store, file);
    let rows = ParquetRecordBatchStreamBuilder::new_with_metadata(reader, metadata.clone())
        .with_row_groups(to_read)
        .with_projection(mask)
        .with_batch_size(8192)
        .build()?;
    let groups = groups.to_vec();
    let rows = rows.map(move |batch| {
        let batch = batch?;
        let n = batch.num_rows();
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(groups.len() + 1);
        for (group, constant) in groups.iter().zip(&constants) {
            columns.push(match constant {
                Some(value) => value.to_array_of_size(n)?,
                None => {
                    let column = batch.column_by_name(&group.name).ok_or_else(|| {
                        DataFusionError::Internal(format!("{} was not read", group.name))
                    })?;
                    cast(column, &group.data_type)?
                }
            });
        }
        columns.push(Arc::new(Int64Array::from_value(1, n)));
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
    });
    Ok(head.chain(rows).boxed())
}

/// A file's footer, with the Arrow schema of its columns.
async fn footer(
    store: &Arc<dyn ObjectStore>,
    file: &FileToCount,
) -> datafusion::error::Result<ArrowReaderMetadata> {
    let mut reader = StoreReader::new(store.clone(), file);
    Ok(ArrowReaderMetadata::load_async(&mut reader, ArrowReaderOptions::new()).await?)
}

/// A partition value as the log writes it (text, or none for null), in the table's type.
fn partition_value(
    text: Option<&str>,
    data_type: &DataType,
) -> datafusion::error::Result<ScalarValue> {
    let text: ArrayRef = Arc::new(StringArray::from(vec![text]));
    ScalarValue::try_from_array(&cast_with_options(&text, data_type, &STRICT)?, 0)
}

/// For each row group of a file, the one value of `column` when its statistics prove there is
/// one: exact minimum equal to exact maximum and no nulls, or nothing but nulls.
fn one_value_per_row_group(
    metadata: &ArrowReaderMetadata,
    column: &str,
    data_type: &DataType,
) -> datafusion::error::Result<Vec<Option<ScalarValue>>> {
    let parquet = metadata.metadata();
    let row_groups = parquet.row_groups();
    // A null count the file does not record is unknown, not zero.
    let converter = StatisticsConverter::try_new(
        column,
        metadata.schema(),
        parquet.file_metadata().schema_descr(),
    )?
    .with_missing_null_counts_as_zero(false);
    let mins = converter.row_group_mins(row_groups.iter())?;
    let maxes = converter.row_group_maxes(row_groups.iter())?;
    let min_exact = converter.row_group_is_min_value_exact(row_groups.iter())?;
    let max_exact = converter.row_group_is_max_value_exact(row_groups.iter())?;
    let nulls = converter.row_group_null_counts(row_groups.iter())?;
    let mut values = Vec::with_capacity(row_groups.len());
    for (i, row_group) in row_groups.iter().enumerate() {
        let null_count = nulls.is_valid(i).then(|| nulls.value(i));
        let value = if null_count == Some(row_group.num_rows() as u64) {
            Some(ScalarValue::try_from(data_type)?)
        } else if null_count == Some(0)
            && mins.is_valid(i)
            && maxes.is_valid(i)
            && min_exact.is_valid(i)
            && min_exact.value(i)
            && max_exact.is_valid(i)
            && max_exact.value(i)
        {
            let min = ScalarValue::try_from_array(&mins, i)?;
            let max = ScalarValue::try_from_array(&maxes, i)?;
            (min == max).then(|| min.cast_to(data_type)).transpose()?
        } else {
            None
        };
        values.push(value);
    }
    Ok(values)
}

/// A batch of the counts table from columns of values and the rows each row stands for.
fn rows_batch(
    schema: &SchemaRef,
    values: Vec<Vec<ScalarValue>>,
    rows: Vec<i64>,
) -> datafusion::error::Result<RecordBatch> {
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(values.len() + 1);
    for (column, field) in values.into_iter().zip(schema.fields()) {
        let array = ScalarValue::iter_to_array(column)?;
        columns.push(if array.data_type() == field.data_type() {
            array
        } else {
            cast(&array, field.data_type())?
        });
    }
    columns.push(Arc::new(Int64Array::from(rows)));
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// Reads a data file's byte ranges from the table's object store, for the Parquet reader.
struct StoreReader {
    store: Arc<dyn ObjectStore>,
    path: Path,
    size: u64,
}

impl StoreReader {
    fn new(store: Arc<dyn ObjectStore>, file: &FileToCount) -> Self {
        StoreReader {
            store,
            path: file.path.clone(),
            size: file.size,
        }
    }
}

impl AsyncFileReader for StoreReader {
    fn get_bytes(
        &mut self,
        range: Range<u64>,
    ) -> BoxFuture<'_, datafusion::parquet::errors::Result<Bytes>> {
        async move {
            let mut ranges = self.get_byte_ranges(vec![range]).await?;
            Ok(ranges.pop().unwrap_or_default())
        }
        .boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, datafusion::parquet::errors::Result<Vec<Bytes>>> {
        async move {
            self.store
                .get_ranges(&self.path, &ranges)
                .await
                .map_err(|e| ParquetError::External(Box::new(e)))
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, datafusion::parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self.size;
            // One read of the file's end usually holds the whole footer.
            let metadata = ParquetMetaDataReader::new()
                .with_prefetch_hint(Some(64 * 1024))
                .load_and_finish(&mut *self, size)
                .await?;
            Ok(Arc::new(metadata))
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;
    use datafusion::arrow::array::StringArray;
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::physical_plan::displayable;

    use super::*;
    use crate::catalog::SqlCatalog;
    use shoplake_lake::Lake;
    use shoplake_lake::partitions::partition_files;
    use shoplake_lake::tables;
    use shoplake_lake::testing::{clean_rows as rows, replace_clean_day as replace};

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2020, 4, d).unwrap()
    }

    /// Rows of `clean.events` on `date` with these event types, sorted by type as a run
    /// writes them.
    fn typed_rows(date: NaiveDate, tag: i64, types: &[&str]) -> RecordBatch {
        let batch = rows(date, tag, types.len() as i64, false);
        let schema = batch.schema();
        let mut types = types.to_vec();
        types.sort();
        let mut columns = batch.columns().to_vec();
        columns[schema.index_of("event_type").unwrap()] = Arc::new(StringArray::from(types));
        RecordBatch::try_new(schema, columns).unwrap()
    }

    /// Three days of clean.events, written a file per event type, at least two rows a file
    /// (each row has its own user, so no file holds one user).
    async fn lake(dir: &std::path::Path) -> Lake {
        let lake = Lake::open(dir.to_str().unwrap()).unwrap();
        let def = tables::clean_events();
        let days: [(u32, Vec<&str>); 3] = [
            (
                1,
                vec!["view", "cart", "view", "purchase", "cart", "purchase"],
            ),
            (
                2,
                vec![
                    "view", "view", "cart", "view", "purchase", "cart", "view", "view", "purchase",
                ],
            ),
            (
                3,
                vec![
                    "remove_from_cart",
                    "view",
                    "view",
                    "view",
                    "remove_from_cart",
                ],
            ),
        ];
        let mut table = lake.uninitialized(&def).await.unwrap();
        for (d, types) in days {
            table = replace(
                &lake,
                table,
                day(d),
                vec![typed_rows(day(d), d as i64, &types)],
            )
            .await
            .unwrap();
        }
        lake
    }

    /// The query's result as text, and whether its plan counts from statistics.
    async fn run(catalog: &SqlCatalog, sql: &str) -> (String, bool) {
        let frame = catalog.sql(sql).await.unwrap();
        let plan = frame.clone().create_physical_plan().await.unwrap();
        let shown = displayable(plan.as_ref()).indent(true).to_string();
        let batches = frame.collect().await.unwrap();
        (
            pretty_format_batches(&batches).unwrap().to_string(),
            shown.contains("StreamingTableExec"),
        )
    }

    const BY_DAY_AND_TYPE: &str = "SELECT CAST(event_date AS VARCHAR) AS d, event_type, count(*) AS n \
        FROM clean.events GROUP BY event_date, event_type ORDER BY 1, 2";

    #[tokio::test]
    async fn a_replaced_day_is_written_one_file_per_event_type() {
        let dir = tempfile::tempdir().unwrap();
        let lake = lake(dir.path()).await;
        let table = lake.load(&tables::clean_events()).await.unwrap().unwrap();
        let files: Vec<usize> = partition_files(&table)
            .await
            .unwrap()
            .values()
            .map(|p| p.files)
            .collect();
        // The first day (which created the table) holds 3 types, the others 3 and 2.
        assert_eq!(files, [3, 3, 2]);
    }

    #[tokio::test]
    async fn counts_by_day_and_type_come_from_statistics_and_match_a_scan() {
        let dir = tempfile::tempdir().unwrap();
        let lake = lake(dir.path()).await;
        let catalog = SqlCatalog::open(&lake).await.unwrap();
        let (counts, rewritten) = run(&catalog, BY_DAY_AND_TYPE).await;
        assert!(rewritten);
        let expected = [
            "+------------+------------------+---+",
            "| d          | event_type       | n |",
            "+------------+------------------+---+",
            "| 2020-04-01 | cart             | 2 |",
            "| 2020-04-01 | purchase         | 2 |",
            "| 2020-04-01 | view             | 2 |",
            "| 2020-04-02 | cart             | 2 |",
            "| 2020-04-02 | purchase         | 2 |",
            "| 2020-04-02 | view             | 5 |",
            "| 2020-04-03 | remove_from_cart | 2 |",
            "| 2020-04-03 | view             | 3 |",
            "+------------+------------------+---+",
        ];
        assert_eq!(counts, expected.join("\n"));
        // The same counts by a scan: count(column) is not rewritten.
        let scan = BY_DAY_AND_TYPE.replace("count(*)", "count(event_id)");
        let (scanned, rewritten) = run(&catalog, &scan).await;
        assert!(!rewritten);
        assert_eq!(scanned, counts);

        // By day alone: the log's row counts.
        let sql = "SELECT event_date, count(*) AS n, count(1) AS m FROM clean.events \
            GROUP BY event_date ORDER BY event_date";
        let (by_day, rewritten) = run(&catalog, sql).await;
        assert!(rewritten);
        assert!(by_day.contains("| 2020-04-01 | 6 | 6 |"), "{by_day}");
        assert!(by_day.contains("| 2020-04-02 | 9 | 9 |"), "{by_day}");
        assert!(by_day.contains("| 2020-04-03 | 5 | 5 |"), "{by_day}");
    }

    /// A file of three row groups (two rows each): one value, two values, only nulls.
    #[test]
    fn statistics_name_a_value_only_when_they_prove_it() {
        use datafusion::parquet::arrow::ArrowWriter;
        use datafusion::parquet::file::properties::WriterProperties;

        let schema = Arc::new(Schema::new(vec![Field::new("t", DataType::Utf8, true)]));
        let values =
            StringArray::from(vec![Some("a"), Some("a"), Some("a"), Some("b"), None, None]);
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(values)]).unwrap();
        let mut bytes = Vec::new();
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(2))
            .build();
        let mut writer = ArrowWriter::try_new(&mut bytes, schema, Some(props)).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        let metadata =
            ArrowReaderMetadata::load(&bytes::Bytes::from(bytes), ArrowReaderOptions::new())
                .unwrap();
        let found = one_value_per_row_group(&metadata, "t", &DataType::Utf8View).unwrap();
        assert_eq!(
            found,
            [
                Some(ScalarValue::Utf8View(Some("a".into()))),
                None,
                Some(ScalarValue::Utf8View(None)),
            ]
        );
    }

    #[tokio::test]
    async fn a_table_alias_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let lake = lake(dir.path()).await;
        let catalog = SqlCatalog::open(&lake).await.unwrap();
        let sql = "SELECT f.event_type, count(*) AS n FROM clean.events AS f \
            WHERE f.event_date = DATE '2020-04-03' GROUP BY f.event_type ORDER BY 1";
        let (counts, rewritten) = run(&catalog, sql).await;
        assert!(rewritten);
        assert_eq!(
            run(&catalog, &sql.replace("count(*)", "count(f.event_id)"))
                .await
                .0,
            counts
        );
        assert!(counts.contains("| remove_from_cart | 2 |"), "{counts}");
        assert!(counts.contains("| view             | 3 |"), "{counts}");
    }

    #[tokio::test]
    async fn truncated_statistics_are_not_taken_for_a_value() {
        let dir = tempfile::tempdir().unwrap();
        let lake = lake(dir.path()).await;
        // Two types longer than the 64 bytes Parquet statistics keep, alike in those 64:
        // their files' statistics are inexact, so their rows are read and told apart.
        let long = |c: &str| format!("{}{c}", "x".repeat(80));
        let (a, b) = (long("a"), long("b"));
        let table = lake.load(&tables::clean_events()).await.unwrap().unwrap();
        let rows = typed_rows(day(4), 4, &[&a, &b, &a]);
        replace(&lake, table, day(4), vec![rows]).await.unwrap();
        let catalog = SqlCatalog::open(&lake).await.unwrap();
        let sql = "SELECT event_type, count(*) AS n FROM clean.events \
            WHERE event_date = DATE '2020-04-04' GROUP BY event_type ORDER BY 1";
        let (counts, rewritten) = run(&catalog, sql).await;
        assert!(rewritten);
        assert!(counts.contains(&format!("| {a} | 2 |")), "{counts}");
        assert!(counts.contains(&format!("| {b} | 1 |")), "{counts}");
    }

    #[tokio::test]
    async fn filters_on_the_day_choose_files_and_others_leave_the_scan() {
        let dir = tempfile::tempdir().unwrap();
        let lake = lake(dir.path()).await;
        let catalog = SqlCatalog::open(&lake).await.unwrap();
        let sql = "SELECT event_type, count(*) AS n FROM clean.events \
            WHERE event_date >= DATE '2020-04-02' AND event_date <> DATE '2020-04-03' \
            GROUP BY event_type ORDER BY event_type";
        let (counts, rewritten) = run(&catalog, sql).await;
        assert!(rewritten);
        let scan = sql.replace("count(*)", "count(event_id)");
        assert_eq!(run(&catalog, &scan).await.0, counts);
        assert!(counts.contains("| cart       | 2 |"), "{counts}");
        assert!(counts.contains("| view       | 5 |"), "{counts}");

        // A filter on a data column, or a grouped column with many values: a scan.
        for sql in [
            "SELECT event_date, count(*) FROM clean.events WHERE event_type = 'view' \
             GROUP BY event_date ORDER BY 1",
            "SELECT user_id, count(*) FROM clean.events GROUP BY user_id ORDER BY 1",
            "SELECT event_type, count(DISTINCT user_id) FROM clean.events GROUP BY 1",
        ] {
            let (_, rewritten) = run(&catalog, sql).await;
            assert!(!rewritten, "{sql}");
        }
        let (views, _) = run(
            &catalog,
            "SELECT event_date, count(*) AS n FROM clean.events WHERE event_type = 'view' \
             GROUP BY event_date ORDER BY 1",
        )
        .await;
        assert!(views.contains("| 2020-04-03 | 3 |"), "{views}");
    }
}
