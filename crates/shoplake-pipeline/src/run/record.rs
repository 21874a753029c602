//! Recording a run, after everything it describes: the days it built in `meta.run_days` (the
//! planner's memory), the check outcomes in `quality.results`, and the run in `meta.runs`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use shoplake_lake::Lake;
use shoplake_lake::arrow::array::{
    ArrayRef, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use shoplake_lake::deltalake::kernel::transaction::CommitProperties;
use shoplake_lake::tables;
use shoplake_lake::time::date_to_days;
use shoplake_lake::write::append_table;
use shoplake_quality::checks::write_results;

use super::{DayReport, RunReport, batches_frame};
use crate::crash_switch;
use crate::error::Result;
use crate::plan::Selection;

pub(super) async fn record_run(
    lake: &Lake,
    report: &RunReport,
    selection: &Selection,
    started_at: DateTime<Utc>,
) -> Result<()> {
    let finished_at = Utc::now();
    let ctx = lake.session();
    let timestamps = |t: DateTime<Utc>, n: usize| -> ArrayRef {
        Arc::new(
            TimestampMicrosecondArray::from(vec![t.timestamp_micros(); n]).with_timezone("UTC"),
        )
    };
    let n = report.days.len();
    let fingerprints: Vec<String> = report
        .days
        .iter()
        .map(|d| {
            report
                .plan
                .days
                .iter()
                .find(|p| p.date == d.date)
                .and_then(|p| p.raw.as_ref())
                .map(|r| r.fingerprint.clone())
                .unwrap_or_default()
        })
        .collect();
    let per_day = |f: fn(&DayReport) -> u64| -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(
            report.days.iter().map(|d| f(d) as i64),
        ))
    };
    let days = RecordBatch::try_new(
        tables::meta_run_days().arrow_schema(),
        vec![
            Arc::new(StringArray::from(vec![report.run_id.as_str(); n])),
            Arc::new(Date32Array::from_iter_values(
                report.days.iter().map(|d| date_to_days(d.date)),
            )),
            per_day(|d| d.rows.raw),
            per_day(|d| d.rows.clean),
            per_day(|d| d.rows.duplicates),
            per_day(|d| d.rows.rejected),
            Arc::new(StringArray::from(fingerprints)),
            timestamps(finished_at, n),
            per_day(|d| d.rows.repaired),
            per_day(|d| d.rows.unknown_category),
        ],
    )?;

    let trigger = match selection {
        Selection::Incremental => "incremental".to_string(),
        Selection::Dates(d) => match (d.first(), d.last()) {
            (Some(a), Some(b)) if a == b => format!("date {a}"),
            (Some(a), Some(b)) => format!("dates {a}..{b}"),
            _ => "dates".to_string(),
        },
    };
    let steps = serde_json::to_string(&report.metrics).unwrap_or_default();
    let total = report.total();
    let count = |n: u64| -> ArrayRef { Arc::new(Int64Array::from(vec![n as i64])) };
    let run = RecordBatch::try_new(
        tables::meta_runs().arrow_schema(),
        vec![
            Arc::new(StringArray::from(vec![report.run_id.as_str()])),
            timestamps(started_at, 1),
            timestamps(finished_at, 1),
            Arc::new(StringArray::from(vec![trigger])),
            count(n as u64),
            count(total.raw),
            count(total.clean),
            count(total.duplicates),
            count(total.rejected),
            count(report.fact_rows()),
            Arc::new(Float64Array::from(vec![report.seconds])),
            Arc::new(StringArray::from(vec![steps])),
        ],
    )?;

    // With the dimensions held back, the days are not marked built: the next run rebuilds
    // them (to the same content) and, with them, the dimensions.
    if !report.dimensions_blocked {
        let df = batches_frame(&ctx, days.schema(), vec![days])?;
        append_table(
            lake,
            &tables::meta_run_days(),
            df,
            CommitProperties::default(),
        )
        .await?;
        crash_switch::committed();
    }
    write_results(lake, &report.run_id, finished_at, &report.checks).await?;
    crash_switch::committed();
    let df = batches_frame(&ctx, run.schema(), vec![run])?;
    append_table(lake, &tables::meta_runs(), df, CommitProperties::default()).await?;
    Ok(())
}
