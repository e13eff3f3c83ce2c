//! The corpus after tokenization: every review as word ranks, plus the vocabulary.

use rayon::prelude::*;
use std::collections::HashMap;

use crate::corpus::{RawReview, Sentiment};
use crate::stats::{ClassCounts, LengthStats};
use crate::tokenizer::for_each_token;
use crate::vocab::Vocabulary;

/// One review as the frequency ranks of its words ([`crate::vocab::UNRANKED`] for words never
/// seen in training).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenizedReview {
    /// The id from the file name.
    pub id: u32,
    /// The rating from the file name (0 for unlabelled reviews).
    pub rating: u8,
    /// The sentiment, `None` for unlabelled reviews.
    pub sentiment: Option<Sentiment>,
    /// Word ranks in reading order.
    pub ranks: Vec<u32>,
}

impl TokenizedReview {
    /// Class index, 0 negative or 1 positive (unlabelled reviews count as 0).
    pub fn label(&self) -> u8 {
        self.sentiment.map_or(0, Sentiment::class)
    }
}

/// The whole corpus, tokenized, with the vocabulary ranked on its training reviews.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenizedCorpus {
    /// Words ranked by frequency in `train`.
    pub vocab: Vocabulary,
    /// The 25,000 labelled training reviews, negatives then positives, by id.
    pub train: Vec<TokenizedReview>,
    /// The 25,000 labelled test reviews, in the same order.
    pub test: Vec<TokenizedReview>,
    /// The unlabelled reviews, empty unless asked for.
    pub unsup: Vec<TokenizedReview>,
    /// SHA-256 of the archive the corpus came from.
    pub archive_sha256: String,
}

/// The exploratory numbers of a corpus (notebook §2).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CorpusStats {
    /// Classes of the training reviews.
    pub train_classes: ClassCounts,
    /// Classes of the test reviews.
    pub test_classes: ClassCounts,
    /// Number of unlabelled reviews loaded.
    pub unsup_reviews: usize,
    /// Lengths, in words, of the training reviews (the notebook's numbers; Keras' copy counts
    /// one more for its start token and counts `<br />` as a word).
    pub train_lengths: Option<LengthStats>,
    /// Lengths of the test reviews.
    pub test_lengths: Option<LengthStats>,
    /// Ranked words in the vocabulary.
    pub vocabulary_size: usize,
}

impl TokenizedCorpus {
    /// Tokenizes raw reviews and ranks the vocabulary on `train` (in parallel).
    pub fn build(
        train: &[RawReview],
        test: &[RawReview],
        unsup: &[RawReview],
        archive_sha256: String,
    ) -> Self {
        let counts = train
            .par_iter()
            .fold(HashMap::<String, u64>::new, |mut counts, review| {
                for_each_token(&review.text, |w| match counts.get_mut(w) {
                    Some(c) => *c += 1,
                    None => {
                        counts.insert(w.to_string(), 1);
                    }
                });
                counts
            })
            .reduce(HashMap::new, |a, b| {
                let (mut big, small) = if a.len() >= b.len() { (a, b) } else { (b, a) };
                for (w, c) in small {
                    *big.entry(w).or_insert(0) += c;
                }
                big
            });
        let vocab = Vocabulary::from_counts(counts);
        let tokenize = |reviews: &[RawReview]| -> Vec<TokenizedReview> {
            reviews
                .par_iter()
                .map(|r| TokenizedReview {
                    id: r.id,
                    rating: r.rating,
                    sentiment: r.sentiment,
                    ranks: vocab.ranks_of_text(&r.text),
                })
                .collect()
        };
        let (train, test, unsup) = (tokenize(train), tokenize(test), tokenize(unsup));
        Self {
            vocab,
            train,
            test,
            unsup,
            archive_sha256,
        }
    }

    /// Class counts and length statistics (notebook §2).
    pub fn stats(&self) -> CorpusStats {
        let lengths =
            |reviews: &[TokenizedReview]| reviews.iter().map(|r| r.ranks.len()).collect::<Vec<_>>();
        CorpusStats {
            train_classes: ClassCounts::from_labels(self.train.iter().map(|r| r.label())),
            test_classes: ClassCounts::from_labels(self.test.iter().map(|r| r.label())),
            unsup_reviews: self.unsup.len(),
            train_lengths: LengthStats::from_lengths(&lengths(&self.train)),
            test_lengths: LengthStats::from_lengths(&lengths(&self.test)),
            vocabulary_size: self.vocab.len(),
        }
    }

    /// Lengths in words of the training reviews, for the length histogram.
    pub fn train_lengths(&self) -> Vec<usize> {
        self.train.iter().map(|r| r.ranks.len()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::UNRANKED;

    fn raw(id: u32, sentiment: Option<Sentiment>, text: &str) -> RawReview {
        RawReview {
            id,
            rating: match sentiment {
                Some(Sentiment::Positive) => 9,
                Some(Sentiment::Negative) => 2,
                None => 0,
            },
            sentiment,
            text: text.to_string(),
        }
    }

    #[test]
    fn vocabulary_comes_from_training_only() {
        let train = [
            raw(1, Some(Sentiment::Negative), "bad bad film"),
            raw(2, Some(Sentiment::Positive), "good film"),
        ];
        let test = [raw(1, Some(Sentiment::Positive), "good unseen film")];
        let corpus = TokenizedCorpus::build(&train, &test, &[], "abc".into());
        assert_eq!(corpus.vocab.words(), ["bad", "film", "good"]);
        assert_eq!(corpus.train[0].ranks, [0, 0, 1]);
        assert_eq!(corpus.test[0].ranks, [2, UNRANKED, 1]);
        let stats = corpus.stats();
        assert_eq!(stats.train_classes.total(), 2);
        assert_eq!(stats.test_classes.positive, 1);
        assert_eq!(stats.train_lengths.unwrap().max, 3);
    }
}
