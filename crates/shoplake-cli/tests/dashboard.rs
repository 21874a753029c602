//! `shoplake report` and `shoplake serve` as a user runs them: the report command's listing,
//! outputs and usage errors, and the dashboard in headless Chromium (Debian's `chromium`,
//! driven by playwright-core from npm: `.ci/run` installs both), whose KPI tiles must show
//! the API's figures before and after a date filter, for a user of the users file who logs
//! in. The screenshot is kept in the test's
//! temporary target directory (`dashboard.png`).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

mod common;
use common::*;

/// A lake of a week of generated events.
fn week_lake(dir: &Path) -> PathBuf {
    generated_lake(dir, 30000, 7, 5)
}

#[test]
fn the_report_command_lists_prints_and_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let lake = week_lake(dir.path());
    let listing = ok(&lake, &["report"]);
    for name in [
        "summary",
        "funnel",
        "products",
        "sessions",
        "categories",
        "brands",
        "trends",
        "prices",
        "users",
    ] {
        assert!(
            listing.contains(&format!("  {name} ")),
            "{name} missing from\n{listing}"
        );
    }
    let json: serde_json::Value =
        serde_json::from_str(&ok(&lake, &["report", "summary", "-f", "json"])).unwrap();
    assert_eq!(json["from"], "2020-04-01");
    assert_eq!(json["to"], "2020-04-07");
    let events = json["tables"][0]["rows"][0]["events"].as_i64().unwrap();
    let counted = ok(
        &lake,
        &[
            "query",
            "-f",
            "csv",
            "SELECT COUNT(*) AS n FROM clean.events",
        ],
    );
    assert_eq!(counted, format!("n\n{events}\n"));
    let text = ok(
        &lake,
        &[
            "report",
            "funnel",
            "--from",
            "2020-04-02",
            "--to",
            "2020-04-03",
        ],
    );
    assert!(
        text.starts_with("Conversion funnel, 2020-04-02 to 2020-04-03"),
        "{text}"
    );
    assert!(
        text.contains("per_day") || text.contains("Per day"),
        "{text}"
    );
    let csv = ok(&lake, &["report", "trends", "-f", "csv"]);
    assert!(
        csv.starts_with("# table by_hour\nhour_of_day,views,"),
        "{csv}"
    );

    for (args, says) in [
        (vec!["report", "nope"], "no report named 'nope'"),
        (
            vec![
                "report",
                "funnel",
                "--from",
                "2020-04-03",
                "--to",
                "2020-04-01",
            ],
            "before it starts",
        ),
        (vec!["report", "products", "--limit", "0"], "limit 0"),
    ] {
        let out = bin().arg("--lake").arg(&lake).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(says) && err.lines().count() == 1,
            "{args:?}: {err}"
        );
    }
}

#[test]
fn the_dashboard_shows_the_api_s_figures_in_a_browser() {
    let browser_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists() && browser_dir.join("node_modules/playwright-core").exists(),
        "the browser test needs Debian's chromium ({chromium}) and playwright-core \
         (`npm ci --prefix {}`): .ci/run installs both",
        browser_dir.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let lake = week_lake(dir.path());
    // A non-loopback address without a token is refused.
    let out = bin()
        .arg("--lake")
        .arg(&lake)
        .args(["serve", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a loopback address"));

    // The analysts of the users file log in, by the browser's own prompt (HTTP Basic).
    let users = dir.path().join("users.toml");
    let mut add = bin()
        .args(["users", "add", "ana", "--role", "analyst", "--file"])
        .arg(&users)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    add.stdin.take().unwrap().write_all(b"ana: pw\n").unwrap();
    assert!(add.wait().unwrap().success());
    let mut child = bin()
        .arg("--lake")
        .arg(&lake)
        .args(["serve", "--listen", "127.0.0.1:0", "--users"])
        .arg(&users)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    let mut first = String::new();
    // Kept open while the server runs.
    let mut lines = BufReader::new(stdout);
    lines.read_line(&mut first).unwrap();
    let url = first
        .strip_prefix("dashboard: ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .to_string();
    assert!(first.contains("log in"), "{first}");
    let screenshot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    let run = Command::new("node")
        .arg(browser_dir.join("dashboard.mjs"))
        .args([url.as_str(), "2020-04-02", "2020-04-03"])
        .arg(&screenshot)
        .env("CHROMIUM", &chromium)
        .env("DASHBOARD_LOGIN", "ana:ana: pw")
        .output()
        .unwrap();
    drop(server);
    drop(lines);
    assert!(
        run.status.success(),
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 10_000);
}
