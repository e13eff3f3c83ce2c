//! The one error type of the commands: each says what went wrong and what to do.

use std::path::PathBuf;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum XtaskError {
    /// The command line or a combination of flags is wrong.
    #[error("{0}")]
    Usage(String),

    /// A config file could not be read or is invalid.
    #[error("{path}: {message}")]
    Config {
        /// The config file.
        path: PathBuf,
        /// What is wrong, naming the key and what is allowed.
        message: String,
    },

    /// Reading standard input failed.
    #[error("standard input, line {line}: {message}")]
    Input {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },

    /// A file could not be read or written.
    #[error("{action} {path}: {message}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },

    /// Ctrl-C stopped a command that cannot resume; it wrote nothing.
    #[error("interrupted: {0}")]
    Interrupted(String),

    /// A benchmark's own check failed (e.g. requests failed under load).
    #[error("{0}")]
    Bench(String),

    /// From the data layer.
    #[error(transparent)]
    Data(#[from] imdb_data::DataError),

    /// From model construction.
    #[error(transparent)]
    Model(#[from] imdb_model::ModelError),

    /// From training or evaluation.
    #[error(transparent)]
    Train(#[from] imdb_train::TrainError),

    /// From writing reports.
    #[error(transparent)]
    Report(#[from] imdb_report::ReportError),
}

impl XtaskError {
    /// An I/O error on `path`.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, err: impl std::fmt::Display) -> Self {
        Self::Io {
            action,
            path: path.into(),
            message: err.to_string(),
        }
    }
}
