//! Small, allocation-free sampling helpers on top of the seeded xoshiro generator.

use rand::RngCore;
use rand_xoshiro::Xoshiro256PlusPlus;

/// The one PRNG used everywhere in the generator (fast, seedable, reproducible).
pub(super) type Rng = Xoshiro256PlusPlus;

/// A uniform float in `[0, 1)` with 53 random bits.
#[inline]
pub(super) fn unit(rng: &mut Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A uniform float in `(0, 1]` (safe to take the logarithm of).
#[inline]
pub(super) fn unit_open0(rng: &mut Rng) -> f64 {
    ((rng.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A uniform integer in `[0, n)` (multiply-shift; the bias is far below anything measurable).
#[inline]
pub(super) fn below(rng: &mut Rng, n: u64) -> u64 {
    ((rng.next_u64() as u128 * n as u128) >> 64) as u64
}

/// The threshold `t` such that `next_u64() < t` happens with probability `p`.
pub(super) fn threshold(p: f64) -> u64 {
    // `as` saturates, so p >= 1 gives u64::MAX.
    (p.clamp(0.0, 1.0) * 18_446_744_073_709_551_616.0) as u64
}

/// The threshold for a 21-bit slice of a random word (three independent coins per `u64`).
pub(super) fn threshold21(p: f64) -> u32 {
    (p.clamp(0.0, 1.0) * (1u32 << 21) as f64) as u32
}

/// A standard normal variate (Box-Muller; only used while building the catalogue).
pub(super) fn normal(rng: &mut Rng) -> f64 {
    let u1 = unit_open0(rng);
    let u2 = unit(rng);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// `1 + Geometric` with the given mean (>= 1): number of trials up to the first success.
#[inline]
pub(super) fn geometric(rng: &mut Rng, mean: f64) -> u32 {
    if mean <= 1.0 {
        return 1;
    }
    let ln_q = (1.0 - 1.0 / mean).ln();
    let k = (unit_open0(rng).ln() / ln_q).floor();
    1 + k.min(1.0e9) as u32
}

/// SplitMix64 finaliser: a cheap, good 64-bit mixing function for hashing small keys.
#[inline]
pub(super) fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Walker/Vose alias table: O(1) sampling from a fixed discrete distribution.
pub(super) struct Alias {
    /// Per bucket: (acceptance threshold scaled to 2^32, alias index).
    buckets: Vec<(u32, u32)>,
}

impl Alias {
    /// Builds the table from non-negative weights (at least one must be positive).
    pub(super) fn new(weights: &[f64]) -> Self {
        let n = weights.len();
        assert!(n > 0 && n <= u32::MAX as usize);
        let total: f64 = weights.iter().sum();
        let mut scaled: Vec<f64> = weights.iter().map(|w| w * n as f64 / total).collect();
        let mut buckets = vec![(u32::MAX, 0u32); n];
        let mut small: Vec<u32> = Vec::new();
        let mut large: Vec<u32> = Vec::new();
        for (i, &p) in scaled.iter().enumerate() {
            if p < 1.0 {
                small.push(i as u32);
            } else {
                large.push(i as u32);
            }
        }
        while let (Some(&s), Some(&l)) = (small.last(), large.last()) {
            small.pop();
            let ps = scaled[s as usize];
            buckets[s as usize] = (
                ((ps * 4_294_967_296.0) as u64).min(u32::MAX as u64) as u32,
                l,
            );
            scaled[l as usize] -= 1.0 - ps;
            if scaled[l as usize] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        // Whatever is left is (up to rounding) exactly 1: always accept.
        for i in small.into_iter().chain(large) {
            buckets[i as usize] = (u32::MAX, i);
        }
        Alias { buckets }
    }

    /// Draws one index.
    #[inline]
    pub(super) fn sample(&self, rng: &mut Rng) -> u32 {
        let r = rng.next_u64();
        let i = (((r >> 32) * self.buckets.len() as u64) >> 32) as usize;
        let (accept, alias) = self.buckets[i];
        if (r as u32) < accept { i as u32 } else { alias }
    }
}

/// Continuous Zipf-Mandelbrot sampler over ranks `0..n` with weight `(rank + q)^-s`,
/// by inverting the CDF of the continuous approximation: no table, O(1) memory.
pub(super) struct ZipfInverse {
    n: u64,
    q: f64,
    s: f64,
    a: f64,
    b: f64,
}

impl ZipfInverse {
    /// A sampler over `n >= 1` ranks.
    pub(super) fn new(n: u64, q: f64, s: f64) -> Self {
        let (a, b) = if (s - 1.0).abs() < 1e-9 {
            (q.ln(), (n as f64 + q).ln())
        } else {
            (q.powf(1.0 - s), (n as f64 + q).powf(1.0 - s))
        };
        ZipfInverse { n, q, s, a, b }
    }

    /// Draws one rank in `0..n`.
    #[inline]
    pub(super) fn sample(&self, rng: &mut Rng) -> u64 {
        let u = unit(rng);
        let v = self.a + u * (self.b - self.a);
        let x = if (self.s - 1.0).abs() < 1e-9 {
            v.exp()
        } else {
            v.powf(1.0 / (1.0 - self.s))
        } - self.q;
        (x.max(0.0) as u64).min(self.n - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn alias_matches_weights() {
        let w = [1.0, 2.0, 3.0, 4.0, 0.0];
        let a = Alias::new(&w);
        let mut rng = Rng::seed_from_u64(1);
        let mut counts = [0u32; 5];
        for _ in 0..100_000 {
            counts[a.sample(&mut rng) as usize] += 1;
        }
        assert_eq!(counts[4], 0);
        for i in 0..4 {
            let expect = 100_000.0 * w[i] / 10.0;
            assert!(
                (counts[i] as f64 - expect).abs() < 0.05 * expect,
                "{counts:?}"
            );
        }
    }

    #[test]
    fn geometric_mean() {
        let mut rng = Rng::seed_from_u64(2);
        let n = 200_000;
        let sum: u64 = (0..n).map(|_| geometric(&mut rng, 4.0) as u64).sum();
        let mean = sum as f64 / n as f64;
        assert!((mean - 4.0).abs() < 0.05, "{mean}");
    }

    #[test]
    fn zipf_in_range_and_skewed() {
        let mut rng = Rng::seed_from_u64(3);
        let z = ZipfInverse::new(1000, 2.0, 1.0);
        let mut low = 0;
        for _ in 0..10_000 {
            let r = z.sample(&mut rng);
            assert!(r < 1000);
            if r < 100 {
                low += 1;
            }
        }
        assert!(low > 5_000, "{low}");
    }
}
