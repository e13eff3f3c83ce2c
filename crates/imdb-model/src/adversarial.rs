//! What adversarial training (Miyato, Dai & Goodfellow, 2017) needs from the model: the scale
//! its perturbations are measured in, and perturbations of a norm per text over its real steps.
//!
//! The paper normalizes the word vectors by the vocabulary's frequency-weighted mean and
//! variance, so that a perturbation of a fixed norm cannot be made harmless by growing the
//! vectors. Here the vectors keep their own parametrization (a pretrained start keeps its
//! training dynamics, and a saved model needs nothing new to predict, serve or export) and the
//! perturbation is measured in those normalized units instead: the gradient is multiplied by
//! each dimension's [`embedding_deviation`] before it is scaled to its norm, and the
//! perturbation by the deviation again after. For the first layer's input this is exactly the
//! paper's perturbation of normalized vectors (the mean only shifts them).

use burn::tensor::Tensor;

/// Added to each dimension's variance before its square root.
pub const VARIANCE_FLOOR: f32 = 1e-6;

/// The frequency-weighted standard deviation of each dimension of the word vectors
/// `weights` (`[num_words, embed_dim]`), `[1, embed_dim]`; `frequencies` is `[num_words, 1]`,
/// summing to 1: how often each word occurs.
pub fn embedding_deviation(weights: Tensor<2>, frequencies: Tensor<2>) -> Tensor<2> {
    let mean = (weights.clone() * frequencies.clone()).sum_dim(0);
    let centered = weights - mean;
    let variance = (centered.clone() * centered * frequencies).sum_dim(0);
    (variance + VARIANCE_FLOOR).sqrt()
}

/// Each text's direction, `[batch, steps, features]`: `g` with its padded steps zeroed and
/// scaled to an L2 norm of 1 per text (a text whose `g` is zero stays zero).
pub fn unit_per_text(g: Tensor<3>, step_mask: Tensor<2>) -> Tensor<3> {
    let [batch, steps, _] = g.dims();
    let masked = g * step_mask.reshape([batch, steps, 1]);
    let norm = (masked.clone() * masked.clone())
        .sum_dim(2)
        .sum_dim(1)
        .sqrt()
        .clamp_min(1e-12);
    masked / norm
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, TensorData};

    use super::*;

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn a_direction_has_norm_one_per_text_and_nothing_on_padding() {
        let device = Device::flex();
        let g: Tensor<3> = Tensor::random(
            [3, 4, 2],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        let mask = Tensor::<2>::from_data(
            TensorData::new(
                vec![
                    1.0f32, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0,
                ],
                [3, 4],
            ),
            &device,
        );
        let unit = values(unit_per_text(g, mask) * 5.0);
        let norm = |row: &[f32]| row.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm(&unit[0..8]) - 5.0).abs() < 1e-4);
        assert!((norm(&unit[8..16]) - 5.0).abs() < 1e-4);
        // Padded steps get nothing; an all-padding text stays zero.
        assert!(unit[8..12].iter().all(|&v| v == 0.0));
        assert!(unit[16..24].iter().all(|&v| v == 0.0));
    }

    #[test]
    fn the_deviation_is_weighted_by_word_frequency() {
        let device = Device::flex();
        let w = [1.0f32, 10.0, 3.0, -2.0, 8.0, 4.0];
        let f = [0.5f32, 0.3, 0.2];
        let weights = Tensor::<2>::from_data(TensorData::new(w.to_vec(), [3, 2]), &device);
        let freq = Tensor::<2>::from_data(TensorData::new(f.to_vec(), [3, 1]), &device);
        let deviation = values(embedding_deviation(weights, freq));
        for dim in 0..2 {
            let mean: f32 = (0..3).map(|r| f[r] * w[r * 2 + dim]).sum();
            let var: f32 = (0..3).map(|r| f[r] * (w[r * 2 + dim] - mean).powi(2)).sum();
            let expected = (var + VARIANCE_FLOOR).sqrt();
            assert!(
                (deviation[dim] - expected).abs() < 1e-5,
                "dimension {dim}: {} for {expected}",
                deviation[dim]
            );
        }
    }
}
