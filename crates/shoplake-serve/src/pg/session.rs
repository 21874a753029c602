//! A connection's engine session: the tables its role sees, PostgreSQL's catalog over them,
//! and the lake read afresh before every statement.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
use datafusion::prelude::SessionContext;
use datafusion_postgres::DfSessionService;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::setup_pg_catalog;
use shoplake_lake::Lake;

use crate::users::Role;

/// What `version()` answers: PostgreSQL's form, which client libraries parse, then shoplake's.
pub const VERSION: &str = concat!(
    "PostgreSQL 16.6 on x86_64-pc-linux-gnu, compiled by rustc, 64-bit (shoplake ",
    env!("CARGO_PKG_VERSION"),
    ", a read-only lake endpoint on Apache DataFusion)"
);

/// One connection's session.
pub(crate) struct Session {
    pub ctx: Arc<SessionContext>,
    pub service: Arc<DfSessionService>,
    lake: Lake,
    role: Role,
}

impl Session {
    /// A session for `role` over `lake`, with its own memory pool of `memory_limit` bytes.
    pub fn new(lake: &Lake, role: Role, memory_limit: usize) -> Result<Session, String> {
        let ctx = shoplake_sql::session(&lake.clone().with_memory_limit(memory_limit));
        register(&ctx, lake, &role)?;
        setup_pg_catalog(&ctx, "datafusion", EmptyContextProvider)
            .map_err(|e| format!("cannot set up pg_catalog: {e}"))?;
        // After pg_catalog's: these answer for the role.
        let tables = shoplake_lake::tables::all()
            .into_iter()
            .filter(|def| role.sees(def.layer, def.name))
            .map(|def| format!("{}.{}", def.layer, def.name))
            .collect();
        for udf in super::privileges::udfs(tables) {
            ctx.register_udf(udf);
        }
        ctx.register_udf(create_udf(
            "version",
            vec![],
            DataType::Utf8,
            Volatility::Stable,
            Arc::new(|_| {
                Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(
                    VERSION.into(),
                ))))
            }),
        ));
        let ctx = Arc::new(ctx);
        Ok(Session {
            service: Arc::new(DfSessionService::new(ctx.clone())),
            ctx,
            lake: lake.clone(),
            role,
        })
    }

    /// Registers the role's tables again, so that the next statement reads each at the lake's
    /// latest version (a table's log is read when a statement first names it).
    pub fn refresh(&self) -> Result<(), String> {
        register(&self.ctx, &self.lake, &self.role)
    }
}

fn register(ctx: &SessionContext, lake: &Lake, role: &Role) -> Result<(), String> {
    shoplake_sql::register_visible_tables(ctx, lake, &|def| role.sees(def.layer, def.name))
        .map_err(|e| e.to_string())
}
