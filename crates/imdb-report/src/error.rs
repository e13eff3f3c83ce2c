//! The error type of this crate.

use std::path::PathBuf;

/// What can go wrong while writing a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file could not be written (missing or read-only folder, full disk...).
    #[error("{action} {path}: {message}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },

    /// A figure could not be drawn.
    #[error("cannot draw figure {figure}: {message}")]
    Plot {
        /// The figure's file stem.
        figure: String,
        /// What the plotting library said.
        message: String,
    },
}

impl ReportError {
    /// An I/O error on `path`.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, err: impl std::fmt::Display) -> Self {
        Self::Io {
            action,
            path: path.into(),
            message: err.to_string(),
        }
    }
}

impl From<imdb_data::DataError> for ReportError {
    fn from(e: imdb_data::DataError) -> Self {
        match e {
            imdb_data::DataError::Io {
                action,
                path,
                source,
            } => Self::io(action, path, source),
            other => Self::io("cannot write", PathBuf::new(), other),
        }
    }
}
