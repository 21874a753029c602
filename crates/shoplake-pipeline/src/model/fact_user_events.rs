//! `model.fact_user_events`: one row per clean event with calendar attributes and category
//! levels.

use std::sync::Arc;

use shoplake_lake::arrow::array::RecordBatch;
use shoplake_lake::datafusion::datasource::MemTable;
use shoplake_lake::datafusion::prelude::{DataFrame, SessionContext, col};
use shoplake_lake::tables;

use crate::error::Result;

/// The fact rows from clean rows held in a table named `day_clean`.
///
/// `day_of_week` is ISO (Monday = 1 ... Sunday = 7); hours are UTC. `category_l3` holds every
/// level after the second, dotted.
pub const SQL: &str = r#"
SELECT
  event_id,
  event_time,
  event_date,
  CAST(date_part('hour', event_time) AS INT) AS hour_of_day,
  CAST(CASE WHEN date_part('dow', event_time) = 0 THEN 7 ELSE date_part('dow', event_time) END AS INT) AS day_of_week,
  event_type,
  user_id,
  user_session AS session_id,
  product_id,
  category_id,
  category_code,
  split_part(category_code, '.', 1) AS category_l1,
  NULLIF(split_part(category_code, '.', 2), '') AS category_l2,
  NULLIF(regexp_replace(category_code, '^[^.]*\.?[^.]*\.?', ''), '') AS category_l3,
  brand,
  price,
  'unknown' AS device_type,
  'unknown' AS source_channel
FROM day_clean
ORDER BY event_time, event_id
"#;

/// Plans the fact rows of a day from its clean rows, which must be sorted by event_time then
/// event_id (as [`crate::clean::clean_day`] returns them).
pub async fn from_clean(ctx: &SessionContext, clean: Vec<RecordBatch>) -> Result<DataFrame> {
    // Declaring the order lets the planner drop the ORDER BY's sort: the plan is evaluated
    // by every check on the fact and by the write, and would sort the day each time.
    let table = MemTable::try_new(tables::clean_events().arrow_schema(), vec![clean])?
        .with_sort_order(vec![vec![
            col("event_time").sort(true, false),
            col("event_id").sort(true, false),
        ]]);
    // The plan keeps its own reference to the table: the name is only needed to plan.
    ctx.register_table("day_clean", Arc::new(table))?;
    let planned = ctx.sql(SQL).await;
    ctx.deregister_table("day_clean")?;
    Ok(planned?)
}
