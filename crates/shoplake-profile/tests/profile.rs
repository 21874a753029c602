//! The profile on hand-made fixtures: every figure is compared with a value worked out by hand
//! (in the comments) from the rows below, not with anything the profiler computes.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Decimal128Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext};
use shoplake_lake::NoProgress;
use shoplake_profile::{
    DistinctMethod, Format, InputKind, Profile, ProfileError, ProfileOptions, Sample, ValueCount,
    profile,
};

const COLUMNS: [&str; 9] = [
    "event_time",
    "event_type",
    "product_id",
    "category_id",
    "category_code",
    "brand",
    "price",
    "user_id",
    "user_session",
];

type Row = [&'static str; 9];

/// 27 well-formed lines (r1..r27) plus one malformed line (r28, added in `fixture`).
///
/// - Exact duplicates: r4 = r3 and r10 = r9.
/// - Days: 2020-04-01 has 12 rows, 2020-04-02 one (near-empty), 2020-04-03 12; r26 has an
///   impossible date and r27 no date at all.
/// - Missing: category_code r7 r8 r16 r25; brand r7 r8 r12 r16 r23 r25; session r12 r25.
/// - r20 has the unknown type `click`; r23 a negative price; r24 the price `abc`.
/// - Purchases without a cart of the same product in the same session: r6 (s2) and r21 (s7).
const ROWS: [Row; 27] = [
    // 2020-04-01
    [
        "2020-04-01 08:00:00 UTC",
        "view",
        "100",
        "1",
        "electronics.smartphone",
        "apple",
        "100.00",
        "1",
        "s1",
    ],
    [
        "2020-04-01 08:00:30 UTC",
        "cart",
        "100",
        "1",
        "electronics.smartphone",
        "apple",
        "100.00",
        "1",
        "s1",
    ],
    [
        "2020-04-01 08:01:00 UTC",
        "purchase",
        "100",
        "1",
        "electronics.smartphone",
        "apple",
        "100.00",
        "1",
        "s1",
    ],
    [
        "2020-04-01 08:01:00 UTC",
        "purchase",
        "100",
        "1",
        "electronics.smartphone",
        "apple",
        "100.00",
        "1",
        "s1",
    ],
    [
        "2020-04-01 09:00:00 UTC",
        "view",
        "200",
        "2",
        "appliances.kitchen.washer",
        "samsung",
        "250.00",
        "2",
        "s2",
    ],
    [
        "2020-04-01 09:02:00 UTC",
        "purchase",
        "200",
        "2",
        "appliances.kitchen.washer",
        "samsung",
        "250.00",
        "2",
        "s2",
    ],
    [
        "2020-04-01 10:00:00 UTC",
        "view",
        "300",
        "3",
        "",
        "",
        "0.00",
        "3",
        "s3",
    ],
    [
        "2020-04-01 10:00:20 UTC",
        "view",
        "300",
        "3",
        "",
        "",
        "0.00",
        "3",
        "s3",
    ],
    [
        "2020-04-01 10:10:00 UTC",
        "view",
        "400",
        "4",
        "computers.notebook",
        "lenovo",
        "2574.07",
        "4",
        "s4",
    ],
    [
        "2020-04-01 10:10:00 UTC",
        "view",
        "400",
        "4",
        "computers.notebook",
        "lenovo",
        "2574.07",
        "4",
        "s4",
    ],
    [
        "2020-04-01 10:15:00 UTC",
        "remove_from_cart",
        "400",
        "4",
        "computers.notebook",
        "lenovo",
        "2574.07",
        "4",
        "s4",
    ],
    [
        "2020-04-01 23:59:59 UTC",
        "view",
        "100",
        "1",
        "electronics.smartphone",
        "",
        "100.00",
        "5",
        "",
    ],
    // 2020-04-02
    [
        "2020-04-02 12:00:00 UTC",
        "view",
        "200",
        "2",
        "appliances.kitchen.washer",
        "samsung",
        "250.00",
        "6",
        "s5",
    ],
    // 2020-04-03
    [
        "2020-04-03 00:00:00 UTC",
        "view",
        "100",
        "1",
        "electronics.smartphone",
        "apple",
        "120.50",
        "1",
        "s6",
    ],
    [
        "2020-04-03 00:05:00 UTC",
        "cart",
        "100",
        "1",
        "electronics.smartphone",
        "apple",
        "120.50",
        "1",
        "s6",
    ],
    [
        "2020-04-03 00:06:00 UTC",
        "cart",
        "300",
        "3",
        "",
        "",
        "0.00",
        "1",
        "s6",
    ],
    [
        "2020-04-03 00:10:00 UTC",
        "purchase",
        "100",
        "1",
        "electronics.smartphone",
        "apple",
        "120.50",
        "1",
        "s6",
    ],
    [
        "2020-04-03 13:00:00 UTC",
        "view",
        "500",
        "5",
        "electronics.audio.headphone",
        "sony",
        "35.99",
        "7",
        "s7",
    ],
    [
        "2020-04-03 13:00:40 UTC",
        "view",
        "500",
        "5",
        "electronics.audio.headphone",
        "sony",
        "35.99",
        "7",
        "s7",
    ],
    [
        "2020-04-03 13:01:00 UTC",
        "click",
        "500",
        "5",
        "electronics.audio.headphone",
        "sony",
        "35.99",
        "7",
        "s7",
    ],
    [
        "2020-04-03 13:02:00 UTC",
        "purchase",
        "500",
        "5",
        "electronics.audio.headphone",
        "sony",
        "35.99",
        "7",
        "s7",
    ],
    [
        "2020-04-03 18:30:00 UTC",
        "view",
        "600",
        "6",
        "electronics.smartphone",
        "xiaomi",
        "199.00",
        "8",
        "s8",
    ],
    [
        "2020-04-03 18:31:00 UTC",
        "view",
        "600",
        "6",
        "electronics.smartphone",
        "",
        "-5.00",
        "8",
        "s8",
    ],
    [
        "2020-04-03 18:32:00 UTC",
        "view",
        "600",
        "6",
        "electronics.smartphone",
        "xiaomi",
        "abc",
        "8",
        "s8",
    ],
    [
        "2020-04-03 23:00:00 UTC",
        "purchase",
        "700",
        "7",
        "",
        "",
        "10.00",
        "9",
        "",
    ],
    // Unreadable times.
    [
        "2020-02-30 10:00:00 UTC",
        "view",
        "100",
        "1",
        "electronics.smartphone",
        "apple",
        "100.00",
        "1",
        "s1",
    ],
    [
        "yesterday",
        "view",
        "100",
        "1",
        "electronics.smartphone",
        "apple",
        "100.00",
        "10",
        "s9",
    ],
];

/// The nine text columns, plus `_error` and `_raw_line` like `raw.events` when `lineage`.
fn text_batch(rows: &[Row], malformed: &[&str], lineage: bool) -> RecordBatch {
    let mut fields: Vec<Field> = COLUMNS
        .iter()
        .map(|c| Field::new(*c, DataType::Utf8, true))
        .collect();
    let mut columns: Vec<ArrayRef> = (0..9)
        .map(|i| {
            let values: Vec<Option<&str>> = rows
                .iter()
                .map(|r| Some(r[i]))
                .chain(malformed.iter().map(|_| None))
                .collect();
            Arc::new(StringArray::from(values)) as ArrayRef
        })
        .collect();
    if lineage {
        fields.push(Field::new("_error", DataType::Utf8, true));
        fields.push(Field::new("_raw_line", DataType::Utf8, true));
        let error: Vec<Option<&str>> = rows
            .iter()
            .map(|_| None)
            .chain(malformed.iter().map(|_| Some("wrong_field_count")))
            .collect();
        let raw: Vec<Option<&str>> = rows
            .iter()
            .map(|_| None)
            .chain(malformed.iter().map(|m| Some(*m)))
            .collect();
        columns.push(Arc::new(StringArray::from(error)));
        columns.push(Arc::new(StringArray::from(raw)));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
}

fn fixture_batch() -> RecordBatch {
    text_batch(&ROWS, &["a,b,c"], true)
}

async fn run(batch: RecordBatch, options: &ProfileOptions) -> Profile {
    let ctx = SessionContext::new();
    let df = ctx.read_batch(batch).unwrap();
    profile(&ctx, df, options, &NoProgress).await.unwrap()
}

async fn fixture_profile() -> Profile {
    run(fixture_batch(), &ProfileOptions::new("fixture")).await
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

fn assert_close(found: Option<f64>, expected: f64, what: &str) {
    let found = found.unwrap_or_else(|| panic!("{what}: no value"));
    assert!(close(found, expected), "{what}: {found} != {expected}");
}

fn vc(value: &str, rows: u64) -> ValueCount {
    ValueCount {
        value: Some(value.to_string()),
        rows,
    }
}

#[tokio::test]
async fn seed_tables_a_to_e_match_hand_counts() {
    let p = fixture_profile().await;
    assert_eq!(p.input_kind, InputKind::Text);
    assert!(p.exact);
    assert_eq!(p.distinct_counts, DistinctMethod::Exact);
    assert!(p.sample.is_none());

    // B: 27 lines + 1 malformed; r4 and r10 repeat r3 and r9.
    assert_eq!(p.rows.total, 28);
    assert_eq!(p.rows.distinct, 26);
    assert_eq!(p.rows.duplicates, 2);
    assert_eq!(p.rows.malformed, 1);

    // A and C. The malformed line is missing in every column.
    // event_time: 10 distinct on 04-01 (r4 = r3, r10 = r9), 1 on 04-02, 12 on 04-03, 2 bad.
    // price: 100.00 250.00 0.00 2574.07 120.50 35.99 199.00 -5.00 abc 10.00.
    let expected = [
        ("event_time", 1, 25),
        ("event_type", 1, 5),
        ("product_id", 1, 7),
        ("category_id", 1, 7),
        ("category_code", 5, 4),
        ("brand", 7, 5),
        ("price", 1, 10),
        ("user_id", 1, 10),
        ("user_session", 3, 9),
    ];
    let found: Vec<(&str, u64, u64)> = p
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c.missing, c.distinct))
        .collect();
    assert_eq!(found, expected);

    // D: views r1 r5 r7 r8 r9 r10 r12 r13 r14 r18 r19 r22 r23 r24 r26 r27; purchases r3 r4 r6
    // r17 r21 r25; carts r2 r15 r16; ties in name order, the missing type last.
    assert_eq!(
        p.event_types,
        vec![
            vc("view", 16),
            vc("purchase", 6),
            vc("cart", 3),
            vc("click", 1),
            vc("remove_from_cart", 1),
            ValueCount {
                value: None,
                rows: 1
            },
        ]
    );

    // E. Readable prices (26; r24 `abc` and the malformed line have none), sorted:
    // -5, 0 x3, 10, 35.99 x4, 100 x7, 120.50 x3, 199, 250 x3, 2574.07 x3.
    // Sum 9881.67, mean 9881.67 / 26 = 380.0642307692..., sample stddev 811.6109328449...
    let prices: Vec<f64> = [
        vec![-5.0, 0.0, 0.0, 0.0, 10.0],
        vec![35.99; 4],
        vec![100.0; 7],
        vec![120.5; 3],
        vec![199.0],
        vec![250.0; 3],
        vec![2574.07; 3],
    ]
    .concat();
    let mean = prices.iter().sum::<f64>() / 26.0;
    let var = prices.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / 25.0;
    assert_eq!(p.price.count, 26);
    assert_close(p.price.mean, 9881.67 / 26.0, "mean");
    assert_close(p.price.mean, mean, "mean");
    assert_close(p.price.stddev, var.sqrt(), "stddev");
    assert!((p.price.stddev.unwrap() - 811.610_932_844_9).abs() < 1e-6);
    assert_eq!(p.price.min, Some(-5.0));
    assert_eq!(p.price.max, Some(2574.07));
}

#[tokio::test]
async fn analyst_figures_match_hand_counts() {
    let p = fixture_profile().await;

    // Quantiles at rank p * 25 of the sorted prices above (0-based):
    // p01: 0.25 -> -5 + (0 - -5) * 0.25 = -3.75; p25: 6.25 -> 35.99; p50: 12.5 -> 100;
    // p75: 18.75 -> 120.50 + (199 - 120.50) * 0.75 = 179.375; p99: 24.75 -> 2574.07.
    let q: Vec<(f64, f64)> = p.price.quantiles.iter().map(|q| (q.p, q.value)).collect();
    let expected = [
        (0.01, -3.75),
        (0.25, 35.99),
        (0.5, 100.0),
        (0.75, 179.375),
        (0.99, 2574.07),
    ];
    assert_eq!(q.len(), expected.len());
    for ((p_found, v), (p_expected, e)) in q.iter().zip(expected) {
        assert_eq!(*p_found, p_expected);
        assert!(close(*v, e), "p{p_expected}: {v} != {e}");
    }
    // Price cap: r9 r10 r11 at 2574.07.
    assert_eq!(p.price.rows_at_max, 3);
    assert!(close(p.price.share_at_max, 3.0 / 26.0));
    // Zero prices: views r7 r8, cart r16.
    assert_eq!(
        p.price.zero_by_event_type,
        vec![vc("view", 2), vc("cart", 1)]
    );
    assert_eq!(p.price.unreadable, 1);
    // Histogram: the range -5 .. 2574.07 over ~30 bins gives a round width of 100, from -100:
    // [-100, 0): -5; [0, 100): 0 x3, 10, 35.99 x4; [100, 200): 100 x7, 120.50 x3, 199;
    // [200, 300): 250 x3; ... [2500, 2600): 2574.07 x3.
    let h = &p.price.histogram;
    assert_eq!(h.len(), 27);
    assert_eq!((h[0].from, h[0].to), (-100.0, 0.0));
    assert_eq!((h[26].from, h[26].to), (2500.0, 2600.0));
    let nonzero: Vec<(f64, u64)> = h
        .iter()
        .filter(|b| b.rows > 0)
        .map(|b| (b.from, b.rows))
        .collect();
    assert_eq!(
        nonzero,
        [(-100.0, 1), (0.0, 8), (100.0, 11), (200.0, 3), (2500.0, 3)]
    );

    // Time: 12 + 1 + 12 rows with a valid time; r26, r27 and the malformed line have none.
    assert_eq!(p.time.first.as_deref(), Some("2020-04-01 08:00:00 UTC"));
    assert_eq!(p.time.last.as_deref(), Some("2020-04-03 23:00:00 UTC"));
    assert_eq!(p.time.without_valid_time, 3);
    let days: Vec<(&str, u64, bool)> = p
        .time
        .days
        .iter()
        .map(|d| (d.date.as_str(), d.rows, d.near_empty))
        .collect();
    assert_eq!(
        days,
        [
            ("2020-04-01", 12, false),
            ("2020-04-02", 1, true),
            ("2020-04-03", 12, false)
        ]
    );
    // Median of 1, 12, 12 is 12; 10 % of it is 1.2 > 1.
    assert_eq!(p.time.median_day_rows, 12.0);
    assert!(close(p.time.near_empty_threshold, 1.2));
    assert_eq!(p.time.near_empty_days, ["2020-04-02"]);
    // Hours: 00: r14-r17; 08: r1-r4; 09: r5 r6; 10: r7-r11; 12: r13; 13: r18-r21;
    // 18: r22-r24; 23: r12 r25.
    let mut hours = [0u64; 24];
    for (h, n) in [
        (0, 4),
        (8, 4),
        (9, 2),
        (10, 5),
        (12, 1),
        (13, 4),
        (18, 3),
        (23, 2),
    ] {
        hours[h] = n;
    }
    let found: Vec<u64> = p.time.hours.iter().map(|h| h.rows).collect();
    assert_eq!(found, hours);

    // Top categories and brands (ties by name).
    assert_eq!(
        p.top_categories,
        vec![
            vc("electronics.smartphone", 13),
            vc("electronics.audio.headphone", 4),
            vc("appliances.kitchen.washer", 3),
            vc("computers.notebook", 3),
        ]
    );
    assert_eq!(
        p.top_brands,
        vec![
            vc("apple", 9),
            vc("sony", 4),
            vc("lenovo", 3),
            vc("samsung", 3),
            vc("xiaomi", 2),
        ]
    );

    // Sessions s1..s9. Events: s1 5 (r1-r4, r26), s2 2, s3 2, s4 3, s5 1, s6 4, s7 4, s8 3, s9 1.
    // Sorted 1 1 2 2 3 3 4 4 5: mean 25 / 9, p50 rank 4 -> 3, p90 rank 7.2 -> 4.2, max 5.
    let s = &p.sessions;
    assert_eq!(s.sessions, 9);
    assert_close(s.length_events.mean, 25.0 / 9.0, "length mean");
    assert_close(s.length_events.p50, 3.0, "length p50");
    assert_close(s.length_events.p90, 4.2, "length p90");
    assert_close(s.length_events.max, 5.0, "length max");
    // Durations (s9 has no valid time): s1 60, s2 120, s3 20, s4 300, s5 0, s6 600, s7 120,
    // s8 120. Sorted 0 20 60 120 120 120 300 600: mean 1340 / 8 = 167.5, p50 rank 3.5 -> 120,
    // p90 rank 6.3 -> 300 + 300 * 0.3 = 390, max 600.
    assert_close(s.duration_seconds.mean, 167.5, "duration mean");
    assert_close(s.duration_seconds.p50, 120.0, "duration p50");
    assert_close(s.duration_seconds.p90, 390.0, "duration p90");
    assert_close(s.duration_seconds.max, 600.0, "duration max");
    // Purchases: r3 r4 r6 r17 r21 r25; r25 has no session. Without a cart: r6, r21.
    assert_eq!(s.purchases, 6);
    assert_eq!(s.purchases_in_sessions, 5);
    assert_eq!(s.purchases_without_cart, 2);
    assert!(close(s.share_without_cart, 0.4));

    // Funnel: every session has a view; s1 and s6 have a cart, and both a purchase.
    assert_eq!(p.funnel.unit, "sessions");
    let funnel: Vec<(&str, u64, u64)> = p
        .funnel
        .steps
        .iter()
        .map(|f| (f.step.as_str(), f.sessions, f.events))
        .collect();
    assert_eq!(
        funnel,
        [("view", 9, 16), ("cart", 2, 3), ("purchase", 2, 6)]
    );
}

#[tokio::test]
async fn cleaning_rules_count_the_rows_they_affect() {
    let p = fixture_profile().await;
    let rules: Vec<(&str, u64)> = p
        .cleaning_rules
        .iter()
        .map(|r| (r.id.as_str(), r.rows))
        .collect();
    assert_eq!(
        rules,
        [
            ("quarantine_malformed_lines", 1),
            ("drop_exact_duplicates", 2),
            ("drop_bad_timestamps", 2),      // r26, r27
            ("drop_unknown_event_types", 1), // r20
            ("drop_unreadable_prices", 1),   // r24
            ("fill_brand_unknown", 7),
            ("fill_category_code_unknown", 5),
            ("drop_null_session", 2),        // r12, r25
            ("drop_non_positive_prices", 4), // r7, r8, r16, r23
        ]
    );
    for r in &p.cleaning_rules {
        assert!(close(r.share, r.rows as f64 / 28.0), "{}", r.id);
    }
}

#[tokio::test]
async fn empty_days_inside_the_range_are_near_empty() {
    let rows: Vec<Row> = [
        "2020-04-01 01:00:00 UTC",
        "2020-04-01 02:00:00 UTC",
        "2020-04-01 03:00:00 UTC",
        "2020-04-03 01:00:00 UTC",
        "2020-04-03 02:00:00 UTC",
        "2020-04-03 03:00:00 UTC",
    ]
    .iter()
    .map(|t| [*t, "view", "1", "1", "", "", "1.00", "1", "s"])
    .collect();
    let p = run(text_batch(&rows, &[], false), &ProfileOptions::new("gap")).await;
    // Days 3, 0, 3: median 3, threshold 0.3, the empty day is flagged.
    let days: Vec<(&str, u64, bool)> = p
        .time
        .days
        .iter()
        .map(|d| (d.date.as_str(), d.rows, d.near_empty))
        .collect();
    assert_eq!(
        days,
        [
            ("2020-04-01", 3, false),
            ("2020-04-02", 0, true),
            ("2020-04-03", 3, false)
        ]
    );
    assert_eq!(p.time.median_day_rows, 3.0);
    // Without lineage columns there is no malformed-line rule.
    assert!(
        p.cleaning_rules
            .iter()
            .all(|r| r.id != "quarantine_malformed_lines")
    );
}

#[tokio::test]
async fn typed_tables_are_profiled_too() {
    // r1..r6 of the fixture as model.fact_user_events types, with the session column called
    // session_id, plus extra columns that must be ignored.
    let micros = |t: &str| {
        chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S UTC")
            .unwrap()
            .and_utc()
            .timestamp_micros()
    };
    let rows = &ROWS[..6];
    let text = |i: usize| -> Vec<&str> { rows.iter().map(|r| r[i]).collect() };
    let ints = |i: usize| -> Int64Array { rows.iter().map(|r| r[i].parse::<i64>().ok()).collect() };
    let cents: Decimal128Array = rows
        .iter()
        .map(|r| Some((r[6].parse::<f64>().unwrap() * 100.0).round() as i128))
        .collect::<Decimal128Array>()
        .with_precision_and_scale(10, 2)
        .unwrap();
    let schema = Schema::new(vec![
        Field::new("event_id", DataType::Int64, false),
        Field::new(
            "event_time",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("event_type", DataType::Utf8, false),
        Field::new("product_id", DataType::Int64, false),
        Field::new("category_id", DataType::Int64, false),
        Field::new("category_code", DataType::Utf8, false),
        Field::new("brand", DataType::Utf8, false),
        Field::new("price", DataType::Decimal128(10, 2), false),
        Field::new("user_id", DataType::Int64, false),
        Field::new("session_id", DataType::Utf8, false),
    ]);
    let batch = RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(Int64Array::from((0..6).collect::<Vec<i64>>())),
            Arc::new(
                TimestampMicrosecondArray::from(
                    rows.iter().map(|r| micros(r[0])).collect::<Vec<_>>(),
                )
                .with_timezone("UTC"),
            ),
            Arc::new(StringArray::from(text(1))),
            Arc::new(ints(2)),
            Arc::new(ints(3)),
            Arc::new(StringArray::from(text(4))),
            Arc::new(StringArray::from(text(5))),
            Arc::new(cents),
            Arc::new(ints(7)),
            Arc::new(StringArray::from(text(8))),
        ],
    )
    .unwrap();
    let p = run(batch, &ProfileOptions::new("model.fact_user_events")).await;
    assert_eq!(p.input_kind, InputKind::Typed);
    // Six rows, r4 repeats r3 (event_id is not one of the nine columns).
    assert_eq!(
        (p.rows.total, p.rows.duplicates, p.rows.malformed),
        (6, 1, 0)
    );
    // Prices 100 x4, 250 x2: mean 900 / 6 = 150.
    assert_close(p.price.mean, 150.0, "typed mean");
    assert_eq!((p.price.min, p.price.max), (Some(100.0), Some(250.0)));
    assert_eq!(p.time.first.as_deref(), Some("2020-04-01 08:00:00 UTC"));
    assert_eq!(p.time.hours[8].rows, 4);
    // s1: r1-r4 over 60 s; s2: r5 r6 over 120 s.
    assert_eq!(p.sessions.sessions, 2);
    assert_close(p.sessions.duration_seconds.mean, 90.0, "typed duration");
    assert_eq!(p.sessions.purchases_without_cart, 1);
    let session = p.columns.iter().find(|c| c.name == "user_session").unwrap();
    assert_eq!((session.missing, session.distinct), (0, 2));
    assert!(
        p.cleaning_rules
            .iter()
            .all(|r| r.id != "drop_bad_timestamps")
    );
}

#[tokio::test]
async fn a_stream_read_once_gives_the_same_profile() {
    let batch = fixture_batch();
    let ctx = SessionContext::new();
    let schema = batch.schema();
    let stream = Box::pin(RecordBatchStreamAdapter::new(
        schema.clone(),
        futures::stream::iter(vec![Ok(batch.slice(0, 10)), Ok(batch.slice(10, 18))]),
    ));
    let df = shoplake_lake::write::stream_to_dataframe(&ctx, schema, stream).unwrap();
    let mut options = ProfileOptions::new("fixture");
    options.scan_once = true;
    let once = profile(&ctx, df, &options, &NoProgress).await.unwrap();
    assert_eq!(once, fixture_profile().await);
}

/// 2,000 distinct rows over 2 days.
fn many_rows() -> RecordBatch {
    let texts: Vec<[String; 9]> = (0..2000)
        .map(|i| {
            [
                format!(
                    "2020-04-0{} {:02}:{:02}:00 UTC",
                    1 + i % 2,
                    (i / 60) % 24,
                    i % 60
                ),
                ["view", "cart", "purchase"][i % 3].to_string(),
                (i % 97).to_string(),
                (i % 13).to_string(),
                String::new(),
                format!("brand{}", i % 7),
                format!("{}.{:02}", i % 500, i % 100),
                (i % 300).to_string(),
                format!("s{}", i / 4),
            ]
        })
        .collect();
    let columns: Vec<ArrayRef> = (0..9)
        .map(|c| {
            Arc::new(StringArray::from(
                texts.iter().map(|r| r[c].as_str()).collect::<Vec<_>>(),
            )) as ArrayRef
        })
        .collect();
    let fields: Vec<Field> = COLUMNS
        .iter()
        .map(|c| Field::new(*c, DataType::Utf8, true))
        .collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
}

/// Rows of `many_rows` that a draw with `seed` and `fraction` keeps, by the documented rule
/// worked out here: the seeded xxh3-64 of the nine fields joined by 0x1f, its top 53 bits as
/// a fraction of 2^53, below `fraction`.
fn expected_sample(batch: &RecordBatch, fraction: f64, seed: u64) -> u64 {
    let cols: Vec<&StringArray> = batch
        .columns()
        .iter()
        .map(|c| c.as_any().downcast_ref::<StringArray>().unwrap())
        .collect();
    (0..batch.num_rows())
        .filter(|&r| {
            let fields: Vec<&str> = cols.iter().map(|c| c.value(r)).collect();
            let hash = xxhash_rust::xxh3::xxh3_64_with_seed(fields.join("\u{1f}").as_bytes(), seed);
            ((hash >> 11) as f64) < fraction * (1u64 << 53) as f64
        })
        .count() as u64
}

#[tokio::test]
async fn samples_are_reproducible_and_labelled() {
    let batch = many_rows();
    let sampled = |seed: u64| {
        let mut o = ProfileOptions::new("many");
        o.sample = Some(Sample {
            fraction: 0.3,
            seed,
        });
        o
    };
    let a = run(batch.clone(), &sampled(7)).await;
    let b = run(batch.clone(), &sampled(7)).await;
    let c = run(batch.clone(), &sampled(8)).await;
    // Same seed, same rows, same figures.
    assert_eq!(a, b);
    // Another seed draws other rows: the time range, sums and counts differ.
    assert_ne!(a.rows, c.rows);
    assert_ne!(a.price.mean, c.price.mean);
    // Size: binomial(2000, 0.3) has mean 600 and standard deviation 20.5.
    for p in [&a, &c] {
        assert!((500..=700).contains(&p.rows.total), "{}", p.rows.total);
    }
    assert_eq!(a.rows.total, expected_sample(&batch, 0.3, 7));
    assert_eq!(c.rows.total, expected_sample(&batch, 0.3, 8));
    // Labelled as estimates from a sample of K rows, in the document and every rendering.
    assert!(!a.exact);
    let info = a.sample.as_ref().unwrap();
    assert_eq!(
        (info.fraction, info.seed, info.rows),
        (0.3, 7, a.rows.total)
    );
    let label = format!("sample of {} rows", a.rows.total);
    for format in [Format::Table, Format::Md, Format::Json, Format::Html] {
        let out = a.render(format);
        assert!(out.contains(&label), "{format:?} does not say {label}");
        assert!(out.contains("ESTIMATES"), "{format:?}");
    }
    // The whole input with fraction 1.
    let mut all = ProfileOptions::new("many");
    all.sample = Some(Sample {
        fraction: 1.0,
        seed: 3,
    });
    assert_eq!(run(batch, &all).await.rows.total, 2000);
}

#[tokio::test]
async fn approximate_distinct_counts_say_so() {
    let mut options = ProfileOptions::new("fixture");
    options.approx = true;
    let p = run(fixture_batch(), &options).await;
    let exact = fixture_profile().await;
    assert_eq!(p.distinct_counts, DistinctMethod::Approximate);
    assert!(!p.exact);
    assert!(p.notes.iter().any(|n| n.contains("APPROXIMATE")));
    for (a, e) in p.columns.iter().zip(&exact.columns) {
        assert_eq!(a.missing, e.missing);
        assert!(
            a.distinct.abs_diff(e.distinct) <= 1,
            "{}: {} vs {}",
            a.name,
            a.distinct,
            e.distinct
        );
    }
    // Only the distinct counts change.
    assert_eq!(p.rows, exact.rows);
    assert_eq!(p.price, exact.price);
    assert!(p.render(Format::Table).contains("distinct (approx.)"));
}

#[tokio::test]
async fn json_parses_and_holds_the_figures() {
    let p = fixture_profile().await;
    let json = p.render(Format::Json);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["format_version"], 1);
    assert_eq!(v["rows"]["total"], 28);
    assert_eq!(v["rows"]["duplicates"], 2);
    assert_eq!(v["columns"][5]["name"], "brand");
    assert_eq!(v["columns"][5]["missing"], 7);
    assert_eq!(v["event_types"][0]["value"], "view");
    assert_eq!(v["event_types"][0]["rows"], 16);
    assert_eq!(v["price"]["count"], 26);
    assert_eq!(v["price"]["max"], 2574.07);
    assert_eq!(v["time"]["near_empty_days"][0], "2020-04-02");
    assert_eq!(v["sessions"]["purchases_without_cart"], 2);
    assert_eq!(v["cleaning_rules"][1]["id"], "drop_exact_duplicates");
    assert_eq!(v["sample"], serde_json::Value::Null);
    assert_eq!(v["distinct_counts"], "exact");
    // The document reads back into the same structure (floats within parsing precision).
    let back: Profile = serde_json::from_str(&json).unwrap();
    assert_eq!(
        (
            &back.rows,
            &back.columns,
            &back.event_types,
            &back.funnel,
            &back.time.days
        ),
        (&p.rows, &p.columns, &p.event_types, &p.funnel, &p.time.days)
    );
    assert!(close(back.price.mean.unwrap(), p.price.mean.unwrap()));
}

#[tokio::test]
async fn html_is_one_offline_page_with_charts() {
    let p = fixture_profile().await;
    let html = p.render(Format::Html);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.trim_end().ends_with("</html>"));
    // Four charts: days, hours, funnel, prices.
    assert_eq!(html.matches("<svg").count(), 4);
    for external in [
        "http://", "https://", "<script", "src=", "url(", "@import", "<link",
    ] {
        assert!(!html.contains(external), "the page refers to {external}");
    }
    assert!(html.contains("2020-04-02: 1 rows (near-empty)"));
    assert!(html.contains("Suggested cleaning rules"));
}

#[tokio::test]
async fn text_and_markdown_show_the_seed_tables() {
    let p = fixture_profile().await;
    let text = p.render(Format::Table);
    assert!(
        text.contains("NOTE: Exact figures over all 28 rows."),
        "{text}"
    );
    assert!(text.contains("exact duplicates"));
    assert!(text.contains("2,574.07"));
    let brand_line = text.lines().find(|l| l.starts_with("brand ")).unwrap();
    assert_eq!(
        brand_line.split_whitespace().collect::<Vec<_>>(),
        ["brand", "7", "25.00", "%", "5"]
    );
    let md = p.render(Format::Md);
    assert!(md.contains("| brand | 7 | 25.00 % | 5 |"), "{md}");
    assert!(md.contains("| drop_exact_duplicates |"));
}

#[tokio::test]
async fn wrong_inputs_are_refused_with_a_reason() {
    let ctx = SessionContext::new();
    let df: DataFrame = ctx
        .sql("SELECT 1 AS user_id, 'x' AS event_type")
        .await
        .unwrap();
    let err = profile(&ctx, df, &ProfileOptions::new("dim"), &NoProgress)
        .await
        .unwrap_err();
    assert!(matches!(err, ProfileError::NotEventTable { .. }), "{err}");
    assert!(err.is_usage());
    assert!(err.to_string().contains("event_time"), "{err}");

    for fraction in [0.0, -0.5, 1.5, f64::NAN] {
        let df = ctx.read_batch(fixture_batch()).unwrap();
        let mut o = ProfileOptions::new("fixture");
        o.sample = Some(Sample { fraction, seed: 1 });
        let err = profile(&ctx, df, &o, &NoProgress).await.unwrap_err();
        assert!(matches!(err, ProfileError::BadSample(_)), "{err}");
    }
    // A profile leaves no view behind in the caller's session.
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_information_schema(true));
    let df = ctx.read_batch(fixture_batch()).unwrap();
    profile(&ctx, df, &ProfileOptions::new("fixture"), &NoProgress)
        .await
        .unwrap();
    let left = ctx
        .sql("SELECT table_name FROM information_schema.tables WHERE table_name LIKE 'shoplake_profile%'")
        .await
        .unwrap();
    assert_eq!(left.count().await.unwrap(), 0);
}
