//! Golden SQL: the `.slt` files of `tests/slt/` (a query and its expected rows side by side,
//! sqllogictest's format) run against the lake built from the hand-made fixture, through
//! shoplake's SQL catalog. The expected rows were worked out by hand from the fixture.

use std::path::PathBuf;

use shoplake_lake::arrow::datatypes::DataType;
use shoplake_lake::arrow::util::display::{ArrayFormatter, FormatOptions};
use shoplake_lake::datafusion::error::DataFusionError;
use shoplake_sql::{SqlCatalog, SqlError};
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType, Runner, strict_column_validator};

use crate::common::*;

/// A connection of the runner: a catalog over the fixture lake.
struct Lakeside {
    catalog: SqlCatalog,
}

fn column_type(data_type: &DataType) -> DefaultColumnType {
    if data_type.is_integer() {
        DefaultColumnType::Integer
    } else if data_type.is_floating() || matches!(data_type, DataType::Decimal128(..)) {
        DefaultColumnType::FloatingPoint
    } else {
        DefaultColumnType::Text
    }
}

#[async_trait::async_trait]
impl AsyncDB for Lakeside {
    type Error = SqlError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SqlError> {
        let frame = self.catalog.sql(sql).await?;
        let types = frame
            .schema()
            .fields()
            .iter()
            .map(|f| column_type(f.data_type()))
            .collect();
        let batches = frame.collect().await?;
        let options = FormatOptions::default().with_null("NULL");
        let mut rows = Vec::new();
        for batch in &batches {
            let formatters = batch
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
                .collect::<Result<Vec<_>, _>>()
                .map_err(DataFusionError::from)?;
            for row in 0..batch.num_rows() {
                rows.push(
                    formatters
                        .iter()
                        .map(|f| match f.value(row).to_string() {
                            empty if empty.is_empty() => "(empty)".to_string(),
                            text => text,
                        })
                        .collect(),
                );
            }
        }
        Ok(DBOutput::Rows { types, rows })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "shoplake"
    }
}

#[tokio::test]
async fn the_golden_queries_give_their_rows() {
    let dir = tempfile::tempdir().unwrap();
    let lake = lake_in(dir.path());
    ingest(&lake, &[fixture()]).await;
    run_incremental(&lake).await;

    let slt = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&slt)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .slt files in {}", slt.display());
    for file in files {
        let lake = lake.clone();
        let mut runner = Runner::new(move || {
            let lake = lake.clone();
            async move {
                Ok(Lakeside {
                    catalog: SqlCatalog::open(&lake).await?,
                })
            }
        });
        runner.with_column_validator(strict_column_validator);
        if let Err(e) = runner.run_file_async(&file).await {
            panic!("{}: {}", file.display(), e.display(true));
        }
    }
}
