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

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::amx::{self, SplitLhs, SplitRhs};
use super::gemm::{Layout, matmul, matmul_strided_rows};
use super::math::{dispatch_simd, flush, sigmoid, tanh};
use super::zeroed;

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
    pub fn bias_len(self, hidden: usize) -> usize {
        match self {
            CellKind::Gru => 2 * 3 * hidden,
            other => other.gates() * hidden,
        }
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

/// The per-call inputs that are not weights.
#[derive(Debug, Clone, Copy)]
pub struct RecurrentInputs<'a> {
    /// `[B, T, E]`.
    pub x: &'a [f32],
    /// `[B, T]`: 1 for a real token, 0 for padding.
    pub step_mask: &'a [f32],
    /// `[B, H]` multipliers of the previous hidden state, or `None` for no recurrent dropout.
    pub recurrent_mask: Option<&'a [f32]>,
    /// Read the sequence from its last step to its first.
    pub reverse: bool,
    /// `x` is already the input projection `x·w_ih + input bias`, `[B, T, G·H]` (so `input`
    /// is `G·H`, `w_ih` is unused and may be empty, and only the GRU's recurrent bias is read
    /// from `bias`). Forward only, no tape: inference precomputes it once per word of the
    /// vocabulary instead of once per token.
    pub projected: bool,
    /// With `projected`: `x` is a table of projected inputs, one `G·H` row per word
    /// (`[V, G·H]`), and step `t` of sequence `b` reads row `ids[b·T + t]`. Forward only, no
    /// tape: inference looks the projections up instead of materialising `[B, T, G·H]`.
    pub ids: Option<&'a [u32]>,
    /// Return only the state after the last step processed, `[B, 1, H]` (and take its
    /// gradient alone in the backward pass): a final-state readout needs nothing else.
    pub final_only: bool,
}

/// What the backward pass needs from the forward pass, per batch chunk.
#[derive(Debug, Clone, Default)]
pub struct RecurrentTape {
    chunks: Vec<ChunkTape>,
}

/// Everything is batch-major like the input, so that the large products read and write the
/// callers' buffers directly; one time step's rows are `T·width` apart.
#[derive(Debug, Clone, Default)]
struct ChunkTape {
    /// `[r, T, G·H]` gate activations (RNN: the new state).
    gates: Vec<f32>,
    /// `[r, T, H]`: LSTM cell state after each step; GRU recurrent part of the candidate.
    extra: Vec<f32>,
    /// `[r, T, H]`: LSTM tanh of the cell state; GRU previous state.
    extra2: Vec<f32>,
    /// `[r, T, H]` previous hidden state times the recurrent mask.
    h_prev: Vec<f32>,
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

/// Splits `0..batch` into at most one contiguous chunk per rayon thread.
fn chunk_rows(batch: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    batch.div_ceil(threads).max(1)
}

/// Time steps in processing order.
fn order(steps: usize, reverse: bool) -> Vec<usize> {
    if reverse {
        (0..steps).rev().collect()
    } else {
        (0..steps).collect()
    }
}

/// The parts of the bias: added to the input projection, and (GRU) to the recurrent product.
fn split_bias(cell: CellKind, bias: &[f32], g: usize) -> (&[f32], &[f32]) {
    match cell {
        CellKind::Gru => bias.split_at(g),
        _ => (bias, &[]),
    }
}

#[derive(Debug, Clone, Copy)]
struct ChunkDims {
    r: usize,
    t_len: usize,
    e: usize,
    h: usize,
    g: usize,
}

/// How a forward pass without a tape (inference) computes. The caller chooses (e.g. on
/// [`crate::Predictor`]); nothing in this crate reads the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InferencePrecision {
    /// Split-bf16 AMX products and the fused AVX-512 LSTM step where the CPU has them: within
    /// about 1e-5 of f32, and faster.
    #[default]
    Fast,
    /// Exactly the arithmetic of the forward pass with a tape (f32 throughout).
    F32,
}

/// What a forward pass is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// Keep the tape for [`recurrent_backward`]; f32 throughout.
    Training,
    /// Keep nothing, computing at the precision given.
    Inference(InferencePrecision),
}

/// Runs the layer; returns the hidden state after every step, `[B, T, H]` (carried through
/// padding), and for [`Pass::Training`] the tape for [`recurrent_backward`]. Inference's
/// result is within about 1e-5 of training's, or equal to it with
/// [`InferencePrecision::F32`] (see the module's notes on inference).
pub fn recurrent_forward(
    cell: CellKind,
    dims: RecurrentDims,
    weights: RecurrentWeights<'_>,
    inputs: RecurrentInputs<'_>,
    pass: Pass,
) -> (Vec<f32>, Option<RecurrentTape>) {
    let keep_tape = pass == Pass::Training;
    let RecurrentDims {
        batch,
        steps: t_len,
        input: e,
        hidden: h,
    } = dims;
    check_shapes(cell, dims, &weights, &inputs, true);
    assert!(
        !(inputs.projected && keep_tape),
        "a projected input is forward only"
    );
    let out_steps = if inputs.final_only { 1 } else { t_len };
    let mut out = zeroed(batch * out_steps * h);
    if batch == 0 || t_len == 0 {
        return (out, keep_tape.then(RecurrentTape::default));
    }
    let rows = chunk_rows(batch);
    let g = cell.gates() * h;
    let split_w_hh = match pass {
        Pass::Inference(InferencePrecision::Fast) if amx::supports(g) => {
            Some(SplitRhs::new(weights.w_hh, h, g))
        }
        _ => None,
    };
    let mode = match pass {
        Pass::Training => ForwardMode::Tape,
        Pass::Inference(InferencePrecision::F32) => ForwardMode::ExactInference,
        Pass::Inference(InferencePrecision::Fast) => ForwardMode::Inference(split_w_hh.as_ref()),
    };
    let chunks: Vec<ChunkTape> = out
        .par_chunks_mut(rows * out_steps * h)
        .enumerate()
        .map(|(ci, out_chunk)| {
            let b0 = ci * rows;
            let r = out_chunk.len() / (out_steps * h);
            // A lookup table is shared by every chunk; its ids are per row.
            let (x, ids) = match inputs.ids {
                Some(ids) => (inputs.x, Some(&ids[b0 * t_len..(b0 + r) * t_len])),
                None => (&inputs.x[b0 * t_len * e..(b0 + r) * t_len * e], None),
            };
            let mask = &inputs.step_mask[b0 * t_len..(b0 + r) * t_len];
            let rec = inputs.recurrent_mask.map(|m| &m[b0 * h..(b0 + r) * h]);
            forward_chunk(
                cell,
                ChunkDims { r, t_len, e, h, g },
                &weights,
                (x, ids, mask, rec),
                (inputs.reverse, inputs.projected),
                (out_chunk, inputs.final_only),
                mode,
            )
        })
        .collect();
    (out, keep_tape.then_some(RecurrentTape { chunks }))
}

/// What a chunk's forward pass keeps, and how it multiplies by the recurrent weights.
#[derive(Debug, Clone, Copy)]
enum ForwardMode<'a> {
    /// Training: the tape is kept; f32 products throughout.
    Tape,
    /// Inference: no tape; the recurrent product in split bf16 on AMX tiles when the
    /// weights are given split, and the fused LSTM step (within about 1e-5 of f32, faster).
    Inference(Option<&'a SplitRhs>),
    /// Inference with exactly the arithmetic of [`ForwardMode::Tape`], keeping nothing.
    ExactInference,
}

/// `x` (or the lookup table), the ids for a lookup, the step mask and the recurrent mask.
type ChunkInputs<'a> = (&'a [f32], Option<&'a [u32]>, &'a [f32], Option<&'a [f32]>);

fn forward_chunk(
    cell: CellKind,
    d: ChunkDims,
    w: &RecurrentWeights<'_>,
    (x, ids, mask, rec): ChunkInputs<'_>,
    (reverse, projected): (bool, bool),
    (out, final_only): (&mut [f32], bool),
    mode: ForwardMode<'_>,
) -> ChunkTape {
    let ChunkDims { r, t_len, e, h, g } = d;
    let keep_tape = matches!(mode, ForwardMode::Tape);
    let fast_lstm_inference = cell == CellKind::Lstm
        && matches!(mode, ForwardMode::Inference(_))
        && lstm_inference_usable(h);
    // The split state for the AMX product (zero, like the initial state).
    let mut split_h = match mode {
        ForwardMode::Inference(Some(w_hh)) => Some((w_hh, SplitLhs::new(r, h))),
        _ => None,
    };
    let (input_bias, recurrent_bias) = split_bias(cell, w.bias, g);
    // A projected input is read row by row where it lies.
    let mut gates = if projected {
        Vec::new()
    } else {
        // Input projection of every step at once, bias included.
        let mut gates = Vec::with_capacity(t_len * r * g);
        for _ in 0..t_len * r {
            gates.extend_from_slice(input_bias);
        }
        matmul(
            &mut gates,
            x,
            Layout::Normal,
            w.w_ih,
            Layout::Normal,
            t_len * r,
            e,
            g,
            true,
        );
        gates
    };

    let tape_len = if keep_tape { t_len * r * h } else { 0 };
    let extras = if cell == CellKind::Rnn { 0 } else { tape_len };
    let mut extra = vec![0.0f32; extras];
    let mut extra2 = vec![0.0f32; extras];
    let mut h_prev_tape = vec![0.0f32; tape_len];
    let mut hs = vec![0.0f32; r * h];
    let mut cs = vec![0.0f32; r * h];
    let mut hm = vec![0.0f32; r * h];
    // The AMX product writes whole blocks of rows; those past `r` stay zero.
    let hp_rows = split_h.as_ref().map_or(r, |(_, lhs)| lhs.padded_rows());
    let mut hp = vec![0.0f32; hp_rows * g];
    let mut scratch = vec![
        0.0f32;
        if !projected || cell != CellKind::Gru {
            0
        } else {
            g
        }
    ];
    for t in order(t_len, reverse) {
        match (&mut split_h, rec) {
            // Each row was split as it was computed (below).
            (Some((w_hh, lhs)), None) => amx::matmul(&mut hp, lhs, w_hh),
            (Some((w_hh, lhs)), Some(m)) => {
                mul_into(&mut hm, &hs, m);
                lhs.fill(&hm);
                amx::matmul(&mut hp, lhs, w_hh);
            }
            (None, _) => {
                match rec {
                    Some(m) => mul_into(&mut hm, &hs, m),
                    None => hm.copy_from_slice(&hs),
                }
                matmul(
                    &mut hp,
                    &hm,
                    Layout::Normal,
                    w.w_hh,
                    Layout::Normal,
                    r,
                    h,
                    g,
                    false,
                );
            }
        }
        for i in 0..r {
            let row = i * t_len + t;
            // A projected input row is read where it lies, and the LSTM's and RNN's gates are
            // formed in the recurrent product's row (no copy of the input).
            let x_row = projected.then(|| {
                let from = ids.map_or(row, |ids| ids[row] as usize);
                &x[from * g..(from + 1) * g]
            });
            // Looked-up rows are scattered over a table larger than the caches: ask for the
            // row two reviews ahead while this one is computed.
            if let Some(ids) = ids.filter(|_| i + 2 < r) {
                let ahead = ids[row + 2 * t_len] as usize;
                prefetch(&x[ahead * g..(ahead + 1) * g]);
            }
            let tape_row = row * g..(row + 1) * g;
            let hp_i = &mut hp[i * g..(i + 1) * g];
            let h_i = &mut hs[i * h..(i + 1) * h];
            let real = mask[row] != 0.0;
            let at = row * h..(row + 1) * h;
            match cell {
                CellKind::Lstm if fast_lstm_inference => {
                    // Padding carries the state: nothing to compute.
                    if real {
                        let x_in = x_row.unwrap_or_else(|| &gates[tape_row]);
                        // Split for the next step's product as it is computed.
                        let split = match (&mut split_h, rec) {
                            (Some((_, lhs)), None) => Some(lhs.row_mut(i)),
                            _ => None,
                        };
                        lstm_step_inference(hp_i, x_in, &mut cs[i * h..(i + 1) * h], h_i, split);
                    }
                }
                CellKind::Lstm => {
                    let gi: &[f32] = match x_row {
                        Some(x_row) => {
                            activate_lstm(hp_i, x_row, h);
                            hp_i
                        }
                        None => {
                            let gi = &mut gates[tape_row];
                            activate_lstm(gi, hp_i, h);
                            gi
                        }
                    };
                    let c_i = &mut cs[i * h..(i + 1) * h];
                    if real {
                        let tanh_c = keep_tape.then(|| &mut extra2[at.clone()]);
                        lstm_update(gi, c_i, h_i, tanh_c);
                    } else if keep_tape {
                        tanh_into(&mut extra2[at.clone()], c_i);
                    }
                    if keep_tape {
                        extra[at.clone()].copy_from_slice(c_i);
                    }
                }
                CellKind::Gru => {
                    let gi = match x_row {
                        Some(x_row) => {
                            scratch.copy_from_slice(x_row);
                            &mut scratch[..]
                        }
                        None => &mut gates[tape_row],
                    };
                    add_into(hp_i, recurrent_bias);
                    if keep_tape {
                        extra[at.clone()].copy_from_slice(&hp_i[2 * h..]);
                        extra2[at.clone()].copy_from_slice(h_i);
                    }
                    activate_gru(gi, hp_i, h);
                    if real {
                        gru_update(gi, h_i);
                    }
                }
                CellKind::Rnn => {
                    let gi = match x_row {
                        Some(x_row) => {
                            add_into(hp_i, x_row);
                            hp_i
                        }
                        None => {
                            let gi = &mut gates[tape_row];
                            add_into(gi, hp_i);
                            gi
                        }
                    };
                    tanh_in_place(gi);
                    if real {
                        h_i.copy_from_slice(gi);
                    }
                }
            }
            // The fused LSTM step splits the new state itself.
            if let (Some((_, lhs)), None, true, false) =
                (&mut split_h, rec, real, fast_lstm_inference)
            {
                // Split for the next step's product while the new state is in the cache.
                lhs.fill_row(i, h_i);
            }
            if !final_only {
                out[at.clone()].copy_from_slice(h_i);
            }
            if keep_tape {
                h_prev_tape[at].copy_from_slice(&hm[i * h..(i + 1) * h]);
            }
        }
    }
    if final_only {
        out.copy_from_slice(&hs);
    }
    if keep_tape {
        ChunkTape {
            gates,
            extra,
            extra2,
            h_prev: h_prev_tape,
        }
    } else {
        ChunkTape::default()
    }
}

/// Asks the CPU to bring `v` into the caches (a hint; nothing happens off x86-64).
fn prefetch(v: &[f32]) {
    #[cfg(not(target_arch = "x86_64"))]
    let _ = v;
    #[cfg(target_arch = "x86_64")]
    for line in v.chunks(16) {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: a prefetch never faults and reads nothing; the address is inside `v`.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(line.as_ptr().cast()) };
    }
}

/// Whether inference can take [`lstm_step_inference`] for rows of `h` units on this CPU.
fn lstm_inference_usable(h: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    return super::avx512::inference_usable(h);
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// One LSTM step of one row for inference: gates `act(hp + x)`, then the new `c` and `h`, in
/// one pass with nothing kept for backward, and `h` split for the AMX product into `split`
/// when given. Only called where [`lstm_inference_usable`].
fn lstm_step_inference(
    hp: &[f32],
    x: &[f32],
    c: &mut [f32],
    hs: &mut [f32],
    split: Option<&mut [u16]>,
) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the caller checked `lstm_inference_usable`, which checked the CPU's features.
    unsafe {
        super::avx512::lstm_step_inference(hp, x, c, hs, split)
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("no fused inference step off x86-64");
}

/// Adds the recurrent product `hp` to the input projection `g` and applies σ to the input,
/// forget and output gates and tanh to the cell gate, in place.
fn activate_lstm(g: &mut [f32], hp: &[f32], h: usize) {
    #[cfg(target_arch = "x86_64")]
    if super::avx512::usable(h) {
        // SAFETY: `usable` checked that the CPU has AVX-512.
        return unsafe { super::avx512::activate_lstm(g, hp, h) };
    }
    activate_lstm_portable(g, hp, h);
}

/// `c = f·c + i·g; h = o·tanh(c)` for one row, from activated gates; `tanh(c)` is also written
/// to `tanh_c` when given (the backward pass reads it).
fn lstm_update(g: &[f32], c: &mut [f32], hs: &mut [f32], tanh_c: Option<&mut [f32]>) {
    #[cfg(target_arch = "x86_64")]
    if super::avx512::usable(c.len()) {
        // SAFETY: as in `activate_lstm`.
        return unsafe { super::avx512::lstm_update(g, c, hs, tanh_c) };
    }
    lstm_update_portable(g, c, hs, tanh_c);
}

dispatch_simd! {
    fn activate_lstm_portable(g: &mut [f32], hp: &[f32], h: usize) {
        // Exactly sized slices and plain loops: bounds checks or a chained iterator would
        // defeat vectorization.
        let (g, hp) = (&mut g[..4 * h], &hp[..4 * h]);
        let (ifg, rest) = g.split_at_mut(2 * h);
        let (cg, og) = rest.split_at_mut(h);
        let (hp_if, rest) = hp.split_at(2 * h);
        let (hp_c, hp_o) = rest.split_at(h);
        for (v, &p) in ifg.iter_mut().zip(hp_if) {
            *v = sigmoid(*v + p);
        }
        for (v, &p) in og.iter_mut().zip(hp_o) {
            *v = sigmoid(*v + p);
        }
        for (v, &p) in cg.iter_mut().zip(hp_c) {
            *v = tanh(*v + p);
        }
    }
}

/// The four activated gates of one LSTM row, each exactly `h` long.
#[inline(always)]
fn lstm_gates(g: &[f32], h: usize) -> [&[f32]; 4] {
    let g = &g[..4 * h];
    [&g[..h], &g[h..2 * h], &g[2 * h..3 * h], &g[3 * h..]]
}

/// The new cell state of one unit and its tanh, from the unit's activated input, forget and
/// cell gates and its previous cell state.
#[inline(always)]
fn lstm_cell(i: f32, f: f32, g: f32, c: f32) -> (f32, f32) {
    let c_new = flush(f.mul_add(c, i * g));
    (c_new, tanh(c_new))
}

dispatch_simd! {
    fn lstm_update_portable(g: &[f32], c: &mut [f32], hs: &mut [f32], tanh_c: Option<&mut [f32]>) {
        let n = c.len();
        let [ig, fg, cg, og] = lstm_gates(g, n);
        let hs = &mut hs[..n];
        // One loop per case: a test inside the loop would keep it from vectorizing.
        match tanh_c {
            Some(tanh_c) => {
                let tanh_c = &mut tanh_c[..n];
                for j in 0..n {
                    let (c_new, tc) = lstm_cell(ig[j], fg[j], cg[j], c[j]);
                    c[j] = c_new;
                    tanh_c[j] = tc;
                    hs[j] = flush(og[j] * tc);
                }
            }
            None => {
                for j in 0..n {
                    let (c_new, tc) = lstm_cell(ig[j], fg[j], cg[j], c[j]);
                    c[j] = c_new;
                    hs[j] = flush(og[j] * tc);
                }
            }
        }
    }
}

dispatch_simd! {
    /// GRU gates of one row: `z = σ(x_z + h_z)`, `r = σ(x_r + h_r)`, `n = tanh(x_n + r·h_n)`,
    /// written over the input projection `g`; `hp` is the recurrent product with its bias.
    fn activate_gru(g: &mut [f32], hp: &[f32], h: usize) {
        let (g, hp) = (&mut g[..3 * h], &hp[..3 * h]);
        let (zr, n) = g.split_at_mut(2 * h);
        let (hp_zr, hp_n) = hp.split_at(2 * h);
        for (v, &p) in zr.iter_mut().zip(hp_zr) {
            *v = sigmoid(*v + p);
        }
        let r = &zr[h..];
        for j in 0..h {
            n[j] = tanh(r[j].mul_add(hp_n[j], n[j]));
        }
    }
}

dispatch_simd! {
    /// `h = z·h + (1 - z)·n` for one row.
    fn gru_update(g: &[f32], hs: &mut [f32]) {
        let n = hs.len();
        let z = &g[..n];
        let cand = &g[2 * n..3 * n];
        let hs = &mut hs[..n];
        for j in 0..n {
            hs[j] = flush(z[j].mul_add(hs[j] - cand[j], cand[j]));
        }
    }
}

dispatch_simd! {
    fn tanh_in_place(v: &mut [f32]) {
        for x in v.iter_mut() {
            *x = flush(tanh(*x));
        }
    }
}

dispatch_simd! {
    fn tanh_into(dst: &mut [f32], src: &[f32]) {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = tanh(s);
        }
    }
}

dispatch_simd! {
    fn mul_into(dst: &mut [f32], a: &[f32], b: &[f32]) {
        for ((d, &x), &y) in dst.iter_mut().zip(a).zip(b) {
            *d = flush(x * y);
        }
    }
}

/// Backward pass: gradients of the inputs and weights given `d_out = ∂L/∂out`, `[B, T, H]`
/// (`[B, 1, H]` with `final_only`).
/// `inputs` are the forward pass' (`x` is read for the input weights' gradient); not a
/// projected input.
pub fn recurrent_backward(
    cell: CellKind,
    dims: RecurrentDims,
    weights: RecurrentWeights<'_>,
    inputs: RecurrentInputs<'_>,
    tape: &RecurrentTape,
    d_out: &[f32],
) -> RecurrentGrads {
    let RecurrentDims {
        batch,
        steps: t_len,
        input: e,
        hidden: h,
    } = dims;
    assert!(!inputs.projected, "a projected input is forward only");
    check_shapes(cell, dims, &weights, &inputs, true);
    let out_steps = if inputs.final_only { 1 } else { t_len };
    assert_eq!(d_out.len(), batch * out_steps * h, "d_out shape");
    let g = cell.gates() * h;
    let mut dx = zeroed(batch * t_len * e);
    let mut grads = RecurrentGrads {
        dx: Vec::new(),
        dw_ih: vec![0.0; e * g],
        dw_hh: vec![0.0; h * g],
        dbias: vec![0.0; weights.bias.len()],
    };
    if batch == 0 || t_len == 0 {
        grads.dx = dx;
        return grads;
    }
    let rows = chunk_rows(batch);
    // The per-step products read `w_hhᵀ`; stored transposed, the matrix product would repack
    // it at every step.
    let mut w_hh_t = vec![0.0f32; g * h];
    for (k, row) in weights.w_hh.chunks_exact(g).enumerate() {
        for (j, &v) in row.iter().enumerate() {
            w_hh_t[j * h + k] = v;
        }
    }
    let partials: Vec<ChunkGrads> = dx
        .par_chunks_mut(rows * t_len * e)
        .zip(tape.chunks.par_iter())
        .enumerate()
        .map(|(ci, (dx_chunk, chunk_tape))| {
            let b0 = ci * rows;
            let r = dx_chunk.len() / (t_len * e);
            let mask = &inputs.step_mask[b0 * t_len..(b0 + r) * t_len];
            let rec = inputs.recurrent_mask.map(|m| &m[b0 * h..(b0 + r) * h]);
            let d_out = &d_out[b0 * out_steps * h..(b0 + r) * out_steps * h];
            let x = &inputs.x[b0 * t_len * e..(b0 + r) * t_len * e];
            backward_chunk(
                cell,
                ChunkDims { r, t_len, e, h, g },
                (&weights, &w_hh_t),
                (chunk_tape, x),
                (mask, rec),
                inputs.reverse,
                (d_out, inputs.final_only),
                dx_chunk,
            )
        })
        .collect();
    // Summed in chunk order, so the result does not depend on thread scheduling.
    for p in partials {
        add_into(&mut grads.dw_ih, &p.dw_ih);
        add_into(&mut grads.dw_hh, &p.dw_hh);
        add_into(&mut grads.dbias, &p.dbias);
    }
    grads.dx = dx;
    grads
}

struct ChunkGrads {
    dw_ih: Vec<f32>,
    dw_hh: Vec<f32>,
    dbias: Vec<f32>,
}

#[allow(clippy::too_many_arguments)]
fn backward_chunk(
    cell: CellKind,
    d: ChunkDims,
    (w, w_hh_t): (&RecurrentWeights<'_>, &[f32]),
    (tape, x): (&ChunkTape, &[f32]),
    (mask, rec): (&[f32], Option<&[f32]>),
    reverse: bool,
    (d_out, final_only): (&[f32], bool),
    dx: &mut [f32],
) -> ChunkGrads {
    let ChunkDims { r, t_len, e, h, g } = d;
    // Gradients of the input projection; the GRU's recurrent product has its own.
    let mut dxp = vec![0.0f32; t_len * r * g];
    let mut dhp = if cell == CellKind::Gru {
        vec![0.0f32; t_len * r * g]
    } else {
        Vec::new()
    };
    let mut dh = vec![0.0f32; r * h];
    let mut dc = vec![0.0f32; r * h];
    let mut dh_direct = vec![0.0f32; r * h];
    let mut dh_rec = vec![0.0f32; r * h];
    let zeros = vec![0.0f32; h];
    let steps = order(t_len, reverse);
    for (pos, &t) in steps.iter().enumerate().rev() {
        let prev_t = pos.checked_sub(1).map(|p| steps[p]);
        for i in 0..r {
            let step = i * t_len + t;
            let at = step * h..(step + 1) * h;
            let dh_i = &mut dh[i * h..(i + 1) * h];
            if !final_only {
                add_into(dh_i, &d_out[at.clone()]);
            } else if pos + 1 == t_len {
                // The final state's gradient enters at the last step processed.
                add_into(dh_i, &d_out[i * h..(i + 1) * h]);
            }
            if mask[step] == 0.0 {
                // Padding: the state passed through unchanged, and so does its gradient.
                continue;
            }
            let row = step * g..(step + 1) * g;
            let gates = &tape.gates[row.clone()];
            match cell {
                CellKind::Lstm => {
                    let c_prev = match prev_t {
                        Some(p) => &tape.extra[(i * t_len + p) * h..(i * t_len + p + 1) * h],
                        None => &zeros[..],
                    };
                    lstm_grads(
                        &mut dxp[row],
                        gates,
                        &tape.extra2[at],
                        c_prev,
                        dh_i,
                        &mut dc[i * h..(i + 1) * h],
                    );
                }
                CellKind::Gru => gru_grads(
                    &mut dxp[row.clone()],
                    &mut dhp[row],
                    gates,
                    &tape.extra[at.clone()],
                    &tape.extra2[at],
                    dh_i,
                    &mut dh_direct[i * h..(i + 1) * h],
                ),
                CellKind::Rnn => rnn_grads(&mut dxp[row], gates, dh_i),
            }
        }
        // ∂L/∂h_{t-1} through the recurrent weights, for the rows that took a real step.
        let d_rec = if cell == CellKind::Gru { &dhp } else { &dxp };
        matmul_strided_rows(
            &mut dh_rec,
            &d_rec[t * g..],
            t_len * g,
            w_hh_t,
            Layout::Normal,
            (r, g, h),
            false,
        );
        for i in 0..r {
            if mask[i * t_len + t] != 0.0 {
                let src = &dh_rec[i * h..(i + 1) * h];
                let dst = &mut dh[i * h..(i + 1) * h];
                match rec {
                    Some(m) => mul_into(dst, src, &m[i * h..(i + 1) * h]),
                    None => flush_into(dst, src),
                }
                if cell == CellKind::Gru {
                    add_into(dst, &dh_direct[i * h..(i + 1) * h]);
                }
            }
        }
    }
    // Weight gradients in a few large products over all steps.
    let n = t_len * r;
    let d_rec_all = if cell == CellKind::Gru { &dhp } else { &dxp };
    let mut dw_hh = vec![0.0f32; h * g];
    matmul(
        &mut dw_hh,
        &tape.h_prev,
        Layout::Transposed,
        d_rec_all,
        Layout::Normal,
        h,
        n,
        g,
        false,
    );
    let column_sums = |m: &[f32]| {
        let mut sums = vec![0.0f32; g];
        for row in m.chunks_exact(g) {
            add_into(&mut sums, row);
        }
        sums
    };
    let recurrent_dbias = if cell == CellKind::Gru {
        column_sums(&dhp)
    } else {
        Vec::new()
    };
    let mut dw_ih = vec![0.0f32; e * g];
    matmul(
        &mut dw_ih,
        x,
        Layout::Transposed,
        &dxp,
        Layout::Normal,
        e,
        n,
        g,
        false,
    );
    let mut dbias = column_sums(&dxp);
    dbias.extend(recurrent_dbias);
    matmul(
        dx,
        &dxp,
        Layout::Normal,
        w.w_ih,
        Layout::Transposed,
        n,
        g,
        e,
        false,
    );
    ChunkGrads {
        dw_ih,
        dw_hh,
        dbias,
    }
}

dispatch_simd! {
    /// LSTM gate pre-activation gradients of one row; updates `dc` to `∂L/∂c_{t-1}`.
    fn lstm_grads(
        dg: &mut [f32],
        gates: &[f32],
        tanh_c: &[f32],
        c_prev: &[f32],
        dh: &[f32],
        dc: &mut [f32],
    ) {
        let n = dh.len();
        let [ig, fg, cg, og] = lstm_gates(gates, n);
        let (tanh_c, c_prev, dc) = (&tanh_c[..n], &c_prev[..n], &mut dc[..n]);
        let dg = &mut dg[..4 * n];
        let (d_i, rest) = dg.split_at_mut(n);
        let (d_f, rest) = rest.split_at_mut(n);
        let (d_c, d_o) = rest.split_at_mut(n);
        for j in 0..n {
            let tc = tanh_c[j];
            let dct = dh[j] * og[j] * (1.0 - tc * tc) + dc[j];
            d_o[j] = flush(dh[j] * tc * og[j] * (1.0 - og[j]));
            d_i[j] = flush(dct * cg[j] * ig[j] * (1.0 - ig[j]));
            d_f[j] = flush(dct * c_prev[j] * fg[j] * (1.0 - fg[j]));
            d_c[j] = flush(dct * ig[j] * (1.0 - cg[j] * cg[j]));
            dc[j] = flush(dct * fg[j]);
        }
    }
}

dispatch_simd! {
    /// GRU gradients of one row: of the input projection (`dxp`) and of the recurrent product
    /// (`dhp`, which differs in the candidate block by the reset gate), and the part of
    /// `∂L/∂h_{t-1}` that goes around the weights (`z·dh`).
    fn gru_grads(
        dxp: &mut [f32],
        dhp: &mut [f32],
        gates: &[f32],
        hp_n: &[f32],
        h_prev: &[f32],
        dh: &[f32],
        dh_direct: &mut [f32],
    ) {
        let n = dh.len();
        let (gates, dxp, dhp) = (&gates[..3 * n], &mut dxp[..3 * n], &mut dhp[..3 * n]);
        let (hp_n, h_prev, dh_direct) = (&hp_n[..n], &h_prev[..n], &mut dh_direct[..n]);
        let (z, rest) = gates.split_at(n);
        let (r, cand) = rest.split_at(n);
        let (dx_z, rest) = dxp.split_at_mut(n);
        let (dx_r, dx_n) = rest.split_at_mut(n);
        let (dh_z, rest) = dhp.split_at_mut(n);
        let (dh_r, dh_n) = rest.split_at_mut(n);
        for j in 0..n {
            let da_n = dh[j] * (1.0 - z[j]) * (1.0 - cand[j] * cand[j]);
            let da_z = dh[j] * (h_prev[j] - cand[j]) * z[j] * (1.0 - z[j]);
            let da_r = da_n * hp_n[j] * r[j] * (1.0 - r[j]);
            dx_z[j] = flush(da_z);
            dx_r[j] = flush(da_r);
            dx_n[j] = flush(da_n);
            dh_z[j] = flush(da_z);
            dh_r[j] = flush(da_r);
            dh_n[j] = flush(da_n * r[j]);
            dh_direct[j] = flush(dh[j] * z[j]);
        }
    }
}

dispatch_simd! {
    /// Vanilla RNN: `∂L/∂a = ∂L/∂h · (1 - h²)` for one row.
    fn rnn_grads(da: &mut [f32], h_new: &[f32], dh: &[f32]) {
        for ((d, &hv), &g) in da.iter_mut().zip(h_new).zip(dh) {
            *d = flush(g * (1.0 - hv * hv));
        }
    }
}

dispatch_simd! {
    fn flush_into(dst: &mut [f32], src: &[f32]) {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = flush(s);
        }
    }
}

dispatch_simd! {
    fn add_into(dst: &mut [f32], src: &[f32]) {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d += s;
        }
    }
}

fn check_shapes(
    cell: CellKind,
    d: RecurrentDims,
    w: &RecurrentWeights<'_>,
    x: &RecurrentInputs<'_>,
    with_x: bool,
) {
    let g = cell.gates() * d.hidden;
    if x.projected {
        assert_eq!(d.input, g, "a projected input has gates·hidden features");
    } else {
        assert_eq!(w.w_ih.len(), d.input * g, "w_ih shape");
    }
    assert_eq!(w.bias.len(), cell.bias_len(d.hidden), "bias shape");
    assert_eq!(w.w_hh.len(), d.hidden * g, "w_hh shape");
    if let Some(ids) = x.ids {
        assert!(x.projected, "a lookup is a projected input");
        assert_eq!(ids.len(), d.batch * d.steps, "ids shape");
        assert_eq!(x.x.len() % g, 0, "lookup table shape");
        let words = x.x.len() / g;
        assert!(
            ids.iter().all(|&id| (id as usize) < words),
            "id outside the table"
        );
    } else if with_x {
        assert_eq!(x.x.len(), d.batch * d.steps * d.input, "x shape");
    }
    assert_eq!(x.step_mask.len(), d.batch * d.steps, "step_mask shape");
    if let Some(m) = x.recurrent_mask {
        assert_eq!(m.len(), d.batch * d.hidden, "recurrent_mask shape");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imdb_rng::SeededRng;

    const CELLS: [CellKind; 3] = [CellKind::Lstm, CellKind::Gru, CellKind::Rnn];

    fn random(rng: &mut SeededRng, n: usize, scale: f32) -> Vec<f32> {
        (0..n)
            .map(|_| (rng.next_f32() * 2.0 - 1.0) * scale)
            .collect()
    }

    struct Case {
        cell: CellKind,
        dims: RecurrentDims,
        w_ih: Vec<f32>,
        w_hh: Vec<f32>,
        bias: Vec<f32>,
        x: Vec<f32>,
        mask: Vec<f32>,
        rec: Option<Vec<f32>>,
        reverse: bool,
    }

    impl Case {
        /// `hidden` 16 takes the AVX-512 gate loops where the CPU has them; 3 the portable ones.
        fn new(cell: CellKind, seed: u64, reverse: bool, with_rec: bool, hidden: usize) -> Self {
            let dims = RecurrentDims {
                batch: 3,
                steps: 5,
                input: 4,
                hidden,
            };
            let mut rng = SeededRng::new(seed);
            let (b, t, e, h) = (dims.batch, dims.steps, dims.input, dims.hidden);
            let g = cell.gates() * h;
            // Row 0 full, row 1 post-padded (3 real), row 2 pre-padded (2 real).
            let mut mask = vec![1.0; b * t];
            mask[t + 3] = 0.0;
            mask[t + 4] = 0.0;
            for s in 0..3 {
                mask[2 * t + s] = 0.0;
            }
            Self {
                cell,
                dims,
                w_ih: random(&mut rng, e * g, 0.6),
                w_hh: random(&mut rng, h * g, 0.6),
                bias: random(&mut rng, cell.bias_len(h), 0.3),
                x: random(&mut rng, b * t * e, 1.0),
                mask,
                rec: with_rec.then(|| {
                    (0..b * h)
                        .map(|i| if i % 4 == 1 { 0.0 } else { 1.25 })
                        .collect()
                }),
                reverse,
            }
        }

        fn weights(&self) -> RecurrentWeights<'_> {
            RecurrentWeights {
                w_ih: &self.w_ih,
                w_hh: &self.w_hh,
                bias: &self.bias,
            }
        }

        fn inputs(&self) -> RecurrentInputs<'_> {
            RecurrentInputs {
                ids: None,
                final_only: false,
                x: &self.x,
                step_mask: &self.mask,
                recurrent_mask: self.rec.as_deref(),
                reverse: self.reverse,
                projected: false,
            }
        }

        /// Forward with a tape, then backward from `d_out`: the output and the gradients.
        fn run(&self, inputs: RecurrentInputs<'_>, d_out: &[f32]) -> (Vec<f32>, RecurrentGrads) {
            let (out, tape) =
                recurrent_forward(self.cell, self.dims, self.weights(), inputs, Pass::Training);
            let grads = recurrent_backward(
                self.cell,
                self.dims,
                self.weights(),
                inputs,
                &tape.unwrap(),
                d_out,
            );
            (out, grads)
        }

        /// Straightforward f64 forward pass of the cell's textbook equations, the reference.
        fn naive_forward(&self, w_ih: &[f32], w_hh: &[f32], bias: &[f32], x: &[f32]) -> Vec<f64> {
            let RecurrentDims {
                batch: b,
                steps: t_len,
                input: e,
                hidden: h,
            } = self.dims;
            let g = self.cell.gates() * h;
            let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
            let mut out = vec![0.0; b * t_len * h];
            for i in 0..b {
                let (mut hs, mut cs) = (vec![0.0f64; h], vec![0.0f64; h]);
                for t in order(t_len, self.reverse) {
                    if self.mask[i * t_len + t] != 0.0 {
                        let hm: Vec<f64> = (0..h)
                            .map(|k| hs[k] * self.rec.as_ref().map_or(1.0, |m| m[i * h + k] as f64))
                            .collect();
                        let xp: Vec<f64> = (0..g)
                            .map(|j| {
                                bias[j] as f64
                                    + (0..e)
                                        .map(|k| {
                                            x[(i * t_len + t) * e + k] as f64
                                                * w_ih[k * g + j] as f64
                                        })
                                        .sum::<f64>()
                            })
                            .collect();
                        let hp: Vec<f64> = (0..g)
                            .map(|j| (0..h).map(|k| hm[k] * w_hh[k * g + j] as f64).sum::<f64>())
                            .collect();
                        match self.cell {
                            CellKind::Lstm => {
                                for j in 0..h {
                                    let a = |q: usize| xp[q * h + j] + hp[q * h + j];
                                    let (ig, fg, cg, og) =
                                        (sig(a(0)), sig(a(1)), a(2).tanh(), sig(a(3)));
                                    cs[j] = fg * cs[j] + ig * cg;
                                    hs[j] = og * cs[j].tanh();
                                }
                            }
                            CellKind::Gru => {
                                let rb = |j: usize| bias[g + j] as f64;
                                let new: Vec<f64> = (0..h)
                                    .map(|j| {
                                        let z = sig(xp[j] + hp[j] + rb(j));
                                        let r = sig(xp[h + j] + hp[h + j] + rb(h + j));
                                        let n = (xp[2 * h + j]
                                            + r * (hp[2 * h + j] + rb(2 * h + j)))
                                        .tanh();
                                        z * hs[j] + (1.0 - z) * n
                                    })
                                    .collect();
                                hs = new;
                            }
                            CellKind::Rnn => {
                                for j in 0..h {
                                    hs[j] = (xp[j] + hp[j]).tanh();
                                }
                            }
                        }
                    }
                    for j in 0..h {
                        out[(i * t_len + t) * h + j] = hs[j];
                    }
                }
            }
            out
        }
    }

    #[test]
    fn forward_matches_reference() {
        for (cell, hidden) in CELLS.into_iter().flat_map(|c| [(c, 3), (c, 16)]) {
            for (reverse, rec) in [(false, false), (true, false), (false, true), (true, true)] {
                let case = Case::new(cell, 11, reverse, rec, hidden);
                let expected = case.naive_forward(&case.w_ih, &case.w_hh, &case.bias, &case.x);
                // Inference takes the split bf16 product where AMX is available.
                let split = amx::supports(cell.gates() * hidden);
                let run = |pass| {
                    recurrent_forward(cell, case.dims, case.weights(), case.inputs(), pass).0
                };
                let with_tape = run(Pass::Training);
                let fast = run(Pass::Inference(InferencePrecision::Fast));
                for (out, tolerance) in
                    [(&with_tape, 1e-5), (&fast, if split { 5e-5 } else { 1e-5 })]
                {
                    for (a, b) in out.iter().zip(&expected) {
                        assert!(
                            (*a as f64 - b).abs() < tolerance,
                            "{cell:?} reverse {reverse} rec {rec}: {a} vs {b}"
                        );
                    }
                }
                // Exact inference is the taped pass's arithmetic, bit for bit.
                assert_eq!(
                    run(Pass::Inference(InferencePrecision::F32)),
                    with_tape,
                    "{cell:?} f32"
                );
            }
        }
    }

    #[test]
    fn backward_matches_finite_differences() {
        for (cell, hidden) in CELLS.into_iter().flat_map(|c| [(c, 3), (c, 16)]) {
            for (reverse, rec) in [(false, false), (true, true)] {
                let case = Case::new(cell, 5, reverse, rec, hidden);
                let mut rng = SeededRng::new(99);
                let d_out = random(
                    &mut rng,
                    case.x.len() / case.dims.input * case.dims.hidden,
                    1.0,
                );
                let (_, grads) = case.run(case.inputs(), &d_out);
                let loss = |w_ih: &[f32], w_hh: &[f32], bias: &[f32], x: &[f32]| -> f64 {
                    case.naive_forward(w_ih, w_hh, bias, x)
                        .iter()
                        .zip(&d_out)
                        .map(|(o, d)| o * *d as f64)
                        .sum()
                };
                let eps = 1e-3f32;
                let check = |name: &str, analytic: &[f32], perturb: &dyn Fn(usize, f32) -> f64| {
                    for (i, &a) in analytic.iter().enumerate() {
                        let numeric = (perturb(i, eps) - perturb(i, -eps)) / (2.0 * eps as f64);
                        assert!(
                            (a as f64 - numeric).abs() < 2e-3 * (1.0 + numeric.abs()),
                            "{cell:?} {name}[{i}] reverse {reverse}: analytic {a} numeric {numeric}"
                        );
                    }
                };
                let bump = |v: &[f32], i: usize, d: f32| {
                    let mut v = v.to_vec();
                    v[i] += d;
                    v
                };
                check("x", &grads.dx, &|i, d| {
                    loss(&case.w_ih, &case.w_hh, &case.bias, &bump(&case.x, i, d))
                });
                check("w_ih", &grads.dw_ih, &|i, d| {
                    loss(&bump(&case.w_ih, i, d), &case.w_hh, &case.bias, &case.x)
                });
                check("w_hh", &grads.dw_hh, &|i, d| {
                    loss(&case.w_ih, &bump(&case.w_hh, i, d), &case.bias, &case.x)
                });
                check("bias", &grads.dbias, &|i, d| {
                    loss(&case.w_ih, &case.w_hh, &bump(&case.bias, i, d), &case.x)
                });
                assert_eq!(grads.dbias.len(), cell.bias_len(case.dims.hidden));
            }
        }
    }

    /// A final-state readout's gradient equals the full one with `d_out` zero at every step
    /// but the last processed, padding at that step included.
    #[test]
    fn final_only_takes_the_final_states_gradient() {
        for (cell, hidden) in CELLS.into_iter().flat_map(|c| [(c, 3), (c, 16)]) {
            for reverse in [false, true] {
                let case = Case::new(cell, 12, reverse, true, hidden);
                let RecurrentDims { batch, steps, .. } = case.dims;
                let last_step = if reverse { 0 } else { steps - 1 };
                let finals_only = RecurrentInputs {
                    final_only: true,
                    ..case.inputs()
                };
                let mut rng = SeededRng::new(4);
                let d_final = random(&mut rng, batch * hidden, 1.0);
                let mut d_out = vec![0.0f32; batch * steps * hidden];
                let at = |b: usize| (b * steps + last_step) * hidden;
                for b in 0..batch {
                    d_out[at(b)..at(b) + hidden]
                        .copy_from_slice(&d_final[b * hidden..(b + 1) * hidden]);
                }
                let (out, full) = case.run(case.inputs(), &d_out);
                let (finals, last) = case.run(finals_only, &d_final);
                for b in 0..batch {
                    assert_eq!(
                        finals[b * hidden..(b + 1) * hidden],
                        out[at(b)..at(b) + hidden]
                    );
                }
                assert_eq!(last, full, "{cell:?} reverse {reverse}");
                assert!(last.dw_hh.iter().any(|&v| v != 0.0));
            }
        }
    }

    #[test]
    fn projected_input_gives_the_same_outputs() {
        for cell in CELLS {
            let case = Case::new(cell, 8, true, true, 3);
            let RecurrentDims {
                batch,
                steps,
                input,
                hidden,
            } = case.dims;
            let g = cell.gates() * hidden;
            // xp = x·w_ih + input bias, computed naively.
            let mut xp = vec![0.0f32; batch * steps * g];
            for row in 0..batch * steps {
                for j in 0..g {
                    xp[row * g + j] = case.bias[j]
                        + (0..input)
                            .map(|k| case.x[row * input + k] * case.w_ih[k * g + j])
                            .sum::<f32>();
                }
            }
            let projected_dims = RecurrentDims {
                input: g,
                ..case.dims
            };
            let weights = RecurrentWeights {
                w_ih: &[],
                w_hh: &case.w_hh,
                bias: &case.bias,
            };
            let inputs = RecurrentInputs {
                ids: None,
                final_only: false,
                x: &xp,
                projected: true,
                ..case.inputs()
            };
            let (out, _) = recurrent_forward(
                cell,
                case.dims,
                case.weights(),
                case.inputs(),
                Pass::Inference(InferencePrecision::Fast),
            );
            // Read in place, or looked up from a table (here the rows of `xp` in reverse
            // order), the projection gives the same outputs.
            let n = batch * steps;
            let table: Vec<f32> = (0..n)
                .rev()
                .flat_map(|row| xp[row * g..(row + 1) * g].to_vec())
                .collect();
            let ids: Vec<u32> = (0..n).map(|row| (n - 1 - row) as u32).collect();
            let lookup = RecurrentInputs {
                x: &table,
                ids: Some(&ids),
                ..inputs
            };
            for inputs in [inputs, lookup] {
                let (out_i, tape_i) = recurrent_forward(
                    cell,
                    projected_dims,
                    weights,
                    inputs,
                    Pass::Inference(InferencePrecision::Fast),
                );
                assert!(tape_i.is_none());
                for (a, b) in out_i.iter().zip(&out) {
                    assert!((a - b).abs() < 1e-5, "{cell:?} inference");
                }
                // Only the final state: the output at the last step processed.
                let last = RecurrentInputs {
                    final_only: true,
                    ..inputs
                };
                let (finals, _) = recurrent_forward(
                    cell,
                    projected_dims,
                    weights,
                    last,
                    Pass::Inference(InferencePrecision::Fast),
                );
                let t = if case.reverse { 0 } else { steps - 1 };
                for b in 0..batch {
                    let at = (b * steps + t) * hidden;
                    assert_eq!(
                        finals[b * hidden..(b + 1) * hidden],
                        out_i[at..at + hidden],
                        "{cell:?} final state"
                    );
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "a projected input is forward only")]
    fn a_projected_input_keeps_no_tape() {
        let case = Case::new(CellKind::Lstm, 1, false, false, 3);
        let g = 4 * case.dims.hidden;
        let xp = vec![0.0; case.dims.batch * case.dims.steps * g];
        let inputs = RecurrentInputs {
            x: &xp,
            projected: true,
            ..case.inputs()
        };
        let weights = RecurrentWeights {
            w_ih: &[],
            ..case.weights()
        };
        let dims = RecurrentDims {
            input: g,
            ..case.dims
        };
        recurrent_forward(CellKind::Lstm, dims, weights, inputs, Pass::Training);
    }

    #[test]
    fn padding_does_not_change_the_final_state() {
        for cell in CELLS {
            // The same review with and without padding ends in the same state.
            let dims = RecurrentDims {
                batch: 2,
                steps: 4,
                input: 2,
                hidden: 2,
            };
            let g = cell.gates() * 2;
            let mut rng = SeededRng::new(3);
            let w_ih = random(&mut rng, 2 * g, 0.5);
            let w_hh = random(&mut rng, 2 * g, 0.5);
            let bias = random(&mut rng, cell.bias_len(2), 0.5);
            let real = random(&mut rng, 2 * 2, 1.0);
            // Row 0: two real steps then padding; row 1: padding then the same two steps.
            let mut x = vec![0.0; 2 * 4 * 2];
            x[..4].copy_from_slice(&real);
            x[12..16].copy_from_slice(&real);
            let mask = [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0];
            let weights = RecurrentWeights {
                w_ih: &w_ih,
                w_hh: &w_hh,
                bias: &bias,
            };
            let inputs = RecurrentInputs {
                ids: None,
                final_only: false,
                x: &x,
                step_mask: &mask,
                recurrent_mask: None,
                reverse: false,
                projected: false,
            };
            let (out, _) = recurrent_forward(
                cell,
                dims,
                weights,
                inputs,
                Pass::Inference(InferencePrecision::Fast),
            );
            let last = |row: usize| &out[(row * 4 + 3) * 2..(row * 4 + 4) * 2];
            assert_eq!(last(0), last(1), "{cell:?}");
            assert!(last(0).iter().any(|v| v.abs() > 1e-3), "{cell:?}");
        }
    }
}
