//! Keras' default initializers, drawn from a seeded generator so that a seed fixes every
//! weight on every backend.

use burn::module::Param;
use burn::tensor::{Device, Tensor, TensorData};
use imdb_rng::SeededRng;

/// A standard normal draw (Box–Muller).
pub fn normal(rng: &mut SeededRng) -> f32 {
    let u1 = (rng.next_f32() as f64).max(1e-12);
    let u2 = rng.next_f32() as f64;
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

/// `n` values uniform in `[-limit, limit)`.
pub fn uniform(rng: &mut SeededRng, n: usize, limit: f32) -> Vec<f32> {
    (0..n)
        .map(|_| (rng.next_f32() * 2.0 - 1.0) * limit)
        .collect()
}

/// Glorot (Xavier) uniform for a `[fan_in, fan_out]` matrix: Keras' default kernel initializer.
pub fn glorot_uniform(rng: &mut SeededRng, fan_in: usize, fan_out: usize) -> Vec<f32> {
    let limit = (6.0 / (fan_in + fan_out) as f32).sqrt();
    uniform(rng, fan_in * fan_out, limit)
}

/// An orthogonal `[rows, cols]` matrix, Keras' default recurrent initializer: the rows (or
/// columns, whichever are fewer) are orthonormal.
pub fn orthogonal(rng: &mut SeededRng, rows: usize, cols: usize) -> Vec<f32> {
    let (long, short) = (rows.max(cols), rows.min(cols));
    // `short` random vectors of length `long`, orthonormalized by modified Gram–Schmidt in f64.
    let mut vectors: Vec<Vec<f64>> = (0..short)
        .map(|_| (0..long).map(|_| normal(rng) as f64).collect())
        .collect();
    for i in 0..short {
        for j in 0..i {
            let dot: f64 = vectors[i].iter().zip(&vectors[j]).map(|(a, b)| a * b).sum();
            let (head, tail) = vectors.split_at_mut(i);
            for (a, b) in tail[0].iter_mut().zip(&head[j]) {
                *a -= dot * b;
            }
        }
        let norm = vectors[i]
            .iter()
            .map(|a| a * a)
            .sum::<f64>()
            .sqrt()
            .max(1e-12);
        vectors[i].iter_mut().for_each(|a| *a /= norm);
    }
    let mut out = vec![0.0f32; rows * cols];
    for (k, v) in vectors.iter().enumerate() {
        for (l, &a) in v.iter().enumerate() {
            // Fewer rows: each row is a vector; fewer columns: each column is.
            let (r, c) = if rows <= cols { (k, l) } else { (l, k) };
            out[r * cols + c] = a as f32;
        }
    }
    out
}

/// A trainable 2-D parameter from row-major values.
pub fn param2(values: Vec<f32>, shape: [usize; 2], device: &Device) -> Param<Tensor<2>> {
    Param::from_tensor(Tensor::from_data(TensorData::new(values, shape), device))
}

/// A trainable 1-D parameter.
pub fn param1(values: Vec<f32>, device: &Device) -> Param<Tensor<1>> {
    let n = values.len();
    Param::from_tensor(Tensor::from_data(TensorData::new(values, [n]), device))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orthogonal_rows_are_orthonormal() {
        let (rows, cols) = (4, 10);
        let w = orthogonal(&mut SeededRng::new(1), rows, cols);
        for i in 0..rows {
            for j in 0..rows {
                let dot: f32 = (0..cols).map(|c| w[i * cols + c] * w[j * cols + c]).sum();
                let expected = if i == j { 1.0 } else { 0.0 };
                assert!((dot - expected).abs() < 1e-5, "({i},{j}) {dot}");
            }
        }
    }

    #[test]
    fn orthogonal_square_and_tall() {
        let w = orthogonal(&mut SeededRng::new(2), 6, 3);
        for i in 0..3 {
            let norm: f32 = (0..6).map(|r| w[r * 3 + i] * w[r * 3 + i]).sum();
            assert!((norm - 1.0).abs() < 1e-5);
        }
    }

    #[test]
    fn glorot_limits_and_normal_moments() {
        let w = glorot_uniform(&mut SeededRng::new(3), 100, 50);
        let limit = (6.0f32 / 150.0).sqrt();
        assert!(w.iter().all(|v| v.abs() <= limit));
        let mut rng = SeededRng::new(4);
        let draws: Vec<f32> = (0..20_000).map(|_| normal(&mut rng)).collect();
        let mean = draws.iter().sum::<f32>() / draws.len() as f32;
        let var = draws.iter().map(|d| (d - mean).powi(2)).sum::<f32>() / draws.len() as f32;
        assert!(
            mean.abs() < 0.03 && (var - 1.0).abs() < 0.05,
            "{mean} {var}"
        );
    }
}
