//! Choosing the Burn device from `--backend`.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::error::XtaskError;

/// A Burn backend the commands can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Burn's pure-Rust CPU backend (the default; its own operations are the fastest here).
    #[default]
    Flex,
    /// Burn's ndarray CPU backend (deprecated upstream); needs `--features ndarray`.
    Ndarray,
    /// Burn's wgpu backend (GPU, or a software driver); needs `--features wgpu`.
    Wgpu,
}

impl Backend {
    /// Lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Flex => "flex",
            Backend::Ndarray => "ndarray",
            Backend::Wgpu => "wgpu",
        }
    }

    /// The device, or an error saying how to get this backend.
    pub fn device(self) -> Result<Device, XtaskError> {
        match self {
            Backend::Flex => Ok(Device::flex()),
            Backend::Ndarray => ndarray_device(),
            Backend::Wgpu => wgpu_device(),
        }
    }
}

#[cfg(feature = "ndarray")]
#[allow(deprecated)] // `Device::ndarray()`: the design keeps the ndarray backend supported.
fn ndarray_device() -> Result<Device, XtaskError> {
    Ok(Device::ndarray())
}

#[cfg(not(feature = "ndarray"))]
fn ndarray_device() -> Result<Device, XtaskError> {
    Err(XtaskError::Usage(
        "this build has no ndarray backend (deprecated upstream, not built by default): run \
         the command as `cargo run --release -p xtask --features ndarray -- <command> ...`"
            .to_string(),
    ))
}

#[cfg(feature = "wgpu")]
fn wgpu_device() -> Result<Device, XtaskError> {
    Ok(Device::wgpu(Default::default()))
}

#[cfg(not(feature = "wgpu"))]
fn wgpu_device() -> Result<Device, XtaskError> {
    Err(XtaskError::Usage(
        "this build has no wgpu backend: run the command as \
         `cargo run --release -p xtask --features wgpu -- <command> ...`"
            .to_string(),
    ))
}
