//! Category ids that a spreadsheet printed in scientific notation, repaired from the known
//! categories.
//!
//! An export opened and saved in a spreadsheet carries every 19-digit `category_id` as
//! `2.05301E+18`: the id is lost, but the row's category code and every other field are
//! intact. The row is kept. Its id is repaired when exactly one known category has the same
//! code and an id that rounds to the printed value; otherwise it is
//! [`UNKNOWN_CATEGORY_ID`], the unknown member of `model.dim_categories`, and grouping by
//! category code or level still counts the row where it belongs. A wrong id is never
//! given: two candidates are as unknown as none.
//!
//! The known categories are those of the published `model.dim_categories` and of every raw
//! row of the days being rebuilt whose category id is exact, so a run that brings exact rows
//! of a category repairs the mangled rows of that category in the same run.

use std::collections::HashMap;

use chrono::NaiveDate;
use futures::TryStreamExt;
use shoplake_ingest::files::Scientific;
use shoplake_lake::arrow::array::{Array, AsArray};
use shoplake_lake::arrow::compute::cast;
use shoplake_lake::arrow::datatypes::{DataType, Int64Type};
use shoplake_lake::tables::UNKNOWN_CATEGORY_ID;
use shoplake_sql::SqlCatalog;

use super::rules::UNKNOWN;
use crate::error::Result;

/// Known (category code, category id) pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownCategories {
    by_code: HashMap<String, Vec<i64>>,
}

impl KnownCategories {
    /// Adds a category; `code` as the cleaning writes it (a missing code is [`UNKNOWN`]).
    pub fn insert(&mut self, code: &str, id: i64) {
        if id == UNKNOWN_CATEGORY_ID {
            return;
        }
        let code = if code.trim().is_empty() {
            UNKNOWN
        } else {
            code
        };
        let ids = self.by_code.entry(code.to_string()).or_default();
        if !ids.contains(&id) {
            ids.push(id);
        }
    }

    /// Categories known.
    pub fn len(&self) -> usize {
        self.by_code.values().map(Vec::len).sum()
    }

    /// Whether no category is known.
    pub fn is_empty(&self) -> bool {
        self.by_code.is_empty()
    }

    /// The id of the one known category with `code` whose id rounds to `printed`; `None`
    /// when there is none or more than one.
    pub fn repair(&self, code: &str, printed: &Scientific) -> Option<i64> {
        let mut candidates = self
            .by_code
            .get(code)?
            .iter()
            .filter(|id| printed.rounds_from(**id));
        let first = *candidates.next()?;
        candidates.next().is_none().then_some(first)
    }

    /// The categories of the published `model.dim_categories` and of the exact raw rows of
    /// `days`, read through `catalog`.
    pub async fn from_lake(catalog: &SqlCatalog, days: &[NaiveDate]) -> Result<Self> {
        let mut known = KnownCategories::default();
        let published = format!(
            "SELECT category_code, category_id FROM model.dim_categories \
             WHERE category_id <> {UNKNOWN_CATEGORY_ID}"
        );
        known.add_rows(catalog, &published).await?;
        if !days.is_empty() {
            let list: Vec<String> = days.iter().map(|d| format!("DATE '{d}'")).collect();
            let raw = format!(
                "SELECT DISTINCT category_code, category_id FROM raw.events \
                 WHERE event_date IN ({}) AND regexp_like(category_id, '^-?[0-9]{{1,19}}$')",
                list.join(", ")
            );
            known.add_rows(catalog, &raw).await?;
        }
        Ok(known)
    }

    /// Adds the (code, id) rows of a query; ids that are not 64-bit integers are skipped.
    async fn add_rows(&mut self, catalog: &SqlCatalog, sql: &str) -> Result<()> {
        let mut stream = catalog.sql(sql).await?.execute_stream().await?;
        while let Some(batch) = stream.try_next().await? {
            let codes = cast(batch.column(0), &DataType::Utf8)?;
            let codes = codes.as_string::<i32>();
            let ids = cast(batch.column(1), &DataType::Utf8)?;
            let ids = ids.as_string::<i32>();
            for i in 0..batch.num_rows() {
                let code = if codes.is_null(i) { "" } else { codes.value(i) };
                if let Some(id) = (!ids.is_null(i))
                    .then(|| ids.value(i).parse::<i64>().ok())
                    .flatten()
                {
                    self.insert(code, id);
                }
            }
        }
        Ok(())
    }
}

/// Whether `days` of `raw.events` may hold category ids in scientific notation: said by the
/// ingests' counts when every ingest was counted, else by a look at the raw rows.
pub async fn may_hold_scientific_ids(catalog: &SqlCatalog, days: &[NaiveDate]) -> Result<bool> {
    let counted = catalog
        .table(&shoplake_lake::tables::meta_ingests())
        .await?
        .and_then(|t| {
            t.snapshot()
                .ok()
                .map(|s| s.schema().field("scientific_category_ids").is_some())
        })
        .unwrap_or(false);
    if counted {
        let sql = "SELECT \
             COUNT(*) FILTER (WHERE scientific_category_ids > 0), \
             COUNT(*) FILTER (WHERE scientific_category_ids IS NULL) \
             FROM meta.ingests";
        let batches = catalog.sql(sql).await?.collect().await?;
        let count = |c: usize| -> Result<i64> {
            Ok(batches
                .iter()
                .find(|b| b.num_rows() > 0)
                .map(|b| cast(b.column(c), &DataType::Int64))
                .transpose()?
                .map_or(0, |a| a.as_primitive::<Int64Type>().value(0)))
        };
        if count(0)? > 0 {
            return Ok(true);
        }
        if count(1)? == 0 {
            return Ok(false);
        }
    }
    if days.is_empty() {
        return Ok(false);
    }
    // Ingests recorded before they were counted: the raw rows say.
    let list: Vec<String> = days.iter().map(|d| format!("DATE '{d}'")).collect();
    let sql = format!(
        "SELECT COUNT(*) FROM raw.events WHERE event_date IN ({}) \
         AND (category_id LIKE '%E%' OR category_id LIKE '%e%')",
        list.join(", ")
    );
    let batches = catalog.sql(&sql).await?.collect().await?;
    Ok(batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .is_some_and(|b| b.column(0).as_primitive::<Int64Type>().value(0) > 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repairs_only_when_one_category_of_the_code_rounds_to_it() {
        let mut known = KnownCategories::default();
        known.insert("electronics.smartphone", 2_053_013_555_631_882_655);
        known.insert("electronics.smartphone", 2_053_013_555_631_882_655);
        known.insert("electronics.audio", 2_053_013_554_658_804_075);
        known.insert("appliances.kitchen", 2_053_013_554_658_804_075);
        // Two categories of one code that print alike.
        known.insert("furniture", 2_053_013_552_326_770_905);
        known.insert("furniture", 2_053_013_552_351_936_731);
        known.insert("", 2_053_013_553_341_792_533);
        known.insert("", UNKNOWN_CATEGORY_ID);
        assert_eq!(known.len(), 6);

        let printed = |t: &str| Scientific::parse(t).unwrap();
        assert_eq!(
            known.repair("electronics.smartphone", &printed("2.05301E+18")),
            Some(2_053_013_555_631_882_655)
        );
        // Another code: not that category.
        assert_eq!(known.repair("computers", &printed("2.05301E+18")), None);
        // The audio id under the kitchen code: the code decides.
        assert_eq!(
            known.repair("appliances.kitchen", &printed("2.05301E+18")),
            Some(2_053_013_554_658_804_075)
        );
        // Ambiguous: two furniture categories round to it.
        assert_eq!(known.repair("furniture", &printed("2.05301E+18")), None);
        // With more digits printed, one of them.
        assert_eq!(
            known.repair("furniture", &printed("2.05301355235194E+18")),
            Some(2_053_013_552_351_936_731)
        );
        // A value no known id rounds to.
        assert_eq!(
            known.repair("electronics.smartphone", &printed("2.2E+18")),
            None
        );
        // A missing code is `unknown`.
        assert_eq!(
            known.repair(UNKNOWN, &printed("2.05301355334179E+18")),
            Some(2_053_013_553_341_792_533)
        );
    }
}
