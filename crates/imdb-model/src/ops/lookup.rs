//! Inference from a table of input projections, looked up per token.

// `ndarray` is deprecated upstream in favour of `flex`; the project keeps it supported.
#![allow(deprecated)]

#[cfg(feature = "ndarray")]
use burn::backend::NdArray;
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::tensor::{Int, Tensor};

use super::{HostTensors, host_ids, to_backend};
use crate::kernels::recurrent::{
    CellKind, Direction, InferencePrecision, InputForm, Pass, RecurrentDims, RecurrentInputs,
    RecurrentWeights, StateOutput, recurrent_forward,
};

/// Backends that run a recurrent layer on inputs looked up from a table of projections.
#[cfg_attr(feature = "ndarray", backend_extension(Flex, NdArray))]
#[cfg_attr(not(feature = "ndarray"), backend_extension(Flex))]
pub trait FusedLookupBackend: Backend {
    /// A whole recurrent layer over a batch, forward only, its input projections read from
    /// `table` (`[num_words, G·hidden]`, `embedding·w_ih + input bias`) at the batch's
    /// `tokens` (`[batch, steps]`) instead of being materialised. Other arguments as in
    /// [`FusedRecurrentBackend::fused_recurrent`](super::FusedRecurrentBackend::fused_recurrent) (the GRU reads its recurrent bias from
    /// `bias`); no recurrent dropout. With [`StateOutput::FinalOnly`], only the state after the last step
    /// processed is returned.
    ///
    /// ## Returns
    /// `[batch, steps, hidden]`, or `[batch, 1, hidden]` with [`StateOutput::FinalOnly`]
    #[allow(clippy::too_many_arguments)]
    fn fused_recurrent_lookup(
        table: FloatTensor<Self>,
        tokens: IntTensor<Self>,
        w_hh: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        step_mask: FloatTensor<Self>,
        direction: Direction,
        output: StateOutput,
        cell: CellKind,
        precision: InferencePrecision,
    ) -> FloatTensor<Self>;
}

/// The lookup on a CPU backend.
fn lookup<B: HostTensors>(
    (table, tokens): (FloatTensor<B>, IntTensor<B>),
    (w_hh, bias, step_mask): (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>),
    (direction, output): (Direction, StateOutput),
    cell: CellKind,
    precision: InferencePrecision,
) -> FloatTensor<B> {
    let device = table.device();
    let [batch, steps] = [tokens.shape()[0], tokens.shape()[1]];
    let hidden = w_hh.shape()[0];
    let ids = host_ids::<B>(tokens);
    let (table, w_hh, bias, step_mask) = (
        B::host_buf(table),
        B::host_buf(w_hh),
        B::host_buf(bias),
        B::host_buf(step_mask),
    );
    let dims = RecurrentDims {
        batch,
        steps,
        input: cell.gates() * hidden,
        hidden,
    };
    let weights = RecurrentWeights {
        w_ih: &[],
        w_hh: w_hh.as_slice(),
        bias: bias.as_slice(),
    };
    let inputs = RecurrentInputs {
        x: table.as_slice(),
        step_mask: step_mask.as_slice(),
        recurrent_mask: None,
        form: InputForm::Lookup(&ids),
        direction,
        output,
    };
    let (out, _) = recurrent_forward(cell, dims, weights, inputs, Pass::Inference(precision));
    let out_steps = output.steps(steps);
    to_backend::<B>(out, &[batch, out_steps, hidden], &device)
}

macro_rules! cpu_lookup_backend {
    ($backend:ty) => {
        impl FusedLookupBackend for $backend {
            fn fused_recurrent_lookup(
                table: FloatTensor<Self>,
                tokens: IntTensor<Self>,
                w_hh: FloatTensor<Self>,
                bias: FloatTensor<Self>,
                step_mask: FloatTensor<Self>,
                direction: Direction,
                output: StateOutput,
                cell: CellKind,
                precision: InferencePrecision,
            ) -> FloatTensor<Self> {
                lookup::<Self>(
                    (table, tokens),
                    (w_hh, bias, step_mask),
                    (direction, output),
                    cell,
                    precision,
                )
            }
        }
    };
}

cpu_lookup_backend!(Flex);
#[cfg(feature = "ndarray")]
cpu_lookup_backend!(NdArray);

/// Tensor-level entry to [`FusedLookupBackend::fused_recurrent_lookup`], for devices where
/// [`has_fused_kernels`](super::has_fused_kernels) is true. Inference only: the inputs are taken without autodiff, and
/// the output is a constant on the inputs' device.
pub fn fused_recurrent_lookup(
    table: Tensor<2>,
    tokens: Tensor<2, Int>,
    (w_hh, bias): (Tensor<2>, Tensor<1>),
    step_mask: Tensor<2>,
    (direction, output): (Direction, StateOutput),
    cell: CellKind,
    precision: InferencePrecision,
) -> Tensor<3> {
    let autodiff = step_mask.is_autodiff();
    let out: Tensor<3> =
        Tensor::from_dispatch(<Dispatch as FusedLookupBackend>::fused_recurrent_lookup(
            table.inner().into_dispatch(),
            tokens.inner().into_dispatch(),
            w_hh.inner().into_dispatch(),
            bias.inner().into_dispatch(),
            step_mask.inner().into_dispatch(),
            direction,
            output,
            cell,
            precision,
        ));
    // Later layers and the output layer may be on an autodiff device.
    if autodiff { out.autodiff() } else { out }
}
