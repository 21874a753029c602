//! `shoplake profile` as a user runs it: on a generated export and on the lake tables built from
//! it, with its figures checked against independent SQL run through `shoplake query`, and its
//! exit codes on wrong arguments.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use shoplake_ingest::generate::{GenerateOptions, generate_to_path};

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

fn profile_json(lake: &Path, args: &[&str]) -> Value {
    let mut all = vec!["profile"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--format", "json"]);
    serde_json::from_str(&ok(lake, &all)).unwrap()
}

/// Rows of `shoplake query --format json` (one object per line).
fn query(lake: &Path, sql: &str) -> Vec<Value> {
    ok(lake, &["query", "--format", "json", sql])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn query_u64(lake: &Path, sql: &str) -> u64 {
    let rows = query(lake, sql);
    let value = rows[0]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()
        .clone();
    value
        .as_u64()
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("{sql}: {value}"))
}

/// 20,000 generated rows over 10 days, the fourth (2020-04-04) a logging gap.
fn generated(dir: &Path) -> (PathBuf, u64) {
    let path = dir.join("events.csv.gz");
    let opts = GenerateOptions {
        rows: 20_000,
        seed: 11,
        days: 10,
        gap_day: Some(3),
        ..GenerateOptions::default()
    };
    let report = generate_to_path(&opts, &path, &mut |_| {}).unwrap();
    (path, report.duplicates)
}

const NINE: &str =
    "event_time, event_type, product_id, category_id, category_code, brand, price, user_id";

/// Per-event_type counts from a profile document.
fn event_types(p: &Value) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = p["event_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["value"].as_str().unwrap_or("").to_string(),
                e["rows"].as_u64().unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

fn event_types_by_sql(lake: &Path, table: &str) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = query(
        lake,
        &format!("SELECT event_type, COUNT(*) AS n FROM {table} GROUP BY event_type"),
    )
    .iter()
    .map(|r| {
        (
            r["event_type"].as_str().unwrap_or("").to_string(),
            r["n"].as_u64().unwrap(),
        )
    })
    .collect();
    v.sort();
    v
}

#[test]
fn profiles_an_export_and_the_lake_tables_built_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let (file, generated_duplicates) = generated(dir.path());
    let file = file.to_str().unwrap();

    // The export itself, before anything is in the lake.
    let from_file = profile_json(&lake, &[file]);
    assert_eq!(from_file["source"], file);
    assert_eq!(from_file["input_kind"], "text");
    assert_eq!(from_file["exact"], true);
    assert_eq!(from_file["rows"]["total"], 20_000);
    assert_eq!(from_file["rows"]["duplicates"], generated_duplicates);
    assert_eq!(
        from_file["time"]["near_empty_days"],
        serde_json::json!(["2020-04-04"])
    );
    assert_eq!(from_file["time"]["days"].as_array().unwrap().len(), 10);
    // Profiling the file left the lake empty.
    assert_eq!(query_u64(&lake, "SELECT COUNT(*) AS n FROM raw.events"), 0);
    ok(&lake, &["ingest", file]);
    ok(&lake, &["run"]);

    // raw.events holds the same lines: the same figures, and they agree with plain SQL.
    let raw = profile_json(&lake, &["raw.events"]);
    for key in [
        "rows",
        "columns",
        "event_types",
        "price",
        "time",
        "sessions",
        "funnel",
    ] {
        assert_eq!(
            raw[key], from_file[key],
            "{key} differs between file and raw.events"
        );
    }
    let total = query_u64(&lake, "SELECT COUNT(*) AS n FROM raw.events");
    assert_eq!(total, 20_000);
    assert_eq!(raw["rows"]["total"], total);
    let distinct = query_u64(
        &lake,
        &format!(
            "SELECT COUNT(*) AS n FROM (SELECT DISTINCT {NINE}, user_session FROM raw.events)"
        ),
    );
    assert_eq!(raw["rows"]["duplicates"], total - distinct);
    assert_eq!(event_types(&raw), event_types_by_sql(&lake, "raw.events"));
    let no_brand = query_u64(
        &lake,
        "SELECT COUNT(*) AS n FROM raw.events WHERE brand IS NULL OR brand = ''",
    );
    let brand = raw["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "brand")
        .unwrap();
    assert_eq!(brand["missing"], no_brand);
    let users = query_u64(&lake, "SELECT COUNT(DISTINCT user_id) AS n FROM raw.events");
    let user_col = raw["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "user_id")
        .unwrap();
    assert_eq!(user_col["distinct"], users);
    let zero = query_u64(
        &lake,
        "SELECT COUNT(*) AS n FROM raw.events WHERE CAST(price AS DECIMAL(10, 2)) <= 0",
    );
    let rule = |p: &Value, id: &str| {
        p["cleaning_rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("no rule {id}"))["rows"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(rule(&raw, "drop_non_positive_prices"), zero);
    assert_eq!(rule(&raw, "drop_exact_duplicates"), total - distinct);

    // The typed fact table (session column `session_id`).
    let fact = profile_json(&lake, &["model.fact_user_events"]);
    assert_eq!(fact["input_kind"], "typed");
    let facts = query_u64(&lake, "SELECT COUNT(*) AS n FROM model.fact_user_events");
    assert_eq!(fact["rows"]["total"], facts);
    let fact_distinct = query_u64(
        &lake,
        &format!(
            "SELECT COUNT(*) AS n FROM (SELECT DISTINCT {NINE}, session_id FROM model.fact_user_events)"
        ),
    );
    assert_eq!(fact["rows"]["duplicates"], facts - fact_distinct);
    assert_eq!(
        event_types(&fact),
        event_types_by_sql(&lake, "model.fact_user_events")
    );
    let sessions = query_u64(
        &lake,
        "SELECT COUNT(DISTINCT session_id) AS n FROM model.fact_user_events",
    );
    assert_eq!(fact["sessions"]["sessions"], sessions);
    // Cleaning removed duplicates and zero prices.
    assert_eq!(rule(&fact, "drop_non_positive_prices"), 0);
}

#[test]
fn samples_formats_and_output_files() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let (file, _) = generated(dir.path());
    let file = file.to_str().unwrap();

    // The same seed draws the same rows; the figures say they come from a sample.
    let a = ok(
        &lake,
        &[
            "profile", file, "--sample", "0.1", "--seed", "3", "-f", "json",
        ],
    );
    let b = ok(
        &lake,
        &[
            "profile", file, "--sample", "0.1", "--seed", "3", "-f", "json",
        ],
    );
    let c = ok(
        &lake,
        &[
            "profile", file, "--sample", "0.1", "--seed", "4", "-f", "json",
        ],
    );
    assert_eq!(a, b);
    assert_ne!(a, c);
    let a: Value = serde_json::from_str(&a).unwrap();
    let rows = a["rows"]["total"].as_u64().unwrap();
    // Binomial(20000, 0.1): mean 2000, standard deviation 42.
    assert!((1_750..=2_250).contains(&rows), "{rows}");
    assert_eq!(a["exact"], false);
    assert_eq!(a["sample"]["rows"], rows);
    assert_eq!(a["sample"]["seed"], 3);
    let label = format!("sample of {rows} rows");
    assert!(a["notes"][0].as_str().unwrap().contains(&label));
    let table = ok(&lake, &["profile", file, "--sample", "0.1", "--seed", "3"]);
    assert!(table.contains(&label), "{table}");
    assert!(table.contains("exact duplicates"));

    // --approx says so.
    let approx = profile_json(&lake, &[file, "--approx"]);
    assert_eq!(approx["distinct_counts"], "approximate");

    // Markdown on stdout; HTML into a file, nothing on stdout.
    let md = ok(&lake, &["profile", file, "--format", "md"]);
    assert!(md.starts_with("# Profile of "), "{md}");
    assert!(md.contains("| exact duplicates |"));
    let page = dir.path().join("page.html");
    let out = ok(
        &lake,
        &[
            "profile",
            file,
            "--format",
            "html",
            "--out",
            page.to_str().unwrap(),
        ],
    );
    assert_eq!(out, "");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_eq!(html.matches("<svg").count(), 4);
    assert!(!html.contains("http://") && !html.contains("https://"));
}

fn fails(lake: &Path, args: &[&str], code: i32) -> String {
    let out = shoplake(lake, args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(code), "shoplake {args:?}: {stderr}");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "not one line: {stderr}"
    );
    stderr
}

#[test]
fn wrong_arguments_are_usage_errors_on_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let (file, _) = generated(dir.path());
    let file = file.to_str().unwrap();

    for fraction in ["0", "1.5", "-0.2", "NaN"] {
        let arg = format!("--sample={fraction}");
        let err = fails(&lake, &["profile", file, &arg], 2);
        assert!(err.contains("--sample"), "{err}");
    }
    let err = fails(&lake, &["profile", "no/such/file.csv.gz"], 2);
    assert!(
        err.starts_with("error: 'no/such/file.csv.gz' is neither"),
        "{err}"
    );
    assert!(err.contains("raw.events"), "{err}");
    let err = fails(&lake, &["profile", "model.dim_users"], 2);
    assert!(err.contains("not an event table"), "{err}");
    let err = fails(
        &lake,
        &[
            "profile",
            file,
            "--out",
            dir.path().join("no/dir/p.html").to_str().unwrap(),
        ],
        2,
    );
    assert!(err.contains("does not exist"), "{err}");
    // A file that is not an export fails with the reason and writes nothing.
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "a,b\n1,2\n").unwrap();
    let err = fails(&lake, &["profile", bad.to_str().unwrap()], 1);
    assert!(err.contains("wrong header"), "{err}");
    // A damaged gzip fails with its cause.
    let bytes = std::fs::read(file).unwrap();
    let truncated = dir.path().join("truncated.csv.gz");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let err = fails(&lake, &["profile", truncated.to_str().unwrap()], 1);
    assert!(err.contains("cannot read"), "{err}");
    // Malformed lines are data, not a crash.
    let mixed = dir.path().join("mixed.csv");
    std::fs::write(
        &mixed,
        "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session\n\
         2020-04-01 00:00:01 UTC,view,1,2,,b,1.00,3,s\n\
         not,enough,fields\n\
         2020-04-01 00:00:02 UTC,cart,1,2,,b,1.00,3,s\n",
    )
    .unwrap();
    let p = profile_json(&lake, &[mixed.to_str().unwrap()]);
    assert_eq!(p["rows"]["total"], 3);
    assert_eq!(p["rows"]["malformed"], 1);
}
