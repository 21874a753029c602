//! Quality gates: checks evaluated on the rows a run is about to publish.
//!
//! The candidate rows of a layer are registered under their table's own name in the run's
//! session, so every check (custom SQL included) reads exactly what would be published, next
//! to the published versions of the other tables. An `error` check that fails keeps the
//! candidate from being written: readers go on seeing the previous version.

use chrono::{NaiveDate, Utc};
use shoplake_lake::datafusion::prelude::{DataFrame, SessionContext};
use shoplake_lake::tables::TableDef;
use shoplake_quality::checks::{
    Check, CheckKind, CheckOutcome, CheckScope, DayAccounting, DayRows, evaluate,
};

use crate::error::Result;

/// Registers each candidate under its table's name in `ctx` (replacing the published table).
pub fn register_candidates(
    ctx: &SessionContext,
    candidates: &[(TableDef, DataFrame)],
) -> Result<()> {
    for (def, df) in candidates {
        let name = def.qualified_name();
        ctx.deregister_table(name.as_str())?;
        ctx.register_table(name.as_str(), df.clone().into_view())?;
    }
    Ok(())
}

/// A check that could not be evaluated (bad custom SQL, a missing table) fails, with the
/// reason as its observation, rather than stopping the run.
fn unevaluable(
    check: &Check,
    partition: Option<NaiveDate>,
    error: impl std::fmt::Display,
) -> CheckOutcome {
    CheckOutcome {
        check: check.clone(),
        partition,
        passed: false,
        observed: format!("could not be evaluated: {error}"),
        threshold: check.kind.describe(),
        sample: Vec::new(),
    }
}

/// Evaluates the day-level checks of one day's candidates.
pub async fn evaluate_day(
    ctx: &SessionContext,
    checks: &[&Check],
    date: NaiveDate,
    accounting: DayAccounting,
    history: &DayRows,
) -> Result<Vec<CheckOutcome>> {
    let mut outcomes = Vec::with_capacity(checks.len());
    for check in checks {
        let trailing_counts = match &check.kind {
            CheckKind::RowCount { trailing_days, .. } => {
                history.trailing(&check.table, date, *trailing_days)
            }
            _ => Vec::new(),
        };
        let scope = CheckScope {
            ctx,
            partition: Some(date),
            trailing_counts,
            accounting: vec![accounting],
            now: Utc::now(),
        };
        let started = std::time::Instant::now();
        outcomes.push(match evaluate(check, &scope).await {
            Ok(o) => o,
            Err(e) => unevaluable(check, Some(date), e),
        });
        tracing::debug!(
            table = %check.table,
            check = %check.name,
            day = %date,
            seconds = started.elapsed().as_secs_f64(),
            "check evaluated"
        );
    }
    Ok(outcomes)
}

/// Evaluates whole-table checks (the dimension stage) in `ctx`.
pub async fn evaluate_tables(ctx: &SessionContext, checks: &[&Check]) -> Result<Vec<CheckOutcome>> {
    let mut outcomes = Vec::with_capacity(checks.len());
    for check in checks {
        let scope = CheckScope {
            ctx,
            partition: None,
            trailing_counts: Vec::new(),
            accounting: Vec::new(),
            now: Utc::now(),
        };
        let started = std::time::Instant::now();
        outcomes.push(match evaluate(check, &scope).await {
            Ok(o) => o,
            Err(e) => unevaluable(check, None, e),
        });
        tracing::debug!(
            table = %check.table,
            check = %check.name,
            seconds = started.elapsed().as_secs_f64(),
            "check evaluated"
        );
    }
    Ok(outcomes)
}
