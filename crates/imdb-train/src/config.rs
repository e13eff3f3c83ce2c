//! Training settings, as read from a TOML config.

use serde::{Deserialize, Serialize};

use crate::error::TrainError;

/// Which quantity early stopping watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Monitor {
    /// Validation loss, lower is better (the notebook's choice).
    #[default]
    ValLoss,
    /// Validation accuracy, higher is better.
    ValAccuracy,
    /// Validation precision (of class 1 for two classes, else macro), higher is better.
    ValPrecision,
    /// Validation recall (of class 1 for two classes, else macro), higher is better.
    ValRecall,
    /// Validation F1 (of class 1 for two classes, else macro), higher is better.
    ValF1,
    /// Validation ROC AUC (one-vs-rest macro for more than two classes), higher is better.
    ValAuc,
}

impl Monitor {
    /// True if a larger value is better.
    pub fn higher_is_better(self) -> bool {
        !matches!(self, Monitor::ValLoss)
    }

    /// The name used in logs, e.g. `val_loss`.
    pub fn name(self) -> &'static str {
        match self {
            Monitor::ValLoss => "val_loss",
            Monitor::ValAccuracy => "val_accuracy",
            Monitor::ValPrecision => "val_precision",
            Monitor::ValRecall => "val_recall",
            Monitor::ValF1 => "val_f1",
            Monitor::ValAuc => "val_auc",
        }
    }
}

/// Keras' `EarlyStopping` callback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EarlyStoppingConfig {
    /// Use early stopping at all.
    pub enabled: bool,
    /// The watched quantity.
    pub monitor: Monitor,
    /// Epochs without improvement before stopping (`patience=2`).
    pub patience: usize,
    /// Smallest change that counts as an improvement.
    pub min_delta: f64,
    /// Put back the weights of the best epoch at the end (`restore_best_weights=True`). Unlike
    /// Keras, this also happens when training ran all its epochs.
    pub restore_best_weights: bool,
}

impl Default for EarlyStoppingConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            monitor: Monitor::ValLoss,
            patience: 2,
            min_delta: 0.0,
            restore_best_weights: true,
        }
    }
}

/// How to train; the defaults are the notebook's (§5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Most epochs to run (`EPOCHS = 8`).
    pub epochs: usize,
    /// Reviews per training batch (`BATCH_SIZE = 64`).
    pub batch_size: usize,
    /// Reviews per evaluation batch (no gradients, so larger is faster).
    pub eval_batch_size: usize,
    /// Adam's step size (`1e-3`).
    pub learning_rate: f64,
    /// The learning rate is multiplied by this after every epoch (1 keeps it constant).
    pub lr_decay: f64,
    /// The learning rate grows linearly from `1/warmup_steps` of its value to all of it over
    /// the run's first `warmup_steps` batches (0: no warm-up). Helps a pretrained start keep
    /// what it learnt through the first, noisy steps of the new output layer.
    #[serde(skip_serializing_if = "is_zero")]
    pub warmup_steps: usize,
    /// Adam's β₁.
    pub beta_1: f64,
    /// Adam's β₂.
    pub beta_2: f64,
    /// Adam's ε (Keras' default `1e-7`).
    pub epsilon: f64,
    /// L2 penalty on the recurrent and output weights (Keras `kernel_regularizer=l2(x)`),
    /// added to the loss; 0 for none.
    pub l2: f64,
    /// Clip the gradient's global norm to this value, if set.
    pub grad_clip_norm: Option<f64>,
    /// Batch reviews of similar length and cut each batch to its longest review, so that
    /// padding costs nothing. Only applies when padding is masked.
    pub bucketing: bool,
    /// Early stopping.
    pub early_stopping: EarlyStoppingConfig,
    /// Adversarial or virtual adversarial training on the word vectors (off when absent, and
    /// then left out of resolved configs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adversarial: Option<AdversarialConfig>,
}

/// Which adversarial loss training adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdversarialKind {
    /// Adversarial training: the loss again at the word vectors pushed by ε along the
    /// loss's gradient.
    At,
    /// Virtual adversarial training: the divergence between the prediction and the
    /// prediction at the word vectors pushed where it changes most, on labelled and unlabelled
    /// texts.
    Vat,
    /// Both losses.
    Both,
}

impl AdversarialKind {
    /// True if the labelled loss at an adversarial perturbation is added.
    pub fn adversarial(self) -> bool {
        matches!(self, AdversarialKind::At | AdversarialKind::Both)
    }

    /// True if the virtual adversarial divergence is added.
    pub fn virtual_adversarial(self) -> bool {
        matches!(self, AdversarialKind::Vat | AdversarialKind::Both)
    }
}

/// Adversarial training on the word vectors, after Miyato, Dai & Goodfellow (ICLR 2017).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdversarialConfig {
    /// The perturbation's L2 norm per text, over its real steps and every dimension, in units
    /// of the normalized word vectors (see [`imdb_model::adversarial`]).
    pub epsilon: f64,
    /// Which losses are added.
    pub kind: AdversarialKind,
    /// Texts without labels per batch for the virtual adversarial loss, drawn from the
    /// source's unlabelled texts and the training texts (never validation or test texts), of
    /// similar length so that the batch carries little padding; 0 uses the labelled batch.
    #[serde(default)]
    pub unlabelled_per_batch: usize,
    /// The norm of the random start of the virtual adversarial direction's power iteration,
    /// measured like `epsilon` (0.1 by default): large enough that the prediction moves by
    /// more than float32 resolves, small beside a text's norm of a few hundred.
    #[serde(default = "default_xi")]
    pub xi: f64,
    /// Power iterations that find the virtual adversarial direction.
    #[serde(default = "default_power_iterations")]
    pub power_iterations: usize,
}

/// The text paper's code's value. The image paper's 1e-6, spread over a whole text, moves the
/// prediction by less than float32 resolves, and texts whose prediction does not move get no
/// direction (crates/imdb-train/tests/adversarial.rs).
fn default_xi() -> f64 {
    0.1
}

fn default_power_iterations() -> usize {
    1
}

impl AdversarialConfig {
    /// `kind` at norm `epsilon` with the default ξ (0.1) and one power iteration, on the
    /// labelled batch (the defaults a config table gets).
    pub fn new(kind: AdversarialKind, epsilon: f64) -> Self {
        Self {
            epsilon,
            kind,
            unlabelled_per_batch: 0,
            xi: default_xi(),
            power_iterations: default_power_iterations(),
        }
    }

    /// Checks every setting; the error names the key and what is allowed.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |key, problem: String| Err(TrainError::InvalidConfig { key, problem });
        if !(self.epsilon > 0.0 && self.epsilon.is_finite()) {
            return bad(
                "adversarial.epsilon",
                format!(
                    "{} must be a positive number, such as 5.0 (the perturbation's norm per \
                     text)",
                    self.epsilon
                ),
            );
        }
        // A whole text's normalized vectors have a norm of about √(steps·dims), 250 for 500
        // words of 128 dimensions: a push far beyond that only drives the loss to infinity.
        if self.epsilon > 1000.0 {
            return bad(
                "adversarial.epsilon",
                format!(
                    "{} is too large: the push is measured on normalized word vectors, where \
                     a whole text has a norm of a few hundred; use at most 1000 (the paper \
                     used 5.0)",
                    self.epsilon
                ),
            );
        }
        if !(self.xi > 0.0 && self.xi <= 1.0) {
            return bad(
                "adversarial.xi",
                format!(
                    "{} must be a small positive number (at most 1), such as 0.1",
                    self.xi
                ),
            );
        }
        if !(1..=10).contains(&self.power_iterations) {
            return bad(
                "adversarial.power_iterations",
                format!("{} must be between 1 and 10", self.power_iterations),
            );
        }
        if self.unlabelled_per_batch > 4096 {
            return bad(
                "adversarial.unlabelled_per_batch",
                format!("{} must be at most 4096", self.unlabelled_per_batch),
            );
        }
        if self.unlabelled_per_batch > 0 && !self.kind.virtual_adversarial() {
            return bad(
                "adversarial.unlabelled_per_batch",
                format!(
                    "{} texts without labels are only read by kind = \"vat\" or \"both\"",
                    self.unlabelled_per_batch
                ),
            );
        }
        Ok(())
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 8,
            batch_size: 64,
            eval_batch_size: 256,
            learning_rate: 1e-3,
            lr_decay: 1.0,
            warmup_steps: 0,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
            l2: 0.0,
            grad_clip_norm: None,
            bucketing: true,
            early_stopping: EarlyStoppingConfig::default(),
            adversarial: None,
        }
    }
}

fn is_zero(value: &usize) -> bool {
    *value == 0
}

/// The largest batch a config may ask for, in training, evaluation and pretraining: a batch's
/// activations grow with it times the sequence length, and beyond it a run would fail on
/// allocation rather than with a message.
pub const MAX_BATCH_SIZE: usize = 4096;

impl TrainConfig {
    /// Checks every setting; the error names the key and what is allowed.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |key, problem: String| Err(TrainError::InvalidConfig { key, problem });
        for (key, value) in [
            ("epochs", self.epochs),
            ("batch_size", self.batch_size),
            ("eval_batch_size", self.eval_batch_size),
        ] {
            if value == 0 {
                return bad(key, "must be at least 1".into());
            }
        }
        for (key, value) in [
            ("batch_size", self.batch_size),
            ("eval_batch_size", self.eval_batch_size),
        ] {
            if value > MAX_BATCH_SIZE {
                return bad(
                    key,
                    format!("{value} texts is too many: use at most {MAX_BATCH_SIZE}"),
                );
            }
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return bad(
                "learning_rate",
                format!(
                    "{} must be a positive number such as 0.001",
                    self.learning_rate
                ),
            );
        }
        if !(self.lr_decay > 0.0 && self.lr_decay <= 1.0) {
            return bad(
                "lr_decay",
                format!(
                    "{} must be in (0, 1]: 1 keeps the rate, 0.5 halves it each epoch",
                    self.lr_decay
                ),
            );
        }
        for (key, beta) in [("beta_1", self.beta_1), ("beta_2", self.beta_2)] {
            if !(0.0..1.0).contains(&beta) {
                return bad(key, format!("{beta} must be in [0, 1)"));
            }
        }
        if self.epsilon.is_nan() || self.epsilon <= 0.0 {
            return bad("epsilon", format!("{} must be positive", self.epsilon));
        }
        if !(self.l2 >= 0.0 && self.l2.is_finite()) {
            return bad("l2", format!("{} must be 0 or positive", self.l2));
        }
        if let Some(norm) = self.grad_clip_norm
            && (norm.is_nan() || norm <= 0.0)
        {
            return bad("grad_clip_norm", format!("{norm} must be positive"));
        }
        if let Some(adversarial) = &self.adversarial {
            adversarial.validate()?;
        }
        if self.early_stopping.min_delta.is_nan() || self.early_stopping.min_delta < 0.0 {
            return bad(
                "early_stopping.min_delta",
                format!("{} must be 0 or positive", self.early_stopping.min_delta),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_notebooks_and_valid() {
        let c = TrainConfig::default();
        assert_eq!((c.epochs, c.batch_size, c.learning_rate), (8, 64, 1e-3));
        assert_eq!(c.early_stopping.patience, 2);
        c.validate().unwrap();
    }

    #[test]
    fn impossible_values_name_their_key() {
        for (config, key) in [
            (
                TrainConfig {
                    learning_rate: -0.1,
                    ..TrainConfig::default()
                },
                "learning_rate",
            ),
            (
                TrainConfig {
                    batch_size: 0,
                    ..TrainConfig::default()
                },
                "batch_size",
            ),
            (
                TrainConfig {
                    batch_size: MAX_BATCH_SIZE + 1,
                    ..TrainConfig::default()
                },
                "batch_size",
            ),
            (
                TrainConfig {
                    eval_batch_size: usize::MAX,
                    ..TrainConfig::default()
                },
                "eval_batch_size",
            ),
            (
                TrainConfig {
                    beta_2: 1.0,
                    ..TrainConfig::default()
                },
                "beta_2",
            ),
            (
                TrainConfig {
                    learning_rate: f64::NAN,
                    ..TrainConfig::default()
                },
                "learning_rate",
            ),
        ] {
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
    }
}
