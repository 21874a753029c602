//! `prices`: average, median and range of the prices the events carried, by category and by
//! brand. Each event counts its price once (a product viewed ten times at 10.00 weighs ten),
//! and the median is exact: the middle price of all the events of the group.

use super::{ReportError, Scope, Table};

fn by(scope: &Scope<'_>, column: &str) -> String {
    format!(
        "WITH w AS (SELECT {column} AS g, price, SUM(views + carts + removes + purchases) AS n
                    FROM ({}) GROUP BY {column}, price),
              c AS (SELECT g, price, n,
                           SUM(n) OVER (PARTITION BY g ORDER BY price ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cum,
                           SUM(n) OVER (PARTITION BY g) AS total
                    FROM w),
              m AS (SELECT g,
                           (MIN(price) FILTER (WHERE cum >= (total + 1) / 2)
                            + MIN(price) FILTER (WHERE cum >= total / 2 + 1)) / 2 AS median_price
                    FROM c GROUP BY g),
              a AS (SELECT {column} AS g, SUM(views + carts + removes + purchases) AS events,
                           COUNT(DISTINCT product_id) AS products,
                           SUM(price * (views + carts + removes + purchases))
                             / SUM(views + carts + removes + purchases) AS average_price,
                           MIN(price) AS min_price, MAX(price) AS max_price
                    FROM ({}) GROUP BY {column})
         SELECT a.g AS {column}, a.events, a.products, round(a.average_price, 2) AS average_price,
                round(m.median_price, 2) AS median_price, a.min_price, a.max_price
         FROM a JOIN m ON m.g = a.g
         ORDER BY a.events DESC, a.g LIMIT {}",
        scope.product_source(),
        scope.product_source(),
        scope.limit
    )
}

pub(super) async fn build(scope: &Scope<'_>) -> Result<(Vec<Table>, Vec<String>), ReportError> {
    let tables = vec![
        scope
            .table(
                "by_category",
                "Prices by category",
                &by(scope, "category_code"),
            )
            .await?,
        scope
            .table("by_brand", "Prices by brand", &by(scope, "brand"))
            .await?,
    ];
    let notes = vec![
        "Prices are weighted by events: each event counts the price it carried. The median is the middle event's price (the mean of the two middle ones for an even count).".to_string(),
        "Groups are ordered by events, most first.".to_string(),
    ];
    Ok((tables, notes))
}
