//! Declarative checks with severities.
//!
//! A check names a table, a kind with its parameters, and a severity. Checks are declared in
//! `shoplake.toml` as `[[checks]]` entries and come with built-in defaults for every table
//! ([`builtin`]); a declared check with the same table and name as a built-in replaces it
//! (to change its severity or threshold), and `builtin_checks = false` drops the defaults.
//!
//! ```toml
//! [[checks]]
//! table = "clean.events"
//! name = "price_below_cap"
//! kind = "range"
//! column = "price"
//! max = 2574.07
//! severity = "warn"
//!
//! [[checks]]
//! table = "model.fact_user_events"
//! name = "no_night_purchases_over_10k"
//! kind = "custom_sql"
//! sql = "SELECT * FROM model.fact_user_events WHERE hour_of_day < 5 AND price > 10000"
//! ```
//!
//! `shoplake run` evaluates the checks of a layer on the data it is about to publish (each
//! rebuilt day of `clean.*` and of the fact table; the dimensions as rebuilt) and publishes
//! nothing of that day or layer when an `error` check fails. `shoplake check` evaluates them
//! on the published tables. Every outcome is stored in `quality.results`.

mod builtin;
mod evaluate;
mod history;
mod key_table;
mod keys;
mod published;
mod results;

use std::fmt;

use serde::Deserialize;

pub use builtin::builtin;
use evaluate::parse_age;
pub use evaluate::{CheckOutcome, CheckScope, DayAccounting, evaluate, evaluate_all};
pub use history::DayRows;
pub use published::{PublishedCheck, check_published, published_accounting};
pub use results::{Publication, write_results};

/// How bad a failure is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Blocks publishing; the run exits with code 3.
    #[default]
    Error,
    /// Recorded and reported; publishing goes on.
    Warn,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warn => "warn",
        })
    }
}

/// What a check verifies.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CheckKind {
    /// The column has no null.
    NotNull {
        /// Column.
        column: String,
    },
    /// No two rows share these columns.
    Unique {
        /// Columns forming the key.
        columns: Vec<String>,
    },
    /// Every non-null value is one of these.
    AcceptedValues {
        /// Column.
        column: String,
        /// Allowed values (compared as text).
        values: Vec<String>,
    },
    /// Every non-null value lies within the bounds.
    Range {
        /// Column (numeric).
        column: String,
        /// Lower bound.
        #[serde(default)]
        min: Option<f64>,
        /// Upper bound.
        #[serde(default)]
        max: Option<f64>,
        /// Whether `min` itself is allowed (default true).
        #[serde(default = "yes")]
        min_inclusive: bool,
        /// Whether `max` itself is allowed (default true).
        #[serde(default = "yes")]
        max_inclusive: bool,
    },
    /// The number of rows (of a day partition, for a partitioned table) is within bounds,
    /// absolute and relative to the median of the trailing days.
    RowCount {
        /// Fewest rows allowed.
        #[serde(default)]
        min: Option<u64>,
        /// Most rows allowed.
        #[serde(default)]
        max: Option<u64>,
        /// A day must have at least this fraction of the median of the previous
        /// `trailing_days` days (only for tables partitioned by day).
        #[serde(default)]
        min_fraction_of_trailing_median: Option<f64>,
        /// How many previous days form the median (default 7).
        #[serde(default = "seven")]
        trailing_days: u32,
    },
    /// The newest value of a timestamp column is recent enough.
    Freshness {
        /// Timestamp column.
        column: String,
        /// Maximum age, e.g. `36h`, `2d`, `90m`.
        max_age: String,
    },
    /// Every non-null value exists in another table's column.
    Referential {
        /// Column of this table.
        column: String,
        /// `layer.table.column` that must contain it.
        references: String,
    },
    /// The columns and types are the documented ones.
    Schema,
    /// raw rows = clean rows + duplicates removed + rejected rows, per day.
    RowAccounting,
    /// A query that must return no row; the rows it returns are the failures.
    CustomSql {
        /// The query.
        sql: String,
    },
}

fn yes() -> bool {
    true
}

fn seven() -> u32 {
    7
}

impl CheckKind {
    /// The kind's name as written in configuration.
    pub fn name(&self) -> &'static str {
        match self {
            CheckKind::NotNull { .. } => "not_null",
            CheckKind::Unique { .. } => "unique",
            CheckKind::AcceptedValues { .. } => "accepted_values",
            CheckKind::Range { .. } => "range",
            CheckKind::RowCount { .. } => "row_count",
            CheckKind::Freshness { .. } => "freshness",
            CheckKind::Referential { .. } => "referential",
            CheckKind::Schema => "schema",
            CheckKind::RowAccounting => "row_accounting",
            CheckKind::CustomSql { .. } => "custom_sql",
        }
    }

    /// Columns this check reads (for the data dictionary).
    pub fn columns(&self) -> Vec<&str> {
        match self {
            CheckKind::NotNull { column }
            | CheckKind::AcceptedValues { column, .. }
            | CheckKind::Range { column, .. }
            | CheckKind::Freshness { column, .. }
            | CheckKind::Referential { column, .. } => vec![column.as_str()],
            CheckKind::Unique { columns } => columns.iter().map(String::as_str).collect(),
            _ => Vec::new(),
        }
    }

    /// A one-line description of what is required.
    pub fn describe(&self) -> String {
        match self {
            CheckKind::NotNull { column } => format!("{column} is never null"),
            CheckKind::Unique { columns } => format!("({}) is unique", columns.join(", ")),
            CheckKind::AcceptedValues { column, values } => {
                format!("{column} in ({})", values.join(", "))
            }
            CheckKind::Range {
                column,
                min,
                max,
                min_inclusive,
                max_inclusive,
            } => {
                let lo = min.map(|m| format!("{m} {} ", if *min_inclusive { "<=" } else { "<" }));
                let hi = max.map(|m| format!(" {} {m}", if *max_inclusive { "<=" } else { "<" }));
                format!(
                    "{}{column}{}",
                    lo.unwrap_or_default(),
                    hi.unwrap_or_default()
                )
            }
            CheckKind::RowCount {
                min,
                max,
                min_fraction_of_trailing_median,
                trailing_days,
            } => {
                let mut parts = Vec::new();
                if let Some(m) = min {
                    parts.push(format!("rows >= {m}"));
                }
                if let Some(m) = max {
                    parts.push(format!("rows <= {m}"));
                }
                if let Some(f) = min_fraction_of_trailing_median {
                    parts.push(format!(
                        "rows >= {f} x median of the previous {trailing_days} days"
                    ));
                }
                parts.join(" and ")
            }
            CheckKind::Freshness { column, max_age } => {
                format!("newest {column} not older than {max_age}")
            }
            CheckKind::Referential { column, references } => {
                format!("every {column} exists in {references}")
            }
            CheckKind::Schema => "columns and types as documented".into(),
            CheckKind::RowAccounting => "raw = clean + duplicates + rejected, per day".into(),
            CheckKind::CustomSql { sql } => format!("no row from: {sql}"),
        }
    }
}

/// One declared check.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Check {
    /// Table checked, `layer.table`.
    pub table: String,
    /// Name, unique per table; defaults to `<kind>_<columns>`.
    #[serde(default)]
    pub name: String,
    /// Severity (default `error`).
    #[serde(default)]
    pub severity: Severity,
    /// What is checked.
    #[serde(flatten)]
    pub kind: CheckKind,
}

impl Check {
    /// A check with a name derived from its kind and columns.
    pub fn new(table: &str, severity: Severity, kind: CheckKind) -> Self {
        let mut check = Check {
            table: table.to_string(),
            name: String::new(),
            severity,
            kind,
        };
        check.name = check.default_name();
        check
    }

    fn default_name(&self) -> String {
        let cols = self.kind.columns();
        if cols.is_empty() {
            self.kind.name().to_string()
        } else {
            format!("{}_{}", self.kind.name(), cols.join("_"))
        }
    }

    /// Whether the check is evaluated with the dimensions (it reads another table that is
    /// rebuilt after the days) rather than day by day.
    pub fn runs_with_dimensions(&self) -> bool {
        matches!(self.kind, CheckKind::Referential { .. })
            || !matches!(
                self.table.as_str(),
                "clean.events" | "clean.rejects" | "model.fact_user_events"
            )
    }
}

/// Checks configured in `shoplake.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ChecksConfig {
    /// Whether the built-in checks apply (default true).
    #[serde(default)]
    pub builtin_checks: Option<bool>,
    /// Declared checks.
    #[serde(default)]
    pub checks: Vec<Check>,
}

/// Why a check configuration is not usable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A check names a table that does not exist.
    #[error(
        "check '{name}' is on unknown table '{table}'; tables are named layer.table, e.g. clean.events"
    )]
    UnknownTable {
        /// Check.
        name: String,
        /// Table.
        table: String,
    },
    /// A check names a column its table does not have.
    #[error("check '{name}' on {table} reads unknown column '{column}'")]
    UnknownColumn {
        /// Check.
        name: String,
        /// Table.
        table: String,
        /// Column.
        column: String,
    },
    /// A parameter is out of its domain.
    #[error("check '{name}' on {table}: {reason}")]
    Invalid {
        /// Check.
        name: String,
        /// Table.
        table: String,
        /// What is wrong.
        reason: String,
    },
}

impl ChecksConfig {
    /// The checks in force: built-ins (unless disabled) with declared checks replacing those
    /// of the same table and name, then the other declared checks. Validated against the table
    /// declarations.
    pub fn resolve(&self) -> Result<Vec<Check>, ConfigError> {
        let mut declared = self.checks.clone();
        for check in &mut declared {
            if check.name.is_empty() {
                check.name = check.default_name();
            }
            validate(check)?;
        }
        let mut all: Vec<Check> = if self.builtin_checks.unwrap_or(true) {
            builtin()
        } else {
            Vec::new()
        };
        for check in declared {
            match all
                .iter_mut()
                .find(|c| c.table == check.table && c.name == check.name)
            {
                Some(existing) => *existing = check,
                None => all.push(check),
            }
        }
        Ok(all)
    }
}

fn validate(check: &Check) -> Result<(), ConfigError> {
    let Some(def) = shoplake_lake::tables::by_name(&check.table) else {
        return Err(ConfigError::UnknownTable {
            name: check.name.clone(),
            table: check.table.clone(),
        });
    };
    let invalid = |reason: String| ConfigError::Invalid {
        name: check.name.clone(),
        table: check.table.clone(),
        reason,
    };
    for column in check.kind.columns() {
        if !def.column_names().contains(&column) {
            return Err(ConfigError::UnknownColumn {
                name: check.name.clone(),
                table: check.table.clone(),
                column: column.to_string(),
            });
        }
    }
    match &check.kind {
        CheckKind::Unique { columns } if columns.is_empty() => {
            Err(invalid("unique needs at least one column".into()))
        }
        CheckKind::Range {
            min: None,
            max: None,
            ..
        } => Err(invalid("range needs min, max or both".into())),
        CheckKind::RowCount {
            min_fraction_of_trailing_median: Some(f),
            ..
        } if !(0.0..=1.0).contains(f) => Err(invalid(format!(
            "min_fraction_of_trailing_median must be within 0..1, got {f}"
        ))),
        CheckKind::Freshness { max_age, .. } => parse_age(max_age).map(|_| ()).ok_or_else(|| {
            invalid(format!(
                "max_age '{max_age}' is not a duration like 36h, 2d or 90m"
            ))
        }),
        CheckKind::Referential { references, .. } => {
            let (table, column) = references.rsplit_once('.').ok_or_else(|| {
                invalid(format!(
                    "references '{references}' is not layer.table.column"
                ))
            })?;
            let target = shoplake_lake::tables::by_name(table)
                .ok_or_else(|| invalid(format!("references unknown table '{table}'")))?;
            if target.column_names().contains(&column) {
                Ok(())
            } else {
                Err(invalid(format!(
                    "references unknown column '{column}' of {table}"
                )))
            }
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_declared_checks_and_overrides_builtins() {
        let config: ChecksConfig = toml::from_str(
            r#"
            [[checks]]
            table = "clean.events"
            kind = "range"
            column = "price"
            max = 2574.07
            severity = "warn"

            [[checks]]
            table = "clean.events"
            name = "row_count"
            kind = "row_count"
            min = 10
            severity = "error"
            "#,
        )
        .unwrap();
        let checks = config.resolve().unwrap();
        let cap = checks
            .iter()
            .find(|c| c.name == "range_price" && c.table == "clean.events")
            .unwrap();
        assert_eq!(cap.severity, Severity::Warn);
        let volume: Vec<_> = checks
            .iter()
            .filter(|c| c.name == "row_count" && c.table == "clean.events")
            .collect();
        assert_eq!(
            volume.len(),
            1,
            "the declared check replaced the built-in one"
        );
        assert_eq!(volume[0].severity, Severity::Error);
    }

    #[test]
    fn rejects_unknown_tables_columns_and_bad_parameters() {
        let bad = |text: &str| {
            let config: ChecksConfig = toml::from_str(text).unwrap();
            config.resolve().unwrap_err().to_string()
        };
        assert!(
            bad("[[checks]]\ntable = \"clean.nope\"\nkind = \"schema\"").contains("unknown table")
        );
        assert!(
            bad("[[checks]]\ntable = \"clean.events\"\nkind = \"not_null\"\ncolumn = \"colour\"")
                .contains("unknown column")
        );
        assert!(
            bad("[[checks]]\ntable = \"clean.events\"\nkind = \"range\"\ncolumn = \"price\"")
                .contains("min, max")
        );
        assert!(
            bad("[[checks]]\ntable = \"clean.events\"\nkind = \"freshness\"\ncolumn = \"event_time\"\nmax_age = \"soon\"")
                .contains("duration")
        );
        assert!(
            bad("[[checks]]\ntable = \"model.fact_user_events\"\nkind = \"referential\"\ncolumn = \"user_id\"\nreferences = \"model.dim_users.id\"")
                .contains("unknown column")
        );
        let unknown_kind: Result<ChecksConfig, _> =
            toml::from_str("[[checks]]\ntable = \"clean.events\"\nkind = \"telepathy\"");
        assert!(unknown_kind.is_err());
    }

    #[test]
    fn every_builtin_check_is_valid() {
        for check in builtin() {
            validate(&check).unwrap();
        }
    }
}
