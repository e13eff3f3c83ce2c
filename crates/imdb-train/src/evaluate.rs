//! Evaluating a model on a set: loss, metrics and every prediction.

use burn::tensor::Device;
use imdb_data::EncodedSet;
use imdb_model::SentimentClassifier;

use crate::batcher::{make_batch, plan_eval_batches};
use crate::metrics::{BinaryMetrics, bce_with_logit, sigmoid};
use crate::step::host;

/// The result of evaluating a model on a set.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Loss and the notebook's metrics.
    pub metrics: BinaryMetrics,
    /// Probability of the positive class for each row of the set, in set order.
    pub probabilities: Vec<f32>,
    /// The true class of each row.
    pub labels: Vec<u8>,
}

/// Evaluates `model` (dropout off) on `set` in batches of `batch_size`. With `bucketing` (and
/// a model that masks padding) rows are batched by length and each batch is cut to its
/// longest review; the results are the same, faster.
pub fn evaluate(
    model: &SentimentClassifier,
    set: &EncodedSet,
    batch_size: usize,
    bucketing: bool,
    device: &Device,
) -> Evaluation {
    let trim = bucketing && model.config.mask_padding;
    let predictor = model.predictor();
    let mut logits = vec![0.0f32; set.len()];
    for rows in plan_eval_batches(&set.sequences.lengths, batch_size.max(1), trim) {
        let (input, _) = make_batch(set, &rows, trim, device);
        let out = host(predictor.logits(input));
        for (&row, &logit) in rows.iter().zip(&out) {
            logits[row] = logit;
        }
    }
    let loss = if set.is_empty() {
        0.0
    } else {
        logits
            .iter()
            .zip(&set.labels)
            .map(|(&x, &y)| bce_with_logit(x, y))
            .sum::<f64>()
            / set.len() as f64
    };
    let probabilities: Vec<f32> = logits.iter().map(|&x| sigmoid(x)).collect();
    Evaluation {
        metrics: BinaryMetrics::compute(&probabilities, &set.labels, loss),
        probabilities,
        labels: set.labels.clone(),
    }
}
