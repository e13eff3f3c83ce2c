//! Per-epoch checkpoints, so that an interrupted training resumes where it stopped.
//!
//! The folder holds, for the last completed epoch `N`, `epoch-N.model.bpk` and
//! `epoch-N.optim.bpk`, the best weights so far in `best.model.bpk`, and `state.json`, written
//! last: it is the commit point, naming the epoch whose files are complete. A crash at any
//! moment leaves the previous `state.json` and its files intact.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::TrainError;
use crate::history::History;
use crate::records::{load_json, save_json};

/// Version of the checkpoint layout.
pub const CHECKPOINT_FORMAT: u32 = 1;

/// The training state after an epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    /// Layout version.
    pub format: u32,
    /// Identifies the configuration; a checkpoint of another one is refused.
    pub fingerprint: String,
    /// The last completed epoch (1-based).
    pub epoch: usize,
    /// History up to that epoch.
    pub history: History,
    /// Best monitored value so far.
    pub best_score: Option<f64>,
    /// Epochs since the last improvement.
    pub wait: usize,
    /// True once training has ended (all epochs, or early stopping).
    pub finished: bool,
}

/// A checkpoint folder.
#[derive(Debug, Clone)]
pub struct CheckpointDir {
    dir: PathBuf,
}

impl CheckpointDir {
    /// The checkpoint folder `dir` (created when first written).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn state_path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    /// Model weights after `epoch`.
    pub fn model_path(&self, epoch: usize) -> PathBuf {
        self.dir.join(format!("epoch-{epoch}.model.bpk"))
    }

    /// Optimizer state after `epoch`.
    pub fn optim_path(&self, epoch: usize) -> PathBuf {
        self.dir.join(format!("epoch-{epoch}.optim.bpk"))
    }

    /// The best weights so far.
    pub fn best_path(&self) -> PathBuf {
        self.dir.join("best.model.bpk")
    }

    /// Creates the folder.
    pub fn create(&self) -> Result<(), TrainError> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| TrainError::io("cannot create", &self.dir, e))
    }

    /// The saved state, if there is one; a state of another configuration is an error.
    pub fn load_state(&self, fingerprint: &str) -> Result<Option<CheckpointState>, TrainError> {
        let path = self.state_path();
        if !path.is_file() {
            return Ok(None);
        }
        let state: CheckpointState = load_json(&path, "checkpoint")?;
        if state.format != CHECKPOINT_FORMAT || state.fingerprint != fingerprint {
            return Err(TrainError::BadArtifact {
                path,
                what: "checkpoint for this configuration",
                message: "it was made with other settings (or another version); delete the \
                          folder or write to another output folder"
                    .to_string(),
            });
        }
        Ok(Some(state))
    }

    /// Commits `state` (its epoch's files must already be written), then removes the files of
    /// older epochs.
    pub fn commit(&self, state: &CheckpointState) -> Result<(), TrainError> {
        save_json(state, &self.state_path())?;
        for old in 1..state.epoch {
            for path in [self.model_path(old), self.optim_path(old)] {
                if path.exists() {
                    std::fs::remove_file(&path)
                        .map_err(|e| TrainError::io("cannot remove", &path, e))?;
                }
            }
        }
        Ok(())
    }
}
