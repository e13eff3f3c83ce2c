//! The handwritten backward pass, from the forward pass' tape.

use rayon::prelude::*;

use super::super::gemm::{Layout, matmul, matmul_strided_rows};
use super::super::zeroed;
use super::cells::{add_into, flush_into, gru_grads, lstm_grads, mul_into, rnn_grads};
use super::shapes::check_shapes;
use super::tape::{CellTape, ChunkTape, RecurrentTape};
use super::{
    CellKind, ChunkDims, Direction, RecurrentDims, RecurrentGrads, RecurrentInputs,
    RecurrentWeights, StateOutput,
};

/// Backward pass: gradients of the inputs and weights given `d_out = ∂L/∂out`, `[B, T, H]`
/// (`[B, 1, H]` with [`StateOutput::FinalOnly`]).
/// `inputs` are the forward pass' (`x` is read for the input weights' gradient); not a
/// projected input. `tape` must be the one the forward pass of this call returned: its batch
/// split is used, whatever the thread count is now.
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
    assert!(
        !inputs.form.is_projected(),
        "a projected input is forward only"
    );
    check_shapes(cell, dims, &weights, &inputs);
    assert_eq!(tape.batch, batch, "the tape is of a batch of another size");
    let out_steps = inputs.output.steps(t_len);
    assert_eq!(d_out.len(), batch * out_steps * h, "d_out shape");
    let g = cell.gates() * h;
    let mut dx = zeroed(batch * t_len * e);
    let mut grads = RecurrentGrads {
        dx: Vec::new(),
        dw_ih: vec![0.0; e * g],
        dw_hh: vec![0.0; h * g],
        dbias: vec![0.0; weights.bias.len()],
    };
    if batch == 0 || t_len == 0 || h == 0 {
        grads.dx = dx;
        return grads;
    }
    // The forward pass' split: the chunks of the tape are its rows.
    let rows = tape.rows;
    assert_eq!(
        tape.chunks.len(),
        batch.div_ceil(rows.max(1)),
        "the tape's chunks do not cover the batch"
    );
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
                inputs.direction,
                (d_out, inputs.output),
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
    direction: Direction,
    (d_out, output): (&[f32], StateOutput),
    dx: &mut [f32],
) -> ChunkGrads {
    let ChunkDims { r, t_len, e, h, g } = d;
    let final_only = output == StateOutput::FinalOnly;
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
    let steps = direction.order(t_len);
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
            match &tape.cell {
                CellTape::Lstm { c, tanh_c } => {
                    let c_prev = match prev_t {
                        Some(p) => &c[(i * t_len + p) * h..(i * t_len + p + 1) * h],
                        None => &zeros[..],
                    };
                    lstm_grads(
                        &mut dxp[row],
                        gates,
                        &tanh_c[at],
                        c_prev,
                        dh_i,
                        &mut dc[i * h..(i + 1) * h],
                    );
                }
                CellTape::Gru { hp_n, h_before } => gru_grads(
                    &mut dxp[row.clone()],
                    &mut dhp[row],
                    gates,
                    &hp_n[at.clone()],
                    &h_before[at],
                    dh_i,
                    &mut dh_direct[i * h..(i + 1) * h],
                ),
                CellTape::Rnn => rnn_grads(&mut dxp[row], gates, dh_i),
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
