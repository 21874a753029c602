//! `funnel`: view -> cart -> purchase, by events, sessions and users, per day and for the
//! period, with each step's conversion and drop-off.

use super::{ReportError, Scope, Table, store_wide};

/// `round(100 * a / b, 2)`, null when `b` is 0.
fn pct(a: &str, b: &str) -> String {
    format!("round(100.0 * {a} / NULLIF({b}, 0), 2)")
}

pub(super) async fn build(scope: &Scope<'_>) -> Result<(Vec<Table>, Vec<String>), ReportError> {
    let days = scope.days();
    let mut notes: Vec<String> = Vec::new();
    // Events per day: the store's from the funnel mart, a category's or brand's from the
    // products mart.
    let events = if scope.filtered() {
        format!(
            "SELECT event_date, SUM(views) AS views, SUM(carts) AS carts, SUM(removes) AS removes, \
             SUM(purchases) AS purchases, SUM(revenue) AS revenue \
             FROM model.mart_product_daily WHERE {} GROUP BY event_date",
            scope.product_rows()
        )
    } else {
        format!(
            "SELECT event_date, views, carts, removes, purchases, revenue, users, users_viewed, \
             users_carted, users_purchased FROM model.mart_funnel_daily WHERE {days}"
        )
    };
    let users = |column: &str| {
        if scope.filtered() {
            "CAST(NULL AS BIGINT)".to_string()
        } else {
            format!("e.{column}")
        }
    };
    let per_day = format!(
        "WITH e AS ({events}),
         s AS (SELECT event_date, SUM(sessions) AS sessions, SUM(with_view) AS with_view,
                      SUM(with_cart) AS with_cart, SUM(with_purchase) AS with_purchase
               FROM model.mart_session_daily WHERE {days} AND measure = 'events'
               GROUP BY event_date)
         SELECT CAST(e.event_date AS VARCHAR) AS day, e.views, e.carts, e.purchases, e.removes,
                e.revenue,
                COALESCE(s.sessions, 0) AS sessions,
                COALESCE(s.with_view, 0) AS sessions_with_view,
                COALESCE(s.with_cart, 0) AS sessions_with_cart,
                COALESCE(s.with_purchase, 0) AS sessions_with_purchase,
                {} AS users, {} AS users_viewed, {} AS users_carted, {} AS users_purchased,
                {} AS cart_rate_pct, {} AS purchase_rate_pct
         FROM e LEFT JOIN s ON s.event_date = e.event_date
         ORDER BY e.event_date",
        users("users"),
        users("users_viewed"),
        users("users_carted"),
        users("users_purchased"),
        pct("e.carts", "e.views"),
        pct("e.purchases", "e.carts"),
    );
    // Distinct users over the range at each step.
    let user_steps = if scope.filtered() {
        "SELECT CAST(NULL AS BIGINT) AS v, CAST(NULL AS BIGINT) AS c, CAST(NULL AS BIGINT) AS p"
            .to_string()
    } else {
        format!(
            "SELECT {} AS v, {} AS c, {} AS p",
            scope.distinct_users(Some("views > 0")),
            scope.distinct_users(Some("carts > 0")),
            scope.distinct_users(Some("purchases > 0")),
        )
    };
    let totals = if scope.filtered() {
        format!(
            "SELECT SUM(views) AS views, SUM(carts) AS carts, SUM(purchases) AS purchases \
             FROM ({})",
            scope.product_source()
        )
    } else {
        format!(
            "SELECT SUM(views) AS views, SUM(carts) AS carts, SUM(purchases) AS purchases \
             FROM model.mart_funnel_daily WHERE {days}"
        )
    };
    let period = format!(
        "WITH e AS ({totals}),
         s AS (SELECT SUM(with_view) AS v, SUM(with_cart) AS c, SUM(with_purchase) AS p
               FROM model.mart_session_daily WHERE {days} AND measure = 'events'),
         u AS ({user_steps})
         SELECT step, events, sessions, users, event_conversion_pct, session_conversion_pct,
                user_conversion_pct, 100 - user_conversion_pct AS user_drop_off_pct FROM (
           SELECT 1 AS k, 'view' AS step, e.views AS events, s.v AS sessions, u.v AS users,
                  CAST(NULL AS DOUBLE) AS event_conversion_pct,
                  CAST(NULL AS DOUBLE) AS session_conversion_pct,
                  CAST(NULL AS DOUBLE) AS user_conversion_pct FROM e, s, u
           UNION ALL
           SELECT 2, 'cart', e.carts, s.c, u.c, {}, {}, {} FROM e, s, u
           UNION ALL
           SELECT 3, 'purchase', e.purchases, s.p, u.p, {}, {}, {} FROM e, s, u)
         ORDER BY k",
        pct("e.carts", "e.views"),
        pct("s.c", "s.v"),
        pct("u.c", "u.v"),
        pct("e.purchases", "e.carts"),
        pct("s.p", "s.c"),
        pct("u.p", "u.c"),
    );
    let tables = vec![
        scope
            .table(
                "period",
                "The period: each step, its conversion from the step before and the users lost",
                &period,
            )
            .await?,
        scope.table("per_day", "Per day", &per_day).await?,
    ];
    notes.push(
        "A session is counted on the day it starts; a user is counted once over the period however many days they were active.".into(),
    );
    notes.extend(store_wide(scope, "Sessions"));
    if scope.filtered() {
        notes.push("Users are not counted under a category or brand filter.".into());
    }
    Ok((tables, notes))
}
