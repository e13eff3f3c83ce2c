//! One optimisation step and one inference step, as burn-train's `TrainStep` and
//! `InferenceStep`.

use burn::backend::ExecutionError;
use burn::module::{Module, Param};
use burn::tensor::Tensor;
use burn::train::{InferenceStep, ItemLazy, TrainOutput, TrainStep};
use imdb_model::{ModelInput, SentimentClassifier};

use crate::adversarial::{Adversarial, adversarial_step};
use crate::error::TrainError;

/// A training batch: inputs, targets and the seed of its dropout masks.
#[derive(Debug, Clone)]
pub struct TrainBatch {
    /// Token ids and padding mask.
    pub input: ModelInput,
    /// `[batch, outputs]` targets as floats: the class (0.0 or 1.0) for one output, one-hot
    /// rows for more (see [`crate::batcher::targets`]).
    pub labels: Tensor<2>,
    /// Fixes every dropout mask of this step.
    pub dropout_seed: u64,
    /// Texts without labels for the virtual adversarial loss, if it reads any.
    pub unlabelled: Option<ModelInput>,
}

/// What a training step reports: the batch's mean loss and its logits, on the host.
#[derive(Debug, Clone)]
pub struct StepOutput {
    /// Mean loss of the batch, L2 penalty included.
    pub loss: f32,
    /// The logits, row-major `[batch, outputs]`.
    pub logits: Vec<f32>,
}

impl ItemLazy for StepOutput {
    fn sync(self) -> Result<Self, ExecutionError> {
        Ok(self)
    }
}

/// The classifier as burn-train sees it: with the loss and its L2 penalty.
#[derive(Module, Debug)]
pub struct Trainee {
    /// The model being trained.
    pub model: SentimentClassifier,
    /// L2 penalty factor on the recurrent and output weights.
    pub l2: f64,
    /// Adversarial training, when on.
    #[module(skip)]
    pub adversarial: Option<Adversarial>,
}

/// Mean binary cross-entropy of `logits` against `labels`, computed stably from logits:
/// `max(x, 0) - x·y + ln(1 + e^-|x|)`.
pub fn bce_with_logits(logits: Tensor<1>, labels: Tensor<1>) -> Tensor<1> {
    let softplus = (logits.clone().abs().neg().exp() + 1.0).log();
    (logits.clone().clamp_min(0.0) - logits * labels + softplus).mean()
}

/// Mean categorical cross-entropy of `logits` `[batch, classes]` against one-hot `targets`:
/// `-Σ y·log_softmax(x)` per row.
pub fn softmax_cross_entropy(logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
    let log_p = burn::tensor::activation::log_softmax(logits, 1);
    (log_p * targets).sum_dim(1).neg().mean()
}

/// The classifier's loss: binary cross-entropy for one output, categorical cross-entropy for
/// more; `targets` as in [`TrainBatch::labels`].
pub fn classification_loss(logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
    let [batch, outputs] = logits.dims();
    if outputs == 1 {
        bce_with_logits(logits.reshape([batch]), targets.reshape([batch]))
    } else {
        softmax_cross_entropy(logits, targets)
    }
}

fn squared_sum(param: &Param<Tensor<2>>) -> Tensor<1> {
    let w = param.val();
    (w.clone() * w).sum()
}

impl Trainee {
    /// `l2 · Σ w²` over the recurrent layers' weights and the output weights (not the
    /// embedding or the biases), as Keras' `kernel_regularizer` / `recurrent_regularizer`.
    pub fn l2_penalty(&self) -> Option<Tensor<1>> {
        if self.l2 <= 0.0 {
            return None;
        }
        let mut total = squared_sum(&self.model.dense_weight);
        for layer in &self.model.encoder {
            total = total + squared_sum(&layer.w_ih) + squared_sum(&layer.w_hh);
        }
        Some(total * self.l2)
    }
}

impl TrainStep for Trainee {
    type Input = TrainBatch;
    type Output = StepOutput;

    fn step(&self, batch: TrainBatch) -> TrainOutput<StepOutput> {
        if let Some(adversarial) = &self.adversarial {
            return adversarial_step(self, adversarial, batch);
        }
        let logits = self.model.forward(batch.input, Some(batch.dropout_seed));
        let mut loss = classification_loss(logits.clone(), batch.labels);
        if let Some(penalty) = self.l2_penalty() {
            loss = loss + penalty;
        }
        let grads = loss.backward();
        let output = StepOutput {
            loss: scalar(loss),
            logits: host(logits),
        };
        TrainOutput::new(self, grads, output)
    }
}

/// Logits of an evaluation batch, on the host.
#[derive(Debug, Clone)]
pub struct InferenceOutput {
    /// The logits, row-major `[batch, outputs]`.
    pub logits: Vec<f32>,
}

impl ItemLazy for InferenceOutput {
    fn sync(self) -> Result<Self, ExecutionError> {
        Ok(self)
    }
}

impl InferenceStep for Trainee {
    type Input = ModelInput;
    type Output = InferenceOutput;

    fn step(&self, input: ModelInput) -> InferenceOutput {
        InferenceOutput {
            logits: host(self.model.forward(input, None)),
        }
    }
}

/// A tensor's values, row-major, or the device's error when it cannot return them (never an
/// empty or short vector).
pub fn try_host<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>, TrainError> {
    // The device is named only when a read fails: this runs at every training batch.
    let device = t.device();
    let fail = |message: String| TrainError::DeviceRead {
        backend: format!("{device:?}"),
        message,
    };
    let expected = t.shape().num_elements();
    let values = t
        .try_into_data()
        .map_err(|e| fail(format!("{e:?}")))?
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| fail(format!("{e:?}")))?;
    if values.len() != expected {
        return Err(fail(format!(
            "{} values for a tensor of {expected}",
            values.len()
        )));
    }
    Ok(values)
}

/// [`try_host`] inside burn-train's steps, which cannot return an error: a failed read stops
/// training with the device's error rather than going on with numbers that are not the
/// model's.
pub fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    try_host(t).unwrap_or_else(|e| panic!("{e}"))
}

fn scalar(t: Tensor<1>) -> f32 {
    host(t).first().copied().unwrap_or(f32::NAN)
}
