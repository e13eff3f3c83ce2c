//! Neutral filler words, and texts with fillers appended after their last word: how long a
//! model keeps a verdict while words that say nothing about the class follow it (the
//! long-range probe on real reviews).
//!
//! ```
//! use imdb_data::filler::{append_fillers, neutral_words};
//! use imdb_data::{EncodedSet, Padding, pad_sequences};
//!
//! // Word 4 is in every text of both classes, words 5 and 6 each in one class only.
//! let texts = vec![vec![4, 5], vec![4, 5], vec![4, 6], vec![4, 6]];
//! let set = EncodedSet {
//!     sequences: pad_sequences(&texts, 3, Padding::Post, Default::default()).unwrap(),
//!     labels: vec![1, 1, 0, 0],
//!     source: vec![0, 1, 2, 3],
//! };
//! let words = neutral_words(&set, 2, 1, 0.5).unwrap();
//! assert_eq!(words, [4]);
//! let longer = append_fillers(&set, &words, 2, 7);
//! assert_eq!(longer.sequences.real(0), [4, 5, 4, 4]);
//! ```

use crate::error::{DataError, Result};
use crate::prepare::EncodedSet;
use crate::sequence::{PaddedSequences, Padding};
use crate::split::{SeededRng, derive_seed};
use crate::vocab::{INDEX_FROM, PAD_ID};

/// The `count` words whose share of texts differs least between the classes of `set`
/// (`num_classes` of them), among words found in at least `min_share` of every class's texts:
/// the ratio of the largest to the smallest per-class share is closest to 1. Reserved ids
/// (padding, start, unknown) are never chosen. Ties go to the more frequent word, then the
/// smaller id. Refused when no word qualifies, with the share to lower.
pub fn neutral_words(
    set: &EncodedSet,
    num_classes: usize,
    count: usize,
    min_share: f64,
) -> Result<Vec<u32>> {
    let rows = set.sequences.len();
    let vocabulary = (0..rows)
        .flat_map(|i| set.sequences.real(i).iter())
        .map(|&id| id as usize + 1)
        .max()
        .unwrap_or(0);
    let mut texts_per_class = vec![0usize; num_classes];
    // Texts holding each word, by class; `seen` stamps a word once per text.
    let mut holding = vec![0usize; vocabulary * num_classes];
    let mut seen = vec![usize::MAX; vocabulary];
    for i in 0..rows {
        let class = set.labels[i] as usize;
        if class >= num_classes {
            return Err(DataError::InvalidSetting {
                setting: "num_classes",
                problem: format!(
                    "row {i} has class {class}, but only {num_classes} classes were given"
                ),
            });
        }
        texts_per_class[class] += 1;
        for &id in set.sequences.real(i) {
            let id = id as usize;
            if seen[id] != i {
                seen[id] = i;
                holding[id * num_classes + class] += 1;
            }
        }
    }
    let mut candidates: Vec<(f64, usize, u32)> = Vec::new();
    for id in (INDEX_FROM + 1) as usize..vocabulary {
        let shares: Vec<f64> = (0..num_classes)
            .map(|c| holding[id * num_classes + c] as f64 / texts_per_class[c].max(1) as f64)
            .collect();
        let lowest = shares.iter().copied().fold(f64::INFINITY, f64::min);
        let highest = shares.iter().copied().fold(0.0, f64::max);
        if lowest >= min_share && lowest > 0.0 {
            let texts: usize = (0..num_classes)
                .map(|c| holding[id * num_classes + c])
                .sum();
            candidates.push((highest / lowest, texts, id as u32));
        }
    }
    if candidates.is_empty() {
        return Err(DataError::InvalidSetting {
            setting: "min_share",
            problem: format!(
                "no word is in at least {:.1}% of every class's texts: lower the share",
                100.0 * min_share
            ),
        });
    }
    candidates.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
    Ok(candidates
        .into_iter()
        .take(count.max(1))
        .map(|(_, _, id)| id)
        .collect())
}

/// `set` with `k` filler words after each text's last real word, drawn uniformly from `words`,
/// the rows `k` longer and padded on the same side as before. A text's fillers depend only on
/// `seed` and the text's index in its corpus split (`set.source`), not on the set's order, and
/// those for a smaller `k` are the first of those for a larger one. `k = 0` gives `set` itself.
///
/// # Panics
/// If `words` is empty while `k > 0`.
pub fn append_fillers(set: &EncodedSet, words: &[u32], k: usize, seed: u64) -> EncodedSet {
    if k == 0 {
        return set.clone();
    }
    assert!(!words.is_empty(), "append_fillers needs at least one word");
    let old = &set.sequences;
    let maxlen = old.maxlen + k;
    let mut ids = vec![PAD_ID; old.len() * maxlen];
    let mut lengths = Vec::with_capacity(old.len());
    for (i, row) in ids.chunks_exact_mut(maxlen).enumerate() {
        let real = old.real(i);
        let length = real.len() + k;
        let start = match old.padding {
            Padding::Post => 0,
            Padding::Pre => maxlen - length,
        };
        row[start..start + real.len()].copy_from_slice(real);
        let mut rng = SeededRng::new(derive_seed(seed, &[set.source[i] as u64]));
        for slot in &mut row[start + real.len()..start + length] {
            *slot = words[rng.below(words.len() as u64) as usize];
        }
        lengths.push(length);
    }
    EncodedSet {
        sequences: PaddedSequences {
            ids,
            lengths,
            maxlen,
            padding: old.padding,
        },
        labels: set.labels.clone(),
        source: set.source.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sequence::{Truncating, pad_sequences};

    fn set(texts: &[Vec<u32>], labels: &[u32], padding: Padding) -> EncodedSet {
        EncodedSet {
            sequences: pad_sequences(texts, 5, padding, Truncating::Pre).unwrap(),
            labels: labels.to_vec(),
            source: (0..texts.len()).map(|i| 10 + i).collect(),
        }
    }

    #[test]
    fn the_most_balanced_frequent_words_are_chosen() {
        // Word 4: every text; 5: 2 of 3 positives, 1 of 3 negatives; 6: positives only;
        // 7: one text of each class; 1 (start) everywhere but reserved.
        let texts = vec![
            vec![1, 4, 5, 6, 7],
            vec![1, 4, 5, 6],
            vec![1, 4, 6],
            vec![1, 4, 5, 7],
            vec![1, 4],
            vec![1, 4],
        ];
        let set = set(&texts, &[1, 1, 1, 0, 0, 0], Padding::Post);
        assert_eq!(neutral_words(&set, 2, 3, 0.2).unwrap(), [4, 7, 5]);
        // A share only word 4 reaches.
        assert_eq!(neutral_words(&set, 2, 3, 0.5).unwrap(), [4]);
        let err = neutral_words(&set, 2, 3, 1.01).unwrap_err().to_string();
        assert!(err.contains("101.0%") && err.contains("lower"), "{err}");
        let err = neutral_words(&set, 1, 3, 0.2).unwrap_err().to_string();
        assert!(err.contains("class 1"), "{err}");
    }

    #[test]
    fn fillers_follow_the_last_word_on_either_padding_side() {
        let texts = vec![vec![1, 20, 21], vec![1, 22, 23, 24, 25, 26, 27]];
        for padding in [Padding::Post, Padding::Pre] {
            let plain = set(&texts, &[0, 1], padding);
            let longer = append_fillers(&plain, &[8, 9], 3, 5);
            assert_eq!(longer.sequences.maxlen, 8);
            assert_eq!(longer.sequences.lengths, [6, 8]);
            assert_eq!(longer.labels, plain.labels);
            for i in 0..2 {
                let real = longer.sequences.real(i);
                let before = plain.sequences.real(i);
                assert_eq!(&real[..before.len()], before);
                assert!(real[before.len()..].iter().all(|w| [8, 9].contains(w)));
                let pads = longer.sequences.row(i).iter().filter(|&&w| w == PAD_ID);
                assert_eq!(pads.count(), 8 - real.len());
            }
            assert_eq!(append_fillers(&plain, &[8, 9], 0, 5), plain);
        }
    }

    #[test]
    fn a_texts_fillers_depend_on_the_text_not_the_order_and_grow_as_a_prefix() {
        let texts: Vec<Vec<u32>> = (0..6).map(|i| vec![1, 30 + i]).collect();
        let plain = set(&texts, &[0, 1, 0, 1, 0, 1], Padding::Post);
        let words: Vec<u32> = (4..40).collect();
        let short = append_fillers(&plain, &words, 4, 9);
        let long = append_fillers(&plain, &words, 40, 9);
        for i in 0..6 {
            assert_eq!(short.sequences.real(i), &long.sequences.real(i)[..6]);
        }
        // Texts 0 and 1 differ in their fillers (40 draws from 36 words).
        assert_ne!(&long.sequences.real(0)[2..], &long.sequences.real(1)[2..]);
        let mut reversed = plain.clone();
        reversed.sequences = pad_sequences(
            &texts.iter().rev().cloned().collect::<Vec<_>>(),
            5,
            Padding::Post,
            Truncating::Pre,
        )
        .unwrap();
        reversed.source.reverse();
        let again = append_fillers(&reversed, &words, 4, 9);
        assert_eq!(again.sequences.real(5), short.sequences.real(0));
    }
}
