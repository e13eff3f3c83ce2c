//! A frequency-ranked vocabulary with Keras' IMDB index conventions.
//!
//! Ids 0–3 are reserved: 0 padding, 1 start of review, 2 out-of-vocabulary, 3 unused. The word
//! of frequency rank `r` (0 = most frequent) has id `r + 1 + INDEX_FROM`, so the most frequent
//! word is 4, as in `keras.datasets.imdb`. With `num_words = N` every id ≥ N becomes 2.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::tokenizer::{TokenizerConfig, for_each_token, for_each_token_with};

/// Id of padding.
pub const PAD_ID: u32 = 0;
/// Id that starts every encoded review.
pub const START_ID: u32 = 1;
/// Id of words outside the vocabulary.
pub const OOV_ID: u32 = 2;
/// Reserved and never produced.
pub const UNUSED_ID: u32 = 3;
/// Keras' `index_from`: word ids start at `INDEX_FROM + 1`.
pub const INDEX_FROM: u32 = 3;
/// The smallest meaningful `num_words`: the reserved ids plus one word.
pub const MIN_NUM_WORDS: usize = (INDEX_FROM + 2) as usize;
/// Marks a word that has no rank (never seen in the training reviews) in a rank sequence.
pub const UNRANKED: u32 = u32::MAX;

/// Words ranked by frequency in the training reviews.
/// Serialized as the plain list of words by rank.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<String>", into = "Vec<String>")]
pub struct Vocabulary {
    /// Words by rank: `words[0]` is the most frequent. Ties are broken alphabetically so the
    /// ranking never depends on reading order.
    words: Vec<String>,
    index: HashMap<String, u32>,
}

impl Vocabulary {
    /// Builds the vocabulary from words already ranked (most frequent first).
    pub fn from_ranked_words(words: Vec<String>) -> Self {
        let index = words
            .iter()
            .enumerate()
            .map(|(rank, w)| (w.clone(), rank as u32))
            .collect();
        Self { words, index }
    }

    /// Counts the words of `texts` and ranks them by frequency, ties alphabetical.
    pub fn build<'a>(texts: impl IntoIterator<Item = &'a str>) -> Self {
        let mut counts: HashMap<String, u64> = HashMap::new();
        for text in texts {
            for_each_token(text, |w| match counts.get_mut(w) {
                Some(c) => *c += 1,
                None => {
                    counts.insert(w.to_string(), 1);
                }
            });
        }
        Self::from_counts(counts)
    }

    /// Ranks words given their counts, most frequent first, ties alphabetical.
    pub fn from_counts(counts: impl IntoIterator<Item = (String, u64)>) -> Self {
        let mut counted: Vec<(String, u64)> = counts.into_iter().filter(|(_, c)| *c > 0).collect();
        counted.sort_unstable_by(|(wa, ca), (wb, cb)| cb.cmp(ca).then_with(|| wa.cmp(wb)));
        Self::from_ranked_words(counted.into_iter().map(|(w, _)| w).collect())
    }

    /// Number of ranked words (not counting the reserved ids).
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// True if no word was ranked.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// Words by rank.
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// The rank of `word`, if it was seen in training.
    pub fn rank(&self, word: &str) -> Option<u32> {
        self.index.get(word).copied()
    }

    /// The ranks of the words of `text`, [`UNRANKED`] for unknown words.
    pub fn ranks_of_text(&self, text: &str) -> Vec<u32> {
        self.ranks_of_text_with(text, TokenizerConfig::default())
    }

    /// [`ranks_of_text`](Self::ranks_of_text) with the given tokenizer settings.
    pub fn ranks_of_text_with(&self, text: &str, tokenizer: TokenizerConfig) -> Vec<u32> {
        let mut ranks = Vec::new();
        for_each_token_with(text, tokenizer, |w| {
            ranks.push(self.rank(w).unwrap_or(UNRANKED))
        });
        ranks
    }

    /// Encodes ranks as Keras ids: a start id, then each word's id, [`OOV_ID`] for words
    /// unknown or beyond `num_words`.
    pub fn encode_ranks(ranks: &[u32], num_words: usize) -> Vec<u32> {
        let mut ids = Vec::with_capacity(ranks.len() + 1);
        ids.push(START_ID);
        ids.extend(ranks.iter().map(|&r| rank_to_id(r, num_words)));
        ids
    }

    /// Encodes new text (it need not come from the corpus) as Keras ids.
    pub fn encode_text(&self, text: &str, num_words: usize) -> Vec<u32> {
        Self::encode_ranks(&self.ranks_of_text(text), num_words)
    }

    /// [`encode_text`](Self::encode_text) with the given tokenizer settings.
    pub fn encode_text_with(
        &self,
        text: &str,
        num_words: usize,
        tokenizer: TokenizerConfig,
    ) -> Vec<u32> {
        Self::encode_ranks(&self.ranks_of_text_with(text, tokenizer), num_words)
    }

    /// The word or marker for one id: `<PAD>`, `<START>`, `<UNK>`, `<UNUSED>`, the word, or `?`
    /// for an id beyond the vocabulary.
    pub fn id_to_word(&self, id: u32) -> &str {
        match id {
            PAD_ID => "<PAD>",
            START_ID => "<START>",
            OOV_ID => "<UNK>",
            UNUSED_ID => "<UNUSED>",
            _ => self
                .words
                .get((id - INDEX_FROM - 1) as usize)
                .map_or("?", String::as_str),
        }
    }

    /// The notebook's `decode_review`: ids back to words, separated by spaces.
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut text = String::new();
        for (i, &id) in ids.iter().enumerate() {
            if i > 0 {
                text.push(' ');
            }
            text.push_str(self.id_to_word(id));
        }
        text
    }

    /// Checks that `num_words` is usable with this crate's conventions.
    pub fn check_num_words(num_words: usize) -> Result<()> {
        if num_words < MIN_NUM_WORDS {
            return Err(DataError::InvalidSetting {
                setting: "num_words",
                problem: format!(
                    "{num_words} leaves no room for words: ids 0-3 are reserved, so use at least \
                     {MIN_NUM_WORDS}"
                ),
            });
        }
        Ok(())
    }
}

impl From<Vec<String>> for Vocabulary {
    fn from(words: Vec<String>) -> Self {
        Self::from_ranked_words(words)
    }
}

impl From<Vocabulary> for Vec<String> {
    fn from(vocab: Vocabulary) -> Self {
        vocab.words
    }
}

/// The Keras id of rank `rank` under a `num_words` limit.
#[inline]
pub fn rank_to_id(rank: u32, num_words: usize) -> u32 {
    if rank == UNRANKED {
        return OOV_ID;
    }
    let id = rank as u64 + INDEX_FROM as u64 + 1;
    if id < num_words as u64 {
        id as u32
    } else {
        OOV_ID
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab() -> Vocabulary {
        Vocabulary::build(["b a a c", "a b d", "e"])
    }

    #[test]
    fn ranks_by_frequency_then_alphabet() {
        assert_eq!(vocab().words(), ["a", "b", "c", "d", "e"]);
    }

    #[test]
    fn keras_ids_and_num_words() {
        let v = vocab();
        // a=4, b=5, c=6, d=7, e=8; with num_words = 7 only a, b, c remain.
        assert_eq!(v.encode_text("a b c d zzz", 100), [1, 4, 5, 6, 7, 2]);
        assert_eq!(v.encode_text("a b c d zzz", 7), [1, 4, 5, 6, 2, 2]);
        assert_eq!(v.encode_text("", 7), [1]);
    }

    #[test]
    fn decode_round_trip_and_markers() {
        let v = vocab();
        let ids = v.encode_text("A, b! zzz", 100);
        assert_eq!(v.decode(&ids), "<START> a b <UNK>");
        assert_eq!(v.decode(&[0, 3, 999]), "<PAD> <UNUSED> ?");
    }

    #[test]
    fn num_words_below_reserved_is_refused() {
        assert!(Vocabulary::check_num_words(4).is_err());
        assert!(Vocabulary::check_num_words(5).is_ok());
    }

    #[test]
    fn rebuilt_from_words_keeps_lookup() {
        let v = vocab();
        let v2 = Vocabulary::from(Vec::from(v.clone()));
        assert_eq!(v2.rank("c"), Some(2));
        assert_eq!(v, v2);
    }
}
