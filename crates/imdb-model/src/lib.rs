//! Recurrent text classifiers for Burn, with Keras semantics and fused CPU kernels.
//!
//! The model is the notebook's `Embedding → LSTM → Dense(sigmoid)` and its siblings (GRU,
//! vanilla RNN, bidirectional, stacked, a small Transformer), configured by a serde
//! [`ModelConfig`], for two classes (one sigmoid output) or more (a softmax over one output
//! per class). Recurrent
//! layers follow Keras: `dropout` on the inputs and `recurrent_dropout` on the previous state
//! with one mask per sequence, both off in evaluation; padding can be masked so that the final
//! state is the one at each review's last real token.
//!
//! Every model runs on any Burn device (`Device::flex()`; `Device::ndarray()` behind the
//! `ndarray` feature, `wgpu` behind the `wgpu` feature). On the CPU backends the LSTM runs as one fused kernel with a
//! handwritten backward ([`ops`]); elsewhere as tensor operations.
//!
//! ```
//! use burn::tensor::Device;
//! use imdb_model::{ModelConfig, ModelInput, SentimentClassifier};
//!
//! // The notebook's model: 20,000 token ids, two classes.
//! let model = SentimentClassifier::new(&ModelConfig::default(), 20_000, 2, 42, &Device::flex())
//!     .unwrap();
//! assert_eq!(model.summary(200).total_params, 2_609_473);
//!
//! // Three classes: a softmax over three outputs; probabilities sum to one.
//! let model = SentimentClassifier::new(&ModelConfig::default(), 100, 3, 7, &Device::flex())
//!     .unwrap();
//! let input = ModelInput::from_padded(&[1, 5, 9, 0, 1, 7, 0, 0], &[3, 2], 4, false, &Device::flex());
//! let p = model.predictor().probabilities(input).into_data().to_vec::<f32>().unwrap();
//! assert_eq!(p.len(), 2 * 3);
//! assert!((p[0] + p[1] + p[2] - 1.0).abs() < 1e-5);
//! ```
//!
//! The crate does no I/O and reads no environment variable: every random draw comes from a
//! seed passed in, and the inference precision is chosen on the [`Predictor`].
//!
//! Worked examples of the crates together, from another project's point of view, are in the
//! workspace's `examples/rust/`: `train_csv` (train on a CSV and save), `predict` (load a saved
//! model and classify) and `pretrain_finetune` (language-model pretraining, fine-tuning and
//! the n-gram stack), run with `cargo run --release -p imdb-train --example NAME`.
#![deny(missing_docs)]

pub mod adversarial;
pub mod classifier;
pub mod config;
pub mod error;
pub mod init;
pub mod kernels;
pub mod language_model;
pub mod ngram;
pub mod ops;
pub mod recurrent;
pub mod summary;

pub use classifier::{
    ModelInput, Predictor, SentimentClassifier, dropout_mask, outputs_for, probabilities,
};
pub use config::{
    Architecture, MAX_EMBEDDING_WEIGHTS, MAX_LAYERS, MAX_WIDTH, ModelConfig, Pooling, Readout,
};
pub use error::ModelError;
pub use recurrent::{
    CellKind, Direction, GateBias, Implementation, InferencePrecision, RecurrentLayer, StateOutput,
};
pub use summary::{LayerSummary, ModelSummary};
