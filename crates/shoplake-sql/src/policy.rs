//! What a reader of the lake may run, and errors in the reader's own terms.
//!
//! Readers (`shoplake query`, `check`, the servers) run read-only statements: no DDL, no DML,
//! no `SET`, no `COPY` (which would write files). A statement that names a table the lake
//! does not have fails with the name as the user wrote it and the lake tables whose names are
//! close to it, instead of the engine's message (which names its internal catalog).

use shoplake_lake::datafusion::common::TableReference;
use shoplake_lake::datafusion::common::utils::datafusion_strsim::levenshtein;
use shoplake_lake::datafusion::error::DataFusionError;
use shoplake_lake::datafusion::execution::context::SQLOptions;
use shoplake_lake::datafusion::prelude::{DataFrame, SessionContext};

use crate::error::{Result, SqlError};

/// The schemas a reader sees: the lake's layers.
pub const LAYERS: [&str; 5] = ["raw", "clean", "model", "meta", "quality"];

/// SQL options that refuse anything but reading (no DDL, no DML, no `SET`).
pub fn read_only_sql_options() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

/// Plans `sql` in `ctx` under the read-only policy.
pub async fn plan_read_only(ctx: &SessionContext, sql: &str) -> Result<DataFrame> {
    match ctx.sql_with_options(sql, read_only_sql_options()).await {
        Ok(frame) => Ok(frame),
        Err(e) => Err(explain(ctx, sql, e).await),
    }
}

/// The error to show for a statement that failed to plan: a table the lake does not have
/// becomes [`SqlError::UnknownTable`]; a refused statement, [`SqlError::NotAllowed`].
async fn explain(ctx: &SessionContext, sql: &str, error: DataFusionError) -> SqlError {
    if let DataFusionError::Plan(message) = error.find_root()
        && [
            "DDL not supported",
            "DML not supported",
            "Statement not supported",
        ]
        .iter()
        .any(|refused| message.starts_with(refused))
    {
        return SqlError::NotAllowed(format!(
            "only reading statements are allowed here (SELECT, WITH, EXPLAIN, SHOW, DESCRIBE): {}",
            first_line(sql)
        ));
    }
    let state = ctx.state();
    let dialect = state.config().options().sql_parser.dialect;
    let Ok(statement) = state.sql_to_statement(sql, &dialect) else {
        return error.into();
    };
    let Ok(references) = state.resolve_table_references(&statement) else {
        return error.into();
    };
    for reference in references {
        if !ctx.table_exist(reference.clone()).unwrap_or(false) {
            return SqlError::UnknownTable {
                name: reference.to_string(),
                suggestions: close_names(ctx, &reference),
            };
        }
    }
    error.into()
}

fn first_line(sql: &str) -> String {
    let line = sql.trim().lines().next().unwrap_or_default();
    match line.char_indices().nth(60) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line.to_string(),
    }
}

/// Lake tables (`layer.table`) whose names are close to `wanted`: the same table name in
/// another layer, or a qualified name within a few edits of it.
fn close_names(ctx: &SessionContext, wanted: &TableReference) -> Vec<String> {
    let Some(catalog) = ctx.catalog(&ctx.state().config().options().catalog.default_catalog) else {
        return Vec::new();
    };
    let wanted_table = wanted.table().to_ascii_lowercase();
    let wanted_name = match wanted.schema() {
        Some(schema) => format!("{}.{wanted_table}", schema.to_ascii_lowercase()),
        None => wanted_table.clone(),
    };
    let mut scored: Vec<(usize, String)> = Vec::new();
    for layer in LAYERS {
        let Some(schema) = catalog.schema(layer) else {
            continue;
        };
        for table in schema.table_names() {
            let name = format!("{layer}.{table}");
            let distance = if wanted.schema().is_some() {
                levenshtein(&wanted_name, &name)
            } else {
                levenshtein(&wanted_table, &table)
            };
            let close = table == wanted_table
                || distance <= 2.max(wanted_name.len() / 4)
                || (wanted_table.len() >= 4 && table.contains(&wanted_table));
            if close {
                scored.push((if table == wanted_table { 0 } else { distance }, name));
            }
        }
    }
    scored.sort();
    scored.into_iter().take(3).map(|(_, name)| name).collect()
}
