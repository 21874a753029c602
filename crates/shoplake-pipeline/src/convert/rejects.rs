//! `_rejects.csv`: every line the rules refused, with its file, line number and reason.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use super::ConvertError;

/// The name of the rejects file inside the output directory.
pub const REJECTS_FILE: &str = "_rejects.csv";

/// A refused line.
#[derive(Debug)]
pub(crate) struct Reject {
    pub file: usize,
    pub line: u64,
    pub reason: &'static str,
    pub detail: String,
    pub raw_line: String,
}

/// The rejects file being written (shared by the workers behind a lock).
pub(crate) struct RejectSink {
    path: PathBuf,
    sources: Vec<String>,
    writer: csv::Writer<BufWriter<File>>,
    rows: u64,
}

impl RejectSink {
    pub(crate) fn create(dir: &Path, sources: &[PathBuf]) -> Result<Self, ConvertError> {
        let path = dir.join(REJECTS_FILE);
        let file = File::create(&path).map_err(|e| ConvertError::write(&path, e))?;
        let mut writer = csv::Writer::from_writer(BufWriter::new(file));
        writer
            .write_record(["file", "line", "reason", "detail", "raw_line"])
            .map_err(|e| ConvertError::write(&path, e))?;
        Ok(RejectSink {
            path,
            sources: sources.iter().map(|p| p.display().to_string()).collect(),
            writer,
            rows: 0,
        })
    }

    pub(crate) fn write(
        &mut self,
        rejects: impl Iterator<Item = Reject>,
    ) -> Result<(), ConvertError> {
        for r in rejects {
            let line = r.line.to_string();
            self.writer
                .write_record([
                    self.sources[r.file].as_str(),
                    line.as_str(),
                    r.reason,
                    r.detail.as_str(),
                    r.raw_line.as_str(),
                ])
                .map_err(|e| ConvertError::write(&self.path, e))?;
            self.rows += 1;
        }
        Ok(())
    }

    /// Flushes the file; returns the rejects written.
    pub(crate) fn finish(mut self) -> Result<u64, ConvertError> {
        self.writer
            .flush()
            .map_err(|e| ConvertError::write(&self.path, e))?;
        Ok(self.rows)
    }
}
