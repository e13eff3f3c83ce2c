//! One Adam update of one parameter in a single pass over its four buffers.

use rayon::prelude::*;

use super::math::{dispatch_simd, flush};

/// The scalars of one Adam step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamStep {
    /// Step size.
    pub lr: f32,
    /// Decay of the first moment.
    pub beta_1: f32,
    /// Decay of the second moment.
    pub beta_2: f32,
    /// Added to the denominator.
    pub epsilon: f32,
    /// 1-based step number (for the bias corrections).
    pub time: u32,
}

impl AdamStep {
    /// `(step size × √(1-β₂ᵗ)/(1-β₁ᵗ), ε × √(1-β₂ᵗ))`: the bias corrections folded into two
    /// constants, as Burn's Adam does.
    fn factors(&self) -> (f32, f32) {
        let t = self.time.max(1) as i32;
        let bc2 = (1.0 - (self.beta_2 as f64).powi(t)).sqrt();
        let bc1 = 1.0 - (self.beta_1 as f64).powi(t);
        (
            (self.lr as f64 * bc2 / bc1) as f32,
            (self.epsilon as f64 * bc2) as f32,
        )
    }
}

/// Updates `param`, `m` and `v` in place from `grad`:
/// `m = β₁m + (1-β₁)g; v = β₂v + (1-β₂)g²; param -= lr·m̂ / (√v̂ + ε)`.
pub fn adam_update(param: &mut [f32], grad: &[f32], m: &mut [f32], v: &mut [f32], step: AdamStep) {
    assert!(
        grad.len() == param.len() && m.len() == param.len() && v.len() == param.len(),
        "adam buffers"
    );
    let (scale, eps) = step.factors();
    // Element-wise, so chunks are independent: large parameters (the embedding) use every
    // core, and the result does not depend on the split.
    const CHUNK: usize = 1 << 16;
    param
        .par_chunks_mut(CHUNK)
        .zip(grad.par_chunks(CHUNK))
        .zip(m.par_chunks_mut(CHUNK))
        .zip(v.par_chunks_mut(CHUNK))
        .for_each(|(((p, g), m), v)| update(p, g, m, v, step.beta_1, step.beta_2, scale, eps));
}

dispatch_simd! {
    #[allow(clippy::too_many_arguments)]
    fn update(
        param: &mut [f32],
        grad: &[f32],
        m: &mut [f32],
        v: &mut [f32],
        beta_1: f32,
        beta_2: f32,
        scale: f32,
        eps: f32,
    ) {
        let (c1, c2) = (1.0 - beta_1, 1.0 - beta_2);
        for (((p, &g), m), v) in param.iter_mut().zip(grad).zip(m.iter_mut()).zip(v.iter_mut()) {
            *m = flush(beta_1.mul_add(*m, c1 * g));
            *v = flush(beta_2.mul_add(*v, c2 * g * g));
            *p -= scale * *m / (v.sqrt() + eps);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_textbook_adam() {
        let step = |t| AdamStep {
            lr: 0.01,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
            time: t,
        };
        let (mut p, mut m, mut v) = (vec![0.5f32, -1.0, 2.0], vec![0.0f32; 3], vec![0.0f32; 3]);
        let (mut p64, mut m64, mut v64) =
            (vec![0.5f64, -1.0, 2.0], vec![0.0f64; 3], vec![0.0f64; 3]);
        for t in 1..=5u32 {
            let g: Vec<f32> = p.iter().map(|x| 2.0 * x + 0.1 * t as f32).collect();
            let g64: Vec<f64> = p64.iter().map(|x| 2.0 * x + 0.1 * t as f64).collect();
            adam_update(&mut p, &g, &mut m, &mut v, step(t));
            for i in 0..3 {
                m64[i] = 0.9 * m64[i] + 0.1 * g64[i];
                v64[i] = 0.999 * v64[i] + 0.001 * g64[i] * g64[i];
                let m_hat = m64[i] / (1.0 - 0.9f64.powi(t as i32));
                let v_hat = v64[i] / (1.0 - 0.999f64.powi(t as i32));
                p64[i] -= 0.01 * m_hat / (v_hat.sqrt() + 1e-7);
            }
        }
        for (a, b) in p.iter().zip(&p64) {
            assert!((*a as f64 - b).abs() < 1e-5, "{a} vs {b}");
        }
    }
}
