//! `shoplake oltp simulate`: live app traffic against the store's schema.
//!
//! Every tick (a tenth of a second) is one transaction of several statements, as an app
//! server's request batch would be: new sign-ups, new sessions, the events of the sessions in
//! progress (views, carts, removals, purchases, each purchase taking a unit of stock), and, at
//! a steady rate whatever the event rate, what else an app does: price changes, profile edits,
//! a late channel attribution, a price correction on an event, new products, brands and
//! categories and the delisting of unused ones, a bounced session removed, and users deleting
//! their account (the database cascades to their sessions and events). So change data capture
//! sees inserts, updates and deletes on every table, in multi-statement transactions.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use tokio_postgres::{Client, Transaction};

use crate::error::{OltpError, Result};
use crate::schema::require_schema;
use crate::synthetic;

/// How long a tick is.
const TICK: Duration = Duration::from_millis(100);

/// Simulation settings.
#[derive(Debug, Clone, Copy)]
pub struct SimulateOptions {
    /// Events per second.
    pub rate: u64,
    /// How long to run.
    pub duration: Duration,
    /// Random seed (the same seed, database and rate give the same choices).
    pub seed: u64,
}

/// What a simulation did: rows changed per table and operation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SimulateReport {
    /// (table, op) -> rows, op one of insert, update, delete (cascaded deletes not counted).
    pub changes: BTreeMap<(String, String), u64>,
    /// Transactions committed.
    pub transactions: u64,
    /// Events inserted.
    pub events: u64,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Ticks that could not keep up (their transaction took longer than a tick).
    pub late_ticks: u64,
}

impl SimulateReport {
    fn add(&mut self, table: &str, op: &str, rows: u64) {
        if rows > 0 {
            *self
                .changes
                .entry((table.to_string(), op.to_string()))
                .or_default() += rows;
        }
    }

    /// Rows changed in `table` by `op`.
    pub fn count(&self, table: &str, op: &str) -> u64 {
        self.changes
            .get(&(table.to_string(), op.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// Events per second achieved.
    pub fn events_per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.events as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// A session in progress: its id, and how many more events it will have.
struct Visit {
    session: String,
    user: i64,
    remaining: u32,
    carted: Vec<(i64, String)>,
}

/// The ids the simulation chooses from.
struct Pools {
    /// (product, price text).
    products: Vec<(i64, String)>,
    users: Vec<i64>,
    /// Users the simulation created (the ones that may delete their account).
    new_users: Vec<i64>,
    brands: Vec<i64>,
    categories: Vec<i64>,
    /// Products, brands and categories it created and nothing refers to yet.
    unused_products: Vec<i64>,
    unused_brands: Vec<i64>,
    unused_categories: Vec<i64>,
}

fn q(what: &'static str) -> impl Fn(tokio_postgres::Error) -> OltpError {
    move |e| OltpError::sql(what, e)
}

async fn read_pools(client: &Client) -> Result<Pools> {
    let ids = |rows: Vec<tokio_postgres::Row>| -> Vec<i64> {
        rows.iter().map(|r| r.get::<_, i64>(0)).collect()
    };
    let products = client
        .query(
            "SELECT product_id, price::text FROM products ORDER BY random() LIMIT 5000",
            &[],
        )
        .await
        .map_err(q("reading products"))?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let users = ids(client
        .query(
            "SELECT user_id FROM users ORDER BY random() LIMIT 5000",
            &[],
        )
        .await
        .map_err(q("reading users"))?);
    let brands = ids(client
        .query(
            "SELECT brand_id FROM brands ORDER BY random() LIMIT 1000",
            &[],
        )
        .await
        .map_err(q("reading brands"))?);
    let categories = ids(client
        .query(
            "SELECT category_id FROM categories ORDER BY random() LIMIT 1000",
            &[],
        )
        .await
        .map_err(q("reading categories"))?);
    Ok(Pools {
        products,
        users,
        new_users: Vec::new(),
        brands,
        categories,
        unused_products: Vec::new(),
        unused_brands: Vec::new(),
        unused_categories: Vec::new(),
    })
}

/// Plays traffic for `options.duration`.
pub async fn simulate(client: &mut Client, options: SimulateOptions) -> Result<SimulateReport> {
    require_schema(client).await?;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(options.seed);
    let mut pools = read_pools(client).await?;
    let mut report = SimulateReport::default();
    if pools.brands.is_empty() || pools.categories.is_empty() || pools.products.is_empty() {
        seed_catalog(client, &mut pools, &mut rng, &mut report).await?;
    }
    let started = Instant::now();
    let mut visits: Vec<Visit> = Vec::new();
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let ticks_per_second = 1.0 / TICK.as_secs_f64();
    let events_per_tick = options.rate as f64 / ticks_per_second;
    let mut owed = 0.0f64;
    while started.elapsed() < options.duration {
        ticker.tick().await;
        let tick_started = Instant::now();
        owed += events_per_tick;
        let events = owed.floor() as usize;
        owed -= events as f64;
        let tx = client
            .transaction()
            .await
            .map_err(q("starting a transaction"))?;
        tick(
            &tx,
            events,
            ticks_per_second,
            &mut visits,
            &mut pools,
            &mut rng,
            &mut report,
        )
        .await?;
        tx.commit().await.map_err(q("committing"))?;
        report.transactions += 1;
        if tick_started.elapsed() > TICK {
            report.late_ticks += 1;
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// A catalog to sell from when the database has none.
async fn seed_catalog(
    client: &mut Client,
    pools: &mut Pools,
    rng: &mut Xoshiro256PlusPlus,
    report: &mut SimulateReport,
) -> Result<()> {
    let tx = client.transaction().await.map_err(q("seeding"))?;
    let root: i64 = tx
        .query_one(
            "INSERT INTO categories (category_name) VALUES ('electronics') RETURNING category_id",
            &[],
        )
        .await
        .map_err(q("seeding categories"))?
        .get(0);
    report.add("categories", "insert", 1);
    for leaf in ["smartphone", "audio", "tablet", "camera"] {
        let id: i64 = tx
            .query_one(
                "INSERT INTO categories (category_name, parent_id) VALUES ($1, $2) RETURNING category_id",
                &[&leaf, &root],
            )
            .await
            .map_err(q("seeding categories"))?
            .get(0);
        pools.categories.push(id);
        report.add("categories", "insert", 1);
    }
    for brand in ["acme", "globex", "initech", "umbrella", "hooli"] {
        let id: i64 = tx
            .query_one(
                "INSERT INTO brands (brand_name) VALUES ($1)
                 ON CONFLICT (brand_name) DO UPDATE SET brand_name = EXCLUDED.brand_name
                 RETURNING brand_id",
                &[&brand],
            )
            .await
            .map_err(q("seeding brands"))?
            .get(0);
        pools.brands.push(id);
        report.add("brands", "insert", 1);
    }
    for i in 0..50 {
        let brand = pools.brands[rng.random_range(0..pools.brands.len())];
        let category = pools.categories[rng.random_range(0..pools.categories.len())];
        let price = format!(
            "{}.{:02}",
            rng.random_range(5..900),
            rng.random_range(0..100)
        );
        let row = tx
            .query_one(
                "INSERT INTO products (name, brand_id, category_id, price, stock)
                 VALUES ($1, $2, $3, $4::text::numeric, 1000) RETURNING product_id, price::text",
                &[&format!("seed product {i}"), &brand, &category, &price],
            )
            .await
            .map_err(q("seeding products"))?;
        pools.products.push((row.get(0), row.get(1)));
        report.add("products", "insert", 1);
    }
    tx.commit().await.map_err(q("seeding"))?;
    report.transactions += 1;
    Ok(())
}

/// Whether something that happens `per_second` times a second on average happens this tick.
fn happens(rng: &mut Xoshiro256PlusPlus, per_second: f64, ticks_per_second: f64) -> bool {
    rng.random::<f64>() < per_second / ticks_per_second
}

/// One tick: one transaction.
async fn tick(
    tx: &Transaction<'_>,
    events: usize,
    ticks_per_second: f64,
    visits: &mut Vec<Visit>,
    pools: &mut Pools,
    rng: &mut Xoshiro256PlusPlus,
    report: &mut SimulateReport,
) -> Result<()> {
    // New visits to keep about four events per visit in progress.
    let wanted = events.div_ceil(4).max(usize::from(events > 0));
    if visits.len() < wanted {
        let n = wanted - visits.len();
        // One visit in twenty is a new sign-up.
        let signups = (0..n).filter(|_| rng.random_range(0..20) == 0).count()
            + usize::from(pools.users.is_empty() && n > 0);
        if signups > 0 {
            let names: Vec<String> = (0..signups)
                .map(|_| synthetic::user_name(rng.random::<u32>() as i64))
                .collect();
            let emails: Vec<String> = (0..signups)
                .map(|_| format!("sim.{:016x}@example.com", rng.random::<u64>()))
                .collect();
            let rows = tx
                .query(
                    "INSERT INTO users (name, email, created_at)
                     SELECT n, e, now() FROM unnest($1::text[], $2::text[]) AS t(n, e)
                     RETURNING user_id",
                    &[&names, &emails],
                )
                .await
                .map_err(q("signing up users"))?;
            for r in &rows {
                let id: i64 = r.get(0);
                pools.users.push(id);
                pools.new_users.push(id);
            }
            report.add("users", "insert", rows.len() as u64);
        }
        let users: Vec<i64> = (0..n)
            .map(|_| pools.users[rng.random_range(0..pools.users.len())])
            .collect();
        let devices: Vec<&str> = (0..n)
            .map(|_| synthetic::device_type(rng.random::<u128>()))
            .collect();
        let channels: Vec<&str> = (0..n)
            .map(|_| synthetic::channel(rng.random::<u128>()))
            .collect();
        let rows = tx
            .query(
                "INSERT INTO sessions (user_id, device_type, channel, started_at)
                 SELECT u, d, c, now() FROM unnest($1::bigint[], $2::text[], $3::text[]) AS t(u, d, c)
                 RETURNING session_id::text",
                &[&users, &devices, &channels],
            )
            .await
            .map_err(q("starting sessions"))?;
        report.add("sessions", "insert", rows.len() as u64);
        for (r, user) in rows.iter().zip(&users) {
            visits.push(Visit {
                user: *user,
                session: r.get(0),
                remaining: rng.random_range(1..=8),
                carted: Vec::new(),
            });
        }
    }

    // The events, spread over the visits in progress.
    let mut sessions = Vec::with_capacity(events);
    let mut products = Vec::with_capacity(events);
    let mut types = Vec::with_capacity(events);
    let mut prices = Vec::with_capacity(events);
    let mut bought = Vec::new();
    for i in 0..events {
        if visits.is_empty() {
            break;
        }
        let v = i % visits.len();
        let visit = &mut visits[v];
        let roll = rng.random_range(0..100);
        let (product, price, kind) = if roll < 8 && !visit.carted.is_empty() {
            let (p, price) = visit.carted.remove(rng.random_range(0..visit.carted.len()));
            if rng.random_range(0..3) == 0 {
                (p, price, "remove_from_cart")
            } else {
                bought.push(p);
                (p, price, "purchase")
            }
        } else {
            let (p, price) = pools.products[rng.random_range(0..pools.products.len())].clone();
            if roll < 20 {
                visit.carted.push((p, price.clone()));
                (p, price, "cart")
            } else {
                (p, price, "view")
            }
        };
        sessions.push(visit.session.clone());
        products.push(product);
        types.push(kind);
        prices.push(price);
        visit.remaining = visit.remaining.saturating_sub(1);
    }
    visits.retain(|v| v.remaining > 0);
    if !sessions.is_empty() {
        let n = tx
            .execute(
                "INSERT INTO events (session_id, product_id, event_type, event_time, price)
                 SELECT s::uuid, p, t::event_type, clock_timestamp(), pr::numeric
                 FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[]) AS x(s, p, t, pr)",
                &[&sessions, &products, &types, &prices],
            )
            .await
            .map_err(q("inserting events"))?;
        report.add("events", "insert", n);
        report.events += n;
    }
    if !bought.is_empty() {
        let n = tx
            .execute(
                "UPDATE products SET stock = greatest(stock - 1, 0) WHERE product_id = ANY($1::bigint[])",
                &[&bought],
            )
            .await
            .map_err(q("taking stock"))?;
        report.add("products", "update", n);
    }

    maintenance(tx, ticks_per_second, visits, pools, rng, report).await
}

/// What an app does besides events, at a steady rate.
async fn maintenance(
    tx: &Transaction<'_>,
    tps: f64,
    visits: &mut Vec<Visit>,
    pools: &mut Pools,
    rng: &mut Xoshiro256PlusPlus,
    report: &mut SimulateReport,
) -> Result<()> {
    if happens(rng, 2.0, tps) {
        // A price change of -20 % to +20 %.
        let i = rng.random_range(0..pools.products.len());
        let factor = format!("{:.2}", rng.random_range(0.8..1.2));
        let row = tx
            .query_opt(
                "UPDATE products SET price = greatest(round(price * $2::text::numeric, 2), 0.01)
                 WHERE product_id = $1 RETURNING price::text",
                &[&pools.products[i].0, &factor],
            )
            .await
            .map_err(q("changing a price"))?;
        if let Some(row) = row {
            pools.products[i].1 = row.get(0);
            report.add("products", "update", 1);
        }
    }
    if happens(rng, 1.0, tps) && !pools.users.is_empty() {
        let user = pools.users[rng.random_range(0..pools.users.len())];
        let n = tx
            .execute(
                "UPDATE users SET name = $2, email = 'edited.' || user_id || '.' || $3 || '@example.com'
                 WHERE user_id = $1",
                &[
                    &user,
                    &synthetic::user_name(rng.random::<u32>() as i64),
                    &format!("{:08x}", rng.random::<u32>()),
                ],
            )
            .await
            .map_err(q("editing a profile"))?;
        report.add("users", "update", n);
    }
    if happens(rng, 1.0, tps) && !visits.is_empty() {
        // A session's channel attributed late (a campaign's redirect resolved).
        let session = visits[rng.random_range(0..visits.len())].session.clone();
        let n = tx
            .execute(
                "UPDATE sessions SET channel = $1 WHERE session_id = $2::text::uuid",
                &[&synthetic::channel(rng.random::<u128>()), &session],
            )
            .await
            .map_err(q("attributing a session"))?;
        report.add("sessions", "update", n);
    }
    if happens(rng, 1.0, tps) {
        // A price correction on the latest event.
        let n = tx
            .execute(
                "UPDATE events SET price = greatest(price - 0.01, 0)
                 WHERE event_id = (SELECT max(event_id) FROM events)",
                &[],
            )
            .await
            .map_err(q("correcting an event"))?;
        report.add("events", "update", n);
    }
    if happens(rng, 0.5, tps) && !pools.users.is_empty() {
        // A bounced visit: a session with no event, removed.
        let session: String = tx
            .query_one(
                "INSERT INTO sessions (user_id, device_type, channel, started_at)
                 VALUES ($1, 'mobile', 'direct', now()) RETURNING session_id::text",
                &[&pools.users[rng.random_range(0..pools.users.len())]],
            )
            .await
            .map_err(q("starting a bounced session"))?
            .get(0);
        report.add("sessions", "insert", 1);
        let n = tx
            .execute(
                "DELETE FROM sessions s WHERE s.session_id = $1::text::uuid
                 AND NOT EXISTS (SELECT 1 FROM events e WHERE e.session_id = s.session_id)",
                &[&session],
            )
            .await
            .map_err(q("removing a bounced session"))?;
        report.add("sessions", "delete", n);
    }
    if happens(rng, 0.5, tps) && !pools.new_users.is_empty() {
        // An account deleted: its sessions and events go with it (ON DELETE CASCADE).
        let user = pools
            .new_users
            .swap_remove(rng.random_range(0..pools.new_users.len()));
        pools.users.retain(|u| *u != user);
        // Its visits in progress end with it.
        visits.retain(|v| v.user != user);
        let n = tx
            .execute("DELETE FROM users WHERE user_id = $1", &[&user])
            .await
            .map_err(q("deleting an account"))?;
        report.add("users", "delete", n);
    }
    if happens(rng, 0.5, tps) {
        // A new product; some are delisted before anyone sees them.
        let brand = pools.brands[rng.random_range(0..pools.brands.len())];
        let category = pools.categories[rng.random_range(0..pools.categories.len())];
        let price = format!(
            "{}.{:02}",
            rng.random_range(5..900),
            rng.random_range(0..100)
        );
        let row = tx
            .query_one(
                "INSERT INTO products (name, brand_id, category_id, price, stock)
                 VALUES ($1, $2, $3, $4::text::numeric, $5) RETURNING product_id, price::text",
                &[
                    &format!("new product {:06x}", rng.random::<u32>() & 0xff_ffff),
                    &brand,
                    &category,
                    &price,
                    &rng.random_range(0i64..200),
                ],
            )
            .await
            .map_err(q("adding a product"))?;
        report.add("products", "insert", 1);
        if rng.random_range(0..2) == 0 {
            pools.products.push((row.get(0), row.get(1)));
        } else {
            pools.unused_products.push(row.get(0));
        }
    }
    if happens(rng, 0.5, tps)
        && let Some(product) = pools.unused_products.pop()
    {
        let n = tx
            .execute(
                "DELETE FROM products p WHERE p.product_id = $1
                 AND NOT EXISTS (SELECT 1 FROM events e WHERE e.product_id = p.product_id)",
                &[&product],
            )
            .await
            .map_err(q("delisting a product"))?;
        report.add("products", "delete", n);
    }
    if happens(rng, 0.5, tps) {
        let name = format!("brand {:08x}", rng.random::<u32>());
        let id: i64 = tx
            .query_one(
                "INSERT INTO brands (brand_name) VALUES ($1)
                 ON CONFLICT (brand_name) DO UPDATE SET brand_name = EXCLUDED.brand_name
                 RETURNING brand_id",
                &[&name],
            )
            .await
            .map_err(q("adding a brand"))?
            .get(0);
        report.add("brands", "insert", 1);
        pools.unused_brands.push(id);
    }
    if happens(rng, 0.5, tps)
        && let Some(&brand) = pools.unused_brands.last()
    {
        let n = tx
            .execute(
                "UPDATE brands SET brand_name = brand_name || ' (renamed)' WHERE brand_id = $1
                 AND brand_name NOT LIKE '% (renamed)'",
                &[&brand],
            )
            .await
            .map_err(q("renaming a brand"))?;
        report.add("brands", "update", n);
    }
    if happens(rng, 0.5, tps) && !pools.unused_brands.is_empty() {
        let brand = pools.unused_brands.remove(0);
        let n = tx
            .execute(
                "DELETE FROM brands b WHERE b.brand_id = $1
                 AND NOT EXISTS (SELECT 1 FROM products p WHERE p.brand_id = b.brand_id)",
                &[&brand],
            )
            .await
            .map_err(q("removing a brand"))?;
        report.add("brands", "delete", n);
    }
    if happens(rng, 0.5, tps) {
        let parent = pools.categories[rng.random_range(0..pools.categories.len())];
        let id: i64 = tx
            .query_one(
                "INSERT INTO categories (category_name, parent_id) VALUES ($1, $2) RETURNING category_id",
                &[&format!("new{:04x}", rng.random::<u16>()), &parent],
            )
            .await
            .map_err(q("adding a category"))?
            .get(0);
        report.add("categories", "insert", 1);
        pools.unused_categories.push(id);
    }
    if happens(rng, 0.5, tps)
        && let Some(&category) = pools.unused_categories.last()
    {
        let n = tx
            .execute(
                "UPDATE categories SET category_name = category_name || '_x' WHERE category_id = $1",
                &[&category],
            )
            .await
            .map_err(q("renaming a category"))?;
        report.add("categories", "update", n);
    }
    if happens(rng, 0.5, tps) && !pools.unused_categories.is_empty() {
        let category = pools.unused_categories.remove(0);
        let n = tx
            .execute(
                "DELETE FROM categories c WHERE c.category_id = $1
                 AND NOT EXISTS (SELECT 1 FROM products p WHERE p.category_id = c.category_id)
                 AND NOT EXISTS (SELECT 1 FROM categories k WHERE k.parent_id = c.category_id)",
                &[&category],
            )
            .await
            .map_err(q("removing a category"))?;
        report.add("categories", "delete", n);
    }
    Ok(())
}
