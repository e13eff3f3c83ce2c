//! Recurrent layers (LSTM, GRU, vanilla RNN) on raw `f32` buffers: forward with a tape, and the
//! handwritten backward.
//!
//! Weights are `w_ih: [E, G·H]`, `w_hh: [H, G·H]` with `G` gate blocks per unit (LSTM 4 in Keras'
//! order i, f, c, o; GRU 3 in order z, r, h; RNN 1), row-major. The bias is `[G·H]`, except for
//! the GRU (Keras' `reset_after = True`), whose bias is `[2·G·H]`: input bias, then recurrent
//! bias. Inputs are batch-first `[B, T, E]`.
//!
//! * One matrix product projects the inputs of all time steps; each step then adds one small
//!   product with the recurrent weights (`gemm`, which beats a hand-blocked loop even at this
//!   size) and applies the gates in fused loops.
//! * `step_mask[b, t] = 0` marks padding: the state is carried unchanged through it, so the
//!   final state is the state at each review's last real token, whichever side the padding is.
//! * `recurrent_mask[b, :]` multiplies `h_{t-1}` before the recurrent product (Keras'
//!   `recurrent_dropout`: one mask per sequence, reused at every step).
//! * Rows of the batch are independent, so the batch is split into one chunk per thread and
//!   each chunk runs forward and backward alone; only the weight gradients are summed.
//! * Inference (a forward pass without a tape) trades the last digits of f32 for speed, within
//!   about 1e-5 of the training forward pass: the recurrent product runs in split bf16 on AMX
//!   tiles where the CPU has them ([`super::amx`]), and the LSTM's gates and state update are
//!   one AVX-512 pass with cheaper nonlinearities. Training's passes are unchanged;
//!   [`InferencePrecision::F32`] gives inference exactly their arithmetic.
//!
//! The module is split by job: `forward` ([`recurrent_forward`], with or without a tape),
//! `backward` ([`recurrent_backward`], the handwritten gradients), `cells` (each cell's
//! per-row vector loops, forward and backward), `precision` (what inference may trade, and
//! [`InferenceKernels`]), `tape` (what the forward pass keeps) and `shapes` (the checks every
//! entry point makes).

mod backward;
mod cells;
mod forward;
mod precision;
mod shapes;
mod tape;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use backward::recurrent_backward;
pub use forward::recurrent_forward;
pub use precision::{InferenceKernels, InferencePrecision, Pass};
pub use tape::RecurrentTape;

/// The recurrent cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CellKind {
    /// Long short-term memory (Hochreiter & Schmidhuber, 1997), Keras' gate order i, f, c, o.
    #[default]
    Lstm,
    /// Gated recurrent unit, Keras' `reset_after = True` variant (gates z, r, h).
    Gru,
    /// Vanilla RNN: `h_t = tanh(W_x x_t + W_h h_{t-1} + b)`.
    Rnn,
}

impl CellKind {
    /// Gate blocks per hidden unit (4 for LSTM, 3 for GRU, 1 for the RNN).
    pub fn gates(self) -> usize {
        match self {
            CellKind::Lstm => 4,
            CellKind::Gru => 3,
            CellKind::Rnn => 1,
        }
    }

    /// Length of the bias for `hidden` units (the GRU keeps input and recurrent biases apart).
    /// Panics if it overflows `usize`.
    pub fn bias_len(self, hidden: usize) -> usize {
        let blocks = match self {
            CellKind::Gru => 2 * 3,
            other => other.gates(),
        };
        super::product(&[blocks, hidden], "bias")
    }

    /// Trainable parameters of one direction of one layer.
    pub fn param_count(self, input: usize, hidden: usize) -> usize {
        let g = self.gates() * hidden;
        input * g + hidden * g + self.bias_len(hidden)
    }

    /// Keras' layer class name.
    pub fn keras_name(self) -> &'static str {
        match self {
            CellKind::Lstm => "LSTM",
            CellKind::Gru => "GRU",
            CellKind::Rnn => "SimpleRNN",
        }
    }
}

/// Sizes of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecurrentDims {
    /// Sequences in the batch (`B`).
    pub batch: usize,
    /// Time steps (`T`).
    pub steps: usize,
    /// Input features per step (`E`).
    pub input: usize,
    /// Hidden units (`H`).
    pub hidden: usize,
}

/// The weights of one direction of one layer.
#[derive(Debug, Clone, Copy)]
pub struct RecurrentWeights<'a> {
    /// `[E, G·H]`.
    pub w_ih: &'a [f32],
    /// `[H, G·H]`.
    pub w_hh: &'a [f32],
    /// `[G·H]` (`[2·G·H]` for the GRU).
    pub bias: &'a [f32],
}

/// The order in which a layer reads its sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// From the first step to the last.
    #[default]
    Forward,
    /// From the last step to the first (the second half of a bidirectional layer).
    Reverse,
}

impl Direction {
    /// The time steps `0..steps` in processing order.
    pub fn order(self, steps: usize) -> Vec<usize> {
        match self {
            Direction::Forward => (0..steps).collect(),
            Direction::Reverse => (0..steps).rev().collect(),
        }
    }

    /// The step processed last, where the final state is read (`steps` must be positive).
    pub fn last_step(self, steps: usize) -> usize {
        match self {
            Direction::Forward => steps - 1,
            Direction::Reverse => 0,
        }
    }
}

/// Which hidden states a call returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StateOutput {
    /// The state after every step, `[B, T, H]`.
    #[default]
    EveryStep,
    /// Only the state after the last step processed, `[B, 1, H]` (and its gradient alone in
    /// the backward pass): a final-state readout needs nothing else.
    FinalOnly,
}

impl StateOutput {
    /// Steps in the output of a call over `steps` steps.
    pub fn steps(self, steps: usize) -> usize {
        match self {
            StateOutput::EveryStep => steps,
            StateOutput::FinalOnly => 1,
        }
    }
}

/// What `x` of [`RecurrentInputs`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InputForm<'a> {
    /// The step inputs, `[B, T, E]`, projected by `w_ih` inside the call.
    #[default]
    Features,
    /// The input projection `x·w_ih + input bias` already, `[B, T, G·H]` (so `input` is
    /// `G·H`, `w_ih` is unused and may be empty, and only the GRU's recurrent bias is read
    /// from `bias`). Forward only, no tape: inference precomputes it once per word of the
    /// vocabulary instead of once per token.
    Projected,
    /// A table of projected inputs, one `G·H` row per word (`[V, G·H]`): step `t` of
    /// sequence `b` reads row `ids[b·T + t]`. Forward only, no tape: inference looks the
    /// projections up instead of materialising `[B, T, G·H]`.
    Lookup(&'a [u32]),
}

impl<'a> InputForm<'a> {
    /// Whether `x` is already projected (read in place or looked up).
    pub fn is_projected(self) -> bool {
        !matches!(self, InputForm::Features)
    }

    /// The ids of a lookup.
    pub fn ids(self) -> Option<&'a [u32]> {
        match self {
            InputForm::Lookup(ids) => Some(ids),
            _ => None,
        }
    }
}

/// The per-call inputs that are not weights.
#[derive(Debug, Clone, Copy)]
pub struct RecurrentInputs<'a> {
    /// The inputs, as [`InputForm`] says: `[B, T, E]` features by default.
    pub x: &'a [f32],
    /// What `x` holds.
    pub form: InputForm<'a>,
    /// `[B, T]`: 1 for a real token, 0 for padding.
    pub step_mask: &'a [f32],
    /// `[B, H]` multipliers of the previous hidden state, or `None` for no recurrent dropout.
    pub recurrent_mask: Option<&'a [f32]>,
    /// The order of the steps.
    pub direction: Direction,
    /// Which states are returned.
    pub output: StateOutput,
}

/// Gradients of one call.
#[derive(Debug, Clone, PartialEq)]
pub struct RecurrentGrads {
    /// `[B, T, E]`.
    pub dx: Vec<f32>,
    /// `[E, G·H]`.
    pub dw_ih: Vec<f32>,
    /// `[H, G·H]`.
    pub dw_hh: Vec<f32>,
    /// Shaped like the bias.
    pub dbias: Vec<f32>,
}

/// Splits `0..batch` into at most one contiguous chunk per rayon thread: the rows of each.
fn chunk_rows(batch: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    batch.div_ceil(threads).max(1)
}

/// The parts of the bias: added to the input projection, and (GRU) to the recurrent product.
fn split_bias(cell: CellKind, bias: &[f32], g: usize) -> (&[f32], &[f32]) {
    match cell {
        CellKind::Gru => bias.split_at(g),
        _ => (bias, &[]),
    }
}

/// The sizes of one batch chunk: `r` rows of `t_len` steps, `e` inputs, `h` units, `g`
/// gate columns.
#[derive(Debug, Clone, Copy)]
struct ChunkDims {
    r: usize,
    t_len: usize,
    e: usize,
    h: usize,
    g: usize,
}
