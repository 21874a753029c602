//! Synthetic e-commerce behaviour events in the store's export format.
//!
//! The real source (the data dictionary, `raw.events`) is a monthly CSV export of tens of
//! millions of rows that cannot be shipped with the project. This module writes a seeded,
//! deterministic stand-in with the same header, field formats, distributions and known quirks,
//! so that ingest, the lake tables and the pipeline can be developed, tested and benchmarked at
//! any size:
//!
//! * `event_time` sorted, inside `[start, start + days)`, with a daily cycle (night low, evening
//!   peak), weekend traffic ~15 % lower and an optional near-empty day (a logging gap);
//! * users (a Zipf-like active pool) come back in several sessions over the window; a session
//!   is ~4.6 events on average with a long tail, events seconds to minutes apart; carts follow a
//!   view of the product, removals follow a cart, most purchases follow a cart;
//! * event types ~92.7 % view, ~4.9 % cart, ~0.85 % remove_from_cart, ~1.5 % purchase;
//! * a list of products (Zipf popularity) with a fixed category (19-digit id, dotted code,
//!   empty in ~10 % of rows), brand (empty in ~13 %) and a log-normal base price capped at
//!   2574.07, 0.00 in ~0.2 % of rows; one phone category is mislabelled
//!   `construction.tools.light` as in the real data;
//! * ~0.2 % exact duplicate rows, and a few rows without a `user_session`.
//!
//! Generation streams at several million rows per second in constant memory: only the open
//! sessions and the (capped) list of products are held.

mod background;
mod products;
mod sampling;
mod timeline;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chrono::{Days, NaiveDate};
use rand::{RngCore, SeedableRng};

use products::{PRICE_CAP_CENTS, Padded, ProductList};
use sampling::{Rng, ZipfInverse, below, geometric, mix64, threshold, threshold21, unit_open0};
use timeline::{Clock, Timeline};

/// The CSV header line of the store's export (without the line break).
pub(crate) const HEADER: &str = shoplake_lake::tables::EXPORT_HEADER;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateOptions {
    /// Number of data rows to write (the header is not counted; duplicate rows are).
    pub rows: u64,
    /// Seed of every random choice: the same options give byte-identical output.
    pub seed: u64,
    /// First day of the window (events start at its midnight, UTC).
    pub start: NaiveDate,
    /// Length of the window in days (at least 1).
    pub days: u32,
    /// 0-based index of a day that is almost empty (a logging gap), `None` for no gap.
    pub gap_day: Option<u32>,
}

impl Default for GenerateOptions {
    /// One million rows, seed 42, the 30 days of April 2020, no gap.
    fn default() -> Self {
        GenerateOptions {
            rows: 1_000_000,
            seed: 42,
            start: NaiveDate::from_ymd_opt(2020, 4, 1).expect("valid date"),
            days: 30,
            gap_day: None,
        }
    }
}

/// What was generated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateReport {
    /// Data rows written (equals `GenerateOptions::rows`).
    pub rows: u64,
    /// How many of those rows are exact duplicates of the row before them.
    pub duplicates: u64,
    /// Bytes written to the destination: for a `.gz` path the compressed size, otherwise the
    /// plain CSV size (header included).
    pub bytes: u64,
    /// `event_time` of the first row (empty when no rows were written).
    pub first_event: String,
    /// `event_time` of the last row (empty when no rows were written).
    pub last_event: String,
}

/// Why generation failed.
#[derive(thiserror::Error, Debug)]
pub enum GenerateError {
    /// Writing the output failed.
    #[error(
        "cannot write generated events to {}: {source}; check that the directory exists, is writable and has free space",
        path.display()
    )]
    Io {
        /// The output path (`<writer>` when writing to a caller-supplied writer).
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The options cannot be honoured; the message says which one to change.
    #[error("invalid generate options: {0}")]
    InvalidOptions(String),
}

/// Writes the events as CSV to `path`, gzip-compressed (fast level) when the path ends in
/// `.gz`, and calls `progress(rows_written_so_far)` every 65 536 rows and once at the end.
pub fn generate_to_path(
    opts: &GenerateOptions,
    path: &Path,
    progress: &mut dyn FnMut(u64),
) -> Result<GenerateReport, GenerateError> {
    validate(opts)?;
    let io_err = |source| GenerateError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::create(path).map_err(io_err)?;
    let counted = CountingWriter {
        inner: file,
        count: 0,
    };
    let gz = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    // Compressing and writing happen on a second thread, overlapping with generation.
    let (mut report, mut counted) = if gz {
        let enc = flate2::write::GzEncoder::new(counted, flate2::Compression::new(1));
        let mut out = background::BackgroundWriter::new(enc);
        let report = run(opts, &mut out, progress).map_err(io_err)?;
        let enc = out.finish().map_err(io_err)?;
        (report, enc.finish().map_err(io_err)?)
    } else {
        let mut out = background::BackgroundWriter::new(counted);
        let report = run(opts, &mut out, progress).map_err(io_err)?;
        (report, out.finish().map_err(io_err)?)
    };
    counted.flush().map_err(io_err)?;
    report.bytes = counted.count;
    Ok(report)
}

/// Writes the events as plain CSV to `out` (no compression), calling `progress` like
/// [`generate_to_path`]. `out` is written in large chunks and need not be buffered.
pub fn generate_to_writer(
    opts: &GenerateOptions,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> Result<GenerateReport, GenerateError> {
    validate(opts)?;
    let io_err = |source| GenerateError::Io {
        path: PathBuf::from("<writer>"),
        source,
    };
    let mut counted = CountingWriter {
        inner: out,
        count: 0,
    };
    let mut report = run(opts, &mut counted, progress).map_err(io_err)?;
    counted.flush().map_err(io_err)?;
    report.bytes = counted.count;
    Ok(report)
}

fn validate(opts: &GenerateOptions) -> Result<(), GenerateError> {
    let bad = |m: String| Err(GenerateError::InvalidOptions(m));
    if opts.days == 0 {
        return bad("days is 0; use at least 1 day".into());
    }
    if opts.days > MAX_DAYS {
        return bad(format!(
            "days is {}; use at most {MAX_DAYS} days",
            opts.days
        ));
    }
    let end = opts.start.checked_add_days(Days::new(opts.days as u64));
    if opts.start < min_date() || end.is_none_or(|e| e > max_date()) {
        return bad(format!(
            "the window {} + {} days is outside years 1000-9999; pick a start date in that range",
            opts.start, opts.days
        ));
    }
    if let Some(g) = opts.gap_day {
        if opts.days < 2 {
            return bad(
                "gap_day needs a window of at least 2 days; add days or drop gap_day".into(),
            );
        }
        if g >= opts.days {
            return bad(format!(
                "gap_day is {g} but the window has {} days (0-based index); use 0..={}",
                opts.days,
                opts.days - 1
            ));
        }
    }
    Ok(())
}

const MAX_DAYS: u32 = 36_600;

fn min_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(1000, 1, 1).expect("valid date")
}

fn max_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(9999, 12, 31).expect("valid date")
}

/// Counts the bytes that pass through to `inner`.
struct CountingWriter<W> {
    inner: W,
    count: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.inner.write_all(buf)?;
        self.count += buf.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

// ---- model parameters -------------------------------------------------------------------

/// Share of sessions that are short (browse a little) versus long (shopping around).
const SHORT_SESSION_SHARE: f64 = 0.85;
/// Mean events of a short / long session (overall mean ~4.6).
const SHORT_SESSION_MEAN: f64 = 3.0;
const LONG_SESSION_MEAN: f64 = 13.7;
/// Longest session (a safety cap on the geometric tail).
const MAX_SESSION_EVENTS: u32 = 5_000;

/// Per non-first event: when something is in the cart, chance to buy one of those products,
/// or to remove one.
const P_BUY_FROM_CART: f64 = 0.10;
const P_REMOVE_FROM_CART: f64 = 0.065;
/// Otherwise: chance to put the product being looked at into the cart, or to buy it directly.
const P_CART: f64 = 0.068;
const P_DIRECT_BUY: f64 = 0.0027;
/// A view is of a new product (by popularity) with this chance, else a look back at the
/// previous product or a refresh of the current one.
const P_NEW_PRODUCT: f64 = 0.72;
const P_BACK_TO_PREVIOUS: f64 = 0.5;
/// Most products a session keeps in its cart (the oldest is forgotten beyond that).
const CART_SLOTS: usize = 6;

/// Seconds between events of a session: 1 + exponential, mostly short, sometimes a pause.
const GAP_MEAN: f64 = 35.0;
const P_PAUSE: f64 = 0.08;
const PAUSE_MEAN: f64 = 300.0;

/// Per-row chances: an exact duplicate row, a 0.00 price.
const P_DUPLICATE: f64 = 0.002;
const P_ZERO_PRICE: f64 = 0.002;
/// Chance (per product and day) of a price change, and its largest size in percent.
const P_PRICE_CHANGE_PER_256: u64 = 13;
const PRICE_CHANGE_MAX_PCT: u64 = 8;
/// One row without a session per this many rows (in the first half of each block).
const ORPHAN_BLOCK: u64 = 200_000;

/// Users: pool size is rows / ROWS_PER_USER, with Zipf-Mandelbrot activity.
const ROWS_PER_USER: u64 = 25;
const USER_ZIPF_S: f64 = 0.9;
const USER_ZIPF_Q: f64 = 2.0;
/// Products: their number is rows / ROWS_PER_PRODUCT within these bounds.
const ROWS_PER_PRODUCT: u64 = 50;
const MIN_PRODUCTS: u64 = 1_000;
const MAX_PRODUCTS: u64 = 200_000;

/// Output chunk size.
const CHUNK: usize = 1 << 20;
/// Progress callback period (a power of two).
const PROGRESS_EVERY: u64 = 1 << 16;

/// Event types, as indices into [`Generator::kinds`].
const VIEW: usize = 0;
const CART: usize = 1;
const REMOVE: usize = 2;
const PURCHASE: usize = 3;
const KINDS: [&str; 4] = ["view", "cart", "remove_from_cart", "purchase"];

/// The output buffer: lines are assembled in place with fixed-size copies and the whole
/// chunk is handed to the writer when it is full.
struct OutBuf {
    data: Box<[u8]>,
    len: usize,
}

impl OutBuf {
    fn new() -> Self {
        OutBuf {
            data: vec![0u8; CHUNK + 4096].into_boxed_slice(),
            len: 0,
        }
    }

    /// Copies all `N` bytes of `src` but keeps only the first `keep` (the rest is padding that
    /// the next piece overwrites).
    #[inline(always)]
    fn put<const N: usize>(&mut self, src: &[u8; N], keep: usize) {
        self.data[self.len..self.len + N].copy_from_slice(src);
        self.len += keep;
    }

    #[inline(always)]
    fn padded<const N: usize>(&mut self, p: &Padded<N>) {
        self.put(&p.bytes, p.len as usize);
    }

    /// Repeats the bytes from `start` to the end (an exact duplicate of the last line).
    fn repeat_from(&mut self, start: usize) {
        let n = self.len - start;
        self.data.copy_within(start..self.len, self.len);
        self.len += n;
    }

    fn bytes(&self) -> &[u8] {
        &self.data[..self.len]
    }
}

/// An open session.
struct Session {
    /// The end of each line: `user_id,user_session` and the line break.
    tail: Padded<48>,
    /// Events still to emit, including the next one.
    remaining: u32,
    /// True until the first event is emitted.
    fresh: bool,
    /// Product being looked at, and the one before it.
    current: u32,
    previous: u32,
    /// Products in the cart (most recent last).
    cart: [u32; CART_SLOTS],
    cart_len: u8,
}

/// The streaming generator state.
struct Generator {
    rng: Rng,
    seed_mix: u64,
    products: ProductList,
    timeline: Timeline,
    clock: Clock,
    users: ZipfInverse,
    user_mask: u64,
    end: u32,
    /// Open sessions keyed by `(next event second << 32) | slot`.
    heap: BinaryHeap<Reverse<u64>>,
    slots: Vec<Session>,
    free: Vec<u32>,
    /// The next session to open: its start second and length.
    next_start: u32,
    next_len: u32,
    /// Events handed to sessions so far and the total to hand out (rows without duplicates).
    allocated: f64,
    target: f64,
    buf: OutBuf,
    num: itoa::Buffer,
    /// `event_type,` texts, padded.
    kinds: [Padded<24>; 4],
    thr_buy: u64,
    thr_remove: u64,
    thr_cart: u64,
    thr_direct: u64,
    thr_new: u64,
    thr_back: u64,
    thr_pause: u64,
    thr_short: u64,
    thr_dup21: u32,
    thr_zero21: u32,
}

fn run(
    opts: &GenerateOptions,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> io::Result<GenerateReport> {
    let mut g = Generator::new(opts);
    let header = format!("{HEADER}\n");
    g.buf.data[..header.len()].copy_from_slice(header.as_bytes());
    g.buf.len = header.len();

    let rows = opts.rows;
    let mut written: u64 = 0;
    let mut duplicates: u64 = 0;
    let mut first: Option<u32> = None;
    let mut last: u32 = 0;
    let mut orphan_block: u64 = 0;
    let mut next_orphan = g.orphan_position(0);

    while written < rows {
        // Open every session that starts before the earliest pending event.
        while g
            .heap
            .peek()
            .is_none_or(|r| g.next_start < (r.0 >> 32) as u32)
        {
            g.open_session();
        }
        let Reverse(key) = g.heap.pop().expect("a session was just opened");
        let t = (key >> 32) as u32;
        let slot = key as u32;
        first.get_or_insert(t);
        last = t;

        if written == next_orphan {
            g.write_orphan(t);
            written += 1;
            orphan_block += 1;
            next_orphan = g.orphan_position(orphan_block);
            if written.is_multiple_of(PROGRESS_EVERY) {
                progress(written);
            }
            if written == rows {
                g.free.push(slot);
                break;
            }
        }

        let line_start = g.buf.len;
        let coins = g.rng.next_u64();
        g.write_event(slot, t, coins);
        written += 1;
        if written.is_multiple_of(PROGRESS_EVERY) {
            progress(written);
        }
        if written < rows && (((coins >> 42) & 0x1F_FFFF) as u32) < g.thr_dup21 {
            g.buf.repeat_from(line_start);
            written += 1;
            duplicates += 1;
            if written.is_multiple_of(PROGRESS_EVERY) {
                progress(written);
            }
        }
        g.schedule(slot, t);

        if g.buf.len >= CHUNK {
            out.write_all(g.buf.bytes())?;
            g.buf.len = 0;
        }
    }
    out.write_all(g.buf.bytes())?;
    out.flush()?;
    if !written.is_multiple_of(PROGRESS_EVERY) || written == 0 {
        progress(written);
    }

    let mut fmt = |t: u32| String::from_utf8_lossy(&g.clock.format(t)[..23]).into_owned();
    let (first_event, last_event) = match first {
        Some(f) => (fmt(f), fmt(last)),
        None => (String::new(), String::new()),
    };
    Ok(GenerateReport {
        rows: written,
        duplicates,
        bytes: 0,
        first_event,
        last_event,
    })
}

impl Generator {
    fn new(opts: &GenerateOptions) -> Self {
        let seed_mix = mix64(opts.seed);
        let mut rng = Rng::seed_from_u64(seed_mix ^ 0x5E55_1011_0000_0001);
        let products = (opts.rows / ROWS_PER_PRODUCT).clamp(MIN_PRODUCTS, MAX_PRODUCTS) as usize;
        let product_list = ProductList::build(products, opts.seed);
        let timeline = Timeline::new(opts.start, opts.days, opts.gap_day, &mut rng);
        let pool = (opts.rows / ROWS_PER_USER).clamp(50, 1 << 28);
        let target = allocation_target(opts.rows, timeline.last_minute_share());
        let mut g = Generator {
            rng,
            seed_mix,
            products: product_list,
            timeline,
            clock: Clock::new(opts.start),
            users: ZipfInverse::new(pool, USER_ZIPF_Q, USER_ZIPF_S),
            user_mask: mix64(seed_mix ^ 0x0005_E125) & ((1 << 28) - 1),
            end: opts.days * 86_400,
            heap: BinaryHeap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            next_start: 0,
            next_len: 0,
            allocated: 0.0,
            target,
            buf: OutBuf::new(),
            num: itoa::Buffer::new(),
            kinds: KINDS.map(|k| Padded::new(&[k.as_bytes(), b","])),
            thr_buy: threshold(P_BUY_FROM_CART),
            thr_remove: threshold(P_BUY_FROM_CART + P_REMOVE_FROM_CART),
            thr_cart: threshold(P_CART),
            thr_direct: threshold(P_CART + P_DIRECT_BUY),
            thr_new: threshold(P_NEW_PRODUCT),
            thr_back: threshold(P_BACK_TO_PREVIOUS),
            thr_pause: threshold(P_PAUSE),
            thr_short: threshold(SHORT_SESSION_SHARE),
            thr_dup21: threshold21(P_DUPLICATE),
            thr_zero21: threshold21(P_ZERO_PRICE),
        };
        g.draw_next_session();
        g
    }

    /// Picks the length and start of the next session: sessions are laid out along the
    /// cumulative traffic curve in proportion to the events they will emit, so the rows fill
    /// the window exactly and follow its intensity.
    fn draw_next_session(&mut self) {
        let mean = if self.rng.next_u64() < self.thr_short {
            SHORT_SESSION_MEAN
        } else {
            LONG_SESSION_MEAN
        };
        let len = geometric(&mut self.rng, mean).min(MAX_SESSION_EVENTS);
        let u = (self.allocated / self.target).min(1.0 - 1e-12);
        self.next_start = self.timeline.time_at(u);
        self.next_len = len;
        self.allocated += len as f64;
    }

    fn open_session(&mut self) {
        let user_id = self.user_id();
        let uuid = uuid_text(self.rng.next_u64(), self.rng.next_u64());
        let tail = Padded::new(&[self.num.format(user_id).as_bytes(), b",", &uuid, b"\n"]);
        let product = self.products.sample(&mut self.rng);
        let session = Session {
            tail,
            remaining: self.next_len,
            fresh: true,
            current: product,
            previous: product,
            cart: [0; CART_SLOTS],
            cart_len: 0,
        };
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = session;
                s
            }
            None => {
                self.slots.push(session);
                (self.slots.len() - 1) as u32
            }
        };
        self.heap
            .push(Reverse(((self.next_start as u64) << 32) | slot as u64));
        self.draw_next_session();
    }

    /// A 9-digit user id (400000000..668435455) for a user drawn by activity.
    fn user_id(&mut self) -> u64 {
        let rank = self.users.sample(&mut self.rng);
        // A bijection on 28 bits, so distinct ranks give distinct ids.
        const MASK: u64 = (1 << 28) - 1;
        let mut x = rank & MASK;
        x = x.wrapping_mul(0x9E37_79B1) & MASK;
        x ^= x >> 13;
        x = x.wrapping_mul(0x85EB_CA77) & MASK;
        x ^= x >> 11;
        x ^= self.user_mask;
        400_000_000 + x
    }

    /// Row index of the session-less row of block `b` (or never, past the end).
    fn orphan_position(&self, b: u64) -> u64 {
        let off = mix64(self.seed_mix ^ 0x0E97_7900 ^ b) % (ORPHAN_BLOCK / 2);
        b.saturating_mul(ORPHAN_BLOCK).saturating_add(off)
    }

    /// Emits the next event of session `slot` at second `t`. `coins` holds per-row random bits.
    fn write_event(&mut self, slot: u32, t: u32, coins: u64) {
        let s = &mut self.slots[slot as usize];
        let rng = &mut self.rng;
        let (kind, product): (usize, u32) = if s.fresh {
            s.fresh = false;
            (VIEW, s.current)
        } else {
            let r = rng.next_u64();
            if s.cart_len > 0 && r < self.thr_remove {
                let i = below(rng, s.cart_len as u64) as usize;
                let p = s.cart[i];
                s.cart.copy_within(i + 1..s.cart_len as usize, i);
                s.cart_len -= 1;
                (if r < self.thr_buy { PURCHASE } else { REMOVE }, p)
            } else {
                let r = rng.next_u64();
                let in_cart = s.cart[..s.cart_len as usize].contains(&s.current);
                if r < self.thr_cart && !in_cart {
                    if s.cart_len as usize == CART_SLOTS {
                        s.cart.copy_within(1.., 0);
                        s.cart_len -= 1;
                    }
                    s.cart[s.cart_len as usize] = s.current;
                    s.cart_len += 1;
                    (CART, s.current)
                } else if r < self.thr_direct && !in_cart {
                    (PURCHASE, s.current)
                } else {
                    let r = rng.next_u64();
                    if r < self.thr_new {
                        s.previous = s.current;
                        s.current = self.products.sample(rng);
                    } else if (r << 20) < self.thr_back {
                        std::mem::swap(&mut s.previous, &mut s.current);
                    }
                    (VIEW, s.current)
                }
            }
        };

        let zero_price = ((coins & 0x1F_FFFF) as u32) < self.thr_zero21;
        let tail = s.tail;
        self.write_line(t, kind, product, zero_price, &tail);
    }

    /// Appends one line: `event_time,event_type,` + product fields + `price,` + `tail`.
    #[inline(always)]
    fn write_line(
        &mut self,
        t: u32,
        kind: usize,
        product: u32,
        zero_price: bool,
        tail: &Padded<48>,
    ) {
        let p = *self.products.product(product);
        let buf = &mut self.buf;
        buf.put(self.clock.format(t), 24);
        buf.padded(&self.kinds[kind]);
        buf.put(&p.id_text, p.id_len as usize);
        buf.padded(self.products.category_text(p.category));
        buf.padded(self.products.brand_text(p.brand));
        let cents = if zero_price {
            0
        } else {
            price_on_day(p.price, product, t / 86_400, self.seed_mix)
        };
        let price = price_text(cents);
        buf.padded(&price);
        buf.padded(tail);
    }

    /// Puts session `slot` back on the heap for its next event, or frees it.
    fn schedule(&mut self, slot: u32, t: u32) {
        let s = &mut self.slots[slot as usize];
        s.remaining -= 1;
        if s.remaining == 0 {
            self.free.push(slot);
            return;
        }
        let mean = if self.rng.next_u64() < self.thr_pause {
            PAUSE_MEAN
        } else {
            GAP_MEAN
        };
        let gap = 1 + (-unit_open0(&mut self.rng).ln() * mean).min(86_400.0) as u32;
        let next = t.saturating_add(gap);
        if next >= self.end {
            // The export ends at the window end: the rest of this session is cut off.
            self.free.push(slot);
            return;
        }
        self.heap.push(Reverse(((next as u64) << 32) | slot as u64));
    }

    /// A view without a session (the export has a handful of those).
    fn write_orphan(&mut self, t: u32) {
        let product = self.products.sample(&mut self.rng);
        let user_id = self.user_id();
        let tail = Padded::new(&[self.num.format(user_id).as_bytes(), b",\n"]);
        self.write_line(t, VIEW, product, false, &tail);
    }
}

/// How many events to hand out to sessions along the window so that `rows` lines are written
/// just before the window ends.
///
/// Sessions that start near the end lose the events that would fall after it; on average that
/// is the event rate at the end times the mean offset of an event from its session start. A
/// margin above that makes the row limit (not a shortage of events) end the output, so no
/// rows pile up at the last second.
fn allocation_target(rows: u64, last_minute_share: f64) -> f64 {
    let events = rows as f64 / (1.0 + P_DUPLICATE);
    let (p, m1, m2) = (SHORT_SESSION_SHARE, SHORT_SESSION_MEAN, LONG_SESSION_MEAN);
    let mean_len = p * m1 + (1.0 - p) * m2;
    // E[L^2] of 1 + Geometric with mean m is 2m^2 - m; an event's mean index is E[L(L-1)/2]/E[L].
    let mean_sq = p * (2.0 * m1 * m1 - m1) + (1.0 - p) * (2.0 * m2 * m2 - m2);
    let gaps_from_start = (mean_sq - mean_len) / 2.0 / mean_len;
    let mean_gap = 1.0 + (1.0 - P_PAUSE) * GAP_MEAN + P_PAUSE * PAUSE_MEAN;
    let rate_per_sec = events * last_minute_share / 60.0;
    let lost = rate_per_sec * gaps_from_start * mean_gap;
    let margin = 0.3 * lost + 3.0 * (lost + rows as f64 * P_DUPLICATE).sqrt() + 5.0;
    (events + lost + margin).max(1.0)
}

/// The price of a product on a given day: its base price, changed by a few percent on some
/// product-days, never above the cap.
#[inline]
fn price_on_day(base: u32, product: u32, day: u32, seed_mix: u64) -> u32 {
    let h = mix64(seed_mix ^ ((product as u64) << 24) ^ day as u64);
    if h & 0xFF >= P_PRICE_CHANGE_PER_256 {
        return base;
    }
    let pct = 1 + (h >> 8) % PRICE_CHANGE_MAX_PCT;
    let base = base as u64;
    let changed = if (h >> 40) & 1 == 0 {
        base + base * pct / 100
    } else {
        base - base * pct / 100
    };
    changed.clamp(1, PRICE_CAP_CENTS as u64) as u32
}

/// `cents` as a price with exactly two decimals and a trailing comma.
#[inline(always)]
fn price_text(cents: u32) -> Padded<16> {
    let mut bytes = [0u8; 16];
    let mut int = cents / 100;
    // Integer digits right-aligned in bytes[..10], then copied down.
    let mut i = 10;
    loop {
        i -= 1;
        bytes[i] = b'0' + (int % 10) as u8;
        int /= 10;
        if int == 0 {
            break;
        }
    }
    let c = cents % 100;
    bytes[10] = b'.';
    bytes[11] = b'0' + (c / 10) as u8;
    bytes[12] = b'0' + (c % 10) as u8;
    bytes[13] = b',';
    bytes.copy_within(i..14, 0);
    Padded {
        bytes,
        len: (14 - i) as u8,
    }
}

/// A version-4 UUID in lowercase 8-4-4-4-12 hex from 128 random bits.
fn uuid_text(hi: u64, lo: u64) -> [u8; 36] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let hi = (hi & !0xF000) | 0x4000; // version 4
    let lo = (lo & !(0b11 << 62)) | (0b10 << 62); // RFC 4122 variant
    let bits = ((hi as u128) << 64) | lo as u128;
    let mut out = [b'-'; 36];
    let mut nibble = 0;
    for (i, o) in out.iter_mut().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            continue;
        }
        *o = HEX[((bits >> (124 - 4 * nibble)) & 0xF) as usize];
        nibble += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_format() {
        let u = uuid_text(0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210);
        assert_eq!(&u, b"01234567-89ab-4def-bedc-ba9876543210");
    }

    #[test]
    fn price_format() {
        let text = |c| {
            let p = price_text(c);
            String::from_utf8(p.bytes[..p.len as usize].to_vec()).unwrap()
        };
        assert_eq!(text(105_054), "1050.54,");
        assert_eq!(text(7), "0.07,");
        assert_eq!(text(0), "0.00,");
        assert_eq!(text(257_407), "2574.07,");
    }

    #[test]
    fn rejects_bad_options() {
        let mut o = GenerateOptions {
            days: 0,
            ..Default::default()
        };
        assert!(matches!(
            validate(&o),
            Err(GenerateError::InvalidOptions(_))
        ));
        o.days = 5;
        o.gap_day = Some(5);
        assert!(matches!(
            validate(&o),
            Err(GenerateError::InvalidOptions(_))
        ));
        o.gap_day = Some(4);
        assert!(validate(&o).is_ok());
    }

    #[test]
    fn small_outputs_have_exact_row_counts() {
        for rows in [0u64, 1, 2, 7, 1000] {
            let opts = GenerateOptions {
                rows,
                days: 3,
                ..Default::default()
            };
            let mut out = Vec::new();
            let r = generate_to_writer(&opts, &mut out, &mut |_| {}).unwrap();
            let text = String::from_utf8(out).unwrap();
            assert_eq!(text.lines().count() as u64, rows + 1);
            assert_eq!(r.rows, rows);
            assert_eq!(r.bytes, text.len() as u64);
        }
    }
}
