//! Figures, tables, error analysis and HTML pages for training runs and experiments.
//!
//! Everything the notebook shows, as files a user can open: the class distribution and length
//! histogram (§2), training curves with the kept epoch marked (§5), the confusion matrix, ROC
//! curves and scikit-learn-style classification report (§6), examples and the most confident
//! mistakes (§7), accuracy by text length, and one self-contained `report.html` per run plus
//! an `index.html` comparing an experiment's runs, for two classes or more, every class by
//! name. Every file is written to a temporary name and renamed, so a crash never leaves a
//! half-written one.
//!
//! Worked examples of the crates together, from another project's point of view, are in the
//! workspace's `examples/rust/`: `train_csv` (train on a CSV and save), `predict` (load a saved
//! model and classify) and `pretrain_finetune` (language-model pretraining, fine-tuning and
//! the n-gram stack), run with `cargo run --release -p imdb-train --example NAME`.
//!
//! ```
//! use imdb_report::tables::classification_report;
//! use imdb_train::Confusion;
//!
//! // counts[true][predicted] over three classes.
//! let c = Confusion { counts: vec![vec![3, 1, 0], vec![0, 2, 1], vec![1, 0, 4]] };
//! let names = ["bad", "fine", "good"].map(String::from);
//! let report = classification_report(&c, &names, 4);
//! assert!(report.contains("        good     0.8000    0.8000    0.8000         5"));
//! assert!(report.contains("    accuracy                         0.7500        12"));
//! ```
#![deny(missing_docs)]

pub mod error;
pub mod evaluation;
pub mod examples;
pub mod explained;
pub mod figures;
pub mod html;
pub mod long_range;
pub mod report;
pub mod stacking;
pub mod tables;

pub use error::ReportError;
pub use evaluation::{confusion_text, write_evaluation};
pub use examples::{Example, LengthBucket, TestOutcome};
pub use explained::{ExplainedRow, rows_to_explain};
pub use report::{RunReport, write_experiment_report, write_run_report};
pub use stacking::{PartAccuracies, StackRecord};
pub use tables::{RunMetrics, RunSummary, read_metrics_json, seed_folder, write_metrics_json};
