//! The fused recurrent layers as a Burn backend extension, with a handwritten backward; the
//! embedding lookup with its input-dropout mask, whose backward runs on every core; and a
//! single-pass Adam update.
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
use burn::backend::ndarray::NdArrayTensor;
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{
    Autodiff, Backend, Dispatch, DispatchDevice, Flex, NdArray, TensorMetadata, backend_extension,
};
use burn::tensor::{Device, Int, Tensor, TensorData, try_read_sync};

use crate::kernels::adam::{AdamStep, adam_update};
use crate::kernels::embedding::{EmbeddingDims, embedding_backward, embedding_forward};
use crate::kernels::recurrent::{
    CellKind, InferencePrecision, Pass, RecurrentDims, RecurrentInputs, RecurrentTape,
    RecurrentWeights, recurrent_backward, recurrent_forward,
};

/// Backends that run the fused recurrent kernels.
#[backend_extension(Flex, NdArray, Autodiff)]
pub trait FusedRecurrentBackend: Backend {
    /// A whole recurrent layer over a batch: the hidden state after every step.
    ///
    /// ## Parameters
    /// - `x`: `[batch, steps, input]`
    /// - `w_ih`: `[input, G·hidden]`, `w_hh`: `[hidden, G·hidden]`, `bias`: see
    ///   [`CellKind::bias_len`]; gates in Keras' order
    /// - `step_mask`: `[batch, steps]`, 1 for a real token and 0 for padding (state carried)
    /// - `recurrent_mask`: `[batch, hidden]`, multiplies the previous hidden state
    /// - `reverse`: read from the last step to the first
    /// - `final_only`: return (and differentiate) only the state after the last step
    ///   processed
    /// - `cell`: LSTM, GRU or vanilla RNN
    /// - `precision`: how a pass without a tape (inference) computes; a tracked pass is f32
    ///
    /// ## Returns
    /// `[batch, steps, hidden]`, or `[batch, 1, hidden]` with `final_only`
    #[allow(clippy::too_many_arguments)]
    fn fused_recurrent(
        x: FloatTensor<Self>,
        w_ih: FloatTensor<Self>,
        w_hh: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        step_mask: FloatTensor<Self>,
        recurrent_mask: FloatTensor<Self>,
        reverse: bool,
        final_only: bool,
        cell: CellKind,
        precision: InferencePrecision,
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

/// A tensor's values on the host: borrowed from a CPU tensor whose storage is contiguous,
/// copied otherwise.
#[derive(Debug)]
pub enum HostBuf {
    /// A vector of values.
    Owned(Vec<f32>),
    /// A dense Flex tensor, read in place.
    Flex(FloatTensor<Flex>),
    /// A contiguous `f32` ndarray tensor, read in place.
    NdArray(FloatTensor<NdArray>),
}

impl HostBuf {
    /// The values.
    pub fn as_slice(&self) -> &[f32] {
        match self {
            HostBuf::Owned(v) => v,
            HostBuf::Flex(t) => t.storage::<f32>(),
            HostBuf::NdArray(t) => {
                ndarray_slice(t).expect("only contiguous f32 tensors are kept in place")
            }
        }
    }
}

/// The values of an ndarray tensor without a copy, if it holds `f32` in standard layout.
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
    reverse: bool,
    final_only: bool,
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
        (reverse, final_only): (bool, bool),
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
            reverse,
            final_only,
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
            reverse: self.reverse,
            projected: false,
            ids: None,
            final_only: self.final_only,
        }
    }

    fn output_shape(&self) -> [usize; 3] {
        let steps = if self.final_only { 1 } else { self.dims.steps };
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
    reverse_and_final_only: (bool, bool),
    cell: CellKind,
    precision: InferencePrecision,
) -> FloatTensor<B> {
    let device = t.x.device();
    RecurrentCall::read::<B>(t, reverse_and_final_only, cell, precision).infer::<B>(&device)
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
                reverse: bool,
                final_only: bool,
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
                inference::<Self>(t, (reverse, final_only), cell, precision)
            }
        }
    };
}

cpu_recurrent_backend!(Flex);
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
    reverse_and_final_only: (bool, bool),
    cell: CellKind,
) -> (Arc<RecurrentSaved<B::Device>>, FloatTensor<B>) {
    let device = t.x.device();
    // A tracked pass keeps its tape and computes in f32: no inference precision applies.
    let call = RecurrentCall::read::<B>(t, reverse_and_final_only, cell, InferencePrecision::F32);
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
        reverse: bool,
        final_only: bool,
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
                let (saved, output) = tracked::<B>(t, (reverse, final_only), cell);
                prep.finish(saved, output)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(inference::<B>(t, (reverse, final_only), cell, precision))
            }
        }
    }
}

/// True if `device` runs the fused kernels (the CPU backends, with or without autodiff).
pub fn has_fused_kernels(device: &Device) -> bool {
    matches!(
        device.clone().inner().as_dispatch(),
        DispatchDevice::Flex(_) | DispatchDevice::NdArray(_)
    )
}

/// Tensor-level entry to [`FusedRecurrentBackend::fused_recurrent`]; see it for the shapes.
/// Only for devices where [`has_fused_kernels`] is true.
#[allow(clippy::too_many_arguments)]
pub fn fused_recurrent(
    x: Tensor<3>,
    w_ih: Tensor<2>,
    w_hh: Tensor<2>,
    bias: Tensor<1>,
    step_mask: Tensor<2>,
    recurrent_mask: Tensor<2>,
    (reverse, final_only): (bool, bool),
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
        reverse,
        final_only,
        cell,
        precision,
    ))
}

/// Backends that run a recurrent layer on inputs looked up from a table of projections.
#[backend_extension(Flex, NdArray)]
pub trait FusedLookupBackend: Backend {
    /// A whole recurrent layer over a batch, forward only, its input projections read from
    /// `table` (`[num_words, G·hidden]`, `embedding·w_ih + input bias`) at the batch's
    /// `tokens` (`[batch, steps]`) instead of being materialised. Other arguments as in
    /// [`FusedRecurrentBackend::fused_recurrent`] (the GRU reads its recurrent bias from
    /// `bias`); no recurrent dropout. With `final_only`, only the state after the last step
    /// processed is returned.
    ///
    /// ## Returns
    /// `[batch, steps, hidden]`, or `[batch, 1, hidden]` with `final_only`
    #[allow(clippy::too_many_arguments)]
    fn fused_recurrent_lookup(
        table: FloatTensor<Self>,
        tokens: IntTensor<Self>,
        w_hh: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        step_mask: FloatTensor<Self>,
        reverse: bool,
        final_only: bool,
        cell: CellKind,
        precision: InferencePrecision,
    ) -> FloatTensor<Self>;
}

/// The values of an id tensor, as table rows.
fn host_ids<B: Backend>(tokens: IntTensor<B>) -> Vec<u32> {
    try_read_sync(B::int_into_data(tokens))
        .expect("a CPU tensor is readable at once")
        .expect("a CPU tensor reads without error")
        .convert::<i64>()
        .iter::<i64>()
        .map(|id| id as u32)
        .collect()
}

/// The lookup on a CPU backend.
fn lookup<B: HostTensors>(
    (table, tokens): (FloatTensor<B>, IntTensor<B>),
    (w_hh, bias, step_mask): (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>),
    (reverse, final_only): (bool, bool),
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
        reverse,
        projected: true,
        ids: Some(&ids),
        final_only,
    };
    let (out, _) = recurrent_forward(cell, dims, weights, inputs, Pass::Inference(precision));
    let out_steps = if final_only { 1 } else { steps };
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
                reverse: bool,
                final_only: bool,
                cell: CellKind,
                precision: InferencePrecision,
            ) -> FloatTensor<Self> {
                lookup::<Self>(
                    (table, tokens),
                    (w_hh, bias, step_mask),
                    (reverse, final_only),
                    cell,
                    precision,
                )
            }
        }
    };
}

cpu_lookup_backend!(Flex);
cpu_lookup_backend!(NdArray);

/// Tensor-level entry to [`FusedLookupBackend::fused_recurrent_lookup`], for devices where
/// [`has_fused_kernels`] is true. Inference only: the inputs are taken without autodiff, and
/// the output is a constant on the inputs' device.
pub fn fused_recurrent_lookup(
    table: Tensor<2>,
    tokens: Tensor<2, Int>,
    (w_hh, bias): (Tensor<2>, Tensor<1>),
    step_mask: Tensor<2>,
    (reverse, final_only): (bool, bool),
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
            reverse,
            final_only,
            cell,
            precision,
        ));
    // Later layers and the output layer may be on an autodiff device.
    if autodiff { out.autodiff() } else { out }
}

/// Backends that look up word vectors and apply their input-dropout mask in one op, with the
/// table's gradient scattered on every core ([`crate::kernels::embedding`]).
#[backend_extension(Flex, NdArray, Autodiff)]
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
/// [`has_fused_kernels`] is true; see it for the shapes.
pub fn fused_embedding(table: Tensor<2>, tokens: Tensor<2, Int>, mask: Tensor<2>) -> Tensor<3> {
    Tensor::from_dispatch(<Dispatch as FusedEmbeddingBackend>::fused_embedding(
        table.into_dispatch(),
        tokens.into_dispatch(),
        mask.into_dispatch(),
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
    /// One Adam update of one parameter (see [`crate::kernels::adam::adam_update`]).
    fn fused_adam(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        step: AdamStep,
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

/// Tensor-level entry to [`FusedAdamBackend::fused_adam`], for devices where
/// [`has_fused_kernels`] is true. Returns `(param, moment_1, moment_2)`.
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
