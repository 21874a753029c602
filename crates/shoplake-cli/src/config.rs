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
    /// `shoplake serve`'s settings (`[serve]`).
    #[serde(default)]
    pub serve: ServeConfig,
}

/// `[serve]` in shoplake.toml: what `shoplake serve` does when its flags do not say.
/// Paths are relative to the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// The dashboard's address.
    pub listen: Option<std::net::SocketAddr>,
    /// The PostgreSQL endpoint's address.
    pub pg: Option<std::net::SocketAddr>,
    /// The users file.
    pub users: Option<PathBuf>,
    /// TLS certificate chain (PEM).
    pub tls_cert: Option<PathBuf>,
    /// Its private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// The most PostgreSQL connections at once.
    pub pg_max_connections: Option<usize>,
    /// The longest a statement may run, e.g. "5min".
    pub pg_statement_timeout: Option<String>,
    /// The most rows a result may send.
    pub pg_max_rows: Option<u64>,
    /// The engine memory of one connection, e.g. "2GiB".
    pub pg_memory_per_connection: Option<String>,
}

impl ServeConfig {
    /// Makes relative paths relative to `base` (the config file's directory).
    fn anchored(mut self, base: &Path) -> ServeConfig {
        for path in [&mut self.users, &mut self.tls_cert, &mut self.tls_key]
            .into_iter()
            .flatten()
        {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
        self
    }
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
    /// `[serve]`, paths resolved.
    pub serve: ServeConfig,
}

impl Settings {
    /// Resolves settings from the command line, environment and config file.
    pub fn resolve(cli: &Cli) -> Result<Settings> {
        let path = match &cli.config {
            Some(path) => Some(path.as_path()),
            None if Path::new("shoplake.toml").exists() => Some(Path::new("shoplake.toml")),
            None => None,
        };
        let file = path.map(load).transpose()?.unwrap_or_default();
        let base = path
            .and_then(Path::parent)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
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
            serve: file.serve.anchored(base),
        })
    }
}

fn load(path: &Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("config file {} is not valid", path.display()))
}

/// Parses `2GiB`, `512MiB`, `1.5G`, `1000000` (bytes): a memory limit, at least 64 MiB.
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

    #[test]
    fn serve_section_reads_and_anchors_paths_to_the_config_file() {
        let file: FileConfig = toml::from_str(
            "[serve]\npg = \"127.0.0.1:5433\"\nusers = \"users.toml\"\ntls_cert = \"/etc/ssl/c.pem\"\npg_statement_timeout = \"30s\"\npg_max_rows = 10\n",
        )
        .unwrap();
        let serve = file.serve.anchored(Path::new("/srv/shop"));
        assert_eq!(serve.pg, Some("127.0.0.1:5433".parse().unwrap()));
        assert_eq!(serve.users, Some(PathBuf::from("/srv/shop/users.toml")));
        assert_eq!(serve.tls_cert, Some(PathBuf::from("/etc/ssl/c.pem")));
        assert_eq!(serve.pg_statement_timeout.as_deref(), Some("30s"));
        assert_eq!(serve.pg_max_rows, Some(10));
        let e = toml::from_str::<FileConfig>("[serve]\nport = 1\n").unwrap_err();
        assert!(e.to_string().contains("unknown field `port`"), "{e}");
    }
}
