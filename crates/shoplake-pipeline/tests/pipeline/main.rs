//! The pipeline's integration tests, in one test binary (each binary links all of DataFusion
//! and delta-rs): a run on the hand-made fixture, incremental and crash-safe runs on generated
//! data, the quality gates, and `convert`.

mod common;
mod convert;
mod fixture;
mod gates;
mod golden_sql;
mod incremental;
mod spreadsheet;
