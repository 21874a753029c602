//! Progress reporting: library code reports, the command line draws.

/// Receives progress of long work. Implementations must be cheap: `advance` is called
/// once per batch of rows, not per row.
pub trait Progress: Send + Sync {
    /// A step starts; `total` is the number of units when known (rows or bytes).
    fn start(&self, step: &str, total: Option<u64>, unit: &str);
    /// `done` more units of the current step are finished.
    fn advance(&self, done: u64);
    /// The current step is over; `summary` is a short line describing the result.
    fn finish(&self, summary: &str);
}

/// Progress sink that shows nothing (tests, library use).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _step: &str, _total: Option<u64>, _unit: &str) {}
    fn advance(&self, _done: u64) {}
    fn finish(&self, _summary: &str) {}
}
