//! Quality gates: an `error` check keeps the previous version visible, a `warn` check
//! publishes, and every outcome lands in quality.results.

use crate::common::*;
use chrono::NaiveDate;
use shoplake_lake::{Lake, NoProgress, tables};
use shoplake_pipeline::{RunOptions, Selection, run};
use shoplake_quality::checks::{Check, CheckKind, Severity, builtin};

fn with(extra: Check) -> Vec<Check> {
    let mut checks = builtin();
    checks.push(extra);
    checks
}

async fn version(lake: &Lake, def: &tables::TableDef) -> Option<i64> {
    lake.load(def)
        .await
        .unwrap()
        .and_then(|t| t.version())
        .map(|v| v as i64)
}

#[tokio::test]
async fn an_error_check_keeps_the_previous_day_visible_and_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let lake = lake_in(dir.path());
    ingest(&lake, &[fixture()]).await;
    assert!(!run_incremental(&lake).await.gate_failed());
    let before = content(&lake, "clean.events", &[]).await;
    let clean_version = version(&lake, &tables::clean_events()).await;
    let fact_version = version(&lake, &tables::fact_user_events()).await;

    // Product 400 costs 1200.00 on 2020-04-01: forbid it and rebuild that day.
    let day = NaiveDate::from_ymd_opt(2020, 4, 1).unwrap();
    let expensive = Check {
        table: "clean.events".into(),
        name: "no_price_over_1000".into(),
        severity: Severity::Error,
        kind: CheckKind::CustomSql {
            sql: "SELECT event_id, product_id, price FROM clean.events WHERE price > 1000".into(),
        },
    };
    let options = RunOptions {
        selection: Selection::Dates([day].into()),
        checks: with(expensive.clone()),
        ..RunOptions::default()
    };
    let report = run(&lake, &options, &NoProgress).await.unwrap();
    assert!(report.gate_failed());
    assert_eq!(report.blocked_days, vec![day]);
    assert!(report.days.is_empty());
    let failure = report.failures()[0];
    assert_eq!(failure.check.name, "no_price_over_1000");
    assert_eq!(failure.observed, "1 rows returned");
    assert!(
        failure.sample[0].contains("\"product_id\":400"),
        "{:?}",
        failure.sample
    );

    // Readers still see the previous version: same content, no new commit.
    assert_eq!(content(&lake, "clean.events", &[]).await, before);
    assert_eq!(version(&lake, &tables::clean_events()).await, clean_version);
    assert_eq!(
        version(&lake, &tables::fact_user_events()).await,
        fact_version
    );

    // The outcome is stored, and the check ran on the candidate day only.
    assert_eq!(
        rows(
            &lake,
            "SELECT table_name, CAST(event_date AS VARCHAR), check_name, severity, passed, observed, published \
             FROM quality.results WHERE check_name = 'no_price_over_1000'"
        )
        .await,
        vec!["clean.events|2020-04-01|no_price_over_1000|error|false|1 rows returned|no"]
    );
    // Every other check of that day passed and was stored too.
    assert!(count(&lake, "SELECT COUNT(*) FROM quality.results WHERE passed").await > 10);

    // As a warning, the same check publishes.
    let warn = Check {
        severity: Severity::Warn,
        ..expensive
    };
    let report = run(
        &lake,
        &RunOptions {
            selection: Selection::Dates([day].into()),
            checks: with(warn),
            ..RunOptions::default()
        },
        &NoProgress,
    )
    .await
    .unwrap();
    assert!(!report.gate_failed());
    assert_eq!(report.days.len(), 1);
    assert_eq!(report.failures().len(), 1);
    assert!(version(&lake, &tables::clean_events()).await > clean_version);
}

#[tokio::test]
async fn a_blocked_day_is_retried_by_the_next_incremental_run() {
    let dir = tempfile::tempdir().unwrap();
    let lake = lake_in(dir.path());
    ingest(&lake, &[fixture()]).await;
    let strict = Check {
        table: "clean.events".into(),
        name: "no_unknown_brand".into(),
        severity: Severity::Error,
        kind: CheckKind::CustomSql {
            sql: "SELECT * FROM clean.events WHERE brand = 'unknown'".into(),
        },
    };
    let options = RunOptions {
        checks: with(strict),
        ..RunOptions::default()
    };
    let report = run(&lake, &options, &NoProgress).await.unwrap();
    // Product 200 (no brand) is on 2020-04-01 only: that day is held, 2020-04-02 published.
    assert_eq!(
        report.blocked_days,
        vec![NaiveDate::from_ymd_opt(2020, 4, 1).unwrap()]
    );
    assert_eq!(report.days.len(), 1);
    assert_eq!(count(&lake, "SELECT COUNT(*) FROM clean.events").await, 5);
    // Dimensions were rebuilt from what is published.
    assert_eq!(count(&lake, "SELECT COUNT(*) FROM model.dim_time").await, 1);

    // Without the strict check, the next incremental run picks the held day up.
    let report = run_incremental(&lake).await;
    assert_eq!(report.days.len(), 1);
    assert_eq!(report.days[0].date.to_string(), "2020-04-01");
    assert_eq!(count(&lake, "SELECT COUNT(*) FROM clean.events").await, 13);
}

#[tokio::test]
async fn an_error_check_on_a_dimension_keeps_the_previous_dimensions() {
    let dir = tempfile::tempdir().unwrap();
    let lake = lake_in(dir.path());
    ingest(&lake, &[fixture()]).await;
    run_incremental(&lake).await;
    let users = content(&lake, "model.dim_users", &[]).await;
    let dims_version = version(&lake, &tables::dim_users()).await;

    let busy = Check {
        table: "model.dim_users".into(),
        name: "no_user_over_4_events".into(),
        severity: Severity::Error,
        kind: CheckKind::CustomSql {
            sql: "SELECT user_id, events FROM model.dim_users WHERE events > 4".into(),
        },
    };
    let day = NaiveDate::from_ymd_opt(2020, 4, 2).unwrap();
    let report = run(
        &lake,
        &RunOptions {
            selection: Selection::Dates([day].into()),
            checks: with(busy.clone()),
            ..RunOptions::default()
        },
        &NoProgress,
    )
    .await
    .unwrap();
    assert!(report.dimensions_blocked);
    assert!(report.gate_failed());
    // User 1 has 5 events.
    assert!(report.failures()[0].sample[0].contains("\"user_id\":1"));
    assert_eq!(version(&lake, &tables::dim_users()).await, dims_version);
    assert_eq!(content(&lake, "model.dim_users", &[]).await, users);

    // Late data for 2020-04-02 arrives while the strict check is in force: the day's
    // partitions are published but the dimensions are held, and the day is not marked built.
    let late = write_file(
        dir.path(),
        "late.csv",
        format!(
            "{HEADER}\n2020-04-02 11:00:00 UTC,view,500,2000000000000000005,construction.tools.light,samsung,150.00,1,s7\n"
        )
        .as_bytes(),
    );
    ingest(&lake, &[late]).await;
    let held = run(
        &lake,
        &RunOptions {
            checks: with(busy.clone()),
            ..RunOptions::default()
        },
        &NoProgress,
    )
    .await
    .unwrap();
    assert!(held.dimensions_blocked);
    assert_eq!(content(&lake, "model.dim_users", &[]).await, users);

    // The next run, without the strict check, rebuilds that day and publishes the dimensions.
    let next = run_incremental(&lake).await;
    assert_eq!(next.days.len(), 1);
    assert!(!next.gate_failed());
    assert!(version(&lake, &tables::dim_users()).await > dims_version);
    assert_eq!(
        rows(
            &lake,
            "SELECT events, sessions FROM model.dim_users WHERE user_id = 1"
        )
        .await,
        vec!["6|4"]
    );
}
