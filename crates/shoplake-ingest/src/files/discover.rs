//! Finding and checking the files to ingest before anything is written.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use super::ingest::IngestError;
use super::reader::{EXPECTED_HEADER, MAX_LINE_BYTES, open_decoded, read_line_capped};

/// A file that passed the pre-flight checks.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Path as found.
    pub path: PathBuf,
    /// Size in bytes on disk.
    pub bytes: u64,
    /// Whether the content is gzip-compressed (detected from its magic bytes).
    pub gzip: bool,
}

fn is_csv_name(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.ends_with(".csv") || name.ends_with(".csv.gz")
}

/// Expands the arguments (files and directories) into checked source files, in a stable order.
///
/// A directory contributes its `*.csv` and `*.csv.gz` files (not recursively), sorted by name.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<SourceFile>, IngestError> {
    if paths.is_empty() {
        return Err(IngestError::Usage(
            "no input given; pass one or more CSV / CSV.gz files or directories".into(),
        ));
    }
    let mut files = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|e| IngestError::Missing {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        if meta.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| IngestError::Missing {
                    path: path.clone(),
                    reason: e.to_string(),
                })?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && is_csv_name(p))
                .collect();
            if found.is_empty() {
                return Err(IngestError::EmptyDirectory(path.clone()));
            }
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    files.into_iter().map(|p| check(&p)).collect()
}

/// Checks one file: readable, not empty, gzip intact at its start, exact header.
fn check(path: &Path) -> Result<SourceFile, IngestError> {
    let io = |e: std::io::Error| IngestError::Read {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let bytes = std::fs::metadata(path).map_err(io)?.len();
    if bytes == 0 {
        return Err(IngestError::EmptyFile(path.to_path_buf()));
    }
    let mut magic = [0u8; 2];
    let gzip = {
        let mut f = File::open(path).map_err(io)?;
        f.read(&mut magic).map_err(io)? == 2 && magic == [0x1f, 0x8b]
    };
    let mut reader = BufReader::new(open_decoded(path, gzip).map_err(io)?);
    let mut first = Vec::new();
    read_line_capped(&mut reader, &mut first, MAX_LINE_BYTES).map_err(io)?;
    let header = String::from_utf8_lossy(&first);
    let header = header
        .trim_start_matches('\u{feff}')
        .trim_end_matches(['\n', '\r']);
    if header.is_empty() {
        return Err(IngestError::EmptyFile(path.to_path_buf()));
    }
    if header != EXPECTED_HEADER {
        return Err(IngestError::WrongHeader {
            path: path.to_path_buf(),
            found: header.chars().take(200).collect(),
        });
    }
    let mut next = Vec::new();
    let (n, _) = read_line_capped(&mut reader, &mut next, MAX_LINE_BYTES).map_err(io)?;
    if n == 0 {
        return Err(IngestError::NoRows(path.to_path_buf()));
    }
    Ok(SourceFile {
        path: path.to_path_buf(),
        bytes,
        gzip,
    })
}
