//! Synthetic but stable attributes the export does not carry: a user's name and e-mail, a
//! session's device and channel, a product's name and stock. Each is a function of the id
//! alone, so loading the same export twice (or into two databases) gives the same values.

const FIRST: [&str; 24] = [
    "Ana", "Luis", "Marta", "Jorge", "Lucia", "Pablo", "Elena", "Diego", "Sara", "Hugo", "Irene",
    "Mateo", "Julia", "Daniel", "Laura", "Carlos", "Alba", "David", "Noa", "Martin", "Paula",
    "Adrian", "Carmen", "Iker",
];
const LAST: [&str; 20] = [
    "Garcia",
    "Rodriguez",
    "Gonzalez",
    "Fernandez",
    "Lopez",
    "Martinez",
    "Sanchez",
    "Perez",
    "Gomez",
    "Martin",
    "Jimenez",
    "Ruiz",
    "Hernandez",
    "Diaz",
    "Moreno",
    "Alvarez",
    "Romero",
    "Navarro",
    "Torres",
    "Dominguez",
];

/// Devices and their shares in thousandths.
const DEVICES: [(&str, u64); 4] = [
    ("mobile", 520),
    ("desktop", 330),
    ("app", 110),
    ("tablet", 40),
];

/// Channels and their shares in thousandths.
const CHANNELS: [(&str, u64); 6] = [
    ("organic", 340),
    ("direct", 220),
    ("paid_search", 180),
    ("social", 120),
    ("email", 90),
    ("referral", 50),
];

/// The device types a session may have (the schema's check constraint).
#[cfg(test)]
const DEVICE_TYPES: [&str; 4] = ["desktop", "mobile", "tablet", "app"];

/// splitmix64: a well-mixed 64-bit hash of a 64-bit value.
pub fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn pick(weights: &[(&'static str, u64)], h: u64) -> &'static str {
    let total: u64 = weights.iter().map(|(_, w)| w).sum();
    let mut x = h % total;
    for (name, w) in weights {
        if x < *w {
            return name;
        }
        x -= w;
    }
    weights[0].0
}

fn person(user_id: i64) -> (&'static str, &'static str) {
    let h = mix(user_id as u64);
    (
        FIRST[(h % FIRST.len() as u64) as usize],
        LAST[((h >> 20) % LAST.len() as u64) as usize],
    )
}

/// A user's display name.
pub fn user_name(user_id: i64) -> String {
    let (first, last) = person(user_id);
    format!("{first} {last}")
}

/// A user's e-mail (unique: it carries the id).
pub fn user_email(user_id: i64) -> String {
    let (first, last) = person(user_id);
    format!(
        "{}.{}.{user_id}@example.com",
        first.to_lowercase(),
        last.to_lowercase()
    )
}

fn session_hash(session: u128) -> u64 {
    mix((session as u64) ^ mix((session >> 64) as u64))
}

/// A session's device type.
pub fn device_type(session: u128) -> &'static str {
    pick(&DEVICES, session_hash(session))
}

/// A session's acquisition channel.
pub fn channel(session: u128) -> &'static str {
    pick(&CHANNELS, session_hash(session) >> 17)
}

/// A product's name from its brand and leaf category.
pub fn product_name(product_id: i64, brand: Option<&str>, leaf: Option<&str>) -> String {
    format!(
        "{} {} {product_id}",
        brand.unwrap_or("generic"),
        leaf.unwrap_or("item")
    )
}

/// A product's stock.
pub fn stock(product_id: i64) -> i64 {
    (mix(product_id as u64 ^ 0x5eed) % 500) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_stable_and_spread() {
        assert_eq!(user_email(518197534), user_email(518197534));
        assert!(user_email(42).ends_with(".42@example.com"));
        let mut devices = std::collections::HashMap::new();
        for s in 0..10_000u128 {
            *devices.entry(device_type(s * 7919)).or_insert(0) += 1;
            assert!(DEVICE_TYPES.contains(&device_type(s)));
        }
        // Shares within a few points of the weights.
        let mobile = devices["mobile"] as f64 / 10_000.0;
        assert!((mobile - 0.52).abs() < 0.03, "{mobile}");
        assert_eq!(devices.len(), 4);
    }
}
