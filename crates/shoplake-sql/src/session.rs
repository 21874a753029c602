//! The query session every SQL reader of the lake uses: the lake's own session (memory budget,
//! spilling, delta-rs's planner) with shoplake's engine extensions installed.

use std::sync::Arc;

use shoplake_lake::Lake;
use shoplake_lake::datafusion::prelude::SessionContext;

use crate::count_by_key::CountByIntegerKey;
use crate::stats_counts::CountsFromStatistics;

/// A session over `lake` with the extensions: grouped counts answered from Parquet footers
/// ([`CountsFromStatistics`]) and rows counted by one integer key ([`CountByIntegerKey`]).
/// No tables are registered; [`crate::SqlCatalog`] registers them.
pub fn session(lake: &Lake) -> SessionContext {
    let state = lake
        .session_state()
        .with_optimizer_rule(Arc::new(CountsFromStatistics))
        .with_physical_optimizer_rule(Arc::new(CountByIntegerKey))
        .build();
    SessionContext::new_with_state(state)
}
