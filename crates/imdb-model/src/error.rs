//! The error type of this crate.

/// What can go wrong when building a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A model setting is outside what is allowed.
    #[error("invalid model setting `{key}`: {problem}")]
    InvalidConfig {
        /// The config key, e.g. `units`.
        key: &'static str,
        /// What is wrong and what is allowed.
        problem: String,
    },
}
