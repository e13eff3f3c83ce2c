//! The forward pass: with a tape for training, or without one for inference.

use rayon::prelude::*;

use super::super::amx::{self, SplitLhs, SplitRhs};
use super::super::gemm::{Layout, matmul};
use super::super::{product, zeroed};
use super::cells::{
    activate_gru, activate_lstm, add_into, gru_update, lstm_step_inference, lstm_update, mul_into,
    prefetch, tanh_in_place, tanh_into,
};
use super::precision::{InferenceKernels, InferencePrecision, Pass};
use super::shapes::check_shapes;
use super::tape::{CellTape, ChunkTape, RecurrentTape};
use super::{
    CellKind, ChunkDims, Direction, InputForm, RecurrentDims, RecurrentInputs, RecurrentWeights,
    StateOutput, chunk_rows, split_bias,
};

/// Runs the layer; returns the hidden state after every step, `[B, T, H]` (carried through
/// padding; `[B, 1, H]` with [`StateOutput::FinalOnly`]), and for [`Pass::Training`] the tape for [`super::recurrent_backward`]. Inference's
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
    check_shapes(cell, dims, &weights, &inputs);
    assert!(
        !(inputs.form.is_projected() && keep_tape),
        "a projected input is forward only"
    );
    let out_steps = inputs.output.steps(t_len);
    let mut out = zeroed(product(&[batch, out_steps, h], "output"));
    if batch == 0 || t_len == 0 || h == 0 {
        let tape = RecurrentTape {
            rows: 0,
            batch,
            chunks: Vec::new(),
        };
        return (out, keep_tape.then_some(tape));
    }
    let rows = chunk_rows(batch);
    let g = cell.gates() * h;
    let kernels = InferenceKernels::select(cell, h, pass);
    let split_w_hh = kernels
        .amx_product
        .then(|| SplitRhs::new(weights.w_hh, h, g));
    let mode = match pass {
        Pass::Training => ForwardMode::Tape,
        Pass::Inference(InferencePrecision::F32) => ForwardMode::ExactInference,
        Pass::Inference(InferencePrecision::Fast) => ForwardMode::Inference {
            split_w_hh: split_w_hh.as_ref(),
            fused_lstm_step: kernels.fused_lstm_step,
        },
    };
    let chunks: Vec<ChunkTape> = out
        .par_chunks_mut(rows * out_steps * h)
        .enumerate()
        .map(|(ci, out_chunk)| {
            let b0 = ci * rows;
            let r = out_chunk.len() / (out_steps * h);
            // A lookup table is shared by every chunk; its ids are per row.
            let (x, form) = match inputs.form {
                InputForm::Lookup(ids) => (
                    inputs.x,
                    InputForm::Lookup(&ids[b0 * t_len..(b0 + r) * t_len]),
                ),
                form => (&inputs.x[b0 * t_len * e..(b0 + r) * t_len * e], form),
            };
            let chunk = ChunkInputs {
                x,
                form,
                mask: &inputs.step_mask[b0 * t_len..(b0 + r) * t_len],
                rec: inputs.recurrent_mask.map(|m| &m[b0 * h..(b0 + r) * h]),
            };
            forward_chunk(
                cell,
                ChunkDims { r, t_len, e, h, g },
                &weights,
                chunk,
                inputs.direction,
                (out_chunk, inputs.output),
                mode,
            )
        })
        .collect();
    let tape = RecurrentTape {
        rows,
        batch,
        chunks,
    };
    (out, keep_tape.then_some(tape))
}

/// What a chunk's forward pass keeps, and how it multiplies by the recurrent weights.
#[derive(Debug, Clone, Copy)]
enum ForwardMode<'a> {
    /// Training: the tape is kept; f32 products throughout.
    Tape,
    /// Inference: no tape, and the fast kernels [`InferenceKernels::select`] chose (within
    /// about 1e-5 of f32, faster).
    Inference {
        /// The recurrent weights split for the AMX product, when it runs.
        split_w_hh: Option<&'a SplitRhs>,
        /// Whether the LSTM takes the fused AVX-512 step.
        fused_lstm_step: bool,
    },
    /// Inference with exactly the arithmetic of [`ForwardMode::Tape`], keeping nothing.
    ExactInference,
}

/// One chunk's rows of a call's inputs.
#[derive(Debug, Clone, Copy)]
struct ChunkInputs<'a> {
    /// The chunk's rows of `x`, or the whole lookup table.
    x: &'a [f32],
    /// What `x` holds (a lookup's ids cut to the chunk's rows).
    form: InputForm<'a>,
    /// The chunk's rows of the step mask.
    mask: &'a [f32],
    /// The chunk's rows of the recurrent mask.
    rec: Option<&'a [f32]>,
}

/// Runs one chunk of rows through every step, writing its outputs to `out`.
fn forward_chunk(
    cell: CellKind,
    d: ChunkDims,
    w: &RecurrentWeights<'_>,
    inputs: ChunkInputs<'_>,
    direction: Direction,
    (out, output): (&mut [f32], StateOutput),
    mode: ForwardMode<'_>,
) -> ChunkTape {
    let ChunkDims { r, t_len, e, h, g } = d;
    let ChunkInputs { x, form, mask, rec } = inputs;
    let (projected, ids) = (form.is_projected(), form.ids());
    let final_only = output == StateOutput::FinalOnly;
    let keep_tape = matches!(mode, ForwardMode::Tape);
    let fast_lstm_inference = matches!(
        mode,
        ForwardMode::Inference {
            fused_lstm_step: true,
            ..
        }
    );
    // The split state for the AMX product (zero, like the initial state).
    let mut split_h = match mode {
        ForwardMode::Inference {
            split_w_hh: Some(w_hh),
            ..
        } => Some((w_hh, SplitLhs::new(r, h))),
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
    let mut cell_tape = CellTape::new(cell, tape_len);
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
    for t in direction.order(t_len) {
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
                    match &mut cell_tape {
                        CellTape::Lstm { c, tanh_c } => {
                            if real {
                                lstm_update(gi, c_i, h_i, Some(&mut tanh_c[at.clone()]));
                            } else {
                                tanh_into(&mut tanh_c[at.clone()], c_i);
                            }
                            c[at.clone()].copy_from_slice(c_i);
                        }
                        _ if real => lstm_update(gi, c_i, h_i, None),
                        _ => {}
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
                    if let CellTape::Gru { hp_n, h_before } = &mut cell_tape {
                        hp_n[at.clone()].copy_from_slice(&hp_i[2 * h..]);
                        h_before[at.clone()].copy_from_slice(h_i);
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
            h_prev: h_prev_tape,
            cell: cell_tape,
        }
    } else {
        ChunkTape::default()
    }
}
