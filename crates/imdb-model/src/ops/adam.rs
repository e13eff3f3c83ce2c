//! The single-pass Adam update.

// `ndarray` is deprecated upstream in favour of `flex`; the project keeps it supported.
#![allow(deprecated)]

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, backend_extension};
use burn::tensor::Tensor;

use super::flex_dense;
use crate::kernels::adam::{AdamStep, adam_update};

/// The three tensors an Adam step updates.
#[derive(burn::backend::ExtensionType)]
pub struct AdamTensors<B: Backend> {
    /// The parameter.
    pub param: FloatTensor<B>,
    /// First moment.
    pub moment_1: FloatTensor<B>,
    /// Second moment.
    pub moment_2: FloatTensor<B>,
}

/// Backends with a single-pass Adam update.
#[cfg_attr(feature = "ndarray", backend_extension(Flex, NdArray))]
#[cfg_attr(not(feature = "ndarray"), backend_extension(Flex))]
pub trait FusedAdamBackend: Backend {
    /// One Adam update of one parameter (see [`crate::kernels::adam::adam_update`]).
    fn fused_adam(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        step: AdamStep,
    ) -> AdamTensors<Self>;
}

impl FusedAdamBackend for Flex {
    fn fused_adam(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        step: AdamStep,
    ) -> AdamTensors<Self> {
        let (mut param, grad) = (flex_dense(param), flex_dense(grad));
        let (mut m, mut v) = (flex_dense(moment_1), flex_dense(moment_2));
        // `storage_mut` copies only if another tensor shares the buffer.
        adam_update(
            param.storage_mut::<f32>(),
            grad.storage::<f32>(),
            m.storage_mut::<f32>(),
            v.storage_mut::<f32>(),
            step,
        );
        AdamTensors {
            param,
            moment_1: m,
            moment_2: v,
        }
    }
}

/// The update on ndarray tensors (copied out and back: ndarray parameters are shared).
#[cfg(feature = "ndarray")]
mod on_ndarray {
    use burn::backend::tensor::FloatTensor;
    use burn::backend::{NdArray, TensorMetadata};

    use super::{AdamTensors, FusedAdamBackend};
    use crate::kernels::adam::{AdamStep, adam_update};
    use crate::ops::{HostTensors, host, to_backend};

    impl FusedAdamBackend for NdArray {
        fn fused_adam(
            param: FloatTensor<Self>,
            grad: FloatTensor<Self>,
            moment_1: FloatTensor<Self>,
            moment_2: FloatTensor<Self>,
            step: AdamStep,
        ) -> AdamTensors<Self> {
            let device = param.device();
            let shape = param.shape().to_vec();
            let (mut p, g) = (host::<Self>(param), Self::host_buf(grad));
            let (mut m, mut v) = (host::<Self>(moment_1), host::<Self>(moment_2));
            adam_update(&mut p, g.as_slice(), &mut m, &mut v, step);
            AdamTensors {
                param: to_backend::<Self>(p, &shape, &device),
                moment_1: to_backend::<Self>(m, &shape, &device),
                moment_2: to_backend::<Self>(v, &shape, &device),
            }
        }
    }
}

/// Tensor-level entry to [`FusedAdamBackend::fused_adam`], for devices where
/// [`has_fused_kernels`](super::has_fused_kernels) is true. Returns `(param, moment_1, moment_2)`.
pub fn fused_adam<const D: usize>(
    param: Tensor<D>,
    grad: Tensor<D>,
    moment_1: Tensor<D>,
    moment_2: Tensor<D>,
    step: AdamStep,
) -> (Tensor<D>, Tensor<D>, Tensor<D>) {
    let out = <Dispatch as FusedAdamBackend>::fused_adam(
        param.into_dispatch(),
        grad.into_dispatch(),
        moment_1.into_dispatch(),
        moment_2.into_dispatch(),
        step,
    );
    (
        Tensor::from_dispatch(out.param),
        Tensor::from_dispatch(out.moment_1),
        Tensor::from_dispatch(out.moment_2),
    )
}
