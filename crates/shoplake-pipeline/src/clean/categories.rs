//! Category ids that a spreadsheet printed in scientific notation, repaired from the known
//! categories.
//!
//! An export opened and saved in a spreadsheet carries every 19-digit `category_id` as
//! `2.05301E+18`: the id is lost, but the row's category code and every other field are
//! intact. The row is kept. Its id is repaired from the evidence, strongest first: the
//! categories the row's product is known to have (exactly one rounding to the printed value),
//! then, when the product has none, the known categories of the row's code (exactly one).
//! Otherwise it is [`UNKNOWN_CATEGORY_ID`], the unknown member of `model.dim_categories`, and
//! grouping by category code or level still counts the row where it belongs. A wrong id is
//! never given: two candidates are as unknown as none.
//!
//! The known categories are those of the published `model.dim_categories` and
//! `model.dim_products` and of every raw row of the days being rebuilt whose category id is
//! exact, so a run that brings exact rows of a category repairs the mangled rows of that
//! category in the same run.

use std::collections::HashMap;

use chrono::NaiveDate;
use futures::TryStreamExt;
use shoplake_ingest::files::{SCIENTIFIC_SQL, Scientific};
use shoplake_lake::arrow::array::{Array, AsArray};
use shoplake_lake::arrow::compute::cast;
use shoplake_lake::arrow::datatypes::{DataType, Int64Type};
use shoplake_lake::tables::UNKNOWN_CATEGORY_ID;
use shoplake_sql::SqlCatalog;

use super::rules::UNKNOWN;
use crate::error::Result;

/// Known (category code, category id) and (product, category id) pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownCategories {
    by_code: HashMap<String, Vec<i64>>,
    by_product: HashMap<i64, Vec<i64>>,
}

/// The exact id rule of the raw text (the cleaning's own parse decides; this only narrows).
const EXACT_ID: &str = "^[+-]?[0-9]+$";

/// `DATE '…', …` for an `IN` list.
fn date_list(days: &[NaiveDate]) -> String {
    let list: Vec<String> = days.iter().map(|d| format!("DATE '{d}'")).collect();
    list.join(", ")
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

    /// Adds a category a product is known to have.
    pub fn insert_product(&mut self, product: i64, id: i64) {
        if id == UNKNOWN_CATEGORY_ID {
            return;
        }
        let ids = self.by_product.entry(product).or_default();
        if !ids.contains(&id) {
            ids.push(id);
        }
    }

    /// Categories known (by code).
    pub fn len(&self) -> usize {
        self.by_code.values().map(Vec::len).sum()
    }

    /// Whether no category is known.
    pub fn is_empty(&self) -> bool {
        self.by_code.is_empty()
    }

    /// The id `printed` stands for in a row of `product` and `code`. Of the known
    /// categories that round to it, those of the product and those of the code: the one in
    /// both; else the product's one when the code has none (a code the lake does not know
    /// yet); else the code's one when the product has none. `None` when no single category
    /// is left, or the product and the code disagree.
    pub fn repair(&self, product: i64, code: &str, printed: &Scientific) -> Option<i64> {
        let rounding = |ids: Option<&Vec<i64>>| -> Vec<i64> {
            ids.into_iter()
                .flatten()
                .copied()
                .filter(|id| printed.rounds_from(*id))
                .collect()
        };
        let of_product = rounding(self.by_product.get(&product));
        let of_code = rounding(self.by_code.get(code));
        let mut both = of_product.iter().filter(|id| of_code.contains(id));
        if let Some(first) = both.next() {
            return both.next().is_none().then_some(*first);
        }
        match (of_product.as_slice(), of_code.as_slice()) {
            ([one], []) | ([], [one]) => Some(*one),
            _ => None,
        }
    }

    /// The categories of the published `model.dim_categories` and `model.dim_products` and
    /// of the exact raw rows of `days`, read through `catalog`.
    pub async fn from_lake(catalog: &SqlCatalog, days: &[NaiveDate]) -> Result<Self> {
        let mut known = KnownCategories::default();
        let categories = format!(
            "SELECT CAST(NULL AS BIGINT), category_code, category_id FROM model.dim_categories \
             WHERE category_id <> {UNKNOWN_CATEGORY_ID}"
        );
        known.add_rows(catalog, &categories).await?;
        let products = format!(
            "SELECT product_id, CAST(NULL AS VARCHAR), category_id FROM model.dim_products \
             WHERE category_id <> {UNKNOWN_CATEGORY_ID}"
        );
        known.add_rows(catalog, &products).await?;
        if !days.is_empty() {
            let raw = format!(
                "SELECT DISTINCT product_id, COALESCE(category_code, ''), category_id FROM raw.events \
                 WHERE event_date IN ({}) AND regexp_like(category_id, '{EXACT_ID}')",
                date_list(days)
            );
            known.add_rows(catalog, &raw).await?;
        }
        Ok(known)
    }

    /// Adds the (product, code, id) rows of a query: a null product adds the category
    /// only, a null code the product's category only. Ids that are not 64-bit integers are
    /// skipped, and so are product ids (the cleaning rejects such rows).
    async fn add_rows(&mut self, catalog: &SqlCatalog, sql: &str) -> Result<()> {
        let mut stream = catalog.sql(sql).await?.execute_stream().await?;
        while let Some(batch) = stream.try_next().await? {
            let text = |c: usize| cast(batch.column(c), &DataType::Utf8);
            let (products, codes, ids) = (text(0)?, text(1)?, text(2)?);
            let (products, codes, ids) = (
                products.as_string::<i32>(),
                codes.as_string::<i32>(),
                ids.as_string::<i32>(),
            );
            for i in 0..batch.num_rows() {
                let Some(id) = (!ids.is_null(i))
                    .then(|| ids.value(i).trim().parse::<i64>().ok())
                    .flatten()
                else {
                    continue;
                };
                if !codes.is_null(i) {
                    self.insert(codes.value(i), id);
                }
                if !products.is_null(i)
                    && let Ok(product) = products.value(i).trim().parse::<i64>()
                {
                    self.insert_product(product, id);
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
    let (Some(first), Some(last)) = (days.iter().min(), days.iter().max()) else {
        return Ok(false);
    };
    if counted {
        // The ingests that touched the days' span (a file's days are a range).
        let sql = format!(
            "SELECT \
             COUNT(*) FILTER (WHERE scientific_category_ids > 0), \
             COUNT(*) FILTER (WHERE scientific_category_ids IS NULL) \
             FROM meta.ingests \
             WHERE first_date IS NULL OR (first_date <= DATE '{last}' AND last_date >= DATE '{first}')"
        );
        let batches = catalog.sql(&sql).await?.collect().await?;
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
    // Ingests recorded before they were counted: the raw rows say.
    let sql = format!(
        "SELECT COUNT(*) FROM raw.events WHERE event_date IN ({}) \
         AND regexp_like(category_id, '{SCIENTIFIC_SQL}')",
        date_list(days)
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
            known.repair(0, "electronics.smartphone", &printed("2.05301E+18")),
            Some(2_053_013_555_631_882_655)
        );
        // Another code: not that category.
        assert_eq!(known.repair(0, "computers", &printed("2.05301E+18")), None);
        // The audio id under the kitchen code: the code decides.
        assert_eq!(
            known.repair(0, "appliances.kitchen", &printed("2.05301E+18")),
            Some(2_053_013_554_658_804_075)
        );
        // Ambiguous: two furniture categories round to it.
        assert_eq!(known.repair(0, "furniture", &printed("2.05301E+18")), None);
        // With more digits printed, one of them.
        assert_eq!(
            known.repair(0, "furniture", &printed("2.05301355235194E+18")),
            Some(2_053_013_552_351_936_731)
        );
        // A value no known id rounds to.
        assert_eq!(
            known.repair(0, "electronics.smartphone", &printed("2.2E+18")),
            None
        );
        // A missing code is `unknown`.
        assert_eq!(
            known.repair(0, UNKNOWN, &printed("2.05301355334179E+18")),
            Some(2_053_013_553_341_792_533)
        );
    }

    #[test]
    fn the_products_own_categories_come_first() {
        const LIVING: i64 = 2_053_013_552_326_770_905;
        const BEDROOM: i64 = 2_053_013_552_351_936_731;
        const KITCHEN: i64 = 2_053_013_554_658_804_075;
        let mut known = KnownCategories::default();
        known.insert("furniture", LIVING);
        known.insert("furniture", BEDROOM);
        known.insert("appliances.kitchen", KITCHEN);
        known.insert_product(7, BEDROOM);
        known.insert_product(8, LIVING);
        known.insert_product(8, KITCHEN);
        known.insert_product(9, UNKNOWN_CATEGORY_ID);
        let printed = Scientific::parse("2.05301E+18").unwrap();
        // The code alone is ambiguous; the product's category is not.
        assert_eq!(known.repair(0, "furniture", &printed), None);
        assert_eq!(known.repair(7, "furniture", &printed), Some(BEDROOM));
        // The product and the code disagree: unknown, never a guess.
        assert_eq!(known.repair(7, "appliances.kitchen", &printed), None);
        // A code the lake does not know: the product says.
        assert_eq!(known.repair(7, "furniture.new", &printed), Some(BEDROOM));
        // Two of the product's round to it: the code picks one of them.
        assert_eq!(known.repair(8, "furniture", &printed), Some(LIVING));
        assert_eq!(
            known.repair(8, "appliances.kitchen", &printed),
            Some(KITCHEN)
        );
        // Two of the product's, and the code gives no third opinion.
        assert_eq!(known.repair(8, "computers", &printed), None);
        // The unknown member is no evidence; nor is a category that does not round to it.
        assert_eq!(
            known.repair(9, "appliances.kitchen", &printed),
            Some(KITCHEN)
        );
        let other = Scientific::parse("2.2E+18").unwrap();
        assert_eq!(known.repair(7, "furniture", &other), None);
    }
}
