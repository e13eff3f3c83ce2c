//! The LSTM layer on raw `f32` buffers: forward with a tape, and the handwritten backward.
//!
//! Gate order is Keras' (input, forget, cell, output); weights are `w_ih: [E, 4H]`,
//! `w_hh: [H, 4H]`, `bias: [4H]`, all row-major. Inputs are batch-first `[B, T, E]`.
//!
//! * One matrix product projects the inputs of all time steps; each step then adds one small
//!   product with the recurrent weights (`gemm`, which beats a hand-blocked loop even at this
//!   size) and applies the gates in one fused loop.
//! * `step_mask[b, t] = 0` marks padding: the state is carried unchanged through it, so the
//!   final state is the state at each review's last real token, whichever side the padding is.
//! * `recurrent_mask[b, :]` multiplies `h_{t-1}` before the recurrent product (Keras'
//!   `recurrent_dropout`: one mask per sequence, reused at every step).
//! * Rows of the batch are independent, so the batch is split into one chunk per thread and
//!   each chunk runs forward and backward alone; only the weight gradients are summed.

use rayon::prelude::*;

use super::gemm::{Layout, matmul};
use super::math::{dispatch_simd, flush, sigmoid, tanh};

/// Sizes of one LSTM call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LstmDims {
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
pub struct LstmWeights<'a> {
    /// `[E, 4H]`.
    pub w_ih: &'a [f32],
    /// `[H, 4H]`.
    pub w_hh: &'a [f32],
    /// `[4H]`.
    pub bias: &'a [f32],
}

/// The per-call inputs that are not weights.
#[derive(Debug, Clone, Copy)]
pub struct LstmInputs<'a> {
    /// `[B, T, E]`.
    pub x: &'a [f32],
    /// `[B, T]`: 1 for a real token, 0 for padding.
    pub step_mask: &'a [f32],
    /// `[B, H]` multipliers of the previous hidden state, or `None` for no recurrent dropout.
    pub recurrent_mask: Option<&'a [f32]>,
    /// Read the sequence from its last step to its first.
    pub reverse: bool,
    /// `x` is already the input projection `x·w_ih + bias`, `[B, T, 4H]` (so `input` is
    /// `4H`, and `w_ih` and `bias` are unused and may be empty). Inference precomputes it once
    /// per word of the vocabulary instead of once per token.
    pub projected: bool,
}

/// What the backward pass needs from the forward pass, per batch chunk.
#[derive(Debug, Clone, Default)]
pub struct LstmTape {
    chunks: Vec<ChunkTape>,
}

#[derive(Debug, Clone, Default)]
struct ChunkTape {
    /// `[T, r, E]` time-major inputs.
    x_tm: Vec<f32>,
    /// `[T, r, 4H]` gate activations.
    gates: Vec<f32>,
    /// `[T, r, H]` cell state after each step (carried through padding).
    cells: Vec<f32>,
    /// `[T, r, H]` tanh of the cell state.
    tanh_cells: Vec<f32>,
    /// `[T, r, H]` previous hidden state times the recurrent mask.
    h_prev: Vec<f32>,
}

/// Gradients of one LSTM call.
#[derive(Debug, Clone, PartialEq)]
pub struct LstmGrads {
    /// `[B, T, E]`.
    pub dx: Vec<f32>,
    /// `[E, 4H]`.
    pub dw_ih: Vec<f32>,
    /// `[H, 4H]`.
    pub dw_hh: Vec<f32>,
    /// `[4H]`.
    pub dbias: Vec<f32>,
}

/// Splits `0..batch` into at most one contiguous chunk per rayon thread.
fn chunk_rows(batch: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    batch.div_ceil(threads).max(1)
}

/// Time steps in processing order.
fn order(steps: usize, reverse: bool) -> Box<dyn Iterator<Item = usize>> {
    if reverse {
        Box::new((0..steps).rev())
    } else {
        Box::new(0..steps)
    }
}

/// Runs the layer; returns the hidden state after every step, `[B, T, H]` (carried through
/// padding), and the tape for [`lstm_backward`] when `keep_tape`.
pub fn lstm_forward(
    dims: LstmDims,
    weights: LstmWeights<'_>,
    inputs: LstmInputs<'_>,
    keep_tape: bool,
) -> (Vec<f32>, Option<LstmTape>) {
    let LstmDims {
        batch,
        steps: t_len,
        input: e,
        hidden: h,
    } = dims;
    check_shapes(dims, &weights, &inputs, true);
    let mut out = vec![0.0f32; batch * t_len * h];
    if batch == 0 || t_len == 0 {
        return (out, keep_tape.then(LstmTape::default));
    }
    let rows = chunk_rows(batch);
    let chunks: Vec<ChunkTape> = out
        .par_chunks_mut(rows * t_len * h)
        .enumerate()
        .map(|(ci, out_chunk)| {
            let b0 = ci * rows;
            let r = out_chunk.len() / (t_len * h);
            let x = &inputs.x[b0 * t_len * e..(b0 + r) * t_len * e];
            let mask = &inputs.step_mask[b0 * t_len..(b0 + r) * t_len];
            let rec = inputs.recurrent_mask.map(|m| &m[b0 * h..(b0 + r) * h]);
            forward_chunk(
                ChunkDims { r, t_len, e, h },
                &weights,
                x,
                mask,
                rec,
                (inputs.reverse, inputs.projected),
                out_chunk,
                keep_tape,
            )
        })
        .collect();
    (out, keep_tape.then_some(LstmTape { chunks }))
}

#[derive(Debug, Clone, Copy)]
struct ChunkDims {
    r: usize,
    t_len: usize,
    e: usize,
    h: usize,
}

#[allow(clippy::too_many_arguments)]
fn forward_chunk(
    d: ChunkDims,
    w: &LstmWeights<'_>,
    x: &[f32],
    mask: &[f32],
    rec: Option<&[f32]>,
    (reverse, projected): (bool, bool),
    out: &mut [f32],
    keep_tape: bool,
) -> ChunkTape {
    let ChunkDims { r, t_len, e, h } = d;
    let g4 = 4 * h;
    let x_tm = to_time_major(x, r, t_len, e);
    let (mut gates, x_tm) = if projected {
        (x_tm, Vec::new())
    } else {
        // Input projection of every step at once, bias included.
        let mut gates = vec![0.0f32; t_len * r * g4];
        for row in gates.chunks_exact_mut(g4) {
            row.copy_from_slice(w.bias);
        }
        matmul(
            &mut gates,
            &x_tm,
            Layout::Normal,
            w.w_ih,
            Layout::Normal,
            t_len * r,
            e,
            g4,
            true,
        );
        (gates, x_tm)
    };

    let tape_len = if keep_tape { t_len * r * h } else { 0 };
    let mut cells = vec![0.0f32; tape_len];
    let mut tanh_cells = vec![0.0f32; tape_len];
    let mut h_prev_tape = vec![0.0f32; tape_len];
    let mut hs = vec![0.0f32; r * h];
    let mut cs = vec![0.0f32; r * h];
    let mut hm = vec![0.0f32; r * h];
    for t in order(t_len, reverse) {
        match rec {
            Some(m) => mul_into(&mut hm, &hs, m),
            None => hm.copy_from_slice(&hs),
        }
        let g = &mut gates[t * r * g4..(t + 1) * r * g4];
        matmul(
            g,
            &hm,
            Layout::Normal,
            w.w_hh,
            Layout::Normal,
            r,
            h,
            g4,
            true,
        );
        for i in 0..r {
            let gi = &mut g[i * g4..(i + 1) * g4];
            activate_gates(gi, h);
            if mask[i * t_len + t] != 0.0 {
                cell_update(gi, &mut cs[i * h..(i + 1) * h], &mut hs[i * h..(i + 1) * h]);
            }
            out[(i * t_len + t) * h..(i * t_len + t + 1) * h]
                .copy_from_slice(&hs[i * h..(i + 1) * h]);
        }
        if keep_tape {
            let at = t * r * h..(t + 1) * r * h;
            cells[at.clone()].copy_from_slice(&cs);
            tanh_into(&mut tanh_cells[at.clone()], &cs);
            h_prev_tape[at].copy_from_slice(&hm);
        }
    }
    if keep_tape {
        ChunkTape {
            x_tm,
            gates,
            cells,
            tanh_cells,
            h_prev: h_prev_tape,
        }
    } else {
        ChunkTape::default()
    }
}

dispatch_simd! {
    /// Applies σ to the input, forget and output gates and tanh to the cell gate, in place.
    fn activate_gates(g: &mut [f32], h: usize) {
        let (ifg, rest) = g.split_at_mut(2 * h);
        let (cg, og) = rest.split_at_mut(h);
        // Separate plain loops: a chained iterator would defeat vectorization.
        for v in ifg.iter_mut() {
            *v = sigmoid(*v);
        }
        for v in og.iter_mut() {
            *v = sigmoid(*v);
        }
        for v in cg.iter_mut() {
            *v = tanh(*v);
        }
    }
}

dispatch_simd! {
    /// `c = f·c + i·g; h = o·tanh(c)` for one row, from activated gates.
    fn cell_update(g: &[f32], c: &mut [f32], hs: &mut [f32]) {
        let n = c.len();
        let (ig, rest) = g.split_at(n);
        let (fg, rest) = rest.split_at(n);
        let (cg, og) = rest.split_at(n);
        for j in 0..n {
            let c_new = flush(fg[j].mul_add(c[j], ig[j] * cg[j]));
            c[j] = c_new;
            hs[j] = flush(og[j] * tanh(c_new));
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

/// Backward pass: gradients of the inputs and weights given `d_out = ∂L/∂out`, `[B, T, H]`.
/// `inputs.x` is not read (the tape has it) and may be empty.
pub fn lstm_backward(
    dims: LstmDims,
    weights: LstmWeights<'_>,
    inputs: LstmInputs<'_>,
    tape: &LstmTape,
    d_out: &[f32],
) -> LstmGrads {
    let LstmDims {
        batch,
        steps: t_len,
        input: e,
        hidden: h,
    } = dims;
    check_shapes(dims, &weights, &inputs, false);
    assert_eq!(d_out.len(), batch * t_len * h, "d_out shape");
    let g4 = 4 * h;
    let mut dx = vec![0.0f32; batch * t_len * e];
    let (w_ih_len, bias_len) = if inputs.projected {
        (0, 0)
    } else {
        (e * g4, g4)
    };
    let mut grads = LstmGrads {
        dx: Vec::new(),
        dw_ih: vec![0.0; w_ih_len],
        dw_hh: vec![0.0; h * g4],
        dbias: vec![0.0; bias_len],
    };
    if batch == 0 || t_len == 0 {
        grads.dx = dx;
        return grads;
    }
    let rows = chunk_rows(batch);
    let partials: Vec<(Vec<f32>, Vec<f32>, Vec<f32>)> = dx
        .par_chunks_mut(rows * t_len * e)
        .zip(tape.chunks.par_iter())
        .enumerate()
        .map(|(ci, (dx_chunk, chunk_tape))| {
            let b0 = ci * rows;
            let r = dx_chunk.len() / (t_len * e);
            let mask = &inputs.step_mask[b0 * t_len..(b0 + r) * t_len];
            let rec = inputs.recurrent_mask.map(|m| &m[b0 * h..(b0 + r) * h]);
            let d_out = &d_out[b0 * t_len * h..(b0 + r) * t_len * h];
            backward_chunk(
                ChunkDims { r, t_len, e, h },
                &weights,
                chunk_tape,
                mask,
                rec,
                (inputs.reverse, inputs.projected),
                d_out,
                dx_chunk,
            )
        })
        .collect();
    // Summed in chunk order, so the result does not depend on thread scheduling.
    for (dw_ih, dw_hh, dbias) in partials {
        add_into(&mut grads.dw_ih, &dw_ih);
        add_into(&mut grads.dw_hh, &dw_hh);
        add_into(&mut grads.dbias, &dbias);
    }
    grads.dx = dx;
    grads
}

#[allow(clippy::too_many_arguments)]
fn backward_chunk(
    d: ChunkDims,
    w: &LstmWeights<'_>,
    tape: &ChunkTape,
    mask: &[f32],
    rec: Option<&[f32]>,
    (reverse, projected): (bool, bool),
    d_out: &[f32],
    dx: &mut [f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let ChunkDims { r, t_len, e, h } = d;
    let g4 = 4 * h;
    let mut dgates = vec![0.0f32; t_len * r * g4];
    let mut dh = vec![0.0f32; r * h];
    let mut dc = vec![0.0f32; r * h];
    let mut dh_rec = vec![0.0f32; r * h];
    let zeros = vec![0.0f32; h];
    let steps: Vec<usize> = order(t_len, reverse).collect();
    for (pos, &t) in steps.iter().enumerate().rev() {
        let prev_t = pos.checked_sub(1).map(|p| steps[p]);
        let dg = &mut dgates[t * r * g4..(t + 1) * r * g4];
        for i in 0..r {
            let dh_i = &mut dh[i * h..(i + 1) * h];
            add_into(dh_i, &d_out[(i * t_len + t) * h..(i * t_len + t + 1) * h]);
            if mask[i * t_len + t] == 0.0 {
                // Padding: the state passed through unchanged, and so does its gradient.
                continue;
            }
            let at = (t * r + i) * h..(t * r + i + 1) * h;
            let c_prev = match prev_t {
                Some(p) => &tape.cells[(p * r + i) * h..(p * r + i + 1) * h],
                None => &zeros[..],
            };
            gate_grads(
                &mut dg[i * g4..(i + 1) * g4],
                &tape.gates[(t * r + i) * g4..(t * r + i + 1) * g4],
                &tape.tanh_cells[at],
                c_prev,
                dh_i,
                &mut dc[i * h..(i + 1) * h],
            );
        }
        // ∂L/∂h_{t-1} through the recurrent weights, for the rows that took a real step.
        matmul(
            &mut dh_rec,
            dg,
            Layout::Normal,
            w.w_hh,
            Layout::Transposed,
            r,
            g4,
            h,
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
            }
        }
    }
    // Weight gradients in three large products over all steps.
    let n = t_len * r;
    let mut dw_hh = vec![0.0f32; h * g4];
    matmul(
        &mut dw_hh,
        &tape.h_prev,
        Layout::Transposed,
        &dgates,
        Layout::Normal,
        h,
        n,
        g4,
        false,
    );
    if projected {
        // The input was the projection itself: its gradient is the gates' gradient.
        from_time_major_into(dx, &dgates, r, t_len, g4);
        return (Vec::new(), dw_hh, Vec::new());
    }
    let mut dw_ih = vec![0.0f32; e * g4];
    matmul(
        &mut dw_ih,
        &tape.x_tm,
        Layout::Transposed,
        &dgates,
        Layout::Normal,
        e,
        n,
        g4,
        false,
    );
    let mut dbias = vec![0.0f32; g4];
    for row in dgates.chunks_exact(g4) {
        add_into(&mut dbias, row);
    }
    let mut dx_tm = vec![0.0f32; n * e];
    matmul(
        &mut dx_tm,
        &dgates,
        Layout::Normal,
        w.w_ih,
        Layout::Transposed,
        n,
        g4,
        e,
        false,
    );
    from_time_major_into(dx, &dx_tm, r, t_len, e);
    (dw_ih, dw_hh, dbias)
}

dispatch_simd! {
    /// Gate pre-activation gradients of one row; updates `dc` to `∂L/∂c_{t-1}`.
    fn gate_grads(
        dg: &mut [f32],
        gates: &[f32],
        tanh_c: &[f32],
        c_prev: &[f32],
        dh: &[f32],
        dc: &mut [f32],
    ) {
        let n = dh.len();
        let (ig, rest) = gates.split_at(n);
        let (fg, rest) = rest.split_at(n);
        let (cg, og) = rest.split_at(n);
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

fn check_shapes(d: LstmDims, w: &LstmWeights<'_>, x: &LstmInputs<'_>, with_x: bool) {
    let g4 = 4 * d.hidden;
    if x.projected {
        assert_eq!(d.input, g4, "a projected input has 4·hidden features");
    } else {
        assert_eq!(w.w_ih.len(), d.input * g4, "w_ih shape");
        assert_eq!(w.bias.len(), g4, "bias shape");
    }
    assert_eq!(w.w_hh.len(), d.hidden * g4, "w_hh shape");
    if with_x {
        assert_eq!(x.x.len(), d.batch * d.steps * d.input, "x shape");
    }
    assert_eq!(x.step_mask.len(), d.batch * d.steps, "step_mask shape");
    if let Some(m) = x.recurrent_mask {
        assert_eq!(m.len(), d.batch * d.hidden, "recurrent_mask shape");
    }
}

/// `[r, T, E]` → `[T, r, E]`.
pub(crate) fn to_time_major(x: &[f32], r: usize, t_len: usize, e: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; x.len()];
    for i in 0..r {
        for t in 0..t_len {
            out[(t * r + i) * e..(t * r + i + 1) * e]
                .copy_from_slice(&x[(i * t_len + t) * e..(i * t_len + t + 1) * e]);
        }
    }
    out
}

/// `[T, r, E]` → `[r, T, E]`, written into `out`.
pub(crate) fn from_time_major_into(
    out: &mut [f32],
    x_tm: &[f32],
    r: usize,
    t_len: usize,
    e: usize,
) {
    for i in 0..r {
        for t in 0..t_len {
            out[(i * t_len + t) * e..(i * t_len + t + 1) * e]
                .copy_from_slice(&x_tm[(t * r + i) * e..(t * r + i + 1) * e]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imdb_data::SeededRng;

    fn random(rng: &mut SeededRng, n: usize, scale: f32) -> Vec<f32> {
        (0..n)
            .map(|_| (rng.next_f32() * 2.0 - 1.0) * scale)
            .collect()
    }

    struct Case {
        dims: LstmDims,
        w_ih: Vec<f32>,
        w_hh: Vec<f32>,
        bias: Vec<f32>,
        x: Vec<f32>,
        mask: Vec<f32>,
        rec: Option<Vec<f32>>,
        reverse: bool,
    }

    impl Case {
        fn new(seed: u64, reverse: bool, with_rec: bool) -> Self {
            let dims = LstmDims {
                batch: 3,
                steps: 5,
                input: 4,
                hidden: 3,
            };
            let mut rng = SeededRng::new(seed);
            let (b, t, e, h) = (dims.batch, dims.steps, dims.input, dims.hidden);
            // Row 0 full, row 1 post-padded (3 real), row 2 pre-padded (2 real).
            let mut mask = vec![1.0; b * t];
            mask[t + 3] = 0.0;
            mask[t + 4] = 0.0;
            for s in 0..3 {
                mask[2 * t + s] = 0.0;
            }
            Self {
                dims,
                w_ih: random(&mut rng, e * 4 * h, 0.6),
                w_hh: random(&mut rng, h * 4 * h, 0.6),
                bias: random(&mut rng, 4 * h, 0.3),
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

        fn weights(&self) -> LstmWeights<'_> {
            LstmWeights {
                w_ih: &self.w_ih,
                w_hh: &self.w_hh,
                bias: &self.bias,
            }
        }

        fn inputs(&self) -> LstmInputs<'_> {
            LstmInputs {
                x: &self.x,
                step_mask: &self.mask,
                recurrent_mask: self.rec.as_deref(),
                reverse: self.reverse,
                projected: false,
            }
        }

        /// Straightforward f64 forward pass, the reference.
        fn naive_forward(&self, w_ih: &[f32], w_hh: &[f32], bias: &[f32], x: &[f32]) -> Vec<f64> {
            let LstmDims {
                batch: b,
                steps: t_len,
                input: e,
                hidden: h,
            } = self.dims;
            let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
            let mut out = vec![0.0; b * t_len * h];
            for i in 0..b {
                let (mut hs, mut cs) = (vec![0.0f64; h], vec![0.0f64; h]);
                let steps: Vec<usize> = order(t_len, self.reverse).collect();
                for t in steps {
                    if self.mask[i * t_len + t] != 0.0 {
                        let hm: Vec<f64> = (0..h)
                            .map(|k| hs[k] * self.rec.as_ref().map_or(1.0, |m| m[i * h + k] as f64))
                            .collect();
                        let mut g = vec![0.0f64; 4 * h];
                        for (j, gj) in g.iter_mut().enumerate() {
                            *gj = bias[j] as f64
                                + (0..e)
                                    .map(|k| {
                                        x[(i * t_len + t) * e + k] as f64
                                            * w_ih[k * 4 * h + j] as f64
                                    })
                                    .sum::<f64>()
                                + (0..h)
                                    .map(|k| hm[k] * w_hh[k * 4 * h + j] as f64)
                                    .sum::<f64>();
                        }
                        for j in 0..h {
                            let (ig, fg, cg, og) = (
                                sig(g[j]),
                                sig(g[h + j]),
                                g[2 * h + j].tanh(),
                                sig(g[3 * h + j]),
                            );
                            cs[j] = fg * cs[j] + ig * cg;
                            hs[j] = og * cs[j].tanh();
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
        for (reverse, rec) in [(false, false), (true, false), (false, true), (true, true)] {
            let case = Case::new(11, reverse, rec);
            let (out, _) = lstm_forward(case.dims, case.weights(), case.inputs(), false);
            let expected = case.naive_forward(&case.w_ih, &case.w_hh, &case.bias, &case.x);
            for (a, b) in out.iter().zip(&expected) {
                assert!(
                    (*a as f64 - b).abs() < 1e-5,
                    "reverse {reverse} rec {rec}: {a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn backward_matches_finite_differences() {
        for (reverse, rec) in [(false, false), (true, true)] {
            let case = Case::new(5, reverse, rec);
            let mut rng = SeededRng::new(99);
            let d_out = random(
                &mut rng,
                case.x.len() / case.dims.input * case.dims.hidden,
                1.0,
            );
            let (_, tape) = lstm_forward(case.dims, case.weights(), case.inputs(), true);
            let grads = lstm_backward(
                case.dims,
                case.weights(),
                case.inputs(),
                &tape.unwrap(),
                &d_out,
            );
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
                        "{name}[{i}] reverse {reverse}: analytic {a} numeric {numeric}"
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
        }
    }

    #[test]
    fn projected_input_gives_the_same_outputs_and_gradients() {
        let case = Case::new(8, true, true);
        let LstmDims {
            batch,
            steps,
            input,
            hidden,
        } = case.dims;
        let g4 = 4 * hidden;
        // xp = x·w_ih + bias, computed naively.
        let mut xp = vec![0.0f32; batch * steps * g4];
        for row in 0..batch * steps {
            for j in 0..g4 {
                xp[row * g4 + j] = case.bias[j]
                    + (0..input)
                        .map(|k| case.x[row * input + k] * case.w_ih[k * g4 + j])
                        .sum::<f32>();
            }
        }
        let projected_dims = LstmDims {
            input: g4,
            ..case.dims
        };
        let weights = LstmWeights {
            w_ih: &[],
            w_hh: &case.w_hh,
            bias: &[],
        };
        let inputs = LstmInputs {
            x: &xp,
            projected: true,
            ..case.inputs()
        };
        let (out_p, tape_p) = lstm_forward(projected_dims, weights, inputs, true);
        let (out, tape) = lstm_forward(case.dims, case.weights(), case.inputs(), true);
        for (a, b) in out_p.iter().zip(&out) {
            assert!((a - b).abs() < 1e-5);
        }
        let d_out: Vec<f32> = (0..out.len())
            .map(|i| ((i % 7) as f32 - 3.0) * 0.1)
            .collect();
        let gp = lstm_backward(projected_dims, weights, inputs, &tape_p.unwrap(), &d_out);
        let g = lstm_backward(
            case.dims,
            case.weights(),
            case.inputs(),
            &tape.unwrap(),
            &d_out,
        );
        for (a, b) in gp.dw_hh.iter().zip(&g.dw_hh) {
            assert!((a - b).abs() < 1e-4);
        }
        // d(xp) summed over time and batch is the bias gradient.
        for j in 0..g4 {
            let sum: f32 = (0..batch * steps).map(|row| gp.dx[row * g4 + j]).sum();
            assert!((sum - g.dbias[j]).abs() < 1e-4);
        }
        assert!(gp.dw_ih.is_empty() && gp.dbias.is_empty());
    }

    #[test]
    fn padding_does_not_change_the_final_state() {
        // The same review with and without trailing padding ends in the same state.
        let dims = LstmDims {
            batch: 2,
            steps: 4,
            input: 2,
            hidden: 2,
        };
        let mut rng = SeededRng::new(3);
        let w_ih = random(&mut rng, 2 * 8, 0.5);
        let w_hh = random(&mut rng, 2 * 8, 0.5);
        let bias = random(&mut rng, 8, 0.5);
        let real = random(&mut rng, 2 * 2, 1.0);
        // Row 0: two real steps then padding; row 1: padding then the same two steps.
        let mut x = vec![0.0; 2 * 4 * 2];
        x[..4].copy_from_slice(&real);
        x[12..16].copy_from_slice(&real);
        let mask = [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0];
        let weights = LstmWeights {
            w_ih: &w_ih,
            w_hh: &w_hh,
            bias: &bias,
        };
        let inputs = LstmInputs {
            x: &x,
            step_mask: &mask,
            recurrent_mask: None,
            reverse: false,
            projected: false,
        };
        let (out, _) = lstm_forward(dims, weights, inputs, false);
        let last = |row: usize| &out[(row * 4 + 3) * 2..(row * 4 + 4) * 2];
        assert_eq!(last(0), last(1));
        assert!(last(0).iter().any(|v| v.abs() > 1e-3));
    }
}
