//! What a client of the PostgreSQL endpoint may run: reads only.
//!
//! Each statement is classified before anything plans it: queries (checked to write nothing:
//! no `SELECT ... INTO`, no data-modifying `WITH`), `EXPLAIN`, `SHOW`, harmless `SET`s,
//! transaction and cursor statements, and `COPY (query) TO STDOUT` pass; everything that
//! writes, creates, drops, grants, reads a server file or lifts a limit is refused with a
//! PostgreSQL error: SQLSTATE 42501 (insufficient privilege) for what a read-only endpoint
//! never allows, 0A000 (feature not supported) for what shoplake does not implement. The
//! logical plan of every query is checked again by the engine's read-only options.

use std::ops::ControlFlow;
use std::time::Duration;

use datafusion::sql::sqlparser::ast::{
    CopySource, CopyTarget, Expr, ObjectName, Query, Set, SetExpr, Statement, TableFactor, Value,
    ValueWithSpan, Visit, Visitor,
};
use datafusion_postgres::pgwire::error::ErrorInfo;

/// SQLSTATE for what the read-only endpoint never allows.
pub const INSUFFICIENT_PRIVILEGE: &str = "42501";
/// SQLSTATE for what the endpoint does not implement.
pub const FEATURE_NOT_SUPPORTED: &str = "0A000";

/// What to do with a statement.
#[derive(Debug)]
// One verdict a statement, used at once: boxing the large variants would buy nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Verdict {
    /// Plan it as a read-only query.
    Plan,
    /// Let the session hooks answer it (`SET`, `SHOW`, transactions, cursors).
    Hook,
    /// `COPY (query) TO STDOUT`, with the query and whether CSV with a header was asked.
    CopyOut {
        query: Box<Query>,
        csv: bool,
        header: bool,
    },
    /// Refuse it.
    Refuse(ErrorInfo),
}

/// A PostgreSQL error.
pub(crate) fn error(code: &str, message: impl Into<String>) -> ErrorInfo {
    ErrorInfo::new("ERROR".to_string(), code.to_string(), message.into())
}

fn read_only(what: &str) -> Verdict {
    Verdict::Refuse(error(
        INSUFFICIENT_PRIVILEGE,
        format!("permission denied: the lake is read-only here ({what} is not allowed)"),
    ))
}

/// Functions that read server files or reach the network, in the engines and databases clients
/// know (DataFusion registers none of them today; a later version, or an extension, might).
const FILE_FUNCTIONS: &[&str] = &[
    "read_csv",
    "read_csv_auto",
    "read_parquet",
    "read_json",
    "read_json_auto",
    "read_ndjson",
    "read_avro",
    "read_arrow",
    "read_text",
    "read_blob",
    "parquet_scan",
    "parquet_metadata",
    "glob",
    "pg_read_file",
    "pg_read_binary_file",
    "pg_ls_dir",
    "pg_stat_file",
    "lo_import",
    "lo_export",
    "dblink",
    "http_get",
];

/// Endings of a table name that is a file.
const FILE_ENDINGS: &[&str] = &[
    ".csv", ".tsv", ".parquet", ".json", ".ndjson", ".avro", ".arrow", ".gz", ".zst", ".txt",
];

/// The file-reading function or file path `statement` names, if any: in a table's place
/// (`FROM '/etc/passwd'`, `FROM read_csv(...)`, `LATERAL read_csv(...)`) or as a function
/// anywhere.
fn reads_files(statement: &Statement) -> Option<String> {
    match statement.visit(&mut FileReads) {
        ControlFlow::Break(name) => Some(name),
        ControlFlow::Continue(()) => None,
    }
}

/// Looks for what [`reads_files`] refuses.
struct FileReads;

impl FileReads {
    /// The last part of `name`, lower case.
    fn last(name: &ObjectName) -> String {
        name.0
            .last()
            .and_then(|part| part.as_ident())
            .map(|ident| ident.value.to_ascii_lowercase())
            .unwrap_or_default()
    }

    fn is_file_function(name: &ObjectName) -> bool {
        FILE_FUNCTIONS.contains(&Self::last(name).as_str())
    }

    fn is_path(name: &ObjectName) -> bool {
        let part = Self::last(name);
        part.contains('/')
            || part.contains('\\')
            || FILE_ENDINGS.iter().any(|ending| part.ends_with(ending))
    }
}

impl Visitor for FileReads {
    type Break = String;

    fn pre_visit_relation(&mut self, name: &ObjectName) -> ControlFlow<String> {
        if Self::is_path(name) || Self::is_file_function(name) {
            return ControlFlow::Break(name.to_string());
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<String> {
        match factor {
            TableFactor::Function { name, .. } if Self::is_file_function(name) => {
                ControlFlow::Break(name.to_string())
            }
            _ => ControlFlow::Continue(()),
        }
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<String> {
        match expr {
            Expr::Function(f) if Self::is_file_function(&f.name) => {
                ControlFlow::Break(f.name.to_string())
            }
            _ => ControlFlow::Continue(()),
        }
    }
}

/// Classifies `statement`; `max_timeout` is the server's statement timeout, which a client
/// may lower but not lift.
pub(crate) fn classify(statement: &Statement, max_timeout: Duration) -> Verdict {
    if let Some(what) = reads_files(statement) {
        return Verdict::Refuse(error(
            INSUFFICIENT_PRIVILEGE,
            format!(
                "permission denied: this endpoint reads the lake's tables only, not server files or the network ({what})"
            ),
        ));
    }
    match statement {
        Statement::Query(query) => match query_writes(query) {
            Some(what) => read_only(what),
            None => Verdict::Plan,
        },
        Statement::Explain { statement, .. } => match statement.as_ref() {
            Statement::Query(_) => classify(statement, max_timeout),
            _ => read_only("EXPLAIN of anything but a query"),
        },
        Statement::ExplainTable { .. }
        | Statement::ShowTables { .. }
        | Statement::ShowColumns { .. } => Verdict::Plan,
        Statement::ShowVariable { .. }
        | Statement::ShowVariables { .. }
        | Statement::ShowStatus { .. }
        | Statement::ShowCatalogs { .. } => Verdict::Hook,
        Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. } => Verdict::Hook,
        Statement::Declare { stmts } => {
            for declare in stmts {
                if let Some(query) = &declare.for_query
                    && let Some(what) = query_writes(query)
                {
                    return read_only(what);
                }
            }
            Verdict::Hook
        }
        Statement::Fetch { .. } | Statement::Close { .. } => Verdict::Hook,
        Statement::Set(set) => classify_set(set, max_timeout),
        Statement::Copy {
            source,
            to,
            target,
            options,
            legacy_options,
            ..
        } => {
            if !*to {
                return read_only("COPY ... FROM");
            }
            if !matches!(target, CopyTarget::Stdout) {
                return read_only("COPY to a server file or program");
            }
            let query = match source {
                CopySource::Query(query) => query.clone(),
                CopySource::Table { .. } => {
                    return Verdict::Refuse(error(
                        FEATURE_NOT_SUPPORTED,
                        "COPY of a table is not supported: write COPY (SELECT * FROM table) TO STDOUT",
                    ));
                }
            };
            if let Some(what) = query_writes(&query) {
                return read_only(what);
            }
            let text = options
                .iter()
                .map(|o| o.to_string())
                .chain(legacy_options.iter().map(|o| o.to_string()))
                .collect::<Vec<_>>()
                .join(" ")
                .to_ascii_lowercase();
            let csv = text.contains("csv");
            let header = text.contains("header");
            let unsupported = [
                "binary",
                "delimiter",
                "null(",
                "quote",
                "escape",
                "encoding",
            ];
            if let Some(option) = unsupported.iter().find(|o| text.contains(*o)) {
                return Verdict::Refuse(error(
                    FEATURE_NOT_SUPPORTED,
                    format!(
                        "COPY option {} is not supported (text, or CSV with HEADER)",
                        option
                    ),
                ));
            }
            Verdict::CopyOut { query, csv, header }
        }
        other => refuse_by_keyword(&other.to_string()),
    }
}

/// A refused statement that did not parse: one that starts with a writing keyword is refused
/// as writing (42501), whatever its syntax; others are a syntax error.
pub(crate) fn unparsed(sql: &str, parse_error: &str) -> ErrorInfo {
    if writes_by_keyword(sql) {
        permission_denied(sql)
    } else {
        error("42601", format!("syntax error: {parse_error}"))
    }
}

/// The statement's first keyword, upper-cased.
fn first_keyword(sql: &str) -> String {
    sql.trim_start()
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase()
}

/// Whether a statement starts with a keyword of the statements that write or change objects.
fn writes_by_keyword(sql: &str) -> bool {
    const WRITING: [&str; 17] = [
        "CREATE", "DROP", "ALTER", "INSERT", "UPDATE", "DELETE", "COPY", "TRUNCATE", "GRANT",
        "REVOKE", "MERGE", "VACUUM", "LOAD", "UNLOAD", "REPLACE", "ATTACH", "INSTALL",
    ];
    WRITING.contains(&first_keyword(sql).as_str())
}

fn permission_denied(sql: &str) -> ErrorInfo {
    error(
        INSUFFICIENT_PRIVILEGE,
        format!(
            "permission denied: the lake is read-only here ({} is not allowed)",
            first_keyword(sql)
        ),
    )
}

/// Anything the policy does not name: refused as writing when it starts like a statement that
/// writes, as not supported otherwise.
fn refuse_by_keyword(sql: &str) -> Verdict {
    if writes_by_keyword(sql) {
        Verdict::Refuse(permission_denied(sql))
    } else {
        Verdict::Refuse(error(
            FEATURE_NOT_SUPPORTED,
            format!(
                "not supported here: {} (the endpoint answers queries, EXPLAIN, SHOW, SET, transactions, cursors and COPY (query) TO STDOUT)",
                first_words(sql)
            ),
        ))
    }
}

fn classify_set(set: &Set, max_timeout: Duration) -> Verdict {
    match set {
        Set::SingleAssignment {
            variable, values, ..
        } => {
            let name = variable.to_string().to_ascii_lowercase();
            if name.contains('.') {
                return Verdict::Refuse(error(
                    INSUFFICIENT_PRIVILEGE,
                    format!(
                        "permission denied to set {name}: engine options are the server's (see [serve] in shoplake.toml)"
                    ),
                ));
            }
            if name == "statement_timeout" {
                let value = values.first().map(set_value).unwrap_or_default();
                return match parse_timeout(&value) {
                    Some(asked) if !asked.is_zero() && asked <= max_timeout => Verdict::Hook,
                    Some(_) => Verdict::Refuse(error(
                        INSUFFICIENT_PRIVILEGE,
                        format!(
                            "statement_timeout may be lowered, not lifted: at most {} ms here",
                            max_timeout.as_millis()
                        ),
                    )),
                    None => Verdict::Refuse(error(
                        "22023",
                        format!("invalid value for statement_timeout: {value:?}"),
                    )),
                };
            }
            Verdict::Hook
        }
        Set::SetRole { .. } | Set::SetSessionAuthorization(_) => Verdict::Refuse(error(
            INSUFFICIENT_PRIVILEGE,
            "permission denied: a session keeps the role it logged in with",
        )),
        _ => Verdict::Hook,
    }
}

fn set_value(expr: &Expr) -> String {
    match expr {
        Expr::Value(ValueWithSpan {
            value: Value::SingleQuotedString(s) | Value::DoubleQuotedString(s),
            ..
        }) => s.clone(),
        other => other.to_string(),
    }
}

/// A `statement_timeout` value as PostgreSQL reads it: a number of milliseconds, or a number
/// with a unit (`ms`, `s`, `min`, `h`).
pub(crate) fn parse_timeout(value: &str) -> Option<Duration> {
    let value = value.trim().trim_matches('\'').trim();
    let split = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: f64 = number.parse().ok()?;
    let millis = match unit.trim() {
        "" | "ms" => number,
        "s" => number * 1e3,
        "min" => number * 60e3,
        "h" => number * 3600e3,
        _ => return None,
    };
    (millis.is_finite() && millis >= 0.0).then(|| Duration::from_millis(millis as u64))
}

/// What in `query` writes, if anything.
fn query_writes(query: &Query) -> Option<&'static str> {
    if let Some(with) = &query.with {
        for cte in &with.cte_tables {
            if let Some(what) = query_writes(&cte.query) {
                return Some(what);
            }
        }
    }
    set_expr_writes(&query.body)
}

fn set_expr_writes(body: &SetExpr) -> Option<&'static str> {
    match body {
        SetExpr::Select(select) => select.into.as_ref().map(|_| "SELECT ... INTO"),
        SetExpr::Query(query) => query_writes(query),
        SetExpr::SetOperation { left, right, .. } => {
            set_expr_writes(left).or_else(|| set_expr_writes(right))
        }
        SetExpr::Values(_) | SetExpr::Table(_) => None,
        _ => Some("a data-modifying statement inside a query"),
    }
}

fn first_words(sql: &str) -> String {
    let words: Vec<&str> = sql.split_whitespace().take(3).collect();
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion_postgres::datafusion_pg_catalog::sql::PostgresCompatibilityParser;

    fn verdict(sql: &str) -> Verdict {
        let statements = PostgresCompatibilityParser::new().parse(sql).unwrap();
        classify(&statements[0], Duration::from_secs(300))
    }

    fn refused_with_message(sql: &str) -> String {
        match verdict(sql) {
            Verdict::Refuse(info) => info.message,
            other => panic!("{sql}: not refused but {other:?}"),
        }
    }

    fn refused_with(sql: &str) -> String {
        match verdict(sql) {
            Verdict::Refuse(e) => e.code,
            other => panic!("{sql}: not refused but {other:?}"),
        }
    }

    #[test]
    fn reads_pass() {
        for sql in [
            "SELECT 1",
            "WITH t AS (SELECT 1 AS x) SELECT * FROM t UNION ALL SELECT 2",
            "EXPLAIN SELECT * FROM model.fact_user_events",
            "SHOW TABLES",
        ] {
            assert!(matches!(verdict(sql), Verdict::Plan), "{sql}");
        }
        for sql in [
            "SET application_name = 'x'",
            "SET statement_timeout = '5s'",
            "SET TIME ZONE 'UTC'",
            "SHOW server_version",
            "BEGIN",
            "COMMIT",
            "ROLLBACK",
        ] {
            assert!(matches!(verdict(sql), Verdict::Hook), "{sql}");
        }
        assert!(matches!(
            verdict("COPY (SELECT 1) TO STDOUT WITH (FORMAT csv, HEADER)"),
            Verdict::CopyOut {
                csv: true,
                header: true,
                ..
            }
        ));
        assert!(matches!(
            verdict("COPY (SELECT 1) TO STDOUT"),
            Verdict::CopyOut {
                csv: false,
                header: false,
                ..
            }
        ));
    }

    #[test]
    fn writes_files_and_limits_are_refused() {
        for sql in [
            "INSERT INTO model.fact_user_events VALUES (1)",
            "UPDATE model.fact_user_events SET price = 0",
            "DELETE FROM model.fact_user_events",
            "DROP TABLE model.fact_user_events",
            "CREATE TABLE t (x INT)",
            "CREATE VIEW v AS SELECT 1",
            "ALTER TABLE model.fact_user_events ADD COLUMN y INT",
            "TRUNCATE model.fact_user_events",
            "GRANT SELECT ON model.fact_user_events TO bob",
            "SELECT 1 INTO t",
            "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
            "COPY model.fact_user_events FROM '/tmp/x.csv'",
            "COPY (SELECT 1) TO '/tmp/out.csv'",
            "SET datafusion.execution.memory_pool_size = '100GB'",
            "SET statement_timeout = 0",
            "SET statement_timeout = '1h'",
            "SET ROLE engineer",
            "SELECT * FROM read_csv('/etc/passwd')",
            "SELECT * FROM READ_PARQUET('s3://bucket/x.parquet')",
            "SELECT * FROM '/etc/passwd'",
            "SELECT * FROM 'events.csv.gz'",
            "SELECT count(*) FROM model.fact_user_events f JOIN read_json('x') j ON true",
            "SELECT pg_read_file('/etc/passwd')",
            "SELECT * FROM (SELECT lo_import('/etc/passwd')) t",
            "WITH f AS (SELECT * FROM read_csv_auto('/x')) SELECT * FROM f",
            "SELECT * FROM model.dim_users u, LATERAL read_csv('/etc/passwd')",
            "EXPLAIN SELECT * FROM read_csv('/etc/passwd')",
            "COPY (SELECT * FROM read_csv('/etc/passwd')) TO STDOUT",
        ] {
            assert_eq!(refused_with(sql), INSUFFICIENT_PRIVILEGE, "{sql}");
        }
        assert!(
            refused_with_message("SELECT * FROM read_csv('/etc/passwd')")
                .contains("not server files or the network")
        );
        assert_eq!(
            refused_with("COPY model.fact_user_events TO STDOUT"),
            FEATURE_NOT_SUPPORTED
        );
        assert_eq!(refused_with("VACUUM"), INSUFFICIENT_PRIVILEGE);
        assert_eq!(refused_with("DISCARD ALL"), FEATURE_NOT_SUPPORTED);
        assert_eq!(
            unparsed(
                "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'",
                "x"
            )
            .code,
            INSUFFICIENT_PRIVILEGE
        );
        assert_eq!(unparsed("SELEC 1", "x").code, "42601");
    }

    #[test]
    fn timeouts_read_as_postgresql_reads_them() {
        assert_eq!(parse_timeout("1500"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_timeout("'2s'"), Some(Duration::from_secs(2)));
        assert_eq!(parse_timeout("1min"), Some(Duration::from_secs(60)));
        assert_eq!(parse_timeout("0"), Some(Duration::ZERO));
        assert_eq!(parse_timeout("soon"), None);
    }
}
