//! Small aclImdb-shaped archives made on the spot, for tests and demos that must not touch the
//! network or the real corpus.
//!
//! Reviews are drawn from a seeded generator: neutral filler words, plus sentiment words whose
//! side matches the label most of the time, so a model can learn something from them.

use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::error::{DataError, Result};
use crate::split::SeededRng;

const FILLER: &[&str] = &[
    "the",
    "movie",
    "film",
    "a",
    "and",
    "of",
    "to",
    "is",
    "it",
    "this",
    "was",
    "plot",
    "actor",
    "scene",
    "story",
    "in",
    "with",
    "as",
    "character",
    "director",
    "time",
    "really",
    "just",
];
const POSITIVE: &[&str] = &[
    "great",
    "wonderful",
    "brilliant",
    "loved",
    "excellent",
    "superb",
    "beautiful",
    "best",
];
const NEGATIVE: &[&str] = &[
    "awful", "boring", "worst", "terrible", "waste", "poor", "dull", "bad",
];

/// The shape of a synthetic corpus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyntheticSpec {
    /// Reviews per class in each of train and test.
    pub per_class: usize,
    /// Unlabelled reviews in `train/unsup`.
    pub unsup: usize,
    /// Words per review, at least (a review has between this and three times this).
    pub min_words: usize,
    /// Seed of the generator.
    pub seed: u64,
}

impl Default for SyntheticSpec {
    fn default() -> Self {
        Self {
            per_class: 40,
            unsup: 10,
            min_words: 8,
            seed: 7,
        }
    }
}

/// One generated review text; `positive` picks the side of its sentiment words.
pub fn synthetic_review(rng: &mut SeededRng, positive: bool, min_words: usize) -> String {
    let words = min_words + rng.below(2 * min_words as u64 + 1) as usize;
    let mut text = String::new();
    for i in 0..words {
        let r = rng.next_f32();
        let word = if r < 0.2 {
            // Mostly the label's side, sometimes the other: the task is learnable, not trivial.
            let side = if rng.next_f32() < 0.85 {
                positive
            } else {
                !positive
            };
            let pool = if side { POSITIVE } else { NEGATIVE };
            pool[rng.below(pool.len() as u64) as usize]
        } else {
            FILLER[rng.below(FILLER.len() as u64) as usize]
        };
        if i > 0 {
            text.push_str(if i % 9 == 0 { ". <br /><br />" } else { " " });
        }
        text.push_str(word);
    }
    text.push('.');
    text
}

/// Writes a CSV of `rows` generated reviews at `path`, columns `review` and `sentiment`
/// (`positive` / `negative`, alternating), `seed` fixing the texts: a labelled source for
/// tests and examples of the CSV path.
pub fn write_synthetic_csv(path: &Path, rows: usize, seed: u64) -> Result<()> {
    let mut rng = SeededRng::new(seed);
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut record = |fields: [&str; 2]| {
        writer
            .write_record(fields)
            .map_err(|e| DataError::io("cannot write", path, std::io::Error::other(e)))
    };
    record(["review", "sentiment"])?;
    for row in 0..rows {
        let positive = row % 2 == 0;
        let text = synthetic_review(&mut rng, positive, 8);
        record([&text, if positive { "positive" } else { "negative" }])?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| DataError::io("cannot write", path, std::io::Error::other(e.to_string())))?;
    std::fs::write(path, bytes).map_err(|e| DataError::io("cannot write", path, e))
}

/// Writes an aclImdb-shaped `.tar.gz` at `path`.
pub fn write_synthetic_archive(path: &Path, spec: &SyntheticSpec) -> Result<()> {
    // Built in memory, then written atomically: a crash leaves no half-written archive.
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    let mut rng = SeededRng::new(spec.seed);
    let mut add = |name: String, text: String| -> std::io::Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, format!("aclImdb/{name}"), text.as_bytes())
    };
    let io = |e| DataError::io("cannot write", path, e);
    add("README".into(), "synthetic corpus\n".into()).map_err(io)?;
    let mut next_id = 0u32;
    for split in ["train", "test"] {
        for (dir, positive) in [("neg", false), ("pos", true)] {
            for _ in 0..spec.per_class {
                let rating = if positive {
                    7 + rng.below(4)
                } else {
                    1 + rng.below(4)
                };
                let text = synthetic_review(&mut rng, positive, spec.min_words);
                add(format!("{split}/{dir}/{next_id}_{rating}.txt"), text).map_err(io)?;
                next_id += 1;
            }
        }
    }
    for _ in 0..spec.unsup {
        let positive = rng.below(2) == 1;
        let text = synthetic_review(&mut rng, positive, spec.min_words);
        add(format!("train/unsup/{next_id}_0.txt"), text).map_err(io)?;
        next_id += 1;
    }
    let encoder = builder.into_inner().map_err(io)?;
    let bytes = encoder.finish().map_err(io)?;
    crate::atomic::write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reviews_are_reproducible_and_lean_to_their_side() {
        let a = synthetic_review(&mut SeededRng::new(3), true, 50);
        assert_eq!(a, synthetic_review(&mut SeededRng::new(3), true, 50));
        let mut rng = SeededRng::new(3);
        let (mut pos, mut neg) = (0, 0);
        for _ in 0..50 {
            for w in crate::tokenize(&synthetic_review(&mut rng, true, 20)) {
                pos += usize::from(POSITIVE.contains(&w.as_str()));
                neg += usize::from(NEGATIVE.contains(&w.as_str()));
            }
        }
        assert!(pos > 3 * neg, "pos {pos} neg {neg}");
    }
}
