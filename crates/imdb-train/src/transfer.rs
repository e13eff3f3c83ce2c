//! Fine-tuning a classifier that starts from pretrained layers (e.g. a language model's, see
//! [`crate::pretrain`]): which layers are taken, how fast they learn beside the new output
//! layer, and for how many epochs they stay fixed (ULMFiT's discriminative fine-tuning and
//! gradual unfreezing, Howard & Ruder 2018).

use burn::module::{ParamGroup, ParamId};
use burn::optim::GradientsParams;
use burn::optim::lr_scheduler::module_lr_scheduler::{ModuleLearningRate, ModuleLrScheduler};
use imdb_model::SentimentClassifier;
use serde::{Deserialize, Serialize};

use crate::error::TrainError;

/// Which pretrained layers start the classifier; the others are drawn from the seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PretrainedLayers {
    /// The embedding and every recurrent layer.
    #[default]
    All,
    /// Only the embedding (the word vectors), as with skip-gram or GloVe vectors.
    Embedding,
}

/// How the pretrained layers are fine-tuned. The defaults train everything at one rate from
/// the first epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FineTuneConfig {
    /// Which layers are taken from the pretrained model.
    pub layers: PretrainedLayers,
    /// The pretrained layers learn at the run's learning rate times this (discriminative
    /// fine-tuning: below 1 they move less than the freshly drawn output layer).
    pub pretrained_lr_scale: f64,
    /// Epochs during which the pretrained recurrent layers stay fixed.
    pub freeze_recurrent_epochs: usize,
    /// Epochs during which the pretrained embedding stays fixed (with `freeze_recurrent_epochs
    /// = 1` and this 2: ULMFiT's gradual unfreezing, the top layer first).
    pub freeze_embedding_epochs: usize,
}

impl Default for FineTuneConfig {
    fn default() -> Self {
        Self {
            layers: PretrainedLayers::All,
            pretrained_lr_scale: 1.0,
            freeze_recurrent_epochs: 0,
            freeze_embedding_epochs: 0,
        }
    }
}

impl FineTuneConfig {
    /// Checks every setting, naming the bad one.
    pub fn validate(&self) -> Result<(), TrainError> {
        if !(self.pretrained_lr_scale.is_finite() && self.pretrained_lr_scale > 0.0) {
            return Err(TrainError::InvalidConfig {
                key: "pretrained_lr_scale",
                problem: format!(
                    "{} must be a positive number (1 trains the pretrained layers at the run's \
                     learning rate, 0.3 at 30% of it)",
                    self.pretrained_lr_scale
                ),
            });
        }
        if self.layers == PretrainedLayers::Embedding && self.freeze_recurrent_epochs > 0 {
            return Err(TrainError::InvalidConfig {
                key: "freeze_recurrent_epochs",
                problem: "the recurrent layers are not pretrained (layers = \"embedding\"): \
                          there is nothing to keep fixed; set it to 0 or take layers = \"all\""
                    .into(),
            });
        }
        Ok(())
    }
}

/// A classifier to start from instead of a freshly drawn one, e.g. a pretrained language
/// model's layers ([`crate::pretrain`]), and how to fine-tune it.
#[derive(Debug, Clone)]
pub struct PretrainedStart {
    /// The starting weights; its configuration must be the run's.
    pub model: SentimentClassifier,
    /// Names where they came from in the checkpoint fingerprint (e.g. the cache key).
    pub source: String,
    /// How its layers are taken and trained.
    pub fine_tune: FineTuneConfig,
}

/// The pretrained parameters of `model` under `layers`: the embedding's, and the recurrent
/// layers' when they are taken.
fn pretrained_ids(model: &SentimentClassifier, layers: PretrainedLayers) -> Vec<ParamId> {
    let mut ids = vec![model.embedding.id];
    if layers == PretrainedLayers::All {
        ids.extend(
            model
                .encoder
                .iter()
                .flat_map(|l| [l.w_ih.id, l.w_hh.id, l.bias.id]),
        );
    }
    ids
}

/// Removes from `grads` the gradients of the pretrained layers still fixed in `epoch`
/// (1-based), so that the optimizer leaves them (and their Adam moments) untouched.
pub fn drop_frozen_gradients(
    grads: &mut GradientsParams,
    model: &SentimentClassifier,
    fine_tune: &FineTuneConfig,
    epoch: usize,
) {
    if epoch <= fine_tune.freeze_embedding_epochs {
        grads.remove::<2>(model.embedding.id);
    }
    // `validate` allows frozen recurrent epochs only when those layers are pretrained.
    if epoch <= fine_tune.freeze_recurrent_epochs {
        for layer in &model.encoder {
            grads.remove::<2>(layer.w_ih.id);
            grads.remove::<2>(layer.w_hh.id);
            grads.remove::<1>(layer.bias.id);
        }
    }
}

/// Each parameter's learning rate for one step: `lr` for all, `lr · pretrained_lr_scale` for
/// the pretrained layers.
pub fn learning_rates(
    model: &SentimentClassifier,
    fine_tune: &FineTuneConfig,
    lr: f64,
) -> ModuleLearningRate {
    if fine_tune.pretrained_lr_scale == 1.0 {
        return lr.into();
    }
    let ids = pretrained_ids(model, fine_tune.layers);
    // The last group that matches a parameter sets its rate.
    ModuleLrScheduler::new(lr)
        .with_group(
            ParamGroup::from_ids(ids),
            lr * fine_tune.pretrained_lr_scale,
        )
        .step()
}
