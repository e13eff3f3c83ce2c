//! Stacking a network with a second two-class model: `σ(a·x + b·z + c)` over the network's
//! log-odds `x` and the other model's `z`, with `a`, `b`, `c` fitted on the validation rows
//! (a logistic regression of two inputs, by Newton's method). On two calibrated, partly
//! independent models it learns how far to trust each, as Mesnil et al. (2015) combine an
//! RNN language model with NBSVM on IMDB.

use imdb_model::ngram::NgramClassifier;
use serde::{Deserialize, Serialize};

use crate::error::TrainError;
use crate::evaluate::Evaluation;

/// The fitted weights of a stacked verdict (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stacking {
    /// The weight of the network's log-odds.
    pub network_weight: f64,
    /// The weight of the other model's log-odds.
    pub other_weight: f64,
    /// The constant term.
    pub bias: f64,
}

/// A small L2 penalty on the two weights, so that rows the two models separate perfectly
/// (tiny sets) give finite weights.
const PENALTY: f64 = 1e-3;

impl Stacking {
    /// Fits the weights on the network's evaluation of the validation rows and the other
    /// model's log-odds of the same rows, in the same order.
    ///
    /// Fails, saying why, unless the network has one output (two classes), the two models
    /// give as many rows as there are labels, and every log-odds is finite.
    pub fn fit(network: &Evaluation, other: &[f64]) -> Result<Self, TrainError> {
        let rows = check_rows(network, other, "validation")?;
        let features = |i: usize| [rows[i] as f64, other[i], 1.0];
        let labels = &network.labels;
        let loss = |w: &[f64; 3]| -> f64 {
            let penalty = 0.5 * PENALTY * (w[0] * w[0] + w[1] * w[1]);
            penalty
                + (0..rows.len())
                    .map(|i| {
                        let score: f64 = features(i).iter().zip(w).map(|(f, w)| f * w).sum();
                        let signed = if labels[i] == 1 { score } else { -score };
                        // ln(1 + e^-s), stable on both sides.
                        (-signed).max(0.0) + (-signed.abs()).exp().ln_1p()
                    })
                    .sum::<f64>()
        };
        // Damped Newton from zero: halve the step until the loss falls.
        let mut w = [0.0f64; 3];
        let mut current = loss(&w);
        for _ in 0..100 {
            let mut gradient = [PENALTY * w[0], PENALTY * w[1], 0.0];
            let mut hessian = [[0.0f64; 3]; 3];
            hessian[0][0] = PENALTY;
            hessian[1][1] = PENALTY;
            for (i, &label) in labels.iter().enumerate() {
                let x = features(i);
                let score: f64 = x.iter().zip(&w).map(|(f, w)| f * w).sum();
                let p = 1.0 / (1.0 + (-score).exp());
                let curvature = (p * (1.0 - p)).max(1e-12);
                for a in 0..3 {
                    gradient[a] += (p - label as f64) * x[a];
                    for b in 0..3 {
                        hessian[a][b] += curvature * x[a] * x[b];
                    }
                }
            }
            let step = solve3(hessian, gradient);
            let mut scale = 1.0;
            let mut moved = false;
            for _ in 0..40 {
                let trial = [
                    w[0] - scale * step[0],
                    w[1] - scale * step[1],
                    w[2] - scale * step[2],
                ];
                let trial_loss = loss(&trial);
                if trial_loss < current {
                    (w, current, moved) = (trial, trial_loss, true);
                    break;
                }
                scale *= 0.5;
            }
            let size = step.iter().map(|s| (scale * s).abs()).fold(0.0, f64::max);
            if !moved || size < 1e-9 {
                break;
            }
        }
        if w.iter().any(|w| !w.is_finite()) {
            return Err(TrainError::BadSet {
                split: "validation",
                problem: "stacking the two models gave no finite weights".to_string(),
            });
        }
        Ok(Self {
            network_weight: w[0],
            other_weight: w[1],
            bias: w[2],
        })
    }

    /// The stacked log-odds of one row.
    pub fn logit(&self, network: f32, other: f64) -> f32 {
        (self.network_weight * network as f64 + self.other_weight * other + self.bias) as f32
    }

    /// The stacked evaluation of a set: the network's evaluation of it and the other model's
    /// log-odds of the same rows, combined; loss and metrics recomputed.
    pub fn evaluate(
        &self,
        network: &Evaluation,
        other: &[f64],
        split: &'static str,
    ) -> Result<Evaluation, TrainError> {
        let rows = check_rows(network, other, split)?;
        let logits: Vec<f32> = rows
            .iter()
            .zip(other)
            .map(|(&x, &z)| self.logit(x, z))
            .collect();
        Ok(Evaluation::from_logits(logits, 1, network.labels.clone()))
    }
}

/// A two-class network stacked with an n-gram model: the n-gram model that scores texts and
/// the weights that combine the two models' log-odds. What a saved stacked model keeps beside
/// the network.
#[derive(Debug, Clone, PartialEq)]
pub struct NgramStack {
    /// The n-gram model, reading every id of a text (not only the network's `maxlen`).
    pub ngram: NgramClassifier,
    /// The weights of the network's and the n-gram model's log-odds.
    pub stacking: Stacking,
}

impl NgramStack {
    /// The stacked log-odds of a text whose network log-odds is `network` and whose ids, all
    /// of them, untruncated, are `ids`.
    pub fn logit(&self, network: f32, ids: &[u32]) -> f32 {
        self.stacking.logit(network, self.ngram.logit(ids))
    }

    /// The stacked evaluation of a set: the network's evaluation of it and every row's
    /// untruncated ids, in the same order.
    pub fn evaluate(
        &self,
        network: &Evaluation,
        ids: &[Vec<u32>],
        split: &'static str,
    ) -> Result<Evaluation, TrainError> {
        let other: Vec<f64> = ids.iter().map(|t| self.ngram.logit(t)).collect();
        self.stacking.evaluate(network, &other, split)
    }
}

/// The network's log-odds, once the two models are checked to describe the same rows.
fn check_rows<'a>(
    network: &'a Evaluation,
    other: &[f64],
    split: &'static str,
) -> Result<&'a [f32], TrainError> {
    let bad = |problem: String| Err(TrainError::BadSet { split, problem });
    if network.probabilities.num_classes != 2 || network.logits.len() != network.labels.len() {
        return bad(format!(
            "stacking needs a two-class network (one output per row); this one has {} classes",
            network.probabilities.num_classes
        ));
    }
    if other.len() != network.labels.len() {
        return bad(format!(
            "the network scored {} rows, the other model {}",
            network.labels.len(),
            other.len()
        ));
    }
    if let Some(row) = other.iter().position(|z| !z.is_finite()) {
        return bad(format!(
            "the other model's log-odds of row {row} is not finite"
        ));
    }
    Ok(&network.logits)
}

/// Solves the symmetric positive-definite 3×3 system `a·x = b` (Gaussian elimination).
fn solve3(mut a: [[f64; 3]; 3], mut b: [f64; 3]) -> [f64; 3] {
    for col in 0..3 {
        let pivot = (col..3)
            .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
            .unwrap_or(col);
        a.swap(col, pivot);
        b.swap(col, pivot);
        let pivot_row = a[col];
        for row in col + 1..3 {
            let factor = a[row][col] / pivot_row[col];
            a[row][col..]
                .iter_mut()
                .zip(&pivot_row[col..])
                .for_each(|(x, p)| *x -= factor * p);
            b[row] -= factor * b[col];
        }
    }
    let mut x = [0.0; 3];
    for row in (0..3).rev() {
        let tail: f64 = (row + 1..3).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - tail) / a[row][row];
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evaluation(logits: Vec<f32>, labels: Vec<u32>) -> Evaluation {
        Evaluation::from_logits(logits, 1, labels)
    }

    /// Rows whose label two noisy views predict, each right on a different part of them.
    fn views(rows: usize, seed: u64) -> (Evaluation, Vec<f64>) {
        // SplitMix64: uniform draws in [0, 1).
        let mut state = seed;
        let mut unit = move || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        };
        let (mut logits, mut other, mut labels) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rows {
            let label = (unit() < 0.5) as u32;
            let sign = if label == 1 { 1.0 } else { -1.0 };
            // Each view: ±0.5 plus noise of spread 0.5 (a sum of three uniforms), so that
            // each alone is right on about 84 % of rows, both together on about 92 %.
            let mut view = || sign * 0.5 + (unit() + unit() + unit() - 1.5);
            logits.push((view() * 12.0) as f32);
            other.push(view() * 0.5 - 0.2);
            labels.push(label);
        }
        (evaluation(logits, labels), other)
    }

    #[test]
    fn stacking_beats_each_view_and_recalibrates_them() {
        let (val, val_other) = views(2000, 1);
        let (test, test_other) = views(2000, 2);
        let stacking = Stacking::fit(&val, &val_other).unwrap();
        // The true log-odds are 4·view: the network's (12·view) are too sharp, the other's
        // (0.5·view) too flat; the fitted weights undo both.
        assert!(
            (stacking.network_weight - 1.0 / 3.0).abs() < 0.1,
            "{stacking:?}"
        );
        assert!((stacking.other_weight - 8.0).abs() < 2.0, "{stacking:?}");
        let stacked = stacking.evaluate(&test, &test_other, "test").unwrap();
        let other_alone = evaluation(
            test_other.iter().map(|&z| z as f32).collect(),
            test.labels.clone(),
        );
        assert!(stacked.metrics.accuracy > test.metrics.accuracy + 0.02);
        assert!(stacked.metrics.accuracy > other_alone.metrics.accuracy + 0.02);
        assert!(stacked.metrics.loss < test.metrics.loss);
    }

    #[test]
    fn mismatched_or_multiclass_inputs_are_refused() {
        let (val, other) = views(10, 3);
        let short = Stacking::fit(&val, &other[..9]).unwrap_err().to_string();
        assert!(short.contains("10 rows, the other model 9"), "{short}");
        let mut nan = other.clone();
        nan[4] = f64::NAN;
        assert!(
            Stacking::fit(&val, &nan)
                .unwrap_err()
                .to_string()
                .contains("row 4")
        );
        let three = Evaluation {
            probabilities: crate::ClassProbabilities::from_logits(&[0.0; 30], 3),
            logits: vec![0.0; 30],
            ..val.clone()
        };
        let refused = Stacking::fit(&three, &other).unwrap_err().to_string();
        assert!(refused.contains("two-class"), "{refused}");
    }

    #[test]
    fn solve3_solves() {
        let a = [[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]];
        let x = solve3(a, [1.0, 2.0, 3.0]);
        for (row, b) in a.iter().zip([1.0, 2.0, 3.0]) {
            let got: f64 = row.iter().zip(&x).map(|(a, x)| a * x).sum();
            assert!((got - b).abs() < 1e-12);
        }
    }
}
