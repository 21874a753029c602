//! `summary`: the headline figures (the dashboard's tiles).

use super::{ReportError, Scope, Table, store_wide};

pub(super) async fn build(scope: &Scope<'_>) -> Result<(Vec<Table>, Vec<String>), ReportError> {
    let days = scope.days();
    let events = if scope.filtered() {
        format!(
            "SELECT SUM(views + carts + removes + purchases) AS events, SUM(revenue) AS revenue,
                    SUM(purchases) AS purchases, SUM(views) AS views
             FROM ({})",
            scope.product_source()
        )
    } else {
        format!(
            "SELECT SUM(views + carts + removes + purchases) AS events, SUM(revenue) AS revenue,
                    SUM(purchases) AS purchases, SUM(views) AS views
             FROM model.mart_funnel_daily WHERE {days}"
        )
    };
    let users = scope.distinct_users(None);
    let sql = format!(
        "WITH e AS ({events}),
              s AS (SELECT SUM(sessions) AS sessions, SUM(with_purchase) AS buying
                    FROM model.mart_session_daily WHERE {days} AND measure = 'events')
         SELECT COALESCE(e.events, 0) AS events, COALESCE(e.revenue, 0) AS revenue,
                COALESCE(e.purchases, 0) AS purchases, {users} AS users,
                COALESCE(s.sessions, 0) AS sessions,
                round(100.0 * s.buying / NULLIF(s.sessions, 0), 2) AS session_conversion_pct,
                round(100.0 * e.purchases / NULLIF(e.views, 0), 2) AS purchases_per_100_views
         FROM e, s"
    );
    let tables = vec![scope.table("kpis", "The period in figures", &sql).await?];
    let mut notes = vec![
        "Session conversion is the share of the sessions started in the period that bought."
            .to_string(),
    ];
    notes.extend(store_wide(scope, "Users, sessions and session conversion"));
    Ok((tables, notes))
}
