//! The checks every lake gets without configuration.

use super::{Check, CheckKind, Severity};

use shoplake_lake::tables::{self, EVENT_TYPES};

fn values(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn not_null(table: &str, column: &str) -> Check {
    Check::new(
        table,
        Severity::Error,
        CheckKind::NotNull {
            column: column.into(),
        },
    )
}

fn unique(table: &str, columns: &[&str]) -> Check {
    Check::new(
        table,
        Severity::Error,
        CheckKind::Unique {
            columns: values(columns),
        },
    )
}

fn range(
    table: &str,
    column: &str,
    min: Option<f64>,
    max: Option<f64>,
    min_inclusive: bool,
) -> Check {
    Check::new(
        table,
        Severity::Error,
        CheckKind::Range {
            column: column.into(),
            min,
            max,
            min_inclusive,
            max_inclusive: true,
        },
    )
}

fn references(column: &str, target: &str) -> Check {
    Check::new(
        "model.fact_user_events",
        Severity::Error,
        CheckKind::Referential {
            column: column.into(),
            references: target.into(),
        },
    )
}

/// The built-in checks: a schema contract on every table, keys unique and present, the
/// allowed event types and reject reasons, positive prices, the row accounting, the fact's
/// keys present in their dimensions, and a warning for a day whose volume falls below 20 %
/// of the median of the previous 7 days (real exports have near-empty days).
pub fn builtin() -> Vec<Check> {
    let mut checks: Vec<Check> = shoplake_lake::tables::all()
        .iter()
        .filter(|t| t.layer != "quality")
        .map(|t| Check::new(&t.qualified_name(), Severity::Error, CheckKind::Schema))
        .collect();
    let clean = "clean.events";
    let fact = "model.fact_user_events";
    checks.extend([
        unique(clean, &["event_id"]),
        not_null(clean, "event_time"),
        not_null(clean, "user_session"),
        Check::new(
            clean,
            Severity::Error,
            CheckKind::AcceptedValues {
                column: "event_type".into(),
                values: values(&EVENT_TYPES),
            },
        ),
        range(clean, "price", Some(0.0), None, false),
        Check::new(clean, Severity::Error, CheckKind::RowAccounting),
        Check::new(
            clean,
            Severity::Warn,
            CheckKind::RowCount {
                min: Some(1),
                max: None,
                min_fraction_of_trailing_median: Some(0.2),
                trailing_days: 7,
            },
        ),
        Check::new(
            "clean.rejects",
            Severity::Error,
            CheckKind::AcceptedValues {
                column: "reason".into(),
                values: values(&tables::REJECT_REASONS),
            },
        ),
        unique(fact, &["event_id"]),
        range(fact, "hour_of_day", Some(0.0), Some(23.0), true),
        range(fact, "day_of_week", Some(1.0), Some(7.0), true),
        range(fact, "price", Some(0.0), None, false),
        references("user_id", "model.dim_users.user_id"),
        references("session_id", "model.dim_sessions.session_id"),
        references("product_id", "model.dim_products.product_id"),
        references("category_id", "model.dim_categories.category_id"),
        references("event_date", "model.dim_time.date"),
        unique("model.dim_users", &["user_id"]),
        unique("model.dim_products", &["product_id"]),
        unique("model.dim_categories", &["category_id"]),
        unique("model.dim_sessions", &["session_id"]),
        unique("model.dim_time", &["date"]),
        range(
            "model.dim_sessions",
            "duration_seconds",
            Some(0.0),
            None,
            true,
        ),
    ]);
    checks
}
