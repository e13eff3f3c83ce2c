//! Word vectors for the embedding layer: pretrained GloVe or fastText vectors read from their
//! text format and aligned to the vocabulary, or skip-gram vectors trained here on the corpus'
//! own reviews (so the option works offline).
//!
//! Both give a `num_words × dim` row-major matrix in Keras id order: row 0 (padding) is zero,
//! rows 1–3 (start, unknown, unused) and words without a vector are drawn uniformly from
//! `[-0.05, 0.05]`, Keras' embedding initializer.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::split::SeededRng;
use crate::vocab::{INDEX_FROM, UNRANKED, Vocabulary};

/// Word vectors aligned to a vocabulary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlignedVectors {
    /// `num_words × dim`, row-major, in Keras id order.
    pub weights: Vec<f32>,
    /// Vector size.
    pub dim: usize,
    /// Words of the vocabulary (ids 4…num_words-1) that got a vector.
    pub found: usize,
    /// Words of the vocabulary that could get one (`num_words - 4`, or fewer if the vocabulary
    /// is smaller).
    pub total: usize,
}

impl AlignedVectors {
    /// Share of the vocabulary covered by the vectors.
    pub fn coverage(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.found as f64 / self.total as f64
        }
    }
}

/// Keras' embedding initialization for rows without a vector.
fn random_rows(num_words: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = SeededRng::new(seed);
    let mut weights: Vec<f32> = (0..num_words * dim)
        .map(|_| (rng.next_f32() * 2.0 - 1.0) * 0.05)
        .collect();
    let pad_row = dim.min(weights.len());
    weights[..pad_row].fill(0.0);
    weights
}

/// Reads GloVe (`word v1 … vd` per line) or fastText `.vec` (the same, after an `N D` header
/// line) vectors, optionally gzipped (`.gz`), and aligns them to `vocab`'s first
/// `num_words - 4` words. Words are matched lowercased; the first vector of a word wins
/// (fastText lists frequent forms first). `dim` must be the file's vector size.
pub fn load_word_vectors(
    path: &Path,
    vocab: &Vocabulary,
    num_words: usize,
    dim: usize,
    seed: u64,
) -> Result<AlignedVectors> {
    let file = std::fs::File::open(path).map_err(|e| DataError::io("cannot open", path, e))?;
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let known = num_words
        .saturating_sub(INDEX_FROM as usize + 1)
        .min(vocab.len());
    let mut weights = random_rows(num_words, dim, seed);
    let mut filled = vec![false; known];
    let bad = |line: usize, problem: String| DataError::InvalidSetting {
        setting: "embeddings.source",
        problem: format!("{} line {line}: {problem}", path.display()),
    };
    for (index, line) in BufReader::with_capacity(1 << 20, reader)
        .lines()
        .enumerate()
    {
        let line = line.map_err(|e| bad(index + 1, format!("unreadable ({e})")))?;
        let mut fields = line.split_whitespace();
        let Some(word) = fields.next() else {
            continue;
        };
        let values: Vec<&str> = fields.collect();
        if index == 0 && values.len() == 1 && word.parse::<u64>().is_ok() {
            // fastText header: "<count> <dim>".
            continue;
        }
        if values.len() != dim {
            return Err(bad(
                index + 1,
                format!(
                    "{} numbers after the word, but the model's embed_dim is {dim}; use vectors \
                     of that size or set model.embed_dim to theirs",
                    values.len()
                ),
            ));
        }
        let Some(rank) = vocab.rank(&word.to_lowercase()) else {
            continue;
        };
        let rank = rank as usize;
        if rank >= known || filled[rank] {
            continue;
        }
        let row = (rank + INDEX_FROM as usize + 1) * dim;
        for (slot, text) in weights[row..row + dim].iter_mut().zip(&values) {
            *slot = text
                .parse::<f32>()
                .map_err(|_| bad(index + 1, format!("{text:?} is not a number")))?;
        }
        filled[rank] = true;
    }
    Ok(AlignedVectors {
        weights,
        dim,
        found: filled.iter().filter(|&&f| f).count(),
        total: known,
    })
}

/// Settings of the skip-gram trainer (word2vec's skip-gram with negative sampling).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SkipGramConfig {
    /// Vector size.
    pub dim: usize,
    /// Largest distance between a word and a context word (each pair uses a random window up
    /// to this, as word2vec does).
    pub window: usize,
    /// Negative samples per pair.
    pub negatives: usize,
    /// Passes over the reviews.
    pub epochs: usize,
    /// Initial step size, decayed linearly to 1/1000 of it.
    pub learning_rate: f32,
    /// Frequent words are dropped with probability `1 - sqrt(t / frequency)`.
    pub subsample: f64,
    /// Fixes every random choice.
    pub seed: u64,
}

impl Default for SkipGramConfig {
    fn default() -> Self {
        Self {
            dim: 128,
            window: 5,
            negatives: 5,
            epochs: 1,
            learning_rate: 0.025,
            subsample: 1e-4,
            seed: 1,
        }
    }
}

/// Trains skip-gram vectors for the ids `4…num_words-1` on `reviews` (each a sequence of word
/// ranks, as in [`crate::TokenizedReview::ranks`]); returns them aligned like
/// [`load_word_vectors`]. No labels are read: the unlabelled reviews are made for this.
pub fn train_skipgram(
    reviews: &[&[u32]],
    num_words: usize,
    config: &SkipGramConfig,
) -> AlignedVectors {
    let dim = config.dim;
    let words = num_words.saturating_sub(INDEX_FROM as usize + 1);
    let mut counts = vec![0u64; words];
    for review in reviews {
        for &rank in review.iter() {
            if rank != UNRANKED && (rank as usize) < words {
                counts[rank as usize] += 1;
            }
        }
    }
    let total: u64 = counts.iter().sum();
    let keep: Vec<f32> = counts
        .iter()
        .map(|&c| {
            if c == 0 || config.subsample <= 0.0 {
                1.0
            } else {
                let f = c as f64 / total as f64;
                ((config.subsample / f).sqrt() + config.subsample / f).min(1.0) as f32
            }
        })
        .collect();
    let table = negative_table(&counts);
    let mut rng = SeededRng::new(config.seed);
    let mut input: Vec<f32> = (0..words * dim)
        .map(|_| (rng.next_f32() - 0.5) / dim as f32)
        .collect();
    let mut output = vec![0.0f32; words * dim];
    let mut grad = vec![0.0f32; dim];
    let planned = (total as f64 * config.epochs as f64).max(1.0);
    let mut seen = 0u64;
    let mut sentence: Vec<usize> = Vec::new();
    for _ in 0..config.epochs {
        for review in reviews {
            sentence.clear();
            for &rank in review.iter() {
                if rank == UNRANKED || rank as usize >= words {
                    continue;
                }
                seen += 1;
                if rng.next_f32() < keep[rank as usize] {
                    sentence.push(rank as usize);
                }
            }
            let progress = (seen as f64 / planned).min(1.0) as f32;
            let lr = config.learning_rate * (1.0 - progress).max(1e-3);
            for (pos, &center) in sentence.iter().enumerate() {
                let reach = 1 + rng.below(config.window.max(1) as u64) as usize;
                let lo = pos.saturating_sub(reach);
                let hi = (pos + reach + 1).min(sentence.len());
                for (ctx_pos, &context) in sentence.iter().enumerate().take(hi).skip(lo) {
                    if ctx_pos == pos {
                        continue;
                    }
                    // Predict `center` from `context`'s input vector, as word2vec does.
                    grad.fill(0.0);
                    let v = context * dim..(context + 1) * dim;
                    for k in 0..=config.negatives {
                        let (target, label) = if k == 0 {
                            (center, 1.0f32)
                        } else {
                            let t = table[rng.below(table.len() as u64) as usize] as usize;
                            if t == center {
                                continue;
                            }
                            (t, 0.0)
                        };
                        let o = target * dim..(target + 1) * dim;
                        let dot: f32 = input[v.clone()]
                            .iter()
                            .zip(&output[o.clone()])
                            .map(|(a, b)| a * b)
                            .sum();
                        let g = (label - 1.0 / (1.0 + (-dot.clamp(-10.0, 10.0)).exp())) * lr;
                        for (gr, &out) in grad.iter_mut().zip(&output[o.clone()]) {
                            *gr += g * out;
                        }
                        for (out, &inp) in output[o].iter_mut().zip(&input[v.clone()]) {
                            *out += g * inp;
                        }
                    }
                    for (inp, &gr) in input[v].iter_mut().zip(&grad) {
                        *inp += gr;
                    }
                }
            }
        }
    }
    let mut weights = random_rows(num_words, dim, config.seed ^ 0x5eed);
    let offset = (INDEX_FROM as usize + 1) * dim;
    weights[offset..offset + words * dim].copy_from_slice(&input);
    AlignedVectors {
        weights,
        dim,
        found: counts.iter().filter(|&&c| c > 0).count(),
        total: words,
    }
}

/// A table of word indices drawn in proportion to `count^0.75` (word2vec's noise distribution).
fn negative_table(counts: &[u64]) -> Vec<u32> {
    const SIZE: usize = 1 << 20;
    let weights: Vec<f64> = counts.iter().map(|&c| (c as f64).powf(0.75)).collect();
    let sum: f64 = weights.iter().sum();
    if sum == 0.0 {
        return (0..counts.len().max(1) as u32).collect();
    }
    let mut table = Vec::with_capacity(SIZE);
    let mut cumulative = 0.0;
    let mut word = 0usize;
    for i in 0..SIZE {
        let position = (i as f64 + 0.5) / SIZE as f64;
        while word + 1 < weights.len() && (cumulative + weights[word]) / sum < position {
            cumulative += weights[word];
            word += 1;
        }
        table.push(word as u32);
    }
    table
}

/// Nearest words of `word` by cosine similarity in `vectors`, for inspecting embeddings.
pub fn nearest(
    vectors: &AlignedVectors,
    vocab: &Vocabulary,
    word: &str,
    n: usize,
) -> Vec<(String, f32)> {
    let dim = vectors.dim;
    let offset = INDEX_FROM as usize + 1;
    let Some(rank) = vocab.rank(word) else {
        return Vec::new();
    };
    let row = |r: usize| &vectors.weights[(r + offset) * dim..(r + offset + 1) * dim];
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    let target = row(rank as usize);
    let tn = norm(target);
    let mut scored: HashMap<usize, f32> = HashMap::new();
    for r in 0..vectors.total {
        if r != rank as usize {
            let v = row(r);
            scored.insert(
                r,
                v.iter().zip(target).map(|(a, b)| a * b).sum::<f32>() / (norm(v) * tn),
            );
        }
    }
    let mut best: Vec<(usize, f32)> = scored.into_iter().collect();
    best.sort_by(|a, b| b.1.total_cmp(&a.1));
    best.into_iter()
        .take(n)
        .map(|(r, s)| (vocab.words()[r].clone(), s))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn vocab() -> Vocabulary {
        Vocabulary::from_ranked_words(vec![
            "the".into(),
            "good".into(),
            "bad".into(),
            "film".into(),
        ])
    }

    #[test]
    fn glove_text_is_aligned_to_keras_ids() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vectors.txt");
        std::fs::write(
            &path,
            "good 1 2 3\nunrelated 9 9 9\nGood 7 7 7\nthe 0.5 -0.5 0\n",
        )
        .unwrap();
        let v = load_word_vectors(&path, &vocab(), 7, 3, 1).unwrap();
        // num_words 7 keeps ranks 0..3 ("the", "good", "bad"): ids 4, 5, 6.
        assert_eq!((v.found, v.total), (2, 3));
        assert_eq!(&v.weights[4 * 3..5 * 3], &[0.5, -0.5, 0.0]);
        assert_eq!(&v.weights[5 * 3..6 * 3], &[1.0, 2.0, 3.0]);
        assert_eq!(&v.weights[..3], &[0.0, 0.0, 0.0]);
        assert!(v.weights[6 * 3..].iter().all(|x| x.abs() <= 0.05));
        assert!((v.coverage() - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn fasttext_header_and_gzip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vectors.vec.gz");
        let file = std::fs::File::create(&path).unwrap();
        let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
        gz.write_all(b"2 2\nfilm 0.25 0.75\nbad -1 1\n").unwrap();
        gz.finish().unwrap();
        let v = load_word_vectors(&path, &vocab(), 100, 2, 1).unwrap();
        assert_eq!((v.found, v.total), (2, 4));
        assert_eq!(&v.weights[7 * 2..8 * 2], &[0.25, 0.75]);
    }

    #[test]
    fn wrong_size_and_bad_numbers_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.txt");
        std::fs::write(&path, "good 1 2 3\nbad 1 2\n").unwrap();
        let err = load_word_vectors(&path, &vocab(), 10, 3, 1)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 2") && err.contains("embed_dim is 3"),
            "{err}"
        );
        std::fs::write(&path, "good 1 x 3\n").unwrap();
        let err = load_word_vectors(&path, &vocab(), 10, 3, 1)
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 1") && err.contains("\"x\""), "{err}");
        let err = load_word_vectors(&dir.path().join("none.txt"), &vocab(), 10, 3, 1).unwrap_err();
        assert!(err.to_string().contains("none.txt"));
    }

    #[test]
    fn skipgram_brings_co_occurring_words_together() {
        // Two topics that never share a review: words of one topic should end up closer to
        // each other than to the other topic's words.
        let mut rng = SeededRng::new(2);
        let mut reviews: Vec<Vec<u32>> = Vec::new();
        for i in 0..400 {
            let topic = if i % 2 == 0 {
                [0u32, 1, 2, 3]
            } else {
                [4u32, 5, 6, 7]
            };
            reviews.push((0..30).map(|_| topic[rng.below(4) as usize]).collect());
        }
        let refs: Vec<&[u32]> = reviews.iter().map(Vec::as_slice).collect();
        let config = SkipGramConfig {
            dim: 16,
            epochs: 3,
            subsample: 0.0,
            ..SkipGramConfig::default()
        };
        let v = train_skipgram(&refs, 12, &config);
        assert_eq!(v.weights.len(), 12 * 16);
        let words: Vec<String> = (0..8).map(|i| format!("w{i}")).collect();
        let vocab = Vocabulary::from_ranked_words(words);
        let near = nearest(&v, &vocab, "w0", 3);
        assert!(
            near.iter()
                .all(|(w, _)| ["w1", "w2", "w3"].contains(&w.as_str())),
            "{near:?}"
        );
        assert_eq!(v, train_skipgram(&refs, 12, &config), "seeded");
    }
}
