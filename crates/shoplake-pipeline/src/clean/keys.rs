//! Sets of row keys ([`super::rules::identity`]): how exact duplicates are found without
//! comparing every column of every row, when they are not found by the day's sort.

use hashbrown::HashTable;
use shoplake_lake::arrow::array::{Array, BooleanArray, RecordBatch};
use shoplake_lake::arrow::compute::filter_record_batch;

use crate::error::Result;

/// Row keys seen so far. The keys are already uniform 128-bit hashes, so the table hashes a
/// key by its low 64 bits instead of hashing it again.
#[derive(Debug, Default, Clone)]
pub struct KeySet(HashTable<u128>);

impl KeySet {
    /// An empty set with room for `capacity` keys.
    pub fn with_capacity(capacity: usize) -> Self {
        KeySet(HashTable::with_capacity(capacity))
    }

    /// Adds `key`; false when it was there already.
    pub fn insert(&mut self, key: u128) -> bool {
        let low = |k: &u128| *k as u64;
        match self.0.entry(key as u64, |k| *k == key, low) {
            hashbrown::hash_table::Entry::Occupied(_) => false,
            hashbrown::hash_table::Entry::Vacant(slot) => {
                slot.insert(key);
                true
            }
        }
    }

    /// How many keys the set holds room for.
    pub fn capacity(&self) -> usize {
        self.0.capacity()
    }
}

impl IntoIterator for KeySet {
    type Item = u128;
    type IntoIter = hashbrown::hash_table::IntoIter<u128>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// The first copy of every row of `batches` (in order), and how many later copies were
/// dropped; `keys[b][r]` is the row key of row `r` of batch `b`. A row as delivered is kept before a copy with a `data_issue`
/// (a category id repaired or lost), as the day's sort keeps it.
pub fn first_copies(
    batches: Vec<RecordBatch>,
    keys: Vec<Vec<u128>>,
    capacity: usize,
) -> Result<(Vec<RecordBatch>, u64)> {
    let mut seen = KeySet::with_capacity(capacity);
    let mut duplicates = 0u64;
    let issues: Vec<Option<BooleanArray>> = batches.iter().map(issue_mask).collect();
    let mut keep: Vec<Vec<bool>> = keys.iter().map(|k| vec![false; k.len()]).collect();
    // Rows as delivered first, then those with an issue.
    for pass_with_issue in [false, true] {
        for (b, batch_keys) in keys.iter().enumerate() {
            for (r, key) in batch_keys.iter().enumerate() {
                let has_issue = issues[b].as_ref().is_some_and(|m| m.value(r));
                if has_issue == pass_with_issue {
                    keep[b][r] = seen.insert(*key);
                }
            }
        }
    }
    drop(keys);
    let mut out = Vec::with_capacity(batches.len());
    for (batch, keep) in batches.into_iter().zip(keep) {
        let first = BooleanArray::from(keep);
        let dropped = first.false_count() as u64;
        duplicates += dropped;
        out.push(if dropped == 0 {
            batch
        } else {
            filter_record_batch(&batch, &first)?
        });
    }
    Ok((out, duplicates))
}

/// Which rows of a cleaned batch have a `data_issue`; `None` when none has.
fn issue_mask(batch: &RecordBatch) -> Option<BooleanArray> {
    let column = batch.column_by_name("data_issue")?;
    (column.null_count() < column.len())
        .then(|| BooleanArray::from_iter((0..column.len()).map(|i| Some(column.is_valid(i)))))
}
