//! One module per verb.

pub mod cdc;
pub mod check;
pub mod convert;
pub mod demo;
pub mod docs;
pub mod generate;
pub mod ingest;
pub mod oltp;
pub mod profile;
pub mod query;
pub mod report;
pub mod run;
pub mod serve;
pub mod status;
pub mod users;
