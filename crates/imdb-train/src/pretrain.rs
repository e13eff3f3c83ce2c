//! Language-model pretraining: a [`LanguageModel`] learns to predict each next word of
//! unlabelled texts (and, bidirectional, each previous word too), so that its embedding and
//! recurrent layers can start a classifier.
//!
//! Texts are cut into windows of `window` words (plus the word after, the last target);
//! windows are shuffled each epoch and batched. The loss is a sampled softmax (see
//! [`imdb_model::language_model`]) whose samples follow word2vec's unigram^0.75 distribution;
//! the held-out perplexity uses the full softmax.

use std::time::Instant;

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use imdb_data::split::{SeededRng, derive_seed, shuffled_indices};
use imdb_model::language_model::{LanguageBatch, LanguageModel, SampledWords};
use serde::{Deserialize, Serialize};

use crate::config::TrainConfig;
use crate::error::TrainError;
use crate::learner::optimizer;
use crate::step::try_host;

/// Settings of language-model pretraining.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PretrainConfig {
    /// Passes over the texts.
    pub epochs: usize,
    /// Words per window (the steps back-propagation runs through).
    pub window: usize,
    /// Windows per batch.
    pub batch_size: usize,
    /// Words sampled per batch for the sampled softmax.
    pub samples: usize,
    /// Adam's step size.
    pub learning_rate: f64,
    /// Gradients are scaled down to this norm when longer.
    pub grad_clip_norm: f64,
    /// Train on at most this many texts, the first ones (none: all of them); for quick
    /// checks. The held-out texts are not cut.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_texts: Option<usize>,
    /// The language model's own seed (its initialization, shuffling, samples, dropout), for
    /// callers that pretrain once for runs of several seeds; none: the run's seed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

/// The most words a pretraining batch may sample for its softmax.
pub const MAX_SAMPLES: usize = 65_536;

impl Default for PretrainConfig {
    fn default() -> Self {
        Self {
            epochs: 1,
            window: 70,
            batch_size: 64,
            samples: 512,
            learning_rate: 0.003,
            grad_clip_norm: 1.0,
            max_texts: None,
            seed: None,
        }
    }
}

impl PretrainConfig {
    /// Checks every setting, naming the bad one.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |key: &'static str, problem: &str| {
            Err(TrainError::InvalidConfig {
                key,
                problem: problem.to_string(),
            })
        };
        if self.epochs == 0 {
            return bad("epochs", "must be at least 1");
        }
        if self.window < 2 {
            return bad("window", "must be at least 2 words");
        }
        if self.window > imdb_data::MAX_MAXLEN {
            return bad(
                "window",
                &format!("must be at most {} words", imdb_data::MAX_MAXLEN),
            );
        }
        if self.batch_size == 0 {
            return bad("batch_size", "must be at least 1");
        }
        if self.batch_size > crate::config::MAX_BATCH_SIZE {
            return bad(
                "batch_size",
                &format!("must be at most {}", crate::config::MAX_BATCH_SIZE),
            );
        }
        if self.samples == 0 {
            return bad("samples", "must be at least 1");
        }
        // Each window's word scores every sample: a batch holds batch × window × samples.
        if self.samples > MAX_SAMPLES {
            return bad(
                "samples",
                &format!("must be at most {MAX_SAMPLES} (512 is the default)"),
            );
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad("learning_rate", "must be a positive number");
        }
        if !(self.grad_clip_norm.is_finite() && self.grad_clip_norm > 0.0) {
            return bad("grad_clip_norm", "must be a positive number");
        }
        if self.max_texts == Some(0) {
            return bad(
                "max_texts",
                "must be at least 1 (leave it out to use every text)",
            );
        }
        Ok(())
    }
}

/// One epoch of pretraining.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PretrainEpoch {
    /// 1-based.
    pub epoch: usize,
    /// Mean sampled-softmax loss over the epoch's batches.
    pub train_loss: f64,
    /// Perplexity of the held-out texts under the full softmax after the epoch.
    pub held_out_perplexity: f64,
    /// Seconds of training (the held-out pass excluded).
    pub seconds: f64,
}

/// What pretraining reports as it goes.
pub trait PretrainObserver {
    /// After each batch: its index, how many the epoch has, the epoch's mean loss so far.
    fn batch_end(&mut self, _epoch: usize, _batch: usize, _batches: usize, _loss: f64) {}
    /// After each epoch.
    fn epoch_end(&mut self, _record: &PretrainEpoch) {}
    /// Asked before each batch: `true` stops with [`TrainError::Interrupted`].
    fn should_stop(&mut self) -> bool {
        false
    }
    /// After each epoch (after [`PretrainObserver::epoch_end`]), the state a later
    /// [`resume_pretraining`] continues from: the place to save it. An error stops pretraining.
    fn checkpoint(&mut self, _state: &PretrainState) -> Result<(), TrainError> {
        Ok(())
    }
}

/// Pretraining after some epochs: the model, the optimizer's moments and the epochs done.
/// [`resume_pretraining`] from it gives exactly what an uninterrupted run would.
pub struct PretrainState {
    /// The language model.
    pub model: LanguageModel,
    /// Adam's state (see [`crate::records::save_optimizer`] to keep it).
    pub optimizer: ModuleOptimizer,
    /// The epochs done, in order.
    pub history: Vec<PretrainEpoch>,
}

impl std::fmt::Debug for PretrainState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PretrainState")
            .field("epochs_done", &self.history.len())
            .finish_non_exhaustive()
    }
}

impl PretrainState {
    /// Nothing done yet: `model` as drawn and a fresh optimizer for `config`.
    pub fn new(model: LanguageModel, config: &PretrainConfig) -> Self {
        Self {
            model,
            optimizer: pretrain_optimizer(config),
            history: Vec::new(),
        }
    }
}

/// Adam with the pretraining's gradient clipping.
fn pretrain_optimizer(config: &PretrainConfig) -> ModuleOptimizer {
    optimizer(&TrainConfig {
        learning_rate: config.learning_rate,
        grad_clip_norm: Some(config.grad_clip_norm),
        ..TrainConfig::default()
    })
}

impl PretrainObserver for () {}

/// The windows of `texts`: consecutive runs of `window + 1` words that overlap by one word, so
/// that every word but a text's first is a target exactly once. Texts of one word give none.
pub fn windows(texts: &[Vec<u32>], window: usize) -> Vec<&[u32]> {
    let mut out = Vec::new();
    for text in texts {
        let mut start = 0;
        while start + 1 < text.len() {
            let end = (start + window + 1).min(text.len());
            out.push(&text[start..end]);
            start = end - 1;
        }
    }
    out
}

/// Draws words in proportion to `count^0.75`.
struct Sampler {
    cumulative: Vec<f64>,
    log_q: Vec<f32>,
}

impl Sampler {
    fn new(texts: &[Vec<u32>], num_words: usize, samples: usize) -> Self {
        let mut counts = vec![0u64; num_words];
        for text in texts {
            for &id in text {
                if (id as usize) < num_words {
                    counts[id as usize] += 1;
                }
            }
        }
        let weights: Vec<f64> = counts.iter().map(|&c| (c as f64).powf(0.75)).collect();
        let total: f64 = weights.iter().sum::<f64>().max(f64::MIN_POSITIVE);
        let mut cumulative = Vec::with_capacity(num_words);
        let mut sum = 0.0;
        for w in &weights {
            sum += w / total;
            cumulative.push(sum);
        }
        // The log of each word's expected count among the draws (the sampled softmax's
        // correction); words never drawn get a finite floor.
        let log_q = weights
            .iter()
            .map(|w| ((samples as f64 * w / total).max(1e-12)).ln() as f32)
            .collect();
        Self { cumulative, log_q }
    }

    fn draw(&self, rng: &mut SeededRng, n: usize) -> Vec<u32> {
        (0..n)
            .map(|_| {
                let u = rng.next_f32() as f64;
                self.cumulative
                    .partition_point(|&c| c < u)
                    .min(self.cumulative.len() - 1) as u32
            })
            .collect()
    }
}

/// Trains `model` on `texts` (word ids as the classifier reads them) for `config.epochs`,
/// measuring perplexity on `held_out` after each epoch; `device` is the model's (autodiff)
/// device. Deterministic for a seed.
pub fn pretrain_language_model(
    model: LanguageModel,
    texts: (&[Vec<u32>], &[Vec<u32>]),
    config: &PretrainConfig,
    seed: u64,
    device: &Device,
    observer: &mut dyn PretrainObserver,
) -> Result<(LanguageModel, Vec<PretrainEpoch>), TrainError> {
    let start = PretrainState::new(model, config);
    let done = resume_pretraining(start, texts, config, seed, device, observer)?;
    Ok((done.model, done.history))
}

/// [`pretrain_language_model`] from `state`: the epochs after those in its history, up to
/// `config.epochs` (none if it has them all). Each epoch's shuffle and samples depend only on
/// the seed and the epoch, so resuming gives what one uninterrupted run gives.
pub fn resume_pretraining(
    state: PretrainState,
    (texts, held_out): (&[Vec<u32>], &[Vec<u32>]),
    config: &PretrainConfig,
    seed: u64,
    device: &Device,
    observer: &mut dyn PretrainObserver,
) -> Result<PretrainState, TrainError> {
    config.validate()?;
    let texts = &texts[..texts.len().min(config.max_texts.unwrap_or(usize::MAX))];
    let PretrainState {
        mut model,
        optimizer: mut optim,
        mut history,
    } = state;
    let num_words = model.num_words();
    let bidirectional = model.is_bidirectional();
    if let Some(id) = texts
        .iter()
        .chain(held_out)
        .flatten()
        .find(|&&id| id as usize >= num_words)
    {
        return Err(TrainError::InvalidConfig {
            key: "texts",
            problem: format!("word id {id} is outside the model's {num_words} words"),
        });
    }
    let all = windows(texts, config.window);
    if all.is_empty() {
        return Err(TrainError::InvalidConfig {
            key: "texts",
            problem: "no text has two words: there is nothing to predict".into(),
        });
    }
    let held_out_windows = windows(held_out, config.window);
    let sampler = Sampler::new(texts, num_words, config.samples);
    // Every word's log-correction, on the device once for all batches.
    let word_log_q: Tensor<1> = Tensor::from_data(
        TensorData::new(sampler.log_q.clone(), [sampler.log_q.len()]),
        device,
    );
    for epoch in history.len() + 1..=config.epochs {
        let started = Instant::now();
        let order = shuffled_indices(all.len(), derive_seed(seed, &[epoch as u64, 0x1a]));
        let batches: Vec<&[usize]> = order.chunks(config.batch_size).collect();
        let mut rng = SeededRng::new(derive_seed(seed, &[epoch as u64, 0x5a]));
        let mut loss_sum = 0.0f64;
        for (b, rows) in batches.iter().enumerate() {
            if observer.should_stop() {
                return Err(TrainError::Interrupted { epoch });
            }
            let chosen: Vec<&[u32]> = rows.iter().map(|&r| all[r]).collect();
            let batch = LanguageBatch::from_windows(&chosen, bidirectional, device)?;
            let samples = sampled_words(&sampler, &word_log_q, &mut rng, config.samples, device);
            let loss = model.sampled_loss(
                &batch,
                &samples,
                derive_seed(seed, &[epoch as u64, b as u64, 0xd0]),
            )?;
            let value = f64::from(try_host(loss.clone())?[0]);
            if !value.is_finite() {
                return Err(TrainError::NonFiniteLoss {
                    epoch,
                    batch: b,
                    value: value as f32,
                    learning_rate: config.learning_rate,
                });
            }
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(config.learning_rate, model, grads);
            loss_sum += value;
            observer.batch_end(epoch, b, batches.len(), loss_sum / (b + 1) as f64);
        }
        let seconds = started.elapsed().as_secs_f64();
        let record = PretrainEpoch {
            epoch,
            train_loss: loss_sum / batches.len() as f64,
            held_out_perplexity: perplexity(&model.valid(), &held_out_windows, config)?,
            seconds,
        };
        observer.epoch_end(&record);
        history.push(record);
        let state = PretrainState {
            model,
            optimizer: optim,
            history,
        };
        observer.checkpoint(&state)?;
        PretrainState {
            model,
            optimizer: optim,
            history,
        } = state;
    }
    Ok(PretrainState {
        model,
        optimizer: optim,
        history,
    })
}

/// The batch's samples with their log-corrections, and every word's (`word_log_q`).
fn sampled_words(
    sampler: &Sampler,
    word_log_q: &Tensor<1>,
    rng: &mut SeededRng,
    samples: usize,
    device: &Device,
) -> SampledWords {
    let ids = sampler.draw(rng, samples);
    let log_q: Vec<f32> = ids.iter().map(|&i| sampler.log_q[i as usize]).collect();
    SampledWords {
        ids: Tensor::<1, Int>::from_data(
            TensorData::new(ids.iter().map(|&i| i64::from(i)).collect(), [samples]),
            device,
        ),
        log_q: Tensor::from_data(TensorData::new(log_q, [samples]), device),
        word_log_q: word_log_q.clone(),
    }
}

/// Perplexity of `windows` under the full softmax, dropout off; no window is an error.
pub fn perplexity(
    model: &LanguageModel,
    windows: &[&[u32]],
    config: &PretrainConfig,
) -> Result<f64, TrainError> {
    if windows.is_empty() {
        return Err(TrainError::InvalidConfig {
            key: "held_out",
            problem: "no held-out text has two words: perplexity needs some".into(),
        });
    }
    let device = model.output.device();
    let mut nll = 0.0f64;
    let mut count = 0.0f64;
    // Smaller batches than training: the full softmax is `rows × steps × words` floats.
    for chunk in windows.chunks(config.batch_size.div_ceil(4).max(1)) {
        let batch = LanguageBatch::from_windows(chunk, model.is_bidirectional(), &device)?;
        let (sum, n) = model.negative_log_likelihood(&batch)?;
        nll += f64::from(try_host(sum)?[0]);
        count += f64::from(try_host(n)?[0]);
    }
    Ok((nll / count.max(1.0)).exp())
}
