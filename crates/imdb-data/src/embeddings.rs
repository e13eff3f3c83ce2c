//! Word vectors for the embedding layer: pretrained GloVe or fastText vectors read from their
//! text format and aligned to the vocabulary (skip-gram vectors trained here on the corpus' own
//! reviews, so that the option works offline, are in [`crate::skipgram`]).
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
use crate::vocab::{INDEX_FROM, Vocabulary};

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
pub(crate) fn random_rows(num_words: usize, dim: usize, seed: u64) -> Vec<f32> {
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

/// Nearest words of `word` by cosine similarity in `vectors`, for inspecting embeddings.
pub fn nearest(
    vectors: &AlignedVectors,
    vocab: &Vocabulary,
    word: &str,
    n: usize,
) -> Vec<(String, f32)> {
    let dim = vectors.dim;
    let offset = INDEX_FROM as usize + 1;
    // Rows past the vocabulary (vectors for more words than the corpus has) name no word.
    let known = vectors.total.min(vocab.words().len());
    let Some(rank) = vocab.rank(word).filter(|&r| (r as usize) < known) else {
        return Vec::new();
    };
    let row = |r: usize| &vectors.weights[(r + offset) * dim..(r + offset + 1) * dim];
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    let target = row(rank as usize);
    let tn = norm(target);
    let mut scored: HashMap<usize, f32> = HashMap::new();
    for r in 0..known {
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

    #[test]
    fn nearest_names_only_words_of_the_vocabulary() {
        // Vectors for 6 words (as skip-gram makes for `num_words` = 10) over a vocabulary of 3.
        let vocab =
            Vocabulary::from_ranked_words(["good", "great", "bad"].map(String::from).to_vec());
        let offset = INDEX_FROM as usize + 1;
        let mut weights = vec![0.0f32; (offset + 6) * 2];
        for (r, v) in [
            [1.0, 0.1],
            [1.0, 0.2],
            [-1.0, 0.0],
            [1.0, 0.15],
            [1.0, 0.1],
            [0.5, 0.5],
        ]
        .iter()
        .enumerate()
        {
            weights[(offset + r) * 2..(offset + r + 1) * 2].copy_from_slice(v);
        }
        let vectors = AlignedVectors {
            weights,
            dim: 2,
            found: 6,
            total: 6,
        };
        let near = nearest(&vectors, &vocab, "good", 5);
        let words: Vec<&str> = near.iter().map(|(w, _)| w.as_str()).collect();
        assert_eq!(words, ["great", "bad"]);
        assert!(nearest(&vectors, &vocab, "unknown", 5).is_empty());
    }
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
}
