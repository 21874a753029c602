//! The lake's `raw.cdc_*` tables against the database they copy, read independently of the
//! code under test: the lake through a plain DataFusion session over the Parquet files the
//! Delta logs list, the database through psql.

use shoplake_lake::Lake;
use shoplake_oltp::testing::TestPostgres;

/// The current state of a `raw.cdc_*` table (each key's latest image, deletes dropped) and
/// the same table queried in PostgreSQL, as sorted lines of `key|col|col...`.
pub async fn compare_with_database(lake: &Lake, pg: &TestPostgres, db: &str) {
    let ctx = shoplake_lake::testing::plain_session(lake).await;
    for (table, key, cols_lake, cols_pg) in [
        (
            "users",
            "user_id",
            "name, email, CAST(CAST(created_at AS BIGINT) AS VARCHAR)",
            "name, email, (extract(epoch from created_at) * 1000000)::bigint::text",
        ),
        ("brands", "brand_id", "brand_name", "brand_name"),
        (
            "categories",
            "category_id",
            "coalesce(category_name, '~'), coalesce(CAST(parent_id AS VARCHAR), '~')",
            "coalesce(category_name, '~'), coalesce(parent_id::text, '~')",
        ),
        (
            "products",
            "product_id",
            "name, coalesce(CAST(brand_id AS VARCHAR), '~'), coalesce(CAST(category_id AS VARCHAR), '~'), CAST(price AS VARCHAR), CAST(stock AS VARCHAR)",
            "name, coalesce(brand_id::text, '~'), coalesce(category_id::text, '~'), price::text, stock::text",
        ),
        (
            "sessions",
            "session_id",
            "CAST(user_id AS VARCHAR), device_type, channel, CAST(CAST(started_at AS BIGINT) AS VARCHAR)",
            "user_id::text, device_type, channel, (extract(epoch from started_at) * 1000000)::bigint::text",
        ),
        (
            "events",
            "event_id",
            "session_id, CAST(product_id AS VARCHAR), event_type, CAST(CAST(event_time AS BIGINT) AS VARCHAR), CAST(price AS VARCHAR)",
            "session_id::text, product_id::text, event_type::text, (extract(epoch from event_time) * 1000000)::bigint::text, price::text",
        ),
    ] {
        let lake_sql = format!(
            "SELECT concat_ws('|', CAST({key} AS VARCHAR), {cols_lake}) AS line FROM (
               SELECT *, row_number() OVER (PARTITION BY {key} ORDER BY _lsn DESC, _seq DESC) AS n
               FROM raw.cdc_{table}) WHERE n = 1 AND _op <> 'delete' ORDER BY line"
        );
        let lines: Vec<String> = match ctx.sql(&lake_sql).await {
            Ok(df) => {
                let batches = df.collect().await.unwrap();
                let mut out = Vec::new();
                for b in &batches {
                    let col = datafusion::arrow::compute::cast(
                        b.column(0),
                        &datafusion::arrow::datatypes::DataType::Utf8,
                    )
                    .unwrap();
                    let col = datafusion::arrow::array::AsArray::as_string::<i32>(&col);
                    for i in 0..b.num_rows() {
                        out.push(col.value(i).to_string());
                    }
                }
                out
            }
            // The table does not exist: nothing landed in it.
            Err(_) => Vec::new(),
        };
        let pg_sql = format!("SELECT concat_ws('|', {key}::text, {cols_pg}) AS line FROM {table}");
        let mut want: Vec<String> = pg
            .psql_on(db, &pg_sql)
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        want.sort();
        let mut got = lines;
        got.sort();
        assert_eq!(got.len(), want.len(), "rows of {table}");
        assert_eq!(got, want, "{table}");
    }
    // No change twice: (LSN, key, seq) unique in every table.
    for (table, key) in [
        ("users", "user_id"),
        ("brands", "brand_id"),
        ("categories", "category_id"),
        ("products", "product_id"),
        ("sessions", "session_id"),
        ("events", "event_id"),
    ] {
        let sql = format!(
            "SELECT count(*) AS n FROM (SELECT _lsn, {key}, _seq, count(*) AS c FROM raw.cdc_{table} GROUP BY _lsn, {key}, _seq) WHERE c > 1"
        );
        if let Ok(df) = ctx.sql(&sql).await {
            let batches = df.collect().await.unwrap();
            let n = datafusion::arrow::array::AsArray::as_primitive::<
                datafusion::arrow::datatypes::Int64Type,
            >(batches[0].column(0))
            .value(0);
            assert_eq!(n, 0, "a change of {table} landed twice");
        }
    }
}
