//! `users`: the most active users, and the recurrent ones (active on several days, buying on
//! several days).

use super::{ReportError, Scope, Table, store_wide};

pub(super) async fn build(scope: &Scope<'_>) -> Result<(Vec<Table>, Vec<String>), ReportError> {
    let per_user = scope.user_rows();
    let summary = format!(
        "SELECT COUNT(*) AS users,
                COUNT(*) FILTER (WHERE active_days >= 2) AS active_on_several_days,
                round(100.0 * COUNT(*) FILTER (WHERE active_days >= 2) / NULLIF(COUNT(*), 0), 2) AS recurrent_pct,
                COUNT(*) FILTER (WHERE purchases > 0) AS buyers,
                COUNT(*) FILTER (WHERE purchase_days >= 2) AS returning_buyers,
                round(100.0 * COUNT(*) FILTER (WHERE purchase_days >= 2)
                      / NULLIF(COUNT(*) FILTER (WHERE purchases > 0), 0), 2) AS returning_buyer_pct
         FROM ({per_user})"
    );
    let most_active = format!(
        "SELECT user_id, events, active_days, views, carts, purchases, revenue
         FROM ({per_user}) ORDER BY events DESC, user_id LIMIT {}",
        scope.limit
    );
    let returning = format!(
        "SELECT user_id, purchase_days, purchases, revenue, active_days, events
         FROM ({per_user}) WHERE purchase_days >= 2
         ORDER BY purchase_days DESC, revenue DESC, user_id LIMIT {}",
        scope.limit
    );
    let tables = vec![
        scope
            .table("summary", "Users in the range", &summary)
            .await?,
        scope
            .table("most_active", "Most active users, by events", &most_active)
            .await?,
        scope
            .table(
                "returning_buyers",
                "Returning buyers: users who bought on two days or more",
                &returning,
            )
            .await?,
    ];
    let mut notes = vec![
        "A recurrent user is active on two days or more of the range; a returning buyer bought on two days or more.".to_string(),
    ];
    notes.extend(store_wide(scope, "Users"));
    Ok((tables, notes))
}
