//! `shoplake profile`: the exploratory profile of an export (CSV / CSV.gz) or a lake table
//! (see the `shoplake-profile` crate).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use shoplake_lake::Lake;
use shoplake_profile::{Format, ProfileError, ProfileOptions, Sample, profile_target};

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

    // Check the output first: a wrong --out should not cost a whole profile.
    let out = match &args.out {
        Some(path) => Some(OutFile::create(path)?),
        None => None,
    };

    let found = profile_target(lake, &args.target, &options, bars)
        .await
        .map_err(profile_error)?;

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
