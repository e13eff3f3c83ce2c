//! The embedding lookup with its input-dropout mask, whose backward scatters the table's
//! gradient on every core.

// `ndarray` is deprecated upstream in favour of `flex`; the project keeps it supported.
#![allow(deprecated)]

use std::sync::Arc;

#[cfg(feature = "ndarray")]
use burn::backend::NdArray;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{Autodiff, Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::tensor::{Int, Tensor};

use super::{HostBuf, HostTensors, host_ids, to_backend};
use crate::kernels::embedding::{EmbeddingDims, embedding_backward, embedding_forward};

/// Backends that look up word vectors and apply their input-dropout mask in one op, with the
/// table's gradient scattered on every core ([`crate::kernels::embedding`]).
#[cfg_attr(feature = "ndarray", backend_extension(Flex, NdArray, Autodiff))]
#[cfg_attr(not(feature = "ndarray"), backend_extension(Flex, Autodiff))]
pub trait FusedEmbeddingBackend: Backend {
    /// `table[tokens] ⊙ mask`.
    ///
    /// ## Parameters
    /// - `table`: `[words, width]`
    /// - `tokens`: `[batch, steps]`, each below `words`
    /// - `mask`: `[batch, width]`, the multipliers of each sequence's features
    ///
    /// ## Returns
    /// `[batch, steps, width]`
    fn fused_embedding(
        table: FloatTensor<Self>,
        tokens: IntTensor<Self>,
        mask: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

/// One lookup's ids, mask and shapes, kept for its backward pass.
#[derive(Debug)]
struct EmbeddingCall<D> {
    ids: Vec<u32>,
    mask: HostBuf,
    dims: EmbeddingDims,
    device: D,
}

impl<D> EmbeddingCall<D> {
    fn read<B: HostTensors<Device = D>>(
        table: &FloatTensor<B>,
        tokens: IntTensor<B>,
        mask: FloatTensor<B>,
    ) -> Self {
        let (words, width) = (table.shape()[0], table.shape()[1]);
        let (batch, steps) = (tokens.shape()[0], tokens.shape()[1]);
        Self {
            ids: host_ids::<B>(tokens),
            mask: B::host_buf(mask),
            dims: EmbeddingDims {
                words,
                width,
                batch,
                steps,
            },
            device: table.device(),
        }
    }

    fn forward<B: HostTensors<Device = D>>(&self, table: FloatTensor<B>) -> FloatTensor<B> {
        let table = B::host_buf(table);
        let out = embedding_forward(table.as_slice(), &self.ids, self.mask.as_slice(), self.dims);
        let EmbeddingDims {
            batch,
            steps,
            width,
            ..
        } = self.dims;
        to_backend::<B>(out, &[batch, steps, width], &self.device)
    }
}

macro_rules! cpu_embedding_backend {
    ($backend:ty) => {
        impl FusedEmbeddingBackend for $backend {
            fn fused_embedding(
                table: FloatTensor<Self>,
                tokens: IntTensor<Self>,
                mask: FloatTensor<Self>,
            ) -> FloatTensor<Self> {
                EmbeddingCall::read::<Self>(&table, tokens, mask).forward::<Self>(table)
            }
        }
    };
}

cpu_embedding_backend!(Flex);
#[cfg(feature = "ndarray")]
cpu_embedding_backend!(NdArray);

#[derive(Debug)]
struct EmbeddingBackward;

impl<B: HostTensors> Backward<B, 1> for EmbeddingBackward {
    type State = Arc<EmbeddingCall<B::Device>>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let d_out = B::host_buf(grads.consume::<B>(&ops.node));
        let [table] = ops.parents;
        if let Some(table) = table {
            let call = &ops.state;
            let grad =
                embedding_backward(d_out.as_slice(), &call.ids, call.mask.as_slice(), call.dims);
            let shape = [call.dims.words, call.dims.width];
            grads.register::<B>(table.id, to_backend::<B>(grad, &shape, &call.device));
        }
    }
}

impl<B: HostTensors, C: CheckpointStrategy> FusedEmbeddingBackend for Autodiff<B, C> {
    fn fused_embedding(
        table: FloatTensor<Self>,
        tokens: IntTensor<Self>,
        mask: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let prep = EmbeddingBackward
            .prepare::<C>([table.node()])
            .compute_bound()
            .stateful();
        let table = table.into_primitive();
        let call = EmbeddingCall::read::<B>(&table, tokens, mask.into_primitive());
        let output = call.forward::<B>(table);
        match prep {
            OpsKind::Tracked(prep) => prep.finish(Arc::new(call), output),
            OpsKind::UnTracked(prep) => prep.finish(output),
        }
    }
}

/// Tensor-level entry to [`FusedEmbeddingBackend::fused_embedding`], for devices where
/// [`has_fused_kernels`](super::has_fused_kernels) is true; see it for the shapes.
pub fn fused_embedding(table: Tensor<2>, tokens: Tensor<2, Int>, mask: Tensor<2>) -> Tensor<3> {
    Tensor::from_dispatch(<Dispatch as FusedEmbeddingBackend>::fused_embedding(
        table.into_dispatch(),
        tokens.into_dispatch(),
        mask.into_dispatch(),
    ))
}
