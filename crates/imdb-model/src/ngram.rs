//! A linear sibling of the recurrent classifiers: Naive-Bayes-weighted n-gram logistic
//! regression, the NBSVM recipe of Wang & Manning (2012) with a logistic loss.
//!
//! Each text is the set of its word n-grams (presence, not counts); each n-gram is scaled by
//! its Naive-Bayes log-count ratio `r = ln((p / |p|₁) / (q / |q|₁))` (`p`, `q`: how many
//! positive and negative training texts hold it, plus one), and an L2-regularised logistic
//! regression is fitted on the scaled features by L-BFGS. Two classes only. Deterministic:
//! the same texts give the same weights on every run and machine.
//!
//! ```
//! use imdb_model::ngram::{NgramClassifier, NgramConfig};
//!
//! let texts: Vec<Vec<u32>> = vec![vec![1, 2, 3], vec![1, 4, 5], vec![6, 2, 3], vec![6, 4, 5]];
//! let labels = [1, 0, 1, 0];
//! let refs: Vec<&[u32]> = texts.iter().map(Vec::as_slice).collect();
//! let model = NgramClassifier::fit(&refs, &labels, &NgramConfig::default()).unwrap();
//! assert!(model.logit(&[2, 3]) > 0.0 && model.logit(&[4, 5]) < 0.0);
//! ```

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::ModelError;

/// Marks the unused places of an n-gram shorter than three words.
const NONE: u32 = u32::MAX;

/// The settings of an [`NgramClassifier`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NgramConfig {
    /// The longest n-gram: 1 (words), 2 (and word pairs) or 3 (and triples).
    pub max_n: usize,
    /// Inverse strength of the L2 penalty on the weights (as scikit-learn's `C`): larger
    /// fits the training texts more closely.
    pub c: f64,
    /// The most L-BFGS iterations.
    pub max_iterations: usize,
}

impl Default for NgramConfig {
    fn default() -> Self {
        Self {
            max_n: 3,
            c: 1.0,
            max_iterations: 100,
        }
    }
}

impl NgramConfig {
    /// Checks the settings, naming the key at fault.
    pub fn validate(&self) -> Result<(), ModelError> {
        let invalid = |key, problem: &str| {
            Err(ModelError::InvalidConfig {
                key,
                problem: problem.to_string(),
            })
        };
        if !(1..=3).contains(&self.max_n) {
            return invalid("max_n", "must be 1, 2 or 3 (words, pairs, triples)");
        }
        if !(self.c.is_finite() && self.c > 0.0) {
            return invalid("c", "must be a positive number, e.g. 1.0");
        }
        if self.max_iterations == 0 {
            return invalid("max_iterations", "must be at least 1");
        }
        Ok(())
    }
}

/// A fitted Naive-Bayes-weighted n-gram logistic regression (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct NgramClassifier {
    max_n: usize,
    /// Each training n-gram's column.
    columns: HashMap<[u32; 3], u32>,
    /// Per column: its Naive-Bayes ratio times its fitted weight.
    weights: Vec<f64>,
    bias: f64,
}

impl NgramClassifier {
    /// Fits the model on `texts` (word ids in reading order) with their `labels` (0 or 1).
    ///
    /// Fails, saying why, on bad settings, on texts and labels of different lengths, on a
    /// label other than 0 or 1, and when a class has no text.
    pub fn fit(texts: &[&[u32]], labels: &[u32], config: &NgramConfig) -> Result<Self, ModelError> {
        config.validate()?;
        check_labels(texts.len(), labels)?;
        let mut columns = HashMap::new();
        let rows: Vec<Vec<u32>> = texts
            .iter()
            .map(|text| {
                let mut row: Vec<u32> = ngrams(text, config.max_n)
                    .map(|gram| {
                        let next = columns.len() as u32;
                        *columns.entry(gram).or_insert(next)
                    })
                    .collect();
                row.sort_unstable();
                row.dedup();
                row
            })
            .collect();
        let ratios = log_count_ratios(&rows, labels, columns.len());
        let problem = Problem::new(&rows, &ratios, labels, 1.0 / config.c);
        let solution = lbfgs(&problem, columns.len() + 1, config.max_iterations);
        let bias = solution[columns.len()];
        let weights = ratios.iter().zip(&solution).map(|(r, w)| r * w).collect();
        Ok(Self {
            max_n: config.max_n,
            columns,
            weights,
            bias,
        })
    }

    /// The log-odds of class 1 for one text (n-grams never seen in training count zero).
    pub fn logit(&self, text: &[u32]) -> f64 {
        let mut present: Vec<u32> = ngrams(text, self.max_n)
            .filter_map(|gram| self.columns.get(&gram).copied())
            .collect();
        present.sort_unstable();
        present.dedup();
        self.bias
            + present
                .iter()
                .map(|&j| self.weights[j as usize])
                .sum::<f64>()
    }

    /// How many distinct n-grams the training texts held (the number of weights).
    pub fn num_features(&self) -> usize {
        self.weights.len()
    }
}

fn check_labels(texts: usize, labels: &[u32]) -> Result<(), ModelError> {
    let invalid = |problem: String| {
        Err(ModelError::InvalidConfig {
            key: "labels",
            problem,
        })
    };
    if labels.len() != texts {
        return invalid(format!("{} labels for {texts} texts", labels.len()));
    }
    if let Some(bad) = labels.iter().find(|&&l| l > 1) {
        return invalid(format!(
            "class {bad} given: the n-gram model separates two classes (0 and 1)"
        ));
    }
    for class in 0..2 {
        if !labels.contains(&class) {
            return invalid(format!("no text of class {class}: both classes are needed"));
        }
    }
    Ok(())
}

/// The n-grams of `text`, up to `max_n` words, each padded with [`NONE`].
fn ngrams(text: &[u32], max_n: usize) -> impl Iterator<Item = [u32; 3]> + '_ {
    (1..=max_n).flat_map(move |n| {
        text.windows(n).map(move |w| {
            let mut gram = [NONE; 3];
            gram[..n].copy_from_slice(w);
            gram
        })
    })
}

/// Each column's `ln((p / |p|₁) / (q / |q|₁))`, with one added to every count.
fn log_count_ratios(rows: &[Vec<u32>], labels: &[u32], columns: usize) -> Vec<f64> {
    let mut counts = [vec![1.0f64; columns], vec![1.0f64; columns]];
    for (row, &label) in rows.iter().zip(labels) {
        for &j in row {
            counts[label as usize][j as usize] += 1.0;
        }
    }
    let [negative, positive] = counts;
    let (neg_total, pos_total) = (negative.iter().sum::<f64>(), positive.iter().sum::<f64>());
    positive
        .iter()
        .zip(&negative)
        .map(|(p, q)| ((p / pos_total) / (q / neg_total)).ln())
        .collect()
}

/// The regularised logistic loss over the scaled binary features; the last variable is the
/// (unpenalised) bias.
struct Problem<'a> {
    rows: &'a [Vec<u32>],
    ratios: &'a [f64],
    targets: Vec<f64>,
    penalty: f64,
}

impl<'a> Problem<'a> {
    /// The problem of `rows` (columns present in each text) with their `labels` (0 or 1).
    fn new(rows: &'a [Vec<u32>], ratios: &'a [f64], labels: &[u32], penalty: f64) -> Self {
        let targets = labels
            .iter()
            .map(|&l| if l == 1 { 1.0 } else { -1.0 })
            .collect();
        Self {
            rows,
            ratios,
            targets,
            penalty,
        }
    }

    /// The loss at `x` and its gradient (written to `gradient`).
    fn evaluate(&self, x: &[f64], gradient: &mut [f64]) -> f64 {
        let bias_index = self.ratios.len();
        let mut loss = 0.0;
        for (j, g) in gradient.iter_mut().enumerate().take(bias_index) {
            *g = self.penalty * x[j];
            loss += 0.5 * self.penalty * x[j] * x[j];
        }
        gradient[bias_index] = 0.0;
        for (row, &y) in self.rows.iter().zip(&self.targets) {
            let score = x[bias_index]
                + row
                    .iter()
                    .map(|&j| self.ratios[j as usize] * x[j as usize])
                    .sum::<f64>();
            let margin = y * score;
            // ln(1 + e^-m), stable on both sides.
            loss += if margin > 0.0 {
                (-margin).exp().ln_1p()
            } else {
                -margin + margin.exp().ln_1p()
            };
            // d/dscore = -y σ(-m)
            let slope = -y / (1.0 + margin.exp());
            for &j in row {
                gradient[j as usize] += slope * self.ratios[j as usize];
            }
            gradient[bias_index] += slope;
        }
        loss
    }
}

/// Minimises `problem` from zero by L-BFGS (ten pairs of history, backtracking line search
/// on the Armijo condition); stops after `max_iterations` or when the loss stops falling.
fn lbfgs(problem: &Problem<'_>, dims: usize, max_iterations: usize) -> Vec<f64> {
    const HISTORY: usize = 10;
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let mut x = vec![0.0; dims];
    let mut gradient = vec![0.0; dims];
    let mut loss = problem.evaluate(&x, &mut gradient);
    let mut pairs: std::collections::VecDeque<(Vec<f64>, Vec<f64>, f64)> =
        std::collections::VecDeque::new();
    let mut candidate = vec![0.0; dims];
    let mut candidate_gradient = vec![0.0; dims];
    for iteration in 0..max_iterations {
        // Two-loop recursion: direction = -H·g.
        let mut direction: Vec<f64> = gradient.iter().map(|g| -g).collect();
        let mut alphas = Vec::with_capacity(pairs.len());
        for (s, y, rho) in pairs.iter().rev() {
            let alpha = rho * dot(s, &direction);
            direction
                .iter_mut()
                .zip(y)
                .for_each(|(d, y)| *d -= alpha * y);
            alphas.push(alpha);
        }
        let scale = match pairs.back() {
            Some((s, y, _)) => dot(s, y) / dot(y, y),
            None => 1.0 / dot(&gradient, &gradient).sqrt().max(1e-12),
        };
        direction.iter_mut().for_each(|d| *d *= scale);
        for ((s, y, rho), alpha) in pairs.iter().zip(alphas.iter().rev()) {
            let beta = rho * dot(y, &direction);
            direction
                .iter_mut()
                .zip(s)
                .for_each(|(d, s)| *d += (alpha - beta) * s);
        }
        let slope = dot(&gradient, &direction);
        if slope >= 0.0 {
            break;
        }
        let mut step = 1.0;
        let mut accepted = None;
        for _ in 0..30 {
            candidate
                .iter_mut()
                .zip(x.iter().zip(&direction))
                .for_each(|(c, (x, d))| *c = x + step * d);
            let candidate_loss = problem.evaluate(&candidate, &mut candidate_gradient);
            if candidate_loss <= loss + 1e-4 * step * slope {
                accepted = Some(candidate_loss);
                break;
            }
            step *= 0.5;
        }
        let Some(new_loss) = accepted else { break };
        let s: Vec<f64> = candidate.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = candidate_gradient
            .iter()
            .zip(&gradient)
            .map(|(a, b)| a - b)
            .collect();
        let sy = dot(&s, &y);
        if sy > 1e-12 {
            if pairs.len() == HISTORY {
                pairs.pop_front();
            }
            pairs.push_back((s, y, 1.0 / sy));
        }
        std::mem::swap(&mut x, &mut candidate);
        std::mem::swap(&mut gradient, &mut candidate_gradient);
        let improvement = loss - new_loss;
        loss = new_loss;
        if iteration > 0 && improvement <= 1e-9 * loss.abs().max(1.0) {
            break;
        }
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fit(texts: &[Vec<u32>], labels: &[u32], config: &NgramConfig) -> NgramClassifier {
        let refs: Vec<&[u32]> = texts.iter().map(Vec::as_slice).collect();
        NgramClassifier::fit(&refs, labels, config).unwrap()
    }

    #[test]
    fn word_pairs_separate_what_single_words_cannot() {
        // Every text holds words 1 and 2 once; only their order tells the class.
        let texts: Vec<Vec<u32>> = (0..40)
            .map(|i| {
                let filler = 10 + i % 7;
                if i % 2 == 0 {
                    vec![filler, 1, 2, filler + 1]
                } else {
                    vec![filler, 2, 1, filler + 1]
                }
            })
            .collect();
        let labels: Vec<u32> = (0..40).map(|i| (i % 2 == 0) as u32).collect();
        let accuracy = |model: &NgramClassifier| {
            texts
                .iter()
                .zip(&labels)
                .filter(|(t, l)| (model.logit(t) > 0.0) == (**l == 1))
                .count()
        };
        let up_to = |max_n| {
            let config = NgramConfig {
                max_n,
                ..Default::default()
            };
            fit(&texts, &labels, &config)
        };
        let (words, pairs) = (up_to(1), up_to(2));
        assert_eq!(accuracy(&pairs), 40);
        assert!(accuracy(&words) <= 28, "words alone: {}", accuracy(&words));
        assert!(pairs.num_features() > words.num_features());
    }

    #[test]
    fn fitting_minimises_the_regularised_loss() {
        // At the optimum the gradient vanishes: check it against the problem directly.
        let texts: Vec<Vec<u32>> = (0..30u32).map(|i| vec![i % 5, 5 + i % 3, 9]).collect();
        let labels: Vec<u32> = (0..30u32).map(|i| ((i % 5) + (i % 3) > 3) as u32).collect();
        let rows: Vec<Vec<u32>> = texts
            .iter()
            .map(|t| {
                let mut r = t.clone();
                r.sort_unstable();
                r
            })
            .collect();
        let ratios = log_count_ratios(&rows, &labels, 10);
        let problem = Problem::new(&rows, &ratios, &labels, 1.0);
        let x = lbfgs(&problem, 11, 200);
        let mut gradient = vec![0.0; 11];
        let at_optimum = problem.evaluate(&x, &mut gradient);
        let at_zero = problem.evaluate(&[0.0; 11], &mut [0.0; 11]);
        assert!(at_optimum < at_zero * 0.9, "{at_optimum} vs {at_zero}");
        let norm = gradient.iter().map(|g| g * g).sum::<f64>().sqrt();
        assert!(norm < 1e-3, "gradient norm {norm}");
    }

    #[test]
    fn a_text_counts_each_ngram_once_and_unknown_ones_not_at_all() {
        let texts = vec![vec![1, 2], vec![3, 4], vec![1, 5], vec![3, 6]];
        let model = fit(&texts, &[1, 0, 1, 0], &NgramConfig::default());
        assert_eq!(model.logit(&[1, 1, 1]), model.logit(&[1]));
        assert_eq!(model.logit(&[99, 98]), model.logit(&[]));
        assert!(model.logit(&[1]) > model.logit(&[]) && model.logit(&[3]) < model.logit(&[]));
    }

    #[test]
    fn the_same_texts_give_the_same_model() {
        let texts: Vec<Vec<u32>> = (0..50u32).map(|i| vec![i % 11, i % 7, i % 3]).collect();
        let labels: Vec<u32> = (0..50u32).map(|i| (i % 11 > 5) as u32).collect();
        let config = NgramConfig::default();
        assert_eq!(fit(&texts, &labels, &config), fit(&texts, &labels, &config));
    }

    #[test]
    fn bad_settings_and_labels_are_refused_with_their_key() {
        let texts: Vec<&[u32]> = vec![&[1], &[2]];
        let refused = |labels: &[u32], config: NgramConfig| {
            NgramClassifier::fit(&texts, labels, &config)
                .unwrap_err()
                .to_string()
        };
        let ok = NgramConfig::default();
        assert!(refused(&[0, 1], NgramConfig { max_n: 4, ..ok }).contains("`max_n`"));
        assert!(refused(&[0, 1], NgramConfig { c: 0.0, ..ok }).contains("`c`"));
        assert!(refused(&[0, 1], NgramConfig { c: f64::NAN, ..ok }).contains("`c`"));
        assert!(
            refused(
                &[0, 1],
                NgramConfig {
                    max_iterations: 0,
                    ..ok
                }
            )
            .contains("max_iter")
        );
        assert!(refused(&[0, 2], ok).contains("two classes"));
        assert!(refused(&[1, 1], ok).contains("no text of class 0"));
        assert!(refused(&[1], ok).contains("1 labels for 2 texts"));
    }
}
