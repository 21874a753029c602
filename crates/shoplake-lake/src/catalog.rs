//! SQL over the lake: every table registered as `layer.table` in one DataFusion session.

use std::sync::Arc;

use datafusion::catalog::MemorySchemaProvider;
use datafusion::datasource::MemTable;
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::{DataFrame, SessionContext};
use deltalake::DeltaTable;

use crate::error::{LakeError, Result};
use crate::lake::Lake;
use crate::tables::{self, TableDef};

/// SQL options that refuse anything but reading (no DDL, no DML, no `SET`).
pub fn read_only_sql_options() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

/// A query session with every lake table registered.
///
/// Tables that have not been built yet are registered empty with their declared schema, so a
/// query over a young lake returns no rows instead of failing.
pub struct SqlCatalog {
    ctx: SessionContext,
    tables: Vec<(TableDef, Option<DeltaTable>)>,
}

impl SqlCatalog {
    /// Opens every table of `lake` at its latest version.
    pub async fn open(lake: &Lake) -> Result<Self> {
        let ctx = lake.session();
        let catalog = ctx
            .catalog("datafusion")
            .ok_or_else(|| LakeError::Inconsistent("default catalog missing".into()))?;
        for layer in ["raw", "clean", "model", "meta", "quality"] {
            catalog.register_schema(layer, Arc::new(MemorySchemaProvider::new()))?;
        }
        let mut registered = Vec::new();
        for def in tables::all() {
            let table = lake.load(&def).await?;
            match &table {
                Some(t) => {
                    t.update_datafusion_session(&ctx.state())
                        .map_err(|e| LakeError::delta(def.qualified_name(), e))?;
                    let provider = t.table_provider().await?;
                    ctx.register_table(def.qualified_name().as_str(), provider)?;
                }
                None => {
                    let empty = MemTable::try_new(def.arrow_schema(), vec![vec![]])?;
                    ctx.register_table(def.qualified_name().as_str(), Arc::new(empty))?;
                }
            }
            registered.push((def, table));
        }
        Ok(SqlCatalog {
            ctx,
            tables: registered,
        })
    }

    /// The session, for building plans.
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// The tables and, for those that exist, their loaded Delta state.
    pub fn tables(&self) -> &[(TableDef, Option<DeltaTable>)] {
        &self.tables
    }

    /// Plans a read-only SQL statement.
    pub async fn sql(&self, sql: &str) -> Result<DataFrame> {
        Ok(self
            .ctx
            .sql_with_options(sql, read_only_sql_options())
            .await?)
    }
}
