//! The hash table of the key checks: byte keys in an arena, numbered in a hashbrown table,
//! looked up a chunk of rows at a time so that the cache misses of many lookups overlap.
//!
//! A lookup in a table of millions of keys misses the cache twice: the table's entry, then
//! the key's bytes. An entry holds the key's number and 32 bits of its hash (its tag), and is
//! placed by a mix of the tag, so growing the table never reads a key again. A chunk of rows
//! is looked up in phases: every row's entry by its tag (independent probes, which the
//! processor overlaps), then a prefetch of the candidates' bytes, then the comparisons; a
//! tag shared by another key (rare) is resolved by a full probe. The keys' bytes go into
//! fixed blocks, so that they are never copied as the arena grows (a doubling vector of a
//! month's session ids would hold 1.5 GB for a moment).

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Int64Array, LargeStringArray, StringArray, StringViewArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Date32Type, Int64Type};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::memory_pool::MemoryReservation;
use hashbrown::HashTable;
use hashbrown::hash_table::Entry;

/// Rows looked up together (their slots, spans and bytes stay in the cache meanwhile).
pub(super) const CHUNK: usize = 512;

/// Whether the key checks compare a column of this type as integers: signed up to 64
/// bits, unsigned up to 32 (what an i64 holds exactly).
pub(super) fn is_integer_key(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
    )
}

/// One batch's keys, readable as bytes whatever the column's physical type.
pub(super) enum KeyColumn {
    /// Integers and dates, widened to 64 bits: a key is a value's 8 bytes.
    Integer(Int64Array),
    Utf8(StringArray),
    LargeUtf8(LargeStringArray),
    View(StringViewArray),
}

impl KeyColumn {
    pub(super) fn of(array: &ArrayRef) -> Result<Self> {
        Ok(match array.data_type() {
            DataType::Utf8 => Self::Utf8(array.as_string::<i32>().clone()),
            DataType::LargeUtf8 => Self::LargeUtf8(array.as_string::<i64>().clone()),
            DataType::Utf8View => Self::View(array.as_string_view().clone()),
            DataType::Date32 => Self::Integer(
                array
                    .as_primitive::<Date32Type>()
                    .unary::<_, Int64Type>(i64::from),
            ),
            t if is_integer_key(t) => {
                Self::Integer(cast(array, &DataType::Int64)?.as_primitive().clone())
            }
            other => {
                return Err(DataFusionError::Internal(format!(
                    "{other} is not a key type of the key checks"
                )));
            }
        })
    }

    pub(super) fn len(&self) -> usize {
        match self {
            Self::Integer(a) => a.len(),
            Self::Utf8(a) => a.len(),
            Self::LargeUtf8(a) => a.len(),
            Self::View(a) => a.len(),
        }
    }

    pub(super) fn is_null(&self, i: usize) -> bool {
        match self {
            Self::Integer(a) => a.is_null(i),
            Self::Utf8(a) => a.is_null(i),
            Self::LargeUtf8(a) => a.is_null(i),
            Self::View(a) => a.is_null(i),
        }
    }

    /// Row `i`'s key as bytes (an integer's are its native-endian bytes, read in place).
    pub(super) fn key(&self, i: usize) -> &[u8] {
        match self {
            Self::Integer(a) => {
                let size = size_of::<i64>();
                &a.values().inner().as_slice()[i * size..(i + 1) * size]
            }
            Self::Utf8(a) => a.value(i).as_bytes(),
            Self::LargeUtf8(a) => a.value(i).as_bytes(),
            Self::View(a) => a.value(i).as_bytes(),
        }
    }
}

/// Asks the processor to bring `value`'s cache line in; a hint, with no effect on results.
#[inline(always)]
fn prefetch<T: ?Sized>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults, and `value` is a valid reference anyway.
    #[allow(unsafe_code)]
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>((value as *const T).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// The table outgrew the memory budget or what a pass may hold (2^32 keys), or a key is as
/// long as a [`BLOCK`].
pub(super) struct Full;

/// Most bytes per arena block (a key's bytes never span two).
const BLOCK: usize = 1 << 22;

/// Keys' bytes in blocks of at most [`BLOCK`]; a key is addressed by a span: its block (20 bits),
/// its offset in the block (22 bits) and its length (22 bits).
#[derive(Default)]
struct Arena {
    blocks: Vec<Vec<u8>>,
}

impl Arena {
    /// The bytes a new block for `key` would take, if the last one has no room for it.
    fn next_block(&self, key: &[u8]) -> Option<usize> {
        // An empty key needs no bytes (its span is 0, wherever it is).
        let room = self
            .blocks
            .last()
            .map_or(0, |b| BLOCK.min(b.capacity()) - b.len());
        (!key.is_empty() && room < key.len()).then(|| {
            // Blocks double from 4 KiB, so a small table stays small.
            let last = self.blocks.last().map_or(0, Vec::capacity);
            (last * 2).clamp(4096, BLOCK).max(key.len())
        })
    }

    fn push(&mut self, key: &[u8]) -> Result<u64, Full> {
        if key.len() >= BLOCK {
            return Err(Full);
        }
        if key.is_empty() {
            return Ok(0);
        }
        if let Some(size) = self.next_block(key) {
            if self.blocks.len() == 1 << 20 {
                return Err(Full);
            }
            self.blocks.push(Vec::with_capacity(size));
        }
        let block = self.blocks.len() - 1;
        let bytes = &mut self.blocks[block];
        let offset = bytes.len();
        bytes.extend_from_slice(key);
        Ok(((block as u64) << 44) | ((offset as u64) << 22) | key.len() as u64)
    }

    fn get(&self, span: u64) -> &[u8] {
        let len = span as usize & (BLOCK - 1);
        if len == 0 {
            return &[];
        }
        let block = (span >> 44) as usize;
        let offset = ((span >> 22) as usize) & (BLOCK - 1);
        &self.blocks[block][offset..offset + len]
    }

    fn allocated(&self) -> usize {
        self.blocks.iter().map(Vec::capacity).sum::<usize>()
            + self.blocks.capacity() * size_of::<Vec<u8>>()
    }
}

/// Distinct byte keys, numbered in order of arrival.
pub(super) struct KeyTable {
    /// `(tag << 32) | number`, placed by [`place`] of the tag.
    entries: HashTable<u64>,
    /// Key `n` is `arena.get(spans[n])`.
    arena: Arena,
    spans: Vec<u64>,
    /// Rows of each key, when counting.
    counts: Option<Vec<u64>>,
}

/// A key's tag: the top half of its hash (the bottom half is free for the caller, to split
/// keys into passes).
fn tag_of(hash: u64) -> u32 {
    (hash >> 32) as u32
}

/// Where an entry goes, from its tag: hashbrown takes the bucket from the low bits and its
/// control byte from the top seven, and the multiplication spreads the tag over both.
fn place(tag: u32) -> u64 {
    u64::from(tag).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

fn entry_tag(entry: u64) -> u32 {
    (entry >> 32) as u32
}

fn entry_number(entry: u64) -> usize {
    entry as u32 as usize
}

impl KeyTable {
    pub(super) fn new(counting: bool) -> Self {
        Self {
            entries: HashTable::new(),
            arena: Arena::default(),
            spans: Vec::new(),
            counts: counting.then(Vec::new),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.spans.len()
    }

    pub(super) fn key(&self, n: usize) -> &[u8] {
        self.arena.get(self.spans[n])
    }

    /// Rows of key `n` (when counting).
    pub(super) fn count(&self, n: usize) -> u64 {
        self.counts.as_ref().map_or(0, |c| c[n])
    }

    /// The number of `key`, whose hash is `hash`.
    fn find(&self, hash: u64, key: &[u8]) -> Option<usize> {
        let tag = tag_of(hash);
        self.entries
            .find(place(tag), |&e| {
                entry_tag(e) == tag && self.key(entry_number(e)) == key
            })
            .map(|&e| entry_number(e))
    }

    /// Reserves in `budget` what the table holds plus `extra` bytes, before allocating them.
    fn reserve(&self, budget: &MemoryReservation, extra: usize) -> Result<(), Full> {
        budget
            .try_resize(self.allocated() + extra)
            .map_err(|_| Full)
    }

    /// Adds one row of each of `rows` (row, hash) of `keys`: a new key, or one more row of
    /// a known one. Every allocation is reserved in `budget` first (a growing table holds
    /// its old and new entries at once): `Full` when the budget refuses.
    pub(super) fn add(
        &mut self,
        keys: &KeyColumn,
        rows: &[(usize, u64)],
        budget: &MemoryReservation,
    ) -> Result<(), Full> {
        for &(row, hash) in rows {
            let key = keys.key(row);
            if self.entries.len() == self.entries.capacity() {
                // The next new key doubles the table (hashbrown grows before it looks).
                self.reserve(budget, 2 * self.entries.allocation_size().max(1024))?;
            }
            if self.spans.len() == self.spans.capacity() {
                // The vectors of spans and counts double.
                let per_key = size_of::<u64>() * (1 + usize::from(self.counts.is_some()));
                self.reserve(budget, self.spans.capacity().max(4) * per_key)?;
            }
            if let Some(size) = self.arena.next_block(key) {
                self.reserve(budget, size)?;
            }
            let tag = tag_of(hash);
            let (arena, spans) = (&self.arena, &self.spans);
            let found = self.entries.entry(
                place(tag),
                |&e| entry_tag(e) == tag && arena.get(spans[entry_number(e)]) == key,
                |&e| place(entry_tag(e)),
            );
            match found {
                Entry::Occupied(e) => {
                    if let Some(counts) = &mut self.counts {
                        counts[entry_number(*e.get())] += 1;
                    }
                }
                Entry::Vacant(slot) => {
                    let number = u32::try_from(self.spans.len()).map_err(|_| Full)?;
                    slot.insert((u64::from(tag) << 32) | u64::from(number));
                    self.spans.push(self.arena.push(key)?);
                    if let Some(counts) = &mut self.counts {
                        counts.push(1);
                    }
                }
            }
        }
        Ok(())
    }

    /// Calls `missing(row)` for each of `rows` (row, hash) whose key is not in the table.
    /// `numbers` is the caller's buffer, reused between chunks.
    pub(super) fn lookup(
        &self,
        keys: &KeyColumn,
        rows: &[(usize, u64)],
        numbers: &mut Vec<Option<usize>>,
        mut missing: impl FnMut(usize),
    ) {
        // The first key with each row's tag: no key bytes read yet.
        numbers.clear();
        numbers.extend(rows.iter().map(|&(_, hash)| {
            let tag = tag_of(hash);
            self.entries
                .find(place(tag), |&e| entry_tag(e) == tag)
                .map(|&e| entry_number(e))
        }));
        for n in numbers.iter().flatten() {
            prefetch(self.key(*n));
        }
        for (&(row, hash), n) in rows.iter().zip(numbers.iter()) {
            let key = keys.key(row);
            let found = match n {
                None => false,
                Some(n) if self.key(*n) == key => true,
                // Another key with the same tag: a full probe.
                Some(_) => self.find(hash, key).is_some(),
            };
            if !found {
                missing(row);
            }
        }
    }

    /// Bytes held.
    pub(super) fn allocated(&self) -> usize {
        self.entries.allocation_size()
            + self.arena.allocated()
            + self.spans.capacity() * size_of::<u64>()
            + self
                .counts
                .as_ref()
                .map_or(0, |c| c.capacity() * size_of::<u64>())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::execution::memory_pool::{
        GreedyMemoryPool, MemoryConsumer, MemoryPool, UnboundedMemoryPool,
    };

    use super::*;

    fn budget(pool: Arc<dyn MemoryPool>) -> MemoryReservation {
        MemoryConsumer::new("test").register(&pool)
    }

    fn column(keys: &[&str]) -> KeyColumn {
        KeyColumn::of(&(Arc::new(StringArray::from(keys.to_vec())) as ArrayRef)).unwrap()
    }

    /// Keys that share a hash (so a tag) are told apart by their bytes, in one run of slots
    /// that outgrows the table several times.
    #[test]
    fn keys_with_one_hash_are_told_apart() {
        let words: Vec<String> = (0..3000).map(|i| format!("k{i}")).collect();
        let present: Vec<&str> = words.iter().map(String::as_str).collect();
        let rows: Vec<(usize, u64)> = (0..present.len()).map(|r| (r, 42 << 32)).collect();
        let mut table = KeyTable::new(true);
        let keys = column(&present);
        let unbounded = budget(Arc::new(UnboundedMemoryPool::default()));
        for chunk in rows.chunks(CHUNK) {
            assert!(table.add(&keys, chunk, &unbounded).is_ok());
        }
        // Every key a second time, the first one a third time.
        for chunk in rows.chunks(CHUNK) {
            assert!(table.add(&keys, chunk, &unbounded).is_ok());
        }
        assert!(table.add(&keys, &rows[..1], &unbounded).is_ok());
        assert!(unbounded.size() >= table.allocated());
        assert_eq!(table.len(), 3000);
        assert!(
            table.entries.capacity() >= 3000,
            "{} entries",
            table.entries.capacity()
        );
        assert_eq!((table.key(0), table.count(0)), (&b"k0"[..], 3));
        assert_eq!((table.key(2999), table.count(2999)), (&b"k2999"[..], 2));

        let probe = column(&["k17", "x", "k2999", "k3000", "k0"]);
        let probe_rows: Vec<(usize, u64)> = (0..5).map(|r| (r, 42 << 32)).collect();
        let (mut numbers, mut missing) = (Vec::new(), Vec::new());
        table.lookup(&probe, &probe_rows, &mut numbers, |row| missing.push(row));
        assert_eq!(missing, [1, 3]);
    }

    /// Keys fill blocks that double up to the largest, never span two, and read back whole;
    /// a key as long as a block does not fit.
    #[test]
    fn the_arena_keeps_every_key_in_one_block() {
        let mut arena = Arena::default();
        let keys: Vec<Vec<u8>> = (0..12_000)
            .map(|i: usize| vec![(i % 251) as u8; 1 + i % 1500])
            .collect();
        let spans: Vec<u64> = keys.iter().map(|k| arena.push(k).ok().unwrap()).collect();
        for (key, span) in keys.iter().zip(&spans) {
            assert_eq!(arena.get(*span), &key[..]);
        }
        assert_eq!(arena.blocks[0].capacity(), 4096);
        assert!(arena.blocks.iter().all(|b| b.capacity() <= BLOCK));
        assert!(
            arena
                .blocks
                .iter()
                .filter(|b| b.capacity() == BLOCK)
                .count()
                >= 2
        );
        assert!(arena.push(&vec![0; BLOCK]).is_err());
    }

    /// An empty key takes no bytes, even when the last block is exactly full.
    #[test]
    fn an_empty_key_after_a_full_block() {
        let mut arena = Arena::default();
        let filler = vec![7u8; 4096];
        let full = arena.push(&filler).ok().unwrap();
        assert_eq!(arena.blocks[0].len(), arena.blocks[0].capacity());
        let empty = arena.push(b"").ok().unwrap();
        assert_eq!(arena.get(empty), b"");
        assert_eq!(arena.get(full), &filler[..]);
        assert_eq!(arena.blocks.len(), 1);
    }

    /// Growth is reserved before it is allocated: a budget that refuses it stops the table
    /// with `Full`, and the table never holds more than the budget.
    #[test]
    fn the_budget_is_asked_before_growing() {
        let words: Vec<String> = (0..100_000).map(|i| format!("key-{i:08}")).collect();
        let keys = column(&words.iter().map(String::as_str).collect::<Vec<_>>());
        let rows: Vec<(usize, u64)> = (0..words.len())
            .map(|r| (r, (r as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)))
            .collect();
        let limit = 256 << 10;
        let pool: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(limit));
        let reservation = budget(pool);
        let mut table = KeyTable::new(false);
        let stopped = rows
            .chunks(CHUNK)
            .any(|chunk| table.add(&keys, chunk, &reservation).is_err());
        assert!(stopped);
        assert!(table.allocated() <= limit, "{} bytes", table.allocated());
        assert!(table.len() > 1000 && table.len() < words.len());
    }

    /// Integers and dates are their values' bytes; nulls are the caller's to skip.
    #[test]
    fn integer_keys_are_their_values() {
        let ints = KeyColumn::of(
            &(Arc::new(datafusion::arrow::array::Int32Array::from(vec![
                Some(7),
                None,
                Some(-1),
            ])) as ArrayRef),
        )
        .unwrap();
        assert_eq!(ints.len(), 3);
        assert!(ints.is_null(1) && !ints.is_null(0));
        assert_eq!(ints.key(0), 7i64.to_ne_bytes());
        assert_eq!(ints.key(2), (-1i64).to_ne_bytes());
        let days = KeyColumn::of(
            &(Arc::new(datafusion::arrow::array::Date32Array::from(vec![18_383])) as ArrayRef),
        )
        .unwrap();
        assert_eq!(days.key(0), 18_383i64.to_ne_bytes());
    }
}
