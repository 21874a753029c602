//! The serve crate's integration tests, in one binary: the reports against answers worked out
//! by hand on the fixture lake and against independent SQL on generated data, and the HTTP
//! API as a client sees it.

mod api;
mod common;
mod pg;
mod reports;
