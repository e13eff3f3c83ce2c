//! Training and evaluating the classifiers of `imdb-model` on the data of `imdb-data`.
//!
//! [`fit`] is the notebook's `model.fit`: Adam with cross-entropy (binary for two classes,
//! categorical for more), batch 64, up to 8 epochs, early stopping on `val_loss` with patience 2
//! that restores the best weights, and per epoch the loss, accuracy, precision, recall, F1 and
//! ROC AUC of training and validation, kept in a [`History`]. It takes a training set and a
//! validation set of encoded texts with class ids, whatever their source. Runs are reproducible
//! (a seed fixes initialization, shuffling and dropout), checkpointed every epoch and
//! resumable, and a NaN loss stops training with an error. [`evaluate()`] gives the metrics and
//! every prediction on any labelled set; [`SavedModel`] saves a trained model with its
//! preprocessing, vocabulary and class names, and classifies new text. [`Stacking`] combines a
//! two-class network's log-odds with another model's (e.g. `imdb_model::ngram`), weights
//! fitted on validation rows.
//!
//! [`Recipe`] is the whole recipe `cargo xtask experiment` runs, as a library: preprocessing,
//! a start (word vectors, skip-gram vectors trained on the corpus, or a pretrained language
//! model), training, the test evaluation and the n-gram stack, ending in the [`SavedModel`] to
//! use; its steps are public for callers that cache the costly ones.
//!
//! Worked examples of the crates together, from another project's point of view, are in the
//! workspace's `examples/rust/`: `train_csv` (train on a CSV and save), `predict` (load a saved
//! model and classify) and `pretrain_finetune` (language-model pretraining, fine-tuning and
//! the n-gram stack), run with `cargo run --release -p imdb-train --example NAME`.
//!
//! A tiny three-class model trained on a handful of literal texts:
//!
//! ```
//! use burn::tensor::Device;
//! use imdb_data::{DataConfig, EncodedSet, Vocabulary};
//! use imdb_model::ModelConfig;
//! use imdb_train::{FitSpec, SavedModel, Silent, TrainConfig, evaluate, fit};
//!
//! let texts = ["loved it", "great fun", "awful mess", "boring mess", "it was ok", "fine film"];
//! let labels = vec![2, 2, 0, 0, 1, 1]; // bad, fine, good
//! let classes = ["bad", "fine", "good"].map(String::from);
//! let config = DataConfig { maxlen: 4, num_words: 50, ..DataConfig::default() };
//! let preprocessing = config.preprocessing();
//! let vocab = Vocabulary::build(texts);
//! let set = EncodedSet {
//!     sequences: preprocessing.encode(&vocab, &texts).unwrap(),
//!     labels,
//!     source: (0..texts.len()).collect(),
//! };
//! let model = ModelConfig { embed_dim: 8, units: 8, ..ModelConfig::default() };
//! let train = TrainConfig { epochs: 30, batch_size: 6, learning_rate: 0.05, ..TrainConfig::default() };
//! let spec = FitSpec {
//!     train_set: &set,
//!     val_set: &set,
//!     num_classes: 3,
//!     num_words: 50,
//!     model: &model,
//!     train: &train,
//!     seed: 1,
//!     unlabelled: None,
//! };
//! let outcome = fit(spec, &Device::flex(), None, &mut Silent).unwrap();
//! let result = evaluate(&outcome.model, &set, 64, false, &Device::flex()).unwrap();
//! assert_eq!(result.probabilities.num_classes, 3);
//! assert!(result.metrics.accuracy > 0.8, "{:?}", result.metrics);
//!
//! let saved = SavedModel::new(outcome.model, preprocessing, &vocab, &classes).unwrap();
//! let verdict = &saved.predict(&["what an awful boring mess"], 8).unwrap()[0];
//! assert_eq!(verdict.label, "bad");
//! ```
#![deny(missing_docs)]

pub mod adversarial;
pub mod artifacts;
pub mod batcher;
pub mod checkpoint;
pub mod config;
pub mod error;
pub mod evaluate;
pub mod explain;
pub mod export;
pub mod history;
pub mod learner;
pub mod long_range;
pub mod metrics;
pub mod ngram_stack;
pub mod optim;
pub mod pretrain;
pub mod probe;
pub mod progress;
pub mod recipe;
pub mod records;
pub mod stacking;
pub mod step;
pub mod tensor_file;
pub mod transfer;

pub use artifacts::{
    Explanation, MODEL_FORMAT, ModelManifest, Prediction, SavedModel, Session, explanation_rows,
};
pub use config::{
    AdversarialConfig, AdversarialKind, EarlyStoppingConfig, MAX_BATCH_SIZE, Monitor, TrainConfig,
};
pub use error::TrainError;
pub use evaluate::{Evaluation, evaluate, evaluate_at};
pub use explain::TokenWeight;
pub use history::{EpochRecord, History};
pub use learner::{
    FitOutcome, FitSpec, InitialEmbeddings, Start, fit, fit_from, fit_with, optimizer,
};
pub use metrics::{
    ClassProbabilities, Confusion, Metrics, RocPoint, cross_entropy, is_class, roc_auc, roc_curve,
};
pub use optim::FusedAdam;
pub use progress::{ConsoleProgress, Silent, TrainObserver};
pub use recipe::{Finished, Recipe, Trained, VectorsRecipe, WordVectors};
pub use stacking::{NgramStack, Stacking};
pub use transfer::{FineTuneConfig, PretrainedLayers, PretrainedStart};
