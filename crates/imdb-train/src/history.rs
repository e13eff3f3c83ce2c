//! Per-epoch metrics, as Keras' `history.history`.

use serde::{Deserialize, Serialize};

use crate::metrics::Metrics;

/// One epoch's numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Metrics over the epoch's training batches, dropout on (as Keras reports them).
    pub train: Metrics,
    /// Metrics on the validation set, dropout off.
    pub val: Metrics,
    /// Seconds spent on the training batches.
    pub train_seconds: f64,
    /// Seconds spent evaluating the validation set.
    pub val_seconds: f64,
}

/// Every epoch of a training run and what early stopping decided.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// Epochs in order.
    pub epochs: Vec<EpochRecord>,
    /// The epoch whose weights were kept (1-based).
    pub best_epoch: Option<usize>,
    /// True if early stopping ended training before the last epoch.
    pub stopped_early: bool,
}

impl History {
    /// Epochs run.
    pub fn epochs_run(&self) -> usize {
        self.epochs.len()
    }

    /// Total seconds of training batches.
    pub fn train_seconds(&self) -> f64 {
        self.epochs.iter().map(|e| e.train_seconds).sum()
    }

    /// The validation accuracy of the weights the run kept: the kept epoch's (the last one
    /// without a kept epoch); `None` without any epoch.
    pub fn kept_validation_accuracy(&self) -> Option<f64> {
        let kept = match self.best_epoch {
            Some(epoch) => self.epochs.iter().find(|e| e.epoch == epoch),
            None => self.epochs.last(),
        };
        kept.map(|e| e.val.accuracy)
    }

    /// Mean seconds per training epoch.
    pub fn seconds_per_epoch(&self) -> f64 {
        if self.epochs.is_empty() {
            0.0
        } else {
            self.train_seconds() / self.epochs.len() as f64
        }
    }
}
