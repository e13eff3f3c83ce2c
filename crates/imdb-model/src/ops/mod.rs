//! The fused recurrent layers as a Burn backend extension, with a handwritten backward; the
//! embedding lookup with its input-dropout mask, whose backward runs on every core; and a
//! single-pass Adam update.
//!
//! On the CPU backends (`flex`, `ndarray`) one call runs a whole layer over a whole batch on
//! raw buffers ([`crate::kernels`]); under autodiff, the forward keeps a tape and the backward
//! is the handwritten one of the kernels, registered as a single node of Burn's graph. Other
//! backends (`wgpu`) have no fused kernel: the layers then use their composed form
//! ([`crate::recurrent`]), which works on every backend.
//!
//! One module per extension: [`recurrent`] (the fused layers, trained or not), [`lookup`]
//! (inference from a table of input projections), [`embedding`] (the lookup with its
//! dropout mask) and [`adam`] (the optimizer step); this one holds how they read tensors.

// `ndarray` is deprecated upstream in favour of `flex`; the project keeps it supported.
#![allow(deprecated)]

pub mod adam;
pub mod embedding;
pub mod lookup;
pub mod recurrent;

pub use adam::{AdamTensors, FusedAdamBackend, fused_adam};
pub use embedding::{FusedEmbeddingBackend, fused_embedding};
pub use lookup::{FusedLookupBackend, fused_recurrent_lookup};
pub use recurrent::{FusedRecurrentBackend, fused_recurrent};

#[cfg(feature = "ndarray")]
use burn::backend::NdArray;
#[cfg(feature = "ndarray")]
use burn::backend::ndarray::NdArrayTensor;
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{Backend, DispatchDevice, Flex};
use burn::tensor::{Device, TensorData, try_read_sync};

/// Reads a CPU tensor's values into a vector.
pub(crate) fn host<B: Backend>(tensor: FloatTensor<B>) -> Vec<f32> {
    let data = try_read_sync(B::float_into_data(tensor))
        .expect("a CPU tensor is readable at once")
        .expect("a CPU tensor reads without error");
    data.convert::<f32>()
        .try_into_vec::<f32>()
        .expect("converted to f32 just above")
}

pub(crate) fn to_backend<B: Backend>(
    values: Vec<f32>,
    shape: &[usize],
    device: &B::Device,
) -> FloatTensor<B> {
    B::float_from_data(TensorData::new(values, shape.to_vec()), device)
}

/// A tensor's values on the host: borrowed from a CPU tensor whose storage is contiguous,
/// copied otherwise.
#[derive(Debug)]
pub enum HostBuf {
    /// A vector of values.
    Owned(Vec<f32>),
    /// A dense Flex tensor, read in place.
    Flex(FloatTensor<Flex>),
    /// A contiguous `f32` ndarray tensor, read in place.
    #[cfg(feature = "ndarray")]
    NdArray(FloatTensor<NdArray>),
}

impl HostBuf {
    /// The values.
    pub fn as_slice(&self) -> &[f32] {
        match self {
            HostBuf::Owned(v) => v,
            HostBuf::Flex(t) => t.storage::<f32>(),
            #[cfg(feature = "ndarray")]
            HostBuf::NdArray(t) => {
                ndarray_slice(t).expect("only contiguous f32 tensors are kept in place")
            }
        }
    }
}

/// The values of an ndarray tensor without a copy, if it holds `f32` in standard layout.
#[cfg(feature = "ndarray")]
fn ndarray_slice(tensor: &FloatTensor<NdArray>) -> Option<&[f32]> {
    match tensor {
        NdArrayTensor::F32(storage) => storage.view().to_slice(),
        _ => None,
    }
}

/// CPU backends whose tensors the fused kernels read.
pub trait HostTensors: Backend {
    /// The values of `tensor`, without a copy where the backend allows.
    fn host_buf(tensor: FloatTensor<Self>) -> HostBuf;
}

impl HostTensors for Flex {
    fn host_buf(tensor: FloatTensor<Self>) -> HostBuf {
        if tensor.dtype() == burn::tensor::DType::F32 {
            HostBuf::Flex(flex_dense(tensor))
        } else {
            HostBuf::Owned(host::<Self>(tensor))
        }
    }
}

#[cfg(feature = "ndarray")]
impl HostTensors for NdArray {
    fn host_buf(tensor: FloatTensor<Self>) -> HostBuf {
        // Converting to data copies element by element when the array is shared (a model's
        // parameters always are): 10 MB of embedding table took ~0.1 s.
        if ndarray_slice(&tensor).is_some() {
            HostBuf::NdArray(tensor)
        } else {
            HostBuf::Owned(host::<Self>(tensor))
        }
    }
}

/// The CPU backends this build has, by name: `flex`, and `ndarray` with the `ndarray`
/// feature (deprecated upstream, not built by default).
pub fn cpu_devices() -> Vec<(&'static str, Device)> {
    #[allow(unused_mut)]
    let mut devices = vec![("flex", Device::flex())];
    #[cfg(feature = "ndarray")]
    #[allow(deprecated)]
    // `Device::ndarray()`: the design keeps the ndarray backend supported.
    devices.push(("ndarray", Device::ndarray()));
    devices
}

/// True if `device` runs the fused kernels (the CPU backends, with or without autodiff).
pub fn has_fused_kernels(device: &Device) -> bool {
    match device.clone().inner().as_dispatch() {
        DispatchDevice::Flex(_) => true,
        #[cfg(feature = "ndarray")]
        DispatchDevice::NdArray(_) => true,
        #[allow(unreachable_patterns)] // with only the CPU backends built
        _ => false,
    }
}

/// The values of an id tensor, as table rows.
pub(crate) fn host_ids<B: Backend>(tokens: IntTensor<B>) -> Vec<u32> {
    try_read_sync(B::int_into_data(tokens))
        .expect("a CPU tensor is readable at once")
        .expect("a CPU tensor reads without error")
        .convert::<i64>()
        .iter::<i64>()
        .map(|id| id as u32)
        .collect()
}

/// A Flex tensor whose storage is exactly its contiguous elements, so it can be updated in
/// place (copied first only if it is a strided view or shared).
pub(crate) fn flex_dense(tensor: FloatTensor<Flex>) -> FloatTensor<Flex> {
    let exact = tensor
        .as_slice::<f32>()
        .is_some_and(|s| s.len() * 4 == tensor.bytes().len());
    if exact {
        tensor
    } else {
        tensor.to_contiguous()
    }
}
