//! Figures, tables and pages for training runs and experiments.
#![deny(missing_docs)]

pub mod error;

pub use error::ReportError;
