//! `f32` tensors in a safetensors file (Hugging Face's format, read by PyTorch, NumPy, JAX),
//! written atomically: the saved n-gram part of a stacked model and exported models.

use std::collections::HashMap;
use std::path::Path;

use imdb_data::write_atomic;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::error::TrainError;

/// One named tensor: its shape and row-major values.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    /// The tensor's name in the file.
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its values, row-major.
    pub values: Vec<f32>,
}

impl NamedTensor {
    /// A tensor named `name` of `shape` holding `values`.
    pub fn new(name: impl Into<String>, shape: &[usize], values: Vec<f32>) -> Self {
        Self {
            name: name.into(),
            shape: shape.to_vec(),
            values,
        }
    }
}

/// Writes `tensors` (little-endian `f32`) and `metadata` to `path`, atomically.
pub fn write_tensors(
    path: &Path,
    tensors: &[NamedTensor],
    metadata: Option<HashMap<String, String>>,
) -> Result<(), TrainError> {
    let encode = |e: safetensors::SafeTensorError| TrainError::io("cannot encode", path, e);
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|t| t.values.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let mut views = Vec::with_capacity(tensors.len());
    for (t, data) in tensors.iter().zip(&bytes) {
        if t.shape.iter().product::<usize>() != t.values.len() {
            return Err(TrainError::io(
                "cannot encode",
                path,
                format!(
                    "tensor {} has {} values for shape {:?}",
                    t.name,
                    t.values.len(),
                    t.shape
                ),
            ));
        }
        views.push((
            t.name.clone(),
            TensorView::new(Dtype::F32, t.shape.clone(), data).map_err(encode)?,
        ));
    }
    let file = safetensors::serialize(views, metadata).map_err(encode)?;
    write_atomic(path, &file).map_err(|e| TrainError::io("cannot save", path, e))
}

/// The `f32` tensors named `names` in the safetensors file `path` (`what` names the file in
/// errors): a missing name, another type or a damaged file is an error naming the file.
pub fn read_tensors(
    path: &Path,
    names: &[&str],
    what: &'static str,
) -> Result<Vec<NamedTensor>, TrainError> {
    let bytes = std::fs::read(path).map_err(|e| TrainError::io("cannot read", path, e))?;
    let bad = |message: String| TrainError::BadArtifact {
        path: path.to_path_buf(),
        what,
        message,
    };
    let file = SafeTensors::deserialize(&bytes)
        .map_err(|e| bad(format!("not a safetensors file: {e}")))?;
    names
        .iter()
        .map(|&name| {
            let view = file
                .tensor(name)
                .map_err(|_| bad(format!("it has no tensor {name:?}")))?;
            if view.dtype() != Dtype::F32 {
                return Err(bad(format!(
                    "tensor {name:?} is {:?}, not F32",
                    view.dtype()
                )));
            }
            let values = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            Ok(NamedTensor::new(name, view.shape(), values))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensors_round_trip_and_bad_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.safetensors");
        let tensors = vec![
            NamedTensor::new(
                "a",
                &[2, 3],
                vec![1.0, -2.5, 3.0, f32::MIN_POSITIVE, 0.0, 7.0],
            ),
            NamedTensor::new("b", &[1], vec![0.125]),
        ];
        write_tensors(&path, &tensors, None).unwrap();
        assert_eq!(read_tensors(&path, &["a", "b"], "test").unwrap(), tensors);
        let missing = read_tensors(&path, &["c"], "test").unwrap_err().to_string();
        assert!(missing.contains("no tensor \"c\""), "{missing}");
        std::fs::write(&path, b"not a file of tensors").unwrap();
        let damaged = read_tensors(&path, &["a"], "test").unwrap_err().to_string();
        assert!(damaged.contains("not a safetensors file"), "{damaged}");
        let wrong = [NamedTensor::new("a", &[2], vec![1.0])];
        assert!(write_tensors(&path, &wrong, None).is_err());
    }
}
