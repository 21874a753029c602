//! The cleaning rules: one raw row in, either a typed event or a reject with a reason.
//!
//! Rules are applied in this order and the first one a row fails names its reason:
//!
//! | reason | when |
//! | --- | --- |
//! | `malformed_row` | the line could not be split into nine fields (wrong count, invalid UTF-8) |
//! | `bad_timestamp` | event_time is not a real instant written `YYYY-MM-DD HH:MM:SS UTC` |
//! | `unknown_event_type` | event_type is not view, cart, remove_from_cart or purchase |
//! | `bad_product_id`, `bad_category_id`, `bad_user_id` | the id is not a 64-bit integer |
//! | `bad_price` | price is not a decimal number with at most two decimals below 10^8 |
//! | `null_session` | user_session is empty |
//! | `non_positive_price` | price is 0.00 or negative |
//!
//! Exact duplicates are not a rule: they are removed after these, among valid rows only.

use chrono::NaiveDate;
use shoplake_lake::time::{MICROS_PER_DAY, MICROS_PER_SECOND};

use serde::Deserialize;
use shoplake_ingest::files::{Scientific, is_scientific};
/// Allowed event types.
pub use shoplake_lake::tables::{EVENT_TYPES, UNKNOWN_CATEGORY_ID};

/// Value that replaces a missing brand or category_code.
pub const UNKNOWN: &str = "unknown";

/// Why a row was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// Could not be split into the nine fields.
    MalformedRow,
    /// event_time unreadable.
    BadTimestamp,
    /// event_type outside the allowed set.
    UnknownEventType,
    /// product_id not an integer.
    BadProductId,
    /// category_id not an integer.
    BadCategoryId,
    /// user_id not an integer.
    BadUserId,
    /// price not a two-decimal number.
    BadPrice,
    /// user_session empty.
    NullSession,
    /// price <= 0.
    NonPositivePrice,
}

impl RejectReason {
    /// Every reason, in the order of [`shoplake_lake::tables::REJECT_REASONS`].
    pub const ALL: [RejectReason; 9] = [
        RejectReason::MalformedRow,
        RejectReason::BadTimestamp,
        RejectReason::UnknownEventType,
        RejectReason::BadProductId,
        RejectReason::BadCategoryId,
        RejectReason::BadUserId,
        RejectReason::BadPrice,
        RejectReason::NullSession,
        RejectReason::NonPositivePrice,
    ];

    /// The reason code stored in `clean.rejects.reason`.
    pub fn code(self) -> &'static str {
        match self {
            RejectReason::MalformedRow => "malformed_row",
            RejectReason::BadTimestamp => "bad_timestamp",
            RejectReason::UnknownEventType => "unknown_event_type",
            RejectReason::BadProductId => "bad_product_id",
            RejectReason::BadCategoryId => "bad_category_id",
            RejectReason::BadUserId => "bad_user_id",
            RejectReason::BadPrice => "bad_price",
            RejectReason::NullSession => "null_session",
            RejectReason::NonPositivePrice => "non_positive_price",
        }
    }
}

/// The detail of a [`RejectReason::MalformedRow`]: why the line did not split into the nine
/// fields (`line_too_long`, a field count, invalid UTF-8).
pub fn malformed_detail(why: &str) -> String {
    format!("line could not be split into 9 fields ({why})")
}

/// A rejected row: the reason and a human explanation with the offending value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Reason code.
    pub reason: RejectReason,
    /// Explanation.
    pub detail: String,
}

/// The nine source fields of a well-formed raw row.
#[derive(Debug, Clone, Copy)]
pub struct RawFields<'a> {
    /// event_time text.
    pub event_time: &'a str,
    /// event_type text.
    pub event_type: &'a str,
    /// product_id text.
    pub product_id: &'a str,
    /// category_id text.
    pub category_id: &'a str,
    /// category_code text.
    pub category_code: &'a str,
    /// brand text.
    pub brand: &'a str,
    /// price text.
    pub price: &'a str,
    /// user_id text.
    pub user_id: &'a str,
    /// user_session text.
    pub user_session: &'a str,
}

impl<'a> RawFields<'a> {
    /// The nine fields in the export's column order.
    pub fn from_fields(f: [&'a str; 9]) -> RawFields<'a> {
        RawFields {
            event_time: f[0],
            event_type: f[1],
            product_id: f[2],
            category_id: f[3],
            category_code: f[4],
            brand: f[5],
            price: f[6],
            user_id: f[7],
            user_session: f[8],
        }
    }
}

/// A row that passed every rule, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypedEvent<'a> {
    /// Stable id: xxh3-64 of the nine source fields.
    pub event_id: i64,
    /// Microseconds since the epoch, UTC.
    pub event_time_micros: i64,
    /// Days since the epoch.
    pub event_date: i32,
    /// One of [`EVENT_TYPES`].
    pub event_type: &'a str,
    /// Product id.
    pub product_id: i64,
    /// Category id; [`UNKNOWN_CATEGORY_ID`] while `category_mangled` is not resolved.
    pub category_id: i64,
    /// The category id as a spreadsheet printed it (scientific notation), when it was; see
    /// [`crate::clean::categories::KnownCategories::repair`].
    pub category_mangled: Option<Scientific>,
    /// Category code or [`UNKNOWN`].
    pub category_code: &'a str,
    /// Brand or [`UNKNOWN`].
    pub brand: &'a str,
    /// Price in cents.
    pub price_cents: i128,
    /// User id.
    pub user_id: i64,
    /// Session id.
    pub user_session: &'a str,
}

/// What a spreadsheet's scientific notation in a category id leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScientificIds {
    /// Keep the row; repair the id from the known categories, or mark it unknown.
    #[default]
    Repair,
    /// Reject the row as `bad_category_id`.
    Reject,
}

/// The rules' settings (`[rules]` in `shoplake.toml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleOptions {
    /// Category ids in scientific notation (default: repair).
    #[serde(default)]
    pub scientific_ids: ScientificIds,
}

/// Applies the rules to one well-formed row, with its event id (a mangled category id is
/// hashed as printed; see [`identity`]).
pub fn check<'a>(f: &RawFields<'a>, options: &RuleOptions) -> Result<TypedEvent<'a>, Rejection> {
    validate(f, options).map(|e| TypedEvent {
        event_id: identity(f, &e).0,
        ..e
    })
}

/// [`check`] without the event id (left 0), for callers that do not store it.
pub fn validate<'a>(f: &RawFields<'a>, options: &RuleOptions) -> Result<TypedEvent<'a>, Rejection> {
    let reject = |reason, detail: String| Err(Rejection { reason, detail });
    let Some((event_time_micros, event_date)) = parse_event_time(f.event_time) else {
        return reject(
            RejectReason::BadTimestamp,
            format!(
                "event_time '{}' is not 'YYYY-MM-DD HH:MM:SS UTC'",
                f.event_time
            ),
        );
    };
    let Some(event_type) = EVENT_TYPES.iter().find(|t| **t == f.event_type) else {
        return reject(
            RejectReason::UnknownEventType,
            format!(
                "event_type '{}' is not one of {}",
                f.event_type,
                EVENT_TYPES.join(", ")
            ),
        );
    };
    let int = |text: &str| text.parse::<i64>().ok();
    // An id a spreadsheet printed in scientific notation: said so in the detail.
    let not_an_integer = |name: &str, text: &str| {
        if is_scientific(text) {
            format!(
                "{name} '{text}' is in scientific notation (the file went through a spreadsheet); \
                 the id cannot be recovered"
            )
        } else {
            format!("{name} '{text}' is not an integer")
        }
    };
    let Some(product_id) = int(f.product_id) else {
        return reject(
            RejectReason::BadProductId,
            not_an_integer("product_id", f.product_id),
        );
    };
    let (category_id, category_mangled) = match int(f.category_id) {
        Some(id) => (id, None),
        None => match Scientific::parse(f.category_id) {
            Some(printed) if options.scientific_ids == ScientificIds::Repair => {
                (UNKNOWN_CATEGORY_ID, Some(printed))
            }
            Some(_) => {
                return reject(
                    RejectReason::BadCategoryId,
                    format!(
                        "category_id '{}' is in scientific notation (the file went through a \
                         spreadsheet) and [rules] scientific_ids is \"reject\"",
                        f.category_id
                    ),
                );
            }
            None => {
                return reject(
                    RejectReason::BadCategoryId,
                    not_an_integer("category_id", f.category_id),
                );
            }
        },
    };
    let Some(user_id) = int(f.user_id) else {
        return reject(
            RejectReason::BadUserId,
            not_an_integer("user_id", f.user_id),
        );
    };
    let Some(price_cents) = parse_cents(f.price) else {
        return reject(
            RejectReason::BadPrice,
            format!(
                "price '{}' is not a number with at most two decimals",
                f.price
            ),
        );
    };
    if f.user_session.trim().is_empty() {
        return reject(
            RejectReason::NullSession,
            "user_session is empty".to_string(),
        );
    }
    if price_cents <= 0 {
        return reject(
            RejectReason::NonPositivePrice,
            format!("price {} is not positive", f.price),
        );
    }
    // A value of only spaces is as missing as an empty one.
    let or_unknown = |v: &'a str| if v.trim().is_empty() { UNKNOWN } else { v };
    Ok(TypedEvent {
        event_id: 0,
        event_time_micros,
        event_date,
        event_type,
        product_id,
        category_id,
        category_mangled,
        category_code: or_unknown(f.category_code),
        brand: or_unknown(f.brand),
        price_cents,
        user_id,
        user_session: f.user_session,
    })
}

/// The identity of a valid row: its stable event id (xxh3-64) and its 128-bit key for
/// duplicate removal (xxh3-128), from one pass over the nine fields joined by the unit
/// separator (0x1f).
///
/// Duplicates are decided on the typed values, not on how a number was printed: ids are
/// hashed as the integers they are, the price with exactly two decimals, a repaired category
/// id as the id it was repaired to (an unrepaired one as printed). So `33.2` and `33.20`
/// are one event, and an event delivered once exactly and once through a spreadsheet is one
/// event when its category id could be repaired. For an export written by the store every
/// field is already in that form, and is hashed as delivered. Two rows share a key only when
/// those nine values are equal (a collision among 2^64 distinct rows has a probability of
/// about 10^-20).
pub fn identity(f: &RawFields<'_>, e: &TypedEvent<'_>) -> (i64, u128) {
    let (mut product, mut category, mut user) = (
        itoa::Buffer::new(),
        itoa::Buffer::new(),
        itoa::Buffer::new(),
    );
    let mut price = String::new();
    let category_id = match e.category_mangled {
        Some(_) if e.category_id == UNKNOWN_CATEGORY_ID => f.category_id,
        Some(_) => category.format(e.category_id),
        None => canonical_int(f.category_id, e.category_id, &mut category),
    };
    let parts = [
        f.event_time,
        f.event_type,
        canonical_int(f.product_id, e.product_id, &mut product),
        category_id,
        f.category_code,
        f.brand,
        canonical_price(f.price, e.price_cents, &mut price),
        canonical_int(f.user_id, e.user_id, &mut user),
        f.user_session,
    ];
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            h.update(&[0x1f]);
        }
        h.update(part.as_bytes());
    }
    (h.digest() as i64, h.digest128())
}

/// `text` when it is how `value` is written as a plain integer, else that writing.
fn canonical_int<'a>(text: &'a str, value: i64, buffer: &'a mut itoa::Buffer) -> &'a str {
    let digits = text.strip_prefix('-').unwrap_or(text).as_bytes();
    let plain = !digits.is_empty()
        && digits.iter().all(u8::is_ascii_digit)
        && (digits[0] != b'0' || (digits.len() == 1 && !text.starts_with('-')));
    if plain { text } else { buffer.format(value) }
}

/// `text` when it is how `cents` is written with two decimals, else that writing.
fn canonical_price<'a>(text: &'a str, cents: i128, buffer: &'a mut String) -> &'a str {
    let b = text.strip_prefix('-').unwrap_or(text).as_bytes();
    let n = b.len();
    let plain = n >= 4
        && b[n - 3] == b'.'
        && b[..n - 3].iter().all(u8::is_ascii_digit)
        && b[n - 2..].iter().all(u8::is_ascii_digit)
        && (b[0] != b'0' || n == 4)
        && !(text.starts_with('-') && cents == 0);
    if plain {
        return text;
    }
    use std::fmt::Write as _;
    let sign = if cents < 0 { "-" } else { "" };
    let _ = write!(
        buffer,
        "{sign}{}.{:02}",
        cents.abs() / 100,
        cents.abs() % 100
    );
    buffer
}

/// Parses `YYYY-MM-DD HH:MM:SS UTC` into (microseconds since epoch, days since epoch).
pub fn parse_event_time(text: &str) -> Option<(i64, i32)> {
    let b = text.as_bytes();
    if b.len() != 23 || &b[19..] != b" UTC" {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    if b[4] != b'-' || b[7] != b'-' || b[10] != b' ' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(digits(0..4)? as i32, digits(5..7)?, digits(8..10)?)?;
    let (h, m, s) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    if h > 23 || m > 59 || s > 59 {
        return None;
    }
    let days = shoplake_lake::time::date_to_days(date);
    let secs = i64::from(h * 3600 + m * 60 + s);
    Some((
        i64::from(days) * MICROS_PER_DAY + secs * MICROS_PER_SECOND,
        days,
    ))
}

/// Parses a decimal price with at most two decimals into cents; `None` when unreadable or
/// not below 10^8 (the range of DECIMAL(10,2)).
pub fn parse_cents(text: &str) -> Option<i128> {
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int_part, frac_part) = match body.split_once('.') {
        Some((i, f)) => (i, f),
        None => (body, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if frac_part.len() > 2
        || !int_part.bytes().all(|c| c.is_ascii_digit())
        || !frac_part.bytes().all(|c| c.is_ascii_digit())
        || (body.contains('.') && frac_part.is_empty())
        || int_part.len() > 8
    {
        return None;
    }
    let whole: i128 = if int_part.is_empty() {
        0
    } else {
        int_part.parse().ok()?
    };
    let frac: i128 = match frac_part.len() {
        0 => 0,
        1 => frac_part.parse::<i128>().ok()? * 10,
        _ => frac_part.parse().ok()?,
    };
    let cents = whole * 100 + frac;
    Some(if negative { -cents } else { cents })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_reasons_are_the_declared_codes() {
        let codes: Vec<&str> = RejectReason::ALL.iter().map(|r| r.code()).collect();
        assert_eq!(codes, shoplake_lake::tables::REJECT_REASONS);
    }

    use super::*;

    fn fields<'a>(time: &'a str, kind: &'a str, price: &'a str, session: &'a str) -> RawFields<'a> {
        RawFields {
            event_time: time,
            event_type: kind,
            product_id: "1005115",
            category_id: "2232732093077520756",
            category_code: "",
            brand: "apple",
            price,
            user_id: "518197534",
            user_session: session,
        }
    }

    #[test]
    fn parses_timestamps_strictly() {
        // 2020-04-01T00:00:03Z = 1585699203 s.
        assert_eq!(
            parse_event_time("2020-04-01 00:00:03 UTC"),
            Some((1_585_699_203_000_000, 18353))
        );
        assert_eq!(parse_event_time("2020-04-01 00:00:03"), None);
        assert_eq!(parse_event_time("2020-04-01 24:00:00 UTC"), None);
        assert_eq!(parse_event_time("2020-02-30 00:00:00 UTC"), None);
        assert_eq!(parse_event_time("2020-04-01T00:00:03 UTC"), None);
        assert_eq!(parse_event_time("2020-04-01 00:00:03 CET"), None);
    }

    #[test]
    fn parses_prices_to_exact_cents() {
        assert_eq!(parse_cents("1050.54"), Some(105_054));
        assert_eq!(parse_cents("0.10"), Some(10));
        assert_eq!(parse_cents("0.1"), Some(10));
        assert_eq!(parse_cents("7"), Some(700));
        assert_eq!(parse_cents(".5"), Some(50));
        assert_eq!(parse_cents("-1.00"), Some(-100));
        assert_eq!(parse_cents("0.00"), Some(0));
        assert_eq!(parse_cents("2574.07"), Some(257_407));
        assert_eq!(parse_cents("1.005"), None);
        assert_eq!(parse_cents("1."), None);
        assert_eq!(parse_cents("abc"), None);
        assert_eq!(parse_cents(""), None);
        assert_eq!(parse_cents("1e3"), None);
        assert_eq!(parse_cents("123456789.00"), None);
    }

    #[test]
    fn first_failing_rule_names_the_reason() {
        let t = "2020-04-01 00:00:03 UTC";
        let reason = |f: RawFields<'_>| check(&f, &RuleOptions::default()).err().map(|r| r.reason);
        assert_eq!(
            reason(fields("bad", "view", "1.00", "s")),
            Some(RejectReason::BadTimestamp)
        );
        assert_eq!(
            reason(fields(t, "click", "0.00", "")),
            Some(RejectReason::UnknownEventType)
        );
        assert_eq!(
            reason(fields(t, "view", "x", "")),
            Some(RejectReason::BadPrice)
        );
        assert_eq!(
            reason(fields(t, "view", "0.00", "")),
            Some(RejectReason::NullSession)
        );
        assert_eq!(
            reason(fields(t, "view", "0.00", "s")),
            Some(RejectReason::NonPositivePrice)
        );
        assert_eq!(
            reason(fields(t, "view", "-3.10", "s")),
            Some(RejectReason::NonPositivePrice)
        );
        let mut f = fields(t, "view", "1.00", "s");
        f.user_id = "12a";
        assert_eq!(reason(f), Some(RejectReason::BadUserId));
        let ok = check(
            &fields(t, "purchase", "1050.54", "s"),
            &RuleOptions::default(),
        )
        .unwrap();
        assert_eq!(ok.category_code, UNKNOWN);
        assert_eq!(ok.brand, "apple");
        assert_eq!(ok.price_cents, 105_054);
        assert_eq!(ok.event_type, "purchase");
    }

    /// The identity of a row, as the rules type it.
    fn id_of(f: &RawFields<'_>) -> (i64, u128) {
        let e = validate(f, &RuleOptions::default()).unwrap();
        identity(f, &e)
    }

    #[test]
    fn event_id_depends_on_every_field() {
        let a = fields("2020-04-01 00:00:03 UTC", "view", "1.00", "s");
        let mut b = a;
        b.brand = "";
        assert_ne!(id_of(&a), id_of(&b));
        assert_eq!(
            id_of(&a),
            id_of(&fields("2020-04-01 00:00:03 UTC", "view", "1.00", "s"))
        );
    }

    #[test]
    fn the_identity_of_an_export_as_written_is_the_hash_of_its_joined_fields() {
        let f = fields("2020-04-01 00:00:03 UTC", "cart", "12.50", "abc");
        let joined = [
            f.event_time,
            f.event_type,
            f.product_id,
            f.category_id,
            f.category_code,
            f.brand,
            f.price,
            f.user_id,
            f.user_session,
        ]
        .join("\u{1f}");
        let expected = (
            xxhash_rust::xxh3::xxh3_64(joined.as_bytes()) as i64,
            xxhash_rust::xxh3::xxh3_128(joined.as_bytes()),
        );
        assert_eq!(id_of(&f), expected);
        let checked = check(&f, &RuleOptions::default()).unwrap();
        assert_eq!(checked.event_id, expected.0);
    }

    #[test]
    fn numbers_printed_differently_are_the_same_event() {
        let exact = fields("2020-04-01 00:00:03 UTC", "cart", "33.20", "abc");
        for (price, product, user) in [
            ("33.2", "1005115", "518197534"),
            ("33.20", "+1005115", "0518197534"),
            ("033.200", "1005115", "518197534"),
        ] {
            let mut other = exact;
            other.price = price;
            other.product_id = product;
            other.user_id = user;
            // Spreadsheets drop trailing zeros; a three-decimal price is not a price.
            if price == "033.200" {
                assert!(validate(&other, &RuleOptions::default()).is_err());
                continue;
            }
            assert_eq!(id_of(&other), id_of(&exact), "{price} {product} {user}");
        }
        let mut different = exact;
        different.price = "33.21";
        assert_ne!(id_of(&different), id_of(&exact));
    }

    #[test]
    fn scientific_ids_are_kept_for_repair_or_rejected_as_asked() {
        let t = "2020-04-01 00:00:03 UTC";
        let mut f = fields(t, "view", "1.00", "s");
        f.category_id = "2.05301E+18";
        let kept = validate(&f, &RuleOptions::default()).unwrap();
        assert_eq!(kept.category_id, UNKNOWN_CATEGORY_ID);
        assert_eq!(kept.category_mangled, Scientific::parse("2.05301E+18"));
        let strict = RuleOptions {
            scientific_ids: ScientificIds::Reject,
        };
        let rejected = validate(&f, &strict).unwrap_err();
        assert_eq!(rejected.reason, RejectReason::BadCategoryId);
        assert!(
            rejected.detail.contains("scientific notation"),
            "{}",
            rejected.detail
        );
        // Product and user ids have 7-9 digits and survive a spreadsheet: one in scientific
        // notation is rejected, saying why.
        let mut g = fields(t, "view", "1.00", "s");
        g.product_id = "1.00512E+06";
        let r = validate(&g, &RuleOptions::default()).unwrap_err();
        assert_eq!(r.reason, RejectReason::BadProductId);
        assert!(r.detail.contains("scientific notation"), "{}", r.detail);
        let mut h = fields(t, "view", "1.00", "s");
        h.user_id = "5.18198E+08";
        assert_eq!(
            validate(&h, &RuleOptions::default()).unwrap_err().reason,
            RejectReason::BadUserId
        );
    }
}
