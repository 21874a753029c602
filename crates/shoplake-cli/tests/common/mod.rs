//! What the command-line tests share: the binary without the caller's settings, a lake of
//! generated events, and a server stopped when the test ends.

// Each test binary uses its own part of this module.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

/// `shoplake`, blind to the environment's lake, config, token and users.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_shoplake"));
    c.env_remove("SHOPLAKE_LAKE")
        .env_remove("SHOPLAKE_CONFIG")
        .env_remove("SHOPLAKE_SERVE_TOKEN")
        .env_remove("SHOPLAKE_USERS")
        .env("SHOPLAKE_LOG", "off");
    c
}

/// `shoplake --lake LAKE ARGS...`, which must succeed; its standard output.
pub fn ok(lake: &Path, args: &[&str]) -> String {
    let out = bin().arg("--lake").arg(lake).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "shoplake {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `dir/lake`: `rows` generated events over `days` days (seed `seed`), ingested and run.
pub fn generated_lake(dir: &Path, rows: u64, days: u32, seed: u64) -> PathBuf {
    let lake = dir.join("lake");
    let export = dir.join("events.csv.gz");
    let out = bin()
        .args(["generate", "--rows", &rows.to_string()])
        .args(["--days", &days.to_string(), "--seed", &seed.to_string()])
        .arg("--out")
        .arg(&export)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ok(&lake, &["ingest", export.to_str().unwrap()]);
    ok(&lake, &["run"]);
    lake
}

/// A running `serve`, killed when dropped (whatever the test does).
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
