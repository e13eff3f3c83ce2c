//! Evaluating a model on a labelled set: loss, metrics and every prediction.

use burn::tensor::Device;
use imdb_data::EncodedSet;
use imdb_model::{InferencePrecision, SentimentClassifier};

use crate::batcher::{batch_input, plan_eval_batches};
use crate::error::TrainError;
use crate::metrics::{ClassProbabilities, Metrics, cross_entropy};
use crate::step::try_host;

/// The result of evaluating a model on a set.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Loss and the notebook's metrics.
    pub metrics: Metrics,
    /// Class probabilities of each row of the set, in set order.
    pub probabilities: ClassProbabilities,
    /// The true class of each row.
    pub labels: Vec<u32>,
    /// The model's outputs, row-major: one log-odds per row for two classes, one logit per
    /// class for more.
    pub logits: Vec<f32>,
}

impl Evaluation {
    /// The evaluation given by a model's `logits` (row-major, `outputs` per row) of rows
    /// whose true classes are `labels`: loss, metrics and probabilities.
    pub fn from_logits(logits: Vec<f32>, outputs: usize, labels: Vec<u32>) -> Self {
        let loss = cross_entropy(&logits, outputs, &labels);
        let probabilities = ClassProbabilities::from_logits(&logits, outputs);
        Self {
            metrics: Metrics::compute(&probabilities, &labels, loss),
            probabilities,
            labels,
            logits,
        }
    }
}

/// Evaluates `model` (dropout off) on `set` in batches of `batch_size`, at the fast inference
/// precision. With `bucketing` (and a model that masks padding) rows are batched by length and
/// each batch is cut to its longest text; the results are the same, faster.
pub fn evaluate(
    model: &SentimentClassifier,
    set: &EncodedSet,
    batch_size: usize,
    bucketing: bool,
    device: &Device,
) -> Result<Evaluation, TrainError> {
    evaluate_at(
        model,
        set,
        (batch_size, bucketing),
        InferencePrecision::Fast,
        device,
    )
}

/// [`evaluate`] at the inference precision `precision`. A device that cannot return the
/// model's outputs is an error, never a shorter answer.
pub fn evaluate_at(
    model: &SentimentClassifier,
    set: &EncodedSet,
    (batch_size, bucketing): (usize, bool),
    precision: InferencePrecision,
    device: &Device,
) -> Result<Evaluation, TrainError> {
    let trim = bucketing && model.config.mask_padding;
    let outputs = model.outputs();
    let predictor = model.predictor().with_precision(precision);
    let mut logits = vec![0.0f32; set.len() * outputs];
    for rows in plan_eval_batches(&set.sequences.lengths, batch_size.max(1), trim) {
        let input = batch_input(set, &rows, trim, device);
        let out = try_host(predictor.logits(input))?;
        for (&row, values) in rows.iter().zip(out.chunks_exact(outputs)) {
            logits[row * outputs..(row + 1) * outputs].copy_from_slice(values);
        }
    }
    Ok(Evaluation::from_logits(logits, outputs, set.labels.clone()))
}
