//! `shoplake oltp` and `shoplake cdc` as a user runs them, against a throwaway PostgreSQL:
//! a generated export loaded (and a load killed mid-way resumed), then change data capture
//! under live traffic, killed with SIGKILL at random points and restarted, across a restart
//! of PostgreSQL itself; at the end the lake's current state equals the database.

#[path = "../../shoplake-oltp/tests/oltp/cdc_state.rs"]
mod cdc_state;
mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::bin;
use shoplake_lake::Lake;
use shoplake_oltp::testing::TestPostgres;

fn generate(dir: &std::path::Path, rows: u64) -> std::path::PathBuf {
    let export = dir.join("events.csv.gz");
    let out = bin()
        .args([
            "generate",
            "--rows",
            &rows.to_string(),
            "--days",
            "2",
            "--seed",
            "5",
        ])
        .arg("--out")
        .arg(&export)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    export
}

fn run(args: &[&str]) -> std::process::Output {
    bin().args(args).output().unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "shoplake {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn load_reports_its_lines_and_resumes_after_a_crash() {
    let pg = TestPostgres::start();
    let dir = tempfile::tempdir().unwrap();
    let export = generate(dir.path(), 20_000);
    let export = export.to_str().unwrap();
    let a = pg.create_database("a");
    let b = pg.create_database("b");
    let init = ok(&["oltp", "init", "--db", &a]);
    assert!(init.contains("applied migration 1"), "{init}");
    assert!(ok(&["oltp", "init", "--db", &a]).contains("nothing to do"));
    ok(&["oltp", "init", "--db", &b]);

    // A clean load into a.
    let report = ok(&["oltp", "load", export, "--db", &a, "--batch", "3000"]);
    assert!(report.contains("20,000 lines"), "{report}");
    let unplaced: u64 = report
        .lines()
        .find(|l| l.contains("lines not placed"))
        .and_then(|l| l.split_whitespace().next())
        .map_or(0, |n| n.replace(',', "").parse().unwrap());
    let reported: u64 = report
        .split(" events in ")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .map(|n| n.replace(',', "").parse().unwrap())
        .unwrap();
    let events: u64 = pg
        .psql_on("a", "SELECT count(*) FROM events")
        .parse()
        .unwrap();
    assert_eq!(reported, events, "{report}");
    assert!(events > 19_000);
    assert_eq!(events + unplaced, 20_000, "{report}");

    // A load into b killed after its third batch, then run again: it resumes, and b ends
    // equal to a.
    let out = bin()
        .args(["oltp", "load", export, "--db", &b, "--batch", "3000"])
        .env("SHOPLAKE_CRASH_AFTER_COMMITS", "3")
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "the crash switch did not stop the load"
    );
    let partial: u64 = pg
        .psql_on("b", "SELECT count(*) FROM events")
        .parse()
        .unwrap();
    assert!(partial > 0 && partial < events, "{partial} of {events}");
    let resumed = ok(&["oltp", "load", export, "--db", &b, "--batch", "3000"]);
    assert!(resumed.contains("resumed after line"), "{resumed}");
    let digest = "SELECT md5(string_agg(s.user_id || e.event_type::text || e.product_id || e.price || \
                  e.event_time || s.session_id, ',' ORDER BY e.event_time, s.session_id, e.event_type, e.product_id, e.price)) \
                  FROM events e JOIN sessions s USING (session_id)";
    assert_eq!(pg.psql_on("b", digest), pg.psql_on("a", digest));
    for table in [
        "users",
        "sessions",
        "products",
        "brands",
        "categories",
        "events",
    ] {
        let count = format!("SELECT count(*) FROM {table}");
        assert_eq!(pg.psql_on("b", &count), pg.psql_on("a", &count), "{table}");
    }
    // Once more: nothing added.
    assert!(ok(&["oltp", "load", export, "--db", &b]).contains("already loaded"));

    // Bad input: a usage error (exit 2) with what is wrong.
    let out = run(&["oltp", "load", "/nonexistent.csv", "--db", &a]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["oltp", "init", "--db", "postgresql://h:port/x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad database URL"));
}

/// A `cdc` child, killed when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_cdc(lake: &std::path::Path, db: &str) -> Child {
    Child(
        bin()
            .arg("--lake")
            .arg(lake)
            .args([
                "cdc",
                "--db",
                db,
                "--heartbeat",
                "1s",
                "--flush-interval",
                "200ms",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

#[test]
fn cdc_survives_kills_and_a_server_restart_with_nothing_lost_or_doubled() {
    let mut pg = TestPostgres::start();
    let dir = tempfile::tempdir().unwrap();
    let export = generate(dir.path(), 5_000);
    let db = pg.create_database("store");
    ok(&["oltp", "init", "--db", &db]);
    ok(&["oltp", "load", export.to_str().unwrap(), "--db", &db]);
    let lake = dir.path().join("lake");
    let lake_arg = lake.to_str().unwrap();

    // Live traffic, restarted after PostgreSQL's own restart (which ends it).
    let traffic = |seconds: u32, seed: u32| {
        Child(
            bin()
                .args(["oltp", "simulate", "--db", &db, "--rate", "300"])
                .args([
                    "--duration",
                    &format!("{seconds}s"),
                    "--seed",
                    &seed.to_string(),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    let mut live = traffic(12, 1);
    // Kill cdc at pseudo-random points (a fixed sequence, so a failure can be replayed).
    let started = Instant::now();
    let mut seed = 0x9e37_79b9_u64;
    for round in 0..4 {
        let mut cdc = start_cdc(&lake, &db);
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let ms = 1_500 + (seed >> 33) % 2_500;
        std::thread::sleep(Duration::from_millis(ms));
        // SIGKILL: no chance to land or acknowledge anything.
        let _ = Command::new("kill")
            .args(["-9", &cdc.0.id().to_string()])
            .status();
        let _ = cdc.0.wait();
        if round == 1 {
            // PostgreSQL stops mid-stream (an immediate shutdown, as a crash) and comes back:
            // the cdc streaming through it reconnects and goes on.
            let cdc = start_cdc(&lake, &db);
            std::thread::sleep(Duration::from_millis(1_500));
            pg.crash();
            drop(live);
            std::thread::sleep(Duration::from_millis(500));
            pg.restart();
            live = traffic(10, 2);
            std::thread::sleep(Duration::from_millis(3_000));
            drop(cdc);
        }
    }
    let _ = live.0.wait();
    // The traffic finished: catch up.
    assert!(started.elapsed() < Duration::from_secs(120));
    let out = run(&[
        "--lake",
        lake_arg,
        "cdc",
        "--db",
        &db,
        "--catch-up",
        "--heartbeat",
        "1s",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let lake = Lake::open(lake_arg).unwrap();
    rt.block_on(cdc_state::compare_with_database(&lake, &pg, "store"));

    // status shows the slot.
    let status = ok(&["--lake", lake_arg, "status", "--db", &db]);
    assert!(status.contains("slot shoplake on"), "{status}");
    assert!(status.contains("meta.cdc_progress") || status.contains("change data capture"));
}

#[test]
fn cdc_errors_are_one_line_with_what_to_run() {
    let pg = TestPostgres::start_with(&[("wal_level", "replica")]);
    let dir = tempfile::tempdir().unwrap();
    let db = pg.create_database("store");
    ok(&["oltp", "init", "--db", &db]);
    let lake = dir.path().join("lake");
    let out = run(&[
        "--lake",
        lake.to_str().unwrap(),
        "cdc",
        "--db",
        &db,
        "--catch-up",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("wal_level = logical"), "{stderr}");
    // Nothing listens: the connection error names the target, not the password.
    let out = run(&[
        "--lake",
        lake.to_str().unwrap(),
        "cdc",
        "--db",
        "postgresql://u:secret@127.0.0.1:1/x?connect_timeout=2",
        "--catch-up",
    ]);
    assert_ne!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("secret"), "{stderr}");
}
