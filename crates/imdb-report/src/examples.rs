//! Qualitative and error analysis (notebook §7): a seeded sample of test reviews, the most
//! confident mistakes in each direction, and accuracy by review length.

use imdb_data::{SeededRng, TokenizedReview, Vocabulary};
use imdb_train::ClassProbabilities;
use serde::{Deserialize, Serialize};

/// Words of a text shown in examples (the notebook shows 120).
pub const SHOWN_TOKENS: usize = 120;

/// One test text with the model's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example {
    /// Row in the test set (and in `predictions.csv`).
    pub index: usize,
    /// True class name.
    pub label: String,
    /// Predicted class name.
    pub predicted: String,
    /// Probability of the predicted class.
    pub probability: f32,
    /// Length of the text in words.
    pub words: usize,
    /// The first words, decoded as the model sees them (`<UNK>` beyond the vocabulary).
    pub text: String,
}

/// Inputs of the analysis: the test texts as tokenized, and the model's outputs.
#[derive(Debug, Clone, Copy)]
pub struct TestOutcome<'a> {
    /// Each test row's text (`corpus.test[set.source[i]]`).
    pub reviews: &'a [&'a TokenizedReview],
    /// Class probabilities per test row.
    pub probabilities: &'a ClassProbabilities,
    /// True class id per test row.
    pub labels: &'a [u32],
    /// Class names by class id.
    pub classes: &'a [String],
    /// The vocabulary, to decode.
    pub vocab: &'a Vocabulary,
    /// The model's vocabulary size.
    pub num_words: usize,
}

impl TestOutcome<'_> {
    /// The name of class `class`.
    pub fn class_name(&self, class: u32) -> String {
        self.classes
            .get(class as usize)
            .cloned()
            .unwrap_or_else(|| class.to_string())
    }

    /// The example for test row `index`.
    pub fn example(&self, index: usize) -> Example {
        let review = self.reviews[index];
        let ids = Vocabulary::encode_ranks(&review.ranks, self.num_words);
        let shown = &ids[..ids.len().min(SHOWN_TOKENS + 1)];
        Example {
            index,
            label: self.class_name(self.labels[index]),
            predicted: self.class_name(self.probabilities.predicted(index)),
            probability: self.probabilities.confidence(index),
            words: review.ranks.len(),
            text: self.vocab.decode(shown),
        }
    }

    /// True if row `i` is classified correctly.
    fn correct(&self, i: usize) -> bool {
        self.probabilities.predicted(i) == self.labels[i]
    }

    /// `n` test rows drawn without replacement with `seed` (the notebook's
    /// `np.random.choice(..., replace=False)`).
    pub fn random_sample(&self, n: usize, seed: u64) -> Vec<Example> {
        let mut rows: Vec<usize> = (0..self.labels.len()).collect();
        SeededRng::new(seed).shuffle(&mut rows);
        rows.truncate(n);
        rows.into_iter().map(|i| self.example(i)).collect()
    }

    /// For each true class, by class id, the `n` misclassified texts of that class whose wrong
    /// verdict was the most confident. With two classes these are the most confident false
    /// positives (true class 0), then false negatives (true class 1).
    pub fn confident_mistakes(&self, n: usize) -> Vec<Vec<Example>> {
        (0..self.classes.len() as u32)
            .map(|class| {
                let rows = self.mistakes_by_confidence(Some(class));
                rows.into_iter().take(n).map(|i| self.example(i)).collect()
            })
            .collect()
    }

    /// The `n` misclassified rows whose wrong verdict was the most confident, whatever their
    /// class, most confident first.
    pub fn most_confident_mistakes(&self, n: usize) -> Vec<usize> {
        let mut rows = self.mistakes_by_confidence(None);
        rows.truncate(n);
        rows
    }

    /// The misclassified rows (of true class `class`, or all), most confident verdict first,
    /// rows of equal confidence in row order.
    fn mistakes_by_confidence(&self, class: Option<u32>) -> Vec<usize> {
        let mut rows: Vec<usize> = (0..self.labels.len())
            .filter(|&i| class.is_none_or(|c| self.labels[i] == c) && !self.correct(i))
            .collect();
        rows.sort_by(|&a, &b| {
            self.probabilities
                .confidence(b)
                .total_cmp(&self.probabilities.confidence(a))
        });
        rows
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
                b.correct += usize::from(self.correct(i));
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

    fn review(len: usize) -> TokenizedReview {
        TokenizedReview {
            id: 0,
            rating: 8,
            class: Some(1),
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
        let positive = [0.9f32, 0.2, 0.7, 0.6, 0.1];
        let probabilities = ClassProbabilities {
            num_classes: 2,
            values: positive.iter().flat_map(|&p| [1.0 - p, p]).collect(),
        };
        let labels = [0, 1, 1, 0, 1];
        let classes = ["negative".to_string(), "positive".to_string()];
        let outcome = TestOutcome {
            reviews: &refs,
            probabilities: &probabilities,
            labels: &labels,
            classes: &classes,
            vocab: &vocab,
            num_words: 100,
        };
        let mistakes = outcome.confident_mistakes(5);
        let (fp, fneg) = (&mistakes[0], &mistakes[1]);
        assert_eq!(fp.iter().map(|e| e.index).collect::<Vec<_>>(), [0, 3]);
        assert_eq!(fneg.iter().map(|e| e.index).collect::<Vec<_>>(), [4, 1]);
        assert_eq!(
            (fp[0].label.as_str(), fp[0].predicted.as_str()),
            ("negative", "positive")
        );
        assert_eq!(fp[0].probability, 0.9);
        assert!((fneg[0].probability - 0.9).abs() < 1e-6);
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
