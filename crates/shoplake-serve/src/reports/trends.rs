//! `trends`: events by hour of day, by day and by ISO week, per event type.

use super::{ReportError, Scope, Table};

const BY_TYPE: &str = "SUM(CASE WHEN event_type = 'view' THEN events ELSE 0 END) AS views,
    SUM(CASE WHEN event_type = 'cart' THEN events ELSE 0 END) AS carts,
    SUM(CASE WHEN event_type = 'remove_from_cart' THEN events ELSE 0 END) AS removes,
    SUM(CASE WHEN event_type = 'purchase' THEN events ELSE 0 END) AS purchases,
    SUM(events) AS events, SUM(revenue) AS revenue";

pub(super) async fn build(scope: &Scope<'_>) -> Result<(Vec<Table>, Vec<String>), ReportError> {
    let days = scope.days();
    let by_hour = format!(
        "SELECT hour_of_day, {BY_TYPE} FROM model.mart_hourly WHERE {days}
         GROUP BY hour_of_day ORDER BY hour_of_day"
    );
    // Days and weeks under a filter come from the products mart (it has no hours).
    let daily = if scope.filtered() {
        format!(
            "SELECT event_date, views, carts, removes, purchases,
                    views + carts + removes + purchases AS events, revenue
             FROM (SELECT event_date, SUM(views) AS views, SUM(carts) AS carts,
                          SUM(removes) AS removes, SUM(purchases) AS purchases,
                          SUM(revenue) AS revenue
                   FROM model.mart_product_daily WHERE {} GROUP BY event_date)",
            scope.product_rows()
        )
    } else {
        format!(
            "SELECT event_date, {BY_TYPE} FROM model.mart_hourly WHERE {days} GROUP BY event_date"
        )
    };
    let by_day = format!(
        "SELECT CAST(event_date AS VARCHAR) AS day, CAST(date_part('dow', event_date) AS INT) AS weekday_sun0,
                views, carts, removes, purchases, events, revenue
         FROM ({daily}) ORDER BY event_date"
    );
    let by_week = format!(
        "SELECT CAST(CAST(date_trunc('week', event_date) AS DATE) AS VARCHAR) AS week_starting,
                CAST(date_part('week', event_date) AS INT) AS iso_week, COUNT(*) AS days,
                SUM(views) AS views, SUM(carts) AS carts, SUM(removes) AS removes,
                SUM(purchases) AS purchases, SUM(events) AS events, SUM(revenue) AS revenue
         FROM ({daily}) GROUP BY 1, 2 ORDER BY 1"
    );
    let tables = vec![
        scope
            .table("by_hour", "Events by hour of day (UTC)", &by_hour)
            .await?,
        scope.table("by_day", "Events by day", &by_day).await?,
        scope
            .table(
                "by_week",
                "Events by ISO week (weeks start on Monday)",
                &by_week,
            )
            .await?,
    ];
    let mut notes =
        vec!["Hours are UTC; a week's row counts the days of the range it holds.".to_string()];
    if scope.filtered() {
        notes.push("The hours are the whole store's: the category and brand filters apply to the days and weeks.".into());
    }
    Ok((tables, notes))
}
