//! Evaluating checks.
//!
//! A check is evaluated in a session where its table name resolves to the data to check:
//! the candidate rows of a run (before they are published) or the published table (for
//! `shoplake check`). Most checks are one or two aggregate queries plus a `LIMIT 5` sample of
//! offending rows, so memory stays bounded whatever the table size. Uniqueness of one column
//! and referential checks are answered by the key checks of [`super::keys`] (exact, within the
//! session's memory budget, much faster than a grouping), and in SQL when they cannot be.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::arrow::json::LineDelimitedWriter;
use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::SessionContext;

use shoplake_lake::Accounting;

use super::history::DayRows;
use super::{Check, CheckKind, keys};

/// The accounting of one day, which a row_accounting check verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayAccounting {
    /// The day.
    pub date: NaiveDate,
    /// Where the day's raw rows went.
    pub rows: Accounting,
}

/// What a check sees besides its session.
#[derive(Clone)]
pub struct CheckScope<'a> {
    /// Session where the check's tables resolve to the data to check.
    pub ctx: &'a SessionContext,
    /// The day partition being checked, when one is.
    pub partition: Option<NaiveDate>,
    /// Rows of each previous day of the table, most recent last (row_count's trailing median).
    pub trailing_counts: Vec<u64>,
    /// Day accounting for row_accounting checks.
    pub accounting: Vec<DayAccounting>,
    /// The current instant (freshness); injected so tests are deterministic.
    pub now: DateTime<Utc>,
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckOutcome {
    /// The check.
    pub check: Check,
    /// The day checked, if one.
    pub partition: Option<NaiveDate>,
    /// Whether it passed.
    pub passed: bool,
    /// What was measured.
    pub observed: String,
    /// What was required.
    pub threshold: String,
    /// Up to 5 offending rows, as JSON objects.
    pub sample: Vec<String>,
}

impl CheckOutcome {
    /// Whether this outcome blocks publishing.
    pub fn blocks(&self) -> bool {
        !self.passed && self.check.severity == super::Severity::Error
    }
}

pub(super) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A freshness check's maximum age: `36h`, `2d`, `90m`, `45s`, `1h 30m` (humantime's
/// durations).
pub(super) fn parse_age(text: &str) -> Option<Duration> {
    let age = humantime::parse_duration(text.trim()).ok()?;
    Duration::from_std(age).ok()
}

pub(super) async fn scalar_i64(ctx: &SessionContext, sql: &str) -> Result<i64> {
    let batches = ctx.sql(sql).await?.collect().await?;
    let value = batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .map(|b| {
            let col = datafusion::arrow::compute::cast(b.column(0), &DataType::Int64)?;
            let col = col.as_primitive::<Int64Type>();
            Ok::<_, DataFusionError>(if col.is_null(0) { 0 } else { col.value(0) })
        })
        .transpose()?;
    Ok(value.unwrap_or(0))
}

async fn sample(ctx: &SessionContext, sql: &str) -> Result<Vec<String>> {
    let batches = ctx.sql(&format!("{sql} LIMIT 5")).await?.collect().await?;
    json_lines(&batches)
}

pub(super) fn json_lines(batches: &[RecordBatch]) -> Result<Vec<String>> {
    let mut buf = Vec::new();
    {
        let mut writer = LineDelimitedWriter::new(&mut buf);
        for b in batches {
            writer.write(b)?;
        }
        writer.finish()?;
    }
    Ok(String::from_utf8_lossy(&buf)
        .lines()
        .map(str::to_string)
        .collect())
}

/// The count `count_sql` gives, and when it is not 0, a sample of `rows_sql`'s rows.
async fn counted(
    ctx: &SessionContext,
    count_sql: &str,
    rows_sql: &str,
) -> Result<(i64, Vec<String>)> {
    let count = scalar_i64(ctx, count_sql).await?;
    let rows = if count > 0 {
        sample(ctx, rows_sql).await?
    } else {
        Vec::new()
    };
    Ok((count, rows))
}

/// Offending rows by predicate: (count, sample).
async fn offending(
    ctx: &SessionContext,
    table: &str,
    predicate: &str,
) -> Result<(i64, Vec<String>)> {
    counted(
        ctx,
        &format!("SELECT COUNT(*) FROM {table} WHERE {predicate}"),
        &format!("SELECT * FROM {table} WHERE {predicate}"),
    )
    .await
}

fn median(values: &[u64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_unstable();
    let mid = v.len() / 2;
    Some(if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) as f64 / 2.0
    } else {
        v[mid] as f64
    })
}

fn same_type(declared: &DataType, actual: &DataType) -> bool {
    match (declared, actual) {
        (DataType::Utf8, DataType::Utf8View | DataType::LargeUtf8) => true,
        _ => declared == actual,
    }
}

/// Duplicated keys in SQL (the answer for keys [`keys::duplicates`] does not take):
/// (count, sample).
pub(super) async fn duplicates_by_sql(
    ctx: &SessionContext,
    table: &str,
    columns: &[String],
) -> Result<(u64, Vec<String>)> {
    let cols: Vec<String> = columns.iter().map(|c| ident(c)).collect();
    let groups = format!(
        "SELECT {cols}, COUNT(*) AS copies FROM {table} GROUP BY {cols} HAVING COUNT(*) > 1",
        cols = cols.join(", ")
    );
    let (n, rows) = counted(ctx, &format!("SELECT COUNT(*) FROM ({groups})"), &groups).await?;
    Ok((n as u64, rows))
}

/// Rows whose key is missing from the target, in SQL (the answer for keys
/// [`keys::missing`] does not take): (count, sample).
pub(super) async fn missing_by_sql(
    ctx: &SessionContext,
    table: &str,
    column: &str,
    target: &str,
    target_column: &str,
) -> Result<(u64, Vec<String>)> {
    // An aggregation rather than an anti-join: DataFusion's hash-join build side cannot
    // spill, and on a month of events the fact side alone outgrew the memory budget.
    // Grouping both key sets together spills like any aggregation.
    let missing = format!(
        "SELECT key AS {c}, SUM(in_table) AS rows FROM (
           SELECT {c} AS key, 1 AS in_table, 0 AS in_target FROM {table} WHERE {c} IS NOT NULL
           UNION ALL
           SELECT {tc}, 0, 1 FROM {target} WHERE {tc} IS NOT NULL)
         GROUP BY key HAVING MAX(in_target) = 0",
        c = ident(column),
        tc = ident(target_column)
    );
    let (n, rows) = counted(ctx, &format!("SELECT SUM(rows) FROM ({missing})"), &missing).await?;
    Ok((n as u64, rows))
}

/// Evaluates one check.
pub async fn evaluate(check: &Check, scope: &CheckScope<'_>) -> Result<CheckOutcome> {
    let ctx = scope.ctx;
    let table = check.table.as_str();
    let outcome = |passed: bool, observed: String, sample: Vec<String>| CheckOutcome {
        check: check.clone(),
        partition: scope.partition,
        passed,
        observed,
        threshold: check.kind.describe(),
        sample,
    };
    let by_predicate = |predicate: String| async move {
        let (n, rows) = offending(ctx, table, &predicate).await?;
        Ok::<_, DataFusionError>(outcome(n == 0, format!("{n} offending rows"), rows))
    };
    match &check.kind {
        CheckKind::NotNull { column } => by_predicate(format!("{} IS NULL", ident(column))).await,
        CheckKind::AcceptedValues { column, values } => {
            let list: Vec<String> = values.iter().map(|v| literal(v)).collect();
            by_predicate(format!(
                "{c} IS NOT NULL AND CAST({c} AS VARCHAR) NOT IN ({})",
                list.join(", "),
                c = ident(column)
            ))
            .await
        }
        CheckKind::Range {
            column,
            min,
            max,
            min_inclusive,
            max_inclusive,
        } => {
            let c = format!("CAST({} AS DOUBLE)", ident(column));
            let mut bad = Vec::new();
            if let Some(m) = min {
                bad.push(format!(
                    "{c} {} {m:?}",
                    if *min_inclusive { "<" } else { "<=" }
                ));
            }
            if let Some(m) = max {
                bad.push(format!(
                    "{c} {} {m:?}",
                    if *max_inclusive { ">" } else { ">=" }
                ));
            }
            by_predicate(format!("({})", bad.join(" OR "))).await
        }
        CheckKind::Unique { columns } => {
            let found = match columns.as_slice() {
                [column] => keys::duplicates(ctx, table, column).await?,
                _ => None,
            };
            let (n, rows) = match found {
                Some(found) => {
                    tracing::debug!(
                        table,
                        passes = found.passes,
                        sorted = found.sorted,
                        "unique keys checked natively"
                    );
                    (found.offending, json_lines(&[found.sample])?)
                }
                None => duplicates_by_sql(ctx, table, columns).await?,
            };
            Ok(outcome(n == 0, format!("{n} duplicated keys"), rows))
        }
        CheckKind::RowCount {
            min,
            max,
            min_fraction_of_trailing_median,
            ..
        } => {
            let n = scalar_i64(ctx, &format!("SELECT COUNT(*) FROM {table}")).await? as u64;
            let mut failures = Vec::new();
            if let Some(m) = min
                && n < *m
            {
                failures.push(format!("fewer than {m}"));
            }
            if let Some(m) = max
                && n > *m
            {
                failures.push(format!("more than {m}"));
            }
            let mut observed = format!("{n} rows");
            if let (Some(f), Some(med)) = (
                min_fraction_of_trailing_median,
                median(&scope.trailing_counts),
            ) {
                observed.push_str(&format!(
                    " (median of the {} previous days: {med})",
                    scope.trailing_counts.len()
                ));
                if (n as f64) < f * med {
                    failures.push(format!("below {f} x {med}"));
                }
            }
            if !failures.is_empty() {
                observed.push_str(&format!(": {}", failures.join(", ")));
            }
            Ok(outcome(failures.is_empty(), observed, Vec::new()))
        }
        CheckKind::Freshness { column, max_age } => {
            let age = parse_age(max_age).ok_or_else(|| {
                DataFusionError::Plan(format!("max_age '{max_age}' is not a duration"))
            })?;
            let newest = scalar_i64(
                ctx,
                &format!(
                    "SELECT CAST(MAX({c}) AS BIGINT) FROM {table}",
                    c = ident(column)
                ),
            )
            .await?;
            let newest = DateTime::<Utc>::from_timestamp_micros(newest);
            let passed = newest.is_some_and(|t| scope.now - t <= age);
            let observed = newest.map_or("no rows".to_string(), |t| {
                format!("newest {t}, {} h before now", (scope.now - t).num_hours())
            });
            Ok(outcome(passed, observed, Vec::new()))
        }
        CheckKind::Referential { column, references } => {
            let (target, target_column) = references.rsplit_once('.').ok_or_else(|| {
                DataFusionError::Plan(format!(
                    "references '{references}' is not layer.table.column"
                ))
            })?;
            let (n, rows) = match keys::missing(ctx, table, column, target, target_column).await? {
                Some(found) => {
                    tracing::debug!(
                        table,
                        target,
                        passes = found.passes,
                        "keys looked up by hash"
                    );
                    (found.offending, json_lines(&[found.sample])?)
                }
                None => missing_by_sql(ctx, table, column, target, target_column).await?,
            };
            Ok(outcome(n == 0, format!("{n} offending rows"), rows))
        }
        CheckKind::Schema => {
            let def = shoplake_lake::tables::by_name(table)
                .ok_or_else(|| DataFusionError::Plan(format!("unknown table {table}")))?;
            let actual = ctx.table(table).await?.schema().inner().clone();
            let mut differences = Vec::new();
            for (i, col) in def.columns.iter().enumerate() {
                match actual.fields().get(i) {
                    Some(f) if f.name() == col.name && same_type(&col.data_type, f.data_type()) => {
                    }
                    Some(f) => differences.push(format!(
                        "column {} is {} {}, documented {} {}",
                        i + 1,
                        f.name(),
                        f.data_type(),
                        col.name,
                        col.data_type
                    )),
                    None => differences.push(format!("column {} is missing", col.name)),
                }
            }
            for f in actual.fields().iter().skip(def.columns.len()) {
                differences.push(format!("undocumented column {}", f.name()));
            }
            let observed = if differences.is_empty() {
                format!("{} columns as documented", def.columns.len())
            } else {
                differences.join("; ")
            };
            Ok(outcome(differences.is_empty(), observed, Vec::new()))
        }
        CheckKind::RowAccounting => {
            let broken: Vec<String> = scope
                .accounting
                .iter()
                .filter(|a| !a.rows.balances())
                .map(|a| {
                    let rows = &a.rows;
                    serde_json::json!({
                        "event_date": a.date.to_string(),
                        "raw": rows.raw,
                        "clean": rows.clean,
                        "duplicates": rows.duplicates,
                        "rejected": rows.rejected,
                        "repaired": rows.repaired,
                        "unknown_category": rows.unknown_category,
                    })
                    .to_string()
                })
                .collect();
            let observed = format!(
                "{} of {} days do not add up",
                broken.len(),
                scope.accounting.len()
            );
            Ok(outcome(
                broken.is_empty(),
                observed,
                broken.into_iter().take(5).collect(),
            ))
        }
        CheckKind::CustomSql { sql } => {
            let (n, rows) = counted(
                ctx,
                &format!("SELECT COUNT(*) FROM ({sql})"),
                &format!("SELECT * FROM ({sql})"),
            )
            .await?;
            Ok(outcome(n == 0, format!("{n} rows returned"), rows))
        }
    }
}

/// Evaluates `checks` against published tables (`shoplake check`): each table as a whole,
/// except row_count on a day-partitioned table, which is evaluated per day against the
/// trailing days (as [`DayRows`] defines them, the same window a run gates with).
pub async fn evaluate_all(
    checks: &[Check],
    ctx: &SessionContext,
    accounting: &[DayAccounting],
    now: DateTime<Utc>,
) -> Result<Vec<CheckOutcome>> {
    let mut outcomes = Vec::new();
    for check in checks {
        let partitioned = shoplake_lake::tables::by_name(&check.table)
            .is_some_and(|t| t.partition_by == Some(shoplake_lake::tables::EVENT_DATE));
        if let (CheckKind::RowCount { trailing_days, .. }, true) = (&check.kind, partitioned) {
            let history = day_rows(ctx, &check.table).await?;
            for (date, _) in history.calendar(&check.table) {
                let scope = CheckScope {
                    ctx,
                    partition: Some(date),
                    trailing_counts: history.trailing(&check.table, date, *trailing_days),
                    accounting: Vec::new(),
                    now,
                };
                let day_check = Check {
                    table: format!(
                        "(SELECT * FROM {} WHERE event_date = DATE '{date}')",
                        check.table
                    ),
                    ..check.clone()
                };
                let mut o = evaluate(&day_check, &scope).await?;
                o.check = check.clone();
                outcomes.push(o);
            }
            continue;
        }
        let scope = CheckScope {
            ctx,
            partition: None,
            trailing_counts: Vec::new(),
            accounting: accounting.to_vec(),
            now,
        };
        outcomes.push(evaluate(check, &scope).await?);
    }
    Ok(outcomes)
}

/// The published rows per day of a day-partitioned `table`.
async fn day_rows(ctx: &SessionContext, table: &str) -> Result<DayRows> {
    let per_day = ctx
        .sql(&format!(
            "SELECT CAST(event_date AS VARCHAR), COUNT(*) FROM {table} GROUP BY 1 ORDER BY 1"
        ))
        .await?
        .collect()
        .await?;
    let mut rows = DayRows::default();
    for b in &per_day {
        let dates = datafusion::arrow::compute::cast(b.column(0), &DataType::Utf8)?;
        let dates = dates.as_string::<i32>();
        let counts = datafusion::arrow::compute::cast(b.column(1), &DataType::Int64)?;
        let counts = counts.as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            if let Ok(d) = NaiveDate::parse_from_str(dates.value(i), "%Y-%m-%d") {
                rows.set(table, d, counts.value(i) as u64);
            }
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_and_medians() {
        assert_eq!(parse_age("36h"), Some(Duration::hours(36)));
        assert_eq!(parse_age("2d"), Some(Duration::days(2)));
        assert_eq!(parse_age("90m"), Some(Duration::minutes(90)));
        assert_eq!(parse_age("1h 30m"), Some(Duration::minutes(90)));
        assert_eq!(parse_age("soon"), None);
        assert_eq!(parse_age("5"), None);
        assert_eq!(parse_age(""), None);
        assert_eq!(median(&[5, 1, 3]), Some(3.0));
        assert_eq!(median(&[4, 1, 3, 2]), Some(2.5));
        assert_eq!(median(&[]), None);
    }
}
