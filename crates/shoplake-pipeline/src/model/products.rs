//! `model.dim_products` and `model.dim_categories`, folded together in one scan of the fact
//! table.
//!
//! Their "latest" attributes (a product's category, brand and price; a category's code) are
//! those of the last event by (event_time, event_id). DataFusion 55 evaluates
//! `last_value(... ORDER BY ...)` row by row through a general accumulator: on a month of
//! 66 M events the two SQL queries took about ten times as long as the scan alone, nearly all
//! of it in those aggregates (see bench/results/2026-11-28-66600000-at-917085d.md). Here each
//! row is compared with the product's and the category's latest so far and replaces it when
//! it is later, which is exact in any input order. A product's category is that of its latest
//! event whose category id is known: a row whose id a spreadsheet lost (the unknown member)
//! never hides the category the product's exact rows give it.
//!
//! Memory is one entry per product and per (category, product) pair: the store's catalogue,
//! not its traffic: about 250 bytes an entry, so some 50 MB for 200 k products.

use shoplake_lake::datafusion::common::{HashMap, HashSet};

use shoplake_lake::arrow::array::{ArrayRef, RecordBatch};
use shoplake_lake::arrow::datatypes::{Decimal128Type, Int64Type, TimestampMicrosecondType};
use shoplake_lake::tables::{self, UNKNOWN_CATEGORY_ID};

use super::columns::{Counts, FACT, counts, int, price, primitive, text, time};
use super::fact_user_events::category_levels;
use crate::clean::rules::UNKNOWN;
use crate::error::Result;
use crate::texts::Texts;

/// The two dimensions, each one batch in its table's schema, ordered by its key.
#[derive(Debug)]
pub struct ProductDimensions {
    /// `model.dim_products`.
    pub products: RecordBatch,
    /// `model.dim_categories`.
    pub categories: RecordBatch,
}

/// The (event_time, event_id) order of events.
type Instant = (i64, i64);

#[derive(Debug)]
struct Product {
    latest: Instant,
    /// Whether the category is known, and the instant of the row that gave it.
    category_from: (bool, Instant),
    category_id: i64,
    category_code: String,
    brand: String,
    last_price: i128,
    min_price: i128,
    max_price: i128,
    first_seen: i64,
    last_seen: i64,
    counts: Counts,
}

#[derive(Debug)]
struct Category {
    latest: Instant,
    code: String,
    counts: Counts,
}

/// The fold in progress: fact rows go in, in any order, the dimensions come out.
#[derive(Debug, Default)]
pub(crate) struct ProductFold {
    products: HashMap<i64, Product>,
    categories: HashMap<i64, Category>,
    /// (category, product) pairs seen, for each category's distinct products.
    pairs: HashSet<(i64, i64)>,
}

/// Copies `value` into `target`, reusing its allocation.
fn assign(target: &mut String, value: &str) {
    target.clear();
    target.push_str(value);
}

impl ProductFold {
    /// Folds a batch of fact rows (any order).
    pub(crate) fn add(&mut self, batch: &RecordBatch) -> Result<()> {
        let product = primitive::<Int64Type>(batch, "product_id")?;
        let category = primitive::<Int64Type>(batch, "category_id")?;
        let code = Texts::of(batch, FACT, "category_code")?;
        let brand = Texts::of(batch, FACT, "brand")?;
        let price = primitive::<Decimal128Type>(batch, "price")?;
        let time = primitive::<TimestampMicrosecondType>(batch, "event_time")?;
        let id = primitive::<Int64Type>(batch, "event_id")?;
        let kind = Texts::of(batch, FACT, "event_type")?;
        // Every column is declared non-null in the fact table.
        for i in 0..batch.num_rows() {
            let at = (time.value(i), id.value(i));
            let (product_id, category_id) = (product.value(i), category.value(i));
            let (code, brand, price) = (code.value(i), brand.value(i), price.value(i));
            let kind = kind.value(i);

            let p = self.products.entry(product_id).or_insert_with(|| Product {
                latest: (i64::MIN, i64::MIN),
                category_from: (false, (i64::MIN, i64::MIN)),
                category_id,
                category_code: String::new(),
                brand: String::new(),
                last_price: price,
                min_price: price,
                max_price: price,
                first_seen: at.0,
                last_seen: at.0,
                counts: Counts::default(),
            });
            if at > p.latest {
                p.latest = at;
                assign(&mut p.brand, brand);
                p.last_price = price;
            }
            let from = (category_id != UNKNOWN_CATEGORY_ID, at);
            if from > p.category_from {
                p.category_from = from;
                p.category_id = category_id;
                assign(&mut p.category_code, code);
            }
            p.min_price = p.min_price.min(price);
            p.max_price = p.max_price.max(price);
            p.first_seen = p.first_seen.min(at.0);
            p.last_seen = p.last_seen.max(at.0);
            p.counts.add(kind, price)?;

            let c = self
                .categories
                .entry(category_id)
                .or_insert_with(|| Category {
                    latest: (i64::MIN, i64::MIN),
                    code: String::new(),
                    counts: Counts::default(),
                });
            if at > c.latest {
                c.latest = at;
                // The unknown member keeps its name, whatever its rows' codes.
                let named = if category_id == UNKNOWN_CATEGORY_ID {
                    UNKNOWN
                } else {
                    code
                };
                assign(&mut c.code, named);
            }
            c.counts.add(kind, price)?;
            self.pairs.insert((category_id, product_id));
        }
        Ok(())
    }

    /// The two dimensions.
    pub(crate) fn finish(self) -> Result<ProductDimensions> {
        let mut products: Vec<(i64, Product)> = self.products.into_iter().collect();
        products.sort_unstable_by_key(|(k, _)| *k);
        let mut categories: Vec<(i64, Category)> = self.categories.into_iter().collect();
        categories.sort_unstable_by_key(|(k, _)| *k);
        let mut distinct: HashMap<i64, i64> = HashMap::new();
        for (category, _) in &self.pairs {
            *distinct.entry(*category).or_default() += 1;
        }

        let def = tables::dim_products();
        let mut columns: Vec<ArrayRef> = vec![
            int(products.iter().map(|(k, _)| *k)),
            int(products.iter().map(|(_, p)| p.category_id)),
            text(products.iter().map(|(_, p)| Some(p.category_code.as_str()))),
            text(products.iter().map(|(_, p)| Some(p.brand.as_str()))),
            price(
                &def,
                "last_price",
                products.iter().map(|(_, p)| p.last_price),
            )?,
            price(&def, "min_price", products.iter().map(|(_, p)| p.min_price))?,
            price(&def, "max_price", products.iter().map(|(_, p)| p.max_price))?,
            time(products.iter().map(|(_, p)| p.first_seen)),
            time(products.iter().map(|(_, p)| p.last_seen)),
        ];
        columns.extend(counts(&def, products.iter().map(|(_, p)| p.counts))?);
        let products = RecordBatch::try_new(def.arrow_schema(), columns)?;

        let def = tables::dim_categories();
        let levels: Vec<_> = categories
            .iter()
            .map(|(_, c)| category_levels(&c.code))
            .collect();
        let mut columns: Vec<ArrayRef> = vec![
            int(categories.iter().map(|(k, _)| *k)),
            text(categories.iter().map(|(_, c)| Some(c.code.as_str()))),
            text(levels.iter().map(|l| Some(l.0))),
            text(levels.iter().map(|l| l.1)),
            text(levels.iter().map(|l| l.2)),
            int(categories
                .iter()
                .map(|(k, _)| distinct.get(k).copied().unwrap_or(0))),
        ];
        columns.extend(counts(&def, categories.iter().map(|(_, c)| c.counts))?);
        let categories = RecordBatch::try_new(def.arrow_schema(), columns)?;
        Ok(ProductDimensions {
            products,
            categories,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::fact_user_events;
    use futures::TryStreamExt;
    use shoplake_lake::arrow::array::AsArray;
    use shoplake_lake::arrow::array::{
        Date32Array, Decimal128Array, Int64Array, StringArray, TimestampMicrosecondArray,
    };
    use shoplake_lake::arrow::compute::concat_batches;
    use shoplake_lake::datafusion::datasource::MemTable;
    use shoplake_lake::datafusion::prelude::SessionContext;
    use std::sync::Arc;

    use crate::model::reference_sql;

    /// Fact rows in a scrambled order, in several batches: products that change category,
    /// brand and price over time, events at the same instant (ties broken by event id),
    /// codes with one, two, three and four levels.
    fn facts(rows: usize) -> Vec<RecordBatch> {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let codes = ["unknown", "a.b", "a.b.c", "a.b.c.d", "x", "x.y.z"];
        let brands = ["acme", "unknown", "zeta", "nova"];
        let kinds = ["view", "cart", "remove_from_cart", "purchase"];
        let mut batches = Vec::new();
        for chunk in 0..rows.div_ceil(500) {
            let n = 500.min(rows - chunk * 500);
            let mut id = Vec::new();
            let mut time = Vec::new();
            let mut kind = Vec::new();
            let mut product = Vec::new();
            let mut category = Vec::new();
            let mut code = Vec::new();
            let mut brand = Vec::new();
            let mut price = Vec::new();
            for _ in 0..n {
                // Few distinct instants, so many events share one.
                time.push(1_585_699_200_000_000 + next(40) as i64 * 3_600_000_000);
                id.push(next(u64::MAX) as i64);
                kind.push(kinds[next(4) as usize]);
                product.push(next(30) as i64);
                let c = next(6) as usize;
                // Some rows in the unknown member, with the codes of their real categories.
                category.push(if next(17) == 0 {
                    UNKNOWN_CATEGORY_ID
                } else {
                    1000 + c as i64 + next(2) as i64 * 10
                });
                code.push(codes[c]);
                brand.push(brands[next(4) as usize]);
                price.push(1 + next(300_000) as i128);
            }
            let days: Vec<i32> = time
                .iter()
                .map(|t| shoplake_lake::time::day_of_micros(*t))
                .collect();
            let clean = RecordBatch::try_new(
                tables::clean_events().arrow_schema(),
                vec![
                    Arc::new(Int64Array::from(id)),
                    Arc::new(TimestampMicrosecondArray::from(time).with_timezone("UTC")),
                    Arc::new(StringArray::from(kind)),
                    Arc::new(Int64Array::from(product)),
                    Arc::new(Int64Array::from(category)),
                    Arc::new(StringArray::from(code)),
                    Arc::new(StringArray::from(brand)),
                    Arc::new(
                        Decimal128Array::from(price)
                            .with_precision_and_scale(10, 2)
                            .unwrap(),
                    ),
                    Arc::new(Int64Array::from(vec![7; n])),
                    Arc::new(StringArray::from(vec!["s"; n])),
                    Arc::new(Date32Array::from(days)),
                    Arc::new(StringArray::new_null(n)),
                ],
            )
            .unwrap();
            batches.extend(fact_user_events::from_clean(&[clean]).unwrap());
        }
        batches
    }

    /// A session with `batches` registered as `model.fact_user_events`.
    pub(crate) async fn context(batches: Vec<RecordBatch>) -> SessionContext {
        let ctx = SessionContext::new();
        ctx.sql("CREATE SCHEMA model").await.unwrap();
        // Two partitions, so the scan is read in parallel as in a lake.
        let half = batches.len() / 2;
        let (a, b) = batches.split_at(half);
        let table = MemTable::try_new(
            tables::fact_user_events().arrow_schema(),
            vec![a.to_vec(), b.to_vec()],
        )
        .unwrap();
        ctx.register_table("model.fact_user_events", Arc::new(table))
            .unwrap();
        ctx
    }

    /// The same rows in a Parquet file, read as the lake's tables are (strings as views).
    async fn parquet_context(batches: &[RecordBatch], dir: &std::path::Path) -> SessionContext {
        use shoplake_lake::datafusion::parquet::arrow::ArrowWriter;
        use shoplake_lake::datafusion::prelude::ParquetReadOptions;
        let path = dir.join("fact.parquet");
        let file = std::fs::File::create(&path).unwrap();
        let mut writer =
            ArrowWriter::try_new(file, tables::fact_user_events().arrow_schema(), None).unwrap();
        for b in batches {
            writer.write(b).unwrap();
        }
        writer.close().unwrap();
        let ctx = SessionContext::new();
        ctx.sql("CREATE SCHEMA model").await.unwrap();
        ctx.register_parquet(
            "model.fact_user_events",
            path.to_str().unwrap(),
            ParquetReadOptions::default(),
        )
        .await
        .unwrap();
        ctx
    }

    /// Both dimensions folded from `model.fact_user_events` as registered in `ctx`, in one
    /// scan (what the dimension build does a day at a time).
    pub(crate) async fn build_products(ctx: &SessionContext) -> ProductDimensions {
        let sql = "SELECT product_id, category_id, category_code, brand, price, event_time, \
                   event_id, event_type FROM model.fact_user_events";
        let mut stream = ctx.sql(sql).await.unwrap().execute_stream().await.unwrap();
        let mut fold = ProductFold::default();
        while let Some(batch) = stream.try_next().await.unwrap() {
            fold.add(&batch).unwrap();
        }
        fold.finish().unwrap()
    }

    async fn sql_answer(ctx: &SessionContext, sql: &str) -> RecordBatch {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        concat_batches(&batches[0].schema(), &batches).unwrap()
    }

    #[tokio::test]
    async fn equals_the_sql_definitions() {
        let facts = facts(20_000);
        let ctx = context(facts.clone()).await;
        let ours = build_products(&ctx).await;
        let dir = tempfile::tempdir().unwrap();
        let from_parquet = build_products(&parquet_context(&facts, dir.path()).await).await;
        assert_eq!(from_parquet.products, ours.products);
        assert_eq!(from_parquet.categories, ours.categories);
        assert_eq!(ours.products.num_rows(), 30);
        // Twelve categories and the unknown member, named `unknown`.
        assert_eq!(ours.categories.num_rows(), 13);
        let ids = ours.categories.column(0).as_primitive::<Int64Type>();
        assert_eq!(ids.value(0), UNKNOWN_CATEGORY_ID);
        let codes = ours.categories.column(1).as_string::<i32>();
        assert_eq!(codes.value(0), UNKNOWN);
        for (batch, sql) in [
            (&ours.products, reference_sql::dim_products()),
            (&ours.categories, reference_sql::dim_categories()),
        ] {
            let theirs = sql_answer(&ctx, &sql).await;
            assert_eq!(batch.num_columns(), theirs.num_columns());
            for (i, field) in batch.schema().fields().iter().enumerate() {
                assert_eq!(
                    batch.column(i).as_ref(),
                    theirs.column(i).as_ref(),
                    "{}",
                    field.name()
                );
            }
        }
    }

    #[tokio::test]
    async fn an_empty_fact_gives_empty_dimensions() {
        let ctx = context(Vec::new()).await;
        let ours = build_products(&ctx).await;
        assert_eq!(ours.products.num_rows(), 0);
        assert_eq!(ours.categories.num_rows(), 0);
    }
}
