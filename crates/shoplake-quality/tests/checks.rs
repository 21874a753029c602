//! Every check kind passes on good data and fails on crafted bad data, with the offending
//! rows counted and sampled. Tables are small in-memory tables registered under lake names.

use std::sync::Arc;

use chrono::{NaiveDate, TimeZone, Utc};
use datafusion::arrow::array::{
    ArrayRef, Decimal128Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::catalog::MemorySchemaProvider;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use shoplake_lake::Accounting;
use shoplake_quality::checks::{Check, CheckKind, CheckScope, DayAccounting, Severity, evaluate};

fn table(ctx: &SessionContext, name: &str, columns: Vec<(&str, ArrayRef)>) {
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_new(
        schema.clone(),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .unwrap();
    ctx.register_table(
        name,
        Arc::new(MemTable::try_new(schema, vec![vec![batch]]).unwrap()),
    )
    .unwrap();
}

fn session() -> SessionContext {
    let ctx = SessionContext::new();
    let catalog = ctx.catalog("datafusion").unwrap();
    for layer in ["clean", "model"] {
        catalog
            .register_schema(layer, Arc::new(MemorySchemaProvider::new()))
            .unwrap();
    }
    ctx
}

fn ids(v: Vec<Option<i64>>) -> ArrayRef {
    Arc::new(Int64Array::from(v))
}

fn texts(v: Vec<Option<&str>>) -> ArrayRef {
    Arc::new(StringArray::from(v))
}

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2020, 4, 3, 12, 0, 0).unwrap()
}

async fn run(ctx: &SessionContext, table: &str, kind: CheckKind) -> (bool, String, usize) {
    run_scoped(ctx, table, kind, Vec::new(), Vec::new()).await
}

async fn run_scoped(
    ctx: &SessionContext,
    table: &str,
    kind: CheckKind,
    trailing: Vec<u64>,
    accounting: Vec<DayAccounting>,
) -> (bool, String, usize) {
    let check = Check::new(table, Severity::Error, kind);
    let scope = CheckScope {
        ctx,
        partition: None,
        trailing_counts: trailing,
        accounting,
        now: now(),
    };
    let o = evaluate(&check, &scope).await.unwrap();
    (o.passed, o.observed, o.sample.len())
}

/// good: users 1,2,3 with sessions; bad: a null, a duplicate key, an odd event type.
fn events(ctx: &SessionContext, name: &str, good: bool) {
    let (user, kind, price_cents): (Vec<Option<i64>>, Vec<Option<&str>>, Vec<i128>) = if good {
        (
            vec![Some(1), Some(2), Some(3)],
            vec![Some("view"), Some("cart"), Some("purchase")],
            vec![100, 250, 99_999],
        )
    } else {
        (
            vec![Some(1), Some(1), None],
            vec![Some("view"), Some("teleport"), Some("purchase")],
            vec![0, 250, 100_000],
        )
    };
    let times = TimestampMicrosecondArray::from(vec![
        now().timestamp_micros() - 3_600_000_000,
        now().timestamp_micros() - 7_200_000_000,
        now().timestamp_micros() - 86_400_000_000 * 3,
    ])
    .with_timezone("UTC");
    table(
        ctx,
        name,
        vec![
            ("user_id", ids(user)),
            ("event_type", texts(kind)),
            (
                "price",
                Arc::new(
                    Decimal128Array::from(price_cents)
                        .with_precision_and_scale(10, 2)
                        .unwrap(),
                ) as ArrayRef,
            ),
            ("event_time", Arc::new(times) as ArrayRef),
        ],
    );
}

#[tokio::test]
async fn not_null_unique_accepted_values_and_range() {
    let ctx = session();
    events(&ctx, "clean.good", true);
    events(&ctx, "clean.bad", false);
    let not_null = || CheckKind::NotNull {
        column: "user_id".into(),
    };
    assert_eq!(
        run(&ctx, "clean.good", not_null()).await,
        (true, "0 offending rows".into(), 0)
    );
    assert_eq!(
        run(&ctx, "clean.bad", not_null()).await,
        (false, "1 offending rows".into(), 1)
    );

    let unique = || CheckKind::Unique {
        columns: vec!["user_id".into()],
    };
    assert!(run(&ctx, "clean.good", unique()).await.0);
    // Keys 1 (twice) and NULL (once): one duplicated key.
    assert_eq!(
        run(&ctx, "clean.bad", unique()).await,
        (false, "1 duplicated keys".into(), 1)
    );
    let pair = CheckKind::Unique {
        columns: vec!["user_id".into(), "event_type".into()],
    };
    assert!(
        run(&ctx, "clean.bad", pair).await.0,
        "(1, view) and (1, teleport) differ"
    );

    let accepted = || CheckKind::AcceptedValues {
        column: "event_type".into(),
        values: vec![
            "view".into(),
            "cart".into(),
            "remove_from_cart".into(),
            "purchase".into(),
        ],
    };
    assert!(run(&ctx, "clean.good", accepted()).await.0);
    assert_eq!(
        run(&ctx, "clean.bad", accepted()).await.1,
        "1 offending rows"
    );

    // price > 0 and <= 999.99: the bad table has 0.00 (below) and 1000.00 (above).
    let range = |min_inclusive| CheckKind::Range {
        column: "price".into(),
        min: Some(0.0),
        max: Some(999.99),
        min_inclusive,
        max_inclusive: true,
    };
    assert!(run(&ctx, "clean.good", range(false)).await.0);
    assert_eq!(
        run(&ctx, "clean.bad", range(false)).await.1,
        "2 offending rows"
    );
    assert_eq!(
        run(&ctx, "clean.bad", range(true)).await.1,
        "1 offending rows",
        "0.00 allowed when inclusive"
    );
}

#[tokio::test]
async fn row_count_absolute_and_against_trailing_days() {
    let ctx = session();
    events(&ctx, "clean.day", true); // 3 rows
    let kind = |min, fraction| CheckKind::RowCount {
        min,
        max: Some(10),
        min_fraction_of_trailing_median: fraction,
        trailing_days: 7,
    };
    assert!(run(&ctx, "clean.day", kind(Some(3), None)).await.0);
    assert!(!run(&ctx, "clean.day", kind(Some(4), None)).await.0);
    // Median of [10, 12, 14] is 12; 3 >= 0.2 x 12 = 2.4 passes, 3 < 0.5 x 12 = 6 fails.
    let (passed, observed, _) = run_scoped(
        &ctx,
        "clean.day",
        kind(None, Some(0.2)),
        vec![10, 14, 12],
        vec![],
    )
    .await;
    assert!(passed, "{observed}");
    let (passed, observed, _) = run_scoped(
        &ctx,
        "clean.day",
        kind(None, Some(0.5)),
        vec![10, 14, 12],
        vec![],
    )
    .await;
    assert!(!passed);
    assert!(
        observed.contains("median of the 3 previous days: 12"),
        "{observed}"
    );
}

#[tokio::test]
async fn freshness_referential_schema_accounting_and_custom_sql() {
    let ctx = session();
    events(&ctx, "clean.good", true);
    let fresh = |age: &str| CheckKind::Freshness {
        column: "event_time".into(),
        max_age: age.into(),
    };
    // Newest event is 1 h before `now`.
    assert!(run(&ctx, "clean.good", fresh("2h")).await.0);
    assert!(!run(&ctx, "clean.good", fresh("30m")).await.0);

    table(
        &ctx,
        "model.users",
        vec![("user_id", ids(vec![Some(1), Some(2)]))],
    );
    let reference = CheckKind::Referential {
        column: "user_id".into(),
        references: "model.users.user_id".into(),
    };
    let (passed, observed, sample) = run(&ctx, "clean.good", reference).await;
    assert!(!passed);
    assert_eq!(
        (observed.as_str(), sample),
        ("1 offending rows", 1),
        "user 3 has no row in model.users"
    );

    // The schema contract compares with the declared table; a lookalike with a missing column fails.
    let def = shoplake_lake::tables::dim_time();
    let empty = MemTable::try_new(def.arrow_schema(), vec![vec![]]).unwrap();
    ctx.register_table("model.dim_time", Arc::new(empty))
        .unwrap();
    assert!(run(&ctx, "model.dim_time", CheckKind::Schema).await.0);
    table(
        &ctx,
        "model.dim_users",
        vec![("user_id", ids(vec![Some(1)]))],
    );
    let (passed, observed, _) = run(&ctx, "model.dim_users", CheckKind::Schema).await;
    assert!(!passed);
    assert!(observed.contains("missing"), "{observed}");

    let day = NaiveDate::from_ymd_opt(2020, 4, 1).unwrap();
    let good = DayAccounting {
        date: day,
        rows: Accounting {
            raw: 10,
            clean: 7,
            duplicates: 1,
            rejected: 2,
            ..Accounting::default()
        },
    };
    let bad = DayAccounting {
        rows: Accounting {
            rejected: 1,
            ..good.rows
        },
        ..good
    };
    assert!(
        run_scoped(
            &ctx,
            "clean.good",
            CheckKind::RowAccounting,
            vec![],
            vec![good]
        )
        .await
        .0
    );
    let (passed, observed, sample) = run_scoped(
        &ctx,
        "clean.good",
        CheckKind::RowAccounting,
        vec![],
        vec![good, bad],
    )
    .await;
    assert_eq!(
        (passed, observed.as_str(), sample),
        (false, "1 of 2 days do not add up", 1)
    );

    let custom = |sql: &str| CheckKind::CustomSql { sql: sql.into() };
    assert!(
        run(
            &ctx,
            "clean.good",
            custom("SELECT * FROM clean.good WHERE price > 1000")
        )
        .await
        .0
    );
    let (passed, observed, sample) = run(
        &ctx,
        "clean.good",
        custom("SELECT * FROM clean.good WHERE price > 1"),
    )
    .await;
    assert_eq!(
        (passed, observed.as_str(), sample),
        (false, "2 rows returned", 2)
    );
}
