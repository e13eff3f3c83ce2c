//! The corpus after tokenization: every text as word ranks, plus the vocabulary and the class
//! names. IMDB's reviews and every other labelled source end up here.

use rayon::prelude::*;
use std::collections::HashMap;

use crate::corpus::{RawReview, Sentiment};
use crate::stats::{ClassCounts, LengthStats};
use crate::tokenizer::{TokenizerConfig, for_each_token_with};
use crate::vocab::Vocabulary;

/// One text as the frequency ranks of its words ([`crate::vocab::UNRANKED`] for words never
/// seen in training).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenizedReview {
    /// The id from the file name (IMDB), or the text's position in its source.
    pub id: u32,
    /// The rating from the file name (IMDB; 0 for unlabelled reviews and other sources).
    pub rating: u8,
    /// The class id (an index into [`TokenizedCorpus::classes`]), `None` for unlabelled text.
    pub class: Option<u32>,
    /// Word ranks in reading order.
    pub ranks: Vec<u32>,
}

impl TokenizedReview {
    /// Class id (unlabelled texts count as 0).
    pub fn label(&self) -> u32 {
        self.class.unwrap_or(0)
    }
}

/// A text to tokenize, with what is known of it.
pub trait LabelledDocument: Sync {
    /// Its id (see [`TokenizedReview::id`]).
    fn id(&self) -> u32;
    /// Its rating, 0 if none.
    fn rating(&self) -> u8;
    /// Its class id, `None` if unlabelled.
    fn class(&self) -> Option<u32>;
    /// Its text.
    fn text(&self) -> &str;
}

impl LabelledDocument for RawReview {
    fn id(&self) -> u32 {
        self.id
    }
    fn rating(&self) -> u8 {
        self.rating
    }
    fn class(&self) -> Option<u32> {
        self.sentiment.map(Sentiment::class)
    }
    fn text(&self) -> &str {
        &self.text
    }
}

/// The class names of the IMDB corpus, by class id.
pub fn imdb_classes() -> Vec<String> {
    [Sentiment::Negative, Sentiment::Positive]
        .map(|s| s.name().to_string())
        .to_vec()
}

/// The whole corpus, tokenized, with the vocabulary ranked on its training texts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenizedCorpus {
    /// Words ranked by frequency in `train`.
    pub vocab: Vocabulary,
    /// Class names by class id (IMDB: `negative`, `positive`).
    pub classes: Vec<String>,
    /// The labelled training texts (IMDB: 25,000 reviews, negatives then positives, by id).
    pub train: Vec<TokenizedReview>,
    /// The labelled test texts (IMDB: 25,000, in the same order).
    pub test: Vec<TokenizedReview>,
    /// The unlabelled texts, empty unless asked for.
    pub unsup: Vec<TokenizedReview>,
    /// SHA-256 of the archive (IMDB) or of the source files the corpus came from: caches built
    /// from the corpus (word vectors) are keyed by it.
    pub archive_sha256: String,
    /// The tokenizer settings the texts were split with.
    pub tokenizer: TokenizerConfig,
}

/// The exploratory numbers of a corpus (notebook §2).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CorpusStats {
    /// Classes of the training texts.
    pub train_classes: ClassCounts,
    /// Classes of the test texts.
    pub test_classes: ClassCounts,
    /// Number of unlabelled texts loaded.
    pub unsup_reviews: usize,
    /// Lengths, in words, of the training texts (the notebook's numbers; Keras' copy counts
    /// one more for its start token and counts `<br />` as a word).
    pub train_lengths: Option<LengthStats>,
    /// Lengths of the test texts.
    pub test_lengths: Option<LengthStats>,
    /// Ranked words in the vocabulary.
    pub vocabulary_size: usize,
}

impl TokenizedCorpus {
    /// Tokenizes IMDB's raw reviews with the default tokenizer and ranks the vocabulary on
    /// `train` (in parallel).
    pub fn build(
        train: &[RawReview],
        test: &[RawReview],
        unsup: &[RawReview],
        archive_sha256: String,
    ) -> Self {
        Self::build_with(
            (train, test, unsup),
            imdb_classes(),
            archive_sha256,
            TokenizerConfig::default(),
        )
    }

    /// Tokenizes any labelled texts (train, test, unlabelled) with `tokenizer`, ranks the
    /// vocabulary on the training texts (in parallel); `classes` names the class ids.
    pub fn build_with<D: LabelledDocument>(
        texts: (&[D], &[D], &[D]),
        classes: Vec<String>,
        archive_sha256: String,
        tokenizer: TokenizerConfig,
    ) -> Self {
        let vocab = Self::rank_words(texts.0, tokenizer);
        Self::build_against(texts, classes, archive_sha256, tokenizer, vocab)
    }

    /// [`build_with`](Self::build_with) with the words ranked as `vocab` ranks them (e.g. a
    /// trained model's vocabulary) instead of by their frequency in `train`: every word
    /// `vocab` knows gets its rank there, whichever texts it occurs in.
    pub fn build_against<D: LabelledDocument>(
        (train, test, unsup): (&[D], &[D], &[D]),
        classes: Vec<String>,
        archive_sha256: String,
        tokenizer: TokenizerConfig,
        vocab: Vocabulary,
    ) -> Self {
        let tokenize = |reviews: &[D]| -> Vec<TokenizedReview> {
            reviews
                .par_iter()
                .map(|r| TokenizedReview {
                    id: r.id(),
                    rating: r.rating(),
                    class: r.class(),
                    ranks: vocab.ranks_of_text_with(r.text(), tokenizer),
                })
                .collect()
        };
        let (train, test, unsup) = (tokenize(train), tokenize(test), tokenize(unsup));
        Self {
            vocab,
            classes,
            train,
            test,
            unsup,
            archive_sha256,
            tokenizer,
        }
    }

    /// The words of `train` ranked by frequency (in parallel), ties alphabetical.
    fn rank_words<D: LabelledDocument>(train: &[D], tokenizer: TokenizerConfig) -> Vocabulary {
        let counts = train
            .par_iter()
            .fold(HashMap::<String, u64>::new, |mut counts, review| {
                for_each_token_with(review.text(), tokenizer, |w| match counts.get_mut(w) {
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
        Vocabulary::from_counts(counts)
    }

    /// True if the words `vocab` knows have the same ranks here (its words are the first of
    /// this corpus' vocabulary, in order): the corpus is then encoded as `vocab` would encode
    /// it, for ids below `vocab.len()`.
    pub fn ranks_agree_with(&self, vocab: &Vocabulary) -> bool {
        self.vocab.words().get(..vocab.len()) == Some(vocab.words())
    }

    /// Class counts and length statistics (notebook §2).
    pub fn stats(&self) -> CorpusStats {
        let lengths =
            |reviews: &[TokenizedReview]| reviews.iter().map(|r| r.ranks.len()).collect::<Vec<_>>();
        let counts = |reviews: &[TokenizedReview]| {
            ClassCounts::from_labels(&self.classes, reviews.iter().map(|r| r.label()))
        };
        CorpusStats {
            train_classes: counts(&self.train),
            test_classes: counts(&self.test),
            unsup_reviews: self.unsup.len(),
            train_lengths: LengthStats::from_lengths(&lengths(&self.train)),
            test_lengths: LengthStats::from_lengths(&lengths(&self.test)),
            vocabulary_size: self.vocab.len(),
        }
    }

    /// Lengths in words of the training texts, for the length histogram.
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
        assert_eq!(stats.test_classes.counts, [0, 1]);
        assert_eq!(stats.test_classes.names, ["negative", "positive"]);
        assert_eq!(stats.train_lengths.unwrap().max, 3);
    }
}
