//! Sets of row keys ([`super::rules::row_key`]): how exact duplicates are found without
//! comparing every column of every row.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

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
