//! Helpers shared by the pipeline's integration tests.

use std::path::{Path, PathBuf};

use shoplake_lake::arrow::array::RecordBatch;
use shoplake_lake::arrow::util::display::{ArrayFormatter, FormatOptions};
use shoplake_lake::{Lake, NoProgress};
use shoplake_pipeline::{RunOptions, RunReport, run};
use shoplake_sql::SqlCatalog;

pub const HEADER: &str = shoplake_lake::tables::EXPORT_HEADER;

/// The hand-made fixture (see `tests/fixtures/README.md`).
pub fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/edge_cases.csv")
}

pub fn lake_in(dir: &Path) -> Lake {
    Lake::open(dir.join("lake").to_str().unwrap()).unwrap()
}

pub fn write_file(dir: &Path, name: &str, body: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path
}

pub async fn ingest(lake: &Lake, paths: &[PathBuf]) -> shoplake_ingest::IngestReport {
    shoplake_ingest::ingest_paths(lake, paths, &NoProgress)
        .await
        .unwrap()
}

pub async fn run_incremental(lake: &Lake) -> RunReport {
    run(lake, &RunOptions::default(), &NoProgress)
        .await
        .unwrap()
}

/// Rows of a query as text lines (`|`-separated), in the query's order.
pub async fn rows(lake: &Lake, sql: &str) -> Vec<String> {
    let catalog = SqlCatalog::open(lake).await.unwrap();
    let batches = catalog.sql(sql).await.unwrap().collect().await.unwrap();
    lines(&batches)
}

pub fn lines(batches: &[RecordBatch]) -> Vec<String> {
    let options = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for b in batches {
        let formatters: Vec<_> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap())
            .collect();
        for row in 0..b.num_rows() {
            out.push(
                formatters
                    .iter()
                    .map(|f| f.value(row).to_string())
                    .collect::<Vec<_>>()
                    .join("|"),
            );
        }
    }
    out
}

/// One number from a query.
pub async fn count(lake: &Lake, sql: &str) -> i64 {
    rows(lake, sql).await[0].parse().unwrap()
}

/// The whole content of a table, sorted, optionally without some columns.
pub async fn content(lake: &Lake, table: &str, except: &[&str]) -> Vec<String> {
    let def = shoplake_lake::tables::by_name(table).unwrap();
    let cols: Vec<&str> = def
        .column_names()
        .into_iter()
        .filter(|c| !except.contains(c))
        .collect();
    let list = cols.join(", ");
    let mut out = rows(lake, &format!("SELECT {list} FROM {table}")).await;
    out.sort();
    out
}

/// Every clean and model table, sorted: what must be equal between two lakes built from the
/// same raw rows.
pub async fn downstream(lake: &Lake) -> Vec<(String, Vec<String>)> {
    let mut all = Vec::new();
    for t in [
        "clean.events",
        "model.fact_user_events",
        "model.dim_users",
        "model.dim_products",
        "model.dim_categories",
        "model.dim_sessions",
        "model.dim_time",
        "model.mart_funnel_daily",
        "model.mart_hourly",
        "model.mart_product_daily",
        "model.mart_user_daily",
        "model.mart_session_daily",
        "model.mart_user_monthly",
        "model.mart_product_monthly",
    ] {
        all.push((t.to_string(), content(lake, t, &[]).await));
    }
    // Rejects keep their lineage except the ingest instant.
    all.push((
        "clean.rejects".to_string(),
        content(
            lake,
            "clean.rejects",
            &["_ingested_at", "_batch_id", "_source"],
        )
        .await,
    ));
    all
}

/// Rows of a query over `shoplake_lake::testing::plain_session`, as text lines like [`rows`].
pub async fn plain_rows(lake: &Lake, sql: &str) -> Vec<String> {
    let ctx = shoplake_lake::testing::plain_session(lake).await;
    lines(&ctx.sql(sql).await.unwrap().collect().await.unwrap())
}
