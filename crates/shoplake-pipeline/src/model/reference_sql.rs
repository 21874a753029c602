//! The aggregate dimensions defined in SQL over `model.fact_user_events`: what the folds in
//! [`super::products`] and [`super::dimensions`] compute, written the plain way. The
//! tests compare the folds with these; the run does not execute them (as SQL, on a month of
//! events, they took more than twice as long as the folds; see
//! bench/results/2026-11-28-66600000-at-e3ae728.md).

/// Events per type and purchase revenue, the count columns every aggregate dimension ends with.
pub const COUNTS: &str = r#"
  COUNT(*) AS events,
  SUM(CASE WHEN event_type = 'view' THEN 1 ELSE 0 END) AS views,
  SUM(CASE WHEN event_type = 'cart' THEN 1 ELSE 0 END) AS carts,
  SUM(CASE WHEN event_type = 'remove_from_cart' THEN 1 ELSE 0 END) AS removes,
  SUM(CASE WHEN event_type = 'purchase' THEN 1 ELSE 0 END) AS purchases,
  CAST(COALESCE(SUM(CASE WHEN event_type = 'purchase' THEN price END), 0) AS DECIMAL(18, 2)) AS revenue"#;

/// The same counts summed again over rows that already carry them (a second grouping stage).
const RESUM: &str = "SUM(events) AS events, SUM(views) AS views, SUM(carts) AS carts, \
  SUM(removes) AS removes, SUM(purchases) AS purchases, \
  CAST(SUM(revenue) AS DECIMAL(18, 2)) AS revenue";

/// `model.dim_users`.
///
/// Distinct sessions and days are counted by grouping first (per user and session, per user
/// and day) rather than with `COUNT(DISTINCT ...)`, whose per-group hash sets are neither
/// bounded nor spillable: on 10 M events the direct form already held several times the
/// default memory limit.
pub fn dim_users() -> String {
    format!(
        "WITH per_session AS (
  SELECT user_id, session_id,
    MIN(event_time) AS first_seen,
    MAX(event_time) AS last_seen,{COUNTS}
  FROM model.fact_user_events
  GROUP BY user_id, session_id),
per_day AS (
  SELECT user_id, COUNT(*) AS active_days
  FROM (SELECT user_id, event_date FROM model.fact_user_events GROUP BY user_id, event_date)
  GROUP BY user_id),
per_user AS (
  SELECT user_id,
    MIN(first_seen) AS first_seen,
    MAX(last_seen) AS last_seen,
    COUNT(*) AS sessions,
    {RESUM}
  FROM per_session
  GROUP BY user_id)
SELECT u.user_id, u.first_seen, u.last_seen, d.active_days, u.sessions,
  u.events, u.views, u.carts, u.removes, u.purchases, u.revenue
FROM per_user u JOIN per_day d ON u.user_id = d.user_id
ORDER BY u.user_id"
    )
}

/// `model.dim_sessions`.
///
/// One grouping by session: the session's user is the user of its first event (by time,
/// then event id). Sessions hold a handful of products, so the per-session distinct set is
/// small; grouping per session and product first, as this query once did, took three times
/// as long (its second stage ordered 7 M partial rows on 10 M events).
pub fn dim_sessions() -> String {
    format!(
        "SELECT session_id,
  first_value(user_id ORDER BY event_time, event_id) AS user_id,
  MIN(event_time) AS session_start,
  MAX(event_time) AS session_end,
  (CAST(MAX(event_time) AS BIGINT) - CAST(MIN(event_time) AS BIGINT)) / 1000000 AS duration_seconds,
  CAST(MIN(event_time) AS DATE) AS start_date,
  COUNT(DISTINCT product_id) AS distinct_products,
  SUM(CASE WHEN event_type = 'purchase' THEN 1 ELSE 0 END) > 0 AS converted,{COUNTS}
FROM model.fact_user_events
GROUP BY session_id
ORDER BY session_id"
    )
}

/// `model.dim_products`: the attributes of each product's latest event (its category: of its
/// latest event whose category is known).
pub fn dim_products() -> String {
    format!(
        "SELECT product_id,
  last_value(category_id ORDER BY category_id <> -1, event_time, event_id) AS category_id,
  last_value(category_code ORDER BY category_id <> -1, event_time, event_id) AS category_code,
  last_value(brand ORDER BY event_time, event_id) AS brand,
  last_value(price ORDER BY event_time, event_id) AS last_price,
  MIN(price) AS min_price, MAX(price) AS max_price,
  MIN(event_time) AS first_seen, MAX(event_time) AS last_seen,{COUNTS}
FROM model.fact_user_events GROUP BY product_id ORDER BY product_id"
    )
}

/// `model.dim_categories`; the unknown member (-1) is named `unknown`, whatever the codes of
/// its rows.
pub fn dim_categories() -> String {
    format!(
        "SELECT category_id,
  CASE WHEN category_id = -1 THEN 'unknown'
       ELSE last_value(category_code ORDER BY event_time, event_id) END AS category_code,
  CASE WHEN category_id = -1 THEN 'unknown'
       ELSE last_value(category_l1 ORDER BY event_time, event_id) END AS category_l1,
  CASE WHEN category_id = -1 THEN NULL
       ELSE last_value(category_l2 ORDER BY event_time, event_id) END AS category_l2,
  CASE WHEN category_id = -1 THEN NULL
       ELSE last_value(category_l3 ORDER BY event_time, event_id) END AS category_l3,
  COUNT(DISTINCT product_id) AS products,{COUNTS}
FROM model.fact_user_events GROUP BY category_id ORDER BY category_id"
    )
}
