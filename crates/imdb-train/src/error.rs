//! The error type of this crate.

use std::path::PathBuf;

/// What can go wrong while training, evaluating, saving or loading.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A training setting is outside what is allowed.
    #[error("invalid training setting `{key}`: {problem}")]
    InvalidConfig {
        /// The config key, e.g. `batch_size`.
        key: &'static str,
        /// What is wrong and what is allowed.
        problem: String,
    },

    /// A recipe's setting is outside what is allowed; `key` names it with its section.
    #[error("invalid setting `{key}`: {problem}")]
    InvalidRecipe {
        /// The setting with its section, e.g. `data.maxlen` or `pretrain.window`.
        key: String,
        /// What is wrong and what is allowed.
        problem: String,
    },

    /// The loss became NaN or infinite.
    #[error(
        "the training loss became {value} at epoch {epoch}, batch {batch}: training diverged. \
         Lower `learning_rate` (it is {learning_rate}) or set `grad_clip_norm`"
    )]
    NonFiniteLoss {
        /// 1-based epoch.
        epoch: usize,
        /// 0-based batch within the epoch.
        batch: usize,
        /// The loss value.
        value: f32,
        /// The learning rate in use.
        learning_rate: f64,
    },

    /// Training was asked to stop before it finished.
    #[error(
        "training was interrupted during epoch {epoch}; run the same command again to resume \
         after the last completed epoch"
    )]
    Interrupted {
        /// The 1-based epoch that was running.
        epoch: usize,
    },

    /// A data set has no text.
    #[error("the {split} set is empty: check `val_size`, `train_limit` and `test_limit`")]
    EmptySet {
        /// `train`, `validation` or `test`.
        split: &'static str,
    },

    /// A data set's ids do not fit the model.
    #[error("the {split} set cannot be used: {problem}")]
    BadSet {
        /// `train`, `validation` or `test`.
        split: &'static str,
        /// What is wrong.
        problem: String,
    },

    /// A file could not be read or written.
    #[error("{action} {path}: {message}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },

    /// A saved model or checkpoint is unusable.
    #[error("{path} is not a usable {what}: {message}. Train again to replace it")]
    BadArtifact {
        /// The file.
        path: PathBuf,
        /// `model`, `checkpoint`, ...
        what: &'static str,
        /// What is wrong.
        message: String,
    },

    /// The device could not hand back a tensor it computed (e.g. a GPU lost mid-run).
    #[error(
        "the {backend} device could not return the model's outputs: {message}; \
         run again, or on the flex backend (--backend flex)"
    )]
    DeviceRead {
        /// The device, as Burn names it.
        backend: String,
        /// The backend's error.
        message: String,
    },

    /// The model could not be built.
    #[error(transparent)]
    Model(#[from] imdb_model::ModelError),

    /// The data could not be prepared.
    #[error(transparent)]
    Data(#[from] imdb_data::DataError),
}

impl TrainError {
    /// An I/O error on `path`.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, err: impl std::fmt::Display) -> Self {
        Self::Io {
            action,
            path: path.into(),
            message: err.to_string(),
        }
    }
}
