//! Figures, tables, error analysis and HTML pages for training runs and experiments.
//!
//! Everything the notebook shows, as files a user can open: the class distribution and length
//! histogram (§2), training curves with the kept epoch marked (§5), the confusion matrix, ROC
//! curve and scikit-learn-style classification report (§6), examples and the most confident
//! mistakes (§7), accuracy by review length, and one self-contained `report.html` per run plus
//! an `index.html` comparing an experiment's runs. Every file is written to a temporary name
//! and renamed, so a crash never leaves a half-written one.
//!
//! ```
//! use imdb_report::tables::classification_report;
//! use imdb_train::Confusion;
//!
//! let c = Confusion { true_positives: 3, false_positives: 1, true_negatives: 3, false_negatives: 1 };
//! assert!(classification_report(&c, 4).contains("    accuracy                         0.7500         8"));
//! ```
#![deny(missing_docs)]

pub mod error;
pub mod examples;
pub mod figures;
pub mod html;
pub mod report;
pub mod tables;

pub use error::ReportError;
pub use examples::{Example, LengthBucket, TestOutcome};
pub use report::{RunReport, write_experiment_report, write_run_report};
pub use tables::{RunMetrics, read_metrics_json, write_metrics_json};
