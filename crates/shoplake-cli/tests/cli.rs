//! The binary as a user runs it: outputs, exit codes, crash safety.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_shoplake"));
    c.env_remove("SHOPLAKE_LAKE")
        .env_remove("SHOPLAKE_CONFIG")
        .env("SHOPLAKE_LOG", "off");
    c
}

fn shoplake(lake: &Path, args: &[&str]) -> Output {
    bin().arg("--lake").arg(lake).args(args).output().unwrap()
}

fn ok(lake: &Path, args: &[&str]) -> String {
    let out = shoplake(lake, args);
    assert!(
        out.status.success(),
        "shoplake {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shoplake-pipeline/tests/fixtures/edge_cases.csv")
}

#[test]
fn ingest_run_query_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let f = fixture();
    let out = ok(&lake, &["ingest", f.to_str().unwrap()]);
    assert!(out.contains("28 rows (3 malformed)"), "{out}");
    let out = ok(&lake, &["ingest", f.to_str().unwrap()]);
    assert!(out.contains("already ingested"), "{out}");

    let out = ok(&lake, &["run", "--dry-run"]);
    assert!(out.contains("would rebuild 2 day(s)"), "{out}");
    let out = ok(&lake, &["run"]);
    let total: Vec<&str> = out
        .lines()
        .find(|l| l.starts_with("total"))
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default();
    assert_eq!(total, ["total", "28", "13", "3", "12"], "{out}");
    let out = ok(&lake, &["run"]);
    assert!(out.contains("up to date"), "{out}");

    let sql = "SELECT event_type, COUNT(*) AS n, SUM(price) AS revenue FROM model.fact_user_events GROUP BY event_type ORDER BY event_type";
    assert_eq!(
        ok(&lake, &["query", "--format", "csv", sql]),
        "event_type,n,revenue\ncart,2,799.99\npurchase,3,1279.99\nremove_from_cart,1,500.00\nview,7,2940.48\n"
    );
    // --timing adds one line on standard error and changes nothing on standard output.
    let timed = shoplake(&lake, &["query", "--timing", "--format", "csv", sql]);
    assert!(timed.status.success());
    assert_eq!(
        timed.stdout,
        ok(&lake, &["query", "--format", "csv", sql]).as_bytes()
    );
    let err = String::from_utf8(timed.stderr).unwrap();
    let figures: Vec<f64> = err
        .trim_end()
        .strip_prefix("Time: ")
        .and_then(|t| t.strip_suffix(" s)"))
        .map(|t| t.split([' ', ',']).filter_map(|w| w.parse().ok()).collect())
        .unwrap_or_default();
    assert_eq!(figures.len(), 3, "{err}");
    assert!(
        (figures[0] - figures[1] - figures[2]).abs() <= 0.0015,
        "{err}"
    );
    let json = ok(
        &lake,
        &[
            "sql",
            "-f",
            "json",
            "SELECT user_id, sessions FROM model.dim_users WHERE user_id < 3 ORDER BY user_id",
        ],
    );
    assert_eq!(
        json,
        "{\"user_id\":1,\"sessions\":3}\n{\"user_id\":2,\"sessions\":1}\n"
    );
    let table = ok(&lake, &["query", "SELECT COUNT(*) AS n FROM clean.rejects"]);
    assert!(table.contains("| 12 |"), "{table}");
    // An empty result still has its CSV header.
    assert_eq!(
        ok(
            &lake,
            &[
                "query",
                "-f",
                "csv",
                "SELECT user_id FROM model.dim_users WHERE user_id < 0"
            ]
        ),
        "user_id\n"
    );

    let status = ok(&lake, &["status"]);
    assert!(status.contains("model.fact_user_events"), "{status}");
    assert!(status.contains("latest runs"), "{status}");
}

#[test]
fn user_mistakes_exit_2_failures_exit_1_with_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let check = |args: &[&str], code: i32, needle: &str| {
        let out = shoplake(&lake, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: `{err}` lacks `{needle}`");
        assert_eq!(
            err.trim_end()
                .lines()
                .filter(|l| l.starts_with("error"))
                .count(),
            1,
            "{err}"
        );
    };
    check(&["ingest", "/no/such/file.csv"], 2, "cannot open");
    let wrong = dir.path().join("wrong.csv");
    std::fs::write(&wrong, "a,b,c\n1,2,3\n").unwrap();
    check(&["ingest", wrong.to_str().unwrap()], 1, "wrong header");
    check(&["query", "SELEC nonsense"], 2, "error");
    check(&["query", "SELECT * FROM model.nope"], 2, "nope");
    check(&["query", "CREATE TABLE x AS SELECT 1"], 2, "error");
    check(&["query", "DELETE FROM raw.events"], 2, "error");
    check(
        &["run", "--from", "2020-04-05", "--to", "2020-04-01"],
        2,
        "before",
    );
    check(&["run", "--date", "April"], 2, "YYYY-MM-DD");
    check(&["--memory-limit", "lots", "status"], 2, "not a size");
    assert!(
        !lake.join("raw").exists(),
        "a failed ingest must not create tables"
    );
}

/// Every downstream table, in a stable order. Rejects leave out `_ingested_at`: the two lakes
/// compared were ingested at different instants.
fn table_dump(lake: &Path) -> String {
    let mut all = String::new();
    let rejects: Vec<&str> = shoplake_lake::tables::clean_rejects()
        .column_names()
        .into_iter()
        .filter(|c| *c != "_ingested_at")
        .collect();
    all.push_str(&ok(
        lake,
        &[
            "query",
            "-f",
            "csv",
            &format!(
                "SELECT {} FROM clean.rejects ORDER BY _batch_id, _line",
                rejects.join(", ")
            ),
        ],
    ));
    for (table, order) in [
        ("clean.events", "event_id"),
        ("model.fact_user_events", "event_id"),
        ("model.dim_sessions", "session_id"),
        ("model.dim_users", "user_id"),
        ("model.dim_products", "product_id"),
        ("model.dim_categories", "category_id"),
        ("model.dim_time", "date"),
    ] {
        all.push_str(&ok(
            lake,
            &[
                "query",
                "-f",
                "csv",
                &format!("SELECT * FROM {table} ORDER BY {order}"),
            ],
        ));
    }
    all
}

#[test]
fn a_run_killed_at_any_point_then_rerun_equals_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("events.csv");
    ok(
        dir.path(),
        &[
            "generate",
            "--rows",
            "40000",
            "--days",
            "4",
            "--seed",
            "11",
            "--out",
            data.to_str().unwrap(),
        ],
    );

    let reference = dir.path().join("reference");
    ok(&reference, &["ingest", data.to_str().unwrap()]);
    let started = std::time::Instant::now();
    ok(&reference, &["run"]);
    let full = started.elapsed();
    let expected = table_dump(&reference);

    // Kill points spread over the run's duration (pseudo-random but reproducible).
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for attempt in 0..3 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let lake = dir.path().join(format!("killed-{attempt}"));
        ok(&lake, &["ingest", data.to_str().unwrap()]);
        let delay = full.mul_f64((seed % 1000) as f64 / 1000.0);
        let mut child = bin().arg("--lake").arg(&lake).arg("run").spawn().unwrap();
        std::thread::sleep(delay.max(Duration::from_millis(20)));
        let _ = child.kill();
        let _ = child.wait();
        ok(&lake, &["run"]);
        assert_eq!(table_dump(&lake), expected, "after a kill at {delay:?}");
    }
}

#[test]
fn the_committed_data_dictionary_is_up_to_date() {
    let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/data_dictionary.md");
    let out = bin()
        .args(["docs", "--check", "--out"])
        .arg(&docs)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn demo_runs_end_to_end_and_its_report_adds_up() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let out = ok(&lake, &["demo", "--rows", "20000"]);
    // The run line states the accounting; check it against the generated export's text.
    let line = out.lines().find(|l| l.contains(" = clean ")).expect(&out);
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect::<Vec<_>>();
    // run <id digits...>: <days> days rebuilt, raw R = clean C + duplicates D + rejected J, <secs>
    let n = numbers.len();
    let (raw, clean, dups, rejected) = (
        numbers[n - 6],
        numbers[n - 5],
        numbers[n - 4],
        numbers[n - 3],
    );
    assert_eq!(raw, 20_000, "{line}");
    let export = dir.path().join("shoplake-demo-events.csv.gz");
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(&export).expect("the demo's export")),
        &mut text,
    )
    .unwrap();
    let expected: shoplake_lake::Accounting =
        shoplake_lake::testing::expected_accounting(text.lines().skip(1))
            .into_values()
            .sum();
    assert_eq!(
        (raw, clean, dups, rejected),
        (
            expected.raw,
            expected.clean,
            expected.duplicates,
            expected.rejected
        ),
        "{line}"
    );
    for section in [
        "rows per layer",
        "conversion funnel",
        "top categories by revenue",
        "the lake is at",
    ] {
        assert!(out.contains(section), "{section} missing from\n{out}");
    }
    // A second demo finds the same file already ingested and nothing to rebuild.
    let again = ok(&lake, &["demo", "--rows", "20000"]);
    assert!(
        again.contains("already ingested") && again.contains("already up to date"),
        "{again}"
    );
}

#[test]
fn an_ingest_killed_at_any_point_then_rerun_lands_every_row_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("events.csv.gz");
    ok(
        dir.path(),
        &[
            "generate",
            "--rows",
            "150000",
            "--days",
            "3",
            "--out",
            data.to_str().unwrap(),
        ],
    );
    for (attempt, delay_ms) in [5u64, 60, 150, 400].into_iter().enumerate() {
        let lake = dir.path().join(format!("lake-{attempt}"));
        let mut child = bin()
            .arg("--lake")
            .arg(&lake)
            .arg("ingest")
            .arg(&data)
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        ok(&lake, &["ingest", data.to_str().unwrap()]);
        assert_eq!(
            ok(
                &lake,
                &[
                    "query",
                    "-f",
                    "csv",
                    "SELECT COUNT(*) AS n, COUNT(DISTINCT _line) AS lines FROM raw.events"
                ]
            ),
            "n,lines\n150000,150000\n",
            "after a kill at {delay_ms} ms"
        );
    }
}

#[test]
fn a_failed_error_check_exits_3_and_check_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let f = fixture();
    ok(&lake, &["ingest", f.to_str().unwrap()]);
    let config = dir.path().join("shoplake.toml");
    std::fs::write(
        &config,
        r#"
[[checks]]
table = "clean.events"
name = "no_price_over_1000"
kind = "range"
column = "price"
max = 1000
severity = "error"
"#,
    )
    .unwrap();
    let out = bin()
        .arg("--lake")
        .arg(&lake)
        .arg("--config")
        .arg(&config)
        .arg("run")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("no_price_over_1000: 1 offending rows"),
        "{stdout}"
    );
    assert!(
        stdout.contains("\"product_id\":400"),
        "the failing row is shown: {stdout}"
    );
    assert!(stderr.contains("2020-04-01 not published"), "{stderr}");
    // Day 2 was published, day 1 was not.
    assert_eq!(
        ok(
            &lake,
            &[
                "query",
                "-f",
                "csv",
                "SELECT CAST(event_date AS VARCHAR) AS d, COUNT(*) AS n FROM clean.events GROUP BY 1"
            ]
        ),
        "d,n\n2020-04-02,5\n"
    );
    let status = ok(&lake, &["status"]);
    assert!(status.contains("no_price_over_1000"), "{status}");

    // `check` on the published tables: built-ins pass; with the config the range check
    // passes too (the offending day was never published), and a stricter one fails.
    let out = ok(&lake, &["check"]);
    assert!(out.contains("0 failed"), "{out}");
    std::fs::write(
        &config,
        "[[checks]]\ntable = \"clean.events\"\nkind = \"range\"\ncolumn = \"price\"\nmax = 400\nseverity = \"warn\"\n",
    )
    .unwrap();
    let out = bin()
        .arg("--lake")
        .arg(&lake)
        .arg("--config")
        .arg(&config)
        .args(["check", "clean.events"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // A warning fails the check but not the command. Prices over 400 on day 2: 480.00 twice.
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("range_price: 2 offending rows"), "{stdout}");
    assert_eq!(
        ok(
            &lake,
            &[
                "query",
                "-f",
                "csv",
                "SELECT COUNT(*) AS n FROM quality.results WHERE run_id LIKE 'check-%' AND NOT passed"
            ]
        ),
        "n\n1\n"
    );
    // A broken configuration is a usage error.
    std::fs::write(
        &config,
        "[[checks]]\ntable = \"clean.nope\"\nkind = \"schema\"\n",
    )
    .unwrap();
    let out = bin()
        .arg("--lake")
        .arg(&lake)
        .arg("--config")
        .arg(&config)
        .arg("check")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown table"));
}

#[test]
fn a_run_crashed_after_any_commit_then_rerun_equals_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("events.csv");
    ok(
        dir.path(),
        &[
            "generate",
            "--rows",
            "20000",
            "--days",
            "4",
            "--seed",
            "5",
            "--out",
            data.to_str().unwrap(),
        ],
    );
    let reference = dir.path().join("reference");
    ok(&reference, &["ingest", data.to_str().unwrap()]);
    ok(&reference, &["run"]);
    let expected = table_dump(&reference);

    // Counted commits: 4 days x 7 tables (clean, rejects, fact, 4 day marts), 2 month marts,
    // 6 dimensions (with the sessions mart), run_days, quality.results: 38 (meta.runs, last,
    // is not counted). Crash after the first, in the middle of the days, after the last day,
    // between the month marts, after them, between dimensions, after the last data commit,
    // and after run_days but before the run is recorded.
    for after in [1, 5, 12, 28, 29, 30, 33, 36, 37] {
        let lake = dir.path().join(format!("crash-{after}"));
        ok(&lake, &["ingest", data.to_str().unwrap()]);
        let out = bin()
            .arg("--lake")
            .arg(&lake)
            .arg("run")
            .env("SHOPLAKE_CRASH_AFTER_COMMITS", after.to_string())
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "the crash switch fired after commit {after}"
        );
        assert_eq!(
            ok(
                &lake,
                &["query", "-f", "csv", "SELECT COUNT(*) AS n FROM meta.runs"]
            ),
            "n\n0\n",
            "the crashed run is not recorded"
        );
        ok(&lake, &["run"]);
        assert_eq!(
            table_dump(&lake),
            expected,
            "after a crash after commit {after}"
        );
    }
}

#[test]
fn convert_reports_refuses_to_clobber_and_publishes_nothing_when_killed() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("unused-lake");
    let f = fixture();
    let out = dir.path().join("parquet");
    let text = ok(
        &lake,
        &[
            "convert",
            f.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(
        text.contains("read 28 lines from 1 file(s)")
            && text.contains("13 rows written, 3 exact duplicates dropped, 12 rejected"),
        "{text}"
    );
    assert!(
        text.contains("wrote 2 days (2020-04-01 to 2020-04-02)"),
        "{text}"
    );
    assert!(!lake.exists(), "convert needs no lake");

    // An existing output is a usage error unless --overwrite; a missing input too.
    let again = shoplake(
        &lake,
        &[
            "convert",
            f.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--overwrite"));
    let missing = shoplake(&lake, &["convert", "nope.csv", "--out", "x"]);
    assert_eq!(missing.status.code(), Some(2));
    let json = ok(
        &lake,
        &[
            "convert",
            f.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--overwrite",
            "-f",
            "json",
        ],
    );
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["rows"], 13);
    assert_eq!(report["rejected_by_reason"]["malformed_row"], 3);

    // Killed at any instant: the output is absent or complete, never partial.
    let data = dir.path().join("events.csv.gz");
    ok(
        &lake,
        &[
            "generate",
            "--rows",
            "200000",
            "--days",
            "3",
            "--out",
            data.to_str().unwrap(),
        ],
    );
    let full = dir.path().join("full");
    let reference: serde_json::Value = serde_json::from_str(&ok(
        &lake,
        &[
            "convert",
            data.to_str().unwrap(),
            "--out",
            full.to_str().unwrap(),
            "-f",
            "json",
        ],
    ))
    .unwrap();
    for delay_ms in [5u64, 80, 250, 700] {
        let target = dir.path().join(format!("killed-{delay_ms}"));
        let mut child = bin()
            .args(["convert", "-q", "--out"])
            .arg(&target)
            .arg(&data)
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        if target.exists() {
            assert!(
                target.join("_report.json").exists(),
                "partial output at {delay_ms} ms"
            );
        }
        let rerun: serde_json::Value = serde_json::from_str(&ok(
            &lake,
            &[
                "convert",
                data.to_str().unwrap(),
                "--out",
                target.to_str().unwrap(),
                "--overwrite",
                "-f",
                "json",
            ],
        ))
        .unwrap();
        for key in ["lines", "rows", "duplicates", "rejected", "days"] {
            assert_eq!(
                rerun[key], reference[key],
                "{key} after a kill at {delay_ms} ms"
            );
        }
        let staging = dir.path().join(format!(".killed-{delay_ms}.partial"));
        assert!(!staging.exists());
    }
}

fn pipeline_fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shoplake-pipeline/tests/fixtures")
        .join(name)
}

#[test]
fn an_export_that_went_through_a_spreadsheet_is_kept_and_said_so() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let exact = pipeline_fixture("exact_categories.csv");
    let mangled = pipeline_fixture("spreadsheet.csv");
    let out = ok(
        &lake,
        &["ingest", exact.to_str().unwrap(), mangled.to_str().unwrap()],
    );
    // Said once, for the mangled file only.
    assert_eq!(out.matches("in scientific notation").count(), 1, "{out}");
    assert!(
        out.contains(
            "10 of 10 category_id values are in scientific notation (the file went through a \
             spreadsheet, which keeps 15 significant digits); their categories will be matched \
             by product and code where possible"
        ),
        "{out}"
    );
    let out = ok(&lake, &["run"]);
    // day, raw, clean, duplicates, rejected, repaired, unknown (see the fixtures' README).
    let total: Vec<&str> = out
        .lines()
        .find(|l| l.starts_with("total"))
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default();
    assert_eq!(total, ["total", "15", "12", "2", "1", "4", "3"], "{out}");
    assert!(
        out.contains("4 had a category id in scientific notation repaired"),
        "{out}"
    );

    // The strict rule, from shoplake.toml: the same rows rejected, and the ingest says so.
    let config = dir.path().join("strict.toml");
    std::fs::write(&config, "[rules]\nscientific_ids = \"reject\"\n").unwrap();
    let strict_lake = dir.path().join("strict");
    let with_config = |args: &[&str]| {
        let out = bin()
            .arg("--lake")
            .arg(&strict_lake)
            .arg("--config")
            .arg(&config)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let out = with_config(&["ingest", exact.to_str().unwrap(), mangled.to_str().unwrap()]);
    assert!(
        out.contains(
            "they will be rejected as bad_category_id ([rules] scientific_ids = \"reject\")"
        ),
        "{out}"
    );
    let out = with_config(&["run"]);
    let total: Vec<&str> = out
        .lines()
        .find(|l| l.starts_with("total"))
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default();
    assert_eq!(total, ["total", "15", "5", "0", "10"], "{out}");

    // A misspelt setting is a usage error naming it.
    std::fs::write(&config, "[rules]\nscientific_ids = \"guess\"\n").unwrap();
    let out = bin()
        .arg("--lake")
        .arg(&strict_lake)
        .arg("--config")
        .arg(&config)
        .arg("run")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("scientific_ids") || err.contains("guess"),
        "{err}"
    );
}
