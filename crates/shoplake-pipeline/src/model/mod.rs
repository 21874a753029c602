//! clean -> model: the star schema.
//!
//! The fact table is built a day at a time from that day's clean rows and replaces exactly
//! that partition. Dimensions are aggregates over the whole fact table and are rebuilt from it
//! after the fact partitions of a run are committed, so they always agree with it (a session
//! that crosses midnight is one row, whichever of its days changed). The marts ([`marts`])
//! are the BI reports' day figures.

mod columns;
pub mod dim_time;
pub mod dimensions;
pub mod fact_user_events;
pub mod marts;
pub mod products;
#[cfg(test)]
mod reference_sql;
