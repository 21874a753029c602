//! `shoplake oltp load`: an export loaded into the store's schema the way the app would have
//! written it.
//!
//! The export is one row per event; the app's database is normalized. Reading the export in
//! order, the loader derives each user (at their first event), brand, category node, product
//! and session (at its first event) and writes them, with the events, in batches: one
//! transaction per batch, `COPY` for every table, parents before children. A product whose
//! brand, category or price changes is updated in the batch where the change is seen, before
//! that batch's events, so an event sees its product as of its batch.
//!
//! A line the schema cannot hold is counted under its reason, never dropped silently: the
//! cleaning rules' reasons (`malformed_row`, `bad_timestamp`, `null_session`, ...; a price of
//! 0.00 is a valid row for the app, and is loaded), `bad_session_id` (not a UUID) and
//! `session_of_another_user` (the session already belongs to another user). Lines loaded
//! plus lines counted equal the export's lines.
//!
//! A file is loaded once (by content hash, in `shoplake_loads`); a load that stopped (a crash,
//! a lost connection) resumes after its last committed batch, re-deriving the dimensions from
//! the lines before it without writing them again.

mod batch;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use shoplake_lake::Progress;
use shoplake_lake::tables::EXPORT_HEADER;
use shoplake_pipeline::clean::rules::{
    RawFields, RejectReason, RuleOptions, parse_cents, validate,
};
use tokio_postgres::Client;

use crate::error::{OltpError, Result};
use crate::schema::require_schema;
use crate::synthetic;
use batch::Batch;

/// Events per transaction.
pub const DEFAULT_BATCH_EVENTS: usize = 100_000;

/// Id of the first inner category node (a code prefix). Leaves keep the export's ids, which
/// are far below; ids from here up are the loader's.
pub const INNER_CATEGORY_BASE: i64 = 9_000_000_000_000_000_000;

/// What a load did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadReport {
    /// The file, as given.
    pub source: String,
    /// It had been loaded completely before: nothing was written.
    pub already_loaded: bool,
    /// Data lines in the export (the header excluded).
    pub lines: u64,
    /// Lines a previous, interrupted load had committed (written then, not now).
    pub resumed_after: u64,
    /// Events in the database from this export.
    pub events: u64,
    /// Lines that could not be placed, by reason.
    pub unplaced: BTreeMap<String, u64>,
    /// Users derived and written by this run (on a resumed load, not those written before).
    pub users: u64,
    /// Sessions derived.
    pub sessions: u64,
    /// Products derived.
    pub products: u64,
    /// Brands derived.
    pub brands: u64,
    /// Category nodes (leaves and their ancestors).
    pub categories: u64,
    /// Product updates written (a brand, category or price seen changed).
    pub product_updates: u64,
    /// Transactions committed.
    pub batches: u64,
    /// Wall time, seconds.
    pub seconds: f64,
}

impl LoadReport {
    /// Lines counted as unplaceable.
    pub fn unplaced_total(&self) -> u64 {
        self.unplaced.values().sum()
    }
}

/// Load settings.
#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    /// Events per transaction.
    pub batch_events: usize,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            batch_events: DEFAULT_BATCH_EVENTS,
        }
    }
}

/// A product as the database holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ProductState {
    brand_id: Option<i64>,
    category_id: Option<i64>,
    price_cents: i128,
}

/// What the database holds: read at the start, then kept up to date batch by batch.
struct Derived {
    users: HashSet<i64>,
    brands: HashMap<String, i64>,
    next_brand: i64,
    /// Inner nodes by code prefix (`electronics.audio`).
    inner: HashMap<String, i64>,
    next_inner: i64,
    leaves: HashSet<i64>,
    products: HashMap<i64, ProductState>,
    /// Session -> its user.
    sessions: HashMap<u128, i64>,
}

impl Default for Derived {
    fn default() -> Self {
        Derived {
            users: HashSet::new(),
            brands: HashMap::new(),
            next_brand: 1,
            inner: HashMap::new(),
            next_inner: INNER_CATEGORY_BASE,
            leaves: HashSet::new(),
            products: HashMap::new(),
            sessions: HashMap::new(),
        }
    }
}

impl Derived {
    /// Reads what the database already holds (an earlier export, the app's own rows).
    async fn read(client: &Client) -> Result<Derived> {
        let q = |what: &'static str| move |e| OltpError::sql(format!("reading {what}"), e);
        let mut d = Derived::default();
        for row in client
            .query("SELECT user_id FROM users", &[])
            .await
            .map_err(q("users"))?
        {
            d.users.insert(row.get(0));
        }
        for row in client
            .query("SELECT brand_name, brand_id FROM brands", &[])
            .await
            .map_err(q("brands"))?
        {
            let id: i64 = row.get(1);
            d.next_brand = d.next_brand.max(id + 1);
            d.brands.insert(row.get(0), id);
        }
        let mut nodes: HashMap<i64, (Option<String>, Option<i64>)> = HashMap::new();
        for row in client
            .query(
                "SELECT category_id, category_name, parent_id FROM categories",
                &[],
            )
            .await
            .map_err(q("categories"))?
        {
            nodes.insert(row.get(0), (row.get(1), row.get(2)));
        }
        for (id, _) in nodes.iter() {
            if *id >= INNER_CATEGORY_BASE {
                d.next_inner = d.next_inner.max(id + 1);
                let mut path = Vec::new();
                let mut at = Some(*id);
                while let Some(node) = at {
                    let Some((name, parent)) = nodes.get(&node) else {
                        break;
                    };
                    path.push(name.clone().unwrap_or_default());
                    at = *parent;
                    if path.len() > 64 {
                        break;
                    }
                }
                path.reverse();
                d.inner.insert(path.join("."), *id);
            } else {
                d.leaves.insert(*id);
            }
        }
        for row in client
            .query(
                "SELECT product_id, brand_id, category_id, (price * 100)::bigint FROM products",
                &[],
            )
            .await
            .map_err(q("products"))?
        {
            let cents: i64 = row.get(3);
            d.products.insert(
                row.get(0),
                ProductState {
                    brand_id: row.get(1),
                    category_id: row.get(2),
                    price_cents: cents as i128,
                },
            );
        }
        for row in client
            .query("SELECT session_id::text, user_id FROM sessions", &[])
            .await
            .map_err(q("sessions"))?
        {
            let text: String = row.get(0);
            if let Some(id) = parse_uuid(&text) {
                d.sessions.insert(id, row.get(1));
            }
        }
        Ok(d)
    }
}

/// Loads `path` (CSV, or gzip-compressed CSV) into the database.
pub async fn load_export(
    client: &mut Client,
    path: &Path,
    options: LoadOptions,
    progress: &dyn Progress,
) -> Result<LoadReport> {
    require_schema(client).await?;
    let started = Instant::now();
    let source = path.display().to_string();
    let read_err = |reason: String| OltpError::Read {
        path: source.clone(),
        reason,
    };
    let hash = {
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || shoplake_ingest::files::content_hash(&path))
            .await
            .map_err(|e| read_err(e.to_string()))?
            .map_err(|e| read_err(e.to_string()))?
    };
    let row = client
        .query_opt(
            "SELECT lines_done, finished FROM shoplake_loads WHERE content_hash = $1",
            &[&hash],
        )
        .await
        .map_err(|e| OltpError::sql("reading shoplake_loads", e))?;
    let (done_before, finished) = row.map_or((0i64, false), |r| (r.get(0), r.get(1)));
    // One load of a file at a time (the lock goes with the connection).
    let locked: bool = client
        .query_one(
            "SELECT pg_try_advisory_lock(hashtextextended($1, 7))",
            &[&hash],
        )
        .await
        .map_err(|e| OltpError::sql("locking the load", e))?
        .get(0);
    if !locked {
        return Err(OltpError::NotReady(format!(
            "another `shoplake oltp load` of {source} is running on this database"
        )));
    }
    let mut report = LoadReport {
        source: source.clone(),
        ..LoadReport::default()
    };
    if finished {
        report.already_loaded = true;
        report.lines = done_before as u64;
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    }
    report.resumed_after = done_before as u64;

    let bytes = std::fs::metadata(path)
        .map_err(|e| read_err(e.to_string()))?
        .len();
    let read = Arc::new(AtomicU64::new(0));
    let reader = open_export(path, read.clone()).map_err(|e| read_err(e.to_string()))?;
    // The parser runs on a blocking thread and hands whole batches over a small channel.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Parsed>>(2);
    let batch_events = options.batch_events.max(1);
    let skip = done_before as u64;
    let derived = Derived::read(client).await?;
    let parser =
        tokio::task::spawn_blocking(move || parse(reader, derived, batch_events, skip, tx));

    progress.start(
        &format!("oltp load {}", file_name(path)),
        Some(bytes),
        "bytes",
    );
    let mut shown = 0u64;
    let mut failure = None;
    while let Some(parsed) = rx.recv().await {
        let parsed = match parsed {
            Ok(p) => p,
            Err(e) => {
                failure = Some(e);
                break;
            }
        };
        if parsed.replay {
            // Lines committed by the interrupted load: counted, not written again.
        } else if !parsed.batch.is_empty() || parsed.last {
            parsed
                .batch
                .write(client, &hash, &source, parsed.lines_through, parsed.last)
                .await?;
            // Crash-safety tests stop the process here (SHOPLAKE_CRASH_AFTER_COMMITS).
            shoplake_pipeline::crash_switch::committed();
            report.batches += 1;
        }
        parsed.batch.add_to(&mut report);
        for (reason, n) in &parsed.unplaced {
            *report.unplaced.entry(reason.to_string()).or_default() += n;
        }
        report.lines = parsed.lines_through;
        let now = read.load(Ordering::Relaxed);
        progress.advance(now.saturating_sub(shown));
        shown = now;
    }
    drop(rx);
    let header = parser
        .await
        .map_err(|e| read_err(format!("the reader stopped: {e}")))?;
    if let Some(e) = failure {
        return Err(e);
    }
    header?;
    batch::set_sequences(client).await?;
    client
        .execute(
            "SELECT pg_advisory_unlock(hashtextextended($1, 7))",
            &[&hash],
        )
        .await
        .map_err(|e| OltpError::sql("unlocking the load", e))?;
    report.seconds = started.elapsed().as_secs_f64();
    progress.finish(&format!(
        "{} events loaded, {} lines not placed",
        report.events,
        report.unplaced_total()
    ));
    Ok(report)
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// One batch as the parser hands it over.
struct Parsed {
    batch: Batch,
    unplaced: BTreeMap<&'static str, u64>,
    /// Data lines read up to the end of this batch.
    lines_through: u64,
    /// The lines were committed by an earlier load: count only.
    replay: bool,
    /// The last batch of the file.
    last: bool,
}

/// A reader that counts the bytes read from the file (before decompression).
struct Counted<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

fn open_export(path: &Path, read: Arc<AtomicU64>) -> std::io::Result<Box<dyn Read + Send>> {
    let mut file = std::fs::File::open(path)?;
    let mut magic = [0u8; 2];
    let n = file.read(&mut magic)?;
    use std::io::Seek;
    file.seek(std::io::SeekFrom::Start(0))?;
    let counted = Counted { inner: file, read };
    Ok(if n == 2 && magic == [0x1f, 0x8b] {
        Box::new(BufReader::with_capacity(
            1 << 20,
            flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 20, counted)),
        ))
    } else {
        Box::new(BufReader::with_capacity(1 << 20, counted))
    })
}

/// Reads the export, derives, and sends batches; runs on a blocking thread.
fn parse(
    reader: Box<dyn Read + Send>,
    mut derived: Derived,
    batch_events: usize,
    skip: u64,
    tx: tokio::sync::mpsc::Sender<Result<Parsed>>,
) -> Result<()> {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(reader);
    let mut record = csv::ByteRecord::new();
    let fail = |reason: String| OltpError::Read {
        path: "the export".into(),
        reason,
    };
    match csv.read_byte_record(&mut record) {
        Ok(true) => {
            let header: Vec<&[u8]> = record.iter().collect();
            let want: Vec<&[u8]> = EXPORT_HEADER.split(',').map(str::as_bytes).collect();
            if header != want {
                let e = fail(format!(
                    "the first line is not the export's header `{EXPORT_HEADER}`"
                ));
                let _ = tx.blocking_send(Err(fail(e.to_string())));
                return Err(e);
            }
        }
        Ok(false) => {
            let e = fail("the file is empty (no header line)".into());
            let _ = tx.blocking_send(Err(fail(e.to_string())));
            return Err(e);
        }
        Err(e) => {
            let e = fail(e.to_string());
            let _ = tx.blocking_send(Err(fail(e.to_string())));
            return Err(e);
        }
    }
    let mut batch = Batch::default();
    let mut unplaced: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut lines = 0u64;
    let options = RuleOptions::default();
    loop {
        let mut malformed = false;
        let more = match csv.read_byte_record(&mut record) {
            Ok(more) => more,
            Err(e) if e.is_io_error() => {
                let e = fail(e.to_string());
                let _ = tx.blocking_send(Err(fail(e.to_string())));
                return Err(e);
            }
            // A CSV-level error (invalid quoting, say) is a malformed line.
            Err(_) => {
                malformed = true;
                true
            }
        };
        let replay = lines < skip;
        if more {
            lines += 1;
            let placed = if malformed {
                Err(RejectReason::MalformedRow.code())
            } else {
                place(&record, &options, &mut derived, &mut batch)
            };
            if let Err(reason) = placed {
                *unplaced.entry(reason).or_default() += 1;
            }
            if replay {
                // Committed before: the database has it, only the counts are wanted.
                batch.discard_rows();
            }
        }
        let replay = replay && more;
        // A replayed stretch ends exactly where the interrupted load committed.
        let cut = if replay {
            lines == skip
        } else {
            batch.events() >= batch_events
        };
        if cut || !more {
            let parsed = Parsed {
                batch: std::mem::take(&mut batch),
                unplaced: std::mem::take(&mut unplaced),
                lines_through: lines,
                replay: replay && more,
                last: !more,
            };
            if tx.blocking_send(Ok(parsed)).is_err() {
                return Ok(());
            }
        }
        if !more {
            return Ok(());
        }
    }
}

/// Places one export line: the event and whatever it brings that is new. `Err` is the reason
/// it cannot be placed.
fn place(
    record: &csv::ByteRecord,
    options: &RuleOptions,
    derived: &mut Derived,
    batch: &mut Batch,
) -> std::result::Result<(), &'static str> {
    if record.len() != 9 {
        return Err(RejectReason::MalformedRow.code());
    }
    let mut fields = [""; 9];
    for (slot, raw) in fields.iter_mut().zip(record.iter()) {
        *slot = std::str::from_utf8(raw).map_err(|_| RejectReason::MalformedRow.code())?;
        // PostgreSQL's text cannot hold a NUL.
        if slot.contains('\0') {
            return Err(RejectReason::MalformedRow.code());
        }
    }
    let f = RawFields::from_fields(fields);
    let typed = match validate(&f, options) {
        Ok(e) => Typed {
            product_id: e.product_id,
            category_id: (e.category_mangled.is_none()).then_some(e.category_id),
            price_cents: e.price_cents,
            user_id: e.user_id,
        },
        // A free item is a valid row for the app: the lake's rules reject it later, as they
        // do on the file path.
        Err(r) if r.reason == RejectReason::NonPositivePrice && parse_cents(f.price) == Some(0) => {
            Typed {
                product_id: f.product_id.parse().map_err(|_| "bad_product_id")?,
                category_id: f.category_id.parse().ok(),
                price_cents: parse_cents(f.price).ok_or("bad_price")?,
                user_id: f.user_id.parse().map_err(|_| "bad_user_id")?,
            }
        }
        Err(r) => return Err(r.reason.code()),
    };
    let session = parse_uuid(f.user_session.trim()).ok_or("bad_session_id")?;
    if derived
        .sessions
        .get(&session)
        .is_some_and(|owner| *owner != typed.user_id)
    {
        return Err("session_of_another_user");
    }
    let event_time = f.event_time;

    if derived.users.insert(typed.user_id) {
        batch.user(typed.user_id, event_time);
    }
    let brand = f.brand.trim();
    let brand_id = if brand.is_empty() {
        None
    } else {
        let id = match derived.brands.get(brand) {
            Some(id) => *id,
            None => {
                let id = derived.next_brand;
                derived.next_brand += 1;
                derived.brands.insert(brand.to_string(), id);
                batch.brand(id, brand);
                id
            }
        };
        Some(id)
    };
    let category_id = match typed.category_id {
        Some(id) => {
            if derived.leaves.insert(id) {
                category_path(id, f.category_code.trim(), derived, batch);
            }
            Some(id)
        }
        None => None,
    };
    let known_price = derived
        .products
        .get(&typed.product_id)
        .map(|p| p.price_cents);
    let state = ProductState {
        brand_id,
        category_id,
        // An event at 0.00 says nothing of the list price.
        price_cents: if typed.price_cents > 0 {
            typed.price_cents
        } else {
            known_price.unwrap_or(0)
        },
    };
    match derived.products.get_mut(&typed.product_id) {
        None => {
            derived.products.insert(typed.product_id, state);
            let leaf = f
                .category_code
                .trim()
                .rsplit('.')
                .next()
                .filter(|s| !s.is_empty());
            batch.product(
                typed.product_id,
                &synthetic::product_name(
                    typed.product_id,
                    (!brand.is_empty()).then_some(brand),
                    leaf,
                ),
                state.brand_id,
                state.category_id,
                state.price_cents,
                synthetic::stock(typed.product_id),
            );
        }
        Some(known) => {
            // A mangled category id says nothing of the product's category.
            let seen = ProductState {
                category_id: state.category_id.or(known.category_id),
                ..state
            };
            if seen != *known {
                *known = seen;
                batch.product_update(
                    typed.product_id,
                    seen.brand_id,
                    seen.category_id,
                    seen.price_cents,
                );
            }
        }
    }
    if let std::collections::hash_map::Entry::Vacant(v) = derived.sessions.entry(session) {
        v.insert(typed.user_id);
        batch.session(
            f.user_session.trim(),
            typed.user_id,
            synthetic::device_type(session),
            synthetic::channel(session),
            event_time,
        );
    }
    batch.event(
        f.user_session.trim(),
        typed.product_id,
        f.event_type,
        event_time,
        typed.price_cents,
    );
    Ok(())
}

/// The typed values of a placeable line.
struct Typed {
    product_id: i64,
    /// None when the export's id cannot be read (a spreadsheet's scientific notation).
    category_id: Option<i64>,
    price_cents: i128,
    user_id: i64,
}

/// Adds the leaf `id` for `code`, and the inner nodes of its prefixes not seen yet.
fn category_path(id: i64, code: &str, derived: &mut Derived, batch: &mut Batch) {
    if code.is_empty() {
        batch.category(id, None, None);
        return;
    }
    let segments: Vec<&str> = code.split('.').collect();
    let mut parent: Option<i64> = None;
    let mut prefix = String::new();
    for segment in &segments[..segments.len() - 1] {
        if !prefix.is_empty() {
            prefix.push('.');
        }
        prefix.push_str(segment);
        let node = match derived.inner.get(&prefix) {
            Some(node) => *node,
            None => {
                let next = derived.next_inner;
                derived.next_inner += 1;
                derived.inner.insert(prefix.clone(), next);
                batch.category(next, Some(segment), parent);
                next
            }
        };
        parent = Some(node);
    }
    batch.category(id, segments.last().copied(), parent);
}

/// A UUID in its hyphenated (or plain hexadecimal) form, as 128 bits.
pub fn parse_uuid(text: &str) -> Option<u128> {
    let hex: String = if text.len() == 36 {
        let b = text.as_bytes();
        if b[8] != b'-' || b[13] != b'-' || b[18] != b'-' || b[23] != b'-' {
            return None;
        }
        text.chars().filter(|c| *c != '-').collect()
    } else if text.len() == 32 {
        text.to_string()
    } else {
        return None;
    };
    if !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    u128::from_str_radix(&hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_parse() {
        assert_eq!(
            parse_uuid("2f7b6d5e-0a8b-4c3e-9d51-8a1c2f6e7b90"),
            Some(0x2f7b6d5e0a8b4c3e9d518a1c2f6e7b90)
        );
        assert_eq!(
            parse_uuid("2f7b6d5e0a8b4c3e9d518a1c2f6e7b90"),
            Some(0x2f7b6d5e0a8b4c3e9d518a1c2f6e7b90)
        );
        assert_eq!(parse_uuid("2f7b6d5e-0a8b-4c3e-9d51-8a1c2f6e7b9"), None);
        assert_eq!(parse_uuid("zf7b6d5e-0a8b-4c3e-9d51-8a1c2f6e7b90"), None);
        assert_eq!(parse_uuid(""), None);
    }

    #[test]
    fn category_codes_become_a_tree() {
        let mut derived = Derived::default();
        let mut batch = Batch::default();
        category_path(7, "electronics.audio.headphone", &mut derived, &mut batch);
        category_path(8, "electronics.audio", &mut derived, &mut batch);
        category_path(9, "", &mut derived, &mut batch);
        let rows = batch.category_rows();
        let e = INNER_CATEGORY_BASE;
        assert_eq!(
            rows,
            vec![
                (e, Some("electronics".to_string()), None),
                (e + 1, Some("audio".to_string()), Some(e)),
                (7, Some("headphone".to_string()), Some(e + 1)),
                (8, Some("audio".to_string()), Some(e)),
                (9, None, None),
            ]
        );
    }
}
