//! Columns added to a table's declaration after the table was built: a lake written by an
//! older shoplake gets them (nullable, so its existing rows read them as null) in a Delta
//! `ADD COLUMNS` commit of their own, before anything is written with them. A declared column
//! missing that is not nullable cannot be added this way: the table must be rebuilt.

use std::collections::HashSet;

use delta_kernel::engine::arrow_conversion::TryIntoKernel as _;
use deltalake::DeltaTable;
use deltalake::kernel::StructType;

use crate::error::{LakeError, Result};
use crate::tables::TableDef;

/// `table` with every column `def` declares and it lacks, added at the end.
pub(crate) async fn add_missing_columns(table: DeltaTable, def: &TableDef) -> Result<DeltaTable> {
    let name = def.qualified_name();
    let delta = |e| LakeError::delta(name.clone(), e);
    let have: HashSet<String> = table
        .snapshot()
        .map_err(delta)?
        .schema()
        .fields()
        .map(|f| f.name().to_string())
        .collect();
    let declared: StructType = def.arrow_schema().as_ref().try_into_kernel()?;
    let missing: Vec<_> = declared
        .fields()
        .filter(|f| !have.contains(f.name()))
        .cloned()
        .collect();
    if missing.is_empty() {
        return Ok(table);
    }
    if let Some(required) = missing.iter().find(|f| !f.is_nullable()) {
        return Err(LakeError::Inconsistent(format!(
            "{name} lacks the required column {}: it was built by an older shoplake; \
             remove the table's directory and run again to rebuild it",
            required.name()
        )));
    }
    let added: Vec<&str> = missing.iter().map(|f| f.name().as_str()).collect();
    tracing::info!(
        "{name}: adding the column(s) {} declared since it was built",
        added.join(", ")
    );
    table
        .add_columns()
        .with_fields(missing)
        .await
        .map_err(delta)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Int64Array, RecordBatch};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use crate::lake::Lake;
    use crate::tables::{ColumnDef, TableDef};
    use crate::write::append_table;

    fn column(name: &'static str, nullable: bool) -> ColumnDef {
        ColumnDef {
            name,
            data_type: DataType::Int64,
            nullable,
            description: "test",
            source: "test",
        }
    }

    fn def(columns: Vec<ColumnDef>) -> TableDef {
        TableDef {
            layer: "meta",
            name: "evolving",
            partition_by: None,
            file_per_value_of: None,
            grain: "test",
            description: "test",
            columns,
        }
    }

    #[tokio::test]
    async fn an_older_table_gets_the_declared_nullable_columns_and_keeps_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let old = def(vec![column("a", false)]);
        let batch = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, false)])),
            vec![Arc::new(Int64Array::from(vec![1, 2]))],
        )
        .unwrap();
        let df = lake.session().read_batch(batch).unwrap();
        append_table(&lake, &old, df, Default::default())
            .await
            .unwrap();

        let new = def(vec![column("a", false), column("b", true)]);
        let table = lake.load_or_new(&new).await.unwrap();
        let names: Vec<String> = table
            .snapshot()
            .unwrap()
            .schema()
            .fields()
            .map(|f| f.name().to_string())
            .collect();
        assert_eq!(names, ["a", "b"]);
        // Loading again adds nothing: no new version.
        let version = table.version();
        assert_eq!(lake.load_or_new(&new).await.unwrap().version(), version);
        let ctx = datafusion::prelude::SessionContext::new();
        ctx.register_table("t", table.table_provider().await.unwrap())
            .unwrap();
        let rows = ctx
            .sql("SELECT count(*) FROM t WHERE b IS NULL")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let n = rows[0]
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .value(0);
        assert_eq!(n, 2);

        let required = def(vec![column("a", false), column("c", false)]);
        let err = lake.load_or_new(&required).await.unwrap_err().to_string();
        assert!(err.contains("lacks the required column c"), "{err}");
    }
}
