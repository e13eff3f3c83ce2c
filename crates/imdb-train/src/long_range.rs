//! The notebook's argument made measurable: a synthetic task whose label is decided by one token
//! placed `distance` steps before the end of a sequence of noise tokens. The word vectors are
//! fixed random vectors, so a network cannot learn to silence the noise and has to carry the
//! signal through it (with trainable vectors, a vanilla RNN with Keras' orthogonal recurrent
//! initialization simply zeroes the noise and keeps the signal at any distance). The test
//! accuracy by distance shows how far each cell carries the signal; the gradient reaching each
//! input step shows how the error signal fades on the way back.

use burn::module::Module;
use burn::tensor::module::embedding;
use burn::tensor::{Device, Tensor};
use imdb_data::{EncodedSet, PaddedSequences, Padding, SeededRng};
use imdb_model::{Architecture, InferencePrecision, ModelConfig, ModelInput, SentimentClassifier};
use serde::{Deserialize, Serialize};

use crate::batcher::make_batch;
use crate::config::{EarlyStoppingConfig, TrainConfig};
use crate::error::TrainError;
use crate::evaluate::evaluate;
use crate::learner::{FitSpec, InitialEmbeddings, fit_with};
use crate::progress::Silent;
use crate::step::bce_with_logits;

/// Vocabulary of the task: ids 0–3 reserved, 4 and 5 the two signal tokens, the rest noise.
pub const TASK_WORDS: usize = 24;
const POSITIVE: u32 = 4;
const NEGATIVE: u32 = 5;
/// Steps after the signal that are not yet the end: the sequence is `distance + 1 + LEAD`
/// long, the signal `distance` steps before the last one.
const LEAD: usize = 4;

/// Sequences of noise with the signal token `distance` steps before the last step; label 1
/// when the signal is the positive token.
pub fn long_range_set(count: usize, distance: usize, seed: u64) -> EncodedSet {
    let steps = distance + 1 + LEAD;
    let mut rng = SeededRng::new(seed);
    let mut ids = Vec::with_capacity(count * steps);
    let mut labels = Vec::with_capacity(count);
    for _ in 0..count {
        let label = rng.below(2) as u32;
        let signal = steps - 1 - distance;
        for t in 0..steps {
            ids.push(if t == signal {
                if label == 1 { POSITIVE } else { NEGATIVE }
            } else {
                6 + rng.below((TASK_WORDS - 6) as u64) as u32
            });
        }
        labels.push(label);
    }
    EncodedSet {
        sequences: PaddedSequences {
            ids,
            lengths: vec![steps; count],
            maxlen: steps,
            padding: Padding::Post,
        },
        labels,
        source: (0..count).collect(),
    }
}

/// The small model used on the task for `architecture`.
pub fn task_model(architecture: Architecture) -> ModelConfig {
    ModelConfig {
        architecture,
        embed_dim: 16,
        units: 32,
        dropout: 0.0,
        recurrent_dropout: 0.0,
        ..ModelConfig::default()
    }
}

/// Training of one task run: a fixed budget, no early stopping.
pub fn task_training(epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 32,
        learning_rate: 0.005,
        grad_clip_norm: Some(1.0),
        early_stopping: EarlyStoppingConfig {
            enabled: false,
            ..EarlyStoppingConfig::default()
        },
        ..TrainConfig::default()
    }
}

/// Test accuracy of one architecture at one distance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LongRangeResult {
    /// The cell.
    pub architecture: Architecture,
    /// Steps between the signal and the end.
    pub distance: usize,
    /// Test accuracy (0.5 is chance).
    pub accuracy: f64,
}

/// Trains `architecture` on the task at `distance` and returns its test accuracy, with the
/// trained model.
pub fn run_long_range(
    architecture: Architecture,
    distance: usize,
    examples: usize,
    epochs: usize,
    seed: u64,
    device: &Device,
) -> Result<(LongRangeResult, SentimentClassifier), TrainError> {
    let train_set = long_range_set(examples, distance, seed);
    let val_set = long_range_set(examples / 4, distance, seed + 1);
    let test_set = long_range_set(examples / 2, distance, seed + 2);
    let model = task_model(architecture);
    let train = task_training(epochs);
    let spec = FitSpec {
        train_set: &train_set,
        val_set: &val_set,
        num_classes: 2,
        num_words: TASK_WORDS,
        model: &model,
        train: &train,
        seed,
    };
    // Fixed random word vectors, uniform in [-1, 1): the network cannot learn to silence the noise
    // tokens, it has to carry the signal through them.
    let mut rng = SeededRng::new(seed ^ 0x5EED);
    let weights = (0..TASK_WORDS * model.embed_dim)
        .map(|_| 2.0 * rng.next_f32() - 1.0)
        .collect();
    let embeddings = InitialEmbeddings {
        weights,
        freeze: true,
        source: "random-uniform".into(),
    };
    let outcome = fit_with(spec, device, None, &mut Silent, Some(&embeddings))?;
    let test = evaluate(&outcome.model, &test_set, 256, false, device)?;
    Ok((
        LongRangeResult {
            architecture,
            distance,
            accuracy: test.metrics.accuracy,
        },
        outcome.model,
    ))
}

/// The mean norm of `∂L/∂x_t`, the loss's gradient with respect to the input vector at step
/// `t`, over a batch of the task at `distance`; index 0 is the last step. How much of the
/// error signal reaches a token `k` steps back.
pub fn input_gradient_norms(
    model: &SentimentClassifier,
    distance: usize,
    seed: u64,
    device: &Device,
) -> Vec<f64> {
    let Some(layer) = model.encoder.first() else {
        return Vec::new();
    };
    let device = device.clone().autodiff();
    let layer = layer.clone().fork(&device);
    let model = model.clone().fork(&device);
    let set = long_range_set(64, distance, seed);
    let rows: Vec<usize> = (0..set.len()).collect();
    let (input, labels) = make_batch(&set, &rows, false, 1, &device);
    let ModelInput { tokens, step_mask } = input;
    let [batch, steps] = tokens.dims();
    let x = embedding(model.embedding.val(), tokens)
        .detach()
        .require_grad();
    let out = layer.forward(
        x.clone(),
        step_mask,
        None,
        model.config.implementation,
        InferencePrecision::Fast,
    );
    let hidden = layer.hidden;
    let last: Tensor<2> = out
        .slice([0..batch, steps - 1..steps, 0..hidden])
        .reshape([batch, hidden]);
    let logits = (last.matmul(model.dense_weight.val()) + model.dense_bias.val().unsqueeze())
        .reshape([batch]);
    let grads = bce_with_logits(logits, labels.reshape([batch])).backward();
    let Some(grad) = x.grad(&grads) else {
        return vec![0.0; steps];
    };
    let e = grad.dims()[2];
    let values = grad
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap_or_default();
    (0..steps)
        .rev()
        .map(|t| {
            (0..batch)
                .map(|b| {
                    let v = &values[(b * steps + t) * e..(b * steps + t + 1) * e];
                    v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt()
                })
                .sum::<f64>()
                / batch as f64
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signal_sits_at_its_distance_and_decides_the_label() {
        let set = long_range_set(50, 7, 3);
        assert_eq!(set.sequences.maxlen, 12);
        for i in 0..set.len() {
            let row = set.sequences.row(i);
            let signal = row[12 - 1 - 7];
            assert_eq!(
                signal,
                if set.labels[i] == 1 {
                    POSITIVE
                } else {
                    NEGATIVE
                }
            );
            assert_eq!(
                row.iter()
                    .filter(|&&t| t == POSITIVE || t == NEGATIVE)
                    .count(),
                1
            );
        }
        let ones = set.labels.iter().filter(|&&y| y == 1).count();
        assert!((15..35).contains(&ones));
    }

    #[test]
    fn lstm_solves_a_short_distance_and_gradients_are_measured() {
        let device = Device::flex();
        let (result, model) = run_long_range(Architecture::Lstm, 3, 400, 6, 1, &device).unwrap();
        assert!(result.accuracy > 0.9, "{result:?}");
        let norms = input_gradient_norms(&model, 3, 9, &device);
        assert_eq!(norms.len(), 3 + 1 + LEAD);
        assert!(norms.iter().all(|n| n.is_finite() && *n > 0.0), "{norms:?}");
    }
}
