//! Training and evaluating the classifiers of `imdb-model` on the data of `imdb-data`.
//!
//! [`fit`] is the notebook's `model.fit`: Adam with binary cross-entropy, batch 64, up to 8
//! epochs, early stopping on `val_loss` with patience 2 that restores the best weights, and per
//! epoch the loss, accuracy, precision, recall and ROC AUC of training and validation, kept in a
//! [`History`]. Runs are reproducible (a seed fixes initialization, shuffling and dropout),
//! checkpointed every epoch and resumable, and a NaN loss stops training with an error.
//! [`evaluate`] gives the test metrics and every prediction; [`SavedModel`] saves a trained model
//! with its vocabulary and configuration and classifies new text.
#![deny(missing_docs)]

pub mod artifacts;
pub mod batcher;
pub mod checkpoint;
pub mod config;
pub mod error;
pub mod evaluate;
pub mod history;
pub mod learner;
pub mod long_range;
pub mod metrics;
pub mod optim;
pub mod progress;
pub mod records;
pub mod step;

pub use artifacts::{ModelManifest, Prediction, SavedModel};
pub use config::{EarlyStoppingConfig, Monitor, TrainConfig};
pub use error::TrainError;
pub use evaluate::{Evaluation, evaluate};
pub use history::{EpochRecord, History};
pub use learner::{FitOutcome, FitSpec, InitialEmbeddings, fit, fit_with, optimizer};
pub use metrics::{BinaryMetrics, Confusion, RocPoint, roc_auc, roc_curve};
pub use optim::FusedAdam;
pub use progress::{ConsoleProgress, Silent, TrainObserver};
