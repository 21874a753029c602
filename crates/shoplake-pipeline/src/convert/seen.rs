//! The set of rows already written, for exact duplicate removal across the whole input.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;

/// Row keys ([`crate::clean::rules::row_key`]) seen so far, in shards so that parse workers
/// rarely wait for each other. A key costs about 20 bytes.
pub(crate) struct SeenRows {
    shards: Vec<Mutex<HashSet<u128, BuildHasherDefault<KeyHasher>>>>,
}

const SHARDS: usize = 64;

impl SeenRows {
    pub(crate) fn new() -> Self {
        SeenRows {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(HashSet::default()))
                .collect(),
        }
    }

    /// Records `key`; true when it was not seen before.
    pub(crate) fn insert(&self, key: u128) -> bool {
        let shard = (key >> 122) as usize % SHARDS;
        self.shards[shard]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(key)
    }
}

/// The keys are already uniform hashes: use their low bits as they are.
#[derive(Default)]
pub(crate) struct KeyHasher(u64);

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_keys() {
        let seen = SeenRows::new();
        assert!(seen.insert(1));
        assert!(seen.insert(u128::MAX));
        assert!(!seen.insert(1));
        assert!(!seen.insert(u128::MAX));
        assert!(seen.insert(2));
    }
}
