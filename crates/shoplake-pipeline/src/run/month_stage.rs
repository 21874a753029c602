//! The month marts of a run: rebuilt from the day marts once the days are committed, before
//! the dimensions (see [`crate::model::marts::months`]).

use std::time::Instant;

use chrono::NaiveDate;
use shoplake_lake::arrow::array::{Array, AsArray};
use shoplake_lake::arrow::datatypes::Date32Type;
use shoplake_lake::built_from;
use shoplake_lake::overwrite::overwrite_table_by_parts;
use shoplake_lake::tables::{self, TableDef};
use shoplake_lake::time::days_to_date;
use shoplake_lake::{Lake, Progress};
use shoplake_sql::SqlCatalog;

use super::RunReport;
use crate::crash_switch;
use crate::error::{PipelineError, Result};
use crate::model::marts::months::{months_of, product_month, user_month};

/// Rebuilds `model.mart_user_monthly` and `model.mart_product_monthly` from the day marts
/// as the lake holds them now, the two tables side by side.
pub(super) async fn rebuild_months(
    lake: &Lake,
    report: &mut RunReport,
    progress: &dyn Progress,
) -> Result<()> {
    let started = Instant::now();
    let catalog = SqlCatalog::open(lake).await?;
    let ctx = catalog.context();
    let months = months_of(event_days(&catalog).await?);
    progress.start("month marts", Some(2), "tables");
    // Each month mart records the version of the day mart it was read from: a report uses
    // it only while that day mart is unchanged.
    let version = |def: TableDef| {
        let catalog = &catalog;
        async move { Ok::<_, PipelineError>(catalog.table(&def).await?.and_then(|t| t.version())) }
    };
    let user_days = version(tables::mart_user_daily()).await?;
    let product_days = version(tables::mart_product_daily()).await?;
    let mut users = Vec::with_capacity(months.len());
    let mut products = Vec::with_capacity(months.len());
    for month in &months {
        users.push(user_month(ctx, *month).await?);
        products.push(product_month(ctx, *month).await?);
    }
    let write = |def: TableDef, parts, source: TableDef, version| async move {
        let commit = built_from::commit_properties(&source, version);
        let table = overwrite_table_by_parts(lake, &def, parts, commit).await?;
        crash_switch::committed();
        let rows = shoplake_lake::partitions::table_rows(&table).await?;
        progress.advance(1);
        Ok::<_, PipelineError>((def.qualified_name(), rows))
    };
    let (users, products) = futures::future::try_join(
        write(
            tables::mart_user_monthly(),
            users,
            tables::mart_user_daily(),
            user_days,
        ),
        write(
            tables::mart_product_monthly(),
            products,
            tables::mart_product_daily(),
            product_days,
        ),
    )
    .await?;
    report.month_marts = vec![users, products];
    report.metrics.month_marts_seconds = started.elapsed().as_secs_f64();
    progress.finish("month marts rebuilt");
    Ok(())
}

/// The days with events, from the funnel mart (a row per such day).
async fn event_days(catalog: &SqlCatalog) -> Result<Vec<NaiveDate>> {
    let batches = catalog
        .sql("SELECT event_date FROM model.mart_funnel_daily")
        .await?
        .collect()
        .await?;
    let mut days = Vec::new();
    for batch in &batches {
        let dates = batch.column(0).as_primitive::<Date32Type>();
        for i in 0..dates.len() {
            if dates.is_valid(i) {
                days.push(days_to_date(dates.value(i)));
            }
        }
    }
    Ok(days)
}
