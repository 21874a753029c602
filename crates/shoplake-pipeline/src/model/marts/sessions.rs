//! `model.mart_session_daily`: the sessions of `model.dim_sessions` counted on the day they
//! start, once by duration and once by events, from the dimension as it is about to be
//! published.

use shoplake_lake::datafusion::prelude::{DataFrame, SessionContext};

use crate::error::Result;

/// The mart, as a query over `model.dim_sessions` as `ctx` resolves it (the run's candidate
/// rows, registered under that name by the gates).
pub async fn session_mart(ctx: &SessionContext) -> Result<DataFrame> {
    let by = |measure: &str, value: &str| {
        format!(
            "SELECT start_date AS event_date, '{measure}' AS measure, {value} AS value,
                    COUNT(*) AS sessions,
                    SUM(CASE WHEN views > 0 THEN 1 ELSE 0 END) AS with_view,
                    SUM(CASE WHEN carts > 0 THEN 1 ELSE 0 END) AS with_cart,
                    SUM(CASE WHEN purchases > 0 THEN 1 ELSE 0 END) AS with_purchase
             FROM model.dim_sessions GROUP BY start_date, {value}"
        )
    };
    let sql = format!(
        "SELECT * FROM ({} UNION ALL {}) ORDER BY event_date, measure, value",
        by("duration_seconds", "duration_seconds"),
        by("events", "events")
    );
    Ok(ctx.sql(&sql).await?)
}
