//! A small, fast, reproducible pseudo-random generator (SplitMix64), seed derivation, and a
//! stable hash (FNV-1a).
//!
//! Written here rather than taken from a crate so that a seed gives the same sequence on every
//! platform and with every future dependency version: the data split, weight initialization,
//! shuffling and dropout masks of the imdb-sentiment crates all come from it, and a saved
//! experiment's numbers depend on that sequence never changing. Its own crate, with no
//! dependency, so that the data crate and the model crate share it without depending on each
//! other.
//!
//! ```
//! use imdb_rng::{SeededRng, derive_seed};
//!
//! let mut a = SeededRng::new(42);
//! let mut b = SeededRng::new(42);
//! assert_eq!(a.next_u64(), b.next_u64());
//! assert!(a.below(10) < 10);
//! assert_ne!(derive_seed(42, &[1]), derive_seed(42, &[2]));
//! ```
#![deny(missing_docs)]

/// A small, fast, reproducible pseudo-random generator (SplitMix64).
#[derive(Debug, Clone)]
pub struct SeededRng {
    state: u64,
}

impl SeededRng {
    /// A generator whose whole sequence is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform integer in `0..n` (`n > 0`), without modulo bias.
    pub fn below(&mut self, n: u64) -> u64 {
        // Lemire's multiply-shift with rejection.
        loop {
            let m = (self.next_u64() as u128) * (n as u128);
            let low = m as u64;
            if low >= n.wrapping_neg() % n {
                return (m >> 64) as u64;
            }
        }
    }

    /// A uniform float in `[0, 1)`.
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Shuffles `items` in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

/// A seed derived from `seed` and `parts` (e.g. epoch and batch numbers): different parts
/// give unrelated seeds, the same parts the same seed.
pub fn derive_seed(seed: u64, parts: &[u64]) -> u64 {
    let mut rng = SeededRng::new(seed);
    let mut out = rng.next_u64();
    for &part in parts {
        out = SeededRng::new(out ^ part.wrapping_mul(0x9e37_79b9_7f4a_7c15)).next_u64();
    }
    out
}

/// FNV-1a (64 bits) over `items`, each folded in as one unit (a byte, or a float's bits): a
/// short, stable name for long content (cache keys) and the hash of hashed features.
pub fn fnv1a(items: impl IntoIterator<Item = u64>) -> u64 {
    items.into_iter().fold(0xcbf2_9ce4_8422_2325u64, |h, item| {
        (h ^ item).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_reference_values() {
        // The first outputs of SplitMix64 seeded with 0 (Vigna's reference implementation).
        let mut rng = SeededRng::new(0);
        assert_eq!(rng.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(rng.next_u64(), 0x6e78_9e6a_a1b9_65f4);
    }

    #[test]
    fn fnv1a_matches_the_reference_values() {
        // From the FNV reference test vectors.
        let bytes = |text: &str| fnv1a(text.bytes().map(u64::from));
        assert_eq!(bytes(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(bytes("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(bytes("foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn derived_seeds_differ_by_part() {
        assert_eq!(derive_seed(7, &[1, 2]), derive_seed(7, &[1, 2]));
        assert_ne!(derive_seed(7, &[1, 2]), derive_seed(7, &[2, 1]));
        assert_ne!(derive_seed(7, &[]), derive_seed(8, &[]));
    }

    #[test]
    fn below_is_roughly_uniform() {
        let mut rng = SeededRng::new(1);
        let mut counts = [0usize; 4];
        for _ in 0..40_000 {
            counts[rng.below(4) as usize] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
        let f = rng.next_f32();
        assert!((0.0..1.0).contains(&f));
    }
}
