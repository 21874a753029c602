//! Lines held back until every exact row has been seen: those whose category id a
//! spreadsheet printed in scientific notation. They go to a staging file per worker, not to
//! memory, because an export saved in a spreadsheet has such an id on every line; the known
//! categories are then read back from the day files written ([`known_categories`]).
//!
//! A record is the file index (u32), the line number (u64), the line's length (u32) and its
//! bytes, little-endian.

use std::fs::File;
use std::io::{BufReader, BufWriter, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use shoplake_lake::arrow::array::{Array, AsArray};
use shoplake_lake::arrow::compute::cast;
use shoplake_lake::arrow::datatypes::{DataType, Int64Type};
use shoplake_lake::datafusion::parquet::arrow::ProjectionMask;
use shoplake_lake::datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::ConvertError;
use crate::clean::categories::KnownCategories;

/// Lines cleaned between two looks at the memory bounds.
pub(crate) const GROUP_LINES: usize = 4096;

/// A line held back until the categories are known.
#[derive(Debug)]
pub(crate) struct Deferred {
    pub file: usize,
    pub line: u64,
    pub text: Vec<u8>,
}

/// One worker's file of deferred lines, created at the first line.
#[derive(Debug)]
pub(crate) struct DeferredWriter {
    path: PathBuf,
    out: Option<BufWriter<File>>,
    lines: u64,
}

impl DeferredWriter {
    pub(crate) fn new(dir: &Path, worker: usize) -> Self {
        DeferredWriter {
            path: dir.join(format!("deferred-{worker}.bin")),
            out: None,
            lines: 0,
        }
    }

    pub(crate) fn push(&mut self, file: usize, line: u64, text: &[u8]) -> Result<(), ConvertError> {
        let fail = |e: std::io::Error| ConvertError::write(&self.path, e);
        if self.out.is_none() {
            self.out = Some(BufWriter::with_capacity(
                1 << 20,
                File::create(&self.path).map_err(fail)?,
            ));
        }
        let out = self.out.as_mut().expect("created above");
        let file = u32::try_from(file).expect("fewer than 2^32 input files");
        let len = u32::try_from(text.len()).expect("lines are bounded by MAX_LINE_BYTES");
        out.write_all(&file.to_le_bytes()).map_err(fail)?;
        out.write_all(&line.to_le_bytes()).map_err(fail)?;
        out.write_all(&len.to_le_bytes()).map_err(fail)?;
        out.write_all(text).map_err(fail)?;
        self.lines += 1;
        Ok(())
    }

    /// Closes the file; `None` when no line was deferred.
    pub(crate) fn finish(self) -> Result<Option<DeferredFile>, ConvertError> {
        let Some(out) = self.out else {
            return Ok(None);
        };
        out.into_inner()
            .map_err(|e| ConvertError::write(&self.path, e.into_error()))?
            .sync_all()
            .map_err(|e| ConvertError::write(&self.path, e))?;
        Ok(Some(DeferredFile {
            path: self.path,
            lines: self.lines,
        }))
    }
}

/// A closed file of deferred lines.
#[derive(Debug)]
pub(crate) struct DeferredFile {
    pub path: PathBuf,
    pub lines: u64,
}

impl DeferredFile {
    /// Calls `each` with the lines in groups of at most [`GROUP_LINES`], in the order they
    /// were deferred, then removes the file.
    pub(crate) fn replay(
        self,
        mut each: impl FnMut(&[Deferred]) -> Result<(), ConvertError>,
    ) -> Result<(), ConvertError> {
        let fail = |e: std::io::Error| ConvertError::Read {
            path: self.path.clone(),
            reason: e.to_string(),
        };
        let mut input = BufReader::with_capacity(1 << 20, File::open(&self.path).map_err(fail)?);
        let mut group = Vec::with_capacity(GROUP_LINES);
        let mut read = 0u64;
        let mut head = [0u8; 16];
        loop {
            match input.read_exact(&mut head) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(fail(e)),
            }
            let file = u32::from_le_bytes(head[0..4].try_into().expect("4 bytes")) as usize;
            let line = u64::from_le_bytes(head[4..12].try_into().expect("8 bytes"));
            let len = u32::from_le_bytes(head[12..16].try_into().expect("4 bytes")) as usize;
            let mut text = vec![0; len];
            input.read_exact(&mut text).map_err(fail)?;
            group.push(Deferred { file, line, text });
            read += 1;
            if group.len() == GROUP_LINES {
                each(&group)?;
                group.clear();
            }
        }
        if !group.is_empty() {
            each(&group)?;
        }
        if read != self.lines {
            return Err(ConvertError::Accounting(format!(
                "{} deferred lines written to '{}' but {read} read back",
                self.lines,
                self.path.display()
            )));
        }
        std::fs::remove_file(&self.path).map_err(|e| ConvertError::write(&self.path, e))
    }
}

/// The categories of the rows written so far under `staging` (every exact row of the input,
/// once the workers are done): read back from the day files, three columns, only when some
/// line was deferred, so that the common export pays nothing per row.
pub(crate) fn known_categories(staging: &Path) -> Result<KnownCategories, ConvertError> {
    let mut known = KnownCategories::default();
    let fail = |path: &Path, e: &dyn std::fmt::Display| ConvertError::Read {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let days = std::fs::read_dir(staging).map_err(|e| fail(staging, &e))?;
    for day in days {
        let day = day.map_err(|e| fail(staging, &e))?.path();
        if !day.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&day).map_err(|e| fail(&day, &e))? {
            let path = file.map_err(|e| fail(&day, &e))?.path();
            // The day files only (not the duplicate check's spilled keys under `_keys`).
            if !day
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("event_date="))
                || path.extension().is_none_or(|x| x != "parquet")
            {
                continue;
            }
            let reader = File::open(&path).map_err(|e| fail(&path, &e))?;
            let builder =
                ParquetRecordBatchReaderBuilder::try_new(reader).map_err(|e| fail(&path, &e))?;
            let mask = ProjectionMask::columns(
                builder.parquet_schema(),
                ["product_id", "category_id", "category_code"],
            );
            let batches = builder
                .with_projection(mask)
                .build()
                .map_err(|e| fail(&path, &e))?;
            for batch in batches {
                let batch = batch.map_err(|e| fail(&path, &e))?;
                let column = |name: &str| {
                    batch
                        .column_by_name(name)
                        .ok_or_else(|| fail(&path, &format!("no column {name}")))
                };
                let products = column("product_id")?.as_primitive::<Int64Type>();
                let categories = column("category_id")?.as_primitive::<Int64Type>();
                let codes =
                    cast(column("category_code")?, &DataType::Utf8).map_err(|e| fail(&path, &e))?;
                let codes = codes.as_string::<i32>();
                for i in 0..batch.num_rows() {
                    if categories.is_null(i) || products.is_null(i) || codes.is_null(i) {
                        continue;
                    }
                    known.insert(codes.value(i), categories.value(i));
                    known.insert_product(products.value(i), categories.value(i));
                }
            }
        }
    }
    Ok(known)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_come_back_in_order_and_in_groups() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            DeferredWriter::new(dir.path(), 0)
                .finish()
                .unwrap()
                .is_none()
        );
        let mut writer = DeferredWriter::new(dir.path(), 1);
        let total = GROUP_LINES + 3;
        for i in 0..total {
            let text = format!("line {i},2.05301E+18");
            writer.push(i % 3, i as u64 + 2, text.as_bytes()).unwrap();
        }
        writer.push(0, 9, b"").unwrap();
        let file = writer.finish().unwrap().unwrap();
        let path = file.path.clone();
        let mut groups = Vec::new();
        let mut seen = 0;
        file.replay(|group| {
            groups.push(group.len());
            for d in group {
                if seen < total {
                    assert_eq!(d.file, seen % 3);
                    assert_eq!(d.line, seen as u64 + 2);
                    assert_eq!(d.text, format!("line {seen},2.05301E+18").as_bytes());
                } else {
                    assert_eq!((d.file, d.line, d.text.len()), (0, 9, 0));
                }
                seen += 1;
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(groups, vec![GROUP_LINES, 4]);
        assert!(!path.exists());
    }
}
