//! Incremental runs, idempotency, late data and the row-accounting invariant on generated data.
//! Expected figures come from the export text and from a plain DataFusion session over the
//! Delta logs' files, never from the run's own report or shoplake's SQL catalog.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common::*;
use chrono::NaiveDate;
use shoplake_ingest::generate::{GenerateOptions, generate_to_path};
use shoplake_lake::testing::expected_accounting;
use shoplake_lake::{Accounting, Lake, NoProgress};
use shoplake_pipeline::{RunOptions, Selection, run};

/// Generates `rows` events over 3 days and returns the data lines (header excluded).
fn generated_lines(dir: &Path, rows: u64) -> Vec<String> {
    let path = dir.join("all.csv");
    let options = GenerateOptions {
        rows,
        seed: 7,
        start: NaiveDate::from_ymd_opt(2020, 4, 1).unwrap(),
        days: 3,
        gap_day: None,
    };
    generate_to_path(&options, &path, &mut |_| {}).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    text.lines().skip(1).map(str::to_string).collect()
}

fn file_of(dir: &Path, name: &str, lines: &[&String]) -> PathBuf {
    let mut body = String::from(HEADER);
    body.push('\n');
    for l in lines {
        body.push_str(l);
        body.push('\n');
    }
    write_file(dir, name, body.as_bytes())
}

/// Splits generated lines into: day 1 (minus every 10th line), and days 2-3 plus those
/// held-back day-1 lines (late data), and a few hand-made bad lines.
fn two_deliveries(dir: &Path) -> (PathBuf, PathBuf) {
    let lines = generated_lines(dir, 30_000);
    let bad: Vec<String> = vec![
        "2020-04-01 08:00:00 UTC,view,1,2,,,0.00,3,s".into(),
        "2020-04-02 08:00:00 UTC,view,1,2".into(),
        "2020-04-02 08:00:01 UTC,teleport,1,2,,,3.00,3,s".into(),
    ];
    let (mut first, mut second) = (Vec::new(), Vec::new());
    for (i, l) in lines.iter().chain(bad.iter()).enumerate() {
        if l.starts_with("2020-04-01") && i % 10 != 0 {
            first.push(l);
        } else {
            second.push(l);
        }
    }
    (
        file_of(dir, "part1.csv", &first),
        file_of(dir, "part2.csv", &second),
    )
}

/// Per day, from the export text alone: where its lines go.
fn expected_from_text(files: &[&Path]) -> BTreeMap<String, Accounting> {
    let texts: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    expected_accounting(texts.iter().flat_map(|t| t.lines().skip(1)))
}

/// `event_date|n` lines as a map.
fn per_day(rows: &[String]) -> BTreeMap<String, u64> {
    rows.iter()
        .map(|r| {
            let (d, n) = r.split_once('|').unwrap();
            (d.to_string(), n.parse().unwrap())
        })
        .collect()
}

#[tokio::test]
async fn accounting_adds_up_per_day_against_the_export_text() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_deliveries(dir.path());
    let expected = expected_from_text(&[&a, &b]);
    assert_eq!(expected.len(), 3);
    assert!(
        expected.values().map(|d| d.duplicates).sum::<u64>() > 0,
        "the generator makes ~0.2 % duplicates"
    );
    assert!(expected.values().all(|d| d.rejected > 0));

    let lake = lake_in(dir.path());
    ingest(&lake, &[a, b]).await;
    let report = run_incremental(&lake).await;
    let reported: BTreeMap<String, Accounting> = report
        .days
        .iter()
        .map(|d| (d.date.to_string(), d.rows))
        .collect();
    assert_eq!(reported, expected);

    // The lake as read by a plain DataFusion session over the files the Delta logs list.
    let count_per_day = |table: &str| {
        format!("SELECT CAST(event_date AS VARCHAR), COUNT(*) FROM {table} GROUP BY 1 ORDER BY 1")
    };
    let day_counts = |f: fn(&Accounting) -> u64| -> BTreeMap<String, u64> {
        expected
            .iter()
            .filter(|(_, a)| f(a) > 0)
            .map(|(d, a)| (d.clone(), f(a)))
            .collect()
    };
    for (table, wanted) in [
        ("raw.events", day_counts(|a| a.raw)),
        ("clean.events", day_counts(|a| a.clean)),
        ("model.fact_user_events", day_counts(|a| a.clean)),
        ("clean.rejects", day_counts(|a| a.rejected)),
    ] {
        let got = per_day(&plain_rows(&lake, &count_per_day(table)).await);
        assert_eq!(got, wanted, "{table}");
    }
    // The hand-made bad lines are where they must be.
    assert_eq!(
        plain_rows(&lake, "SELECT reason, COUNT(*) FROM clean.rejects WHERE product_id = '1' OR _error IS NOT NULL GROUP BY 1 ORDER BY 1").await,
        vec!["malformed_row|1", "non_positive_price|1", "unknown_event_type|1"]
    );
    // Clean rows are distinct.
    assert_eq!(
        plain_rows(
            &lake,
            "SELECT COUNT(*) = COUNT(DISTINCT event_id) FROM clean.events"
        )
        .await,
        vec!["true"]
    );
}

#[tokio::test]
async fn incremental_with_late_data_equals_one_run_over_everything() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_deliveries(dir.path());

    // Lake 1: day 1 first, then days 2-3 with late rows for day 1.
    let stepwise = Lake::open(dir.path().join("stepwise").to_str().unwrap()).unwrap();
    ingest(&stepwise, std::slice::from_ref(&a)).await;
    let first = run_incremental(&stepwise).await;
    assert_eq!(
        first
            .days
            .iter()
            .map(|d| d.date.to_string())
            .collect::<Vec<_>>(),
        vec!["2020-04-01"]
    );
    ingest(&stepwise, std::slice::from_ref(&b)).await;
    let second = run_incremental(&stepwise).await;
    // Day 1 got late rows, so it is rebuilt too.
    assert_eq!(second.days.len(), 3);
    assert_eq!(second.days[0].reason, shoplake_pipeline::DayReason::Changed);

    // Lake 2: everything at once.
    let once = Lake::open(dir.path().join("once").to_str().unwrap()).unwrap();
    ingest(&once, &[a, b]).await;
    run_incremental(&once).await;

    let (x, y) = (downstream(&stepwise).await, downstream(&once).await);
    for ((name, left), (_, right)) in x.iter().zip(y.iter()) {
        assert!(!left.is_empty(), "{name} is empty");
        assert_eq!(left, right, "{name} differs");
    }
}

#[tokio::test]
async fn runs_and_ingests_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_deliveries(dir.path());
    let lake = lake_in(dir.path());
    let first = ingest(&lake, &[a.clone(), b.clone()]).await;
    let raw_rows = count(&lake, "SELECT COUNT(*) FROM raw.events").await;
    assert_eq!(raw_rows as u64, first.rows());
    let lines: u64 = [&a, &b]
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap().lines().count() as u64 - 1)
        .sum();
    assert_eq!(raw_rows as u64, lines);

    // The same content again, under another name too: nothing added.
    let copy = dir.path().join("copy-of-part1.csv");
    std::fs::copy(&a, &copy).unwrap();
    let again = ingest(&lake, &[a, copy]).await;
    assert_eq!(again.rows(), 0);
    assert!(again.files.iter().all(|f| matches!(
        f,
        shoplake_ingest::files::FileOutcome::AlreadyIngested { .. }
    )));
    assert_eq!(
        count(&lake, "SELECT COUNT(*) FROM raw.events").await,
        raw_rows
    );

    run_incremental(&lake).await;
    let before = downstream(&lake).await;
    let versions = |lake: &shoplake_lake::Lake| {
        let lake = lake.clone();
        async move {
            let mut v = Vec::new();
            for def in shoplake_lake::tables::all() {
                v.push(lake.load(&def).await.unwrap().and_then(|t| t.version()));
            }
            v
        }
    };
    let v1 = versions(&lake).await;

    // A second run finds nothing to do and writes nothing.
    let second = run_incremental(&lake).await;
    assert!(second.days.is_empty());
    assert_eq!(versions(&lake).await, v1);

    // Forcing a day (and a range) rebuilds it to the same content.
    let day = NaiveDate::from_ymd_opt(2020, 4, 2).unwrap();
    let forced = run(
        &lake,
        &RunOptions {
            selection: Selection::Dates([day].into()),
            dry_run: false,
            ..RunOptions::default()
        },
        &NoProgress,
    )
    .await
    .unwrap();
    assert_eq!(forced.days.len(), 1);
    let range = Selection::range(
        NaiveDate::from_ymd_opt(2020, 4, 1).unwrap(),
        NaiveDate::from_ymd_opt(2020, 4, 5).unwrap(),
    )
    .unwrap();
    let ranged = run(
        &lake,
        &RunOptions {
            selection: range,
            dry_run: false,
            ..RunOptions::default()
        },
        &NoProgress,
    )
    .await
    .unwrap();
    assert_eq!(ranged.days.len(), 3);
    assert_eq!(ranged.plan.empty_requested.len(), 2);
    assert_eq!(downstream(&lake).await, before);

    // A dry run plans without writing.
    let v2 = versions(&lake).await;
    let dry = run(
        &lake,
        &RunOptions {
            selection: Selection::Dates([day].into()),
            dry_run: true,
            ..RunOptions::default()
        },
        &NoProgress,
    )
    .await
    .unwrap();
    assert_eq!(dry.plan.days.len(), 1);
    assert!(dry.days.is_empty());
    assert_eq!(versions(&lake).await, v2);
}

/// Lines of a query, sorted (rows of a mart in any order).
async fn sorted(lake: &Lake, sql: &str, plain: bool) -> Vec<String> {
    let mut rows = if plain {
        plain_rows(lake, sql).await
    } else {
        rows(lake, sql).await
    };
    rows.sort();
    rows
}

#[tokio::test]
async fn the_marts_equal_their_definitions_over_clean_events() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_deliveries(dir.path());
    let lake = lake_in(dir.path());
    ingest(&lake, &[a, b]).await;
    run_incremental(&lake).await;
    // Each mart as published, against its definition as plain SQL over clean.events (read by
    // a plain DataFusion session over the Delta logs' files), not over the fact.
    let counts = "SUM(CASE WHEN event_type = 'view' THEN 1 ELSE 0 END),
                  SUM(CASE WHEN event_type = 'cart' THEN 1 ELSE 0 END),
                  SUM(CASE WHEN event_type = 'remove_from_cart' THEN 1 ELSE 0 END),
                  SUM(CASE WHEN event_type = 'purchase' THEN 1 ELSE 0 END),
                  SUM(CASE WHEN event_type = 'purchase' THEN price ELSE 0 END)";
    let cases = [
        (
            "SELECT event_date, views, carts, removes, purchases, revenue, users, users_viewed,
                    users_carted, users_removed, users_purchased FROM model.mart_funnel_daily"
                .to_string(),
            format!(
                "SELECT event_date, {counts}, COUNT(DISTINCT user_id),
                        COUNT(DISTINCT CASE WHEN event_type = 'view' THEN user_id END),
                        COUNT(DISTINCT CASE WHEN event_type = 'cart' THEN user_id END),
                        COUNT(DISTINCT CASE WHEN event_type = 'remove_from_cart' THEN user_id END),
                        COUNT(DISTINCT CASE WHEN event_type = 'purchase' THEN user_id END)
                 FROM clean.events GROUP BY event_date"
            ),
        ),
        (
            "SELECT event_date, hour_of_day, event_type, events, revenue FROM model.mart_hourly"
                .to_string(),
            "SELECT event_date, CAST(date_part('hour', event_time) AS INT), event_type, COUNT(*),
                    SUM(CASE WHEN event_type = 'purchase' THEN price ELSE 0 END)
             FROM clean.events GROUP BY 1, 2, 3"
                .to_string(),
        ),
        (
            "SELECT event_date, product_id, category_id, category_code, brand, price, views,
                    carts, removes, purchases, revenue FROM model.mart_product_daily"
                .to_string(),
            format!(
                "SELECT event_date, product_id, category_id, category_code, brand, price, {counts}
                 FROM clean.events GROUP BY 1, 2, 3, 4, 5, 6"
            ),
        ),
        (
            "SELECT event_date, user_id, events, views, carts, removes, purchases, revenue
             FROM model.mart_user_daily"
                .to_string(),
            format!("SELECT event_date, user_id, COUNT(*), {counts} FROM clean.events GROUP BY 1, 2"),
        ),
        (
            "SELECT month, user_id, active_days, purchase_days, events, views, carts, removes,
                    purchases, revenue FROM model.mart_user_monthly"
                .to_string(),
            format!(
                "SELECT CAST(date_trunc('month', event_date) AS DATE), user_id,
                        COUNT(DISTINCT event_date),
                        COUNT(DISTINCT CASE WHEN event_type = 'purchase' THEN event_date END),
                        COUNT(*), {counts}
                 FROM clean.events GROUP BY 1, 2"
            ),
        ),
        (
            "SELECT month, product_id, category_id, category_code, brand, price, views, carts,
                    removes, purchases, revenue FROM model.mart_product_monthly"
                .to_string(),
            format!(
                "SELECT CAST(date_trunc('month', event_date) AS DATE), product_id, category_id,
                        category_code, brand, price, {counts}
                 FROM clean.events GROUP BY 1, 2, 3, 4, 5, 6"
            ),
        ),
        (
            "SELECT event_date, measure, value, sessions, with_view, with_cart, with_purchase
             FROM model.mart_session_daily"
                .to_string(),
            "WITH s AS (
               SELECT user_session, CAST(MIN(event_time) AS DATE) AS day, COUNT(*) AS events,
                      (CAST(MAX(event_time) AS BIGINT) - CAST(MIN(event_time) AS BIGINT)) / 1000000 AS seconds,
                      MAX(CASE WHEN event_type = 'view' THEN 1 ELSE 0 END) AS v,
                      MAX(CASE WHEN event_type = 'cart' THEN 1 ELSE 0 END) AS c,
                      MAX(CASE WHEN event_type = 'purchase' THEN 1 ELSE 0 END) AS p
               FROM clean.events GROUP BY user_session)
             SELECT day, 'duration_seconds', seconds, COUNT(*), SUM(v), SUM(c), SUM(p) FROM s GROUP BY 1, 3
             UNION ALL
             SELECT day, 'events', events, COUNT(*), SUM(v), SUM(c), SUM(p) FROM s GROUP BY 1, 3"
                .to_string(),
        ),
    ];
    for (mart, definition) in cases {
        let published = sorted(&lake, &mart, true).await;
        assert!(!published.is_empty(), "{mart}");
        assert_eq!(published, sorted(&lake, &definition, true).await, "{mart}");
    }
}
