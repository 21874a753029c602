//! One transaction of the loader: the new rows of every table as `COPY` text, and the
//! product updates.

use std::collections::HashMap;
use std::fmt::Write as _;

use bytes::Bytes;
use futures::SinkExt;
use tokio_postgres::{Client, Transaction};

use super::LoadReport;
use crate::error::{OltpError, Result};
use crate::synthetic;

/// Rows of one batch, in `COPY` text format.
#[derive(Default)]
pub(super) struct Batch {
    users: String,
    brands: String,
    categories: Vec<(i64, Option<String>, Option<i64>)>,
    products: String,
    /// product -> (brand, category, price in cents), the last seen in the batch.
    updates: HashMap<i64, (Option<i64>, Option<i64>, i128)>,
    sessions: String,
    events: String,
    counts: Counts,
    /// Events in the row buffers now (the counts go on when rows are discarded).
    buffered_events: usize,
}

#[derive(Default, Clone, Copy)]
struct Counts {
    users: u64,
    brands: u64,
    categories: u64,
    products: u64,
    updates: u64,
    sessions: u64,
    events: u64,
}

/// Appends `value` escaped for COPY's text format.
fn field(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

fn opt_id(out: &mut String, id: Option<i64>) {
    match id {
        Some(id) => {
            let _ = write!(out, "{id}");
        }
        None => out.push_str("\\N"),
    }
}

/// Cents as a decimal with two places (`1050.54`).
pub(crate) fn cents(out: &mut String, cents: i128) {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.unsigned_abs();
    let _ = write!(out, "{sign}{}.{:02}", c / 100, c % 100);
}

impl Batch {
    pub(super) fn events(&self) -> usize {
        self.buffered_events
    }

    pub(super) fn is_empty(&self) -> bool {
        self.buffered_events == 0
            && self.users.is_empty()
            && self.brands.is_empty()
            && self.categories.is_empty()
            && self.products.is_empty()
            && self.updates.is_empty()
            && self.sessions.is_empty()
    }

    /// Drops the rows of lines an earlier load committed, keeping their events in the count
    /// (the database holds them) but nothing derived (the database held it before this run).
    pub(super) fn discard_rows(&mut self) {
        let events = self.counts.events;
        *self = Batch::default();
        self.counts.events = events;
    }

    pub(super) fn user(&mut self, user_id: i64, first_event: &str) {
        let out = &mut self.users;
        let _ = write!(out, "{user_id}\t");
        field(out, &synthetic::user_name(user_id));
        out.push('\t');
        field(out, &synthetic::user_email(user_id));
        out.push('\t');
        field(out, first_event);
        out.push('\n');
        self.counts.users += 1;
    }

    pub(super) fn brand(&mut self, brand_id: i64, name: &str) {
        let _ = write!(self.brands, "{brand_id}\t");
        field(&mut self.brands, name);
        self.brands.push('\n');
        self.counts.brands += 1;
    }

    pub(super) fn category(&mut self, id: i64, name: Option<&str>, parent: Option<i64>) {
        self.categories.push((id, name.map(str::to_string), parent));
        self.counts.categories += 1;
    }

    #[cfg(test)]
    pub(super) fn category_rows(&self) -> Vec<(i64, Option<String>, Option<i64>)> {
        self.categories.clone()
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn product(
        &mut self,
        product_id: i64,
        name: &str,
        brand_id: Option<i64>,
        category_id: Option<i64>,
        price_cents: i128,
        stock: i64,
    ) {
        let out = &mut self.products;
        let _ = write!(out, "{product_id}\t");
        field(out, name);
        out.push('\t');
        opt_id(out, brand_id);
        out.push('\t');
        opt_id(out, category_id);
        out.push('\t');
        cents(out, price_cents);
        let _ = writeln!(out, "\t{stock}");
        self.counts.products += 1;
    }

    pub(super) fn product_update(
        &mut self,
        product_id: i64,
        brand_id: Option<i64>,
        category_id: Option<i64>,
        price_cents: i128,
    ) {
        if self
            .updates
            .insert(product_id, (brand_id, category_id, price_cents))
            .is_none()
        {
            self.counts.updates += 1;
        }
    }

    pub(super) fn session(
        &mut self,
        session_id: &str,
        user_id: i64,
        device: &str,
        channel: &str,
        started_at: &str,
    ) {
        let out = &mut self.sessions;
        field(out, session_id);
        let _ = write!(out, "\t{user_id}\t{device}\t{channel}\t");
        field(out, started_at);
        out.push('\n');
        self.counts.sessions += 1;
    }

    pub(super) fn event(
        &mut self,
        session_id: &str,
        product_id: i64,
        event_type: &str,
        event_time: &str,
        price_cents: i128,
    ) {
        let out = &mut self.events;
        field(out, session_id);
        let _ = write!(out, "\t{product_id}\t{event_type}\t");
        field(out, event_time);
        out.push('\t');
        cents(out, price_cents);
        out.push('\n');
        self.counts.events += 1;
        self.buffered_events += 1;
    }

    /// Adds this batch's counts to the report.
    pub(super) fn add_to(&self, report: &mut LoadReport) {
        let c = self.counts;
        report.users += c.users;
        report.brands += c.brands;
        report.categories += c.categories;
        report.products += c.products;
        report.product_updates += c.updates;
        report.sessions += c.sessions;
        report.events += c.events;
    }

    /// Writes the batch in one transaction, with the load's progress (`lines_through` lines
    /// of the file done; `finished` on the last batch).
    pub(super) async fn write(
        &self,
        client: &mut Client,
        hash: &str,
        source: &str,
        lines_through: u64,
        finished: bool,
    ) -> Result<()> {
        let tx = client
            .transaction()
            .await
            .map_err(|e| OltpError::sql("starting a load transaction", e))?;
        copy(
            &tx,
            "users",
            "COPY users (user_id, name, email, created_at) FROM STDIN",
            &self.users,
        )
        .await?;
        copy(
            &tx,
            "brands",
            "COPY brands (brand_id, brand_name) FROM STDIN",
            &self.brands,
        )
        .await?;
        let mut categories = String::new();
        for (id, name, parent) in &self.categories {
            let _ = write!(categories, "{id}\t");
            match name {
                Some(n) => field(&mut categories, n),
                None => categories.push_str("\\N"),
            }
            categories.push('\t');
            opt_id(&mut categories, *parent);
            categories.push('\n');
        }
        copy(
            &tx,
            "categories",
            "COPY categories (category_id, category_name, parent_id) FROM STDIN",
            &categories,
        )
        .await?;
        copy(
            &tx,
            "products",
            "COPY products (product_id, name, brand_id, category_id, price, stock) FROM STDIN",
            &self.products,
        )
        .await?;
        if !self.updates.is_empty() {
            tx.batch_execute(
                "CREATE TEMP TABLE IF NOT EXISTS shoplake_product_updates (
                     product_id bigint PRIMARY KEY, brand_id bigint, category_id bigint,
                     price numeric(10, 2)
                 ) ON COMMIT DELETE ROWS",
            )
            .await
            .map_err(|e| OltpError::sql("preparing product updates", e))?;
            let mut rows = String::new();
            let mut ids: Vec<_> = self.updates.keys().copied().collect();
            ids.sort_unstable();
            for id in ids {
                let (brand, category, price) = self.updates[&id];
                let _ = write!(rows, "{id}\t");
                opt_id(&mut rows, brand);
                rows.push('\t');
                opt_id(&mut rows, category);
                rows.push('\t');
                cents(&mut rows, price);
                rows.push('\n');
            }
            copy(
                &tx,
                "product updates",
                "COPY shoplake_product_updates FROM STDIN",
                &rows,
            )
            .await?;
            tx.execute(
                "UPDATE products p SET brand_id = u.brand_id, category_id = u.category_id,
                        price = u.price
                 FROM shoplake_product_updates u WHERE p.product_id = u.product_id",
                &[],
            )
            .await
            .map_err(|e| OltpError::sql("updating products", e))?;
        }
        copy(
            &tx,
            "sessions",
            "COPY sessions (session_id, user_id, device_type, channel, started_at) FROM STDIN",
            &self.sessions,
        )
        .await?;
        copy(
            &tx,
            "events",
            "COPY events (session_id, product_id, event_type, event_time, price) FROM STDIN",
            &self.events,
        )
        .await?;
        let lines = lines_through as i64;
        tx.execute(
            "INSERT INTO shoplake_loads (content_hash, source, lines_done, finished)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (content_hash) DO UPDATE
             SET lines_done = EXCLUDED.lines_done, finished = EXCLUDED.finished,
                 updated_at = now()",
            &[&hash, &source, &lines, &finished],
        )
        .await
        .map_err(|e| OltpError::sql("recording the load's progress", e))?;
        tx.commit()
            .await
            .map_err(|e| OltpError::sql("committing a load batch", e))
    }
}

/// Copies `rows` (COPY text) with `statement`; nothing when there are none.
async fn copy(tx: &Transaction<'_>, table: &str, statement: &str, rows: &str) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let sink = tx
        .copy_in(statement)
        .await
        .map_err(|e| OltpError::sql(format!("copying {table}"), e))?;
    futures::pin_mut!(sink);
    sink.send(Bytes::copy_from_slice(rows.as_bytes()))
        .await
        .map_err(|e| OltpError::sql(format!("copying {table}"), e))?;
    sink.finish()
        .await
        .map_err(|e| OltpError::sql(format!("copying {table}"), e))?;
    Ok(())
}

/// Moves the id sequences past the ids the loader gave explicitly, so that the app's own
/// inserts (which omit them) do not collide.
pub(super) async fn set_sequences(client: &Client) -> Result<()> {
    for (table, key) in [
        ("users", "user_id"),
        ("brands", "brand_id"),
        ("products", "product_id"),
    ] {
        client
            .execute(
                &format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', '{key}'),
                            greatest((SELECT max({key}) FROM {table}), 1))"
                ),
                &[],
            )
            .await
            .map_err(|e| OltpError::sql(format!("moving the {table} id sequence"), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_escapes_and_prices_keep_cents() {
        let mut s = String::new();
        field(&mut s, "a\tb\\c\nd");
        assert_eq!(s, "a\\tb\\\\c\\nd");
        let mut p = String::new();
        cents(&mut p, 105054);
        p.push(' ');
        cents(&mut p, 7);
        p.push(' ');
        cents(&mut p, 0);
        assert_eq!(p, "1050.54 0.07 0.00");
    }
}
