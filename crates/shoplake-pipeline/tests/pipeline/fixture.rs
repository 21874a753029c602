//! The hand-made fixture `fixtures/edge_cases.csv`: 28 data lines over two days covering
//! every cleaning rule, exact duplicates, a quoted field, invalid UTF-8, a line without a
//! date, a session crossing midnight and a returning user. Every expected figure below was
//! worked out by hand from the file (see the comments there), not by the code under test.

use crate::common::*;

#[tokio::test]
async fn fixture_lands_cleans_and_models_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let lake = lake_in(dir.path());
    let report = ingest(&lake, &[fixture()]).await;
    assert_eq!(report.rows(), 28);
    assert_eq!(report.malformed(), 3); // L13 wrong field count, L20 invalid UTF-8, L27 no commas (lines count the header as 1)

    let run = run_incremental(&lake).await;
    // The dimensions' scratch Parquet files are gone once they are published.
    assert!(
        !dir.path()
            .join("lake")
            .join(shoplake_lake::lake::SCRATCH_DIR)
            .exists()
    );
    let per_day: Vec<_> = run
        .days
        .iter()
        .map(|d| {
            (
                d.date.to_string(),
                d.rows.raw,
                d.rows.clean,
                d.rows.duplicates,
                d.rows.rejected,
            )
        })
        .collect();
    assert_eq!(
        per_day,
        vec![
            ("2020-04-01".to_string(), 19, 8, 2, 9),
            ("2020-04-02".to_string(), 9, 5, 1, 3),
        ]
    );

    // raw, as delivered: line numbers and the day given to the dateless line.
    assert_eq!(
        rows(
            &lake,
            "SELECT event_date, COUNT(*) FROM raw.events GROUP BY event_date ORDER BY 1"
        )
        .await,
        vec!["2020-04-01|19", "2020-04-02|9"]
    );
    assert_eq!(
        rows(&lake, "SELECT _line, _error, event_date FROM raw.events WHERE _error IS NOT NULL ORDER BY _line").await,
        vec![
            "13|wrong_field_count|2020-04-01",
            "20|invalid_utf8|2020-04-01",
            "27|wrong_field_count|2020-04-02"
        ]
    );

    // rejects: one per failing line, first failing rule.
    assert_eq!(
        rows(
            &lake,
            "SELECT _line, reason FROM clean.rejects ORDER BY _line"
        )
        .await,
        vec![
            "7|non_positive_price",
            "8|null_session",
            "9|unknown_event_type",
            "10|bad_timestamp",
            "11|bad_product_id",
            "12|non_positive_price",
            "13|malformed_row",
            "14|bad_price",
            "20|malformed_row",
            "27|malformed_row",
            "28|bad_user_id",
            "29|bad_category_id",
        ]
    );
    assert_eq!(
        rows(
            &lake,
            "SELECT _raw_line FROM clean.rejects WHERE _line = 27"
        )
        .await,
        vec!["garbage line without commas"]
    );

    // clean: typed, unknowns filled, the quoted field read without its quotes.
    assert_eq!(count(&lake, "SELECT COUNT(*) FROM clean.events").await, 13);
    assert_eq!(
        rows(
            &lake,
            "SELECT brand, category_code, CAST(price AS VARCHAR) FROM clean.events WHERE product_id = 200"
        )
        .await,
        vec!["unknown|unknown|10.50"]
    );
    assert_eq!(
        count(
            &lake,
            "SELECT COUNT(*) FROM clean.events WHERE category_code = 'appliances.kitchen.washer'"
        )
        .await,
        4
    );
    assert_eq!(
        rows(
            &lake,
            "SELECT CAST(SUM(price) AS VARCHAR) FROM clean.events WHERE event_type = 'purchase'"
        )
        .await,
        vec!["1279.99"]
    );

    // fact: calendar attributes and category levels.
    assert_eq!(
        rows(
            &lake,
            "SELECT hour_of_day, day_of_week, category_l1, category_l2, category_l3 FROM model.fact_user_events \
             WHERE event_time = TIMESTAMP '2020-04-01T23:59:30Z'"
        )
        .await,
        vec!["23|3|appliances|kitchen|washer"]
    );
    assert_eq!(
        rows(
            &lake,
            "SELECT category_l3 FROM model.fact_user_events WHERE product_id = 400"
        )
        .await,
        vec!["sofa.corner"]
    );
    assert_eq!(
        rows(&lake, "SELECT category_l1, category_l2, category_l3, device_type, source_channel FROM model.fact_user_events WHERE product_id = 200").await,
        vec!["unknown|NULL|NULL|unknown|unknown"]
    );
    assert_eq!(
        rows(
            &lake,
            "SELECT event_date, event_type, COUNT(*) FROM model.fact_user_events GROUP BY 1, 2 ORDER BY 1, 2"
        )
        .await,
        vec![
            "2020-04-01|cart|1",
            "2020-04-01|purchase|1",
            "2020-04-01|remove_from_cart|1",
            "2020-04-01|view|5",
            "2020-04-02|cart|1",
            "2020-04-02|purchase|2",
            "2020-04-02|view|2",
        ]
    );
    // event ids are unique.
    assert_eq!(
        count(
            &lake,
            "SELECT COUNT(DISTINCT event_id) FROM model.fact_user_events"
        )
        .await,
        13
    );

    // sessions: s3 crosses midnight and is one session of 4 events lasting 11h57m.
    assert_eq!(
        rows(
            &lake,
            "SELECT session_id, user_id, events, views, carts, removes, purchases, duration_seconds, converted, \
             CAST(revenue AS VARCHAR), start_date, distinct_products FROM model.dim_sessions ORDER BY session_id"
        )
        .await,
        vec![
            "s1|1|3|1|1|0|1|120|true|500.00|2020-04-01|1",
            "s1b|1|1|0|0|1|0|0|false|0.00|2020-04-01|1",
            "s2|2|1|1|0|0|0|0|false|0.00|2020-04-01|1",
            "s3|3|4|2|1|0|1|43020|true|299.99|2020-04-01|1",
            "s4|4|1|1|0|0|0|0|false|0.00|2020-04-01|1",
            "s5|5|2|1|0|0|1|600|true|480.00|2020-04-02|1",
            "s6|1|1|1|0|0|0|0|false|0.00|2020-04-02|1",
        ]
    );
    assert_eq!(
        rows(
            &lake,
            "SELECT user_id, sessions, events, views, carts, removes, purchases, CAST(revenue AS VARCHAR), active_days, \
             CAST(first_seen AS VARCHAR), CAST(last_seen AS VARCHAR) FROM model.dim_users ORDER BY user_id"
        )
        .await,
        vec![
            "1|3|5|2|1|1|1|500.00|2|2020-04-01T10:00:00Z|2020-04-02T10:00:00Z",
            "2|1|1|1|0|0|0|0.00|1|2020-04-01T11:00:00Z|2020-04-01T11:00:00Z",
            "3|1|4|2|1|0|1|299.99|2|2020-04-01T12:04:00Z|2020-04-02T00:01:00Z",
            "4|1|1|1|0|0|0|0.00|1|2020-04-01T13:00:00Z|2020-04-01T13:00:00Z",
            "5|1|2|1|0|0|1|480.00|1|2020-04-02T09:00:00Z|2020-04-02T09:10:00Z",
        ]
    );
    assert_eq!(
        rows(
            &lake,
            "SELECT product_id, brand, category_code, CAST(last_price AS VARCHAR), CAST(min_price AS VARCHAR), \
             CAST(max_price AS VARCHAR), events, views, carts, removes, purchases, CAST(revenue AS VARCHAR) \
             FROM model.dim_products ORDER BY product_id"
        )
        .await,
        vec![
            "100|apple|electronics.smartphone|480.00|480.00|500.00|6|2|1|1|2|980.00",
            "200|unknown|unknown|10.50|10.50|10.50|1|1|0|0|0|0.00",
            "300|bosch|appliances.kitchen.washer|299.99|299.99|299.99|4|2|1|0|1|299.99",
            "400|ikea|furniture.living_room.sofa.corner|1200.00|1200.00|1200.00|1|1|0|0|0|0.00",
            "500|samsung|construction.tools.light|150.00|150.00|150.00|1|1|0|0|0|0.00",
        ]
    );
    assert_eq!(
        rows(
            &lake,
            "SELECT category_id, category_l1, category_l2, category_l3, products, events FROM model.dim_categories ORDER BY category_id"
        )
        .await,
        vec![
            "2000000000000000001|electronics|smartphone|NULL|1|6",
            "2000000000000000002|unknown|NULL|NULL|1|1",
            "2000000000000000003|appliances|kitchen|washer|1|4",
            "2000000000000000004|furniture|living_room|sofa.corner|1|1",
            "2000000000000000005|construction|tools|light|1|1",
        ]
    );
    assert_eq!(
        rows(
            &lake,
            "SELECT date, day_name, is_weekend, has_events FROM model.dim_time ORDER BY date"
        )
        .await,
        vec![
            "2020-04-01|Wednesday|false|true",
            "2020-04-02|Thursday|false|true"
        ]
    );
    // The run log adds up.
    assert_eq!(
        rows(
            &lake,
            "SELECT days, raw_rows, clean_rows, duplicates, rejected, fact_rows FROM meta.runs"
        )
        .await,
        vec!["2|28|13|3|12|13"]
    );
}

/// A day's files of clean.events and of the fact, read in the order they hold their rows
/// (files taken in the order of their event type), equal the same rows sorted by SQL's
/// ORDER BY event_type, event_time, event_id: the clustering that lets a query on one event
/// type skip the others. A day has one file per event type (the first one too: it is written
/// the same way, and its commit creates the table).
#[tokio::test]
async fn a_day_is_written_clustered_by_event_type() {
    use shoplake_lake::datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use shoplake_lake::tables;

    let dir = tempfile::tempdir().unwrap();
    let lake = lake_in(dir.path());
    ingest(&lake, &[fixture()]).await;
    run_incremental(&lake).await;
    let catalog = shoplake_sql::SqlCatalog::open(&lake).await.unwrap();
    for def in [tables::clean_events(), tables::fact_user_events()] {
        let name = def.qualified_name();
        let table = catalog.table(&def).await.unwrap().unwrap();
        for (day, types, rows_of_day) in [("2020-04-01", 4, 8), ("2020-04-02", 3, 5)] {
            let files: Vec<String> = table
                .get_file_uris()
                .unwrap()
                .filter(|f| f.contains(&format!("event_date={day}")))
                .collect();
            let mut in_files: Vec<Vec<String>> = files
                .iter()
                .map(|uri| {
                    let path = uri.strip_prefix("file://").unwrap_or(uri);
                    let file = std::fs::File::open(path).unwrap();
                    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                        .unwrap()
                        .build()
                        .unwrap();
                    let columns = ["event_type", "event_time", "event_id"];
                    let batches: Vec<_> = reader
                        .map(|b| {
                            let b = b.unwrap();
                            let picked = columns.map(|c| b.column_by_name(c).unwrap().clone());
                            shoplake_lake::arrow::array::RecordBatch::try_from_iter(
                                columns.into_iter().zip(picked),
                            )
                            .unwrap()
                        })
                        .collect();
                    lines(&batches)
                })
                .collect();
            let file_types: Vec<usize> = in_files
                .iter()
                .map(|rows| {
                    let mut types: Vec<&str> =
                        rows.iter().map(|r| r.split('|').next().unwrap()).collect();
                    types.dedup();
                    types.len()
                })
                .collect();
            assert_eq!(file_types, vec![1; types], "{name} {day}");
            in_files.sort();
            let in_files: Vec<String> = in_files.concat();
            let sorted = rows(
                &lake,
                &format!(
                    "SELECT event_type, event_time, event_id FROM {name} \
                     WHERE event_date = DATE '{day}' ORDER BY event_type, event_time, event_id"
                ),
            )
            .await;
            assert_eq!(in_files.len(), rows_of_day, "{name} {day}");
            assert_eq!(in_files, sorted, "{name} {day}");
            // Not time order alone: the fixture's days have types out of time order.
            let mut by_time = in_files.clone();
            by_time.sort_by(|a, b| a.split('|').nth(1).cmp(&b.split('|').nth(1)));
            assert_ne!(in_files, by_time, "{name} {day}");
        }
    }
}
