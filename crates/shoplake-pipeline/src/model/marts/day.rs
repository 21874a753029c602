//! The day marts, folded from one day's fact rows in one pass: the day's funnel, its events
//! by hour and type, each product's events at each (category, brand, price), each user's
//! events.

use std::sync::Arc;

use hashbrown::HashMap;
use shoplake_lake::arrow::array::{ArrayRef, Date32Array, Int32Array, RecordBatch, StringArray};
use shoplake_lake::arrow::datatypes::{Decimal128Type, Int32Type, Int64Type};
use shoplake_lake::tables::{self, EVENT_TYPES};
use shoplake_lake::time::date_to_days;

use chrono::NaiveDate;

use crate::error::Result;
use crate::model::columns::{Counts, FACT, int, price, primitive};
use crate::texts::Texts;

/// The day's rows of each day mart, in their tables' schemas.
#[derive(Debug)]
pub struct DayMarts {
    /// `model.mart_funnel_daily` (one row, none for a day without events).
    pub funnel: Vec<RecordBatch>,
    /// `model.mart_hourly`.
    pub hourly: Vec<RecordBatch>,
    /// `model.mart_product_daily`.
    pub products: Vec<RecordBatch>,
    /// `model.mart_user_daily`.
    pub users: Vec<RecordBatch>,
}

/// A product's events at one (category, brand, price).
#[derive(Debug)]
struct ProductEntry {
    category_code: String,
    category_l1: String,
    brand: String,
    counts: Counts,
}

/// Folds the day's fact rows (`date`'s, in `model.fact_user_events` schema) into its marts.
pub fn day_marts(fact: &[RecordBatch], date: NaiveDate) -> Result<DayMarts> {
    let mut total = Counts::default();
    let mut hours = [[(0i64, 0i128); 4]; 24];
    let mut users: HashMap<i64, Counts> = HashMap::new();
    // Keyed by (product, category id, price cents); a row whose category code or brand
    // differs from the entry's (rare) goes to `others`, keyed by all of them.
    let mut products: HashMap<(i64, i64, i128), ProductEntry> = HashMap::new();
    let mut others: HashMap<(i64, i64, i128, String, String), ProductEntry> = HashMap::new();
    for batch in fact {
        let kind = Texts::of(batch, FACT, "event_type")?;
        let user = primitive::<Int64Type>(batch, "user_id")?;
        let product = primitive::<Int64Type>(batch, "product_id")?;
        let category = primitive::<Int64Type>(batch, "category_id")?;
        let code = Texts::of(batch, FACT, "category_code")?;
        let level = Texts::of(batch, FACT, "category_l1")?;
        let brand = Texts::of(batch, FACT, "brand")?;
        let cents = primitive::<Decimal128Type>(batch, "price")?;
        let hour = primitive::<Int32Type>(batch, "hour_of_day")?;
        for i in 0..batch.num_rows() {
            let (kind, cents) = (kind.value(i), cents.value(i));
            total.add(kind, cents)?;
            users.entry(user.value(i)).or_default().add(kind, cents)?;
            let t = EVENT_TYPES
                .iter()
                .position(|t| *t == kind)
                .expect("Counts::add accepted the type");
            let slot = &mut hours[(hour.value(i).clamp(0, 23)) as usize][t];
            slot.0 += 1;
            if t == 3 {
                slot.1 += cents;
            }
            let key = (product.value(i), category.value(i), cents);
            let (code, brand, level) = (code.value(i), brand.value(i), level.value(i));
            let entry = products.entry(key).or_insert_with(|| ProductEntry {
                category_code: code.to_string(),
                category_l1: level.to_string(),
                brand: brand.to_string(),
                counts: Counts::default(),
            });
            if entry.category_code == code && entry.brand == brand {
                entry.counts.add(kind, cents)?;
            } else {
                others
                    .entry((key.0, key.1, key.2, code.to_string(), brand.to_string()))
                    .or_insert_with(|| ProductEntry {
                        category_code: code.to_string(),
                        category_l1: level.to_string(),
                        brand: brand.to_string(),
                        counts: Counts::default(),
                    })
                    .counts
                    .add(kind, cents)?;
            }
        }
    }
    let day = date_to_days(date);
    let funnel = if total.events == 0 {
        Vec::new()
    } else {
        vec![funnel_batch(day, &total, &users)?]
    };
    Ok(DayMarts {
        funnel,
        hourly: if total.events == 0 {
            Vec::new()
        } else {
            vec![hourly_batch(day, &hours)?]
        },
        products: product_batches(day, products, others)?,
        users: user_batches(day, users)?,
    })
}

fn dates(day: i32, n: usize) -> ArrayRef {
    Arc::new(Date32Array::from(vec![day; n]))
}

/// The count columns of a mart (views, carts, removes, purchases, revenue).
fn counts(def: &tables::TableDef, values: &[&Counts]) -> Result<Vec<ArrayRef>> {
    Ok(vec![
        int(values.iter().map(|c| c.views)),
        int(values.iter().map(|c| c.carts)),
        int(values.iter().map(|c| c.removes)),
        int(values.iter().map(|c| c.purchases)),
        price(def, "revenue", values.iter().map(|c| c.revenue_cents))?,
    ])
}

fn funnel_batch(day: i32, total: &Counts, users: &HashMap<i64, Counts>) -> Result<RecordBatch> {
    let def = tables::mart_funnel_daily();
    let with = |f: fn(&Counts) -> i64| users.values().filter(|c| f(c) > 0).count() as i64;
    let mut columns = vec![dates(day, 1)];
    columns.extend(counts(&def, &[total])?);
    columns.extend([
        int(std::iter::once(users.len() as i64)),
        int(std::iter::once(with(|c| c.views))),
        int(std::iter::once(with(|c| c.carts))),
        int(std::iter::once(with(|c| c.removes))),
        int(std::iter::once(with(|c| c.purchases))),
    ]);
    Ok(RecordBatch::try_new(def.arrow_schema(), columns)?)
}

fn hourly_batch(day: i32, hours: &[[(i64, i128); 4]; 24]) -> Result<RecordBatch> {
    let def = tables::mart_hourly();
    let mut hour = Vec::new();
    let mut kind = Vec::new();
    let mut events = Vec::new();
    let mut revenue = Vec::new();
    for (h, types) in hours.iter().enumerate() {
        for (t, (n, cents)) in types.iter().enumerate() {
            if *n > 0 {
                hour.push(h as i32);
                kind.push(EVENT_TYPES[t]);
                events.push(*n);
                revenue.push(*cents);
            }
        }
    }
    let n = hour.len();
    let columns: Vec<ArrayRef> = vec![
        dates(day, n),
        Arc::new(Int32Array::from(hour)),
        Arc::new(StringArray::from(kind)),
        int(events.into_iter()),
        price(&def, "revenue", revenue.into_iter())?,
    ];
    Ok(RecordBatch::try_new(def.arrow_schema(), columns)?)
}

/// Rows per batch of the day marts.
const CHUNK: usize = 64 * 1024;

fn product_batches(
    day: i32,
    products: HashMap<(i64, i64, i128), ProductEntry>,
    others: HashMap<(i64, i64, i128, String, String), ProductEntry>,
) -> Result<Vec<RecordBatch>> {
    let def = tables::mart_product_daily();
    let mut rows: Vec<((i64, i64, i128), ProductEntry)> = products
        .into_iter()
        .filter(|(_, e)| e.counts.events > 0)
        .chain(
            others
                .into_iter()
                .map(|((p, c, cents, _, _), e)| ((p, c, cents), e)),
        )
        .collect();
    // In key order, so that a day's files are the same on every run.
    rows.sort_unstable_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| a.1.category_code.cmp(&b.1.category_code))
            .then_with(|| a.1.brand.cmp(&b.1.brand))
    });
    let mut out = Vec::new();
    for chunk in rows.chunks(CHUNK) {
        let text = |f: fn(&ProductEntry) -> &str| -> ArrayRef {
            Arc::new(StringArray::from_iter_values(
                chunk.iter().map(|(_, e)| f(e)),
            ))
        };
        let mut columns = vec![
            dates(day, chunk.len()),
            int(chunk.iter().map(|(k, _)| k.0)),
            int(chunk.iter().map(|(k, _)| k.1)),
            text(|e| &e.category_code),
            text(|e| &e.category_l1),
            text(|e| &e.brand),
            price(&def, "price", chunk.iter().map(|(k, _)| k.2))?,
        ];
        let counted: Vec<&Counts> = chunk.iter().map(|(_, e)| &e.counts).collect();
        columns.extend(counts(&def, &counted)?);
        out.push(RecordBatch::try_new(def.arrow_schema(), columns)?);
    }
    Ok(out)
}

fn user_batches(day: i32, users: HashMap<i64, Counts>) -> Result<Vec<RecordBatch>> {
    let def = tables::mart_user_daily();
    let mut rows: Vec<(i64, Counts)> = users.into_iter().collect();
    rows.sort_unstable_by_key(|(u, _)| *u);
    let mut out = Vec::new();
    for chunk in rows.chunks(CHUNK) {
        let mut columns = vec![
            dates(day, chunk.len()),
            int(chunk.iter().map(|(u, _)| *u)),
            int(chunk.iter().map(|(_, c)| c.events)),
        ];
        let counted: Vec<&Counts> = chunk.iter().map(|(_, c)| c).collect();
        columns.extend(counts(&def, &counted)?);
        out.push(RecordBatch::try_new(def.arrow_schema(), columns)?);
    }
    Ok(out)
}
