//! Which version of its source a derived table was built from, kept in the derived table's
//! commit (`shoplake.builtFrom` in the commit info: `{"model.mart_user_daily": 41}`). A
//! reader trusts the derived table only while its source is still at that version: a run
//! stopped between the source's commit and the derived table's leaves the derived table
//! stale, and the reader then goes to the source.

use deltalake::DeltaTable;
use deltalake::kernel::transaction::CommitProperties;
use futures::TryStreamExt;

use crate::error::{LakeError, Result};
use crate::tables::TableDef;

/// The commit info key.
pub const KEY: &str = "shoplake.builtFrom";

/// Commit properties that record `source` at `version` (`None`: the source did not exist).
pub fn commit_properties(source: &TableDef, version: Option<u64>) -> CommitProperties {
    CommitProperties::default().with_metadata([(
        KEY.to_string(),
        serde_json::json!({ source.qualified_name(): version }),
    )])
}

/// Whether `derived`'s latest commit records `source` at `version`.
///
/// One small file is read: the latest commit's.
pub async fn is_built_from(
    derived: &DeltaTable,
    source: &TableDef,
    version: Option<u64>,
) -> Result<bool> {
    let latest: Vec<_> = derived
        .history(Some(1))
        .try_collect()
        .await
        .map_err(|e| LakeError::delta(format!("the history of {}", derived.table_url()), e))?;
    let recorded = latest
        .first()
        .and_then(|info| info.info.get(KEY))
        .and_then(|sources| sources.get(source.qualified_name()))
        .cloned();
    Ok(recorded == Some(serde_json::json!(version)))
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::RecordBatch;

    use super::*;
    use crate::lake::Lake;
    use crate::overwrite::overwrite_table;
    use crate::tables;

    #[tokio::test]
    async fn the_recorded_version_is_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let source = tables::mart_user_daily();
        let derived = tables::mart_user_monthly();
        let rows = lake
            .session()
            .read_batch(RecordBatch::new_empty(derived.arrow_schema()))
            .unwrap();
        let commit = commit_properties(&source, Some(7));
        let table = overwrite_table(&lake, &derived, rows, commit)
            .await
            .unwrap();
        assert!(is_built_from(&table, &source, Some(7)).await.unwrap());
        assert!(!is_built_from(&table, &source, Some(8)).await.unwrap());
        assert!(!is_built_from(&table, &source, None).await.unwrap());
        let other = tables::mart_product_daily();
        assert!(!is_built_from(&table, &other, Some(7)).await.unwrap());

        // A later commit (not the table's creation) records its own.
        let rows = lake
            .session()
            .read_batch(RecordBatch::new_empty(derived.arrow_schema()))
            .unwrap();
        let commit = commit_properties(&source, Some(8));
        let table = crate::overwrite::overwrite_table_by_parts(&lake, &derived, vec![rows], commit)
            .await
            .unwrap();
        assert_eq!(table.version(), Some(1));
        assert!(is_built_from(&table, &source, Some(8)).await.unwrap());
        assert!(!is_built_from(&table, &source, Some(7)).await.unwrap());
    }
}
