//! SQL over the lake: every table registered as `layer.table` in one DataFusion session.
//!
//! A table's Delta log is read the first time a statement names it, not when the session
//! opens: a query over the fact table reads one log, not thirteen (the saving, most of what a
//! `SELECT 1` took, comes off every `shoplake query`; see
//! bench/results/2026-11-29-66600000-at-c7d80fb.md). Once loaded, a table stays at that
//! version for the session's life, so a session sees each table as it was when a statement
//! first named it (not all of them as they were when it opened).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use shoplake_lake::datafusion::catalog::{SchemaProvider, TableProvider};
use shoplake_lake::datafusion::datasource::MemTable;
use shoplake_lake::datafusion::error::DataFusionError;
use shoplake_lake::datafusion::execution::SessionStateBuilder;
use shoplake_lake::datafusion::execution::runtime_env::RuntimeEnv;
use shoplake_lake::datafusion::prelude::{DataFrame, SessionContext};
use shoplake_lake::deltalake::DeltaTable;
use shoplake_lake::tables::{self, TableDef};
use shoplake_lake::{Lake, LakeError};
use tokio::sync::OnceCell;

use crate::error::Result;
use crate::policy::{LAYERS, plan_read_only};
use crate::provider::LakeTableProvider;

/// A query session with every lake table registered.
///
/// Tables that have not been built yet are registered empty with their declared schema, so a
/// query over a young lake returns no rows instead of failing.
pub struct SqlCatalog {
    ctx: SessionContext,
    tables: Vec<Arc<LazyTable>>,
    lake: Lake,
}

impl SqlCatalog {
    /// A session over `lake` where each table is read at its latest version when first named.
    pub async fn open(lake: &Lake) -> Result<Self> {
        let ctx = crate::session(lake);
        let tables = register_lake(&ctx, lake, &|_| true)?;
        Ok(SqlCatalog {
            ctx,
            tables,
            lake: lake.clone(),
        })
    }

    /// Every lake table and, for those that exist, its Delta state (loading those not read
    /// yet): the lake's version, whatever name may be registered over it in the session.
    pub async fn tables(&self) -> Result<Vec<(TableDef, Option<DeltaTable>)>> {
        let runtime = self.ctx.runtime_env();
        let loads = self.tables.iter().map(|t| t.get(&self.lake, &runtime));
        let loaded = futures::future::try_join_all(loads).await?;
        Ok(self
            .tables
            .iter()
            .zip(loaded)
            .map(|(t, (table, _))| (t.def.clone(), table.clone()))
            .collect())
    }

    /// One lake table's Delta state, the version this session reads from the lake (not a
    /// name registered over it); `None` when it is not built yet.
    pub async fn table(&self, def: &TableDef) -> Result<Option<DeltaTable>> {
        let name = def.qualified_name();
        let Some(table) = self.tables.iter().find(|t| t.def.qualified_name() == name) else {
            return Err(LakeError::Inconsistent(format!("{name} is not a lake table")).into());
        };
        let (table, _) = table.get(&self.lake, &self.ctx.runtime_env()).await?;
        Ok(table.clone())
    }

    /// The session, for building plans.
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Plans a read-only SQL statement (see [`crate::policy`]).
    pub async fn sql(&self, sql: &str) -> Result<DataFrame> {
        plan_read_only(&self.ctx, sql).await
    }
}

/// Registers the lake's layers in `ctx` (its default catalog), with only the tables `visible`
/// accepts, each read at its latest version the first time a statement names it; a layer with
/// no visible table is not registered. Registering again replaces the layers, so statements
/// planned after it read the lake as it is then (the servers do it before every statement).
pub fn register_visible_tables(
    ctx: &SessionContext,
    lake: &Lake,
    visible: &dyn Fn(&TableDef) -> bool,
) -> Result<()> {
    register_lake(ctx, lake, visible).map(|_| ())
}

fn register_lake(
    ctx: &SessionContext,
    lake: &Lake,
    visible: &dyn Fn(&TableDef) -> bool,
) -> Result<Vec<Arc<LazyTable>>> {
    let catalog = ctx
        .catalog(&ctx.state().config().options().catalog.default_catalog)
        .ok_or_else(|| LakeError::Inconsistent("default catalog missing".into()))?;
    let tables: Vec<Arc<LazyTable>> = tables::all()
        .into_iter()
        .filter(|def| visible(def))
        .map(|def| {
            Arc::new(LazyTable {
                def,
                loaded: OnceCell::new(),
            })
        })
        .collect();
    for layer in LAYERS {
        let layer_tables: HashMap<String, Arc<LazyTable>> = tables
            .iter()
            .filter(|t| t.def.layer == layer)
            .map(|t| (t.def.name.to_string(), t.clone()))
            .collect();
        if layer_tables.is_empty() {
            catalog.deregister_schema(layer, true)?;
            continue;
        }
        let schema = LayerSchema {
            lake: lake.clone(),
            runtime: ctx.runtime_env(),
            tables: layer_tables,
            replaced: Mutex::new(HashMap::new()),
        };
        catalog.register_schema(layer, Arc::new(schema))?;
    }
    Ok(tables)
}

/// A lake table, read from the lake the first time it is asked for.
#[derive(Debug)]
struct LazyTable {
    def: TableDef,
    loaded: OnceCell<(Option<DeltaTable>, Arc<dyn TableProvider>)>,
}

impl LazyTable {
    /// The table's Delta state and provider, loaded once (concurrent callers wait for one
    /// load); a table not built yet is an empty table of its declared schema.
    async fn get(
        &self,
        lake: &Lake,
        runtime: &Arc<RuntimeEnv>,
    ) -> Result<&(Option<DeltaTable>, Arc<dyn TableProvider>)> {
        self.loaded
            .get_or_try_init(|| async {
                let table = lake.load(&self.def).await?;
                let provider: Arc<dyn TableProvider> = match &table {
                    Some(t) => {
                        // The table's object store, in the runtime the session reads with.
                        let state = SessionStateBuilder::new()
                            .with_runtime_env(runtime.clone())
                            .build();
                        t.update_datafusion_session(&state)
                            .map_err(|e| LakeError::delta(self.def.qualified_name(), e))?;
                        // Wrapped, so that counts can be answered from the files' statistics.
                        Arc::new(LakeTableProvider::new(t.clone(), t.table_provider().await?))
                    }
                    None => Arc::new(MemTable::try_new(self.def.arrow_schema(), vec![vec![]])?),
                };
                Ok((table, provider))
            })
            .await
    }
}

/// The tables of one layer (`raw`, `clean`, ...). Registering and deregistering behave as in
/// DataFusion's memory schema, over the lake's tables: a lake table can be deregistered
/// (the name is then empty) and another table registered under its name (the run's
/// candidate rows, see the pipeline's gates); registering over a name in use is refused.
#[derive(Debug)]
struct LayerSchema {
    lake: Lake,
    runtime: Arc<RuntimeEnv>,
    tables: HashMap<String, Arc<LazyTable>>,
    /// Names registered or deregistered in the session: `None` hides the name.
    replaced: Mutex<HashMap<String, Option<Arc<dyn TableProvider>>>>,
}

impl LayerSchema {
    fn replaced(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, Option<Arc<dyn TableProvider>>>> {
        // A panic elsewhere while holding the lock leaves a map that is still whole.
        self.replaced.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait::async_trait]
impl SchemaProvider for LayerSchema {
    fn table_names(&self) -> Vec<String> {
        let replaced = self.replaced();
        let mut names: Vec<String> = self
            .tables
            .keys()
            .filter(|name| !matches!(replaced.get(*name), Some(None)))
            .cloned()
            .collect();
        names.extend(
            replaced
                .iter()
                .filter(|(name, t)| t.is_some() && !self.tables.contains_key(*name))
                .map(|(name, _)| name.clone()),
        );
        names.sort();
        names
    }

    async fn table(
        &self,
        name: &str,
    ) -> std::result::Result<Option<Arc<dyn TableProvider>>, DataFusionError> {
        if let Some(replaced) = self.replaced().get(name) {
            return Ok(replaced.clone());
        }
        let Some(table) = self.tables.get(name) else {
            return Ok(None);
        };
        let (_, provider) = table
            .get(&self.lake, &self.runtime)
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        Ok(Some(provider.clone()))
    }

    fn register_table(
        &self,
        name: String,
        table: Arc<dyn TableProvider>,
    ) -> std::result::Result<Option<Arc<dyn TableProvider>>, DataFusionError> {
        if self.table_exist(&name) {
            return Err(DataFusionError::Execution(format!(
                "The table {name} already exists"
            )));
        }
        self.replaced().insert(name, Some(table));
        Ok(None)
    }

    fn deregister_table(
        &self,
        name: &str,
    ) -> std::result::Result<Option<Arc<dyn TableProvider>>, DataFusionError> {
        let mut replaced = self.replaced();
        let before = match replaced.get(name) {
            Some(t) => t.clone(),
            // A lake table: hidden, and handed back if it was already loaded (one not read
            // yet is not read for this).
            None => self
                .tables
                .get(name)
                .and_then(|t| t.loaded.get())
                .map(|(_, provider)| provider.clone()),
        };
        if self.tables.contains_key(name) {
            replaced.insert(name.to_string(), None);
        } else {
            replaced.remove(name);
        }
        Ok(before)
    }

    fn table_exist(&self, name: &str) -> bool {
        match self.replaced().get(name) {
            Some(t) => t.is_some(),
            None => self.tables.contains_key(name),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;
    use shoplake_lake::datafusion::arrow::array::AsArray;
    use shoplake_lake::datafusion::arrow::datatypes::Int64Type;
    use shoplake_lake::testing::{clean_rows as rows, replace_clean_day as replace};

    use super::*;
    use crate::SqlError;

    /// Which lake tables the session has read so far.
    fn loaded(catalog: &SqlCatalog) -> Vec<String> {
        catalog
            .tables
            .iter()
            .filter(|t| t.loaded.initialized())
            .map(|t| t.def.qualified_name())
            .collect()
    }

    async fn count(catalog: &SqlCatalog, sql: &str) -> i64 {
        let batches = catalog.sql(sql).await.unwrap().collect().await.unwrap();
        batches[0].column(0).as_primitive::<Int64Type>().value(0)
    }

    /// A lake whose `clean.events` holds 7 rows on one day.
    async fn lake_with_clean_events(dir: &std::path::Path) -> Lake {
        let lake = Lake::open(dir.to_str().unwrap()).unwrap();
        let day = NaiveDate::from_ymd_opt(2020, 4, 1).unwrap();
        let table = lake.uninitialized(&tables::clean_events()).await.unwrap();
        replace(&lake, table, day, vec![rows(day, 1, 7, false)])
            .await
            .unwrap();
        lake
    }

    #[tokio::test]
    async fn a_table_is_read_when_a_statement_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let lake = lake_with_clean_events(dir.path()).await;
        let catalog = SqlCatalog::open(&lake).await.unwrap();
        assert!(loaded(&catalog).is_empty(), "{:?}", loaded(&catalog));

        assert_eq!(
            count(&catalog, "SELECT count(*) FROM clean.events").await,
            7
        );
        assert_eq!(loaded(&catalog), ["clean.events"]);
        // A table not built yet reads as empty, with its declared columns.
        let sql = "SELECT count(*) FROM model.fact_user_events WHERE event_type = 'view'";
        assert_eq!(count(&catalog, sql).await, 0);
        assert_eq!(loaded(&catalog), ["clean.events", "model.fact_user_events"]);

        // Listing every table loads them all, each once: the version read before is kept.
        let all = catalog.tables().await.unwrap();
        assert_eq!(all.len(), tables::all().len());
        assert_eq!(loaded(&catalog).len(), tables::all().len());
        for (def, table) in &all {
            let built = def.qualified_name() == "clean.events";
            assert_eq!(table.is_some(), built, "{}", def.qualified_name());
        }
        let clean = catalog.table(&tables::clean_events()).await.unwrap();
        // Version 0 created the table with its first day.
        assert_eq!(clean.and_then(|t| t.version()), Some(0));
    }

    #[tokio::test]
    async fn the_schema_lists_every_table_without_reading_them() {
        let dir = tempfile::tempdir().unwrap();
        let lake = lake_with_clean_events(dir.path()).await;
        let catalog = SqlCatalog::open(&lake).await.unwrap();
        let state = catalog.context().state();
        let names = |layer: &str| {
            state
                .catalog_list()
                .catalog("datafusion")
                .unwrap()
                .schema(layer)
                .unwrap()
                .table_names()
        };
        let mut listed: Vec<String> = LAYERS
            .iter()
            .flat_map(|layer| {
                names(layer)
                    .into_iter()
                    .map(move |n| format!("{layer}.{n}"))
            })
            .collect();
        listed.sort();
        let mut declared: Vec<String> = tables::all().iter().map(|d| d.qualified_name()).collect();
        declared.sort();
        assert_eq!(listed, declared);
        assert!(loaded(&catalog).is_empty());
        // information_schema reads what it describes.
        let sql = "SELECT count(*) FROM information_schema.columns \
                   WHERE table_schema = 'clean' AND table_name = 'events'";
        assert_eq!(
            count(&catalog, sql).await,
            tables::clean_events().columns.len() as i64
        );
    }

    #[tokio::test]
    async fn registering_over_a_lake_table_works_as_in_a_memory_schema() {
        let dir = tempfile::tempdir().unwrap();
        let lake = lake_with_clean_events(dir.path()).await;
        let catalog = SqlCatalog::open(&lake).await.unwrap();
        let ctx = catalog.context();
        let day = NaiveDate::from_ymd_opt(2020, 4, 2).unwrap();
        let candidate = MemTable::try_new(
            tables::clean_events().arrow_schema(),
            vec![vec![rows(day, 2, 3, false)]],
        )
        .unwrap();

        // Deregistering a lake table not read yet hands back nothing and hides it.
        assert!(ctx.deregister_table("clean.events").unwrap().is_none());
        assert!(!ctx.table_exist("clean.events").unwrap());
        assert!(catalog.sql("SELECT * FROM clean.events").await.is_err());
        ctx.register_table("clean.events", Arc::new(candidate))
            .unwrap();
        assert_eq!(
            count(&catalog, "SELECT count(*) FROM clean.events").await,
            3
        );
        assert!(loaded(&catalog).is_empty());
        // A name in use is not registered over, as in DataFusion's memory schema.
        let again = MemTable::try_new(tables::clean_events().arrow_schema(), vec![vec![]]).unwrap();
        assert!(ctx.register_table("clean.events", Arc::new(again)).is_err());
        assert_eq!(
            count(&catalog, "SELECT count(*) FROM clean.events").await,
            3
        );
        // Deregistering the candidate empties the name; the lake table does not come back.
        assert!(ctx.deregister_table("clean.events").unwrap().is_some());
        assert!(!ctx.table_exist("clean.events").unwrap());
        assert!(catalog.sql("SELECT * FROM clean.events").await.is_err());

        // A name outside the lake's tables registers and goes like in any schema.
        let extra = MemTable::try_new(
            tables::clean_events().arrow_schema(),
            vec![vec![rows(day, 3, 2, false)]],
        )
        .unwrap();
        ctx.register_table("clean.scratch", Arc::new(extra))
            .unwrap();
        assert_eq!(
            count(&catalog, "SELECT count(*) FROM clean.scratch").await,
            2
        );
        assert!(ctx.deregister_table("clean.scratch").unwrap().is_some());
        assert!(!ctx.table_exist("clean.scratch").unwrap());

        // The lake table is still what `table` reads: 7 rows, version 0.
        let clean = catalog
            .table(&tables::clean_events())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(clean.version(), Some(0));
        let other = SqlCatalog::open(&lake).await.unwrap();
        assert_eq!(count(&other, "SELECT count(*) FROM clean.events").await, 7);
    }

    #[tokio::test]
    async fn an_unknown_table_is_named_as_written_with_the_close_ones() {
        let dir = tempfile::tempdir().unwrap();
        let lake = lake_with_clean_events(dir.path()).await;
        let catalog = SqlCatalog::open(&lake).await.unwrap();
        let message = |sql: &'static str| {
            let catalog = &catalog;
            async move { catalog.sql(sql).await.unwrap_err().to_string() }
        };

        let err = message("SELECT * FROM model.nope").await;
        assert!(err.starts_with("no table named model.nope;"), "{err}");
        assert!(!err.contains("datafusion."), "{err}");
        assert_eq!(err.matches("model.nope").count(), 1, "{err}");

        let err = message("SELECT count(*) FROM model.fact_user_event").await;
        assert_eq!(
            err,
            "no table named model.fact_user_event; did you mean model.fact_user_events?"
        );
        // The same table name in another layer, and a join naming one good and one bad table.
        let err = message("SELECT * FROM raw.rejects").await;
        assert_eq!(
            err,
            "no table named raw.rejects; did you mean clean.rejects?"
        );
        let err =
            message("SELECT * FROM clean.events e JOIN model.dim_user u ON e.user_id = u.user_id")
                .await;
        assert!(
            err.starts_with("no table named model.dim_user; did you mean")
                && err.contains("model.dim_users"),
            "{err}"
        );
        // A CTE is not a table, and a plain planning error keeps the engine's message.
        assert!(
            catalog
                .sql("WITH x AS (SELECT 1 AS a) SELECT a FROM x")
                .await
                .is_ok()
        );
        let err = catalog
            .sql("SELECT no_such_column FROM clean.events")
            .await
            .unwrap_err();
        assert!(matches!(err, SqlError::DataFusion(_)), "{err}");
        // Writing is refused in words a user understands.
        for refused in [
            "CREATE TABLE x AS SELECT 1",
            "INSERT INTO clean.events SELECT * FROM clean.events",
            "SET datafusion.execution.batch_size = 1",
            "COPY (SELECT 1) TO '/tmp/x.csv'",
        ] {
            let err = catalog.sql(refused).await.unwrap_err();
            assert!(matches!(err, SqlError::NotAllowed(_)), "{refused}: {err}");
            assert!(
                err.to_string().starts_with("only reading statements"),
                "{err}"
            );
        }
    }
}
