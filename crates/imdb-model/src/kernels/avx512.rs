//! AVX-512 forms of the LSTM's gate loops, the hottest code of training and inference.
//!
//! The portable loops in [`super::math`] compute `1 / x` with Newton steps from a bit-level
//! estimate and `2^n` with integer arithmetic, because the compiler vectorizes nothing better.
//! AVX-512 has instructions for both (`vrcp14ps`, 14 bits, then one Newton step; `vscalefps`),
//! which make a sigmoid about a third cheaper. Results agree with the portable loops to about
//! 1e-7 (tested below); which one runs depends only on the CPU, so a machine always gives the
//! same numbers.

use std::arch::x86_64::*;

/// Whether the AVX-512 loops can run for rows of `h` units on this CPU.
pub fn usable(h: usize) -> bool {
    h.is_multiple_of(16) && std::is_x86_feature_detected!("avx512f")
}

/// Whether [`lstm_step_inference`] can run for rows of `h` units on this CPU.
pub fn inference_usable(h: usize) -> bool {
    usable(h) && std::is_x86_feature_detected!("avx512dq")
}

/// `e^x` for 16 lanes; the same range reduction and polynomial as [`super::math::exp`].
#[inline]
#[target_feature(enable = "avx512f")]
fn exp(x: __m512) -> __m512 {
    let x = _mm512_min_ps(
        _mm512_max_ps(x, _mm512_set1_ps(-87.0)),
        _mm512_set1_ps(87.0),
    );
    let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
        _mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E)),
    );
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_359_4), x);
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.121_944_4e-4), r);
    let mut p = _mm512_set1_ps(1.987_569_1e-4);
    for c in [
        1.398_2e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_5e-1,
        5e-1,
    ] {
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
    }
    let er = _mm512_add_ps(
        _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, r),
        _mm512_set1_ps(1.0),
    );
    _mm512_scalef_ps(er, n)
}

/// `1 / x` for positive finite lanes: a 14-bit estimate and one Newton step.
#[inline]
#[target_feature(enable = "avx512f")]
fn recip(x: __m512) -> __m512 {
    let y = _mm512_rcp14_ps(x);
    _mm512_fmadd_ps(y, _mm512_fnmadd_ps(x, y, _mm512_set1_ps(1.0)), y)
}

#[inline]
#[target_feature(enable = "avx512f")]
fn sigmoid(x: __m512) -> __m512 {
    recip(_mm512_add_ps(
        _mm512_set1_ps(1.0),
        exp(_mm512_sub_ps(_mm512_setzero_ps(), x)),
    ))
}

#[inline]
#[target_feature(enable = "avx512f")]
fn tanh(x: __m512) -> __m512 {
    let d = recip(_mm512_add_ps(exp(_mm512_add_ps(x, x)), _mm512_set1_ps(1.0)));
    _mm512_fnmadd_ps(_mm512_set1_ps(2.0), d, _mm512_set1_ps(1.0))
}

/// [`super::math::flush`] for 16 lanes.
#[inline]
#[target_feature(enable = "avx512f")]
fn flush(x: __m512) -> __m512 {
    let tiny =
        _mm512_cmp_ps_mask::<_CMP_LT_OQ>(_mm512_abs_ps(x), _mm512_set1_ps(f32::MIN_POSITIVE));
    _mm512_maskz_mov_ps(!tiny, x)
}

/// Reads 16 lanes at `j`.
#[inline]
#[target_feature(enable = "avx512f")]
fn load(v: &[f32], j: usize) -> __m512 {
    assert!(j + 16 <= v.len());
    // SAFETY: the 16 lanes are inside `v` (asserted); unaligned loads are allowed.
    unsafe { _mm512_loadu_ps(v.as_ptr().add(j)) }
}

/// Writes 16 lanes at `j`.
#[inline]
#[target_feature(enable = "avx512f")]
fn store(v: &mut [f32], j: usize, x: __m512) {
    assert!(j + 16 <= v.len());
    // SAFETY: as in `load`.
    unsafe { _mm512_storeu_ps(v.as_mut_ptr().add(j), x) }
}

/// `g = act(g + hp)` for one row of `4h` gates: σ on the input, forget and output blocks, tanh
/// on the cell block. `h` must be a multiple of 16.
#[target_feature(enable = "avx512f")]
pub fn activate_lstm(g: &mut [f32], hp: &[f32], h: usize) {
    debug_assert!(h.is_multiple_of(16));
    for j in (0..4 * h).step_by(16) {
        let v = _mm512_add_ps(load(g, j), load(hp, j));
        let a = if (2 * h..3 * h).contains(&j) {
            tanh(v)
        } else {
            sigmoid(v)
        };
        store(g, j, a);
    }
}

/// `c = f·c + i·g; h = o·tanh(c)` for one row from activated gates; `tanh(c)` is also written
/// to `tanh_c` when given (the backward pass reads it). `c.len()` must be a multiple of 16.
#[target_feature(enable = "avx512f")]
pub fn lstm_update(g: &[f32], c: &mut [f32], hs: &mut [f32], mut tanh_c: Option<&mut [f32]>) {
    let n = c.len();
    debug_assert!(n.is_multiple_of(16));
    for j in (0..n).step_by(16) {
        let (ig, fg) = (load(g, j), load(g, n + j));
        let (cg, og) = (load(g, 2 * n + j), load(g, 3 * n + j));
        let c_new = flush(_mm512_fmadd_ps(fg, load(c, j), _mm512_mul_ps(ig, cg)));
        store(c, j, c_new);
        let tc = tanh(c_new);
        if let Some(t) = tanh_c.as_deref_mut() {
            store(t, j, tc);
        }
        store(hs, j, flush(_mm512_mul_ps(og, tc)));
    }
}

/// `2^y` for 16 lanes, within about 2e-7 relative for `|y| < 30` (the error grows as `|y|`
/// times 6e-8: `y` is already rounded); `y` above 100 is taken as 100.
///
/// Cheaper than [`exp`] by half: `vreduceps` gives the fraction `y - ⌊y⌋` in one instruction
/// and `vscalefps` multiplies by `2^⌊y⌋`, so only a degree-5 polynomial for `2^f` on `[0, 1)`
/// is left (coefficients fitted here for relative error, 1.6e-7 at most).
#[inline]
#[target_feature(enable = "avx512f,avx512dq")]
fn exp2_fast(y: __m512) -> __m512 {
    let y = _mm512_min_ps(y, _mm512_set1_ps(100.0));
    // Round down, and suppress the inexact flag.
    let f = _mm512_reduce_ps::<{ _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC }>(y);
    let mut p = _mm512_set1_ps(1.877_575_6e-3);
    for c in [
        8.989_342_5e-3,
        5.582_631_8e-2,
        2.401_536_1e-1,
        6.931_531e-1,
        9.999_999_4e-1,
    ] {
        p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(c));
    }
    _mm512_scalef_ps(p, y)
}

/// σ for inference, within about 1e-6 of [`sigmoid`] for pre-activations below 30.
#[inline]
#[target_feature(enable = "avx512f,avx512dq")]
fn sigmoid_fast(x: __m512) -> __m512 {
    let e = exp2_fast(_mm512_mul_ps(x, _mm512_set1_ps(-std::f32::consts::LOG2_E)));
    recip(_mm512_add_ps(_mm512_set1_ps(1.0), e))
}

/// tanh for inference, within about 1e-6 of [`tanh`].
#[inline]
#[target_feature(enable = "avx512f,avx512dq")]
fn tanh_fast(x: __m512) -> __m512 {
    let e = exp2_fast(_mm512_mul_ps(
        x,
        _mm512_set1_ps(2.0 * std::f32::consts::LOG2_E),
    ));
    let d = recip(_mm512_add_ps(e, _mm512_set1_ps(1.0)));
    _mm512_fnmadd_ps(_mm512_set1_ps(2.0), d, _mm512_set1_ps(1.0))
}

/// bf16 bits of 16 lanes, rounded to nearest with ties to even, in the low half of each
/// 32-bit lane: the same integer arithmetic as [`super::amx`]'s scalar rounding.
#[inline]
#[target_feature(enable = "avx512f")]
fn bf16_bits(x: __m512) -> __m512i {
    let bits = _mm512_castps_si512(x);
    let odd = _mm512_and_si512(_mm512_srli_epi32::<16>(bits), _mm512_set1_epi32(1));
    let rounded = _mm512_add_epi32(bits, _mm512_add_epi32(_mm512_set1_epi32(0x7FFF), odd));
    _mm512_srli_epi32::<16>(rounded)
}

/// Writes 16 lanes of `x` split for the AMX product into a row `[hi | hi | lo]` of `3n`
/// values, at `j` within each third, exactly as [`super::amx::split_row`] does.
#[inline]
#[target_feature(enable = "avx512f")]
fn store_split(out: &mut [u16], n: usize, j: usize, x: __m512) {
    assert!(2 * n + j + 16 <= out.len());
    let hi = bf16_bits(x);
    let lo = bf16_bits(_mm512_sub_ps(
        x,
        _mm512_castsi512_ps(_mm512_slli_epi32::<16>(hi)),
    ));
    let (hi, lo) = (_mm512_cvtepi32_epi16(hi), _mm512_cvtepi32_epi16(lo));
    let p = out.as_mut_ptr();
    // SAFETY: the three 16-value stores end inside `out` (asserted); unaligned stores are
    // allowed.
    unsafe {
        _mm256_storeu_si256(p.add(j).cast(), hi);
        _mm256_storeu_si256(p.add(n + j).cast(), hi);
        _mm256_storeu_si256(p.add(2 * n + j).cast(), lo);
    }
}

/// One LSTM step of one row for inference, gates and state update in one pass: the gates are
/// `act(hp + x)` (`4h` values each, Keras' order i, f, c, o), then `c = f·c + i·g` and
/// `h = o·tanh(c)`. Nothing is kept for a backward pass, so the gates are never stored, and
/// the nonlinearities are the cheaper ones above (within about 1e-6 of training's; inference
/// is only ever compared to 1e-5). With `split`, the new `h` is also written there split for
/// the next step's AMX product (see [`super::amx::SplitLhs::row_mut`]) while it is in
/// registers. `c.len()` must be a multiple of 16.
#[target_feature(enable = "avx512f,avx512dq")]
pub fn lstm_step_inference(
    hp: &[f32],
    x: &[f32],
    c: &mut [f32],
    hs: &mut [f32],
    mut split: Option<&mut [u16]>,
) {
    let n = c.len();
    debug_assert!(n.is_multiple_of(16));
    assert!(hp.len() >= 4 * n && x.len() >= 4 * n && hs.len() >= n);
    for j in (0..n).step_by(16) {
        let ig = sigmoid_fast(_mm512_add_ps(load(hp, j), load(x, j)));
        let fg = sigmoid_fast(_mm512_add_ps(load(hp, n + j), load(x, n + j)));
        let cg = tanh_fast(_mm512_add_ps(load(hp, 2 * n + j), load(x, 2 * n + j)));
        let og = sigmoid_fast(_mm512_add_ps(load(hp, 3 * n + j), load(x, 3 * n + j)));
        let c_new = flush(_mm512_fmadd_ps(fg, load(c, j), _mm512_mul_ps(ig, cg)));
        store(c, j, c_new);
        let h_new = flush(_mm512_mul_ps(og, tanh_fast(c_new)));
        store(hs, j, h_new);
        if let Some(out) = split.as_deref_mut() {
            store_split(out, n, j, h_new);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::math;
    use super::*;

    /// Inputs for one row of `h` units: pre-activations `(i - 64)·step` (saturated ends
    /// included), a second addend, and cell states from -4 up.
    fn row(h: usize, step: f32) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let pre = (0..4 * h).map(|i| (i as f32 - 64.0) * step).collect();
        let addend = (0..4 * h)
            .map(|i| ((i * 37) % 11) as f32 * 0.1 - 0.5)
            .collect();
        let c0 = (0..h).map(|j| j as f32 * 0.3 - 4.0).collect();
        (pre, addend, c0)
    }

    #[test]
    fn gate_loops_agree_with_the_portable_ones() {
        let h = 32;
        if !usable(h) {
            eprintln!("no AVX-512 on this CPU: its loops cannot run here");
            return;
        }
        let (g0, hp, c0) = row(h, 0.37);
        let mut g = g0.clone();
        // SAFETY: `usable` checked the CPU.
        unsafe { activate_lstm(&mut g, &hp, h) };
        for (j, (&a, (&x, &p))) in g.iter().zip(g0.iter().zip(&hp)).enumerate() {
            let v = x + p;
            let want = if (2 * h..3 * h).contains(&j) {
                math::tanh(v)
            } else {
                math::sigmoid(v)
            };
            assert!((a - want).abs() < 3e-7, "gate {j}: {a} vs {want}");
        }
        let (mut c, mut hs, mut tc) = (c0.clone(), vec![0.0; h], vec![0.0; h]);
        // SAFETY: as above.
        unsafe { lstm_update(&g, &mut c, &mut hs, Some(&mut tc)) };
        for j in 0..h {
            let c_new = g[h + j].mul_add(c0[j], g[j] * g[2 * h + j]);
            assert!((c[j] - c_new).abs() < 1e-6 * c_new.abs().max(1.0), "c {j}");
            assert!((tc[j] - math::tanh(c_new)).abs() < 3e-7, "tanh c {j}");
            assert!(
                (hs[j] - g[3 * h + j] * math::tanh(c_new)).abs() < 3e-7,
                "h {j}"
            );
        }
        // Gradients far below the normal range are flushed, as by the portable loop.
        let mut tiny_c = vec![1e-39f32; h];
        let mut halving = vec![0.0f32; 4 * h];
        halving[h..2 * h].fill(0.5);
        let mut hs = vec![1.0; h];
        // SAFETY: as above.
        unsafe { lstm_update(&halving, &mut tiny_c, &mut hs, None) };
        assert!(tiny_c.iter().chain(&hs).all(|&v| v == 0.0));
    }

    #[test]
    fn inference_step_agrees_with_the_training_loops() {
        let h = 32;
        if !inference_usable(h) {
            eprintln!("no AVX-512 on this CPU: its loops cannot run here");
            return;
        }
        // Pre-activations from -60 to 60, split between the product and the input.
        let (hp, x, c0) = row(h, 0.47);
        let (mut c, mut hs) = (c0.clone(), vec![0.0; h]);
        let mut split = vec![0u16; 3 * h];
        // SAFETY: `inference_usable` checked the CPU.
        unsafe { lstm_step_inference(&hp, &x, &mut c, &mut hs, Some(&mut split)) };
        let mut split_want = vec![0u16; 3 * h];
        super::super::amx::split_row(&hs, &mut split_want);
        assert_eq!(split, split_want, "split state");
        let (mut g, mut c_want, mut h_want) = (hp.clone(), c0, vec![0.0; h]);
        // SAFETY: as above.
        unsafe {
            activate_lstm(&mut g, &x, h);
            lstm_update(&g, &mut c_want, &mut h_want, None);
        }
        for j in 0..h {
            assert!(
                (c[j] - c_want[j]).abs() < 2e-6 * c_want[j].abs().max(1.0),
                "c {j}"
            );
            assert!(
                (hs[j] - h_want[j]).abs() < 2e-6,
                "h {j}: {} vs {}",
                hs[j],
                h_want[j]
            );
        }
        // The fast nonlinearities alone, over the whole range.
        let mut worst = (0.0f32, 0.0f32);
        for k in -2000..2000 {
            let v = k as f32 * 0.05 + 0.013;
            let (s, t) = lanes(v);
            worst.0 = worst.0.max((s - math::sigmoid(v)).abs());
            worst.1 = worst.1.max((t - math::tanh(v)).abs());
        }
        assert!(worst.0 < 1e-6 && worst.1 < 2e-6, "worst errors {worst:?}");
    }

    /// `sigmoid_fast` and `tanh_fast` of `v` (one lane).
    fn lanes(v: f32) -> (f32, f32) {
        let mut out = [0.0f32; 16];
        // SAFETY: only called after `inference_usable`.
        unsafe {
            let x = _mm512_set1_ps(v);
            store(&mut out, 0, sigmoid_fast(x));
            let s = out[0];
            store(&mut out, 0, tanh_fast(x));
            (s, out[0])
        }
    }
}
