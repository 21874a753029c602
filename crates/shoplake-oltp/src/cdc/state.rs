//! What the lake holds of a slot: up to which LSN every change is landed (the application
//! transaction of `meta.cdc_progress`), and up to which LSN each `raw.cdc_*` table is (the
//! same application transaction on each table, which a landing interrupted between two
//! tables' commits leaves ahead of the progress).

use std::collections::HashMap;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use shoplake_lake::cdc_tables::{OLTP_TABLES, cdc_table_of, meta_cdc_progress};
use shoplake_lake::{Lake, LakeError, TableDef};

use crate::error::Result;

/// The application id of a slot's commits.
pub fn app_id(slot: &str) -> String {
    format!("shoplake-cdc-{slot}")
}

/// A slot's position in the lake.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LakeState {
    /// Every change up to this commit LSN is landed; None before the snapshot completed.
    pub lsn: Option<u64>,
    /// Per store table, the highest commit LSN its `raw.cdc_*` table holds.
    pub tables: HashMap<&'static str, u64>,
    /// The slot of the latest landing in the lake, whichever it is.
    pub latest_slot: Option<String>,
}

/// The application transaction version of `app` on `def`'s table.
async fn txn_version(lake: &Lake, def: &TableDef, app: &str) -> Result<Option<u64>> {
    let Some(table) = lake.load(def).await? else {
        return Ok(None);
    };
    let v = table
        .snapshot()
        .map_err(|e| LakeError::delta(def.qualified_name(), e))?
        .transaction_version(table.log_store().as_ref(), app.to_string())
        .await
        .map_err(|e| LakeError::delta(def.qualified_name(), e))?;
    // A negative version is the "no position" of a cleared slot.
    Ok(v.filter(|v| *v >= 0).map(|v| v as u64))
}

impl LakeState {
    /// Reads the slot's state.
    pub async fn read(lake: &Lake, slot: &str) -> Result<LakeState> {
        let app = app_id(slot);
        let progress = meta_cdc_progress();
        let lsn = txn_version(lake, &progress, &app).await?;
        let mut tables = HashMap::new();
        for t in OLTP_TABLES {
            let def = cdc_table_of(t).expect("declared");
            if let Some(v) = txn_version(lake, &def, &app).await? {
                tables.insert(t, v);
            }
        }
        Ok(LakeState {
            lsn,
            tables,
            latest_slot: latest_slot(lake).await?,
        })
    }
}

/// The slot of the most recent row of `meta.cdc_progress`.
async fn latest_slot(lake: &Lake) -> Result<Option<String>> {
    let Some(progress) = progress_frame(lake).await? else {
        return Ok(None);
    };
    let batches = Ok::<_, datafusion::error::DataFusionError>(progress)
        .and_then(|df| {
            df.sort(vec![
                datafusion::prelude::col("landed_at").sort(false, false),
            ])?
            .limit(0, Some(1))?
            .select_columns(&["slot"])
        })
        .map_err(LakeError::from)?
        .collect()
        .await
        .map_err(LakeError::from)?;
    for b in &batches {
        if b.num_rows() > 0 {
            let slots = cast(b.column(0), &DataType::Utf8).map_err(LakeError::from)?;
            return Ok(Some(slots.as_string::<i32>().value(0).to_string()));
        }
    }
    Ok(None)
}

/// Rows of `meta.cdc_progress` for `slot`: (lsn, changes), newest first.
pub async fn progress_rows(lake: &Lake, slot: &str) -> Result<Vec<(u64, i64)>> {
    let Some(progress) = progress_frame(lake).await? else {
        return Ok(Vec::new());
    };
    let batches = Ok::<_, datafusion::error::DataFusionError>(progress)
        .and_then(|df| {
            df.filter(datafusion::prelude::col("slot").eq(datafusion::prelude::lit(slot)))?
                .sort(vec![datafusion::prelude::col("lsn").sort(false, false)])?
                .select_columns(&["lsn", "changes"])
        })
        .map_err(LakeError::from)?
        .collect()
        .await
        .map_err(LakeError::from)?;
    let mut out = Vec::new();
    for b in &batches {
        let lsn = b.column(0).as_primitive::<Int64Type>();
        let changes = b.column(1).as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            out.push((lsn.value(i) as u64, changes.value(i)));
        }
    }
    Ok(out)
}

/// When the slot's latest landing committed (microseconds since the epoch).
pub async fn last_landed_micros(lake: &Lake, slot: &str) -> Result<Option<i64>> {
    let Some(progress) = progress_frame(lake).await? else {
        return Ok(None);
    };
    let batches = Ok::<_, datafusion::error::DataFusionError>(progress)
        .and_then(|df| {
            df.filter(datafusion::prelude::col("slot").eq(datafusion::prelude::lit(slot)))?
                .aggregate(
                    vec![],
                    vec![datafusion::functions_aggregate::expr_fn::max(
                        datafusion::prelude::col("landed_at"),
                    )],
                )
        })
        .map_err(LakeError::from)?
        .collect()
        .await
        .map_err(LakeError::from)?;
    for b in &batches {
        if b.num_rows() > 0 {
            let t = cast(
                b.column(0),
                &DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Microsecond, None),
            )
            .map_err(LakeError::from)?;
            let t = t.as_primitive::<datafusion::arrow::datatypes::TimestampMicrosecondType>();
            if t.is_valid(0) {
                return Ok(Some(t.value(0)));
            }
        }
    }
    Ok(None)
}

/// `meta.cdc_progress` as a DataFrame, or None before the first landing.
async fn progress_frame(lake: &Lake) -> Result<Option<datafusion::prelude::DataFrame>> {
    let def = meta_cdc_progress();
    let Some(table) = lake.load(&def).await? else {
        return Ok(None);
    };
    let ctx = lake.session();
    table
        .update_datafusion_session(&ctx.state())
        .map_err(|e| LakeError::delta(def.qualified_name(), e))?;
    let provider = table.table_provider().await.map_err(LakeError::from)?;
    Ok(Some(ctx.read_table(provider).map_err(LakeError::from)?))
}
