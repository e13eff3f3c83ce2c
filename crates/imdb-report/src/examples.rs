//! Qualitative and error analysis (notebook §7): a seeded sample of test reviews, the most
//! confident mistakes in each direction, and accuracy by review length.

use imdb_data::{SeededRng, TokenizedReview, Vocabulary};
use serde::{Deserialize, Serialize};

/// Words of a review shown in examples (the notebook shows 120).
pub const SHOWN_TOKENS: usize = 120;

/// One test review with the model's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example {
    /// Row in the test set (and in `predictions.csv`).
    pub index: usize,
    /// True class.
    pub label: u8,
    /// Predicted class.
    pub predicted: u8,
    /// Probability of the positive class.
    pub probability: f32,
    /// Length of the review in words.
    pub words: usize,
    /// The first words, decoded as the model sees them (`<UNK>` beyond the vocabulary).
    pub text: String,
}

/// Inputs of the analysis: the test reviews as tokenized, and the model's outputs.
#[derive(Debug, Clone, Copy)]
pub struct TestOutcome<'a> {
    /// Each test row's review (`corpus.test[set.source[i]]`).
    pub reviews: &'a [&'a TokenizedReview],
    /// Probability per test row.
    pub probabilities: &'a [f32],
    /// True class per test row.
    pub labels: &'a [u8],
    /// The vocabulary, to decode.
    pub vocab: &'a Vocabulary,
    /// The model's vocabulary size.
    pub num_words: usize,
}

impl TestOutcome<'_> {
    /// The example for test row `index`.
    pub fn example(&self, index: usize) -> Example {
        let review = self.reviews[index];
        let ids = Vocabulary::encode_ranks(&review.ranks, self.num_words);
        let shown = &ids[..ids.len().min(SHOWN_TOKENS + 1)];
        let probability = self.probabilities[index];
        Example {
            index,
            label: self.labels[index],
            predicted: u8::from(probability >= 0.5),
            probability,
            words: review.ranks.len(),
            text: self.vocab.decode(shown),
        }
    }

    /// `n` test rows drawn without replacement with `seed` (the notebook's
    /// `np.random.choice(..., replace=False)`).
    pub fn random_sample(&self, n: usize, seed: u64) -> Vec<Example> {
        let mut rows: Vec<usize> = (0..self.labels.len()).collect();
        SeededRng::new(seed).shuffle(&mut rows);
        rows.truncate(n);
        rows.into_iter().map(|i| self.example(i)).collect()
    }

    /// The `n` false positives with the highest probability and the `n` false negatives with
    /// the lowest: the model's most confident mistakes.
    pub fn confident_mistakes(&self, n: usize) -> (Vec<Example>, Vec<Example>) {
        let mut fp: Vec<usize> = (0..self.labels.len())
            .filter(|&i| self.labels[i] == 0 && self.probabilities[i] >= 0.5)
            .collect();
        let mut fneg: Vec<usize> = (0..self.labels.len())
            .filter(|&i| self.labels[i] == 1 && self.probabilities[i] < 0.5)
            .collect();
        fp.sort_by(|&a, &b| self.probabilities[b].total_cmp(&self.probabilities[a]));
        fneg.sort_by(|&a, &b| self.probabilities[a].total_cmp(&self.probabilities[b]));
        (
            fp.into_iter().take(n).map(|i| self.example(i)).collect(),
            fneg.into_iter().take(n).map(|i| self.example(i)).collect(),
        )
    }

    /// Accuracy within review-length buckets (in words, before truncation).
    pub fn accuracy_by_length(&self, edges: &[usize]) -> Vec<LengthBucket> {
        let mut buckets: Vec<LengthBucket> = edges
            .windows(2)
            .map(|w| LengthBucket {
                low: w[0],
                high: Some(w[1]),
                count: 0,
                correct: 0,
                accuracy: 0.0,
            })
            .collect();
        if let Some(&last) = edges.last() {
            buckets.push(LengthBucket {
                low: last,
                high: None,
                count: 0,
                correct: 0,
                accuracy: 0.0,
            });
        }
        for i in 0..self.labels.len() {
            let words = self.reviews[i].ranks.len();
            if let Some(b) = buckets
                .iter_mut()
                .find(|b| words >= b.low && b.high.is_none_or(|h| words < h))
            {
                b.count += 1;
                b.correct += usize::from((self.probabilities[i] >= 0.5) == (self.labels[i] == 1));
            }
        }
        for b in &mut buckets {
            b.accuracy = if b.count == 0 {
                0.0
            } else {
                b.correct as f64 / b.count as f64
            };
        }
        buckets.retain(|b| b.count > 0);
        buckets
    }
}

/// Default length bucket edges, in words.
pub const LENGTH_EDGES: [usize; 7] = [0, 100, 200, 300, 500, 800, 1200];

/// Accuracy of the reviews whose length is in `[low, high)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LengthBucket {
    /// Shortest length in the bucket.
    pub low: usize,
    /// One past the longest, `None` for the open last bucket.
    pub high: Option<usize>,
    /// Reviews in the bucket.
    pub count: usize,
    /// Correctly classified reviews.
    pub correct: usize,
    /// `correct / count`.
    pub accuracy: f64,
}

impl LengthBucket {
    /// `100-199`, or `1200+`.
    pub fn label(&self) -> String {
        match self.high {
            Some(h) => format!("{}-{}", self.low, h - 1),
            None => format!("{}+", self.low),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imdb_data::Sentiment;

    fn review(len: usize) -> TokenizedReview {
        TokenizedReview {
            id: 0,
            rating: 8,
            sentiment: Some(Sentiment::Positive),
            ranks: (0..len as u32).map(|i| i % 3).collect(),
        }
    }

    #[test]
    fn mistakes_sample_and_buckets() {
        let vocab = Vocabulary::from_ranked_words(vec!["good".into(), "bad".into(), "film".into()]);
        let reviews = [
            review(50),
            review(150),
            review(150),
            review(600),
            review(2000),
        ];
        let refs: Vec<&TokenizedReview> = reviews.iter().collect();
        let probabilities = [0.9, 0.2, 0.7, 0.6, 0.1];
        let labels = [0, 1, 1, 0, 1];
        let outcome = TestOutcome {
            reviews: &refs,
            probabilities: &probabilities,
            labels: &labels,
            vocab: &vocab,
            num_words: 100,
        };
        let (fp, fneg) = outcome.confident_mistakes(5);
        assert_eq!(fp.iter().map(|e| e.index).collect::<Vec<_>>(), [0, 3]);
        assert_eq!(fneg.iter().map(|e| e.index).collect::<Vec<_>>(), [4, 1]);
        assert!(fp[0].text.starts_with("<START> good bad film"));
        assert_eq!(fp[0].text.split(' ').count(), 51);
        assert_eq!(outcome.example(4).text.split(' ').count(), SHOWN_TOKENS + 1);

        let sample = outcome.random_sample(3, 42);
        assert_eq!(sample, outcome.random_sample(3, 42));
        let mut idx: Vec<usize> = sample.iter().map(|e| e.index).collect();
        idx.dedup();
        assert_eq!(idx.len(), 3);

        let buckets = outcome.accuracy_by_length(&LENGTH_EDGES);
        let summary: Vec<(String, usize, usize)> = buckets
            .iter()
            .map(|b| (b.label(), b.count, b.correct))
            .collect();
        assert_eq!(
            summary,
            [
                ("0-99".to_string(), 1, 0),
                ("100-199".to_string(), 2, 1),
                ("500-799".to_string(), 1, 0),
                ("1200+".to_string(), 1, 0)
            ]
        );
    }
}
