//! Reading one export file into `raw.events` record batches.
//!
//! Lines are kept as delivered: the nine fields stay text. A line that cannot be split into
//! exactly nine fields, or that is not valid UTF-8, is not an error: it becomes a row with
//! `_error` set, its original text in `_raw_line` and null fields, and the cleaning step
//! quarantines it as `malformed_row`. Fields are split on commas; a line containing a double
//! quote is split by the `csv` crate so that quoted commas are honoured.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;

use super::scientific::is_scientific;
use chrono::NaiveDate;
use shoplake_lake::arrow::array::{
    ArrayRef, Date32Builder, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondArray,
};
use shoplake_lake::arrow::datatypes::SchemaRef;
use shoplake_lake::arrow::error::ArrowError;
use shoplake_lake::time::date_to_days;

pub use shoplake_lake::tables::SOURCE_COLUMNS;

/// The exact header line of an export.
pub const EXPECTED_HEADER: &str = shoplake_lake::tables::EXPORT_HEADER;

/// Longest line kept whole; a longer line is a malformed row (`line_too_long`) whose
/// `_raw_line` holds its first bytes. Guards memory against a file without line breaks.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Reads one line into `buf`, keeping at most `max` bytes of it; the rest of a longer line is
/// read and discarded. Returns the bytes consumed and whether the line was cut.
pub(crate) fn read_line_capped(
    input: &mut dyn BufRead,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<(usize, bool)> {
    let mut consumed = 0;
    let mut cut = false;
    loop {
        let available = input.fill_buf()?;
        if available.is_empty() {
            return Ok((consumed, cut));
        }
        let (chunk, found) = match available.iter().position(|b| *b == b'\n') {
            Some(i) => (&available[..=i], true),
            None => (available, false),
        };
        let room = max.saturating_sub(buf.len());
        if chunk.len() > room {
            cut = true;
        }
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let used = chunk.len();
        input.consume(used);
        consumed += used;
        if found {
            return Ok((consumed, cut));
        }
    }
}

/// Day given to malformed lines of a file in which no line has a valid date.
pub(crate) const FALLBACK_DATE: (i32, u32, u32) = (1970, 1, 1);

/// Passes bytes through while hashing them (xxh3-128), so the content hash of a file's
/// decompressed text comes for free with reading it.
struct HashingReader<R> {
    inner: R,
    hasher: std::sync::Arc<std::sync::Mutex<xxhash_rust::xxh3::Xxh3>>,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Ok(mut h) = self.hasher.lock() {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
}

/// Counts the bytes read from the file as stored (before inflating), for progress.
struct CountingReader<R> {
    inner: R,
    count: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

/// Opens a file, inflating it when `gzip` (multi-member gzip streams are read whole).
pub fn open_decoded(path: &Path, gzip: bool) -> std::io::Result<Box<dyn Read + Send>> {
    open_counted(path, gzip, Default::default())
}

/// Like `open_decoded`, adding the bytes read from disk to `count`.
pub fn open_counted(
    path: &Path,
    gzip: bool,
    count: std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> std::io::Result<Box<dyn Read + Send>> {
    let file = CountingReader {
        inner: File::open(path)?,
        count,
    };
    Ok(if gzip {
        Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(
            1 << 20,
            file,
        )))
    } else {
        Box::new(file)
    })
}

/// Counts of what a reader has read so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Data lines read (header excluded).
    pub rows: u64,
    /// Lines flagged malformed.
    pub malformed: u64,
    /// Lines with a category_id.
    pub category_ids: u64,
    /// Lines whose category_id is in scientific notation (the file went through a
    /// spreadsheet).
    pub scientific_category_ids: u64,
    /// Earliest and latest event_date assigned.
    pub first_date: Option<NaiveDate>,
    /// See `first_date`.
    pub last_date: Option<NaiveDate>,
}

/// Constant lineage of one batch of rows.
#[derive(Debug, Clone)]
pub struct Lineage {
    /// `_source`.
    pub source: String,
    /// `_batch_id`.
    pub batch_id: String,
    /// `_ingested_at`, microseconds since the epoch.
    pub ingested_at_micros: i64,
}

/// Reads a file as `raw.events` batches. An iterator of `Result<RecordBatch, ArrowError>`; an
/// I/O error (unreadable file, corrupt gzip) ends it with an error.
pub struct RawBatchReader {
    input: Box<dyn BufRead + Send>,
    content: std::sync::Arc<std::sync::Mutex<xxhash_rust::xxh3::Xxh3>>,
    schema: SchemaRef,
    lineage: Lineage,
    batch_rows: usize,
    line_no: i64,
    last_date: Option<i32>,
    stats: ReadStats,
    done: bool,
    buf: Vec<u8>,
    scratch: csv::StringRecord,
}

impl RawBatchReader {
    /// Opens `path` (already checked by discovery) and skips its header.
    pub fn open(path: &Path, gzip: bool, lineage: Lineage) -> std::io::Result<Self> {
        Self::open_counted(path, gzip, lineage, Default::default())
    }

    /// Like [`RawBatchReader::open`], adding the bytes read from disk to `bytes_read`.
    pub fn open_counted(
        path: &Path,
        gzip: bool,
        lineage: Lineage,
        bytes_read: std::sync::Arc<std::sync::atomic::AtomicU64>,
    ) -> std::io::Result<Self> {
        let content = std::sync::Arc::new(std::sync::Mutex::new(xxhash_rust::xxh3::Xxh3::new()));
        let hashing = HashingReader {
            inner: open_counted(path, gzip, bytes_read)?,
            hasher: content.clone(),
        };
        let mut input: Box<dyn BufRead + Send> =
            Box::new(BufReader::with_capacity(1 << 20, hashing));
        let mut header = Vec::new();
        input.read_until(b'\n', &mut header)?;
        Ok(RawBatchReader {
            input,
            content,
            schema: shoplake_lake::tables::raw_events().arrow_schema(),
            lineage,
            batch_rows: 64 * 1024,
            line_no: 1,
            last_date: None,
            stats: ReadStats::default(),
            done: false,
            buf: Vec::with_capacity(256),
            scratch: csv::StringRecord::new(),
        })
    }

    /// Schema of the batches.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Hash (xxh3-128, hex) of the decompressed text read so far; after the last batch, of
    /// the whole file. The same export gives the same hash however it was compressed.
    pub fn content_hash(&self) -> String {
        let digest = self
            .content
            .lock()
            .map(|h| h.digest128())
            .unwrap_or_default();
        format!("{digest:032x}")
    }

    /// What has been read so far.
    pub fn stats(&self) -> &ReadStats {
        &self.stats
    }

    fn note_date(&mut self, days: i32) {
        let date = shoplake_lake::time::days_to_date(days);
        self.stats.first_date = Some(self.stats.first_date.map_or(date, |d| d.min(date)));
        self.stats.last_date = Some(self.stats.last_date.map_or(date, |d| d.max(date)));
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>, ArrowError> {
        let mut b = Builders::new(self.batch_rows);
        // Rows whose day is not known yet (malformed lines before the first valid date).
        let mut undated: Vec<usize> = Vec::new();
        let mut dates: Vec<Option<i32>> = Vec::with_capacity(self.batch_rows);
        // Undated rows (malformed lines before the first dated line) wait for the next date,
        // but at most one extra batch: then they take the fallback day.
        while dates.len() < self.batch_rows
            || (!undated.is_empty() && !self.done && dates.len() < 2 * self.batch_rows)
        {
            self.buf.clear();
            let (n, too_long) = read_line_capped(&mut self.input, &mut self.buf, MAX_LINE_BYTES)
                .map_err(|e| ArrowError::ExternalError(Box::new(e)))?;
            if n == 0 {
                self.done = true;
                break;
            }
            self.line_no += 1;
            self.stats.rows += 1;
            let mut line: &[u8] = &self.buf;
            while let [rest @ .., b'\n' | b'\r'] = line {
                line = rest;
            }
            let parsed = if too_long {
                Err("line_too_long")
            } else {
                split_fields(line, &mut self.scratch)
            };
            b.line.append_value(self.line_no);
            let date = match parsed {
                Ok(fields) => {
                    let category_id = fields[3];
                    if !category_id.is_empty() {
                        self.stats.category_ids += 1;
                        if is_scientific(category_id) {
                            self.stats.scientific_category_ids += 1;
                        }
                    }
                    for (builder, field) in b.fields.iter_mut().zip(fields.iter()) {
                        builder.append_value(field);
                    }
                    b.error.append_null();
                    b.raw_line.append_null();
                    date_prefix(fields[0].as_bytes())
                }
                Err(reason) => {
                    self.stats.malformed += 1;
                    for builder in b.fields.iter_mut() {
                        builder.append_null();
                    }
                    b.error.append_value(reason);
                    let text = String::from_utf8_lossy(line);
                    b.raw_line.append_value(&text);
                    date_prefix(text.as_bytes())
                }
            };
            match date.or(self.last_date) {
                Some(d) => {
                    self.last_date = Some(d);
                    for i in undated.drain(..) {
                        dates[i] = Some(d);
                    }
                    dates.push(Some(d));
                }
                None => {
                    undated.push(dates.len());
                    dates.push(None);
                }
            }
        }
        if dates.is_empty() {
            return Ok(None);
        }
        let fallback = date_to_days(
            NaiveDate::from_ymd_opt(FALLBACK_DATE.0, FALLBACK_DATE.1, FALLBACK_DATE.2)
                .expect("fallback is a date"),
        );
        let rows = dates.len();
        let mut date_builder = Date32Builder::with_capacity(rows);
        for d in &dates {
            let d = d.unwrap_or(fallback);
            date_builder.append_value(d);
        }
        let (min, max) = dates
            .iter()
            .map(|d| d.unwrap_or(fallback))
            .fold((i32::MAX, i32::MIN), |(lo, hi), d| (lo.min(d), hi.max(d)));
        self.note_date(min);
        self.note_date(max);
        let mut columns: Vec<ArrayRef> = b
            .fields
            .iter_mut()
            .map(|f| Arc::new(f.finish()) as ArrayRef)
            .collect();
        columns.push(Arc::new(b.line.finish()));
        columns.push(Arc::new(b.error.finish()));
        columns.push(Arc::new(b.raw_line.finish()));
        let mut source = StringBuilder::with_capacity(rows, rows * self.lineage.source.len());
        let mut batch = StringBuilder::with_capacity(rows, rows * self.lineage.batch_id.len());
        for _ in 0..rows {
            source.append_value(&self.lineage.source);
            batch.append_value(&self.lineage.batch_id);
        }
        columns.push(Arc::new(source.finish()));
        columns.push(Arc::new(batch.finish()));
        columns.push(Arc::new(
            TimestampMicrosecondArray::from(vec![self.lineage.ingested_at_micros; rows])
                .with_timezone("UTC"),
        ));
        columns.push(Arc::new(date_builder.finish()));
        RecordBatch::try_new(self.schema.clone(), columns).map(Some)
    }
}

impl Iterator for RawBatchReader {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        self.next_batch().transpose()
    }
}

struct Builders {
    fields: Vec<StringBuilder>,
    line: Int64Builder,
    error: StringBuilder,
    raw_line: StringBuilder,
}

impl Builders {
    fn new(rows: usize) -> Self {
        Builders {
            fields: (0..SOURCE_COLUMNS.len())
                .map(|_| StringBuilder::with_capacity(rows, rows * 12))
                .collect(),
            line: Int64Builder::with_capacity(rows),
            error: StringBuilder::new(),
            raw_line: StringBuilder::new(),
        }
    }
}

/// Splits a line (without its line break) into the nine fields, or says why it cannot.
///
/// Plain lines are cut at commas without copying; a line holding a double quote is read by
/// the `csv` crate into `scratch`, so quoted commas are honoured.
pub fn split_fields<'a>(
    line: &'a [u8],
    scratch: &'a mut csv::StringRecord,
) -> Result<[&'a str; 9], &'static str> {
    let text = std::str::from_utf8(line).map_err(|_| "invalid_utf8")?;
    let mut fields = [""; 9];
    if text.contains('"') {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes());
        if !matches!(reader.read_record(scratch), Ok(true)) || scratch.len() != fields.len() {
            return Err("wrong_field_count");
        }
        let record: &'a csv::StringRecord = scratch;
        for (slot, value) in fields.iter_mut().zip(record.iter()) {
            *slot = value;
        }
        return Ok(fields);
    }
    let mut parts = text.split(',');
    for slot in fields.iter_mut() {
        *slot = parts.next().ok_or("wrong_field_count")?;
    }
    if parts.next().is_some() {
        return Err("wrong_field_count");
    }
    Ok(fields)
}

/// Splits a line into owned fields (see [`split_fields`]).
#[cfg(test)]
fn split_line(line: &[u8]) -> Result<Vec<String>, &'static str> {
    let mut scratch = csv::StringRecord::new();
    split_fields(line, &mut scratch).map(|f| f.iter().map(|s| s.to_string()).collect())
}

/// The day of a text starting with `YYYY-MM-DD`, as days since the epoch.
pub fn date_prefix(text: &[u8]) -> Option<i32> {
    let t = text.get(..10)?;
    if t[4] != b'-' || t[7] != b'-' {
        return None;
    }
    let num = |s: &[u8]| -> Option<u32> {
        s.iter().try_fold(0u32, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let date = NaiveDate::from_ymd_opt(num(&t[0..4])? as i32, num(&t[5..7])?, num(&t[8..10])?)?;
    Some(date_to_days(date))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_plain_and_quoted_lines() {
        let plain = split_line(b"2020-04-01 00:00:03 UTC,view,1,2,,b,1.00,3,s").unwrap();
        assert_eq!(plain.len(), 9);
        assert_eq!(plain[4], "");
        let quoted = split_line(b"2020-04-01 00:00:03 UTC,view,1,2,\"a,b\",b,1.00,3,s").unwrap();
        assert_eq!(quoted[4], "a,b");
        assert_eq!(split_line(b"a,b,c"), Err("wrong_field_count"));
        assert_eq!(split_line(b""), Err("wrong_field_count"));
        assert_eq!(split_line(b"\xff\xfe,1,2,3,4,5,6,7,8"), Err("invalid_utf8"));
    }

    #[test]
    fn reads_date_prefixes() {
        assert_eq!(date_prefix(b"2020-04-01 00:00:03 UTC"), Some(18353));
        assert_eq!(date_prefix(b"2020-02-30 00:00:03 UTC"), None);
        assert_eq!(date_prefix(b"yesterday"), None);
        assert_eq!(date_prefix(b"2020-4-1"), None);
    }
}
