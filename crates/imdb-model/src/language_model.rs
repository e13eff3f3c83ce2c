//! A recurrent language model whose body is a classifier's: the embedding and recurrent layers
//! learn to predict each next word of unlabelled text, then start a [`SentimentClassifier`]
//! (Dai & Le 2015's LM-LSTM, fastai's ULMFiT recipe). A bidirectional body is trained as
//! ELMo's (Peters et al. 2018) is: its forward half predicts each next word, its backward half
//! each previous word, through one embedding and one output layer, so that it can start a
//! bidirectional classifier.
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

/// A batch of text windows: each row's words, and the words to predict from them.
#[derive(Debug, Clone)]
pub struct LanguageBatch {
    /// Word ids and the mask of real steps (rows shorter than the batch are padded after).
    pub input: ModelInput,
    /// `[batch, steps]`: the word after each input word (any id where there is none).
    pub next: Tensor<2, Int>,
    /// `[batch, steps]`: 1 where `next` is a word to predict, 0 elsewhere.
    pub next_mask: Tensor<2>,
    /// For a bidirectional model, what its backward half predicts: the word before each input
    /// word (`[batch, steps]`, any id where there is none) and where there is one (1, else 0).
    pub previous: Option<(Tensor<2, Int>, Tensor<2>)>,
}

impl LanguageBatch {
    /// A batch from windows of word ids. One-directional: each window's words but the last
    /// are the input, and each word's successor its target. `bidirectional`: every word is
    /// input; the forward half predicts each word's successor and the backward half its
    /// predecessor, so that windows overlapping by one word make every word of a text a
    /// target once in each direction (but the text's first forward, its last backward).
    /// Windows shorter than two words are refused.
    pub fn from_windows(
        windows: &[&[u32]],
        bidirectional: bool,
        device: &Device,
    ) -> Result<Self, ModelError> {
        if windows.is_empty() || windows.iter().any(|w| w.len() < 2) {
            return Err(ModelError::InvalidConfig {
                key: "windows",
                problem: "a language batch needs windows of at least two words".into(),
            });
        }
        let longest = windows.iter().map(|w| w.len()).max().unwrap_or(0);
        // One-directional, a window's last word is only a target.
        let steps = if bidirectional { longest } else { longest - 1 };
        let rows = windows.len();
        let mut tokens = vec![0i64; rows * steps];
        let mut mask = vec![0.0f32; rows * steps];
        let mut next = vec![0i64; rows * steps];
        let mut next_mask = vec![0.0f32; rows * steps];
        let mut previous = vec![0i64; rows * steps];
        let mut previous_mask = vec![0.0f32; rows * steps];
        for (row, window) in windows.iter().enumerate() {
            let input = if bidirectional {
                &window[..]
            } else {
                &window[..window.len() - 1]
            };
            for (t, &word) in input.iter().enumerate() {
                let at = row * steps + t;
                tokens[at] = i64::from(word);
                mask[at] = 1.0;
                if let Some(&after) = window.get(t + 1) {
                    next[at] = i64::from(after);
                    next_mask[at] = 1.0;
                }
                if t > 0 {
                    previous[at] = i64::from(window[t - 1]);
                    previous_mask[at] = 1.0;
                }
            }
        }
        let ids =
            |values: Vec<i64>| Tensor::from_data(TensorData::new(values, [rows, steps]), device);
        let floats =
            |values: Vec<f32>| Tensor::from_data(TensorData::new(values, [rows, steps]), device);
        Ok(Self {
            input: ModelInput {
                tokens: ids(tokens),
                step_mask: floats(mask),
            },
            next: ids(next),
            next_mask: floats(next_mask),
            previous: bidirectional.then(|| (ids(previous), floats(previous_mask))),
        })
    }
}

/// Words sampled for a sampled softmax, shared by every position of a batch, with the log of
/// each word's expected count among them (subtracted from its logit, so that the sampled
/// softmax estimates the full one).
#[derive(Debug, Clone)]
pub struct SampledWords {
    /// `[samples]` word ids.
    pub ids: Tensor<1, Int>,
    /// `[samples]` the log-correction of each.
    pub log_q: Tensor<1>,
    /// `[num_words]` the log-correction of every word (read for each position's true word).
    pub word_log_q: Tensor<1>,
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
        config.check_language_model()?;
        config.check_language_model_vocabulary(num_words)?;
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

    /// Whether the body reads both ways (the backward half predicts each previous word).
    pub fn is_bidirectional(&self) -> bool {
        self.body.config.bidirectional
    }

    /// Mean sampled-softmax loss over the batch's targets (both directions' for a
    /// bidirectional model), dropout drawn from `dropout_seed`. A sample equal to a position's
    /// true word is left out of that position.
    pub fn sampled_loss(
        &self,
        batch: &LanguageBatch,
        samples: &SampledWords,
        dropout_seed: u64,
    ) -> Result<Tensor<1>, ModelError> {
        let hidden = self
            .body
            .step_features(batch.input.clone(), Some(dropout_seed))?;
        let (sum, count) = self.over_directions(hidden, batch, |h, targets| {
            self.sampled_nll(h, targets, samples)
        });
        Ok(sum / count.clamp_min(1.0))
    }

    /// Summed negative log-likelihood of every target under the full softmax (both
    /// directions' for a bidirectional model), and the number of targets (dropout off):
    /// `exp(sum / count)` is the perplexity.
    pub fn negative_log_likelihood(
        &self,
        batch: &LanguageBatch,
    ) -> Result<(Tensor<1>, Tensor<1>), ModelError> {
        let hidden = self.body.step_features(batch.input.clone(), None)?;
        Ok(self.over_directions(hidden, batch, |h, targets| self.full_nll(h, targets)))
    }

    /// `nll` of each direction's step features against its targets, summed over the targets,
    /// and the number of targets.
    fn over_directions(
        &self,
        hidden: Tensor<3>,
        batch: &LanguageBatch,
        nll: impl Fn(Tensor<2>, Tensor<1, Int>) -> Tensor<1>,
    ) -> (Tensor<1>, Tensor<1>) {
        let [rows, steps, features] = hidden.dims();
        let n = rows * steps;
        let units = self.output.dims()[1];
        let masked = |h: Tensor<3>, targets: &Tensor<2, Int>, mask: &Tensor<2>| {
            let mask: Tensor<1> = mask.clone().reshape([n]);
            let nll = nll(h.reshape([n, units]), targets.clone().reshape([n]));
            ((nll * mask.clone()).sum(), mask.sum())
        };
        match &batch.previous {
            None => masked(hidden, &batch.next, &batch.next_mask),
            Some((previous, previous_mask)) => {
                let forward = hidden.clone().slice(s![.., .., 0..units]);
                let backward = hidden.slice(s![.., .., units..features]);
                let (f_sum, f_count) = masked(forward, &batch.next, &batch.next_mask);
                let (b_sum, b_count) = masked(backward, previous, previous_mask);
                (f_sum + b_sum, f_count + b_count)
            }
        }
    }

    /// `[n]` sampled-softmax negative log-likelihood of each row of `h` (`[n, units]`)
    /// predicting its word in `targets`.
    fn sampled_nll(
        &self,
        h: Tensor<2>,
        targets: Tensor<1, Int>,
        samples: &SampledWords,
    ) -> Tensor<1> {
        let [n, _] = h.dims();
        let weights = self.output.val();
        let bias = self.output_bias.val();
        let true_logit = (h.clone() * weights.clone().select(0, targets.clone()))
            .sum_dim(1)
            .reshape([n])
            + bias.clone().select(0, targets.clone())
            - samples.word_log_q.clone().select(0, targets.clone());
        let sampled = h.matmul(weights.select(0, samples.ids.clone()).transpose())
            + (bias.select(0, samples.ids.clone()) - samples.log_q.clone()).unsqueeze_dim(0);
        let k = samples.ids.dims()[0];
        let hits = targets
            .unsqueeze_dim::<2>(1)
            .expand([n, k])
            .equal(samples.ids.clone().unsqueeze_dim::<2>(0).expand([n, k]));
        let sampled = sampled.mask_fill(hits, -1.0e4);
        let logits = Tensor::cat(vec![true_logit.unsqueeze_dim(1), sampled], 1);
        log_softmax(logits, 1)
            .slice(s![.., 0..1])
            .reshape([n])
            .neg()
    }

    /// `[n]` full-softmax negative log-likelihood of each row of `h` predicting its target.
    fn full_nll(&self, h: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
        let [n, _] = h.dims();
        let logits =
            h.matmul(self.output.val().transpose()) + self.output_bias.val().unsqueeze_dim(0);
        log_softmax(logits, 1)
            .gather(1, targets.reshape([n, 1]))
            .reshape([n])
            .neg()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(t: &Tensor<2, Int>) -> Vec<i64> {
        t.to_data().convert::<i64>().try_to_vec::<i64>().unwrap()
    }

    fn floats(t: &Tensor<2>) -> Vec<f32> {
        t.to_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn batches_put_each_word_against_its_neighbours() {
        let device = Device::flex();
        let windows: [&[u32]; 2] = [&[5, 6, 7, 8], &[9, 10]];
        let one_way = LanguageBatch::from_windows(&windows, false, &device).unwrap();
        assert_eq!(ids(&one_way.input.tokens), [5, 6, 7, 9, 0, 0]);
        assert_eq!(ids(&one_way.next), [6, 7, 8, 10, 0, 0]);
        assert_eq!(floats(&one_way.next_mask), [1., 1., 1., 1., 0., 0.]);
        assert!(one_way.previous.is_none());

        let both = LanguageBatch::from_windows(&windows, true, &device).unwrap();
        assert_eq!(ids(&both.input.tokens), [5, 6, 7, 8, 9, 10, 0, 0]);
        assert_eq!(
            floats(&both.input.step_mask),
            [1., 1., 1., 1., 1., 1., 0., 0.]
        );
        assert_eq!(ids(&both.next), [6, 7, 8, 0, 10, 0, 0, 0]);
        assert_eq!(floats(&both.next_mask), [1., 1., 1., 0., 1., 0., 0., 0.]);
        let (previous, previous_mask) = both.previous.unwrap();
        assert_eq!(ids(&previous), [0, 5, 6, 7, 0, 9, 0, 0]);
        assert_eq!(floats(&previous_mask), [0., 1., 1., 1., 0., 1., 0., 0.]);

        let err = LanguageBatch::from_windows(&[&[5]], true, &device).unwrap_err();
        assert!(err.to_string().contains("at least two words"), "{err}");
    }
}
