//! The ingest crate's integration tests, in one test binary: bad input files, and the
//! generator's distributions against the export's profile.

mod bad_input;
mod generate_distributions;
