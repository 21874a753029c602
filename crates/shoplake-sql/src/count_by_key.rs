//! Counting rows by one integer column (`SELECT k, count(*) ... GROUP BY k`), the shape of
//! most "top N" questions (top products by purchases, busiest users, longest sessions).
//!
//! DataFusion groups in two phases: each core interns every row's key in a hash table whose
//! entries point into separate vectors of keys and counts, emits its groups, which are hashed
//! again to be sent to the core that owns them, and interned again there. On the month's
//! fact, counting 1.0 M purchases by 115 K products cost about a third of the query's CPU,
//! much of it in page faults of the tables and emitted batches of a fresh process.
//!
//! [`CountByKeyExec`] counts each input partition on its own task, in one pass, into one
//! (key, count) hash table (hashbrown's, on a 64-bit mix of the key); the partitions' tables
//! are then merged once, the smaller into the larger.
//! Memory is taken from the session's pool; when the pool refuses, the operator drops its
//! tables and runs the aggregation it replaced (DataFusion's, which spills), so a query never
//! fails for using it.
//!
//! [`CountByIntegerKey`] is the physical optimizer rule that puts it in place of an
//! aggregation grouped by one integer column whose aggregates are all plain counts (of rows,
//! or of the key), where the consumer does not need the groups hash-partitioned or ordered.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type, SchemaRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::runtime::SpawnedTask;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DataFusionError, Result, internal_err};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::expressions::{Column, Literal};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::execution_plan::{
    Boundedness, ChildrenPropertiesMode, EmissionType, ReplaceChildrenOptions, reset_plan_states,
};
use datafusion::physical_plan::metrics::{
    BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet, Time,
};
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, ExecutionPlanProperties,
    InputOrderMode, Partitioning, PlanProperties,
};
use futures::stream::{self, BoxStream, FuturesUnordered, StreamExt, TryStreamExt};
use hashbrown::HashTable;
use hashbrown::hash_table::Entry;

/// What one count counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Counted {
    /// Every row: `count(*)`, `count(1)`.
    Rows,
    /// Rows whose key is not null: `count(k)`.
    Keys,
}

/// Counts the rows of `input` by the integer column `key`; one output partition.
#[derive(Debug)]
pub struct CountByKeyExec {
    input: Arc<dyn ExecutionPlan>,
    key: Arc<Column>,
    counts: Vec<(Counted, String)>,
    /// The aggregation this replaces, run instead when the memory pool refuses the tables.
    fallback: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl CountByKeyExec {
    fn new(
        input: Arc<dyn ExecutionPlan>,
        key: Arc<Column>,
        counts: Vec<(Counted, String)>,
        fallback: Arc<dyn ExecutionPlan>,
    ) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(fallback.schema()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Final,
            Boundedness::Bounded,
        );
        CountByKeyExec {
            input,
            key,
            counts,
            fallback,
            properties: Arc::new(properties),
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }
}

impl DisplayAs for CountByKeyExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let counts: Vec<&str> = self.counts.iter().map(|(_, name)| name.as_str()).collect();
        match t {
            DisplayFormatType::Default | DisplayFormatType::Verbose => write!(
                f,
                "CountByKeyExec: key={}, counts=[{}]",
                self.key,
                counts.join(", ")
            ),
            DisplayFormatType::TreeRender => write!(f, "key={}", self.key),
        }
    }
}

impl ExecutionPlan for CountByKeyExec {
    fn name(&self) -> &str {
        "CountByKeyExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        let key: Arc<dyn PhysicalExpr> = self.key.clone();
        f(&key)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return internal_err!("CountByKeyExec has one input, got {}", children.len());
        }
        let input = children.swap_remove(0);
        // The fallback reads the same input: it follows the new one.
        let old = &self.input;
        let fallback = self
            .fallback
            .clone()
            .transform_down(|node| {
                Ok(if Arc::ptr_eq(&node, old) {
                    Transformed::new(input.clone(), true, TreeNodeRecursion::Jump)
                } else {
                    Transformed::no(node)
                })
            })?
            .data;
        Ok(Arc::new(CountByKeyExec::new(
            input,
            self.key.clone(),
            self.counts.clone(),
            fallback,
        )))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return internal_err!("CountByKeyExec has one partition, not {partition}");
        }
        let schema = self.schema();
        let run = Run {
            input: self.input.clone(),
            key: self.key.index(),
            counts: self.counts.iter().map(|(c, _)| *c).collect(),
            fallback: self.fallback.clone(),
            schema: schema.clone(),
            metrics: BaselineMetrics::new(&self.metrics, partition),
            context,
        };
        let batches = stream::once(run.execute()).try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, batches)))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// One execution of [`CountByKeyExec`].
struct Run {
    input: Arc<dyn ExecutionPlan>,
    key: usize,
    counts: Vec<Counted>,
    fallback: Arc<dyn ExecutionPlan>,
    schema: SchemaRef,
    metrics: BaselineMetrics,
    context: Arc<TaskContext>,
}

impl Run {
    async fn execute(self) -> Result<BoxStream<'static, Result<RecordBatch>>> {
        // A task per input partition, so that every core reads and counts.
        let partitions = self.input.output_partitioning().partition_count();
        let mut tasks = Vec::with_capacity(partitions);
        for partition in 0..partitions {
            let input = self.input.execute(partition, self.context.clone())?;
            let reservation = MemoryConsumer::new(format!("CountByKeyExec[{partition}]"))
                .register(self.context.memory_pool());
            let timer = self.metrics.elapsed_compute().clone();
            let key = self.key;
            tasks.push(SpawnedTask::spawn(async move {
                count_partition(input, key, reservation, timer).await
            }));
        }
        // Joined as they finish, so that a refusal or an error stops the others (dropping a
        // task aborts it) instead of waiting for them. The tallies' memory stays reserved
        // until the output is built.
        let mut running: FuturesUnordered<_> =
            tasks.into_iter().map(SpawnedTask::join_unwind).collect();
        let mut tallies = Vec::with_capacity(partitions);
        let mut reservations = Vec::with_capacity(partitions);
        let mut refused = false;
        while let Some(joined) = running.next().await {
            match joined.map_err(|e| DataFusionError::External(Box::new(e)))?? {
                Some((tally, reservation)) => {
                    tallies.push(tally);
                    reservations.push(reservation);
                }
                None => {
                    refused = true;
                    break;
                }
            }
        }
        drop(running);
        let elapsed = self.metrics.elapsed_compute().clone();
        let timer = elapsed.timer();
        let merged = merge(tallies);
        // The output (a key and a count per group and count) is built before the tables go.
        let output_bytes = merged.groups() * 8 * (1 + self.counts.len());
        refused = refused || !reserve_merged(&reservations, merged.bytes() + output_bytes);
        if refused {
            drop((merged, reservations));
            tracing::debug!(
                "CountByKeyExec: the memory pool refused the counts; aggregating again"
            );
            return self.run_fallback();
        }
        let batches = self.output(&merged)?;
        timer.done();
        drop((merged, reservations));
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        self.metrics.record_output(rows);
        self.metrics.done();
        Ok(stream::iter(batches.into_iter().map(Ok)).boxed())
    }

    fn run_fallback(self) -> Result<BoxStream<'static, Result<RecordBatch>>> {
        // The fallback shares its input's nodes with this run, which has executed them: some
        // keep state (a repartition's channels, a join's build side) and cannot run twice.
        let fallback = reset_plan_states(self.fallback)?;
        let plan = if fallback.output_partitioning().partition_count() == 1 {
            fallback
        } else {
            Arc::new(CoalescePartitionsExec::new(fallback))
        };
        Ok(plan.execute(0, self.context)?.boxed())
    }

    /// The counts, a batch of the session's batch size at a time.
    fn output(&self, merged: &Tally) -> Result<Vec<RecordBatch>> {
        let groups = merged.groups();
        let batch_size = self.context.session_config().batch_size().max(1);
        let mut batches = Vec::with_capacity(groups.div_ceil(batch_size));
        // Each full batch takes the vectors' memory as its arrays; the next starts at full size.
        let fresh = || Vec::with_capacity(batch_size.min(groups));
        let (mut keys, mut counts) = (fresh(), fresh());
        for &(key, count) in merged.table.iter() {
            keys.push(key);
            counts.push(count as i64);
            if keys.len() == batch_size {
                let full = (
                    std::mem::replace(&mut keys, fresh()),
                    std::mem::replace(&mut counts, fresh()),
                );
                batches.push(self.batch(full.0, full.1, None)?);
            }
        }
        let nulls = (merged.nulls > 0).then_some(merged.nulls as i64);
        if !keys.is_empty() || nulls.is_some() {
            batches.push(self.batch(keys, counts, nulls)?);
        }
        Ok(batches)
    }

    /// A batch of `keys` and their counts, then, when `nulls` is given, the group of rows
    /// with a null key.
    fn batch(
        &self,
        mut keys: Vec<i64>,
        mut rows: Vec<i64>,
        nulls: Option<i64>,
    ) -> Result<RecordBatch> {
        let groups = keys.len();
        // The null group goes last, as a key slot marked null.
        let validity = nulls.map(|n| {
            keys.push(0);
            rows.push(n);
            NullBuffer::from_iter((0..=groups).map(|i| i < groups))
        });
        let key_column: ArrayRef = Arc::new(Int64Array::new(keys.into(), validity));
        let key_type = self.schema.field(0).data_type();
        let key_column = if key_type == &DataType::Int64 {
            key_column
        } else {
            cast(&key_column, key_type)?
        };
        // count(key) is count(*) but for the null group, whose count of keys is 0.
        let non_null_keys: Option<ArrayRef> = self.counts.contains(&Counted::Keys).then(|| {
            let mut keys_counted = rows.clone();
            if nulls.is_some() {
                keys_counted[groups] = 0;
            }
            Arc::new(Int64Array::from(keys_counted)) as ArrayRef
        });
        let rows: ArrayRef = Arc::new(Int64Array::from(rows));
        let mut columns = vec![key_column];
        columns.extend(self.counts.iter().map(|c| match (c, &non_null_keys) {
            (Counted::Keys, Some(keys_counted)) => keys_counted.clone(),
            _ => rows.clone(),
        }));
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

/// Moves the partitions' reservations into the first one, resized to `bytes` (the merged
/// counts, which take at most about what the partitions held, and the output); false when the
/// pool refuses the difference.
fn reserve_merged(reservations: &[MemoryReservation], bytes: usize) -> bool {
    let Some((first, others)) = reservations.split_first() else {
        return true;
    };
    let held: usize = reservations.iter().map(|r| r.size()).sum();
    if bytes > held && first.try_grow(bytes - held).is_err() {
        return false;
    }
    others.iter().for_each(|r| {
        r.free();
    });
    first.resize(bytes);
    true
}

/// The partitions' counts in one tally.
fn merge(tallies: Vec<Tally>) -> Tally {
    let mut tallies = tallies.into_iter();
    let mut merged = tallies.next().unwrap_or_default();
    for tally in tallies {
        merged.absorb(tally);
    }
    merged
}

/// Counts one input partition, with the memory reserved for the counts. `None` when the
/// memory pool refused them.
async fn count_partition(
    mut input: SendableRecordBatchStream,
    key: usize,
    reservation: MemoryReservation,
    timer: Time,
) -> Result<Option<(Tally, MemoryReservation)>> {
    let mut tally = Tally::default();
    while let Some(batch) = input.next().await {
        let batch = batch?;
        let _timer = timer.timer();
        let column = batch.column(key);
        let keys = if column.data_type() == &DataType::Int64 {
            column.clone()
        } else {
            cast(column, &DataType::Int64)?
        };
        let grew = tally.add(keys.as_primitive::<Int64Type>());
        if grew && reservation.try_resize(tally.bytes()).is_err() {
            return Ok(None);
        }
    }
    Ok(Some((tally, reservation)))
}

/// The counts of one partition: a (key, count) hash table, and the rows whose key is null.
///
/// hashbrown's table finds a key by comparing 16 one-byte tags at once. On the month's 1.0 M
/// purchase keys it took little more than half the time of open addressing with linear
/// probing, whether or not the keys were first buffered by bucket so that each bucket's table
/// would be counted into while in cache (the probe loop's branches mispredict on every other
/// key; see bench/results/2026-11-29-66600000-at-b164557.md).
#[derive(Default)]
struct Tally {
    /// (key, count) entries, hashed by [`mix`] of the key: hashbrown takes the slot from the
    /// low bits of the hash and the tag from the top seven, and the mix spreads every bit of
    /// the key over both.
    table: HashTable<(i64, u64)>,
    nulls: u64,
}

impl Tally {
    /// Adds `n` rows of `key`.
    fn count(&mut self, key: i64, n: u64) {
        match self.table.entry(mix(key), |e| e.0 == key, |e| mix(e.0)) {
            Entry::Occupied(mut entry) => entry.get_mut().1 += n,
            Entry::Vacant(entry) => {
                entry.insert((key, n));
            }
        }
    }

    /// Adds a batch's keys; true when the table grew.
    fn add(&mut self, keys: &Int64Array) -> bool {
        let before = self.table.capacity();
        match keys.nulls().filter(|n| n.null_count() > 0) {
            None => keys.values().iter().for_each(|&key| self.count(key, 1)),
            Some(valid) => {
                for (i, &key) in keys.values().iter().enumerate() {
                    if valid.is_valid(i) {
                        self.count(key, 1);
                    }
                }
                self.nulls += valid.null_count() as u64;
            }
        }
        self.table.capacity() != before
    }

    /// Adds another partition's counts to these: the smaller table into the larger.
    fn absorb(&mut self, mut other: Tally) {
        if other.table.len() > self.table.len() {
            std::mem::swap(&mut self.table, &mut other.table);
        }
        for (key, count) in other.table {
            self.count(key, count);
        }
        self.nulls += other.nulls;
    }

    fn groups(&self) -> usize {
        self.table.len()
    }

    /// Bytes held by the table.
    fn bytes(&self) -> usize {
        self.table.allocation_size()
    }
}

/// A 64-bit mix of the key (MurmurHash3's finaliser): every output bit depends on every input
/// bit, so that the low bits (the slot) spread sequential and patterned ids.
fn mix(key: i64) -> u64 {
    let mut x = key as u64;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// The physical optimizer rule that plans [`CountByKeyExec`] (see the module's description).
#[derive(Debug, Default)]
pub struct CountByIntegerKey;

impl PhysicalOptimizerRule for CountByIntegerKey {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        rewrite(plan, true)
    }

    fn name(&self) -> &str {
        "CountByIntegerKey"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `plan` with its eligible aggregations replaced. `free` says that nothing above needs
/// `plan`'s output partitioned in a particular way: [`CountByKeyExec`] gives one partition,
/// where DataFusion's final aggregation gives the groups hash-partitioned, which a
/// partitioned join above (through projections, filters...) may rely on.
fn rewrite(plan: Arc<dyn ExecutionPlan>, free: bool) -> Result<Arc<dyn ExecutionPlan>> {
    if free && let Some(replaced) = replacement(&plan)? {
        // The counting reads its input whatever its partitioning.
        let input = replaced.children()[0].clone();
        let rewritten = rewrite(input.clone(), true)?;
        return if Arc::ptr_eq(&rewritten, &input) {
            Ok(replaced)
        } else {
            let recompute = ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute);
            replaced.replace_children(vec![rewritten], recompute)
        };
    }
    let children = plan.children();
    if children.is_empty() {
        return Ok(plan);
    }
    let distributions = plan.input_distribution_requirements();
    // These make their own partitioning from any input's.
    let repartitions = plan.is::<RepartitionExec>()
        || plan.is::<CoalescePartitionsExec>()
        || plan.is::<SortPreservingMergeExec>();
    let single_input = children.len() == 1;
    let mut changed = false;
    let mut new_children = Vec::with_capacity(children.len());
    for (i, child) in children.into_iter().enumerate() {
        // A node of several inputs may need them partitioned alike (joins, interleaves),
        // whatever it declares for each; one that gathers an input into one partition does not.
        let child_free = match distributions.child_distribution(i) {
            Some(Distribution::SinglePartition) => true,
            Some(Distribution::UnspecifiedDistribution) => single_input && (free || repartitions),
            _ => false,
        };
        let rewritten = rewrite(child.clone(), child_free)?;
        changed |= !Arc::ptr_eq(&rewritten, child);
        new_children.push(rewritten);
    }
    if !changed {
        return Ok(plan);
    }
    let recompute = ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute);
    plan.replace_children(new_children, recompute)
}

/// A [`CountByKeyExec`] for `plan` when it is an aggregation it can replace.
fn replacement(plan: &Arc<dyn ExecutionPlan>) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let Some(top) = plan.downcast_ref::<AggregateExec>() else {
        return Ok(None);
    };
    // Nothing above can rely on an order of the groups (the counts come out in none).
    if top.properties().output_ordering().is_some() {
        return Ok(None);
    }
    // The aggregation that reads the rows: the partial one below a final one, or the single one.
    let rows_aggregate = match top.mode() {
        AggregateMode::Single | AggregateMode::SinglePartitioned => top,
        AggregateMode::Final | AggregateMode::FinalPartitioned => {
            let mut below = top.input();
            while below.is::<RepartitionExec>() || below.is::<CoalescePartitionsExec>() {
                below = below.children()[0];
            }
            match below.downcast_ref::<AggregateExec>() {
                Some(partial) if *partial.mode() == AggregateMode::Partial => partial,
                _ => return Ok(None),
            }
        }
        _ => return Ok(None),
    };
    for aggregate in [top, rows_aggregate] {
        if aggregate.limit_options().is_some()
            || !aggregate.dynamic_expressions_produced().is_empty()
            || *aggregate.input_order_mode() != InputOrderMode::Linear
            || aggregate.filter_expr().iter().any(Option::is_some)
        {
            return Ok(None);
        }
    }
    if top.aggr_expr().len() != rows_aggregate.aggr_expr().len()
        || top
            .aggr_expr()
            .iter()
            .zip(rows_aggregate.aggr_expr())
            .any(|(a, b)| a != b)
    {
        return Ok(None);
    }
    let group = rows_aggregate.group_expr();
    if group.has_grouping_set() || !group.null_expr().is_empty() || group.expr().len() != 1 {
        return Ok(None);
    }
    let Some(key) = group.expr()[0].0.downcast_ref::<Column>() else {
        return Ok(None);
    };
    let input = rows_aggregate.input();
    let key_type = input.schema().field(key.index()).data_type().clone();
    if !fits_i64(&key_type) {
        return Ok(None);
    }
    let mut counts = Vec::new();
    for aggregate in rows_aggregate.aggr_expr() {
        if aggregate.fun().name() != "count"
            || aggregate.is_distinct()
            || !aggregate.order_bys().is_empty()
        {
            return Ok(None);
        }
        let counted = match aggregate.expressions().as_slice() {
            [arg] => match (arg.downcast_ref::<Literal>(), arg.downcast_ref::<Column>()) {
                (Some(literal), _) if !literal.value().is_null() => Counted::Rows,
                (_, Some(column)) if column.index() == key.index() => Counted::Keys,
                _ => return Ok(None),
            },
            _ => return Ok(None),
        };
        counts.push((counted, aggregate.name().to_string()));
    }
    // The replaced node's output, which the exec must produce exactly.
    let schema = top.schema();
    if schema.fields().len() != counts.len() + 1
        || schema.field(0).data_type() != &key_type
        || schema.fields()[1..]
            .iter()
            .any(|f| f.data_type() != &DataType::Int64)
    {
        return Ok(None);
    }
    Ok(Some(Arc::new(CountByKeyExec::new(
        input.clone(),
        Arc::new(key.clone()),
        counts,
        plan.clone(),
    ))))
}

/// Integer types whose every value is an i64.
fn fits_i64(data_type: &DataType) -> bool {
    use DataType::*;
    matches!(
        data_type,
        Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32
    )
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use datafusion::arrow::array::{Int32Array, StringArray};
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::catalog::streaming::StreamingTable;
    use datafusion::datasource::MemTable;
    use datafusion::execution::memory_pool::GreedyMemoryPool;
    use datafusion::execution::runtime_env::RuntimeEnvBuilder;
    use datafusion::execution::session_state::SessionStateBuilder;
    use datafusion::physical_plan::streaming::PartitionStream;
    use datafusion::physical_plan::{collect, displayable};
    use datafusion::prelude::{SessionConfig, SessionContext};

    use super::*;

    /// Pseudo-random numbers, the same on every run.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            self.0 >> 33
        }
    }

    /// `rows` rows in three partitions: `k` (Int64, nulls every 97th row, skewed, with the
    /// extreme values), `k32` (Int32), `s` (text), `x` (Int64).
    fn table(rows: usize, distinct: u64) -> MemTable {
        let (schema, partitions) = partitions(rows, distinct);
        MemTable::try_new(schema, partitions).unwrap()
    }

    fn partitions(rows: usize, distinct: u64) -> (SchemaRef, Vec<Vec<RecordBatch>>) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("k32", DataType::Int32, false),
            Field::new("s", DataType::Utf8, false),
            Field::new("x", DataType::Int64, false),
        ]));
        let mut rng = Lcg(7);
        let mut partitions = vec![Vec::new(), Vec::new(), Vec::new()];
        let mut row = 0;
        let mut part = 0;
        while row < rows {
            let n = (1 + rng.next() as usize % 3000).min(rows - row);
            let keys: Int64Array = (0..n)
                .map(|i| match (row + i) % 97 {
                    0 => None,
                    1 => Some(i64::MIN),
                    2 => Some(i64::MAX),
                    // Half the rows on a tenth of the keys.
                    r if r % 2 == 0 => Some((rng.next() % (distinct / 10 + 1)) as i64 - 3),
                    _ => Some((rng.next() % distinct) as i64 * 1_000_003 - 5_000),
                })
                .collect();
            let small: Int32Array = (0..n).map(|_| (rng.next() % 500) as i32 - 250).collect();
            let texts: StringArray = (0..n)
                .map(|_| Some(["a", "b", "c"][rng.next() as usize % 3]))
                .collect();
            let xs: Int64Array = (0..n).map(|_| Some(rng.next() as i64 % 100)).collect();
            let columns: Vec<ArrayRef> = vec![
                Arc::new(keys),
                Arc::new(small),
                Arc::new(texts),
                Arc::new(xs),
            ];
            partitions[part % 3].push(RecordBatch::try_new(schema.clone(), columns).unwrap());
            part += 1;
            row += n;
        }
        (schema, partitions)
    }

    fn config() -> SessionConfig {
        SessionConfig::new()
            .with_target_partitions(2)
            .with_batch_size(1000)
    }

    /// A session with the rule (`with_rule`) or without, over `t`.
    fn session(t: MemTable, with_rule: bool, pool_bytes: Option<usize>) -> SessionContext {
        session_with(config(), t, with_rule, pool_bytes)
    }

    fn session_with(
        config: SessionConfig,
        t: MemTable,
        with_rule: bool,
        pool_bytes: Option<usize>,
    ) -> SessionContext {
        let mut runtime = RuntimeEnvBuilder::new();
        if let Some(bytes) = pool_bytes {
            runtime = runtime.with_memory_pool(Arc::new(GreedyMemoryPool::new(bytes)));
        }
        let mut state = SessionStateBuilder::new()
            .with_default_features()
            .with_config(config)
            .with_runtime_env(runtime.build_arc().unwrap());
        if with_rule {
            state = state.with_physical_optimizer_rule(Arc::new(CountByIntegerKey));
        }
        let ctx = SessionContext::new_with_state(state.build());
        ctx.register_table("t", Arc::new(t)).unwrap();
        ctx
    }

    /// The query's result as text, and its plan, and the plan's count operator when it has one.
    async fn run(
        ctx: &SessionContext,
        sql: &str,
    ) -> (String, String, Option<Arc<dyn ExecutionPlan>>) {
        let plan = ctx
            .sql(sql)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let batches = collect(plan.clone(), ctx.task_ctx()).await.unwrap();
        let text = pretty_format_batches(&batches).unwrap().to_string();
        let shown = displayable(plan.as_ref()).indent(true).to_string();
        let mut found = None;
        plan.apply(|node| {
            if node.is::<CountByKeyExec>() {
                found = Some(node.clone());
            }
            Ok(TreeNodeRecursion::Continue)
        })
        .unwrap();
        (text, shown, found)
    }

    fn counted_rows(exec: &Arc<dyn ExecutionPlan>) -> usize {
        exec.metrics().unwrap().output_rows().unwrap()
    }

    #[tokio::test]
    async fn counts_equal_datafusions_aggregation() {
        let queries = [
            // The top-N shape.
            "SELECT k, count(*) AS n FROM t GROUP BY k ORDER BY n DESC, k LIMIT 20",
            // Every group, the null key's among them, and the three kinds of count.
            "SELECT k, count(*) AS n, count(k) AS keys, count(1) AS ones FROM t \
             GROUP BY k ORDER BY k NULLS FIRST",
            // A narrower key type, a filter below, the groups alone, an expression above.
            "SELECT k32, count(*) FROM t GROUP BY k32 ORDER BY 1",
            "SELECT k, count(*) FROM t WHERE s = 'a' AND x > 10 GROUP BY k ORDER BY 1",
            "SELECT k FROM t GROUP BY k ORDER BY k",
            "SELECT count(*), sum(n), max(n) FROM (SELECT k, count(*) AS n FROM t GROUP BY k)",
            "SELECT k, n FROM (SELECT k, count(*) AS n FROM t GROUP BY k) WHERE n > 3 ORDER BY k",
            // Both sides of a join (collected in one partition).
            "SELECT a.k, a.n, b.n FROM (SELECT k, count(*) AS n FROM t GROUP BY k) a \
             JOIN (SELECT k32 AS k, count(*) AS n FROM t GROUP BY k32) b ON a.k = b.k ORDER BY 1",
        ];
        for sql in queries {
            let (want, plain_plan, none) =
                run(&session(table(60_000, 9_000), false, None), sql).await;
            assert!(none.is_none(), "{plain_plan}");
            let (got, plan, exec) = run(&session(table(60_000, 9_000), true, None), sql).await;
            assert_eq!(got, want, "{sql}\n{plan}");
            let exec = exec.unwrap_or_else(|| panic!("not counted by key: {sql}\n{plan}"));
            assert!(counted_rows(&exec) > 0, "{plan}");
        }
    }

    #[tokio::test]
    async fn other_aggregations_keep_datafusions_plan() {
        let queries = [
            "SELECT k, k32, count(*) FROM t GROUP BY k, k32 ORDER BY 1, 2",
            "SELECT k, sum(x) FROM t GROUP BY k ORDER BY 1",
            "SELECT k, count(x) FROM t GROUP BY k ORDER BY 1",
            "SELECT k, count(DISTINCT s) FROM t GROUP BY k ORDER BY 1",
            "SELECT k, count(*) FILTER (WHERE x > 5) FROM t GROUP BY k ORDER BY 1",
            "SELECT s, count(*) FROM t GROUP BY s ORDER BY 1",
            "SELECT k + 1, count(*) FROM t GROUP BY k + 1 ORDER BY 1",
            "SELECT k32, count(*) FROM t GROUP BY ROLLUP (k32) ORDER BY 1",
        ];
        for sql in queries {
            let (want, _, _) = run(&session(table(20_000, 3_000), false, None), sql).await;
            let (got, plan, exec) = run(&session(table(20_000, 3_000), true, None), sql).await;
            assert!(exec.is_none(), "{sql}\n{plan}");
            assert_eq!(got, want, "{sql}");
        }
    }

    #[tokio::test]
    async fn groups_a_partitioned_join_needs_stay_partitioned() {
        let sql = "SELECT a.k, a.n, b.n FROM (SELECT k, count(*) AS n FROM t GROUP BY k) a \
                   JOIN (SELECT k, count(*) AS n FROM t WHERE x < 50 GROUP BY k) b \
                   ON a.k = b.k ORDER BY 1";
        let partitioned = |with_rule: bool| {
            let mut config = config();
            let options = config.options_mut();
            options.optimizer.hash_join_single_partition_threshold = 0;
            options.optimizer.hash_join_single_partition_threshold_rows = 0;
            session_with(config, table(20_000, 3_000), with_rule, None)
        };
        let (want, _, _) = run(&partitioned(false), sql).await;
        let (got, plan, exec) = run(&partitioned(true), sql).await;
        assert!(plan.contains("mode=Partitioned"), "{plan}");
        assert!(exec.is_none(), "{plan}");
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn falls_back_to_datafusion_when_the_pool_refuses_the_counts() {
        let sql = "SELECT k, count(*) AS n FROM t GROUP BY k ORDER BY n DESC, k LIMIT 20";
        // About 200 K groups: several MB of tables, more than the pool holds; DataFusion's
        // aggregation spills within it.
        let pool = Some(6 << 20);
        let (want, _, _) = run(&session(table(300_000, 200_000), false, pool), sql).await;
        let (got, plan, exec) = run(&session(table(300_000, 200_000), true, pool), sql).await;
        let exec = exec.unwrap_or_else(|| panic!("not counted by key:\n{plan}"));
        assert_eq!(counted_rows(&exec), 0, "the counts were not refused");
        assert_eq!(got, want);
        // With room, the same query counts by key.
        let (got, _, exec) = run(&session(table(300_000, 200_000), true, None), sql).await;
        assert!(counted_rows(&exec.unwrap()) > 0);
        assert_eq!(got, want);

        // One stream, spread over the two cores by a round-robin repartition, which keeps
        // state once read: the fallback must run on fresh copies of the nodes the counting
        // started (else DataFusion panics, "partition not used yet").
        let streamed = |with_rule: bool| {
            let ctx = session(table(10, 10), with_rule, pool);
            let (schema, partitions) = partitions(300_000, 200_000);
            let stream = OneStream(schema.clone(), partitions.concat());
            let table = StreamingTable::try_new(schema, vec![Arc::new(stream)]).unwrap();
            ctx.register_table("s", Arc::new(table)).unwrap();
            ctx
        };
        let sql = "SELECT k, count(*) AS n FROM s GROUP BY k ORDER BY n DESC, k LIMIT 20";
        let (want, _, _) = run(&streamed(false), sql).await;
        let (got, plan, exec) = run(&streamed(true), sql).await;
        assert!(plan.contains("RoundRobinBatch"), "{plan}");
        assert_eq!(
            counted_rows(&exec.unwrap()),
            0,
            "the counts were not refused"
        );
        assert_eq!(got, want);
    }

    /// A source DataFusion cannot split: one stream of these batches.
    #[derive(Debug)]
    struct OneStream(SchemaRef, Vec<RecordBatch>);

    impl PartitionStream for OneStream {
        fn schema(&self) -> &SchemaRef {
            &self.0
        }

        fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
            let batches = self.1.clone().into_iter().map(Ok);
            Box::pin(RecordBatchStreamAdapter::new(
                self.0.clone(),
                stream::iter(batches),
            ))
        }
    }

    #[test]
    fn tallies_count_like_a_map_and_merge() {
        let mut rng = Lcg(11);
        let mut want: HashMap<i64, u64> = HashMap::new();
        let mut tallies: Vec<Tally> = (0..3).map(|_| Tally::default()).collect();
        let mut nulls = 0;
        for batch in 0..60 {
            let keys: Int64Array = (0..997)
                .map(|i| {
                    let k = (rng.next() % 20_000) as i64 - 10_000;
                    (i % 89 != 0).then_some(k * 4_096)
                })
                .collect();
            for k in keys.iter() {
                match k {
                    Some(k) => *want.entry(k).or_default() += 1,
                    None => nulls += 1,
                }
            }
            tallies[batch % 3].add(&keys);
        }
        let merged = merge(tallies);
        let mut got = HashMap::new();
        for &(k, c) in merged.table.iter() {
            assert!(got.insert(k, c).is_none(), "key {k} twice");
        }
        assert_eq!(merged.groups(), want.len());
        assert_eq!(got, want);
        assert_eq!(merged.nulls, nulls);
    }
}
