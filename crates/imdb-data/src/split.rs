//! Seeded shuffling and the train/validation split.
//!
//! The generator is SplitMix64, written here rather than taken from a crate so that a seed
//! gives the same order on every platform and with every future dependency version.

use crate::error::{DataError, Result};

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

/// `0..n` in an order fixed by `seed`.
pub fn shuffled_indices(n: usize, seed: u64) -> Vec<usize> {
    let mut indices: Vec<usize> = (0..n).collect();
    SeededRng::new(seed).shuffle(&mut indices);
    indices
}

/// Indices of the training reviews split into (train, validation): a seeded shuffle, then the
/// first `val_size` as validation, as the notebook does with `VAL_SIZE = 5000`.
pub fn train_val_indices(n: usize, val_size: usize, seed: u64) -> Result<(Vec<usize>, Vec<usize>)> {
    if val_size >= n {
        return Err(DataError::InvalidSetting {
            setting: "val_size",
            problem: format!(
                "{val_size} leaves nothing to train on: the training set has {n} reviews, so use \
                 fewer (the notebook uses 5000 of 25000)"
            ),
        });
    }
    let mut order = shuffled_indices(n, seed);
    let train = order.split_off(val_size);
    Ok((train, order))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_order_other_seed_other_order() {
        let a = shuffled_indices(100, 42);
        assert_eq!(a, shuffled_indices(100, 42));
        assert_ne!(a, shuffled_indices(100, 43));
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn split_is_disjoint_and_complete() {
        let (train, val) = train_val_indices(10, 3, 7).unwrap();
        assert_eq!(val.len(), 3);
        assert_eq!(train.len(), 7);
        let mut all: Vec<usize> = train.iter().chain(&val).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn validation_as_large_as_training_is_refused() {
        let err = train_val_indices(10, 10, 7).unwrap_err().to_string();
        assert!(
            err.contains("val_size") && err.contains("10 reviews"),
            "{err}"
        );
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
