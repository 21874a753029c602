//! Writers that encode a table's new files side by side, one task each, whose files are then
//! committed together, or abandoned together.
//!
//! delta-rs writes through one writer per Delta partition (a day goes to one writer) or, for
//! an unpartitioned table, one writer for the whole input, so its writes of a single day or a
//! single table use one core. [`crate::append_days`] and [`crate::overwrite`] hand the rows
//! to several of these writers instead and commit the files themselves. A write that fails
//! deletes the files its writers had closed: nothing refers to them.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use datafusion::arrow::datatypes::SchemaRef;
use delta_kernel::engine::arrow_conversion::TryIntoKernel as _;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, Add, StructType};
use deltalake::operations::create::CreateBuilder;
use deltalake::protocol::DeltaOperation;
use deltalake::writer::RecordBatchWriter;
use deltalake::{DeltaTable, ObjectStore, Path};
use futures::StreamExt;
use tokio::task::JoinSet;

use crate::error::{LakeError, Result};
use crate::lake::Lake;
use crate::tables::TableDef;
use crate::write::writer_properties;

/// What a writer hands back: the files it closed, and the error that stopped it, if any.
pub(crate) struct Written {
    pub(crate) files: Vec<Add>,
    pub(crate) error: Option<LakeError>,
}

impl Written {
    pub(crate) fn ok(files: Vec<Add>) -> Self {
        Written { files, error: None }
    }

    pub(crate) fn failed(files: Vec<Add>, error: LakeError) -> Self {
        Written {
            files,
            error: Some(error),
        }
    }
}

/// The writers of one write, running as tasks.
pub(crate) struct WriterPool {
    name: String,
    store: Arc<dyn ObjectStore>,
    tasks: JoinSet<Written>,
    abandoned: Arc<AtomicBool>,
}

impl WriterPool {
    pub(crate) fn new(def: &TableDef, table: &DeltaTable) -> Self {
        WriterPool {
            name: def.qualified_name(),
            store: table.log_store().object_store(None),
            tasks: JoinSet::new(),
            abandoned: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Starts a writer; `work` gets the flag that says the write was abandoned (then it drops
    /// its open files), and returns the files it closed.
    pub(crate) fn spawn<F>(&mut self, work: impl FnOnce(Arc<AtomicBool>) -> F)
    where
        F: Future<Output = Written> + Send + 'static,
    {
        self.tasks.spawn(work(self.abandoned.clone()));
    }

    /// Waits for every writer; returns all their files, or the first error (the input's
    /// `failure` first). On an error every writer is told to drop its open files, and the
    /// files already closed are deleted, so that a failed write leaves nothing behind.
    pub(crate) async fn finish(mut self, mut failure: Option<LakeError>) -> Result<Vec<Add>> {
        if failure.is_some() {
            self.abandoned.store(true, Ordering::SeqCst);
        }
        let mut files = Vec::new();
        while let Some(done) = self.tasks.join_next().await {
            let error = match done {
                Ok(written) => {
                    files.extend(written.files);
                    written.error
                }
                Err(e) => Some(LakeError::Inconsistent(format!(
                    "a writer of {} stopped: {e}",
                    self.name
                ))),
            };
            if let Some(error) = error {
                self.abandoned.store(true, Ordering::SeqCst);
                failure.get_or_insert(error);
            }
        }
        match failure {
            Some(e) => {
                remove_files(&self.store, &files).await;
                Err(e)
            }
            None => Ok(files),
        }
    }
}

/// Deletes files no commit will add; a file that cannot be deleted only costs disk space.
async fn remove_files(store: &Arc<dyn ObjectStore>, files: &[Add]) {
    let mut paths = Vec::new();
    for file in files {
        match Path::from_url_path(&file.path) {
            Ok(path) => paths.push(Ok(path)),
            Err(e) => tracing::warn!("could not delete the unused file {}: {e}", file.path),
        }
    }
    let mut deleted = store.delete_stream(futures::stream::iter(paths).boxed());
    while let Some(done) = deleted.next().await {
        if let Err(e) = done {
            tracing::warn!("could not delete an unused file: {e}");
        }
    }
}

/// Whether a writer was told to drop its files.
pub(crate) fn is_abandoned(flag: &AtomicBool) -> bool {
    flag.load(Ordering::SeqCst)
}

/// Makes the file writers of one table, with the lake's Parquet settings. When the table does
/// not exist yet, the files go where it will be, with `def`'s schema and partitioning.
#[derive(Clone)]
pub(crate) struct WriterFactory {
    name: String,
    existing: Option<DeltaTable>,
    url: String,
    schema: SchemaRef,
    partition_by: Option<Vec<String>>,
}

impl WriterFactory {
    pub(crate) fn new(lake: &Lake, def: &TableDef, table: &DeltaTable) -> Self {
        WriterFactory {
            name: def.qualified_name(),
            existing: table.version().is_some().then(|| table.clone()),
            url: lake.table_url(def).to_string(),
            schema: def.arrow_schema(),
            partition_by: def.partition_by.map(|p| vec![p.to_string()]),
        }
    }

    /// The table's name, for messages.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn writer(&self) -> Result<RecordBatchWriter> {
        let writer = match &self.existing {
            Some(table) => RecordBatchWriter::for_table(table),
            None => RecordBatchWriter::try_new(
                &self.url,
                self.schema.clone(),
                self.partition_by.clone(),
                None,
            ),
        };
        Ok(writer
            .map_err(|e| LakeError::delta(self.name.clone(), e))?
            .with_writer_properties(writer_properties()))
    }
}

/// Commits `actions` (the files written, and those they replace) to `table`. A table that
/// does not exist yet is created by the same commit, from `def`'s schema and partitioning, so
/// that a failed or interrupted write leaves no table behind.
pub(crate) async fn commit_files(
    def: &TableDef,
    mut table: DeltaTable,
    actions: Vec<Action>,
    operation: DeltaOperation,
    commit: CommitProperties,
) -> Result<DeltaTable> {
    let delta = |e| LakeError::delta(def.qualified_name(), e);
    if table.version().is_none() {
        let schema: StructType = def.arrow_schema().as_ref().try_into_kernel()?;
        let adds = actions.into_iter().filter(|a| matches!(a, Action::Add(_)));
        return CreateBuilder::new()
            .with_log_store(table.log_store())
            .with_columns(schema.fields().cloned())
            .with_partition_columns(def.partition_by.map(String::from))
            .with_table_name(def.qualified_name())
            .with_comment(def.description)
            .with_actions(adds)
            .with_commit_properties(commit)
            .await
            .map_err(delta);
    }
    let snapshot = table.snapshot().map_err(delta)?;
    let finalized = CommitBuilder::from(commit)
        .with_actions(actions)
        .build(Some(snapshot), table.log_store(), operation)
        .await
        .map_err(delta)?;
    table
        .update_incremental(Some(finalized.version()))
        .await
        .map_err(delta)?;
    Ok(table)
}
