//! Binary classification metrics: the notebook's accuracy, precision, recall and ROC AUC,
//! plus the confusion matrix and ROC curve. Plain Rust on probabilities and labels.

use serde::{Deserialize, Serialize};

/// Decision threshold on the probability of the positive class.
pub const THRESHOLD: f32 = 0.5;

/// Counts of a binary confusion matrix (positive = class 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Confusion {
    /// Positives predicted positive.
    pub true_positives: usize,
    /// Negatives predicted positive.
    pub false_positives: usize,
    /// Negatives predicted negative.
    pub true_negatives: usize,
    /// Positives predicted negative.
    pub false_negatives: usize,
}

impl Confusion {
    /// Counts predictions `probability >= 0.5` against `labels`.
    pub fn from_probabilities(probabilities: &[f32], labels: &[u8]) -> Self {
        let mut c = Self::default();
        for (&p, &y) in probabilities.iter().zip(labels) {
            match (p >= THRESHOLD, y != 0) {
                (true, true) => c.true_positives += 1,
                (true, false) => c.false_positives += 1,
                (false, false) => c.true_negatives += 1,
                (false, true) => c.false_negatives += 1,
            }
        }
        c
    }

    /// All counted examples.
    pub fn total(&self) -> usize {
        self.true_positives + self.false_positives + self.true_negatives + self.false_negatives
    }

    /// Share of correct predictions.
    pub fn accuracy(&self) -> f64 {
        ratio(self.true_positives + self.true_negatives, self.total())
    }

    /// Of the reviews predicted positive, the share that are (0 if none predicted).
    pub fn precision(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_positives,
        )
    }

    /// Of the positive reviews, the share predicted positive (0 if there are none).
    pub fn recall(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_negatives,
        )
    }

    /// The same counts with the negative class taken as positive.
    pub fn swapped(&self) -> Self {
        Self {
            true_positives: self.true_negatives,
            false_positives: self.false_negatives,
            true_negatives: self.true_positives,
            false_negatives: self.false_positives,
        }
    }
}

fn ratio(num: usize, den: usize) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

/// The notebook's metrics for one split.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct BinaryMetrics {
    /// Mean binary cross-entropy.
    pub loss: f64,
    /// Share of correct predictions at threshold 0.5.
    pub accuracy: f64,
    /// Precision of the positive class.
    pub precision: f64,
    /// Recall of the positive class.
    pub recall: f64,
    /// Area under the ROC curve (exact, ties counted half).
    pub auc: f64,
}

impl BinaryMetrics {
    /// Metrics from probabilities, labels and the mean loss already computed.
    pub fn compute(probabilities: &[f32], labels: &[u8], loss: f64) -> Self {
        let c = Confusion::from_probabilities(probabilities, labels);
        Self {
            loss,
            accuracy: c.accuracy(),
            precision: c.precision(),
            recall: c.recall(),
            auc: roc_auc(probabilities, labels),
        }
    }

    /// True if every value is a finite number.
    pub fn is_finite(&self) -> bool {
        [
            self.loss,
            self.accuracy,
            self.precision,
            self.recall,
            self.auc,
        ]
        .iter()
        .all(|v| v.is_finite())
    }
}

/// Binary cross-entropy of one logit against a label, computed stably.
pub fn bce_with_logit(logit: f32, label: u8) -> f64 {
    let x = logit as f64;
    let y = if label != 0 { 1.0 } else { 0.0 };
    x.max(0.0) - x * y + (-x.abs()).exp().ln_1p()
}

/// The logistic function in `f32`.
pub fn sigmoid(logit: f32) -> f32 {
    1.0 / (1.0 + (-logit).exp())
}

/// Area under the ROC curve: the probability that a random positive scores above a random
/// negative (Mann–Whitney U with average ranks for ties). 0.5 if a class is missing.
pub fn roc_auc(scores: &[f32], labels: &[u8]) -> f64 {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let positives = labels.iter().filter(|&&y| y != 0).count();
    let negatives = labels.len() - positives;
    if positives == 0 || negatives == 0 {
        return 0.5;
    }
    let mut rank_sum = 0.0f64;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        // Ranks i+1..=j+1 share their average.
        let average = (i + j + 2) as f64 / 2.0;
        rank_sum += average * order[i..=j].iter().filter(|&&k| labels[k] != 0).count() as f64;
        i = j + 1;
    }
    let p = positives as f64;
    (rank_sum - p * (p + 1.0) / 2.0) / (p * negatives as f64)
}

/// One point of the ROC curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RocPoint {
    /// False positive rate.
    pub fpr: f64,
    /// True positive rate.
    pub tpr: f64,
    /// Scores at or above this are predicted positive.
    pub threshold: f32,
}

/// The ROC curve from (0, 0) to (1, 1), one point per distinct score, as scikit-learn's
/// `roc_curve(drop_intermediate=False)` (its first threshold is +∞).
pub fn roc_curve(scores: &[f32], labels: &[u8]) -> Vec<RocPoint> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let positives = labels.iter().filter(|&&y| y != 0).count().max(1) as f64;
    let negatives = (labels.len() - labels.iter().filter(|&&y| y != 0).count()).max(1) as f64;
    let mut points = vec![RocPoint {
        fpr: 0.0,
        tpr: 0.0,
        threshold: f32::INFINITY,
    }];
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut i = 0;
    while i < order.len() {
        let score = scores[order[i]];
        while i < order.len() && scores[order[i]] == score {
            if labels[order[i]] != 0 {
                tp += 1;
            } else {
                fp += 1;
            }
            i += 1;
        }
        points.push(RocPoint {
            fpr: fp as f64 / negatives,
            tpr: tp as f64 / positives,
            threshold: score,
        });
    }
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confusion_and_rates_by_hand() {
        // y:    1    1    0    0    1    0
        // p:  0.9  0.4  0.6  0.1  0.7  0.2  -> TP 2, FN 1, FP 1, TN 2
        let p = [0.9, 0.4, 0.6, 0.1, 0.7, 0.2];
        let y = [1, 1, 0, 0, 1, 0];
        let c = Confusion::from_probabilities(&p, &y);
        assert_eq!(
            (
                c.true_positives,
                c.false_negatives,
                c.false_positives,
                c.true_negatives
            ),
            (2, 1, 1, 2)
        );
        assert!((c.accuracy() - 4.0 / 6.0).abs() < 1e-12);
        assert!((c.precision() - 2.0 / 3.0).abs() < 1e-12);
        assert!((c.recall() - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(c.swapped().true_positives, 2);
    }

    #[test]
    fn auc_by_hand_with_ties() {
        // Pairs (pos, neg): 3 × 3 = 9. Positives 0.9, 0.4, 0.7; negatives 0.6, 0.1, 0.2.
        // 0.9 beats all 3, 0.7 beats 3, 0.4 beats 2 -> 8/9.
        let p = [0.9, 0.4, 0.6, 0.1, 0.7, 0.2];
        let y = [1, 1, 0, 0, 1, 0];
        assert!((roc_auc(&p, &y) - 8.0 / 9.0).abs() < 1e-12);
        // A tie between a positive and a negative counts half.
        assert!((roc_auc(&[0.5, 0.5], &[1, 0]) - 0.5).abs() < 1e-12);
        assert!((roc_auc(&[0.2, 0.8, 0.8], &[0, 1, 0]) - 0.75).abs() < 1e-12);
        assert_eq!(roc_auc(&[0.1, 0.2], &[1, 1]), 0.5);
    }

    #[test]
    fn roc_curve_area_equals_auc() {
        let p = [0.9, 0.4, 0.6, 0.1, 0.7, 0.2, 0.6];
        let y = [1, 1, 0, 0, 1, 0, 1];
        let curve = roc_curve(&p, &y);
        assert_eq!((curve[0].fpr, curve[0].tpr), (0.0, 0.0));
        let last = curve.last().unwrap();
        assert_eq!((last.fpr, last.tpr), (1.0, 1.0));
        let area: f64 = curve
            .windows(2)
            .map(|w| (w[1].fpr - w[0].fpr) * (w[1].tpr + w[0].tpr) / 2.0)
            .sum();
        assert!((area - roc_auc(&p, &y)).abs() < 1e-12);
    }

    #[test]
    fn stable_bce() {
        assert!((bce_with_logit(0.0, 1) - std::f64::consts::LN_2).abs() < 1e-12);
        assert!(bce_with_logit(100.0, 1) < 1e-40);
        assert!((bce_with_logit(100.0, 0) - 100.0).abs() < 1e-9);
        assert!(bce_with_logit(-1000.0, 1).is_finite());
    }
}
