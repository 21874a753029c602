//! A throwaway PostgreSQL cluster for tests: `initdb` and `pg_ctl` from the installed server
//! binaries, a temporary directory, a free loopback port, `wal_level = logical`, stopped (and
//! its directory removed) when dropped.
//!
//! The server binaries are found in `$SHOPLAKE_PG_BIN`, else the newest
//! `/usr/lib/postgresql/*/bin` (Debian's layout), else `PATH`. PostgreSQL refuses to run as
//! root: under root the cluster is run as the `postgres` user (Debian's package creates it).

use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A running throwaway cluster.
#[derive(Debug)]
pub struct TestPostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    run_as: Option<String>,
    stopped: bool,
}

impl TestPostgres {
    /// Starts a new cluster (superuser `postgres`, trust authentication on loopback).
    ///
    /// Panics with what to install when the server binaries are missing: it is for tests.
    pub fn start() -> TestPostgres {
        Self::start_with(&[])
    }

    /// Starts a new cluster with extra `postgresql.conf` settings (`("wal_level", "replica")`).
    pub fn start_with(settings: &[(&str, &str)]) -> TestPostgres {
        let bin = server_bin().unwrap_or_else(|| {
            panic!(
                "PostgreSQL server binaries not found (initdb, pg_ctl): install Debian's \
                 `postgresql` package or set SHOPLAKE_PG_BIN"
            )
        });
        let dir = tempfile::Builder::new()
            .prefix("shoplake-pg-")
            .tempdir()
            .expect("a temporary directory");
        let root = running_as_root(dir.path());
        let run_as = root.then(|| "postgres".to_string());
        if let Some(user) = &run_as {
            // The cluster's owner must reach and own its directory.
            let status = Command::new("chown")
                .args([user.as_str(), &dir.path().display().to_string()])
                .status()
                .expect("chown runs");
            assert!(status.success(), "chown {user} of the test cluster failed");
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
                .expect("permissions of the test cluster's directory");
        }
        let mut pg = TestPostgres {
            dir,
            bin,
            port: 0,
            run_as,
            stopped: true,
        };
        let data = pg.data_dir();
        let out = pg.run(
            "initdb",
            &[
                "-D",
                &data.display().to_string(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
        );
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // A port taken between the probe and the start is retried on another one.
        let mut last_error = String::new();
        for _ in 0..5 {
            pg.port = free_port();
            let mut conf = format!(
                "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\n\
                 wal_level = logical\nmax_replication_slots = 16\nmax_wal_senders = 16\n\
                 fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n\
                 shared_buffers = 64MB\nmax_connections = 50\n",
                pg.port,
                pg.dir.path().display()
            );
            for (key, value) in settings {
                conf.push_str(&format!("{key} = '{value}'\n"));
            }
            let conf_path = data.join("postgresql.auto.conf");
            std::fs::write(&conf_path, conf).expect("postgresql.auto.conf is written");
            let out = pg.pg_ctl_start();
            if out.status.success() {
                pg.stopped = false;
                pg.wait_ready();
                return pg;
            }
            last_error = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                std::fs::read_to_string(pg.dir.path().join("server.log")).unwrap_or_default()
            );
        }
        panic!("the test PostgreSQL did not start: {last_error}");
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A connection URL for `user` to `database`.
    pub fn url_for(&self, user: &str, database: &str) -> String {
        format!(
            "postgresql://{user}@127.0.0.1:{}/{database}?connect_timeout=10",
            self.port
        )
    }

    /// The superuser's URL to the `postgres` database.
    pub fn url(&self) -> String {
        self.url_for("postgres", "postgres")
    }

    /// Creates a database, returns the superuser's URL to it.
    pub fn create_database(&self, name: &str) -> String {
        self.psql(&format!("CREATE DATABASE {name}"));
        self.url_for("postgres", name)
    }

    /// Runs SQL with psql as the superuser on the `postgres` database, returns its output
    /// (unaligned, tuples only). Panics on failure.
    pub fn psql(&self, sql: &str) -> String {
        self.psql_on("postgres", sql)
    }

    /// Runs SQL with psql as the superuser on `database`.
    pub fn psql_on(&self, database: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                database,
                "-c",
                sql,
            ])
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "psql failed on {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Stops the server (fast shutdown), keeping its data.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        let data = self.data_dir().display().to_string();
        let _ = self.run("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"]);
        self.stopped = true;
    }

    /// Stops the server abruptly (immediate shutdown: no checkpoint, as a crash).
    pub fn crash(&mut self) {
        if self.stopped {
            return;
        }
        let data = self.data_dir().display().to_string();
        let _ = self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
        self.stopped = true;
    }

    /// Starts the stopped server again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        let out = self.pg_ctl_start();
        assert!(
            out.status.success(),
            "the test PostgreSQL did not restart: {}",
            std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
        );
        self.stopped = false;
        self.wait_ready();
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn pg_ctl_start(&self) -> Output {
        let data = self.data_dir().display().to_string();
        let log = self.dir.path().join("server.log").display().to_string();
        self.run(
            "pg_ctl",
            &["-D", &data, "-l", &log, "-w", "-t", "60", "start"],
        )
    }

    /// Waits (at most 30 s) until the server accepts connections.
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let out = self.run(
                "pg_isready",
                &["-h", "127.0.0.1", "-p", &self.port.to_string()],
            );
            if out.status.success() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the test PostgreSQL did not accept connections within 30 s");
    }

    fn run(&self, program: &str, args: &[&str]) -> Output {
        let program = self.bin.join(program);
        let mut command = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&program);
                c
            }
            None => Command::new(&program),
        };
        command
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("{} does not run: {e}", program.display()))
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        if !self.stopped {
            let data = self.data_dir().display().to_string();
            let _ = self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
        }
    }
}

/// Whether this process runs as root: a file it creates is owned by uid 0.
fn running_as_root(dir: &Path) -> bool {
    let probe = dir.join(".owner");
    std::fs::write(&probe, b"").expect("the temporary directory is writable");
    let root = std::fs::metadata(&probe)
        .map(|m| m.uid() == 0)
        .unwrap_or(false);
    let _ = std::fs::remove_file(probe);
    root
}

/// The directory of `initdb` and `pg_ctl`.
fn server_bin() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SHOPLAKE_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .find(|p| p.join("initdb").exists() && p.join("pg_ctl").exists())
    })
}

/// A loopback port nobody listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
