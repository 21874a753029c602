//! The set of rows already written, for exact duplicate removal across the whole input.
//!
//! Two copies of a row have the same event_time, hence the same day, so keys are kept per
//! day (and per shard within a day, so that workers rarely wait for each other). Exports
//! come in time order, so most days stop receiving rows long before the input ends: when the
//! keys outgrow their memory budget, the days touched longest ago are sorted and moved to a
//! file (16 bytes a key). A late row for such a day brings its keys back into memory, sorted,
//! with the day's new keys beside them, so the result is exact whatever the row order; only
//! the memory saving depends on it.

use std::collections::HashMap;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use super::ConvertError;
use crate::clean::keys::KeySet;

/// Shards per day.
const SHARDS: usize = 16;

/// The keys of one shard of one day.
enum Keys {
    /// In a hash set, as inserted.
    Hot(KeySet),
    /// Sorted (from a spill file) plus the keys added since.
    Sorted { sorted: Vec<u128>, added: KeySet },
    /// In a file, `len` keys, sorted.
    Spilled { path: PathBuf, len: usize },
}

impl Keys {
    /// Bytes held in memory (approximately: 17 bytes a hash-set slot, 16 a sorted key).
    fn bytes(&self) -> usize {
        match self {
            Keys::Hot(set) => set.capacity() * 17,
            Keys::Sorted { sorted, added } => sorted.capacity() * 16 + added.capacity() * 17,
            Keys::Spilled { .. } => 0,
        }
    }
}

struct Day {
    shards: Vec<Mutex<Keys>>,
    /// Value of the touch clock when a row of this day last came.
    touched: AtomicU64,
}

/// Row keys ([`crate::clean::rules::identity`]) seen so far.
pub(crate) struct SeenRows {
    days: RwLock<HashMap<i32, Arc<Day>>>,
    clock: AtomicU64,
    budget: usize,
    spill_dir: PathBuf,
    spilled_days: AtomicU64,
    reloaded_files: AtomicU64,
}

impl SeenRows {
    /// Keys kept within `budget` bytes of memory, spilling into `spill_dir`.
    pub(crate) fn new(budget: usize, spill_dir: &Path) -> Self {
        SeenRows {
            days: RwLock::new(HashMap::new()),
            clock: AtomicU64::new(0),
            budget,
            spill_dir: spill_dir.to_path_buf(),
            spilled_days: AtomicU64::new(0),
            reloaded_files: AtomicU64::new(0),
        }
    }

    /// The keys of `day`, created when new. Callers keep the handle while rows of the same
    /// day follow.
    pub(crate) fn day(&self, day: i32) -> DayHandle {
        let tick = self.clock.fetch_add(1, Ordering::Relaxed);
        if let Some(d) = self
            .days
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&day)
        {
            d.touched.store(tick, Ordering::Relaxed);
            return DayHandle { keys: d.clone() };
        }
        let mut days = self.days.write().unwrap_or_else(|p| p.into_inner());
        let d = days.entry(day).or_insert_with(|| {
            Arc::new(Day {
                shards: (0..SHARDS)
                    .map(|_| Mutex::new(Keys::Hot(KeySet::default())))
                    .collect(),
                touched: AtomicU64::new(tick),
            })
        });
        d.touched.store(tick, Ordering::Relaxed);
        DayHandle { keys: d.clone() }
    }

    /// Notes that rows of the handle's day just came (keeps it from being spilled first).
    pub(crate) fn touch(&self, handle: &DayHandle) {
        let tick = self.clock.fetch_add(1, Ordering::Relaxed);
        handle.keys.touched.store(tick, Ordering::Relaxed);
    }

    /// Records `key` of a row of the handle's day; true when it was not seen before.
    pub(crate) fn insert(&self, handle: &DayHandle, key: u128) -> Result<bool, ConvertError> {
        let shard = (key >> 124) as usize % SHARDS;
        let mut keys = handle.keys.shards[shard]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Keys::Spilled { path, len } = &*keys {
            let sorted = read_keys(path, *len)?;
            let _ = std::fs::remove_file(path);
            *keys = Keys::Sorted {
                sorted,
                added: KeySet::default(),
            };
            self.reloaded_files.fetch_add(1, Ordering::Relaxed);
        }
        Ok(match &mut *keys {
            Keys::Hot(set) => set.insert(key),
            Keys::Sorted { sorted, added } => {
                sorted.binary_search(&key).is_err() && added.insert(key)
            }
            Keys::Spilled { .. } => unreachable!("reloaded above"),
        })
    }

    /// When the keys hold more than the budget, moves the days touched longest ago to files
    /// until they fit; the day touched last stays.
    pub(crate) fn bound_memory(&self) -> Result<(), ConvertError> {
        loop {
            let days: Vec<(i32, Arc<Day>)> = self
                .days
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|(d, k)| (*d, k.clone()))
                .collect();
            let held = |d: &Day| -> usize {
                d.shards
                    .iter()
                    .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).bytes())
                    .sum()
            };
            let total: usize = days.iter().map(|(_, d)| held(d)).sum();
            if total <= self.budget {
                return Ok(());
            }
            let newest = days
                .iter()
                .map(|(_, d)| d.touched.load(Ordering::Relaxed))
                .max()
                .unwrap_or(0);
            let coldest = days
                .iter()
                .filter(|(_, d)| d.touched.load(Ordering::Relaxed) != newest && held(d) > 0)
                .min_by_key(|(_, d)| d.touched.load(Ordering::Relaxed));
            let Some((day, d)) = coldest else {
                return Ok(()); // only the current day is left: it has to stay
            };
            for (i, shard) in d.shards.iter().enumerate() {
                let mut keys = shard.lock().unwrap_or_else(|p| p.into_inner());
                let mut sorted: Vec<u128> =
                    match std::mem::replace(&mut *keys, Keys::Hot(KeySet::default())) {
                        Keys::Hot(set) => set.into_iter().collect(),
                        Keys::Sorted { sorted, added } => sorted.into_iter().chain(added).collect(),
                        spilled @ Keys::Spilled { .. } => {
                            *keys = spilled;
                            continue;
                        }
                    };
                sorted.sort_unstable();
                let path = self.spill_dir.join(format!("{day}-{i}.keys"));
                write_keys(&path, &sorted)?;
                *keys = Keys::Spilled {
                    path,
                    len: sorted.len(),
                };
            }
            self.spilled_days.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Days moved to files, and files read back because late rows of their day came.
    pub(crate) fn spill_counts(&self) -> (u64, u64) {
        (
            self.spilled_days.load(Ordering::Relaxed),
            self.reloaded_files.load(Ordering::Relaxed),
        )
    }
}

/// A worker's handle on the keys of one day.
pub(crate) struct DayHandle {
    keys: Arc<Day>,
}

fn write_keys(path: &Path, keys: &[u128]) -> Result<(), ConvertError> {
    let file = std::fs::File::create(path).map_err(|e| ConvertError::write(path, e))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    for k in keys {
        out.write_all(&k.to_le_bytes())
            .map_err(|e| ConvertError::write(path, e))?;
    }
    out.flush().map_err(|e| ConvertError::write(path, e))
}

fn read_keys(path: &Path, len: usize) -> Result<Vec<u128>, ConvertError> {
    let err = |e: std::io::Error| ConvertError::Write {
        path: path.to_path_buf(),
        reason: format!("cannot read back spilled keys: {e}"),
    };
    let mut input = BufReader::with_capacity(1 << 20, std::fs::File::open(path).map_err(err)?);
    let mut keys = Vec::with_capacity(len);
    let mut buf = [0u8; 16];
    for _ in 0..len {
        input.read_exact(&mut buf).map_err(err)?;
        keys.push(u128::from_le_bytes(buf));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u64) -> u128 {
        // spread over shards like real hashes
        xxhash_rust::xxh3::xxh3_128(&i.to_le_bytes())
    }

    #[test]
    fn remembers_keys_across_spills_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        // A budget so small that every day but the current one is spilled.
        let seen = SeenRows::new(1, dir.path());
        for day in 0..5 {
            let h = seen.day(day);
            for i in 0..1000 {
                assert!(seen.insert(&h, key(day as u64 * 10_000 + i)).unwrap());
            }
            assert!(!seen.insert(&h, key(day as u64 * 10_000)).unwrap());
            seen.bound_memory().unwrap();
        }
        assert_eq!(seen.spill_counts().0, 4);
        // Late rows for spilled days: old keys are found, new ones added, and remembered.
        for day in 0..4 {
            let h = seen.day(day);
            assert!(!seen.insert(&h, key(day as u64 * 10_000 + 999)).unwrap());
            assert!(seen.insert(&h, key(day as u64 * 10_000 + 5000)).unwrap());
            assert!(!seen.insert(&h, key(day as u64 * 10_000 + 5000)).unwrap());
            seen.bound_memory().unwrap();
        }
        assert!(seen.spill_counts().1 >= 4);
        let h = seen.day(2);
        assert!(!seen.insert(&h, key(20_000 + 5000)).unwrap());
        assert!(!seen.insert(&h, key(20_000 + 1)).unwrap());
        // The same key on another day is another row.
        let h = seen.day(7);
        assert!(seen.insert(&h, key(20_000 + 1)).unwrap());
    }
}
