//! The examples are the `[[example]]` programs of this package (`cargo run --release
//! --example ingest_and_run`); this library is empty.
