//! The one error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong while fetching, extracting, reading or encoding the corpus.
///
/// Each message says what was wrong and, where there is one, how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file or folder could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done, e.g. "cannot read".
        action: &'static str,
        /// The file or folder concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The HTTP download failed.
    #[error(
        "download of {url} failed: {message}. Check the network, or download the archive by hand \
         and point IMDB_ARCHIVE at it"
    )]
    Download {
        /// The address that was fetched.
        url: String,
        /// What went wrong.
        message: String,
    },

    /// A file's SHA-256 is not the expected one.
    #[error(
        "{path} has SHA-256 {actual}, expected {expected}: the file is corrupt or not the IMDB \
         archive. Delete it and download again, or point IMDB_ARCHIVE at a good copy"
    )]
    Checksum {
        /// The file that was checked.
        path: PathBuf,
        /// The expected digest, lowercase hex.
        expected: String,
        /// The digest found, lowercase hex.
        actual: String,
    },

    /// The archive is not a readable gzip-compressed tar file (truncated, corrupt, or another
    /// format).
    #[error(
        "cannot read archive {path}: {message}. The file is truncated or corrupt: download it again"
    )]
    CorruptArchive {
        /// The archive.
        path: PathBuf,
        /// What the decoder said.
        message: String,
    },

    /// The archive holds an entry that extraction refuses: an absolute path, a `..` component,
    /// a link or a device.
    #[error(
        "archive {path} holds an unsafe entry {entry:?} ({reason}); nothing was extracted. \
         Use the official aclImdb_v1.tar.gz"
    )]
    UnsafeEntry {
        /// The archive.
        path: PathBuf,
        /// The entry's name as stored.
        entry: String,
        /// Why it was refused.
        reason: &'static str,
    },

    /// The extracted folder does not have the aclImdb layout.
    #[error("{path} is not an aclImdb corpus: {problem}")]
    Layout {
        /// The corpus root that was checked.
        path: PathBuf,
        /// What is missing or wrong.
        problem: String,
    },

    /// A review file's contents are not UTF-8.
    #[error("review {path} is not valid UTF-8 text")]
    NotUtf8 {
        /// The review file.
        path: PathBuf,
    },

    /// A labelled source (CSV, JSON Lines, folders) cannot be used as it is.
    #[error("{}: {problem}", location(.path, *.line))]
    Source {
        /// The file or folder.
        path: PathBuf,
        /// The line, where the problem is on one.
        line: Option<usize>,
        /// What is wrong and how to fix it.
        problem: String,
    },

    /// A setting is outside what is allowed.
    #[error("invalid {setting}: {problem}")]
    InvalidSetting {
        /// The setting, e.g. `maxlen`.
        setting: &'static str,
        /// What is wrong and what is allowed.
        problem: String,
    },

    /// No folder could be chosen to keep the downloaded and extracted corpus.
    #[error(
        "no data folder: the user's cache folder is unknown here. Set IMDB_DATA_DIR to a writable \
         folder"
    )]
    NoDataDir,
}

/// `path` or `path:line`.
fn location(path: &std::path::Path, line: Option<usize>) -> String {
    match line {
        Some(line) => format!("{}:{line}", path.display()),
        None => path.display().to_string(),
    }
}

impl DataError {
    /// Wraps an I/O error with what was being done and to which path.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = DataError> = std::result::Result<T, E>;
