//! Checks the synthetic event generator by re-parsing its output with plain string splitting:
//! format, ordering, distributions, session logic, determinism, gap days and gzip output.
//! Every figure is computed here from the CSV text, not from the generator's internals.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::OnceLock;

use shoplake_ingest::generate::{
    GenerateOptions, GenerateReport, generate_to_path, generate_to_writer,
};

const HEADER: &str =
    "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session";
const ROWS: u64 = 200_000;

fn opts(rows: u64, seed: u64) -> GenerateOptions {
    GenerateOptions {
        rows,
        seed,
        ..GenerateOptions::default()
    }
}

/// The main sample: 200k rows with the default window, written to a temp file and read back.
fn sample() -> &'static (String, GenerateReport, Vec<u64>) {
    static SAMPLE: OnceLock<(String, GenerateReport, Vec<u64>)> = OnceLock::new();
    SAMPLE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.csv");
        let mut calls = Vec::new();
        let report = generate_to_path(&opts(ROWS, 42), &path, &mut |n| calls.push(n)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(report.bytes, text.len() as u64);
        (text, report, calls)
    })
}

/// One parsed row (borrowing the text).
struct Row<'a> {
    time: &'a str,
    kind: &'a str,
    product: &'a str,
    category_id: &'a str,
    code: &'a str,
    brand: &'a str,
    price: &'a str,
    user: &'a str,
    session: &'a str,
}

fn rows(text: &str) -> Vec<Row<'_>> {
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(HEADER));
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 9, "line {l:?}");
            Row {
                time: f[0],
                kind: f[1],
                product: f[2],
                category_id: f[3],
                code: f[4],
                brand: f[5],
                price: f[6],
                user: f[7],
                session: f[8],
            }
        })
        .collect()
}

fn pct(n: usize, of: usize) -> f64 {
    100.0 * n as f64 / of as f64
}

fn assert_near(name: &str, value: f64, want: f64, tol: f64) {
    println!("{name}: {value:.3} (want {want} ± {tol})");
    assert!(
        (value - want).abs() <= tol,
        "{name} = {value:.3}, want {want} ± {tol}"
    );
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `YYYY-MM-DD HH:MM:SS UTC` with plausible ranges.
fn valid_time(t: &str) -> bool {
    let b = t.as_bytes();
    if b.len() != 23 || &t[19..] != " UTC" || b[4] != b'-' || b[7] != b'-' || b[10] != b' ' {
        return false;
    }
    if b[13] != b':' || b[16] != b':' {
        return false;
    }
    let num = |r: std::ops::Range<usize>| {
        t[r.clone()]
            .parse::<u32>()
            .ok()
            .filter(|_| is_digits(&t[r]))
    };
    matches!(
        (
            num(0..4),
            num(5..7),
            num(8..10),
            num(11..13),
            num(14..16),
            num(17..19)
        ),
        (
            Some(_),
            Some(1..=12),
            Some(1..=31),
            Some(0..=23),
            Some(0..=59),
            Some(0..=59)
        )
    )
}

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == b'-'
            } else {
                c.is_ascii_digit() || (b'a'..=b'f').contains(&c)
            }
        })
}

/// Named `generate` so that `cargo test -p shoplake-ingest generate` selects these tests.
mod generate {
    use super::*;

    #[test]
    fn header_row_count_fields_and_time_order() {
        let (text, report, calls) = sample();
        let rows = rows(text);
        assert_eq!(rows.len() as u64, ROWS);
        assert_eq!(report.rows, ROWS);
        assert!(text.ends_with('\n'));
        // Progress every 64k rows and at the end.
        assert_eq!(calls, &vec![65_536, 131_072, 196_608, ROWS]);

        let mut prev = "";
        for r in &rows {
            assert!(valid_time(r.time), "bad event_time {:?}", r.time);
            assert!(r.time >= prev, "not sorted: {prev} then {}", r.time);
            assert!(
                r.time >= "2020-04-01 00:00:00 UTC" && r.time < "2020-05-01 00:00:00 UTC",
                "{}",
                r.time
            );
            prev = r.time;
            assert!(
                is_digits(r.product) && (7..=8).contains(&r.product.len()),
                "product_id {:?}",
                r.product
            );
            assert!(
                is_digits(r.user) && r.user.len() == 9,
                "user_id {:?}",
                r.user
            );
            assert!(
                r.session.is_empty() || is_uuid(r.session),
                "user_session {:?}",
                r.session
            );
            assert!(
                r.brand
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
                "brand {:?}",
                r.brand
            );
            let levels = r.code.split('.').count();
            assert!(
                r.code.is_empty() || (2..=4).contains(&levels),
                "category_code {:?}",
                r.code
            );
        }
        assert_eq!(report.first_event, rows[0].time);
        assert_eq!(report.last_event, rows[rows.len() - 1].time);
        let empty_sessions = rows.iter().filter(|r| r.session.is_empty()).count();
        println!("rows without user_session: {empty_sessions}");
        assert!((1..=5).contains(&empty_sessions));
    }

    #[test]
    fn event_type_shares() {
        let rows = rows(&sample().0);
        let n = rows.len();
        let count = |k: &str| rows.iter().filter(|r| r.kind == k).count();
        let (view, cart, remove, purchase) = (
            count("view"),
            count("cart"),
            count("remove_from_cart"),
            count("purchase"),
        );
        assert_eq!(view + cart + remove + purchase, n, "unknown event_type");
        assert_near("view %", pct(view, n), 93.6, 1.5);
        assert_near("cart %", pct(cart, n), 4.9, 1.0);
        assert_near("purchase %", pct(purchase, n), 1.5, 0.5);
        println!("remove_from_cart %: {:.3}", pct(remove, n));
        assert!(remove > 0);
        assert!(pct(remove, n) < 2.0);
    }

    #[test]
    fn brand_category_and_price_fields() {
        let rows = rows(&sample().0);
        let n = rows.len();
        assert_near(
            "empty brand %",
            pct(rows.iter().filter(|r| r.brand.is_empty()).count(), n),
            13.0,
            3.0,
        );
        assert_near(
            "empty category_code %",
            pct(rows.iter().filter(|r| r.code.is_empty()).count(), n),
            10.0,
            3.0,
        );

        let mut cents = Vec::with_capacity(n);
        for r in &rows {
            let (int, dec) = r
                .price
                .split_once('.')
                .unwrap_or_else(|| panic!("price {:?}", r.price));
            assert!(
                is_digits(int) && is_digits(dec) && dec.len() == 2,
                "price {:?}",
                r.price
            );
            cents.push(int.parse::<u64>().unwrap() * 100 + dec.parse::<u64>().unwrap());
        }
        let zero = cents.iter().filter(|&&c| c == 0).count();
        let at_cap = cents.iter().filter(|&&c| c == 257_407).count();
        assert_near("zero price %", pct(zero, n), 0.2, 0.15);
        assert!(cents.iter().all(|&c| c <= 257_407), "price above 2574.07");
        println!("rows at the 2574.07 cap: {at_cap}");
        assert!(at_cap > 0);
        let mut nonzero: Vec<u64> = cents.into_iter().filter(|&c| c > 0).collect();
        nonzero.sort_unstable();
        let median = nonzero[nonzero.len() / 2] as f64 / 100.0;
        let mean = nonzero.iter().sum::<u64>() as f64 / nonzero.len() as f64 / 100.0;
        println!("price median {median:.2}, mean {mean:.2}");
        assert!((80.0..250.0).contains(&median) && (180.0..380.0).contains(&mean) && mean > median);

        let mut code_of: HashMap<&str, &str> = HashMap::new();
        for r in &rows {
            assert!(
                is_digits(r.category_id) && r.category_id.len() == 19,
                "category_id {:?}",
                r.category_id
            );
            let code = code_of.entry(r.category_id).or_insert(r.code);
            assert_eq!(*code, r.code, "category {} has two codes", r.category_id);
        }
        println!(
            "distinct category ids: {}, codes: {}",
            code_of.len(),
            code_of.values().collect::<HashSet<_>>().len()
        );
        assert!(
            code_of.values().any(|c| c.is_empty()),
            "no category without a code"
        );
        let phones = ["apple", "samsung", "xiaomi", "huawei"];
        assert!(
            rows.iter()
                .any(|r| r.code == "construction.tools.light" && phones.contains(&r.brand)),
            "no phones labelled construction.tools.light"
        );

        // Each product keeps one category and brand.
        let mut product_attrs: HashMap<&str, (&str, &str)> = HashMap::new();
        for r in &rows {
            let a = product_attrs
                .entry(r.product)
                .or_insert((r.category_id, r.brand));
            assert_eq!(
                *a,
                (r.category_id, r.brand),
                "product {} changes category/brand",
                r.product
            );
        }
    }

    #[test]
    fn duplicate_rows() {
        let text = &sample().0;
        let report = &sample().1;
        let lines: Vec<&str> = text.lines().skip(1).collect();
        let dups = lines.windows(2).filter(|w| w[0] == w[1]).count();
        assert_near("duplicate rows %", pct(dups, lines.len()), 0.2, 0.1);
        assert_eq!(dups as u64, report.duplicates);
        let distinct: HashSet<&str> = lines.iter().copied().collect();
        assert_eq!(
            distinct.len() + dups,
            lines.len(),
            "duplicates that are not adjacent"
        );
    }

    #[test]
    fn sessions_and_funnel_order() {
        let rows = rows(&sample().0);
        #[derive(Default)]
        struct S<'a> {
            events: usize,
            viewed: HashSet<&'a str>,
            carted: HashSet<&'a str>,
            users: HashSet<&'a str>,
        }
        let mut sessions: HashMap<&str, S> = HashMap::new();
        let (mut carts, mut carts_after_view) = (0, 0);
        let (mut removes, mut removes_after_cart) = (0, 0);
        let (mut purchases, mut purchases_after_cart) = (0, 0);
        for r in rows.iter().filter(|r| !r.session.is_empty()) {
            let s = sessions.entry(r.session).or_default();
            s.events += 1;
            s.users.insert(r.user);
            match r.kind {
                "view" => {
                    s.viewed.insert(r.product);
                }
                "cart" => {
                    carts += 1;
                    carts_after_view += s.viewed.contains(r.product) as usize;
                    s.carted.insert(r.product);
                }
                "remove_from_cart" => {
                    removes += 1;
                    removes_after_cart += s.carted.contains(r.product) as usize;
                }
                "purchase" => {
                    purchases += 1;
                    purchases_after_cart += s.carted.contains(r.product) as usize;
                }
                other => panic!("event_type {other}"),
            }
        }
        let mean =
            sessions.values().map(|s| s.events).sum::<usize>() as f64 / sessions.len() as f64;
        let longest = sessions.values().map(|s| s.events).max().unwrap();
        println!("sessions: {}, longest: {longest}", sessions.len());
        assert_near("mean events per session", mean, 4.6, 0.8);
        assert!(longest > 20);
        assert!(
            sessions.values().all(|s| s.users.len() == 1),
            "a session spans several users"
        );
        assert_eq!(
            carts, carts_after_view,
            "cart without an earlier view of the product in the session"
        );
        assert_eq!(
            removes, removes_after_cart,
            "remove_from_cart without an earlier cart"
        );
        let share = pct(purchases_after_cart, purchases);
        println!("purchases: {purchases}, after a cart of the product: {share:.1} %");
        assert!(
            (80.0..100.0).contains(&share),
            "some purchases should be direct"
        );
    }

    #[test]
    fn users_return_on_several_days() {
        let rows = rows(&sample().0);
        let mut days: HashMap<&str, HashSet<&str>> = HashMap::new();
        for r in &rows {
            days.entry(r.user).or_default().insert(&r.time[..10]);
        }
        let returning = days.values().filter(|d| d.len() >= 2).count();
        println!("users: {}", days.len());
        let share = pct(returning, days.len());
        println!("users active on >= 2 days: {share:.1} %");
        assert!(share >= 20.0);
    }

    #[test]
    fn daily_cycle_and_weekend() {
        let rows = rows(&sample().0);
        let mut by_hour = [0usize; 24];
        let mut by_date: HashMap<&str, usize> = HashMap::new();
        for r in &rows {
            by_hour[r.time[11..13].parse::<usize>().unwrap()] += 1;
            *by_date.entry(&r.time[..10]).or_default() += 1;
        }
        let night = by_hour[2..6].iter().sum::<usize>();
        let evening = by_hour[17..21].iter().sum::<usize>();
        println!("events 02-06h: {night}, 17-21h: {evening}");
        assert!(evening > 3 * night);
        assert_eq!(by_date.len(), 30);
        // April 2020: the 4th/5th, 11th/12th, 18th/19th and 25th/26th are weekends.
        let weekend: HashSet<u32> = [4, 5, 11, 12, 18, 19, 25, 26].into();
        let (mut we, mut wd) = (Vec::new(), Vec::new());
        for (d, &n) in &by_date {
            let day: u32 = d[8..10].parse().unwrap();
            if weekend.contains(&day) {
                we.push(n as f64)
            } else {
                wd.push(n as f64)
            }
        }
        let ratio =
            (we.iter().sum::<f64>() / we.len() as f64) / (wd.iter().sum::<f64>() / wd.len() as f64);
        println!("weekend / weekday traffic: {ratio:.3}");
        assert!((0.78..0.93).contains(&ratio) || (1.07..1.22).contains(&ratio));
    }

    #[test]
    fn deterministic_per_seed() {
        let o = opts(50_000, 7);
        let mut a = Vec::new();
        let mut b = Vec::new();
        let mut c = Vec::new();
        generate_to_writer(&o, &mut a, &mut |_| {}).unwrap();
        generate_to_writer(&o, &mut b, &mut |_| {}).unwrap();
        generate_to_writer(&opts(50_000, 8), &mut c, &mut |_| {}).unwrap();
        assert!(a == b, "same seed gave different output");
        assert!(a != c, "different seeds gave the same output");
    }

    #[test]
    fn gap_day_is_nearly_empty() {
        let o = GenerateOptions {
            rows: 70_000,
            days: 7,
            gap_day: Some(3),
            ..GenerateOptions::default()
        };
        let mut out = Vec::new();
        let report = generate_to_writer(&o, &mut out, &mut |_| {}).unwrap();
        assert_eq!(report.rows, 70_000);
        let text = String::from_utf8(out).unwrap();
        let mut per_day: HashMap<String, usize> = HashMap::new();
        for r in rows(&text) {
            *per_day.entry(r.time[..10].to_string()).or_default() += 1;
        }
        let gap = per_day.get("2020-04-04").copied().unwrap_or(0);
        let mut others: Vec<usize> = per_day
            .iter()
            .filter(|(d, _)| d.as_str() != "2020-04-04")
            .map(|(_, &n)| n)
            .collect();
        others.sort_unstable();
        assert_eq!(others.len(), 6, "{per_day:?}");
        let median = others[others.len() / 2];
        println!("gap day: {gap} rows, median day: {median}");
        assert!((gap as f64) < 0.01 * median as f64, "{per_day:?}");
    }

    #[test]
    fn gzip_output_matches_plain() {
        let dir = tempfile::tempdir().unwrap();
        let o = opts(60_000, 11);
        let plain_path = dir.path().join("e.csv");
        let gz_path = dir.path().join("e.csv.gz");
        let plain_report = generate_to_path(&o, &plain_path, &mut |_| {}).unwrap();
        let gz_report = generate_to_path(&o, &gz_path, &mut |_| {}).unwrap();
        let plain = std::fs::read(&plain_path).unwrap();
        let gz = std::fs::read(&gz_path).unwrap();
        assert_eq!(gz_report.bytes, gz.len() as u64);
        assert!(gz.len() < plain.len() / 2);
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut decoded)
            .unwrap();
        assert!(decoded == plain, "gz output differs from plain output");
        assert_eq!(
            (plain_report.rows, plain_report.duplicates),
            (gz_report.rows, gz_report.duplicates)
        );
    }

    #[test]
    fn invalid_options_are_rejected() {
        let mut sink = Vec::new();
        for o in [
            GenerateOptions {
                days: 0,
                ..GenerateOptions::default()
            },
            GenerateOptions {
                days: 7,
                gap_day: Some(7),
                ..GenerateOptions::default()
            },
        ] {
            let err = generate_to_writer(&o, &mut sink, &mut |_| {}).unwrap_err();
            println!("{err}");
            assert!(err.to_string().contains("use"), "{err}");
        }
    }

    /// Speed: `cargo test --release -p shoplake-ingest generate -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn generate_speed() {
        struct Sink(u64);
        impl std::io::Write for Sink {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0 += b.len() as u64;
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let rows = 10_000_000;
        let mut sink = Sink(0);
        let t = std::time::Instant::now();
        generate_to_writer(&opts(rows, 42), &mut sink, &mut |_| {}).unwrap();
        let s = t.elapsed().as_secs_f64();
        println!(
            "plain CSV: {rows} rows in {s:.2} s = {:.2} M rows/s, {:.0} MB/s",
            rows as f64 / s / 1e6,
            sink.0 as f64 / s / 1e6
        );

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("speed.csv");
        let t = std::time::Instant::now();
        generate_to_path(&opts(rows, 42), &path, &mut |_| {}).unwrap();
        let s = t.elapsed().as_secs_f64();
        println!("plain CSV file: {:.2} M rows/s", rows as f64 / s / 1e6);
        let path = dir.path().join("speed.csv.gz");
        let rows = rows / 4;
        let t = std::time::Instant::now();
        generate_to_path(&opts(rows, 42), &path, &mut |_| {}).unwrap();
        let s = t.elapsed().as_secs_f64();
        println!("gzip CSV file: {:.2} M rows/s", rows as f64 / s / 1e6);
    }
}
