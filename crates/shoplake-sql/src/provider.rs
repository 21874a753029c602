//! The table provider the SQL catalog registers for a built lake table: delta-rs's provider,
//! with the Delta state it reads kept beside it so that the engine's extensions
//! ([`crate::stats_counts`]) can find the table's files and their statistics.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{Constraints, Statistics};
use datafusion::datasource::TableType;
use datafusion::logical_expr::{Expr, LogicalPlan, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use deltalake::DeltaTable;

/// A lake table as the SQL catalog registers it: delta-rs's provider, plus the Delta state it
/// reads, so that [`crate::stats_counts::CountsFromStatistics`] can find the files and their statistics.
#[derive(Debug)]
pub struct LakeTableProvider {
    table: DeltaTable,
    inner: Arc<dyn TableProvider>,
}

impl LakeTableProvider {
    /// Wraps delta-rs's provider of `table`.
    pub fn new(table: DeltaTable, inner: Arc<dyn TableProvider>) -> Self {
        LakeTableProvider { table, inner }
    }

    /// delta-rs's provider it wraps.
    pub fn inner(&self) -> &Arc<dyn TableProvider> {
        &self.inner
    }

    /// The Delta state the provider reads.
    pub fn table(&self) -> &DeltaTable {
        &self.table
    }
}

#[async_trait::async_trait]
impl TableProvider for LakeTableProvider {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn constraints(&self) -> Option<&Constraints> {
        self.inner.constraints()
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    fn get_table_definition(&self) -> Option<&str> {
        self.inner.get_table_definition()
    }

    fn get_logical_plan(&self) -> Option<std::borrow::Cow<'_, LogicalPlan>> {
        self.inner.get_logical_plan()
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        self.inner.scan(state, projection, filters, limit).await
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> datafusion::error::Result<Vec<TableProviderFilterPushDown>> {
        self.inner.supports_filters_pushdown(filters)
    }

    fn statistics(&self) -> Option<Statistics> {
        self.inner.statistics()
    }
}
