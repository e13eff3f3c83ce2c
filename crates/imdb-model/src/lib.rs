//! Recurrent sentiment classifiers for Burn, with Keras semantics and fused CPU kernels.
//!
//! The model is the notebook's `Embedding → LSTM → Dense(sigmoid)` and its siblings (GRU,
//! vanilla RNN, bidirectional, stacked), configured by a serde [`ModelConfig`]. Recurrent
//! layers follow Keras: `dropout` on the inputs and `recurrent_dropout` on the previous state
//! with one mask per sequence, both off in evaluation; padding can be masked so that the final
//! state is the one at each review's last real token.
//!
//! Every model runs on any Burn device (`Device::flex()`, `Device::ndarray()`, `wgpu` behind
//! the `wgpu` feature). On the CPU backends the LSTM runs as one fused kernel with a
//! handwritten backward ([`ops`]); elsewhere as tensor operations.
//!
//! ```
//! use burn::tensor::Device;
//! use imdb_model::{ModelConfig, SentimentClassifier};
//!
//! let model = SentimentClassifier::new(&ModelConfig::default(), 20_000, 42, &Device::flex()).unwrap();
//! assert_eq!(model.summary(200).total_params, 2_609_473);
//! ```
//!
//! The crate does no I/O.
#![deny(missing_docs)]

pub mod classifier;
pub mod config;
pub mod error;
pub mod init;
pub mod kernels;
pub mod ops;
pub mod recurrent;
pub mod summary;

pub use classifier::{ModelInput, Predictor, SentimentClassifier, dropout_mask};
pub use config::{Architecture, ModelConfig, Pooling, Readout};
pub use error::ModelError;
pub use recurrent::{CellKind, Implementation, RecurrentLayer};
pub use summary::{LayerSummary, ModelSummary};
