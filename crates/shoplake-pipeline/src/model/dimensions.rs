//! The dimensions that are aggregates of the fact table: users, products, categories,
//! sessions. Each is one SQL statement over `model.fact_user_events`, ordered by its key so
//! that a rebuild from the same facts writes the same rows in the same order.
//!
//! "Latest" attributes (a product's brand, price, category) are those of its last event by
//! (event_time, event_id), so ties are broken the same way on every run.

use shoplake_lake::tables::{self, TableDef};

const COUNTS: &str = r#"
  COUNT(*) AS events,
  SUM(CASE WHEN event_type = 'view' THEN 1 ELSE 0 END) AS views,
  SUM(CASE WHEN event_type = 'cart' THEN 1 ELSE 0 END) AS carts,
  SUM(CASE WHEN event_type = 'remove_from_cart' THEN 1 ELSE 0 END) AS removes,
  SUM(CASE WHEN event_type = 'purchase' THEN 1 ELSE 0 END) AS purchases,
  CAST(COALESCE(SUM(CASE WHEN event_type = 'purchase' THEN price END), 0) AS DECIMAL(18, 2)) AS revenue"#;

/// A dimension and the query that rebuilds it.
pub struct Dimension {
    /// The table.
    pub def: TableDef,
    /// Its SQL over `model.fact_user_events`.
    pub sql: String,
}

/// `model.dim_users`.
pub fn dim_users() -> Dimension {
    Dimension {
        def: tables::dim_users(),
        sql: format!(
            "SELECT user_id,
  MIN(event_time) AS first_seen,
  MAX(event_time) AS last_seen,
  COUNT(DISTINCT event_date) AS active_days,
  COUNT(DISTINCT session_id) AS sessions,{COUNTS}
FROM model.fact_user_events
GROUP BY user_id
ORDER BY user_id"
        ),
    }
}

/// `model.dim_products`.
pub fn dim_products() -> Dimension {
    Dimension {
        def: tables::dim_products(),
        sql: format!(
            "SELECT product_id,
  last_value(category_id ORDER BY event_time, event_id) AS category_id,
  last_value(category_code ORDER BY event_time, event_id) AS category_code,
  last_value(brand ORDER BY event_time, event_id) AS brand,
  last_value(price ORDER BY event_time, event_id) AS last_price,
  MIN(price) AS min_price,
  MAX(price) AS max_price,
  MIN(event_time) AS first_seen,
  MAX(event_time) AS last_seen,{COUNTS}
FROM model.fact_user_events
GROUP BY product_id
ORDER BY product_id"
        ),
    }
}

/// `model.dim_categories`.
pub fn dim_categories() -> Dimension {
    Dimension {
        def: tables::dim_categories(),
        sql: format!(
            "SELECT category_id,
  last_value(category_code ORDER BY event_time, event_id) AS category_code,
  last_value(category_l1 ORDER BY event_time, event_id) AS category_l1,
  last_value(category_l2 ORDER BY event_time, event_id) AS category_l2,
  last_value(category_l3 ORDER BY event_time, event_id) AS category_l3,
  COUNT(DISTINCT product_id) AS products,{COUNTS}
FROM model.fact_user_events
GROUP BY category_id
ORDER BY category_id"
        ),
    }
}

/// `model.dim_sessions`.
pub fn dim_sessions() -> Dimension {
    Dimension {
        def: tables::dim_sessions(),
        sql: format!(
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
        ),
    }
}

/// Every aggregate dimension, in build order.
pub fn all() -> Vec<Dimension> {
    vec![
        dim_users(),
        dim_products(),
        dim_categories(),
        dim_sessions(),
    ]
}
