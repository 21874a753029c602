//! Storing check outcomes in `quality.results`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{
    BooleanArray, Date32Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use shoplake_lake::deltalake::kernel::transaction::CommitProperties;
use shoplake_lake::write::{WriteMode, date_to_days, write_table};
use shoplake_lake::{Lake, LakeError, tables};

use super::CheckOutcome;

/// Appends outcomes to `quality.results`. `published` says, per outcome, whether the data it
/// checked was published (`yes`/`no`), or `-` for checks on already published data.
pub async fn write_results(
    lake: &Lake,
    run_id: &str,
    checked_at: DateTime<Utc>,
    outcomes: &[(CheckOutcome, &str)],
) -> Result<(), LakeError> {
    if outcomes.is_empty() {
        return Ok(());
    }
    let n = outcomes.len();
    let text = |f: &dyn Fn(&CheckOutcome, &str) -> String| {
        Arc::new(StringArray::from(
            outcomes.iter().map(|(o, p)| f(o, p)).collect::<Vec<_>>(),
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
            text(&|_, p| p.to_string()),
        ],
    )?;
    let ctx = lake.session();
    let df = ctx.read_batch(batch)?;
    write_table(
        lake,
        &tables::quality_results(),
        df,
        WriteMode::Append,
        CommitProperties::default(),
    )
    .await?;
    Ok(())
}
