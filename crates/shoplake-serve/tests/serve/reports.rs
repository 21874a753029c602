//! The reports against answers worked out by hand from the fixture (see
//! `crates/shoplake-pipeline/tests/slt/marts.slt` for its sessions and days), and against
//! independent SQL over `clean.events` on generated data.

use chrono::NaiveDate;
use serde_json::{Value, json};
use shoplake_lake::testing::plain_session;
use shoplake_serve::reports::{ReportError, ReportParams, run, validate};
use shoplake_sql::SqlCatalog;

use crate::common::*;

fn day(d: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(2020, 4, d)
}

fn only(d: u32) -> ReportParams {
    ReportParams {
        from: day(d),
        to: day(d),
        ..ReportParams::default()
    }
}

#[tokio::test]
async fn every_report_gives_the_fixture_s_figures() {
    let dir = tempfile::tempdir().unwrap();
    let lake = lake_of(dir.path(), &[fixture_file("edge_cases.csv")]).await;
    let all = ReportParams::default();

    let summary = report_json(&lake, "summary", &all).await;
    assert_eq!(
        (summary["from"].as_str(), summary["to"].as_str()),
        (Some("2020-04-01"), Some("2020-04-02"))
    );
    assert_eq!(
        table(&summary, "kpis")[0],
        json!({"events": 13, "revenue": 1279.99, "purchases": 3, "users": 5, "sessions": 7,
               "session_conversion_pct": 42.86, "purchases_per_100_views": 42.86})
    );

    // The funnel: 7 views, 2 carts, 3 purchases; sessions with each: 6, 2, 3; users: 5, 2, 3.
    let funnel = report_json(&lake, "funnel", &all).await;
    let steps: Vec<(String, i64, i64, i64)> = table(&funnel, "period")
        .iter()
        .map(|s| {
            (
                s["step"].as_str().unwrap().to_string(),
                s["events"].as_i64().unwrap(),
                s["sessions"].as_i64().unwrap(),
                s["users"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("view".into(), 7, 6, 5),
            ("cart".into(), 2, 2, 2),
            ("purchase".into(), 3, 3, 3)
        ]
    );
    let cart = &table(&funnel, "period")[1];
    assert_eq!(
        (
            number(cart, "event_conversion_pct"),
            number(cart, "session_conversion_pct"),
            number(cart, "user_conversion_pct"),
            number(cart, "user_drop_off_pct")
        ),
        (28.57, 33.33, 40.0, 60.0)
    );
    let per_day = table(&funnel, "per_day");
    assert_eq!(
        per_day[0],
        json!({"day": "2020-04-01", "views": 5, "carts": 1, "purchases": 1, "removes": 1,
               "revenue": 500.0, "sessions": 5, "sessions_with_view": 4, "sessions_with_cart": 2,
               "sessions_with_purchase": 2, "users": 4, "users_viewed": 4, "users_carted": 1,
               "users_purchased": 1, "cart_rate_pct": 20.0, "purchase_rate_pct": 100.0})
    );
    assert_eq!(per_day[1]["revenue"], json!(779.99));
    assert_eq!(per_day[1]["sessions"], json!(2));

    // A day: users counted in it alone (user 1 and 3 were active on both days).
    let second = report_json(&lake, "summary", &only(2)).await;
    let k = &table(&second, "kpis")[0];
    assert_eq!(
        (
            k["events"].as_i64(),
            k["users"].as_i64(),
            k["sessions"].as_i64()
        ),
        (Some(5), Some(3), Some(2))
    );

    // A category: the events of products 100 (electronics.smartphone); users are the store's.
    let electronics = ReportParams {
        category: Some("electronics".into()),
        ..ReportParams::default()
    };
    let k = report_json(&lake, "summary", &electronics).await;
    let kpis = &table(&k, "kpis")[0];
    assert_eq!(
        (
            kpis["events"].as_i64(),
            kpis["revenue"].as_f64(),
            kpis["purchases"].as_i64()
        ),
        (Some(6), Some(980.0), Some(2))
    );
    assert!(k["notes"].to_string().contains("whole store"), "{k}");
    // A prefix matches at a dot only.
    let partial = ReportParams {
        category: Some("electro".into()),
        ..ReportParams::default()
    };
    assert_eq!(
        table(&report_json(&lake, "summary", &partial).await, "kpis")[0]["events"],
        json!(0)
    );

    // Sessions: durations 0, 0, 0, 0, 120, 600, 43020 s; events 1, 1, 1, 1, 2, 3, 4.
    let sessions = report_json(&lake, "sessions", &all).await;
    assert_eq!(
        table(&sessions, "summary")[0],
        json!({"sessions": 7, "users": 5, "sessions_per_user": 1.4, "avg_duration_seconds": 6248.6,
               "median_duration_seconds": 0.0, "avg_events_per_session": 1.857,
               "median_events_per_session": 1.0})
    );
    let second = report_json(&lake, "sessions", &only(2)).await;
    let s = &table(&second, "summary")[0];
    assert_eq!(
        (
            number(s, "median_duration_seconds"),
            number(s, "median_events_per_session")
        ),
        (300.0, 1.5)
    );
    let buckets: Vec<(String, i64)> = table(&sessions, "by_duration")
        .iter()
        .map(|b| {
            (
                b["bucket"].as_str().unwrap().to_string(),
                b["count"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        buckets,
        [
            ("0 s (one event)".into(), 4),
            ("1-59 s".into(), 0),
            ("1-5 min".into(), 1),
            ("5-15 min".into(), 1),
            ("15-60 min".into(), 0),
            ("1 h and more".into(), 1)
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect::<Vec<_>>()
    );

    // Users: 1 and 3 active on both days; buyers 1, 3, 5, none buying on two days.
    let users = report_json(&lake, "users", &all).await;
    assert_eq!(
        table(&users, "summary")[0],
        json!({"users": 5, "active_on_several_days": 2, "recurrent_pct": 40.0, "buyers": 3,
               "returning_buyers": 0, "returning_buyer_pct": 0.0})
    );
    let active: Vec<(i64, i64)> = table(&users, "most_active")
        .iter()
        .map(|u| {
            (
                u["user_id"].as_i64().unwrap(),
                u["events"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(active, [(1, 5), (3, 4), (5, 2), (2, 1), (4, 1)]);

    // Products: 100 and 300 viewed twice; 100 bought twice, 300 once.
    let products = report_json(
        &lake,
        "products",
        &ReportParams {
            min_views: Some(2),
            ..ReportParams::default()
        },
    )
    .await;
    let top: Vec<(i64, i64, f64)> = table(&products, "top_viewed")
        .iter()
        .map(|p| {
            (
                p["product_id"].as_i64().unwrap(),
                p["views"].as_i64().unwrap(),
                number(p, "purchase_rate_pct"),
            )
        })
        .collect();
    assert_eq!(
        top,
        [
            (100, 2, 100.0),
            (300, 2, 50.0),
            (200, 1, 0.0),
            (400, 1, 0.0),
            (500, 1, 0.0)
        ]
    );
    let low: Vec<i64> = table(&products, "high_traffic_low_conversion")
        .iter()
        .map(|p| p["product_id"].as_i64().unwrap())
        .collect();
    assert_eq!(low, [300, 100]);

    // Categories by revenue, then units, then name.
    let categories = report_json(&lake, "categories", &all).await;
    let ranked: Vec<(String, f64, i64)> = table(&categories, "by_category")
        .iter()
        .map(|c| {
            (
                c["category_code"].as_str().unwrap().to_string(),
                number(c, "revenue"),
                c["units"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ranked,
        [
            ("electronics.smartphone".into(), 980.0, 2),
            ("appliances.kitchen.washer".into(), 299.99, 1),
            ("construction.tools.light".into(), 0.0, 0),
            ("furniture.living_room.sofa.corner".into(), 0.0, 0),
            ("unknown".into(), 0.0, 0),
        ]
    );
    let brands = report_json(&lake, "brands", &all).await;
    assert_eq!(table(&brands, "by_brand")[0]["brand"], json!("apple"));

    // Prices, each event its price: the smartphone at 500.00 four times and 480.00 twice.
    let prices = report_json(&lake, "prices", &all).await;
    assert_eq!(
        table(&prices, "by_category")[0],
        json!({"category_code": "electronics.smartphone", "events": 6, "products": 1,
               "average_price": 493.33, "median_price": 500.0, "min_price": 480.0, "max_price": 500.0})
    );

    // Trends: 10 o'clock has two views (one a day), a cart and a purchase.
    let trends = report_json(&lake, "trends", &all).await;
    let ten = table(&trends, "by_hour")
        .iter()
        .find(|h| h["hour_of_day"] == 10)
        .unwrap()
        .clone();
    assert_eq!(
        (
            ten["views"].as_i64(),
            ten["carts"].as_i64(),
            ten["purchases"].as_i64()
        ),
        (Some(2), Some(1), Some(1))
    );
    let weeks = table(&trends, "by_week");
    assert_eq!(weeks.len(), 1);
    assert_eq!(weeks[0]["week_starting"], json!("2020-03-30"));
    assert_eq!(weeks[0]["events"], json!(13));
}

#[tokio::test]
async fn wrong_names_and_ranges_are_refused_and_an_empty_lake_says_so() {
    assert!(matches!(
        validate("nope", &ReportParams::default()),
        Err(ReportError::UnknownReport { .. })
    ));
    let backwards = ReportParams {
        from: day(3),
        to: day(1),
        ..ReportParams::default()
    };
    let err = validate("funnel", &backwards).unwrap_err();
    assert!(
        err.is_usage() && err.to_string().contains("before it starts"),
        "{err}"
    );
    let zero = ReportParams {
        limit: Some(0),
        ..ReportParams::default()
    };
    assert!(validate("products", &zero).unwrap_err().is_usage());

    let dir = tempfile::tempdir().unwrap();
    let lake = shoplake_lake::Lake::open(dir.path().to_str().unwrap()).unwrap();
    let catalog = SqlCatalog::open(&lake).await.unwrap();
    let report = run(&catalog, "funnel", &ReportParams::default())
        .await
        .unwrap();
    assert!(report.tables.is_empty() && report.range.is_none());
    assert!(
        report.notes[0].contains("no events yet"),
        "{:?}",
        report.notes
    );
}

/// One value of a query over the plain session.
async fn scalar(ctx: &shoplake_lake::datafusion::prelude::SessionContext, sql: &str) -> Value {
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    let column = shoplake_lake::arrow::compute::cast(
        batches[0].column(0),
        &shoplake_lake::arrow::datatypes::DataType::Float64,
    )
    .unwrap();
    let column = column
        .as_any()
        .downcast_ref::<shoplake_lake::arrow::array::Float64Array>()
        .unwrap();
    json!(column.value(0))
}

#[tokio::test]
async fn the_reports_agree_with_sql_over_clean_events() {
    let dir = tempfile::tempdir().unwrap();
    let lake = generated_lake(dir.path(), 40_000, 4).await;
    let plain = plain_session(&lake).await;
    for (params, filter) in [
        (ReportParams::default(), "true"),
        (
            ReportParams {
                from: day(2),
                to: day(3),
                ..ReportParams::default()
            },
            "event_date BETWEEN DATE '2020-04-02' AND DATE '2020-04-03'",
        ),
    ] {
        let summary = report_json(&lake, "summary", &params).await;
        let k = &table(&summary, "kpis")[0];
        let expect = |sql: String| {
            let plain = plain.clone();
            async move { scalar(&plain, &sql).await }
        };
        let f = |what: &str| format!("SELECT {what} FROM clean.events WHERE {filter}");
        assert_eq!(json!(number(k, "events")), expect(f("COUNT(*)")).await);
        assert_eq!(
            json!(number(k, "users")),
            expect(f("COUNT(DISTINCT user_id)")).await
        );
        assert_eq!(
            json!(number(k, "revenue")),
            expect(f(
                "SUM(CASE WHEN event_type = 'purchase' THEN price ELSE 0 END)"
            ))
            .await
        );
        // Sessions by the day they start.
        let sessions = format!(
            "SELECT COUNT(*) FROM (SELECT user_session, CAST(MIN(event_time) AS DATE) AS event_date
             FROM clean.events GROUP BY user_session) WHERE {filter}"
        );
        assert_eq!(json!(number(k, "sessions")), expect(sessions).await);

        let funnel = report_json(&lake, "funnel", &params).await;
        for (step, kind) in [(0, "view"), (1, "cart"), (2, "purchase")] {
            let row = &table(&funnel, "period")[step];
            let users = f(&format!(
                "COUNT(DISTINCT CASE WHEN event_type = '{kind}' THEN user_id END)"
            ));
            assert_eq!(json!(number(row, "users")), expect(users).await, "{kind}");
        }

        // The median session duration, worked out here from every session's duration.
        let durations = plain
            .sql(&format!(
                "SELECT seconds FROM (SELECT CAST(MIN(event_time) AS DATE) AS event_date,
                   (CAST(MAX(event_time) AS BIGINT) - CAST(MIN(event_time) AS BIGINT)) / 1000000 AS seconds
                 FROM clean.events GROUP BY user_session) WHERE {filter} ORDER BY seconds"
            ))
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let mut all: Vec<i64> = Vec::new();
        for b in &durations {
            let c = b
                .column(0)
                .as_any()
                .downcast_ref::<shoplake_lake::arrow::array::Int64Array>()
                .unwrap();
            all.extend(c.values().iter());
        }
        let n = all.len();
        let median = (all[(n - 1) / 2] + all[n / 2]) as f64 / 2.0;
        let report = report_json(&lake, "sessions", &params).await;
        assert_eq!(
            number(&table(&report, "summary")[0], "median_duration_seconds"),
            median
        );
    }
    // Categories by revenue, for one top-level category.
    let params = ReportParams {
        category: Some("electronics".into()),
        limit: Some(3),
        ..ReportParams::default()
    };
    let categories = report_json(&lake, "categories", &params).await;
    let expected = plain
        .sql(
            "SELECT category_code, SUM(CASE WHEN event_type = 'purchase' THEN price ELSE 0 END) AS revenue,
                    SUM(CASE WHEN event_type = 'purchase' THEN 1 ELSE 0 END) AS units
             FROM clean.events WHERE category_code LIKE 'electronics.%' OR category_code = 'electronics'
             GROUP BY 1 ORDER BY revenue DESC, units DESC, category_code LIMIT 3",
        )
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let codes = {
        use shoplake_lake::arrow::array::{Array, AsArray};
        let text = shoplake_lake::arrow::compute::cast(
            expected[0].column(0),
            &shoplake_lake::arrow::datatypes::DataType::Utf8,
        )
        .unwrap();
        let text = text.as_string::<i32>();
        (0..text.len())
            .map(|i| text.value(i).to_string())
            .collect::<Vec<_>>()
    };
    let ours: Vec<String> = table(&categories, "by_category")
        .iter()
        .map(|c| c["category_code"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ours, codes);
    assert_eq!(ours.len(), 3);
}

/// Whole months from the month marts, the other days from the day marts: over a lake of
/// three months (the first and last partial), every kind of range gives the figures of SQL
/// over `clean.events`; a month mart built from another version of its day mart is not read.
#[tokio::test]
async fn ranges_over_months_agree_with_sql_over_clean_events() {
    let dir = tempfile::tempdir().unwrap();
    let start = NaiveDate::from_ymd_opt(2020, 3, 20).unwrap();
    // 2020-03-20 to 2020-05-08.
    let lake = generated_lake_from(dir.path(), 30_000, start, 50).await;
    let plain = plain_session(&lake).await;
    assert!(
        scalar(
            &plain,
            "SELECT COUNT(DISTINCT month) FROM model.mart_user_monthly"
        )
        .await
            == json!(3.0)
    );
    let date = |text: &str| Some(text.parse::<NaiveDate>().unwrap());
    let ranges = [
        (None, None),
        (date("2020-03-25"), date("2020-04-30")),
        (date("2020-04-01"), date("2020-04-30")),
        (date("2020-04-10"), date("2020-05-05")),
    ];
    for (from, to) in ranges {
        let params = ReportParams {
            from,
            to,
            limit: Some(5),
            ..ReportParams::default()
        };
        let filter = format!(
            "event_date BETWEEN DATE '{}' AND DATE '{}'",
            from.unwrap_or(start),
            to.unwrap_or(NaiveDate::from_ymd_opt(2020, 5, 8).unwrap())
        );
        let f = |what: &str| format!("SELECT {what} FROM clean.events WHERE {filter}");
        let summary = report_json(&lake, "summary", &params).await;
        let k = &table(&summary, "kpis")[0];
        assert_eq!(
            json!(number(k, "users")),
            scalar(&plain, &f("COUNT(DISTINCT user_id)")).await,
            "{filter}"
        );
        let funnel = report_json(&lake, "funnel", &params).await;
        for (step, kind) in [(0, "view"), (1, "cart"), (2, "purchase")] {
            let users = f(&format!(
                "COUNT(DISTINCT CASE WHEN event_type = '{kind}' THEN user_id END)"
            ));
            let row = &table(&funnel, "period")[step];
            assert_eq!(
                json!(number(row, "users")),
                scalar(&plain, &users).await,
                "{kind} {filter}"
            );
        }
        // Users: active days and buying days per user, counted here from the events.
        let per_user = format!(
            "SELECT user_id, COUNT(DISTINCT event_date) AS days, COUNT(*) AS events,
                    COUNT(DISTINCT CASE WHEN event_type = 'purchase' THEN event_date END) AS buying
             FROM clean.events WHERE {filter} GROUP BY user_id"
        );
        let users = report_json(&lake, "users", &params).await;
        let u = &table(&users, "summary")[0];
        for (column, condition) in [
            ("active_on_several_days", "days >= 2"),
            ("buyers", "buying >= 1"),
            ("returning_buyers", "buying >= 2"),
        ] {
            let sql = format!("SELECT COUNT(*) FROM ({per_user}) WHERE {condition}");
            assert_eq!(
                json!(number(u, column)),
                scalar(&plain, &sql).await,
                "{column} {filter}"
            );
        }
        let top = &table(&users, "most_active")[0];
        let sql = format!("SELECT MAX(events) FROM ({per_user})");
        assert_eq!(json!(number(top, "events")), scalar(&plain, &sql).await);
        // Products and categories add up across the months and days.
        let products = report_json(&lake, "products", &params).await;
        let first = &table(&products, "top_viewed")[0];
        let sql = format!(
            "SELECT MAX(n) FROM (SELECT product_id, COUNT(*) AS n FROM clean.events
             WHERE {filter} AND event_type = 'view' GROUP BY product_id)"
        );
        assert_eq!(json!(number(first, "views")), scalar(&plain, &sql).await);
        let brands = report_json(&lake, "brands", &params).await;
        let sql = f("SUM(CASE WHEN event_type = 'purchase' THEN price ELSE 0 END)");
        let revenue: f64 = {
            let all = ReportParams {
                limit: Some(10_000),
                ..params.clone()
            };
            let brands = report_json(&lake, "brands", &all).await;
            table(&brands, "by_brand")
                .iter()
                .map(|b| number(b, "revenue"))
                .sum()
        };
        assert!(!table(&brands, "by_brand").is_empty());
        let expected = scalar(&plain, &sql).await.as_f64().unwrap();
        assert!(
            (revenue - expected).abs() < 0.005,
            "{revenue} {expected} {filter}"
        );
        // The median price of the busiest category: the middle event's price.
        let prices = report_json(&lake, "prices", &params).await;
        let busiest = &table(&prices, "by_category")[0];
        let code = busiest["category_code"]
            .as_str()
            .unwrap()
            .replace('\'', "''");
        let sql = format!(
            "SELECT median(price) FROM clean.events WHERE {filter} AND category_code = '{code}'"
        );
        let expected = scalar(&plain, &sql).await.as_f64().unwrap();
        assert!(
            (number(busiest, "median_price") - expected).abs() < 0.006,
            "{busiest} {expected}"
        );
    }

    // A month mart that records the day mart's version is read, even when it is wrong...
    let catalog = SqlCatalog::open(&lake).await.unwrap();
    let day_mart = shoplake_lake::tables::mart_user_daily();
    let version = catalog.table(&day_mart).await.unwrap().unwrap().version();
    let month_mart = shoplake_lake::tables::mart_user_monthly();
    let april = |commit| {
        let (lake, month_mart) = (lake.clone(), month_mart.clone());
        async move {
            let ctx = SqlCatalog::open(&lake).await.unwrap();
            // April's rows only, each user's events doubled.
            let rows = ctx
                .sql(
                    "SELECT month, user_id, active_days, purchase_days, events * 2 AS events,
                            views, carts, removes, purchases, revenue
                     FROM model.mart_user_monthly WHERE month = DATE '2020-04-01'",
                )
                .await
                .unwrap();
            shoplake_lake::overwrite::overwrite_table(&lake, &month_mart, rows, commit)
                .await
                .unwrap();
        }
    };
    let params = ReportParams {
        from: date("2020-04-01"),
        to: date("2020-04-30"),
        limit: Some(1),
        ..ReportParams::default()
    };
    let truth = report_json(&lake, "users", &params).await;
    let events = |report: &Value| number(&table(report, "most_active")[0], "events");
    april(shoplake_lake::built_from::commit_properties(
        &day_mart, version,
    ))
    .await;
    let doubled = report_json(&lake, "users", &params).await;
    assert_eq!(events(&doubled), 2.0 * events(&truth));
    // ...and one built from another version is not: the days are read instead.
    april(shoplake_lake::built_from::commit_properties(
        &day_mart,
        version.map(|v| v - 1),
    ))
    .await;
    let again = report_json(&lake, "users", &params).await;
    assert_eq!(again, truth);
}
