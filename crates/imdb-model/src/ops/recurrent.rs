//! The fused recurrent layers: forward with a tape under autodiff, the handwritten backward
//! registered as one node of Burn's graph, and forward only elsewhere.

// `ndarray` is deprecated upstream in favour of `flex`; the project keeps it supported.
#![allow(deprecated)]

use std::sync::Arc;

#[cfg(feature = "ndarray")]
use burn::backend::NdArray;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::tensor::Tensor;

use super::{HostBuf, HostTensors, to_backend};
use crate::kernels::recurrent::{
    CellKind, Direction, InferencePrecision, InputForm, Pass, RecurrentDims, RecurrentInputs,
    RecurrentTape, RecurrentWeights, StateOutput, recurrent_backward, recurrent_forward,
};

/// Backends that run the fused recurrent kernels.
#[cfg_attr(feature = "ndarray", backend_extension(Flex, NdArray, Autodiff))]
#[cfg_attr(not(feature = "ndarray"), backend_extension(Flex, Autodiff))]
pub trait FusedRecurrentBackend: Backend {
    /// A whole recurrent layer over a batch: the hidden state after every step.
    ///
    /// ## Parameters
    /// - `x`: `[batch, steps, input]`
    /// - `w_ih`: `[input, G·hidden]`, `w_hh`: `[hidden, G·hidden]`, `bias`: see
    ///   [`CellKind::bias_len`]; gates in Keras' order
    /// - `step_mask`: `[batch, steps]`, 1 for a real token and 0 for padding (state carried)
    /// - `recurrent_mask`: `[batch, hidden]`, multiplies the previous hidden state
    /// - `direction`: the order of the steps
    /// - `output`: every state, or only (and differentiated alone) the state after the last
    ///   step processed
    /// - `cell`: LSTM, GRU or vanilla RNN
    /// - `precision`: how a pass without a tape (inference) computes; a tracked pass is f32
    ///
    /// ## Returns
    /// `[batch, steps, hidden]`, or `[batch, 1, hidden]` with [`StateOutput::FinalOnly`]
    #[allow(clippy::too_many_arguments)]
    fn fused_recurrent(
        x: FloatTensor<Self>,
        w_ih: FloatTensor<Self>,
        w_hh: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        step_mask: FloatTensor<Self>,
        recurrent_mask: FloatTensor<Self>,
        direction: Direction,
        output: StateOutput,
        cell: CellKind,
        precision: InferencePrecision,
    ) -> FloatTensor<Self>;
}

/// The host buffers of one recurrent call's arguments.
#[derive(Debug)]
struct RecurrentCall {
    cell: CellKind,
    dims: RecurrentDims,
    /// The input; the backward pass reads it for the input weights' gradient (a Flex tensor
    /// is held, not copied).
    x: HostBuf,
    w_ih: HostBuf,
    w_hh: HostBuf,
    bias: HostBuf,
    step_mask: HostBuf,
    recurrent_mask: HostBuf,
    direction: Direction,
    output: StateOutput,
    precision: InferencePrecision,
}

/// The tensors of one call.
struct CallTensors<B: Backend> {
    x: FloatTensor<B>,
    w_ih: FloatTensor<B>,
    w_hh: FloatTensor<B>,
    bias: FloatTensor<B>,
    step_mask: FloatTensor<B>,
    recurrent_mask: FloatTensor<B>,
}

impl RecurrentCall {
    fn read<B: HostTensors>(
        t: CallTensors<B>,
        (direction, output): (Direction, StateOutput),
        cell: CellKind,
        precision: InferencePrecision,
    ) -> Self {
        let shape = t.x.shape();
        let dims = RecurrentDims {
            batch: shape[0],
            steps: shape[1],
            input: shape[2],
            hidden: t.w_hh.shape()[0],
        };
        Self {
            cell,
            dims,
            x: B::host_buf(t.x),
            w_ih: B::host_buf(t.w_ih),
            w_hh: B::host_buf(t.w_hh),
            bias: B::host_buf(t.bias),
            step_mask: B::host_buf(t.step_mask),
            recurrent_mask: B::host_buf(t.recurrent_mask),
            direction,
            output,
            precision,
        }
    }

    fn weights(&self) -> RecurrentWeights<'_> {
        RecurrentWeights {
            w_ih: self.w_ih.as_slice(),
            w_hh: self.w_hh.as_slice(),
            bias: self.bias.as_slice(),
        }
    }

    fn inputs(&self) -> RecurrentInputs<'_> {
        RecurrentInputs {
            x: self.x.as_slice(),
            step_mask: self.step_mask.as_slice(),
            recurrent_mask: Some(self.recurrent_mask.as_slice()),
            form: InputForm::Features,
            direction: self.direction,
            output: self.output,
        }
    }

    fn output_shape(&self) -> [usize; 3] {
        let steps = self.output.steps(self.dims.steps);
        [self.dims.batch, steps, self.dims.hidden]
    }

    /// Forward only.
    fn infer<B: Backend>(&self, device: &B::Device) -> FloatTensor<B> {
        let (out, _) = recurrent_forward(
            self.cell,
            self.dims,
            self.weights(),
            self.inputs(),
            Pass::Inference(self.precision),
        );
        to_backend::<B>(out, &self.output_shape(), device)
    }
}

/// Forward only, for backends without autodiff.
fn inference<B: HostTensors>(
    t: CallTensors<B>,
    direction_and_output: (Direction, StateOutput),
    cell: CellKind,
    precision: InferencePrecision,
) -> FloatTensor<B> {
    let device = t.x.device();
    RecurrentCall::read::<B>(t, direction_and_output, cell, precision).infer::<B>(&device)
}

macro_rules! cpu_recurrent_backend {
    ($backend:ty) => {
        impl FusedRecurrentBackend for $backend {
            fn fused_recurrent(
                x: FloatTensor<Self>,
                w_ih: FloatTensor<Self>,
                w_hh: FloatTensor<Self>,
                bias: FloatTensor<Self>,
                step_mask: FloatTensor<Self>,
                recurrent_mask: FloatTensor<Self>,
                direction: Direction,
                output: StateOutput,
                cell: CellKind,
                precision: InferencePrecision,
            ) -> FloatTensor<Self> {
                let t = CallTensors {
                    x,
                    w_ih,
                    w_hh,
                    bias,
                    step_mask,
                    recurrent_mask,
                };
                inference::<Self>(t, (direction, output), cell, precision)
            }
        }
    };
}

cpu_recurrent_backend!(Flex);
#[cfg(feature = "ndarray")]
cpu_recurrent_backend!(NdArray);

/// What a recurrent backward node keeps: the call's arguments and the forward tape.
#[derive(Debug)]
struct RecurrentSaved<D> {
    call: RecurrentCall,
    tape: RecurrentTape,
    device: D,
}

impl<D> RecurrentSaved<D> {
    /// Gradients of the call: `[dx, dw_ih, dw_hh, dbias]` as backend tensors.
    fn gradients<B: HostTensors<Device = D>>(&self, d_out: FloatTensor<B>) -> [FloatTensor<B>; 4] {
        let d_out = B::host_buf(d_out);
        let call = &self.call;
        let g = recurrent_backward(
            call.cell,
            call.dims,
            call.weights(),
            call.inputs(),
            &self.tape,
            d_out.as_slice(),
        );
        let RecurrentDims {
            batch,
            steps,
            input,
            hidden,
        } = call.dims;
        let gates = call.cell.gates() * hidden;
        let device = &self.device;
        let bias_len = g.dbias.len();
        [
            to_backend::<B>(g.dx, &[batch, steps, input], device),
            to_backend::<B>(g.dw_ih, &[input, gates], device),
            to_backend::<B>(g.dw_hh, &[hidden, gates], device),
            to_backend::<B>(g.dbias, &[bias_len], device),
        ]
    }
}

#[derive(Debug)]
struct RecurrentBackward;

impl<B: HostTensors> Backward<B, 4> for RecurrentBackward {
    // Shared, so that the graph can clone the state without copying the tape.
    type State = Arc<RecurrentSaved<B::Device>>;

    fn backward(self, ops: Ops<Self::State, 4>, grads: &mut Gradients, _: &mut Checkpointer) {
        let d_out = grads.consume::<B>(&ops.node);
        let gradients = ops.state.gradients::<B>(d_out);
        for (node, grad) in ops.parents.into_iter().zip(gradients) {
            if let Some(node) = node {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

/// Runs the forward pass keeping the tape for a backward node.
fn tracked<B: HostTensors>(
    t: CallTensors<B>,
    direction_and_output: (Direction, StateOutput),
    cell: CellKind,
) -> (Arc<RecurrentSaved<B::Device>>, FloatTensor<B>) {
    let device = t.x.device();
    // A tracked pass keeps its tape and computes in f32: no inference precision applies.
    let call = RecurrentCall::read::<B>(t, direction_and_output, cell, InferencePrecision::F32);
    let (out, tape) = recurrent_forward(
        call.cell,
        call.dims,
        call.weights(),
        call.inputs(),
        Pass::Training,
    );
    let output = to_backend::<B>(out, &call.output_shape(), &device);
    let saved = RecurrentSaved {
        call,
        tape: tape.unwrap_or_default(),
        device,
    };
    (Arc::new(saved), output)
}

impl<B: HostTensors, C: CheckpointStrategy> FusedRecurrentBackend for Autodiff<B, C> {
    fn fused_recurrent(
        x: FloatTensor<Self>,
        w_ih: FloatTensor<Self>,
        w_hh: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        step_mask: FloatTensor<Self>,
        recurrent_mask: FloatTensor<Self>,
        direction: Direction,
        output: StateOutput,
        cell: CellKind,
        precision: InferencePrecision,
    ) -> FloatTensor<Self> {
        let prep = RecurrentBackward
            .prepare::<C>([x.node(), w_ih.node(), w_hh.node(), bias.node()])
            .compute_bound()
            .stateful();
        let t = CallTensors {
            x: x.into_primitive(),
            w_ih: w_ih.into_primitive(),
            w_hh: w_hh.into_primitive(),
            bias: bias.into_primitive(),
            step_mask: step_mask.into_primitive(),
            recurrent_mask: recurrent_mask.into_primitive(),
        };
        // A backward node only when the graph tracks one of the inputs.
        match prep {
            OpsKind::Tracked(prep) => {
                let (saved, output) = tracked::<B>(t, (direction, output), cell);
                prep.finish(saved, output)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(inference::<B>(t, (direction, output), cell, precision))
            }
        }
    }
}

/// Tensor-level entry to [`FusedRecurrentBackend::fused_recurrent`]; see it for the shapes.
/// Only for devices where [`has_fused_kernels`](super::has_fused_kernels) is true.
#[allow(clippy::too_many_arguments)]
pub fn fused_recurrent(
    x: Tensor<3>,
    w_ih: Tensor<2>,
    w_hh: Tensor<2>,
    bias: Tensor<1>,
    step_mask: Tensor<2>,
    recurrent_mask: Tensor<2>,
    (direction, output): (Direction, StateOutput),
    cell: CellKind,
    precision: InferencePrecision,
) -> Tensor<3> {
    Tensor::from_dispatch(<Dispatch as FusedRecurrentBackend>::fused_recurrent(
        x.into_dispatch(),
        w_ih.into_dispatch(),
        w_hh.into_dispatch(),
        bias.into_dispatch(),
        step_mask.into_dispatch(),
        recurrent_mask.into_dispatch(),
        direction,
        output,
        cell,
        precision,
    ))
}
