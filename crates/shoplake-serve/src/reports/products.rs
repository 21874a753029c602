//! `products`: the most viewed products with their cart and purchase conversion, and the
//! "high traffic, low conversion" list: products with at least the stated views, by their
//! purchase conversion, lowest first.

use super::{ReportError, Scope, Table};

pub(super) async fn build(scope: &Scope<'_>) -> Result<(Vec<Table>, Vec<String>), ReportError> {
    let per_product = format!(
        "SELECT m.product_id, SUM(m.views) AS views, SUM(m.carts) AS carts,
                SUM(m.purchases) AS purchases, SUM(m.revenue) AS revenue
         FROM ({}) m GROUP BY m.product_id",
        scope.product_source()
    );
    let columns = "p.product_id, d.category_code, d.brand, p.views, p.carts, p.purchases, \
                   p.revenue, round(100.0 * p.carts / NULLIF(p.views, 0), 2) AS cart_rate_pct, \
                   round(100.0 * p.purchases / NULLIF(p.views, 0), 2) AS purchase_rate_pct";
    let top = format!(
        "WITH p AS ({per_product})
         SELECT {columns} FROM p LEFT JOIN model.dim_products d ON d.product_id = p.product_id
         ORDER BY p.views DESC, p.product_id LIMIT {}",
        scope.limit
    );
    let low = format!(
        "WITH p AS ({per_product})
         SELECT {columns} FROM p LEFT JOIN model.dim_products d ON d.product_id = p.product_id
         WHERE p.views >= {}
         ORDER BY p.purchases * 1.0 / p.views, p.views DESC, p.product_id LIMIT {}",
        scope.min_views, scope.limit
    );
    let tables = vec![
        scope
            .table("top_viewed", "Most viewed products", &top)
            .await?,
        scope
            .table(
                "high_traffic_low_conversion",
                "High traffic, low conversion: products with the most views for the fewest purchases",
                &low,
            )
            .await?,
    ];
    let notes = vec![
        "Conversion is per event: carts and purchases per 100 views of the product in the range."
            .to_string(),
        format!(
            "The high traffic, low conversion list takes products with at least {} views (min_views), lowest purchase conversion first.",
            scope.min_views
        ),
        "A product's category and brand are its latest (model.dim_products).".to_string(),
    ];
    Ok((tables, notes))
}
