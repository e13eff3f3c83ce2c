//! Each cell's per-row vector loops: gates, state updates and their gradients.
//!
//! Loops are written so the compiler vectorizes them (exactly sized slices, no division) and
//! compiled for AVX-512, AVX2 and plain x86-64, chosen at run time (`dispatch_simd!`); the
//! LSTM's, the hottest, also have hand-written AVX-512 forms.

use super::super::math::{dispatch_simd, flush, sigmoid, tanh};

/// Asks the CPU to bring `v` into the caches (a hint; nothing happens off x86-64).
pub(super) fn prefetch(v: &[f32]) {
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
pub(super) fn lstm_inference_usable(h: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    return super::super::avx512::inference_usable(h);
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// One LSTM step of one row for inference: gates `act(hp + x)`, then the new `c` and `h`, in
/// one pass with nothing kept for backward, and `h` split for the AMX product into `split`
/// when given. Only called where [`lstm_inference_usable`].
pub(super) fn lstm_step_inference(
    hp: &[f32],
    x: &[f32],
    c: &mut [f32],
    hs: &mut [f32],
    split: Option<&mut [u16]>,
) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the caller checked `lstm_inference_usable`, which checked the CPU's features.
    unsafe {
        super::super::avx512::lstm_step_inference(hp, x, c, hs, split)
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("no fused inference step off x86-64");
}

/// Adds the recurrent product `hp` to the input projection `g` and applies σ to the input,
/// forget and output gates and tanh to the cell gate, in place.
pub(super) fn activate_lstm(g: &mut [f32], hp: &[f32], h: usize) {
    #[cfg(target_arch = "x86_64")]
    if super::super::avx512::usable(h) {
        // SAFETY: `usable` checked that the CPU has AVX-512.
        return unsafe { super::super::avx512::activate_lstm(g, hp, h) };
    }
    activate_lstm_portable(g, hp, h);
}

/// `c = f·c + i·g; h = o·tanh(c)` for one row, from activated gates; `tanh(c)` is also written
/// to `tanh_c` when given (the backward pass reads it).
pub(super) fn lstm_update(g: &[f32], c: &mut [f32], hs: &mut [f32], tanh_c: Option<&mut [f32]>) {
    #[cfg(target_arch = "x86_64")]
    if super::super::avx512::usable(c.len()) {
        // SAFETY: as in `activate_lstm`.
        return unsafe { super::super::avx512::lstm_update(g, c, hs, tanh_c) };
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
    pub(super) fn activate_gru(g: &mut [f32], hp: &[f32], h: usize) {
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
    pub(super) fn gru_update(g: &[f32], hs: &mut [f32]) {
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
    pub(super) fn tanh_in_place(v: &mut [f32]) {
        for x in v.iter_mut() {
            *x = flush(tanh(*x));
        }
    }
}

dispatch_simd! {
    pub(super) fn tanh_into(dst: &mut [f32], src: &[f32]) {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = tanh(s);
        }
    }
}

dispatch_simd! {
    pub(super) fn mul_into(dst: &mut [f32], a: &[f32], b: &[f32]) {
        for ((d, &x), &y) in dst.iter_mut().zip(a).zip(b) {
            *d = flush(x * y);
        }
    }
}

dispatch_simd! {
    /// LSTM gate pre-activation gradients of one row; updates `dc` to `∂L/∂c_{t-1}`.
    pub(super) fn lstm_grads(
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
    pub(super) fn gru_grads(
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
    pub(super) fn rnn_grads(da: &mut [f32], h_new: &[f32], dh: &[f32]) {
        for ((d, &hv), &g) in da.iter_mut().zip(h_new).zip(dh) {
            *d = flush(g * (1.0 - hv * hv));
        }
    }
}

dispatch_simd! {
    pub(super) fn flush_into(dst: &mut [f32], src: &[f32]) {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = flush(s);
        }
    }
}

dispatch_simd! {
    pub(super) fn add_into(dst: &mut [f32], src: &[f32]) {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d += s;
        }
    }
}
