//! `shoplake profile`: the exploratory profile of an export (CSV / CSV.gz) or a lake table.
//!
//! A lake table is profiled in place, in the lake's query session (its memory limit). An export
//! is read with the project's own robust reader (malformed lines become flagged rows, never a
//! crash): for now it is landed in a throwaway lake in the temporary directory, exactly as
//! `shoplake ingest` would land it in `raw.events`, and that table is profiled; the throwaway
//! lake is removed afterwards. (Streaming the reader's batches straight into the profile needs
//! `shoplake_ingest::files::Lineage` to be public.)

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use shoplake_ingest::IngestError;
use shoplake_ingest::files::discover;
use shoplake_lake::{Lake, SqlCatalog, tables};
use shoplake_quality::profile::{Format, Profile, ProfileError, ProfileOptions, Sample, profile};

use crate::cli::{ProfileArgs, ProfileFormat};
use crate::progress::Bars;
use crate::{Exit, usage};

pub async fn run(lake: &Lake, args: &ProfileArgs, bars: &Bars) -> Result<(), Exit> {
    if let Some(f) = args.sample
        && !(f > 0.0 && f <= 1.0)
    {
        return Err(usage(anyhow!(
            "--sample {f} is outside (0, 1]; give the fraction of rows to profile, e.g. --sample 0.05"
        )));
    }
    let mut options = ProfileOptions::new(args.target.clone());
    options.sample = args.sample.map(|fraction| Sample {
        fraction,
        seed: args.seed,
    });
    options.approx = args.approx;

    // Open the output first: a wrong --out should not cost a whole profile.
    let out = match &args.out {
        Some(path) => Some(OutFile::create(path)?),
        None => None,
    };

    let found = if tables::by_name(&args.target).is_some() {
        let catalog = SqlCatalog::open(lake).await?;
        let input = catalog
            .context()
            .table(args.target.as_str())
            .await
            .with_context(|| format!("cannot read {}", args.target))?;
        profile(catalog.context(), input, &options, bars)
            .await
            .map_err(profile_error)?
    } else {
        profile_file(lake, &args.target, &options, bars).await?
    };

    let text = found.render(format(args.format));
    match out {
        Some(file) => file.finish(&text)?,
        None => {
            let stdout = std::io::stdout();
            let mut lock = stdout.lock();
            match lock.write_all(text.as_bytes()).and_then(|()| lock.flush()) {
                Ok(()) => {}
                // `shoplake profile ... | head` is not a failure.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                Err(e) => return Err(Exit::from(e)),
            }
        }
    }
    Ok(())
}

fn format(f: ProfileFormat) -> Format {
    match f {
        ProfileFormat::Table => Format::Table,
        ProfileFormat::Md => Format::Md,
        ProfileFormat::Json => Format::Json,
        ProfileFormat::Html => Format::Html,
    }
}

fn profile_error(e: ProfileError) -> Exit {
    if e.is_usage() {
        usage(e)
    } else {
        Exit::from(e)
    }
}

/// Profiles an export file (or a directory of them) through a throwaway lake.
async fn profile_file(
    lake: &Lake,
    target: &str,
    options: &ProfileOptions,
    bars: &Bars,
) -> Result<Profile, Exit> {
    let path = PathBuf::from(target);
    if !path.exists() {
        let names: Vec<String> = tables::all().iter().map(|t| t.qualified_name()).collect();
        return Err(usage(anyhow!(
            "'{target}' is neither an existing file nor a lake table ({})",
            names.join(", ")
        )));
    }
    // The same checks as `shoplake ingest` (readable, header), before any work.
    discover(std::slice::from_ref(&path)).map_err(ingest_error)?;
    let scratch = ScratchDir::new()?;
    let scratch_lake = Lake::open(&scratch.path.to_string_lossy())
        .map_err(Exit::from)?
        .with_memory_limit(lake.memory_limit());
    shoplake_ingest::ingest_paths(&scratch_lake, std::slice::from_ref(&path), bars)
        .await
        .map_err(ingest_error)?;
    let catalog = SqlCatalog::open(&scratch_lake).await?;
    let input = catalog.context().table("raw.events").await?;
    let found = profile(catalog.context(), input, options, bars)
        .await
        .map_err(profile_error)?;
    drop(catalog);
    drop(scratch);
    Ok(found)
}

fn ingest_error(e: IngestError) -> Exit {
    match e {
        IngestError::Usage(_) | IngestError::Missing { .. } | IngestError::EmptyDirectory(_) => {
            usage(e)
        }
        other => Exit::from(other),
    }
}

/// A directory in the temporary directory, removed when dropped.
struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    fn new() -> Result<Self, Exit> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let path =
            std::env::temp_dir().join(format!("shoplake-profile-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).with_context(|| {
            format!(
                "cannot create the scratch directory {}; set TMPDIR to a writable directory with free space",
                path.display()
            )
        })?;
        Ok(ScratchDir { path })
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The `--out` file, checked up front and written at the end (an existing file is replaced
/// only when the profile is ready).
struct OutFile {
    path: PathBuf,
}

impl OutFile {
    fn create(path: &Path) -> Result<Self, Exit> {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !parent.is_dir() {
            return Err(usage(anyhow!(
                "cannot write --out {}: the directory {} does not exist",
                path.display(),
                parent.display()
            )));
        }
        if path.is_dir() {
            return Err(usage(anyhow!(
                "cannot write --out {}: it is a directory; give a file name",
                path.display()
            )));
        }
        Ok(OutFile {
            path: path.to_path_buf(),
        })
    }

    fn finish(self, text: &str) -> Result<(), Exit> {
        std::fs::write(&self.path, text)
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        Ok(())
    }
}
