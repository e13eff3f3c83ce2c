//! Reporting training progress: a progress bar on a terminal, plain lines otherwise.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

use crate::history::EpochRecord;

/// Receives training events. Every method has an empty default.
pub trait TrainObserver {
    /// An epoch starts; it has `batches` batches.
    fn epoch_start(&mut self, _epoch: usize, _epochs: usize, _batches: usize) {}
    /// A training batch ended; running mean loss and accuracy of the epoch so far.
    fn batch_end(&mut self, _batch: usize, _loss: f64, _accuracy: f64) {}
    /// An epoch ended (training and validation).
    fn epoch_end(&mut self, _record: &EpochRecord, _improved: bool) {}
    /// A message (resume, early stop, restore).
    fn message(&mut self, _text: &str) {}
    /// Asked before every batch: `true` stops training at once with
    /// [`TrainError::Interrupted`](crate::TrainError::Interrupted); the checkpoint of the last
    /// completed epoch stays, so a later run resumes from it.
    fn should_stop(&mut self) -> bool {
        false
    }
}

/// Reports nothing.
#[derive(Debug, Default)]
pub struct Silent;

impl TrainObserver for Silent {}

/// Keras-like console output: a progress bar per epoch when standard error is a terminal,
/// one line per epoch always.
#[derive(Debug)]
pub struct ConsoleProgress {
    label: String,
    bar: Option<ProgressBar>,
    interactive: bool,
}

impl ConsoleProgress {
    /// Output prefixed with `label` (e.g. the run's name).
    pub fn new(label: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            bar: None,
            interactive: std::io::stderr().is_terminal(),
        }
    }
}

impl TrainObserver for ConsoleProgress {
    fn epoch_start(&mut self, epoch: usize, epochs: usize, batches: usize) {
        if self.interactive {
            let bar = ProgressBar::new(batches as u64);
            if let Ok(style) = ProgressStyle::with_template(
                "{prefix} {bar:30} {pos}/{len} [{elapsed_precise}<{eta_precise}] {msg}",
            ) {
                bar.set_style(style);
            }
            bar.set_prefix(format!("[{}] epoch {epoch}/{epochs}", self.label));
            self.bar = Some(bar);
        }
    }

    fn batch_end(&mut self, batch: usize, loss: f64, accuracy: f64) {
        if let Some(bar) = &self.bar {
            bar.set_position(batch as u64 + 1);
            bar.set_message(format!("loss {loss:.4} acc {accuracy:.4}"));
        }
    }

    fn epoch_end(&mut self, r: &EpochRecord, improved: bool) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        eprintln!(
            "[{}] epoch {}: {:.1}s - loss {:.4} - accuracy {:.4} - auc {:.4} - val_loss {:.4} - \
             val_accuracy {:.4} - val_precision {:.4} - val_recall {:.4} - val_auc {:.4}{}",
            self.label,
            r.epoch,
            r.train_seconds,
            r.train.loss,
            r.train.accuracy,
            r.train.auc,
            r.val.loss,
            r.val.accuracy,
            r.val.precision,
            r.val.recall,
            r.val.auc,
            if improved { " (best)" } else { "" }
        );
    }

    fn message(&mut self, text: &str) {
        eprintln!("[{}] {text}", self.label);
    }
}
