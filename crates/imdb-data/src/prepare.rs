//! From a tokenized corpus to the notebook's arrays (§3): encode with `num_words`, pad or
//! truncate to `maxlen`, split off the validation set.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::sequence::{
    PaddedSequences, Padding, Truncating, check_maxlen, kept_range, pad_sequences,
};
use crate::source::SourceKind;
use crate::split::{shuffled_indices, train_val_indices};
use crate::tokenized::{TokenizedCorpus, TokenizedReview};
use crate::tokenizer::TokenizerConfig;
use crate::vocab::Vocabulary;

/// Where the labelled texts come from, how they are tokenized and encoded, and how they are
/// split: the `[data]` table of an experiment config. The defaults are the notebook's IMDB
/// settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// The kind of source: `imdb` (the default), `csv`, `jsonl` or `folders`.
    pub source: SourceKind,
    /// The training file (CSV, JSON Lines) or folder (one subfolder per class); not for IMDB.
    pub train: Option<PathBuf>,
    /// The test file or folder; without it, `test_fraction` of `train` is held out.
    pub test: Option<PathBuf>,
    /// Share of `train` held out (seeded) as the test set when there is no `test`.
    pub test_fraction: Option<f64>,
    /// The column (CSV) or key (JSON Lines) of the text.
    pub text_field: String,
    /// The column or key of the label (a string, or an integer read as its decimal text).
    pub label_field: String,
    /// CSV field separator; by default a tab for `.tsv` and `.tab` files, a comma otherwise.
    pub delimiter: Option<char>,
    /// The class list and its order (class ids follow it); by default the sorted distinct
    /// labels of the training data (numerically when every label is an integer).
    pub classes: Option<Vec<String>>,
    /// IMDB only: classes by star rating instead of negative/positive, one `[low, high]`
    /// band of ratings (1–10) per class, e.g. `[[1, 2], [3, 4], [7, 8], [9, 10]]`.
    pub rating_bands: Option<Vec<[u8; 2]>>,
    /// Lowercase words.
    pub lowercase: bool,
    /// Drop every HTML tag instead of reading its letters as words (`<br>` is always a line
    /// break).
    pub strip_html: bool,
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
        let tokenizer = TokenizerConfig::default();
        Self {
            source: SourceKind::Imdb,
            train: None,
            test: None,
            test_fraction: None,
            text_field: "text".to_string(),
            label_field: "label".to_string(),
            delimiter: None,
            classes: None,
            rating_bands: None,
            lowercase: tokenizer.lowercase,
            strip_html: tokenizer.strip_html,
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
    /// A labelled CSV (or TSV) file: its `text_field` and `label_field` columns, with
    /// `test_fraction` of its rows (seeded) held out as the test set; every other setting the
    /// notebook's.
    pub fn csv(
        train: impl Into<PathBuf>,
        text_field: &str,
        label_field: &str,
        test_fraction: f64,
    ) -> Self {
        Self {
            source: SourceKind::Csv,
            train: Some(train.into()),
            test_fraction: Some(test_fraction),
            text_field: text_field.into(),
            label_field: label_field.into(),
            ..Self::default()
        }
    }

    /// The tokenizer settings.
    pub fn tokenizer(&self) -> TokenizerConfig {
        TokenizerConfig {
            lowercase: self.lowercase,
            strip_html: self.strip_html,
        }
    }

    /// What a saved model needs to encode new text as this config encoded its training data.
    pub fn preprocessing(&self) -> Preprocessing {
        Preprocessing {
            num_words: self.num_words,
            maxlen: self.maxlen,
            padding: self.padding,
            truncating: self.truncating,
            tokenizer: self.tokenizer(),
        }
    }

    /// This config with its encoding settings (tokenizer, `num_words`, `maxlen`, padding,
    /// truncating) replaced by `preprocessing`'s, e.g. to encode data as a saved model was
    /// trained.
    pub fn with_preprocessing(mut self, preprocessing: &Preprocessing) -> Self {
        let Preprocessing {
            num_words,
            maxlen,
            padding,
            truncating,
            tokenizer,
        } = *preprocessing;
        (self.num_words, self.maxlen) = (num_words, maxlen);
        (self.padding, self.truncating) = (padding, truncating);
        (self.lowercase, self.strip_html) = (tokenizer.lowercase, tokenizer.strip_html);
        self
    }

    /// Checks every setting that can be checked without the corpus.
    pub fn validate(&self) -> Result<()> {
        Vocabulary::check_num_words(self.num_words)?;
        check_maxlen(self.maxlen)?;
        self.validate_source()?;
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

    fn validate_source(&self) -> Result<()> {
        let invalid = |setting: &'static str, problem: String| {
            Err(DataError::InvalidSetting { setting, problem })
        };
        let source = self.source.name();
        if self.source == SourceKind::Imdb {
            let files_only = [
                ("train", self.train.is_some()),
                ("test", self.test.is_some()),
                ("test_fraction", self.test_fraction.is_some()),
                ("delimiter", self.delimiter.is_some()),
                ("classes", self.classes.is_some()),
            ];
            for (setting, given) in files_only {
                if given {
                    return invalid(
                        setting,
                        "applies to source = \"csv\", \"jsonl\" or \"folders\"; the IMDB corpus \
                         has its own split and classes (for rating classes use rating_bands)"
                            .to_string(),
                    );
                }
            }
        } else {
            if self.train.is_none() {
                return invalid(
                    "train",
                    format!("source = {source:?} needs train = \"PATH\" (a file or folder)"),
                );
            }
            if self.rating_bands.is_some() {
                return invalid(
                    "rating_bands",
                    "applies to source = \"imdb\" only".to_string(),
                );
            }
            if self.source != SourceKind::Csv && self.delimiter.is_some() {
                return invalid("delimiter", "applies to source = \"csv\" only".to_string());
            }
            match (self.test.is_some(), self.test_fraction) {
                (true, Some(_)) => {
                    return invalid(
                        "test_fraction",
                        "cannot go with test: give a test file, or a share of train to hold \
                         out, not both"
                            .to_string(),
                    );
                }
                (false, None) => {
                    return invalid(
                        "test",
                        "missing: give test = \"PATH\", or test_fraction = 0.2 to hold out a \
                         share of train"
                            .to_string(),
                    );
                }
                (_, Some(f)) if !(f > 0.0 && f < 1.0) => {
                    return invalid(
                        "test_fraction",
                        format!("{f} is not a share: use a value between 0 and 1, e.g. 0.2"),
                    );
                }
                _ => {}
            }
        }
        if let Some(classes) = &self.classes {
            if classes.len() < 2 {
                return invalid(
                    "classes",
                    format!(
                        "{} class(es) given: a classifier needs at least two",
                        classes.len()
                    ),
                );
            }
            let mut seen = std::collections::HashSet::new();
            if let Some(dup) = classes.iter().find(|c| !seen.insert(c.as_str())) {
                return invalid("classes", format!("{dup:?} is listed twice"));
            }
        }
        if let Some(bands) = &self.rating_bands {
            crate::labelled::check_rating_bands(bands)?;
        }
        for (setting, field) in [
            ("text_field", &self.text_field),
            ("label_field", &self.label_field),
        ] {
            if field.is_empty() {
                return invalid(setting, "must name a column or key".to_string());
            }
        }
        Ok(())
    }
}

/// What a trained model needs to encode new text exactly as its training data was: the
/// tokenizer settings, `num_words`, `maxlen`, padding and truncating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preprocessing {
    /// Vocabulary size including the reserved ids.
    pub num_words: usize,
    /// Sequence length after padding and truncation.
    pub maxlen: usize,
    /// Where short texts are padded.
    pub padding: Padding,
    /// Which end of long texts is cut.
    pub truncating: Truncating,
    /// How texts are split into words.
    pub tokenizer: TokenizerConfig,
}

impl Preprocessing {
    /// Checks the settings (as [`DataConfig::validate`] does for them).
    pub fn validate(&self) -> Result<()> {
        Vocabulary::check_num_words(self.num_words)?;
        check_maxlen(self.maxlen)
    }

    /// One text as the model reads it, word by word: its words, the ids kept after
    /// truncation (unpadded), and which word each id stands for. What a per-word explanation
    /// of a verdict needs; the ids are those of [`encode`](Self::encode)'s row without its
    /// padding.
    pub fn encode_words(&self, vocab: &Vocabulary, text: &str) -> EncodedText {
        let words = crate::tokenizer::tokenize_with(text, self.tokenizer);
        // The start id, then one id per word: id `i` stands for word `i - 1`.
        let all = self.encode_ids(vocab, text);
        let kept = kept_range(all.len(), self.maxlen, self.truncating);
        EncodedText {
            words,
            ids: all[kept.clone()].to_vec(),
            word_of: kept.clone().map(|i| i.checked_sub(1)).collect(),
            kept,
            all,
        }
    }

    /// Every id of `text` (the start id, then one per word), before truncation.
    pub fn encode_ids(&self, vocab: &Vocabulary, text: &str) -> Vec<u32> {
        vocab.encode_text_with(text, self.num_words, self.tokenizer)
    }

    /// Pads and truncates untruncated id sequences (as [`encode_ids`](Self::encode_ids)
    /// gives them) to the model's rows.
    pub fn pad<S: AsRef<[u32]>>(&self, ids: &[S]) -> Result<PaddedSequences> {
        pad_sequences(ids, self.maxlen, self.padding, self.truncating)
    }

    /// Tokenizes, encodes and pads `texts` with `vocab`: one row per text, never fewer.
    pub fn encode(&self, vocab: &Vocabulary, texts: &[&str]) -> Result<PaddedSequences> {
        let encoded: Vec<Vec<u32>> = texts.iter().map(|t| self.encode_ids(vocab, t)).collect();
        self.pad(&encoded)
    }
}

/// One text as a model reads it (see [`Preprocessing::encode_words`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedText {
    /// The text's words, in order, as the tokenizer splits them (all of them, also those
    /// truncation drops).
    pub words: Vec<String>,
    /// The ids the model reads, in order, after truncation and without padding.
    pub ids: Vec<u32>,
    /// For each id, the index of its word in `words` (`None` for the start id).
    pub word_of: Vec<Option<usize>>,
    /// Every id of the text before truncation: the start id, then one per word.
    pub all: Vec<u32>,
    /// Where `ids` lie in `all`.
    pub kept: std::ops::Range<usize>,
}

/// Texts ready for a model: padded ids, class ids, and where each came from.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedSet {
    /// Padded or truncated id sequences with their true lengths.
    pub sequences: PaddedSequences,
    /// Class id of each row (IMDB: 0 negative, 1 positive).
    pub labels: Vec<u32>,
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

/// Train, validation and test sets as the notebook builds them, with the class names.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedData {
    /// Class names by class id.
    pub classes: Vec<String>,
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
        classes: corpus.classes.clone(),
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

    #[test]
    fn encode_words_matches_encode_and_maps_every_id_to_its_word() {
        let vocab = Vocabulary::build(["a great film", "a dull film"]);
        let text = "A great, GREAT film! Unheard-of";
        for truncating in [Truncating::Pre, Truncating::Post] {
            for maxlen in [3, 7, 20] {
                let pre = Preprocessing {
                    num_words: 6,
                    maxlen,
                    padding: Padding::Post,
                    truncating,
                    tokenizer: TokenizerConfig::default(),
                };
                let encoded = pre.encode_words(&vocab, text);
                assert_eq!(
                    encoded.words,
                    ["a", "great", "great", "film", "unheard", "of"]
                );
                // The same ids as the padded row, without its padding.
                let row = pre.encode(&vocab, &[text]).unwrap();
                assert_eq!(encoded.ids, row.real(0), "{truncating:?} {maxlen}");
                assert_eq!(encoded.word_of.len(), encoded.ids.len());
                for (&id, word) in encoded.ids.iter().zip(&encoded.word_of) {
                    match word {
                        None => assert_eq!(id, crate::vocab::START_ID),
                        // num_words 6 keeps the two most frequent words; the rest is unknown.
                        Some(w) => assert_eq!(
                            id,
                            vocab.encode_text_with(&encoded.words[*w], 6, pre.tokenizer)[1]
                        ),
                    }
                }
            }
        }
        let keep_end = Preprocessing {
            num_words: 6,
            maxlen: 3,
            padding: Padding::Pre,
            truncating: Truncating::Pre,
            tokenizer: TokenizerConfig::default(),
        };
        assert_eq!(
            keep_end.encode_words(&vocab, text).word_of,
            [Some(3), Some(4), Some(5)]
        );
        let keep_start = Preprocessing {
            truncating: Truncating::Post,
            ..keep_end
        };
        assert_eq!(
            keep_start.encode_words(&vocab, text).word_of,
            [None, Some(0), Some(1)]
        );
    }
}
