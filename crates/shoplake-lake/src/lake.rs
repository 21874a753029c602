//! Where the lake lives and how its tables are opened.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use deltalake::DeltaTable;
use deltalake::delta_datafusion::planner::DeltaPlanner;
use url::Url;

use crate::error::{LakeError, Result};
use crate::tables::TableDef;

/// Default memory budget of the query engine: enough for a day of a large store.
pub const DEFAULT_MEMORY_LIMIT: usize = 2 << 30;

/// Directory of intermediate files under a local lake's root (not a table).
pub const SCRATCH_DIR: &str = "_scratch";

/// A lake: a root location holding one Delta table per [`TableDef`].
#[derive(Debug, Clone)]
pub struct Lake {
    root: Url,
    local_root: Option<PathBuf>,
    memory_limit: usize,
    target_partitions: usize,
}

impl Lake {
    /// Opens the lake at `location`: a local directory (created when missing) or a
    /// `file://` URL.
    pub fn open(location: &str) -> Result<Self> {
        let bad = |reason: String| LakeError::Location {
            location: location.to_string(),
            reason,
        };
        if location.trim().is_empty() {
            return Err(bad("the location is empty".into()));
        }
        let (root, local_root) = if let Some(rest) = location.strip_prefix("file://") {
            let path = PathBuf::from(rest);
            (Self::dir_url(&path).map_err(bad)?, Some(path))
        } else if location.contains("://") {
            return Err(bad(
                "only local directories and file:// URLs are supported by this build".into(),
            ));
        } else {
            let path = PathBuf::from(location);
            std::fs::create_dir_all(&path).map_err(|e| bad(e.to_string()))?;
            let path = path.canonicalize().map_err(|e| bad(e.to_string()))?;
            (Self::dir_url(&path).map_err(bad)?, Some(path))
        };
        Ok(Lake {
            root,
            local_root,
            memory_limit: DEFAULT_MEMORY_LIMIT,
            target_partitions: std::thread::available_parallelism().map_or(2, |n| n.get()),
        })
    }

    fn dir_url(path: &Path) -> std::result::Result<Url, String> {
        Url::from_directory_path(path)
            .map_err(|()| format!("'{}' is not an absolute path", path.display()))
    }

    /// A fresh, empty scratch directory for intermediate files of one job: under the lake's
    /// `_scratch/` when the lake is local (same disk as the tables), else in the system's
    /// temporary directory. Callers remove it when done; [`Lake::clear_scratch`] removes
    /// what a killed job left.
    pub fn scratch_dir(&self, job: &str) -> Result<PathBuf> {
        let dir = self.scratch_root().join(job);
        let io = |e: std::io::Error| LakeError::Location {
            location: dir.display().to_string(),
            reason: format!("cannot prepare scratch directory: {e}"),
        };
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(io)?;
        }
        std::fs::create_dir_all(&dir).map_err(io)?;
        Ok(dir)
    }

    /// Removes every scratch directory (a single writer works on a lake at a time).
    pub fn clear_scratch(&self) {
        let _ = std::fs::remove_dir_all(self.scratch_root());
    }

    fn scratch_root(&self) -> PathBuf {
        match &self.local_root {
            Some(root) => root.join(SCRATCH_DIR),
            None => std::env::temp_dir().join("shoplake-scratch"),
        }
    }

    /// Sets the memory budget of the query engine (bytes); work beyond it spills to disk.
    pub fn with_memory_limit(mut self, bytes: usize) -> Self {
        self.memory_limit = bytes;
        self
    }

    /// Root URL of the lake.
    pub fn root(&self) -> &Url {
        &self.root
    }

    /// URL of a table's directory.
    pub fn table_url(&self, def: &TableDef) -> Url {
        // `root` is a directory URL, so joining keeps every path segment.
        self.root
            .join(&format!("{}/", def.relative_path()))
            .expect("table paths are valid URL segments")
    }

    /// Local directory of a table, when the lake is local.
    pub fn local_table_dir(&self, def: &TableDef) -> Option<PathBuf> {
        self.local_root
            .as_ref()
            .map(|root| root.join(def.layer).join(def.name))
    }

    /// Loads a table; `None` when it has not been created yet.
    pub async fn load(&self, def: &TableDef) -> Result<Option<DeltaTable>> {
        if let Some(dir) = self.local_table_dir(def)
            && !dir.join("_delta_log").is_dir()
        {
            return Ok(None);
        }
        let table = DeltaTable::try_from_url(self.table_url(def))
            .await
            .map_err(|e| LakeError::delta(def.qualified_name(), e))?;
        Ok(table.version().is_some().then_some(table))
    }

    /// The table at its latest version, or a handle on it not created yet (see
    /// [`Lake::uninitialized`]): what a writer needs either way. A table built before columns
    /// were added to its declaration gets them first (see `evolve.rs`).
    pub async fn load_or_new(&self, def: &TableDef) -> Result<DeltaTable> {
        match self.load(def).await? {
            Some(table) => crate::evolve::add_missing_columns(table, def).await,
            None => self.uninitialized(def).await,
        }
    }

    /// A handle on a table that does not exist yet; the first write creates it (schema,
    /// partitioning and data in one commit).
    pub async fn uninitialized(&self, def: &TableDef) -> Result<DeltaTable> {
        if let Some(dir) = self.local_table_dir(def) {
            std::fs::create_dir_all(&dir).map_err(|source| LakeError::Io {
                context: format!("cannot create {}", dir.display()),
                source,
            })?;
        }
        DeltaTable::try_from_url(self.table_url(def))
            .await
            .map_err(|e| LakeError::delta(def.qualified_name(), e))
    }

    /// A session for writing and reading the lake's tables directly: the lake's memory budget
    /// (spilling to a temporary directory beyond it) and delta-rs's planner. Queries over
    /// the lake by name go through `shoplake-sql`'s catalog, whose session adds the engine's
    /// extensions to [`Lake::session_state`].
    pub fn session(&self) -> SessionContext {
        SessionContext::new_with_state(self.session_state().build())
    }

    /// The state [`Lake::session`] is built from, for sessions that add to it.
    pub fn session_state(&self) -> SessionStateBuilder {
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(FairSpillPool::new(self.memory_limit)))
            .with_disk_manager_builder(
                DiskManagerBuilder::default().with_mode(DiskManagerMode::OsTmpDirectory),
            )
            .build_arc()
            .expect("a runtime with a spill pool and a temp directory always builds");
        let config = SessionConfig::new()
            .with_target_partitions(self.target_partitions)
            .with_information_schema(true)
            // Settings delta-rs relies on (see its `DeltaSessionConfig`).
            .set_bool("datafusion.execution.parquet.schema_force_view_types", true)
            .set_usize("datafusion.optimizer.hash_join_inlist_pushdown_max_size", 0)
            .set_usize(
                "datafusion.optimizer.hash_join_inlist_pushdown_max_distinct_values",
                0,
            );
        // delta-rs plans its writes with extension nodes: the session needs its planner.
        SessionStateBuilder::new()
            .with_default_features()
            .with_config(config)
            .with_runtime_env(runtime)
            .with_query_planner(DeltaPlanner::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_urls_nest_under_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let url = lake.table_url(&crate::tables::clean_rejects());
        assert!(url.as_str().ends_with("/clean/rejects/"), "{url}");
        assert!(url.as_str().starts_with("file:///"));
    }

    #[test]
    fn rejects_unsupported_schemes() {
        let err = Lake::open("s3://bucket/lake").unwrap_err().to_string();
        assert!(err.contains("only local directories"), "{err}");
    }
}
