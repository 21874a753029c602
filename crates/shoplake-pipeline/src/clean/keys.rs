//! Sets of row keys ([`super::rules::row_key`]): how exact duplicates are found without
//! comparing every column of every row, when they are not found by the day's sort.

use hashbrown::HashTable;
use shoplake_lake::arrow::array::{BooleanArray, RecordBatch};
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
/// dropped; `keys[b][r]` is the row key of row `r` of batch `b` (each batch's keys are freed
/// once they are in the set).
pub fn first_copies(
    batches: Vec<RecordBatch>,
    keys: Vec<Vec<u128>>,
    capacity: usize,
) -> Result<(Vec<RecordBatch>, u64)> {
    let mut seen = KeySet::with_capacity(capacity);
    let mut duplicates = 0u64;
    let mut out = Vec::with_capacity(batches.len());
    for (batch, keys) in batches.into_iter().zip(keys) {
        let first: BooleanArray = keys.iter().map(|k| Some(seen.insert(*k))).collect();
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
