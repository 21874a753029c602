//! The generator's products: categories (id -> dotted code), brands and base prices, built once
//! from the seed, with each product's CSV text (`product_id,category_id,category_code,brand,`)
//! preformatted so that writing a row is a plain byte copy.

use rand::SeedableRng;

use super::sampling::{Alias, Rng, ZipfInverse, below, mix64, normal, unit};

/// Highest price the store exports; base prices above it are clamped to it, as in the source.
pub(super) const PRICE_CAP_CENTS: u32 = 257_407;

/// Share of products (and so, by stratification over popularity, of rows) with an empty code.
const EMPTY_CODE_SHARE: f64 = 0.10;
/// Share of products (and rows) with an empty brand.
const EMPTY_BRAND_SHARE: f64 = 0.13;
/// Zipf exponent of product popularity.
const POPULARITY_S: f64 = 1.1;
/// Mandelbrot offset of product popularity (keeps the top product around 1 % of views).
const POPULARITY_Q: f64 = 20.0;
/// Spread (log-space standard deviation) of base prices within one category.
const PRICE_SIGMA: f64 = 0.82;
/// Global price multiplier applied to every category median (tuned for median ~150, mean ~270).
const PRICE_SCALE: f64 = 0.84;
/// Number of category ids that carry no code at all.
const EMPTY_CODE_CATEGORIES: usize = 16;

const PHONES: &[&str] = &[
    "samsung", "apple", "xiaomi", "huawei", "oppo", "honor", "realme", "vivo",
];
const AUDIO: &[&str] = &[
    "jbl",
    "sony",
    "apple",
    "samsung",
    "xiaomi",
    "sennheiser",
    "philips",
    "marshall",
];
const TV: &[&str] = &[
    "samsung", "lg", "sony", "philips", "xiaomi", "hisense", "tcl",
];
const WATCHES: &[&str] = &[
    "apple", "samsung", "xiaomi", "huawei", "garmin", "casio", "amazfit",
];
const TABLETS: &[&str] = &["apple", "samsung", "lenovo", "huawei", "xiaomi"];
const CAMERAS: &[&str] = &["canon", "nikon", "sony", "fujifilm", "gopro"];
const CAR_AUDIO: &[&str] = &["pioneer", "kenwood", "alpine", "jvc", "sony"];
const LANDLINE: &[&str] = &["panasonic", "gigaset", "texet", "alcatel"];
const LAPTOPS: &[&str] = &[
    "lenovo", "hp", "asus", "acer", "apple", "dell", "msi", "huawei",
];
const DESKTOPS: &[&str] = &["hp", "lenovo", "asus", "acer", "dell"];
const GPUS: &[&str] = &["asus", "msi", "gigabyte", "palit", "zotac"];
const CPUS: &[&str] = &["intel", "amd"];
const PRINTERS: &[&str] = &["hp", "canon", "epson", "brother", "xerox"];
const PERIPHERALS: &[&str] = &[
    "logitech", "a4tech", "razer", "defender", "genius", "hyperx",
];
const BIG_APPLIANCES: &[&str] = &[
    "samsung",
    "lg",
    "bosch",
    "indesit",
    "beko",
    "electrolux",
    "haier",
    "atlant",
];
const SMALL_KITCHEN: &[&str] = &[
    "philips", "bosch", "braun", "tefal", "redmond", "polaris", "vitek", "moulinex",
];
const MICROWAVES: &[&str] = &["samsung", "lg", "panasonic", "midea", "gorenje"];
const VACUUMS: &[&str] = &[
    "samsung", "lg", "xiaomi", "philips", "dyson", "karcher", "tefal", "vitek",
];
const CLIMATE: &[&str] = &[
    "lg",
    "samsung",
    "ballu",
    "electrolux",
    "haier",
    "ariston",
    "thermex",
];
const PERSONAL_CARE: &[&str] = &[
    "philips",
    "braun",
    "remington",
    "rowenta",
    "moser",
    "polaris",
];
const SHOES: &[&str] = &[
    "nike", "adidas", "puma", "reebok", "respect", "baden", "converse", "vans",
];
const CLOTHES: &[&str] = &["adidas", "nike", "puma", "levis", "reebok"];
const FURNITURE: &[&str] = &["brw", "askona", "sokol", "hoff", "ormatek", "sheffilton"];
const DASHCAMS: &[&str] = &["xiaomi", "neoline", "playme", "artway", "70mai"];
const TOYS: &[&str] = &["lego", "hasbro", "mattel", "chicco", "tomy", "hotwheels"];
const CARRIAGES: &[&str] = &["chicco", "cybex", "happybaby", "inglesina"];
const BICYCLES: &[&str] = &["stels", "forward", "stern", "merida", "nordway"];
const RACKETS: &[&str] = &["wilson", "head", "babolat", "torneo"];
const POWER_TOOLS: &[&str] = &[
    "bosch",
    "makita",
    "dewalt",
    "interskol",
    "hammer",
    "stanley",
];
const GARDEN: &[&str] = &["husqvarna", "champion", "bosch", "makita", "patriot"];
const BAGS: &[&str] = &["samsonite", "xiaomi", "tigernu", "victorinox"];
const MEDICAL: &[&str] = &["omron", "microlife", "beurer", "and"];
const CARTRIDGES: &[&str] = &["hp", "canon", "epson", "brother", "cactus"];
const LIGHTING: &[&str] = &["gauss", "osram", "philips", "camelion", "feron"];

/// One category code with the brands its products carry, a median price and a traffic weight.
struct Spec {
    code: &'static str,
    brands: &'static [&'static str],
    median_price: f64,
    weight: f64,
}

const fn spec(
    code: &'static str,
    brands: &'static [&'static str],
    median_price: f64,
    weight: f64,
) -> Spec {
    Spec {
        code,
        brands,
        median_price,
        weight,
    }
}

/// Index of the smartphone spec in [`SPECS`] (the remap quirk reuses its brands and prices).
const SMARTPHONE_SPEC: usize = 0;
/// The code the remap quirk puts on one category of phones.
const QUIRK_CODE: &str = "construction.tools.light";

/// The fixed list of realistic category codes (2-4 levels).
const SPECS: &[Spec] = &[
    spec("electronics.smartphone", PHONES, 260.0, 10.0),
    spec("electronics.audio.headphone", AUDIO, 45.0, 4.0),
    spec("electronics.video.tv", TV, 420.0, 3.5),
    spec("electronics.clocks", WATCHES, 140.0, 3.0),
    spec("electronics.tablet", TABLETS, 290.0, 1.5),
    spec("electronics.camera.photo", CAMERAS, 480.0, 0.8),
    spec("electronics.audio.subwoofer", CAR_AUDIO, 95.0, 0.6),
    spec("electronics.telephone", LANDLINE, 30.0, 0.5),
    spec("computers.notebook", LAPTOPS, 680.0, 3.0),
    spec("computers.desktop", DESKTOPS, 620.0, 0.8),
    spec("computers.components.videocards", GPUS, 360.0, 1.0),
    spec("computers.components.cpu", CPUS, 210.0, 0.6),
    spec("computers.peripherals.printer", PRINTERS, 190.0, 0.6),
    spec("computers.peripherals.mouse", PERIPHERALS, 22.0, 0.8),
    spec("computers.peripherals.keyboard", PERIPHERALS, 33.0, 0.5),
    spec("appliances.kitchen.washer", BIG_APPLIANCES, 340.0, 3.0),
    spec(
        "appliances.kitchen.refrigerators",
        BIG_APPLIANCES,
        520.0,
        2.5,
    ),
    spec("appliances.kitchen.microwave", MICROWAVES, 95.0, 0.8),
    spec("appliances.kitchen.blender", SMALL_KITCHEN, 48.0, 0.8),
    spec("appliances.kitchen.kettle", SMALL_KITCHEN, 32.0, 0.8),
    spec("appliances.environment.vacuum", VACUUMS, 170.0, 2.0),
    spec(
        "appliances.environment.air_conditioner",
        CLIMATE,
        410.0,
        0.8,
    ),
    spec("appliances.environment.water_heater", CLIMATE, 160.0, 0.6),
    spec("appliances.personal.hair_cutter", PERSONAL_CARE, 36.0, 0.8),
    spec("appliances.iron", SMALL_KITCHEN, 52.0, 0.6),
    spec("apparel.shoes", SHOES, 65.0, 1.5),
    spec("apparel.shoes.keds", SHOES, 58.0, 0.6),
    spec("apparel.trousers", CLOTHES, 42.0, 0.5),
    spec("apparel.costume", CLOTHES, 75.0, 0.4),
    spec("furniture.living_room.sofa", FURNITURE, 430.0, 0.7),
    spec("furniture.living_room.cabinet", FURNITURE, 190.0, 0.5),
    spec("furniture.bedroom.bed", FURNITURE, 360.0, 0.6),
    spec("furniture.kitchen.table", FURNITURE, 125.0, 0.5),
    spec("auto.accessories.player", CAR_AUDIO, 115.0, 0.6),
    spec("auto.accessories.videoregister", DASHCAMS, 72.0, 0.5),
    spec("kids.toys", TOYS, 36.0, 1.0),
    spec("kids.carriage", CARRIAGES, 330.0, 0.5),
    spec("sport.bicycle", BICYCLES, 270.0, 0.8),
    spec("sport.tennis", RACKETS, 62.0, 0.3),
    spec("construction.tools.drill", POWER_TOOLS, 115.0, 0.8),
    spec("construction.tools.saw", POWER_TOOLS, 145.0, 0.5),
    spec("construction.tools.light", LIGHTING, 16.0, 0.3),
    spec("country_yard.lawn_mower", GARDEN, 260.0, 0.4),
    spec("accessories.bag", BAGS, 62.0, 0.5),
    spec("medicine.tools.tonometer", MEDICAL, 42.0, 0.3),
    spec("stationery.cartrige", CARTRIDGES, 31.0, 0.3),
];

/// Traffic weight of the mislabelled phone category.
const QUIRK_WEIGHT: f64 = 1.5;

/// One category id with its (possibly empty) code and the spec its products follow.
struct Category {
    id: u64,
    code: &'static str,
    spec: usize,
    weight: f64,
}

/// Fixed-size, padded text pieces: a line is assembled from constant-size copies (which
/// compile to a couple of vector moves) that advance by the real length.
#[derive(Clone, Copy)]
pub(super) struct Padded<const N: usize> {
    /// The text, followed by padding.
    pub(super) bytes: [u8; N],
    /// How many of `bytes` are text.
    pub(super) len: u8,
}

impl<const N: usize> Padded<N> {
    /// Pads `parts` joined together; panics if they do not fit (a bug in the static tables).
    pub(super) fn new(parts: &[&[u8]]) -> Self {
        let mut bytes = [0u8; N];
        let mut len = 0;
        for p in parts {
            bytes[len..len + p.len()].copy_from_slice(p);
            len += p.len();
        }
        Padded {
            bytes,
            len: len as u8,
        }
    }
}

/// One product, packed in 16 bytes so that a draw from the long tail costs one cache miss.
#[derive(Clone, Copy)]
pub(super) struct Product {
    /// `product_id,` padded.
    pub(super) id_text: [u8; 9],
    /// Length of the text in `id_text`.
    pub(super) id_len: u8,
    /// Index into [`ProductList::category_text`].
    pub(super) category: u8,
    /// Index into [`ProductList::brand_text`].
    pub(super) brand: u8,
    /// Base price in cents.
    pub(super) price: u32,
}

/// The catalogue of products in popularity-rank order (rank 0 is the most viewed).
pub(super) struct ProductList {
    products: Vec<Product>,
    /// `category_id,category_code,` per category.
    categories: Vec<Padded<64>>,
    /// `brand,` per brand (index 0 is the empty brand).
    brands: Vec<Padded<16>>,
    /// Popularity over ranks (continuous Zipf-Mandelbrot: no table, no cache misses).
    popularity: ZipfInverse,
}

impl ProductList {
    /// Builds a catalogue of `n >= 1` products from `seed`.
    pub(super) fn build(n: usize, seed: u64) -> Self {
        let mut rng = Rng::seed_from_u64(mix64(seed ^ 0x00C0_FFEE_CA7A_1065));
        let categories = build_categories(&mut rng);
        let labelled: Vec<usize> = (0..categories.len())
            .filter(|&i| !categories[i].code.is_empty())
            .collect();
        let empty: Vec<usize> = (0..categories.len())
            .filter(|&i| categories[i].code.is_empty())
            .collect();
        let labelled_pick = Alias::new(
            &labelled
                .iter()
                .map(|&i| categories[i].weight)
                .collect::<Vec<_>>(),
        );
        let mut num = itoa::Buffer::new();
        let category_text: Vec<Padded<64>> = categories
            .iter()
            .map(|c| Padded::new(&[num.format(c.id).as_bytes(), b",", c.code.as_bytes(), b","]))
            .collect();
        assert!(category_text.len() <= 256);
        let mut brand_names: Vec<&'static str> = vec![""];

        let ids = product_ids(n, &mut rng);
        // Offsets into two Weyl sequences that stratify "empty code" / "empty brand" over the
        // popularity ranks, so that the row shares hold even though popularity is skewed.
        let phase_code = unit(&mut rng);
        let phase_brand = unit(&mut rng);
        const WEYL_CODE: f64 = 0.618_033_988_749_894_9; // golden ratio - 1
        const WEYL_BRAND: f64 = 0.414_213_562_373_095_1; // sqrt(2) - 1

        let mut products = Vec::with_capacity(n);
        for (rank, &product_id) in ids.iter().enumerate() {
            let r = rank as f64;
            let code_empty = (phase_code + r * WEYL_CODE).fract() < EMPTY_CODE_SHARE;
            let brand_empty = (phase_brand + r * WEYL_BRAND).fract() < EMPTY_BRAND_SHARE;
            let category = if code_empty {
                empty[below(&mut rng, empty.len() as u64) as usize]
            } else {
                labelled[labelled_pick.sample(&mut rng) as usize]
            };
            let spec = &SPECS[categories[category].spec];
            let brand = if brand_empty {
                ""
            } else {
                // Skewed towards the first (best-known) brands of the list.
                let u = unit(&mut rng);
                spec.brands[((u * u) * spec.brands.len() as f64) as usize]
            };
            let brand = match brand_names.iter().position(|&b| b == brand) {
                Some(i) => i,
                None => {
                    brand_names.push(brand);
                    brand_names.len() - 1
                }
            };
            let price = spec.median_price * PRICE_SCALE * (PRICE_SIGMA * normal(&mut rng)).exp();
            let cents =
                ((price * 100.0).round().max(1.0) as u64).min(PRICE_CAP_CENTS as u64) as u32;
            let id = Padded::<9>::new(&[num.format(product_id as u64).as_bytes(), b","]);
            products.push(Product {
                id_text: id.bytes,
                id_len: id.len,
                category: category as u8,
                brand: brand as u8,
                price: cents,
            });
        }
        assert!(brand_names.len() <= 256);
        let brands = brand_names
            .iter()
            .map(|b| Padded::new(&[b.as_bytes(), b","]))
            .collect();
        let popularity = ZipfInverse::new(n as u64, POPULARITY_Q, POPULARITY_S);
        ProductList {
            products,
            categories: category_text,
            brands,
            popularity,
        }
    }

    /// Product `i` (a rank).
    #[inline]
    pub(super) fn product(&self, i: u32) -> &Product {
        &self.products[i as usize]
    }

    /// The padded `category_id,category_code,` of category index `c`.
    #[inline]
    pub(super) fn category_text(&self, c: u8) -> &Padded<64> {
        &self.categories[c as usize]
    }

    /// The padded `brand,` of brand index `b`.
    #[inline]
    pub(super) fn brand_text(&self, b: u8) -> &Padded<16> {
        &self.brands[b as usize]
    }

    /// Draws a product by popularity.
    #[inline]
    pub(super) fn sample(&self, rng: &mut Rng) -> u32 {
        self.popularity.sample(rng) as u32
    }

    /// The full `product_id,category_id,category_code,brand,` text of product `i` (for tests).
    #[cfg(test)]
    pub(super) fn text(&self, i: u32) -> Vec<u8> {
        let p = self.product(i);
        let c = self.category_text(p.category);
        let b = self.brand_text(p.brand);
        [
            &p.id_text[..p.id_len as usize],
            &c.bytes[..c.len as usize],
            &b.bytes[..b.len as usize],
        ]
        .concat()
    }

    /// Base price of product `i` in cents (for tests).
    #[cfg(test)]
    pub(super) fn price(&self, i: u32) -> u32 {
        self.product(i).price
    }
}

/// Category ids: one per code (two for the big codes), the phone category mislabelled as
/// `construction.tools.light`, and a set of ids without a code.
fn build_categories(rng: &mut Rng) -> Vec<Category> {
    let mut cats: Vec<Category> = Vec::new();
    for (i, s) in SPECS.iter().enumerate() {
        let ids = if s.weight >= 2.0 { 2 } else { 1 };
        for _ in 0..ids {
            cats.push(Category {
                id: 0,
                code: s.code,
                spec: i,
                weight: s.weight / ids as f64,
            });
        }
    }
    cats.push(Category {
        id: 0,
        code: QUIRK_CODE,
        spec: SMARTPHONE_SPEC,
        weight: QUIRK_WEIGHT,
    });
    let spec_pick = Alias::new(&SPECS.iter().map(|s| s.weight).collect::<Vec<_>>());
    for _ in 0..EMPTY_CODE_CATEGORIES {
        let spec = spec_pick.sample(rng) as usize;
        cats.push(Category {
            id: 0,
            code: "",
            spec,
            weight: 1.0,
        });
    }
    // 19-digit ids in the range the store uses (2053013552226107603 and similar).
    const LOW: u64 = 2_053_013_552_000_000_000;
    const SPAN: u64 = 330_000_000_000_000_000;
    let mut used: Vec<u64> = Vec::with_capacity(cats.len());
    for c in cats.iter_mut() {
        let id = loop {
            let id = LOW + below(rng, SPAN);
            if !used.contains(&id) {
                break id;
            }
        };
        used.push(id);
        c.id = id;
    }
    cats
}

/// `n` distinct 7-8 digit product ids (from 1000000 up, random gaps), shuffled over the ranks.
fn product_ids(n: usize, rng: &mut Rng) -> Vec<u32> {
    // Average gap such that the largest id stays below 100_000_000 even for 200k products.
    let max_gap = (2 * (90_000_000 / n.max(1))).clamp(2, 800) as u64;
    let mut ids = Vec::with_capacity(n);
    let mut id: u64 = 1_000_000 + below(rng, 5_000);
    for _ in 0..n {
        ids.push(id as u32);
        id += 1 + below(rng, max_gap);
    }
    for i in (1..n).rev() {
        let j = below(rng, i as u64 + 1) as usize;
        ids.swap(i, j);
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_texts_have_four_fields() {
        let c = ProductList::build(2000, 7);
        let mut quirk = 0;
        for i in 0..2000 {
            let t = String::from_utf8(c.text(i)).unwrap();
            let f: Vec<&str> = t.split(',').collect();
            assert_eq!(f.len(), 5, "{t}");
            assert!(f[0].len() == 7 || f[0].len() == 8, "{t}");
            assert_eq!(f[1].len(), 19, "{t}");
            assert!(f[4].is_empty());
            if f[2] == QUIRK_CODE && PHONES.contains(&f[3]) {
                quirk += 1;
            }
            assert!(c.price(i) >= 1 && c.price(i) <= PRICE_CAP_CENTS);
        }
        assert!(quirk > 0);
    }
}
