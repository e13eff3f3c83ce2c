//! Adversarial (AT) and virtual adversarial (VAT) training on the word vectors, after
//! Miyato, Dai & Goodfellow, "Adversarial Training Methods for Semi-Supervised Text
//! Classification" (ICLR 2017).
//!
//! Perturbations are measured on the word vectors normalized by the vocabulary's
//! frequency-weighted mean and variance, as in the paper (see `imdb_model::adversarial`), so
//! that growing the vectors cannot make them harmless. A step adds to the classification loss:
//! - AT: the loss at the vectors plus `r = ε·g/‖g‖`, with `g` the loss's gradient with
//!   respect to the vectors the first layer reads, per text over its real steps;
//! - VAT: `KL(p ‖ p at the vectors plus r_v)` on labelled and unlabelled texts, `p` held
//!   constant, `r_v = ε·d/‖d‖` with `d` the divergence's gradient at a random direction of
//!   norm ξ (one power iteration, or more).
//!
//! The gradient with respect to the vectors comes from a zero "probe" tensor added to them:
//! the fused recurrent kernels compute their input gradient in their backward pass anyway,
//! and the composed path gets it from Burn's autodiff.

use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::{Distribution, Tensor, TensorData};
use burn::train::TrainOutput;
use imdb_data::{EncodedSet, derive_seed};
use imdb_model::adversarial::{embedding_deviation, unit_per_text};
use imdb_model::{ModelInput, SentimentClassifier};

use crate::config::AdversarialConfig;
use crate::step::{StepOutput, TrainBatch, Trainee, classification_loss, host};

/// What an adversarial step needs besides the model: its settings and the word frequencies
/// that give the normalized scale of the vectors.
#[derive(Debug, Clone)]
pub struct Adversarial {
    /// The settings.
    pub config: AdversarialConfig,
    /// How often each word occurs in the training texts, `[num_words, 1]`, summing to 1.
    pub frequencies: Tensor<2>,
}

/// Each word's share of the real (unpadded) tokens of `set`, `num_words` long.
pub fn word_frequencies(set: &EncodedSet, num_words: usize) -> Vec<f32> {
    let mut counts = vec![0u64; num_words];
    let sequences = &set.sequences;
    let pre = sequences.padding == imdb_data::Padding::Pre;
    for (row, &len) in sequences
        .ids
        .chunks_exact(sequences.maxlen.max(1))
        .zip(&sequences.lengths)
    {
        let real = if pre {
            &row[row.len() - len..]
        } else {
            &row[..len]
        };
        for &id in real {
            if let Some(count) = counts.get_mut(id as usize) {
                *count += 1;
            }
        }
    }
    let total = counts.iter().sum::<u64>().max(1) as f64;
    counts.iter().map(|&c| (c as f64 / total) as f32).collect()
}

impl Adversarial {
    /// Settings with the frequencies of `train_set`'s words, on `device`.
    pub fn new(
        config: AdversarialConfig,
        train_set: &EncodedSet,
        num_words: usize,
        device: &burn::tensor::Device,
    ) -> Self {
        let frequencies = Tensor::from_data(
            TensorData::new(word_frequencies(train_set, num_words), [num_words, 1]),
            device,
        );
        Self {
            config,
            frequencies,
        }
    }
}

/// Mean `KL(p ‖ q)` of the class distributions given by logits `[batch, outputs]` (one
/// output: the sigmoid's two classes); `p_logits` is held constant.
pub fn kl_from_logits(p_logits: Tensor<2>, q_logits: Tensor<2>) -> Tensor<1> {
    let both = |logits: Tensor<2>| {
        let [batch, outputs] = logits.dims();
        if outputs == 1 {
            Tensor::cat(vec![Tensor::zeros([batch, 1], &logits.device()), logits], 1)
        } else {
            logits
        }
    };
    let log_p = burn::tensor::activation::log_softmax(both(p_logits.detach()), 1);
    let log_q = burn::tensor::activation::log_softmax(both(q_logits), 1);
    (log_p.clone().exp() * (log_p - log_q)).sum_dim(1).mean()
}

impl Adversarial {
    /// The spread of each dimension of `model`'s word vectors, `[1, 1, embed_dim]`: a
    /// gradient goes to normalized units times it, a direction comes back times it (see
    /// `imdb_model::adversarial`).
    fn deviation(&self, model: &SentimentClassifier) -> Tensor<3> {
        let embed_dim = model.config.embed_dim;
        embedding_deviation(model.embedding.val().detach(), self.frequencies.clone())
            .inner()
            .reshape([1, 1, embed_dim])
    }

    /// The virtual adversarial direction of `texts` (norm 1 per text over its real steps,
    /// measured on normalized vectors, zero on padding): where the prediction `p_logits` (held
    /// constant) changes most, found by `power_iterations` from a random start of norm `xi`
    /// (zero iterations: the random start itself). `seed` sets the dropout masks and the
    /// start.
    pub fn virtual_adversarial_direction(
        &self,
        model: &SentimentClassifier,
        texts: &ModelInput,
        p_logits: Tensor<2>,
        seed: u64,
    ) -> Tensor<3> {
        self.virtual_direction(model, texts, p_logits, seed, self.deviation(model))
    }

    fn virtual_direction(
        &self,
        model: &SentimentClassifier,
        texts: &ModelInput,
        p_logits: Tensor<2>,
        seed: u64,
        deviation: Tensor<3>,
    ) -> Tensor<3> {
        let mask = texts.step_mask.clone().inner();
        let device = texts.tokens.device();
        device.seed(derive_seed(seed, &[3]));
        let [rows, steps] = texts.tokens.dims();
        let start: Tensor<3> = Tensor::random(
            [rows, steps, model.config.embed_dim],
            Distribution::Normal(0.0, 1.0),
            &device,
        )
        .inner();
        let mut direction = unit_direction(start, mask.clone(), &deviation);
        for _ in 0..self.config.power_iterations {
            let d = (direction.clone() * self.config.xi as f32)
                .autodiff()
                .require_grad();
            let q = model.forward_perturbed(texts.clone(), Some(seed), d.clone());
            let mut grads = kl_from_logits(p_logits.clone(), q).backward();
            let g = d
                .grad_remove(&mut grads)
                .unwrap_or_else(|| d.clone().inner());
            direction = unit_direction(g, mask.clone(), &deviation);
        }
        direction
    }
}

/// `g` (`[batch, steps, embed_dim]`) as a direction of norm 1 per text over its real steps
/// (`mask`), measured on vectors normalized by `deviation`.
fn unit_direction(g: Tensor<3>, mask: Tensor<2>, deviation: &Tensor<3>) -> Tensor<3> {
    unit_per_text(g * deviation.clone(), mask) * deviation.clone()
}

/// One training step with the adversarial losses `adversarial` asks for; the reported loss
/// is the classification loss alone (with the L2 penalty), as in a plain step.
pub fn adversarial_step(
    trainee: &Trainee,
    adversarial: &Adversarial,
    batch: TrainBatch,
) -> TrainOutput<StepOutput> {
    let config = &adversarial.config;
    let epsilon = config.epsilon as f32;
    let model = &trainee.model;
    let embed_dim = model.config.embed_dim;
    let deviation = adversarial.deviation(model);
    let TrainBatch {
        input,
        labels,
        dropout_seed,
        unlabelled,
    } = batch;
    let mut accumulated = GradientsAccumulator::<Trainee>::new();
    let probe = zeros_like_input(embed_dim, &input).require_grad();
    let logits = model.forward_perturbed(input.clone(), Some(dropout_seed), probe.clone());
    let mut loss = classification_loss(logits.clone(), labels.clone());
    if let Some(penalty) = trainee.l2_penalty() {
        loss = loss + penalty;
    }
    let reported = host(loss.clone());
    let mut losses: Vec<Tensor<1>> = Vec::new();
    if config.kind.adversarial() {
        let mut grads = loss.backward();
        let g = probe
            .grad_remove(&mut grads)
            .unwrap_or_else(|| probe.clone().inner());
        accumulated.accumulate(trainee, GradientsParams::from_grads(grads, trainee));
        let mask = input.step_mask.clone().inner();
        let r = unit_direction(g, mask, &deviation) * epsilon;
        let pushed = model.forward_perturbed(input.clone(), Some(dropout_seed), r);
        losses.push(classification_loss(pushed, labels));
    } else {
        losses.push(loss);
    }
    if config.kind.virtual_adversarial() {
        let (texts, p_logits, seed) = match unlabelled {
            Some(texts) => {
                let seed = derive_seed(dropout_seed, &[2]);
                let p = model.forward(texts.clone(), Some(seed));
                (texts, p.detach(), seed)
            }
            None => (input, logits.clone().detach(), dropout_seed),
        };
        let direction =
            adversarial.virtual_direction(model, &texts, p_logits.clone(), seed, deviation);
        let q = model.forward_perturbed(texts, Some(seed), direction * epsilon);
        losses.push(kl_from_logits(p_logits, q));
    }
    let total = losses
        .into_iter()
        .reduce(|a, b| a + b)
        .expect("the classification loss is always there");
    let grads = total.backward();
    accumulated.accumulate(trainee, GradientsParams::from_grads(grads, trainee));
    TrainOutput {
        grads: accumulated.grads(),
        item: StepOutput {
            loss: reported.first().copied().unwrap_or(f32::NAN),
            logits: host(logits),
        },
    }
}

/// Zeros shaped like the word vectors `input` reads, `[batch, steps, embed_dim]`, on its
/// device.
fn zeros_like_input(embed_dim: usize, input: &ModelInput) -> Tensor<3> {
    let [batch, steps] = input.tokens.dims();
    Tensor::zeros([batch, steps, embed_dim], &input.tokens.device())
}

#[cfg(test)]
mod tests {
    use imdb_data::{EncodedSet, PaddedSequences, Padding};

    use super::word_frequencies;

    fn set(ids: Vec<u32>, lengths: Vec<usize>, padding: Padding) -> EncodedSet {
        EncodedSet {
            labels: vec![0; lengths.len()],
            source: (0..lengths.len()).collect(),
            sequences: PaddedSequences {
                ids,
                lengths,
                maxlen: 3,
                padding,
            },
        }
    }

    #[test]
    fn frequencies_count_real_tokens_only() {
        // Two texts of 2 and 3 ids in rows of 3; padding id 0 is not counted.
        let pre = set(vec![0, 2, 3, 3, 3, 1], vec![2, 3], Padding::Pre);
        let post = set(vec![2, 3, 0, 3, 3, 1], vec![2, 3], Padding::Post);
        for s in [pre, post] {
            let f = word_frequencies(&s, 5);
            assert_eq!(f, vec![0.0, 0.2, 0.2, 0.6, 0.0]);
        }
    }
}
