//! Per-epoch checkpoints, so that an interrupted training resumes where it stopped.
//!
//! The folder holds, for the last completed epoch `N`, `epoch-N.model.bpk` and
//! `epoch-N.optim.bpk`, the weights of the best epoch so far `B` in `epoch-B.model.bpk` (kept
//! until a better epoch is committed), and `state.json`, written last: it is the commit point,
//! naming the epoch whose files are complete and the best epoch. No file that a committed
//! state names is ever rewritten, so a crash at any moment (a SIGKILL while a file is being
//! written included) leaves the previous `state.json` and every file it names intact.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::TrainError;
use crate::history::History;
use crate::records::{load_json, save_json};

/// Version of the checkpoint layout.
pub const CHECKPOINT_FORMAT: u32 = 2;

/// The training state after an epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    /// Layout version.
    pub format: u32,
    /// Identifies the configuration; a checkpoint of another one is refused.
    pub fingerprint: String,
    /// The last completed epoch (1-based).
    pub epoch: usize,
    /// History up to that epoch; its `best_epoch` names the best weights' file.
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
    /// older epochs but the best epoch's weights.
    pub fn commit(&self, state: &CheckpointState) -> Result<(), TrainError> {
        save_json(state, &self.state_path())?;
        for old in 1..state.epoch {
            let mut stale = vec![self.optim_path(old)];
            if state.history.best_epoch != Some(old) {
                stale.push(self.model_path(old));
            }
            for path in stale {
                if path.exists() {
                    std::fs::remove_file(&path)
                        .map_err(|e| TrainError::io("cannot remove", &path, e))?;
                }
            }
        }
        Ok(())
    }
}
