//! A crash switch for crash-safety tests: with `SHOPLAKE_CRASH_AFTER_COMMITS=N` in the
//! environment, the process aborts right after the N-th table commit of the run, as a power
//! cut would stop it. Unset (always, in normal use), it does nothing.

use std::sync::atomic::{AtomicU64, Ordering};

static COMMITS: AtomicU64 = AtomicU64::new(0);

/// Counts one table commit; aborts when the switch says so.
pub fn committed() {
    let Some(limit) = std::env::var("SHOPLAKE_CRASH_AFTER_COMMITS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return;
    };
    if COMMITS.fetch_add(1, Ordering::SeqCst) + 1 == limit {
        eprintln!("crash switch: aborting after commit {limit}");
        std::process::abort();
    }
}
