//! From a tokenized corpus to the notebook's arrays (§3): encode with `num_words`, pad or
//! truncate to `maxlen`, split off the validation set.

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::sequence::{PaddedSequences, Padding, Truncating, check_maxlen, pad_sequences};
use crate::split::{shuffled_indices, train_val_indices};
use crate::tokenized::{TokenizedCorpus, TokenizedReview};
use crate::vocab::Vocabulary;

/// The preprocessing settings of the notebook, with its values as defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Vocabulary size including the 4 reserved ids (`NUM_WORDS = 20000`).
    pub num_words: usize,
    /// Sequence length after padding and truncation (`MAXLEN = 200`).
    pub maxlen: usize,
    /// Where short reviews are padded (`'post'` in the notebook).
    pub padding: Padding,
    /// Which end of long reviews is cut (`'post'` in the notebook).
    pub truncating: Truncating,
    /// Training reviews held out for validation (`VAL_SIZE = 5000`).
    pub val_size: usize,
    /// Use only this many training reviews (after the shuffle), for quick experiments.
    pub train_limit: Option<usize>,
    /// Use only this many test reviews (a seeded sample), for quick experiments.
    pub test_limit: Option<usize>,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            num_words: 20_000,
            maxlen: 200,
            padding: Padding::Post,
            truncating: Truncating::Post,
            val_size: 5_000,
            train_limit: None,
            test_limit: None,
        }
    }
}

impl DataConfig {
    /// Checks every setting that can be checked without the corpus.
    pub fn validate(&self) -> Result<()> {
        Vocabulary::check_num_words(self.num_words)?;
        check_maxlen(self.maxlen)?;
        if self.val_size == 0 {
            return Err(DataError::InvalidSetting {
                setting: "val_size",
                problem: "0 leaves no validation set for early stopping: use a positive number \
                          such as 5000"
                    .to_string(),
            });
        }
        for (setting, limit) in [
            ("train_limit", self.train_limit),
            ("test_limit", self.test_limit),
        ] {
            if limit == Some(0) {
                return Err(DataError::InvalidSetting {
                    setting,
                    problem: "0 reviews: remove the key to use them all".to_string(),
                });
            }
        }
        Ok(())
    }
}

/// Reviews ready for a model: padded ids, labels, and where each came from.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedSet {
    /// Padded or truncated id sequences with their true lengths.
    pub sequences: PaddedSequences,
    /// Class of each row: 0 negative, 1 positive.
    pub labels: Vec<u8>,
    /// Index of each row's review in its corpus split (`corpus.train` or `corpus.test`).
    pub source: Vec<usize>,
}

impl EncodedSet {
    /// Encodes and pads the reviews `indices` of `reviews`.
    pub fn encode(
        reviews: &[TokenizedReview],
        indices: Vec<usize>,
        config: &DataConfig,
    ) -> Result<Self> {
        let encoded: Vec<Vec<u32>> = indices
            .iter()
            .map(|&i| Vocabulary::encode_ranks(&reviews[i].ranks, config.num_words))
            .collect();
        Ok(Self {
            sequences: pad_sequences(&encoded, config.maxlen, config.padding, config.truncating)?,
            labels: indices.iter().map(|&i| reviews[i].label()).collect(),
            source: indices,
        })
    }

    /// Number of reviews.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True if there is no review.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// Train, validation and test sets as the notebook builds them.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedData {
    /// Training reviews (20,000 with the defaults).
    pub train: EncodedSet,
    /// Validation reviews (5,000).
    pub val: EncodedSet,
    /// Test reviews (25,000), in corpus order unless `test_limit` sampled them.
    pub test: EncodedSet,
}

/// Encodes, pads, shuffles and splits the corpus; `seed` fixes the shuffle.
pub fn prepare(corpus: &TokenizedCorpus, config: &DataConfig, seed: u64) -> Result<PreparedData> {
    config.validate()?;
    let (mut train_idx, val_idx) = train_val_indices(corpus.train.len(), config.val_size, seed)?;
    if let Some(limit) = config.train_limit {
        train_idx.truncate(limit);
    }
    let test_idx = match config.test_limit {
        Some(limit) if limit < corpus.test.len() => {
            let mut idx = shuffled_indices(corpus.test.len(), seed ^ 0x7e57);
            idx.truncate(limit);
            idx.sort_unstable();
            idx
        }
        _ => (0..corpus.test.len()).collect(),
    };
    Ok(PreparedData {
        train: EncodedSet::encode(&corpus.train, train_idx, config)?,
        val: EncodedSet::encode(&corpus.train, val_idx, config)?,
        test: EncodedSet::encode(&corpus.test, test_idx, config)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::{RawReview, Sentiment};

    fn corpus(n: u32) -> TokenizedCorpus {
        let raw: Vec<RawReview> = (0..n)
            .map(|i| RawReview {
                id: i,
                rating: if i % 2 == 0 { 2 } else { 9 },
                sentiment: Some(if i % 2 == 0 {
                    Sentiment::Negative
                } else {
                    Sentiment::Positive
                }),
                text: format!("word{i} common common"),
            })
            .collect();
        TokenizedCorpus::build(&raw, &raw, &[], "00".into())
    }

    #[test]
    fn splits_and_pads_like_the_notebook() {
        let c = corpus(10);
        let config = DataConfig {
            maxlen: 3,
            val_size: 4,
            ..DataConfig::default()
        };
        let data = prepare(&c, &config, 42).unwrap();
        assert_eq!(
            (data.train.len(), data.val.len(), data.test.len()),
            (6, 4, 10)
        );
        // Start id, "common" (rank 0 -> id 4), "word…" cut by post truncation.
        assert_eq!(data.test.sequences.row(0), [1, 5, 4]);
        assert_eq!(data.test.labels[..2], [0, 1]);
        let mut all: Vec<usize> = data
            .train
            .source
            .iter()
            .chain(&data.val.source)
            .copied()
            .collect();
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn limits_and_bad_settings() {
        let c = corpus(10);
        let config = DataConfig {
            val_size: 2,
            train_limit: Some(3),
            test_limit: Some(5),
            ..DataConfig::default()
        };
        let data = prepare(&c, &config, 1).unwrap();
        assert_eq!(
            (data.train.len(), data.val.len(), data.test.len()),
            (3, 2, 5)
        );

        let too_big = DataConfig {
            val_size: 10,
            ..DataConfig::default()
        };
        assert!(
            prepare(&c, &too_big, 1)
                .unwrap_err()
                .to_string()
                .contains("val_size")
        );
        let no_words = DataConfig {
            num_words: 3,
            ..DataConfig::default()
        };
        assert!(
            no_words
                .validate()
                .unwrap_err()
                .to_string()
                .contains("num_words")
        );
    }
}
