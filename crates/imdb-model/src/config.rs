//! The model's settings, as read from a TOML config.

use serde::{Deserialize, Serialize};

use crate::error::ModelError;
use crate::recurrent::{CellKind, Implementation};

/// The sequence encoder between the embedding and the output layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    /// LSTM layers (the notebook's model).
    #[default]
    Lstm,
    /// GRU layers.
    Gru,
    /// Vanilla RNN layers.
    Rnn,
    /// A small Transformer encoder (Burn's `TransformerEncoder`) over the word vectors plus
    /// sinusoidal positions, pooled over the real tokens.
    Transformer,
}

/// How a Transformer's token outputs become one vector per review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// Mean over the real (not padding) tokens.
    #[default]
    Mean,
    /// The output at the first token (the review's start token).
    First,
}

/// How a recurrent encoder's outputs become one vector per review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Readout {
    /// The final state of each direction (Keras' default, the notebook's model).
    #[default]
    Last,
    /// The largest value of each unit over the real steps of the last layer's outputs
    /// (Keras: `return_sequences=True` then `GlobalMaxPooling1D`).
    Max,
    /// The mean over the real steps of the last layer's outputs (Keras:
    /// `return_sequences=True` then `GlobalAveragePooling1D`).
    Mean,
}

impl Architecture {
    /// The recurrent cell of this architecture (`None` for the Transformer).
    pub fn cell(self) -> Option<CellKind> {
        match self {
            Architecture::Lstm => Some(CellKind::Lstm),
            Architecture::Gru => Some(CellKind::Gru),
            Architecture::Rnn => Some(CellKind::Rnn),
            Architecture::Transformer => None,
        }
    }
}

/// The widest layer a config may ask for (`embed_dim`, `units`, `ff_dim`). Far beyond any
/// text classifier's needs; a wider one would fail on allocation rather than with a message.
pub const MAX_WIDTH: usize = 4096;

/// The most stacked layers a config may ask for.
pub const MAX_LAYERS: usize = 32;

/// The most weights an embedding table (and a language model's output table) may hold,
/// `num_words × embed_dim`: 2^28 (1 GiB of `f32`), which training holds about four times over
/// (weights, gradient and the optimizer's two moments).
pub const MAX_EMBEDDING_WEIGHTS: usize = 1 << 28;

/// Everything that defines a classifier except the vocabulary size, which comes from the data.
///
/// The defaults are the notebook's model: `Embedding(20000, 128) → LSTM(64, dropout=0.2,
/// recurrent_dropout=0.2) → Dense(1, sigmoid)`, with padding masked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// The sequence encoder.
    pub architecture: Architecture,
    /// Size of each word vector (`EMBED_DIM = 128`).
    pub embed_dim: usize,
    /// Hidden units per recurrent layer and direction (`LSTM_UNITS = 64`).
    pub units: usize,
    /// Stacked recurrent layers (Keras: `return_sequences=True` between them).
    pub layers: usize,
    /// Read each sequence in both directions and concatenate the final states.
    pub bidirectional: bool,
    /// Dropout on each recurrent layer's inputs, one mask per sequence (Keras `dropout`).
    pub dropout: f64,
    /// Dropout on the previous hidden state, one mask per sequence (Keras
    /// `recurrent_dropout`).
    pub recurrent_dropout: f64,
    /// Drops whole embedding channels per sequence (Keras `SpatialDropout1D`).
    pub spatial_dropout: f64,
    /// Padding does not change the result: the final state is the state at each review's last
    /// real token. `false` reproduces the notebook, whose LSTM reads the padding zeros.
    pub mask_padding: bool,
    /// How recurrent layers are computed.
    pub implementation: Implementation,
    /// Transformer: attention heads (must divide `embed_dim`).
    pub heads: usize,
    /// Transformer: hidden size of the feed-forward blocks.
    pub ff_dim: usize,
    /// Transformer: how token outputs are pooled.
    pub pooling: Pooling,
    /// Recurrent encoders: the final state, or a pooling of every step's output.
    pub readout: Readout,
    /// Chrono initialization (Tallec & Ollivier, 2018) for dependencies up to this many steps:
    /// each unit's forget-gate bias is `ln u`, `u` uniform in `[1, chrono_init − 1]`, and its
    /// input-gate bias the opposite, so that units start out remembering over time scales
    /// spread up to `chrono_init` steps (a GRU's update-gate bias gets `ln u`, a vanilla RNN
    /// has no gate to set). 0, the default, keeps Keras' initialization (LSTM forget-gate
    /// bias 1, every other bias 0).
    #[serde(skip_serializing_if = "is_zero")]
    pub chrono_init: usize,
}

/// Refuses a table of `num_words` rows of `width` (named by `width_key`) beyond
/// [`MAX_EMBEDDING_WEIGHTS`] weights.
fn check_word_table(num_words: usize, width: usize, width_key: &str) -> Result<(), ModelError> {
    let weights = num_words.checked_mul(width);
    if weights.is_none_or(|w| w > MAX_EMBEDDING_WEIGHTS) {
        return Err(ModelError::InvalidConfig {
            key: "num_words",
            problem: format!(
                "{num_words} words × {width_key} {width} would need a table of more than \
                 {MAX_EMBEDDING_WEIGHTS} weights (1 GiB): lower num_words (the notebook uses \
                 20000) or {width_key}"
            ),
        });
    }
    Ok(())
}

/// Leaves a setting at its default out of written configs, so that configs written before it
/// existed read and compare the same.
fn is_zero(value: &usize) -> bool {
    *value == 0
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            architecture: Architecture::Lstm,
            embed_dim: 128,
            units: 64,
            layers: 1,
            bidirectional: false,
            dropout: 0.2,
            recurrent_dropout: 0.2,
            spatial_dropout: 0.0,
            mask_padding: true,
            implementation: Implementation::Fused,
            heads: 4,
            ff_dim: 256,
            pooling: Pooling::Mean,
            readout: Readout::Last,
            chrono_init: 0,
        }
    }
}

impl ModelConfig {
    /// The notebook's quick model of §8: `Embedding(20000, 64) → LSTM(32) → Dense`, no dropout.
    pub fn notebook_quick() -> Self {
        Self {
            embed_dim: 64,
            units: 32,
            dropout: 0.0,
            recurrent_dropout: 0.0,
            ..Self::default()
        }
    }

    /// Refuses a model that cannot be a language model: one that is not recurrent, or a
    /// bidirectional one with more than one layer (its second layer would read the first's
    /// other half, which has already seen the word to predict) or without masked padding (its
    /// backward half would read a short window's padding before the words).
    pub fn check_language_model(&self) -> Result<(), ModelError> {
        if self.architecture.cell().is_none() {
            return Err(ModelError::InvalidConfig {
                key: "architecture",
                problem: "a language model reads word by word: it needs a recurrent model \
                          (architecture lstm, gru or rnn)"
                    .into(),
            });
        }
        if self.bidirectional && self.layers > 1 {
            return Err(ModelError::InvalidConfig {
                key: "layers",
                problem: format!(
                    "a bidirectional language model has one layer (a second would read the \
                     first's backward half, which has seen the word the forward half predicts), \
                     not {}: set layers = 1 or bidirectional = false",
                    self.layers
                ),
            });
        }
        if self.bidirectional && !self.mask_padding {
            return Err(ModelError::InvalidConfig {
                key: "mask_padding",
                problem: "a bidirectional language model needs masked padding (its backward \
                          half reads a short window's padding first): set mask_padding = true"
                    .into(),
            });
        }
        Ok(())
    }

    /// Refuses a vocabulary of `num_words` ids whose embedding table would outgrow
    /// [`MAX_EMBEDDING_WEIGHTS`], before anything is allocated.
    pub fn check_vocabulary(&self, num_words: usize) -> Result<(), ModelError> {
        check_word_table(num_words, self.embed_dim, "embed_dim")
    }

    /// [`check_vocabulary`](Self::check_vocabulary) for a language model, whose output table
    /// is as long as the embedding and `units` wide.
    pub fn check_language_model_vocabulary(&self, num_words: usize) -> Result<(), ModelError> {
        self.check_vocabulary(num_words)?;
        check_word_table(num_words, self.units, "units")
    }

    /// Checks every setting; the error names the key and what is allowed.
    pub fn validate(&self) -> Result<(), ModelError> {
        let positive = [
            ("embed_dim", self.embed_dim),
            ("units", self.units),
            ("layers", self.layers),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(ModelError::InvalidConfig {
                    key,
                    problem: "must be at least 1".to_string(),
                });
            }
        }
        let widths = [
            ("embed_dim", self.embed_dim),
            ("units", self.units),
            ("ff_dim", self.ff_dim),
        ];
        for (key, value) in widths {
            if value > MAX_WIDTH {
                return Err(ModelError::InvalidConfig {
                    key,
                    problem: format!(
                        "{value} is too wide: use at most {MAX_WIDTH} (the notebook's model \
                         uses 64 to 128)"
                    ),
                });
            }
        }
        if self.layers > MAX_LAYERS {
            return Err(ModelError::InvalidConfig {
                key: "layers",
                problem: format!("{} is too deep: use at most {MAX_LAYERS}", self.layers),
            });
        }
        let rates = [
            ("dropout", self.dropout),
            ("recurrent_dropout", self.recurrent_dropout),
            ("spatial_dropout", self.spatial_dropout),
        ];
        for (key, rate) in rates {
            if !(0.0..1.0).contains(&rate) {
                return Err(ModelError::InvalidConfig {
                    key,
                    problem: format!("{rate} is not a dropout rate: use a value in [0, 1)"),
                });
            }
        }
        if self.architecture == Architecture::Transformer
            && (self.heads == 0 || !self.embed_dim.is_multiple_of(self.heads))
        {
            return Err(ModelError::InvalidConfig {
                key: "heads",
                problem: format!(
                    "{} heads cannot split embed_dim {}: use a divisor of it",
                    self.heads, self.embed_dim
                ),
            });
        }
        if self.architecture == Architecture::Transformer && self.readout != Readout::Last {
            return Err(ModelError::InvalidConfig {
                key: "readout",
                problem: "applies to recurrent encoders only: a Transformer is pooled by \
                          `pooling` (\"mean\" or \"first\")"
                    .to_string(),
            });
        }
        if self.chrono_init != 0 && self.chrono_init < 3 {
            return Err(ModelError::InvalidConfig {
                key: "chrono_init",
                problem: format!(
                    "{} steps: the time scales are drawn from [1, chrono_init − 1], so use at \
                     least 3 (about the longest dependency to learn), or 0 for Keras' biases",
                    self.chrono_init
                ),
            });
        }
        if self.architecture == Architecture::Transformer && self.chrono_init != 0 {
            return Err(ModelError::InvalidConfig {
                key: "chrono_init",
                problem: "sets recurrent gate biases: a Transformer has none, so leave it out"
                    .to_string(),
            });
        }
        if self.architecture == Architecture::Transformer && self.ff_dim == 0 {
            return Err(ModelError::InvalidConfig {
                key: "ff_dim",
                problem: "must be at least 1".to_string(),
            });
        }
        if self.implementation == Implementation::Burn
            && (self.architecture != Architecture::Lstm || self.recurrent_dropout > 0.0)
        {
            return Err(ModelError::InvalidConfig {
                key: "implementation",
                problem: "\"burn\" (Burn's stock nn::Lstm) supports only LSTM layers without \
                          recurrent dropout: use \"fused\" or \"composed\""
                    .to_string(),
            });
        }
        Ok(())
    }
}
