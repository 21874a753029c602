//! `shoplake profile`.

use shoplake_lake::Lake;

use crate::cli::ProfileArgs;
use crate::progress::Bars;
use crate::{Exit, usage};

pub async fn run(_lake: &Lake, args: &ProfileArgs, _bars: &Bars) -> Result<(), Exit> {
    Err(usage(anyhow::anyhow!(
        "profiling {} is not available yet",
        args.target
    )))
}
