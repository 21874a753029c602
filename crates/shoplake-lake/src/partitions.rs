//! What a table holds per day, read from its Delta log (no data file is opened).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use deltalake::DeltaTable;
use futures::TryStreamExt;

use crate::error::{LakeError, Result};
use crate::tables::EVENT_DATE;

/// The files of one `event_date` partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionFiles {
    /// The day.
    pub date: NaiveDate,
    /// Number of data files.
    pub files: usize,
    /// Rows, from the files' statistics (None when a file has no statistics).
    pub rows: Option<u64>,
    /// Bytes of data files.
    pub bytes: u64,
    /// Hash of the sorted file paths: changes whenever a file is added or removed.
    pub fingerprint: String,
}

/// The active files of every `event_date` partition of a table.
pub async fn partition_files(table: &DeltaTable) -> Result<BTreeMap<NaiveDate, PartitionFiles>> {
    let name = table.table_url().to_string();
    let views: Vec<_> = table
        .get_active_add_actions_by_partitions(&[])
        .try_collect()
        .await
        .map_err(|e| LakeError::delta(name.clone(), e))?;
    let mut by_date: BTreeMap<NaiveDate, (Vec<String>, Option<u64>, u64)> = BTreeMap::new();
    for view in views {
        let values = view.partition_values_map();
        let Some(Some(text)) = values.get(EVENT_DATE) else {
            return Err(LakeError::Inconsistent(format!(
                "{name}: file {} has no {EVENT_DATE} partition value",
                view.path()
            )));
        };
        let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|e| {
            LakeError::Inconsistent(format!("{name}: bad partition value '{text}': {e}"))
        })?;
        let entry = by_date.entry(date).or_insert((Vec::new(), Some(0), 0));
        entry.0.push(view.path().to_string());
        entry.1 = match (entry.1, view.num_records()) {
            (Some(a), Some(b)) => Some(a + b as u64),
            _ => None,
        };
        entry.2 += view.size().max(0) as u64;
    }
    Ok(by_date
        .into_iter()
        .map(|(date, (mut paths, rows, bytes))| {
            paths.sort();
            let fingerprint = format!(
                "{:032x}",
                xxhash_rust::xxh3::xxh3_128(paths.join("\n").as_bytes())
            );
            (
                date,
                PartitionFiles {
                    date,
                    files: paths.len(),
                    rows,
                    bytes,
                    fingerprint,
                },
            )
        })
        .collect())
}

/// Rows of a whole table, from its file statistics (0 for an empty table).
pub async fn table_rows(table: &DeltaTable) -> Result<u64> {
    let name = table.table_url().to_string();
    let views: Vec<_> = table
        .get_active_add_actions_by_partitions(&[])
        .try_collect()
        .await
        .map_err(|e| LakeError::delta(name.clone(), e))?;
    views.iter().try_fold(0u64, |acc, v| {
        v.num_records().map(|n| acc + n as u64).ok_or_else(|| {
            LakeError::Inconsistent(format!(
                "{name}: file {} has no row count statistics",
                v.path()
            ))
        })
    })
}
