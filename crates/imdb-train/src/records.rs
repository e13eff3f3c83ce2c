//! Module and optimizer records as files (burnpack), written atomically.

use std::path::Path;

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use imdb_data::write_atomic;

use crate::error::TrainError;

/// Saves `module`'s parameters to `path`.
pub fn save_module<M: Module>(module: M, path: &Path) -> Result<(), TrainError> {
    let bytes = module
        .into_record()
        .into_bytes()
        .map_err(|e| TrainError::io("cannot encode the weights for", path, e))?;
    write_atomic(path, &bytes).map_err(|e| TrainError::io("cannot save", path, e))
}

/// Loads parameters saved by [`save_module`] into `module` (which must have the same shape).
pub fn load_module<M: Module>(module: M, path: &Path, what: &'static str) -> Result<M, TrainError> {
    let bytes = std::fs::read(path).map_err(|e| TrainError::io("cannot read", path, e))?;
    let bad = |message: String| TrainError::BadArtifact {
        path: path.to_path_buf(),
        what,
        message,
    };
    let record =
        ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes)).map_err(|e| bad(e.to_string()))?;
    module
        .try_load_record(record)
        .map_err(|e| bad(e.to_string()))
}

/// `into` with the parameters of `from` (the same shapes), copied through their encoded
/// bytes as a checkpoint is: the copies are fresh leaves of the autograd graph, with none of
/// the history `from`'s tensors may carry.
pub fn copy_weights<M: Module>(from: M, into: M) -> Result<M, TrainError> {
    let bad = |message: String| TrainError::InvalidConfig {
        key: "pretrained",
        problem: format!("cannot copy the starting weights: {message}"),
    };
    let bytes = from
        .into_record()
        .into_bytes()
        .map_err(|e| bad(e.to_string()))?;
    let record = ModuleRecord::from_bytes(bytes).map_err(|e| bad(e.to_string()))?;
    into.try_load_record(record).map_err(|e| bad(e.to_string()))
}

/// Saves the optimizer's state (Adam's moments and step count) to `path`.
pub fn save_optimizer(optim: &ModuleOptimizer, path: &Path) -> Result<(), TrainError> {
    let bytes = optim
        .into_bytes()
        .map_err(|e| TrainError::io("cannot encode the optimizer state for", path, e))?;
    write_atomic(path, &bytes).map_err(|e| TrainError::io("cannot save", path, e))
}

/// Loads a state saved by [`save_optimizer`] into `optim`.
pub fn load_optimizer(optim: ModuleOptimizer, path: &Path) -> Result<ModuleOptimizer, TrainError> {
    let bytes = std::fs::read(path).map_err(|e| TrainError::io("cannot read", path, e))?;
    optim
        .from_bytes(Bytes::from_bytes_vec(bytes))
        .map_err(|e| TrainError::BadArtifact {
            path: path.to_path_buf(),
            what: "optimizer checkpoint",
            message: e.to_string(),
        })
}

/// Writes `value` as pretty JSON to `path`, atomically.
pub fn save_json<T: serde::Serialize>(value: &T, path: &Path) -> Result<(), TrainError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| TrainError::io("cannot encode", path, e))?;
    write_atomic(path, text.as_bytes()).map_err(|e| TrainError::io("cannot save", path, e))
}

/// Reads JSON written by [`save_json`].
pub fn load_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &'static str,
) -> Result<T, TrainError> {
    let text = std::fs::read_to_string(path).map_err(|e| TrainError::io("cannot read", path, e))?;
    serde_json::from_str(&text).map_err(|e| TrainError::BadArtifact {
        path: path.to_path_buf(),
        what,
        message: e.to_string(),
    })
}
