//! `categories` and `brands`: ranked by revenue, then units purchased, with views, carts and
//! conversion.

use super::{ReportError, Scope, Table};

/// What the ranking groups by.
pub(super) enum By {
    Category,
    Brand,
}

pub(super) async fn build(
    scope: &Scope<'_>,
    by: By,
) -> Result<(Vec<Table>, Vec<String>), ReportError> {
    let (column, name, title) = match by {
        By::Category => (
            "category_code",
            "by_category",
            "Categories by revenue and units purchased",
        ),
        By::Brand => ("brand", "by_brand", "Brands by revenue and units purchased"),
    };
    let sql = format!(
        "SELECT {column}, SUM(revenue) AS revenue, SUM(purchases) AS units, SUM(views) AS views,
                SUM(carts) AS carts, COUNT(DISTINCT product_id) AS products,
                round(100.0 * SUM(purchases) / NULLIF(SUM(views), 0), 2) AS purchase_rate_pct,
                round(100.0 * SUM(carts) / NULLIF(SUM(views), 0), 2) AS cart_rate_pct
         FROM ({})
         GROUP BY {column} ORDER BY revenue DESC, units DESC, {column} LIMIT {}",
        scope.product_source(),
        scope.limit
    );
    let mut tables = vec![scope.table(name, title, &sql).await?];
    let mut notes = vec![
        "Revenue is the sum of the purchases' prices; units are purchase events; conversion is per 100 views.".to_string(),
    ];
    if let By::Category = by {
        let levels = format!(
            "SELECT category_l1, SUM(revenue) AS revenue, SUM(purchases) AS units,
                    SUM(views) AS views,
                    round(100.0 * SUM(purchases) / NULLIF(SUM(views), 0), 2) AS purchase_rate_pct
             FROM ({})
             GROUP BY category_l1 ORDER BY revenue DESC, units DESC, category_l1 LIMIT {}",
            scope.product_source(),
            scope.limit
        );
        tables.push(
            scope
                .table("by_top_level", "Top-level categories", &levels)
                .await?,
        );
        notes.push(
            "A row whose category id a spreadsheet lost counts under its category code.".into(),
        );
    }
    Ok((tables, notes))
}
