//! Settings: command-line flags, then `SHOPLAKE_*` environment variables, then
//! `shoplake.toml`, then defaults.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use shoplake_pipeline::clean::rules::RuleOptions;
use shoplake_quality::checks::{Check, ChecksConfig};

use crate::cli::Cli;

/// The contents of `shoplake.toml` (every key optional).
#[derive(Debug, Default, Deserialize)]
pub struct FileConfig {
    /// Lake location.
    pub lake: Option<String>,
    /// Memory budget, e.g. "2GiB".
    pub memory_limit: Option<String>,
    /// The cleaning rules' settings (`[rules]`).
    #[serde(default)]
    pub rules: RuleOptions,
    /// Quality checks (`builtin_checks`, `[[checks]]`).
    #[serde(flatten)]
    pub checks: ChecksConfig,
}

/// Resolved settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Lake location.
    pub lake: String,
    /// Memory budget in bytes.
    pub memory_limit: usize,
    /// Checks in force: built-ins plus declared ones.
    pub checks: Vec<Check>,
    /// The cleaning rules' settings.
    pub rules: RuleOptions,
}

impl Settings {
    /// Resolves settings from the command line, environment and config file.
    pub fn resolve(cli: &Cli) -> Result<Settings> {
        let file = match &cli.config {
            Some(path) => load(path)?,
            None if Path::new("shoplake.toml").exists() => load(Path::new("shoplake.toml"))?,
            None => FileConfig::default(),
        };
        let lake = cli
            .lake
            .clone()
            .or(file.lake)
            .unwrap_or_else(|| "lake".to_string());
        let memory_limit = match cli.memory_limit.clone().or(file.memory_limit) {
            Some(text) => parse_size(&text)?,
            None => shoplake_lake::lake::DEFAULT_MEMORY_LIMIT,
        };
        let checks = file.checks.resolve()?;
        Ok(Settings {
            lake,
            memory_limit,
            checks,
            rules: file.rules,
        })
    }
}

fn load(path: &Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("config file {} is not valid", path.display()))
}

/// Parses `2GiB`, `512MiB`, `1.5G`, `1000000` (bytes).
pub fn parse_size(text: &str) -> Result<usize> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| anyhow::anyhow!("'{text}' is not a size; write e.g. 2GiB or 512MiB"))?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        other => bail!("unknown size unit '{other}' in '{text}'; use KiB, MiB or GiB"),
    };
    let bytes = value * factor;
    if bytes < 64.0 * 1024.0 * 1024.0 {
        bail!("memory limit {text} is too small; give at least 64MiB");
    }
    Ok(bytes as usize)
}

/// Default path for the demo's generated file, next to the lake.
pub fn demo_file(lake: &str) -> PathBuf {
    let lake = Path::new(lake);
    let parent = lake
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    parent.join("shoplake-demo-events.csv.gz")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size("1.5g").unwrap(), 3 << 29);
        assert!(parse_size("12").is_err());
        assert!(parse_size("lots").is_err());
        assert!(parse_size("3TiB").is_err());
    }
}
