//! The fused recurrent layers as a Burn backend extension, with a handwritten backward.
//!
//! On the CPU backends (`flex`, `ndarray`) one call runs a whole layer over a whole batch on
//! raw buffers ([`crate::kernels`]); under autodiff, the forward keeps a tape and the backward
//! is the handwritten one of the kernels, registered as a single node of Burn's graph. Other
//! backends (`wgpu`) have no fused kernel: the layers then use their composed form
//! ([`crate::recurrent`]), which works on every backend.

// `ndarray` is deprecated upstream in favour of `flex`; the project keeps it supported.
#![allow(deprecated)]

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{
    Autodiff, Backend, Dispatch, DispatchDevice, Flex, NdArray, TensorMetadata, backend_extension,
};
use burn::tensor::{Device, Tensor, TensorData, try_read_sync};

use crate::kernels::adam::{AdamStep, adam_update};
use crate::kernels::lstm::{
    LstmDims, LstmInputs, LstmTape, LstmWeights, lstm_backward, lstm_forward,
};

/// Backends that run the fused recurrent kernels.
#[backend_extension(Flex, NdArray, Autodiff)]
pub trait FusedRecurrentBackend: Backend {
    /// A whole LSTM layer over a batch: the hidden state after every step.
    ///
    /// ## Parameters
    /// - `x`: `[batch, steps, input]`
    /// - `w_ih`: `[input, 4·hidden]`, `w_hh`: `[hidden, 4·hidden]`, `bias`: `[4·hidden]`, gates
    ///   in Keras' order (input, forget, cell, output)
    /// - `step_mask`: `[batch, steps]`, 1 for a real token and 0 for padding (state carried)
    /// - `recurrent_mask`: `[batch, hidden]`, multiplies the previous hidden state
    /// - `reverse`: read from the last step to the first
    ///
    /// ## Returns
    /// `[batch, steps, hidden]`
    fn fused_lstm(
        x: FloatTensor<Self>,
        w_ih: FloatTensor<Self>,
        w_hh: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        step_mask: FloatTensor<Self>,
        recurrent_mask: FloatTensor<Self>,
        reverse: bool,
    ) -> FloatTensor<Self>;

    /// [`fused_lstm`](Self::fused_lstm) on an input already projected: `xp = x·w_ih + bias`,
    /// `[batch, steps, 4·hidden]`. Inference gathers `xp` from a table computed once per word.
    fn fused_lstm_projected(
        xp: FloatTensor<Self>,
        w_hh: FloatTensor<Self>,
        step_mask: FloatTensor<Self>,
        recurrent_mask: FloatTensor<Self>,
        reverse: bool,
    ) -> FloatTensor<Self>;
}

/// Reads a CPU tensor's values into a vector.
fn host<B: Backend>(tensor: FloatTensor<B>) -> Vec<f32> {
    let data = try_read_sync(B::float_into_data(tensor))
        .expect("a CPU tensor is readable at once")
        .expect("a CPU tensor reads without error");
    data.convert::<f32>()
        .try_into_vec::<f32>()
        .expect("converted to f32 just above")
}

fn to_backend<B: Backend>(values: Vec<f32>, shape: &[usize], device: &B::Device) -> FloatTensor<B> {
    B::float_from_data(TensorData::new(values, shape.to_vec()), device)
}

/// A tensor's values on the host: borrowed from a Flex tensor when its storage is dense,
/// copied otherwise.
#[derive(Debug)]
pub enum HostBuf {
    /// A vector of values.
    Owned(Vec<f32>),
    /// A dense Flex tensor, read in place.
    Flex(FloatTensor<Flex>),
}

impl HostBuf {
    /// The values.
    pub fn as_slice(&self) -> &[f32] {
        match self {
            HostBuf::Owned(v) => v,
            HostBuf::Flex(t) => t.storage::<f32>(),
        }
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

impl HostTensors for NdArray {
    fn host_buf(tensor: FloatTensor<Self>) -> HostBuf {
        HostBuf::Owned(host::<Self>(tensor))
    }
}

/// The host copies of one LSTM call's arguments.
#[derive(Debug)]
struct LstmCall {
    dims: LstmDims,
    /// Only the forward pass reads it (the tape keeps what the backward needs).
    x: Option<HostBuf>,
    w_ih: HostBuf,
    w_hh: HostBuf,
    bias: HostBuf,
    step_mask: HostBuf,
    recurrent_mask: HostBuf,
    reverse: bool,
    /// The input is `x·w_ih + bias` already; `w_ih` and `bias` are empty.
    projected: bool,
}

impl LstmCall {
    fn read<B: HostTensors>(
        x: FloatTensor<B>,
        w_ih: FloatTensor<B>,
        w_hh: FloatTensor<B>,
        bias: FloatTensor<B>,
        step_mask: FloatTensor<B>,
        recurrent_mask: FloatTensor<B>,
        reverse: bool,
    ) -> Self {
        let x_shape = x.shape();
        let hidden = w_hh.shape()[0];
        let dims = LstmDims {
            batch: x_shape[0],
            steps: x_shape[1],
            input: x_shape[2],
            hidden,
        };
        Self {
            dims,
            x: Some(B::host_buf(x)),
            w_ih: B::host_buf(w_ih),
            w_hh: B::host_buf(w_hh),
            bias: B::host_buf(bias),
            step_mask: B::host_buf(step_mask),
            recurrent_mask: B::host_buf(recurrent_mask),
            reverse,
            projected: false,
        }
    }

    fn read_projected<B: HostTensors>(
        xp: FloatTensor<B>,
        w_hh: FloatTensor<B>,
        step_mask: FloatTensor<B>,
        recurrent_mask: FloatTensor<B>,
        reverse: bool,
    ) -> Self {
        let shape = xp.shape();
        let dims = LstmDims {
            batch: shape[0],
            steps: shape[1],
            input: shape[2],
            hidden: w_hh.shape()[0],
        };
        Self {
            dims,
            x: Some(B::host_buf(xp)),
            w_ih: HostBuf::Owned(Vec::new()),
            w_hh: B::host_buf(w_hh),
            bias: HostBuf::Owned(Vec::new()),
            step_mask: B::host_buf(step_mask),
            recurrent_mask: B::host_buf(recurrent_mask),
            reverse,
            projected: true,
        }
    }

    fn weights(&self) -> LstmWeights<'_> {
        LstmWeights {
            w_ih: self.w_ih.as_slice(),
            w_hh: self.w_hh.as_slice(),
            bias: self.bias.as_slice(),
        }
    }

    fn inputs(&self) -> LstmInputs<'_> {
        LstmInputs {
            x: self.x.as_ref().map_or(&[], HostBuf::as_slice),
            step_mask: self.step_mask.as_slice(),
            recurrent_mask: Some(self.recurrent_mask.as_slice()),
            reverse: self.reverse,
            projected: self.projected,
        }
    }

    fn output_shape(&self) -> [usize; 3] {
        [self.dims.batch, self.dims.steps, self.dims.hidden]
    }
}

/// Forward only, for backends without autodiff.
fn lstm_inference<B: HostTensors>(
    x: FloatTensor<B>,
    w_ih: FloatTensor<B>,
    w_hh: FloatTensor<B>,
    bias: FloatTensor<B>,
    step_mask: FloatTensor<B>,
    recurrent_mask: FloatTensor<B>,
    reverse: bool,
) -> FloatTensor<B> {
    let device = x.device();
    let call = LstmCall::read::<B>(x, w_ih, w_hh, bias, step_mask, recurrent_mask, reverse);
    let (out, _) = lstm_forward(call.dims, call.weights(), call.inputs(), false);
    to_backend::<B>(out, &call.output_shape(), &device)
}

/// Forward only on a projected input, for backends without autodiff.
fn lstm_projected_inference<B: HostTensors>(
    xp: FloatTensor<B>,
    w_hh: FloatTensor<B>,
    step_mask: FloatTensor<B>,
    recurrent_mask: FloatTensor<B>,
    reverse: bool,
) -> FloatTensor<B> {
    let device = xp.device();
    let call = LstmCall::read_projected::<B>(xp, w_hh, step_mask, recurrent_mask, reverse);
    let (out, _) = lstm_forward(call.dims, call.weights(), call.inputs(), false);
    to_backend::<B>(out, &call.output_shape(), &device)
}

impl FusedRecurrentBackend for Flex {
    fn fused_lstm(
        x: FloatTensor<Self>,
        w_ih: FloatTensor<Self>,
        w_hh: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        step_mask: FloatTensor<Self>,
        recurrent_mask: FloatTensor<Self>,
        reverse: bool,
    ) -> FloatTensor<Self> {
        lstm_inference::<Self>(x, w_ih, w_hh, bias, step_mask, recurrent_mask, reverse)
    }

    fn fused_lstm_projected(
        xp: FloatTensor<Self>,
        w_hh: FloatTensor<Self>,
        step_mask: FloatTensor<Self>,
        recurrent_mask: FloatTensor<Self>,
        reverse: bool,
    ) -> FloatTensor<Self> {
        lstm_projected_inference::<Self>(xp, w_hh, step_mask, recurrent_mask, reverse)
    }
}

impl FusedRecurrentBackend for NdArray {
    fn fused_lstm(
        x: FloatTensor<Self>,
        w_ih: FloatTensor<Self>,
        w_hh: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        step_mask: FloatTensor<Self>,
        recurrent_mask: FloatTensor<Self>,
        reverse: bool,
    ) -> FloatTensor<Self> {
        lstm_inference::<Self>(x, w_ih, w_hh, bias, step_mask, recurrent_mask, reverse)
    }

    fn fused_lstm_projected(
        xp: FloatTensor<Self>,
        w_hh: FloatTensor<Self>,
        step_mask: FloatTensor<Self>,
        recurrent_mask: FloatTensor<Self>,
        reverse: bool,
    ) -> FloatTensor<Self> {
        lstm_projected_inference::<Self>(xp, w_hh, step_mask, recurrent_mask, reverse)
    }
}

/// What the LSTM backward node keeps: the call's arguments and the forward tape, on the host.
#[derive(Debug)]
struct LstmSaved<D> {
    call: LstmCall,
    tape: LstmTape,
    device: D,
}

#[derive(Debug)]
struct LstmBackward;

impl<B: HostTensors> Backward<B, 4> for LstmBackward {
    // Shared, so that the graph can clone the state without copying the tape.
    type State = Arc<LstmSaved<B::Device>>;

    fn backward(self, ops: Ops<Self::State, 4>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w_ih, node_w_hh, node_bias] = ops.parents;
        let d_out = B::host_buf(grads.consume::<B>(&ops.node));
        let saved = ops.state;
        let call = &saved.call;
        let g = lstm_backward(
            call.dims,
            call.weights(),
            call.inputs(),
            &saved.tape,
            d_out.as_slice(),
        );
        let LstmDims {
            batch,
            steps,
            input,
            hidden,
        } = call.dims;
        let device = &saved.device;
        if let Some(node) = node_x {
            grads.register::<B>(
                node.id,
                to_backend::<B>(g.dx, &[batch, steps, input], device),
            );
        }
        if let Some(node) = node_w_ih {
            grads.register::<B>(
                node.id,
                to_backend::<B>(g.dw_ih, &[input, 4 * hidden], device),
            );
        }
        if let Some(node) = node_w_hh {
            grads.register::<B>(
                node.id,
                to_backend::<B>(g.dw_hh, &[hidden, 4 * hidden], device),
            );
        }
        if let Some(node) = node_bias {
            grads.register::<B>(node.id, to_backend::<B>(g.dbias, &[4 * hidden], device));
        }
    }
}

#[derive(Debug)]
struct LstmProjectedBackward;

impl<B: HostTensors> Backward<B, 2> for LstmProjectedBackward {
    type State = Arc<LstmSaved<B::Device>>;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_xp, node_w_hh] = ops.parents;
        let d_out = B::host_buf(grads.consume::<B>(&ops.node));
        let saved = ops.state;
        let call = &saved.call;
        let g = lstm_backward(
            call.dims,
            call.weights(),
            call.inputs(),
            &saved.tape,
            d_out.as_slice(),
        );
        let LstmDims {
            batch,
            steps,
            input,
            hidden,
        } = call.dims;
        if let Some(node) = node_xp {
            grads.register::<B>(
                node.id,
                to_backend::<B>(g.dx, &[batch, steps, input], &saved.device),
            );
        }
        if let Some(node) = node_w_hh {
            grads.register::<B>(
                node.id,
                to_backend::<B>(g.dw_hh, &[hidden, 4 * hidden], &saved.device),
            );
        }
    }
}

impl<B: HostTensors, C: CheckpointStrategy> FusedRecurrentBackend for Autodiff<B, C> {
    fn fused_lstm(
        x: FloatTensor<Self>,
        w_ih: FloatTensor<Self>,
        w_hh: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        step_mask: FloatTensor<Self>,
        recurrent_mask: FloatTensor<Self>,
        reverse: bool,
    ) -> FloatTensor<Self> {
        let prep = LstmBackward
            .prepare::<C>([x.node(), w_ih.node(), w_hh.node(), bias.node()])
            .compute_bound()
            .stateful();
        let (x, w_ih, w_hh, bias) = (
            x.into_primitive(),
            w_ih.into_primitive(),
            w_hh.into_primitive(),
            bias.into_primitive(),
        );
        let (step_mask, recurrent_mask) =
            (step_mask.into_primitive(), recurrent_mask.into_primitive());
        match prep {
            OpsKind::Tracked(prep) => {
                let device = x.device();
                let call =
                    LstmCall::read::<B>(x, w_ih, w_hh, bias, step_mask, recurrent_mask, reverse);
                let (out, tape) = lstm_forward(call.dims, call.weights(), call.inputs(), true);
                let output = to_backend::<B>(out, &call.output_shape(), &device);
                // The backward pass needs the tape, not the input.
                let mut call = call;
                call.x = None;
                let saved = LstmSaved {
                    call,
                    tape: tape.unwrap_or_default(),
                    device,
                };
                prep.finish(Arc::new(saved), output)
            }
            OpsKind::UnTracked(prep) => prep.finish(lstm_inference::<B>(
                x,
                w_ih,
                w_hh,
                bias,
                step_mask,
                recurrent_mask,
                reverse,
            )),
        }
    }

    fn fused_lstm_projected(
        xp: FloatTensor<Self>,
        w_hh: FloatTensor<Self>,
        step_mask: FloatTensor<Self>,
        recurrent_mask: FloatTensor<Self>,
        reverse: bool,
    ) -> FloatTensor<Self> {
        let prep = LstmProjectedBackward
            .prepare::<C>([xp.node(), w_hh.node()])
            .compute_bound()
            .stateful();
        let (xp, w_hh) = (xp.into_primitive(), w_hh.into_primitive());
        let (step_mask, recurrent_mask) =
            (step_mask.into_primitive(), recurrent_mask.into_primitive());
        match prep {
            OpsKind::Tracked(prep) => {
                let device = xp.device();
                let mut call =
                    LstmCall::read_projected::<B>(xp, w_hh, step_mask, recurrent_mask, reverse);
                let (out, tape) = lstm_forward(call.dims, call.weights(), call.inputs(), true);
                let output = to_backend::<B>(out, &call.output_shape(), &device);
                call.x = None;
                let saved = LstmSaved {
                    call,
                    tape: tape.unwrap_or_default(),
                    device,
                };
                prep.finish(Arc::new(saved), output)
            }
            OpsKind::UnTracked(prep) => prep.finish(lstm_projected_inference::<B>(
                xp,
                w_hh,
                step_mask,
                recurrent_mask,
                reverse,
            )),
        }
    }
}

/// Tensor-level entry to [`FusedRecurrentBackend::fused_lstm_projected`].
/// Only for devices where [`has_fused_kernels`] is true.
pub fn fused_lstm_projected(
    xp: Tensor<3>,
    w_hh: Tensor<2>,
    step_mask: Tensor<2>,
    recurrent_mask: Tensor<2>,
    reverse: bool,
) -> Tensor<3> {
    Tensor::from_dispatch(<Dispatch as FusedRecurrentBackend>::fused_lstm_projected(
        xp.into_dispatch(),
        w_hh.into_dispatch(),
        step_mask.into_dispatch(),
        recurrent_mask.into_dispatch(),
        reverse,
    ))
}

/// True if `device` runs the fused kernels (the CPU backends, with or without autodiff).
pub fn has_fused_kernels(device: &Device) -> bool {
    matches!(
        device.clone().inner().as_dispatch(),
        DispatchDevice::Flex(_) | DispatchDevice::NdArray(_)
    )
}

/// Tensor-level entry to [`FusedRecurrentBackend::fused_lstm`]; see it for the shapes.
/// Only for devices where [`has_fused_kernels`] is true.
pub fn fused_lstm(
    x: Tensor<3>,
    w_ih: Tensor<2>,
    w_hh: Tensor<2>,
    bias: Tensor<1>,
    step_mask: Tensor<2>,
    recurrent_mask: Tensor<2>,
    reverse: bool,
) -> Tensor<3> {
    Tensor::from_dispatch(<Dispatch as FusedRecurrentBackend>::fused_lstm(
        x.into_dispatch(),
        w_ih.into_dispatch(),
        w_hh.into_dispatch(),
        bias.into_dispatch(),
        step_mask.into_dispatch(),
        recurrent_mask.into_dispatch(),
        reverse,
    ))
}

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
#[backend_extension(Flex, NdArray)]
pub trait FusedAdamBackend: Backend {
    /// One Adam update of one parameter (see [`crate::kernels::adam::adam_update`]); the
    /// bias corrections use step `time`.
    #[allow(clippy::too_many_arguments)]
    fn fused_adam(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        lr: f32,
        beta_1: f32,
        beta_2: f32,
        epsilon: f32,
        time: u32,
    ) -> AdamTensors<Self>;
}

/// A Flex tensor whose storage is exactly its contiguous elements, so it can be updated in
/// place (copied first only if it is a strided view or shared).
fn flex_dense(tensor: FloatTensor<Flex>) -> FloatTensor<Flex> {
    let exact = tensor
        .as_slice::<f32>()
        .is_some_and(|s| s.len() * 4 == tensor.bytes().len());
    if exact {
        tensor
    } else {
        tensor.to_contiguous()
    }
}

impl FusedAdamBackend for Flex {
    fn fused_adam(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        lr: f32,
        beta_1: f32,
        beta_2: f32,
        epsilon: f32,
        time: u32,
    ) -> AdamTensors<Self> {
        let (mut param, grad) = (flex_dense(param), flex_dense(grad));
        let (mut m, mut v) = (flex_dense(moment_1), flex_dense(moment_2));
        let step = AdamStep {
            lr,
            beta_1,
            beta_2,
            epsilon,
            time,
        };
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

impl FusedAdamBackend for NdArray {
    fn fused_adam(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        lr: f32,
        beta_1: f32,
        beta_2: f32,
        epsilon: f32,
        time: u32,
    ) -> AdamTensors<Self> {
        let device = param.device();
        let shape = param.shape().to_vec();
        let (mut p, g) = (host::<Self>(param), host::<Self>(grad));
        let (mut m, mut v) = (host::<Self>(moment_1), host::<Self>(moment_2));
        adam_update(
            &mut p,
            &g,
            &mut m,
            &mut v,
            AdamStep {
                lr,
                beta_1,
                beta_2,
                epsilon,
                time,
            },
        );
        AdamTensors {
            param: to_backend::<Self>(p, &shape, &device),
            moment_1: to_backend::<Self>(m, &shape, &device),
            moment_2: to_backend::<Self>(v, &shape, &device),
        }
    }
}

/// Tensor-level entry to [`FusedAdamBackend::fused_adam`], for devices where
/// [`has_fused_kernels`] is true. Returns `(param, moment_1, moment_2)`.
#[allow(clippy::too_many_arguments)]
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
        step.lr,
        step.beta_1,
        step.beta_2,
        step.epsilon,
        step.time,
    );
    (
        Tensor::from_dispatch(out.param),
        Tensor::from_dispatch(out.moment_1),
        Tensor::from_dispatch(out.moment_2),
    )
}
