//! Sets of row keys ([`super::rules::row_key`]): how exact duplicates are found without
//! comparing every column of every row, when they are not found by the day's sort.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

use shoplake_lake::arrow::array::{BooleanArray, RecordBatch};
use shoplake_lake::arrow::compute::filter_record_batch;

use crate::error::Result;

/// Row keys seen so far. The keys are already uniform 128-bit hashes, so the set uses their
/// low bits as its hash instead of hashing them again.
pub type KeySet = HashSet<u128, BuildHasherDefault<KeyHasher>>;

/// The hasher of [`KeySet`]: the low 64 bits of the key as they are.
#[derive(Default)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u128(&mut self, key: u128) {
        self.0 = key as u64;
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
    let mut seen = KeySet::with_capacity_and_hasher(capacity, Default::default());
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
