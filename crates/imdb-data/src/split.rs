//! Seeded shuffling and the train/validation split.
//!
//! The generator is [`imdb_rng::SeededRng`] (SplitMix64), re-exported here.

use crate::error::{DataError, Result};

pub use imdb_rng::{SeededRng, derive_seed};

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
}
