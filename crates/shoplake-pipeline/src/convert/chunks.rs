//! Inflating an export into newline-aligned chunks.
//!
//! One thread reads and inflates each file and cuts the text into chunks of whole lines;
//! the parse workers take chunks from a queue. Inflating (one core for a gzip stream) thus
//! overlaps with parsing and writing on the other cores.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use shoplake_ingest::files::{MAX_LINE_BYTES, SourceFile, open_counted};

/// Whole lines of one file.
#[derive(Debug)]
pub(crate) struct Chunk {
    /// Index of the file in the input list.
    pub file: usize,
    /// Line number (1 = header) of the first line in `data`.
    pub first_line: u64,
    /// The text: whole lines, the last one ending in `\n` unless it ends the file.
    pub data: Vec<u8>,
    /// `data` is the first [`MAX_LINE_BYTES`] of a single longer line.
    pub too_long: bool,
}

/// Reads `source`, skips its header and hands its lines to `send` in chunks of about
/// `chunk_bytes`. Stops early (returning `Ok`) when `send` returns false.
pub(crate) fn read_chunks(
    file: usize,
    source: &SourceFile,
    chunk_bytes: usize,
    bytes_read: Arc<AtomicU64>,
    mut send: impl FnMut(Chunk) -> bool,
) -> std::io::Result<()> {
    let capacity = chunk_bytes.max(MAX_LINE_BYTES + 1);
    let mut input = open_counted(&source.path, source.gzip, bytes_read)?;
    let mut buf = vec![0u8; capacity];
    let mut filled = 0;
    let mut line_no = 1u64;
    let mut header_skipped = false;
    let mut at_eof = false;
    // Inside an over-long line whose start was already sent: drop bytes up to its end.
    let mut discarding = false;
    loop {
        while filled < capacity && !at_eof {
            let n = input.read(&mut buf[filled..])?;
            if n == 0 {
                at_eof = true;
            }
            filled += n;
        }
        let mut start = 0;
        if discarding {
            match buf[..filled].iter().position(|b| *b == b'\n') {
                Some(i) => {
                    start = i + 1;
                    discarding = false;
                }
                None => {
                    filled = 0;
                    if at_eof {
                        return Ok(());
                    }
                    continue;
                }
            }
        }
        if !header_skipped {
            match buf[start..filled].iter().position(|b| *b == b'\n') {
                Some(i) => start += i + 1,
                None => start = filled,
            }
            header_skipped = true;
        }
        let text = &buf[start..filled];
        if text.is_empty() {
            if at_eof {
                return Ok(());
            }
            filled = 0;
            continue;
        }
        let cut = if at_eof {
            Some(text.len())
        } else {
            text.iter().rposition(|b| *b == b'\n').map(|i| i + 1)
        };
        let chunk = match cut {
            Some(end) => {
                let data = text[..end].to_vec();
                let lines = count_lines(&data);
                let chunk = Chunk {
                    file,
                    first_line: line_no + 1,
                    data,
                    too_long: false,
                };
                line_no += lines;
                let rest = start + end;
                buf.copy_within(rest..filled, 0);
                filled -= rest;
                chunk
            }
            None if start > 0 => {
                // The line goes on past the buffer: move it to the front and read on.
                buf.copy_within(start..filled, 0);
                filled -= start;
                continue;
            }
            None => {
                // A full buffer holding no line break: one line longer than the cap.
                let chunk = Chunk {
                    file,
                    first_line: line_no + 1,
                    data: text[..MAX_LINE_BYTES.min(text.len())].to_vec(),
                    too_long: true,
                };
                line_no += 1;
                filled = 0;
                discarding = true;
                chunk
            }
        };
        if !send(chunk) {
            return Ok(());
        }
        if at_eof && filled == 0 {
            return Ok(());
        }
    }
}

/// Lines in a chunk: its line breaks, plus a last line without one.
pub(crate) fn count_lines(data: &[u8]) -> u64 {
    let breaks = data.iter().filter(|b| **b == b'\n').count() as u64;
    breaks + u64::from(!data.is_empty() && data.last() != Some(&b'\n'))
}
