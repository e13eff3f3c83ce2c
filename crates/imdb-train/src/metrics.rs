//! Classification metrics for two or more classes: the notebook's accuracy, precision, recall
//! and ROC AUC, plus F1, the confusion matrix and ROC curves. Plain Rust on probabilities and
//! class ids.

use serde::{Deserialize, Serialize};

/// Decision threshold on the probability of class 1, for two classes.
pub const THRESHOLD: f32 = 0.5;

/// Class probabilities of a set, row-major `[rows, num_classes]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ClassProbabilities {
    /// Number of classes (columns).
    pub num_classes: usize,
    /// `rows × num_classes` probabilities, each row summing to one.
    pub values: Vec<f32>,
}

impl ClassProbabilities {
    /// Probabilities from a model's logits, row-major `[rows, outputs]`: one output is a
    /// logit (`[1 - σ(x), σ(x)]`), more outputs are a softmax.
    pub fn from_logits(logits: &[f32], outputs: usize) -> Self {
        let outputs = outputs.max(1);
        if outputs == 1 {
            let mut values = Vec::with_capacity(logits.len() * 2);
            for &x in logits {
                let p = sigmoid(x);
                values.extend([1.0 - p, p]);
            }
            return Self {
                num_classes: 2,
                values,
            };
        }
        let mut values = Vec::with_capacity(logits.len());
        for row in logits.chunks(outputs) {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let exp: Vec<f64> = row.iter().map(|&x| ((x - max) as f64).exp()).collect();
            let sum: f64 = exp.iter().sum();
            values.extend(exp.iter().map(|&e| (e / sum) as f32));
        }
        Self {
            num_classes: outputs,
            values,
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.values.len() / self.num_classes.max(1)
    }

    /// True if there is no row.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The probabilities of row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.num_classes..(i + 1) * self.num_classes]
    }

    /// The probability of class `class` in every row.
    pub fn column(&self, class: usize) -> Vec<f32> {
        (0..self.len()).map(|i| self.row(i)[class]).collect()
    }

    /// The predicted class of row `i`: for two classes class 1 when its probability is at
    /// least [`THRESHOLD`], else the most probable class (the first of equals).
    pub fn predicted(&self, i: usize) -> u32 {
        predicted_class(self.row(i))
    }

    /// The predicted class of every row.
    pub fn predictions(&self) -> Vec<u32> {
        (0..self.len()).map(|i| self.predicted(i)).collect()
    }

    /// The probability of each row's predicted class: how confident the verdict is.
    pub fn confidence(&self, i: usize) -> f32 {
        self.row(i)[self.predicted(i) as usize]
    }
}

/// The number of classes of a model with `outputs` outputs: one output is two classes.
pub fn num_classes_for(outputs: usize) -> usize {
    if outputs <= 1 { 2 } else { outputs }
}

/// The predicted class of one row of class probabilities: for two classes class 1 when its
/// probability is at least [`THRESHOLD`], else the most probable class (the first of equals).
pub fn predicted_class(row: &[f32]) -> u32 {
    if row.len() == 2 {
        return u32::from(row[1] >= THRESHOLD);
    }
    let mut best = 0;
    for (k, &p) in row.iter().enumerate() {
        if p > row[best] {
            best = k;
        }
    }
    best as u32
}

/// The `n × n` confusion matrix: `counts[true][predicted]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Confusion {
    /// Row `t`, column `p`: examples of class `t` predicted as class `p`.
    pub counts: Vec<Vec<usize>>,
}

impl Confusion {
    /// Counts predicted classes against true ones, over `num_classes` classes.
    pub fn new(num_classes: usize, labels: &[u32], predicted: &[u32]) -> Self {
        let mut counts = vec![vec![0; num_classes]; num_classes];
        for (&t, &p) in labels.iter().zip(predicted) {
            if let Some(cell) = counts
                .get_mut(t as usize)
                .and_then(|r| r.get_mut(p as usize))
            {
                *cell += 1;
            }
        }
        Self { counts }
    }

    /// Counts the predictions of `probabilities` against `labels`.
    pub fn from_probabilities(probabilities: &ClassProbabilities, labels: &[u32]) -> Self {
        Self::new(
            probabilities.num_classes,
            labels,
            &probabilities.predictions(),
        )
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.counts.len()
    }

    /// All counted examples.
    pub fn total(&self) -> usize {
        self.counts.iter().flatten().sum()
    }

    /// Share of correct predictions.
    pub fn accuracy(&self) -> f64 {
        let correct = (0..self.num_classes()).map(|k| self.counts[k][k]).sum();
        ratio(correct, self.total())
    }

    /// Examples of class `k` (its row's sum).
    pub fn support(&self, k: usize) -> usize {
        self.counts[k].iter().sum()
    }

    /// Of the examples predicted as class `k`, the share that are (0 if none predicted).
    pub fn precision(&self, k: usize) -> f64 {
        let predicted = self.counts.iter().map(|row| row[k]).sum();
        ratio(self.counts[k][k], predicted)
    }

    /// Of the examples of class `k`, the share predicted as `k` (0 if there are none).
    pub fn recall(&self, k: usize) -> f64 {
        ratio(self.counts[k][k], self.support(k))
    }

    /// The harmonic mean of class `k`'s precision and recall (0 if both are 0).
    pub fn f1(&self, k: usize) -> f64 {
        let (p, r) = (self.precision(k), self.recall(k));
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }

    /// The unweighted mean of a per-class measure over the classes.
    pub fn macro_average(&self, measure: impl Fn(&Self, usize) -> f64) -> f64 {
        let n = self.num_classes();
        if n == 0 {
            return 0.0;
        }
        (0..n).map(|k| measure(self, k)).sum::<f64>() / n as f64
    }

    /// The mean of a per-class measure weighted by each class's support.
    pub fn weighted_average(&self, measure: impl Fn(&Self, usize) -> f64) -> f64 {
        let total = self.total();
        if total == 0 {
            return 0.0;
        }
        (0..self.num_classes())
            .map(|k| measure(self, k) * self.support(k) as f64)
            .sum::<f64>()
            / total as f64
    }
}

fn ratio(num: usize, den: usize) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

/// The notebook's metrics for one split, for any number of classes.
///
/// For two classes, precision, recall and F1 are those of class 1 (the notebook's Keras
/// `Precision()` and `Recall()` of positive reviews) and the AUC is the ROC AUC of its
/// probability. For more classes they are macro averages over the classes, and the AUC is the
/// one-vs-rest ROC AUC of each class's probability, macro-averaged (scikit-learn's
/// `roc_auc_score(multi_class="ovr", average="macro")`).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Metrics {
    /// Mean cross-entropy.
    pub loss: f64,
    /// Share of correct predictions.
    pub accuracy: f64,
    /// Precision (of class 1 for two classes, else macro).
    pub precision: f64,
    /// Recall (of class 1 for two classes, else macro).
    pub recall: f64,
    /// F1 score (of class 1 for two classes, else macro).
    #[serde(default)]
    pub f1: f64,
    /// Area under the ROC curve (exact, ties counted half; one-vs-rest macro for n > 2).
    pub auc: f64,
}

impl Metrics {
    /// Metrics from probabilities, true class ids and the mean loss already computed.
    pub fn compute(probabilities: &ClassProbabilities, labels: &[u32], loss: f64) -> Self {
        let c = Confusion::from_probabilities(probabilities, labels);
        if probabilities.num_classes == 2 {
            return Self {
                loss,
                accuracy: c.accuracy(),
                precision: c.precision(1),
                recall: c.recall(1),
                f1: c.f1(1),
                auc: roc_auc(&probabilities.column(1), &is_class(labels, 1)),
            };
        }
        Self {
            loss,
            accuracy: c.accuracy(),
            precision: c.macro_average(Confusion::precision),
            recall: c.macro_average(Confusion::recall),
            f1: c.macro_average(Confusion::f1),
            auc: macro_auc(probabilities, labels),
        }
    }

    /// True if every value is a finite number.
    pub fn is_finite(&self) -> bool {
        [
            self.loss,
            self.accuracy,
            self.precision,
            self.recall,
            self.f1,
            self.auc,
        ]
        .iter()
        .all(|v| v.is_finite())
    }
}

/// `labels[i] == class` for every row.
pub fn is_class(labels: &[u32], class: u32) -> Vec<bool> {
    labels.iter().map(|&y| y == class).collect()
}

/// One-vs-rest ROC AUC averaged over the classes present with both outcomes (0.5 if none).
pub fn macro_auc(probabilities: &ClassProbabilities, labels: &[u32]) -> f64 {
    let aucs: Vec<f64> = (0..probabilities.num_classes)
        .filter_map(|k| {
            let positives = is_class(labels, k as u32);
            let count = positives.iter().filter(|&&p| p).count();
            (count > 0 && count < labels.len())
                .then(|| roc_auc(&probabilities.column(k), &positives))
        })
        .collect();
    if aucs.is_empty() {
        0.5
    } else {
        aucs.iter().sum::<f64>() / aucs.len() as f64
    }
}

/// Mean cross-entropy of logits `[rows, outputs]` against class ids: binary cross-entropy for
/// one output, categorical cross-entropy for more.
pub fn cross_entropy(logits: &[f32], outputs: usize, labels: &[u32]) -> f64 {
    if labels.is_empty() {
        return 0.0;
    }
    let total: f64 = if outputs <= 1 {
        logits
            .iter()
            .zip(labels)
            .map(|(&x, &y)| bce_with_logit(x, y))
            .sum()
    } else {
        logits
            .chunks(outputs)
            .zip(labels)
            .map(|(row, &y)| {
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
                let log_sum = row
                    .iter()
                    .map(|&x| (x as f64 - max).exp())
                    .sum::<f64>()
                    .ln();
                log_sum + max - row[y as usize] as f64
            })
            .sum()
    };
    total / labels.len() as f64
}

/// Binary cross-entropy of one logit against a label, computed stably.
pub fn bce_with_logit(logit: f32, label: u32) -> f64 {
    let x = logit as f64;
    let y = if label != 0 { 1.0 } else { 0.0 };
    x.max(0.0) - x * y + (-x.abs()).exp().ln_1p()
}

/// The logistic function in `f32`.
pub fn sigmoid(logit: f32) -> f32 {
    1.0 / (1.0 + (-logit).exp())
}

/// Area under the ROC curve: the probability that a random positive scores above a random
/// negative (Mann–Whitney U with average ranks for ties); `positive[i]` says whether row `i`
/// is a positive. 0.5 if either side is missing.
pub fn roc_auc(scores: &[f32], positive: &[bool]) -> f64 {
    let labels = positive;
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let positives = labels.iter().filter(|&&y| y).count();
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
        rank_sum += average * order[i..=j].iter().filter(|&&k| labels[k]).count() as f64;
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
/// `roc_curve(drop_intermediate=False)` (its first threshold is +∞); `positive[i]` says
/// whether row `i` is a positive.
pub fn roc_curve(scores: &[f32], positive: &[bool]) -> Vec<RocPoint> {
    let labels = positive;
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let positives = labels.iter().filter(|&&y| y).count().max(1) as f64;
    let negatives = (labels.len() - labels.iter().filter(|&&y| y).count()).max(1) as f64;
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
            if labels[order[i]] {
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

    fn binary(p: &[f32]) -> ClassProbabilities {
        ClassProbabilities {
            num_classes: 2,
            values: p.iter().flat_map(|&p| [1.0 - p, p]).collect(),
        }
    }

    #[test]
    fn confusion_and_rates_by_hand() {
        // y:    1    1    0    0    1    0
        // p:  0.9  0.4  0.6  0.1  0.7  0.2  -> TP 2, FN 1, FP 1, TN 2
        let p = binary(&[0.9, 0.4, 0.6, 0.1, 0.7, 0.2]);
        let y = [1, 1, 0, 0, 1, 0];
        let c = Confusion::from_probabilities(&p, &y);
        assert_eq!(c.counts, [[2, 1], [1, 2]]);
        assert!((c.accuracy() - 4.0 / 6.0).abs() < 1e-12);
        assert!((c.precision(1) - 2.0 / 3.0).abs() < 1e-12);
        assert!((c.recall(1) - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(c.support(0), 3);
        let m = Metrics::compute(&p, &y, 0.5);
        assert!((m.f1 - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.auc - 8.0 / 9.0).abs() < 1e-12);
        // The threshold: exactly 0.5 is class 1.
        assert_eq!(binary(&[0.5]).predicted(0), 1);
    }

    #[test]
    fn three_classes_by_hand() {
        // Rows: true 0, 0, 1, 2, 2; predicted (argmax) 0, 1, 1, 2, 0.
        let p = ClassProbabilities {
            num_classes: 3,
            values: vec![
                0.7, 0.2, 0.1, //
                0.3, 0.6, 0.1, //
                0.1, 0.8, 0.1, //
                0.2, 0.2, 0.6, //
                0.5, 0.1, 0.4,
            ],
        };
        let y = [0, 0, 1, 2, 2];
        assert_eq!(p.predictions(), [0, 1, 1, 2, 0]);
        let c = Confusion::from_probabilities(&p, &y);
        assert_eq!(c.counts, [[1, 1, 0], [0, 1, 0], [1, 0, 1]]);
        // precision: 1/2, 1/2, 1/1; recall: 1/2, 1/1, 1/2.
        let m = Metrics::compute(&p, &y, 0.0);
        assert!((m.accuracy - 0.6).abs() < 1e-12);
        assert!((m.precision - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.recall - 2.0 / 3.0).abs() < 1e-12);
        // f1: 1/2, 2/3, 2/3.
        assert!((m.f1 - (0.5 + 2.0 / 3.0 + 2.0 / 3.0) / 3.0).abs() < 1e-12);
        // One-vs-rest AUCs by hand: class 0 scores 0.7 0.3 | 0.1 0.2 0.5 -> 3 + 2 of 6 pairs;
        // class 1 0.8 | 0.2 0.6 0.2 0.1 -> 1; class 2 0.6 0.4 | 0.1 0.1 0.1 -> 1.
        assert!((m.auc - (5.0 / 6.0 + 1.0 + 1.0) / 3.0).abs() < 1e-12);
        assert_eq!(p.confidence(4), 0.5);
    }

    #[test]
    fn probabilities_from_logits() {
        let b = ClassProbabilities::from_logits(&[0.0, 2.0], 1);
        assert_eq!(b.num_classes, 2);
        assert_eq!(b.row(0), [0.5, 0.5]);
        assert_eq!(b.row(1)[1], sigmoid(2.0));
        let m = ClassProbabilities::from_logits(&[1.0, 1.0, 1.0, 0.0, 0.0, 1000.0], 3);
        assert!((m.row(0)[0] - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(m.predicted(1), 2);
        assert!(m.row(1)[2] > 0.999);
    }

    #[test]
    fn cross_entropy_matches_its_definitions() {
        assert!((cross_entropy(&[0.0, 0.0], 1, &[1, 0]) - std::f64::consts::LN_2).abs() < 1e-12);
        // Uniform logits over 4 classes: ln 4 whatever the label.
        let ce = cross_entropy(&[3.0; 8], 4, &[0, 3]);
        assert!((ce - 4f64.ln()).abs() < 1e-12);
        assert_eq!(cross_entropy(&[], 3, &[]), 0.0);
    }

    #[test]
    fn auc_by_hand_with_ties() {
        // Pairs (pos, neg): 3 × 3 = 9. Positives 0.9, 0.4, 0.7; negatives 0.6, 0.1, 0.2.
        // 0.9 beats all 3, 0.7 beats 3, 0.4 beats 2 -> 8/9.
        let p = [0.9, 0.4, 0.6, 0.1, 0.7, 0.2];
        let y = is_class(&[1, 1, 0, 0, 1, 0], 1);
        assert!((roc_auc(&p, &y) - 8.0 / 9.0).abs() < 1e-12);
        // A tie between a positive and a negative counts half.
        assert!((roc_auc(&[0.5, 0.5], &[true, false]) - 0.5).abs() < 1e-12);
        assert!((roc_auc(&[0.2, 0.8, 0.8], &[false, true, false]) - 0.75).abs() < 1e-12);
        assert_eq!(roc_auc(&[0.1, 0.2], &[true, true]), 0.5);
    }

    #[test]
    fn roc_curve_area_equals_auc() {
        let p = [0.9, 0.4, 0.6, 0.1, 0.7, 0.2, 0.6];
        let y = is_class(&[1, 1, 0, 0, 1, 0, 1], 1);
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
