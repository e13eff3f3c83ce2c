//! A recurrent language model whose body is a classifier's: the embedding and recurrent layers
//! learn to predict each next word of unlabelled text, then start a [`SentimentClassifier`]
//! (Dai & Le 2015's LM-LSTM, fastai's ULMFiT recipe).
//!
//! Training scores each position against its true next word and a shared set of sampled
//! words (a sampled softmax, Jean et al. 2015): the full softmax over a 20,000-word vocabulary
//! costs `positions × words × units` per batch, about 60 times the recurrent layer's own work
//! at the notebook's sizes, while 512 samples cost less than the layer. Evaluation uses the
//! full softmax, so perplexity is exact.

use burn::module::{Module, Param};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData, s};
use imdb_rng::SeededRng;

use crate::classifier::{ModelInput, SentimentClassifier};
use crate::config::ModelConfig;
use crate::error::ModelError;
use crate::init::{param1, param2, uniform};

/// A batch of text windows: each row's words, and the word that follows each of them.
#[derive(Debug, Clone)]
pub struct LanguageBatch {
    /// Word ids and the mask of real steps (rows shorter than the batch are padded after).
    pub input: ModelInput,
    /// `[batch, steps]`: the next word after each input word (any id on padded steps).
    pub next: Tensor<2, Int>,
}

impl LanguageBatch {
    /// A batch from windows of word ids: each window's words but the last are the input, and
    /// each word's successor its target. Windows shorter than two words are refused.
    pub fn from_windows(windows: &[&[u32]], device: &Device) -> Result<Self, ModelError> {
        let steps = windows.iter().map(|w| w.len()).max().unwrap_or(0);
        if windows.is_empty() || windows.iter().any(|w| w.len() < 2) {
            return Err(ModelError::InvalidConfig {
                key: "windows",
                problem: "a language batch needs windows of at least two words".into(),
            });
        }
        let steps = steps - 1;
        let rows = windows.len();
        let mut tokens = vec![0i64; rows * steps];
        let mut next = vec![0i64; rows * steps];
        let mut mask = vec![0.0f32; rows * steps];
        for (row, window) in windows.iter().enumerate() {
            for (t, pair) in window.windows(2).enumerate() {
                tokens[row * steps + t] = i64::from(pair[0]);
                next[row * steps + t] = i64::from(pair[1]);
                mask[row * steps + t] = 1.0;
            }
        }
        Ok(Self {
            input: ModelInput {
                tokens: Tensor::from_data(TensorData::new(tokens, [rows, steps]), device),
                step_mask: Tensor::from_data(TensorData::new(mask, [rows, steps]), device),
            },
            next: Tensor::from_data(TensorData::new(next, [rows, steps]), device),
        })
    }
}

/// Words sampled for a sampled softmax, shared by every position of a batch, with the log of
/// each one's sampling probability (subtracted from its logit, so that the sampled softmax
/// estimates the full one).
#[derive(Debug, Clone)]
pub struct SampledWords {
    /// `[samples]` word ids.
    pub ids: Tensor<1, Int>,
    /// `[samples]` log-probabilities of drawing each.
    pub log_q: Tensor<1>,
    /// `[batch, steps]` log-probabilities of drawing each position's true next word.
    pub next_log_q: Tensor<2>,
}

/// A recurrent language model: a classifier's body and an output layer over the vocabulary.
#[derive(Module, Debug)]
pub struct LanguageModel {
    /// The embedding and recurrent layers (its dense layer is not used here).
    pub body: SentimentClassifier,
    /// `[num_words, units]`: each word's output vector.
    pub output: Param<Tensor<2>>,
    /// `[num_words]`: each word's output bias.
    pub output_bias: Param<Tensor<1>>,
}

impl LanguageModel {
    /// A language model whose body is the classifier `config` describes (two classes), all of
    /// it drawn from `seed`: the body exactly as [`SentimentClassifier::new`] draws it.
    pub fn new(
        config: &ModelConfig,
        num_words: usize,
        seed: u64,
        device: &Device,
    ) -> Result<Self, ModelError> {
        config.check_one_directional()?;
        let body = SentimentClassifier::new(config, num_words, 2, seed, device)?;
        let units = config.units;
        let mut rng = SeededRng::new(seed ^ 0x1a9e_7a5e);
        let limit = 1.0 / (units as f32).sqrt();
        Ok(Self {
            body,
            output: param2(
                uniform(&mut rng, num_words * units, limit),
                [num_words, units],
                device,
            ),
            output_bias: param1(vec![0.0; num_words], device),
        })
    }

    /// Vocabulary size.
    pub fn num_words(&self) -> usize {
        self.output.dims()[0]
    }

    /// Mean sampled-softmax loss over the batch's real steps, dropout drawn from
    /// `dropout_seed`. A sample equal to a position's true word is left out of that position.
    pub fn sampled_loss(
        &self,
        batch: &LanguageBatch,
        samples: &SampledWords,
        dropout_seed: u64,
    ) -> Result<Tensor<1>, ModelError> {
        let hidden = self
            .body
            .step_features(batch.input.clone(), Some(dropout_seed))?;
        let [rows, steps, units] = hidden.dims();
        let n = rows * steps;
        let h: Tensor<2> = hidden.reshape([n, units]);
        let next: Tensor<1, Int> = batch.next.clone().reshape([n]);
        let weights = self.output.val();
        let bias = self.output_bias.val();
        let true_logit = (h.clone() * weights.clone().select(0, next.clone()))
            .sum_dim(1)
            .reshape([n])
            + bias.clone().select(0, next.clone())
            - samples.next_log_q.clone().reshape([n]);
        let sampled = h.matmul(weights.select(0, samples.ids.clone()).transpose())
            + (bias.select(0, samples.ids.clone()) - samples.log_q.clone()).unsqueeze_dim(0);
        let k = samples.ids.dims()[0];
        let hits = next
            .clone()
            .unsqueeze_dim::<2>(1)
            .expand([n, k])
            .equal(samples.ids.clone().unsqueeze_dim::<2>(0).expand([n, k]));
        let sampled = sampled.mask_fill(hits, -1.0e4);
        let logits = Tensor::cat(vec![true_logit.unsqueeze_dim(1), sampled], 1);
        let nll = log_softmax(logits, 1)
            .slice(s![.., 0..1])
            .reshape([n])
            .neg();
        let mask: Tensor<1> = batch.input.step_mask.clone().reshape([n]);
        let real = mask.clone().sum().clamp_min(1.0);
        Ok((nll * mask).sum() / real)
    }

    /// Summed negative log-likelihood of every real step's next word under the full softmax,
    /// and the number of real steps (dropout off): `exp(sum / count)` is the perplexity.
    pub fn negative_log_likelihood(
        &self,
        batch: &LanguageBatch,
    ) -> Result<(Tensor<1>, Tensor<1>), ModelError> {
        let hidden = self.body.step_features(batch.input.clone(), None)?;
        let [rows, steps, units] = hidden.dims();
        let n = rows * steps;
        let logits = hidden
            .reshape([n, units])
            .matmul(self.output.val().transpose())
            + self.output_bias.val().unsqueeze_dim(0);
        let next: Tensor<2, Int> = batch.next.clone().reshape([n, 1]);
        let nll = log_softmax(logits, 1).gather(1, next).reshape([n]).neg();
        let mask: Tensor<1> = batch.input.step_mask.clone().reshape([n]);
        Ok(((nll * mask.clone()).sum(), mask.sum()))
    }

    /// The classifier that starts from this model: its embedding and recurrent layers, and the
    /// dense layer (for `num_classes`) a classifier drawn from `seed` would have.
    pub fn into_classifier(
        self,
        num_classes: usize,
        seed: u64,
    ) -> Result<SentimentClassifier, ModelError> {
        let device = self.output.device();
        let fresh = SentimentClassifier::new(
            &self.body.config,
            self.num_words(),
            num_classes,
            seed,
            &device,
        )?;
        Ok(SentimentClassifier {
            embedding: self.body.embedding,
            encoder: self.body.encoder,
            transformer: None,
            dense_weight: fresh.dense_weight,
            dense_bias: fresh.dense_bias,
            config: self.body.config,
        })
    }
}
