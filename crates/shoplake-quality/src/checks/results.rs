//! Storing check outcomes in `quality.results`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{
    BooleanArray, Date32Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use shoplake_lake::deltalake::kernel::transaction::CommitProperties;
use shoplake_lake::time::date_to_days;
use shoplake_lake::write::append_table;
use shoplake_lake::{Lake, LakeError, tables};

use super::CheckOutcome;

/// What became of the data a check looked at (the `published` column of `quality.results`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publication {
    /// A run published it: no `error` check of its layer failed.
    Published,
    /// A run held it back: an `error` check of its layer failed.
    Held,
    /// The check ran on data already published (`shoplake check`).
    AlreadyPublished,
}

impl Publication {
    /// Published unless `blocked`.
    pub fn unless_blocked(blocked: bool) -> Self {
        if blocked {
            Publication::Held
        } else {
            Publication::Published
        }
    }

    /// The column's text: `yes`, `no`, `-`.
    pub fn as_str(self) -> &'static str {
        match self {
            Publication::Published => "yes",
            Publication::Held => "no",
            Publication::AlreadyPublished => "-",
        }
    }
}

/// Appends outcomes to `quality.results`, each with what became of the data it checked.
pub async fn write_results(
    lake: &Lake,
    run_id: &str,
    checked_at: DateTime<Utc>,
    outcomes: &[(CheckOutcome, Publication)],
) -> Result<(), LakeError> {
    if outcomes.is_empty() {
        return Ok(());
    }
    let n = outcomes.len();
    let text = |f: &dyn Fn(&CheckOutcome, Publication) -> String| {
        Arc::new(StringArray::from(
            outcomes.iter().map(|(o, p)| f(o, *p)).collect::<Vec<_>>(),
        ))
    };
    let batch = RecordBatch::try_new(
        tables::quality_results().arrow_schema(),
        vec![
            Arc::new(StringArray::from(vec![run_id; n])),
            Arc::new(
                TimestampMicrosecondArray::from(vec![checked_at.timestamp_micros(); n])
                    .with_timezone("UTC"),
            ),
            text(&|o, _| o.check.table.clone()),
            Arc::new(Date32Array::from(
                outcomes
                    .iter()
                    .map(|(o, _)| o.partition.map(date_to_days))
                    .collect::<Vec<_>>(),
            )),
            text(&|o, _| o.check.name.clone()),
            text(&|o, _| o.check.kind.name().to_string()),
            text(&|o, _| o.check.severity.to_string()),
            Arc::new(BooleanArray::from(
                outcomes.iter().map(|(o, _)| o.passed).collect::<Vec<_>>(),
            )),
            text(&|o, _| o.observed.clone()),
            text(&|o, _| o.threshold.clone()),
            text(&|o, _| o.sample.join("\n")),
            text(&|_, p| p.as_str().to_string()),
        ],
    )?;
    let ctx = lake.session();
    let df = ctx.read_batch(batch)?;
    append_table(
        lake,
        &tables::quality_results(),
        df,
        CommitProperties::default(),
    )
    .await?;
    Ok(())
}
