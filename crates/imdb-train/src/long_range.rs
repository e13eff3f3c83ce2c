//! The notebook's first lesson made measurable: why an LSTM beats a vanilla RNN when the
//! deciding information is far back in the sequence.
//!
//! The task is a latch (Bengio, Simard & Frasconi, 1994; the noisy long-lag sequences of
//! Hochreiter & Schmidhuber, 1997): a few noise words, one deciding token (the label), then
//! `distance` more steps up to the end, where the network answers. By default those steps are
//! random noise words ([`Lag::Noise`]), so the network has to hold one bit for `distance`
//! steps while ignoring what it reads; [`Lag::Filler`] repeats one filler word instead (the
//! noise-free latch). The word vectors are fixed random vectors, so a network cannot make the
//! noise vanish by learning its vectors. Every cell is trained the same way, on the same
//! budget: Adam, gradient clipping, no dropout. The gated cells start from chrono
//! initialization by default ([`TaskGateBias::Chrono`]; Tallec & Ollivier, 2018: gate biases
//! that give units time scales up to the sequence's length, the modern form of a large
//! forget-gate bias); a vanilla RNN has no gate to set. The test accuracy by distance shows
//! how far each cell carries the bit; the gradient reaching each input step shows how the
//! error signal fades on the way back.

use burn::module::Module;
use burn::tensor::module::embedding;
use burn::tensor::{Device, Tensor};
use imdb_data::{EncodedSet, PaddedSequences, Padding, SeededRng};
use imdb_model::{Architecture, InferencePrecision, ModelConfig, ModelInput, SentimentClassifier};
use serde::{Deserialize, Serialize};

use crate::batcher::make_batch;
use crate::config::{EarlyStoppingConfig, TrainConfig};
use crate::error::TrainError;
use crate::evaluate::evaluate;
use crate::learner::{FitSpec, InitialEmbeddings, fit_with};
use crate::progress::TrainObserver;
use crate::step::{bce_with_logits, try_host};

/// Vocabulary of the task: ids 0–3 reserved, 4 and 5 the two deciding tokens, 6 the filler
/// word, the rest noise.
pub const TASK_WORDS: usize = 24;
/// The deciding token of label 1.
pub const POSITIVE: u32 = 4;
/// The deciding token of label 0.
pub const NEGATIVE: u32 = 5;
/// The word that fills every step after the deciding token with [`Lag::Filler`].
pub const FILLER: u32 = 6;
/// The first noise word; noise words are `FIRST_NOISE..TASK_WORDS`.
pub const FIRST_NOISE: u32 = 7;
/// Noise words before the deciding token: the network must take the bit whatever state the
/// noise left it in.
pub const LEAD: usize = 4;

/// What fills the steps between the deciding token and the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lag {
    /// Random noise words, drawn anew at every step (the noisy latch).
    #[default]
    Noise,
    /// One filler word, repeated (the noise-free latch).
    Filler,
}

/// How the gated cells' biases start on the task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskGateBias {
    /// Chrono initialization for the sequence's length (see
    /// [`ModelConfig::chrono_init`]).
    #[default]
    Chrono,
    /// Keras' biases: LSTM forget gate 1, everything else 0.
    Keras,
}

/// One latch task: the distance, what fills it, how the gates start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LatchTask {
    /// Steps between the deciding token and the last step.
    pub distance: usize,
    /// What fills them.
    pub lag: Lag,
    /// How the gated cells' biases start.
    pub gate_bias: TaskGateBias,
}

/// Steps of a task sequence at `distance`: the lead noise, the deciding token, the lag.
pub fn task_steps(distance: usize) -> usize {
    LEAD + 1 + distance
}

impl LatchTask {
    /// The default task (noise, chrono biases) at `distance`.
    pub fn at(distance: usize) -> Self {
        Self {
            distance,
            ..Self::default()
        }
    }

    /// Steps of each sequence (see [`task_steps`]).
    pub fn steps(&self) -> usize {
        task_steps(self.distance)
    }

    /// `count` sequences whose deciding token is `distance` steps before the last step:
    /// [`LEAD`] noise words, the deciding token, then the lag. Exactly half the sequences
    /// (rounded down) have label 1, in a seeded order.
    pub fn sequences(&self, count: usize, seed: u64) -> EncodedSet {
        let steps = self.steps();
        let mut rng = SeededRng::new(seed);
        let mut labels: Vec<u32> = (0..count).map(|i| (i % 2) as u32).collect();
        rng.shuffle(&mut labels);
        let noise_words = u64::from(TASK_WORDS as u32 - FIRST_NOISE);
        let mut noise = move || FIRST_NOISE + rng.below(noise_words) as u32;
        let mut ids = Vec::with_capacity(count * steps);
        for &label in &labels {
            ids.extend((0..LEAD).map(|_| noise()));
            ids.push(if label == 1 { POSITIVE } else { NEGATIVE });
            match self.lag {
                Lag::Noise => ids.extend((0..self.distance).map(|_| noise())),
                Lag::Filler => ids.extend(std::iter::repeat_n(FILLER, self.distance)),
            }
        }
        EncodedSet {
            sequences: PaddedSequences {
                ids,
                lengths: vec![steps; count],
                maxlen: steps,
                padding: Padding::Post,
            },
            labels,
            source: (0..count).collect(),
        }
    }

    /// The small model used on the task for `architecture`: 16-d word vectors, 32 units, no
    /// dropout, the gate biases of [`gate_bias`](Self::gate_bias).
    pub fn model(&self, architecture: Architecture) -> ModelConfig {
        ModelConfig {
            architecture,
            embed_dim: 16,
            units: 32,
            dropout: 0.0,
            recurrent_dropout: 0.0,
            chrono_init: match self.gate_bias {
                TaskGateBias::Chrono => self.steps(),
                TaskGateBias::Keras => 0,
            },
            ..ModelConfig::default()
        }
    }
}

/// Training of one task run: a fixed budget, no early stopping, the gradient's norm clipped
/// to 1 (Pascanu et al., 2013), as for every cell.
pub fn task_training(epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 32,
        learning_rate: 0.005,
        grad_clip_norm: Some(1.0),
        early_stopping: EarlyStoppingConfig {
            enabled: false,
            ..EarlyStoppingConfig::default()
        },
        ..TrainConfig::default()
    }
}

/// The task's fixed word vectors for `seed`: uniform in `[-1, 1)`, `[TASK_WORDS, embed_dim]`.
pub fn task_vectors(embed_dim: usize, seed: u64) -> InitialEmbeddings {
    let mut rng = SeededRng::new(seed ^ 0x5EED);
    InitialEmbeddings {
        weights: (0..TASK_WORDS * embed_dim)
            .map(|_| 2.0 * rng.next_f32() - 1.0)
            .collect(),
        freeze: true,
        source: "random-uniform".into(),
    }
}

/// The model a run on `task` starts from, before any training: what [`run_long_range`]
/// trains, for the gradient at initialization.
pub fn initial_task_model(
    architecture: Architecture,
    task: &LatchTask,
    seed: u64,
    device: &Device,
) -> Result<SentimentClassifier, TrainError> {
    let config = task.model(architecture);
    let vectors = task_vectors(config.embed_dim, seed);
    Ok(
        SentimentClassifier::new(&config, TASK_WORDS, 2, seed, device)?
            .with_embeddings(vectors.weights, vectors.freeze)?,
    )
}

/// Test accuracy of one architecture at one distance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LongRangeResult {
    /// The cell.
    pub architecture: Architecture,
    /// Steps between the signal and the end.
    pub distance: usize,
    /// Test accuracy (0.5 is chance).
    pub accuracy: f64,
}

/// The gradient reaching each input step, for one cell before or after training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradientCurve {
    /// The cell.
    pub architecture: Architecture,
    /// After training (else at initialization).
    pub trained: bool,
    /// The distance of the task sequences it was measured on (and trained at).
    pub distance: usize,
    /// Mean `‖∂L/∂x‖` by steps back from the end (index 0: the last step); see
    /// [`input_gradient_norms`].
    pub norms: Vec<f64>,
}

impl GradientCurve {
    /// The norm `steps_back` steps before the end relative to the last step's (`None` past the
    /// sequence's start, or when the last step's is 0).
    pub fn relative(&self, steps_back: usize) -> Option<f64> {
        let last = *self.norms.first()?;
        let at = *self.norms.get(steps_back)?;
        (last > 0.0).then(|| at / last)
    }
}

/// Trains `architecture` on `task` with `examples` training sequences (a quarter as many for
/// validation, half for testing) for `epochs` epochs, and returns its test accuracy with the
/// trained model. `observer` hears the training (and can stop it: [`TrainError::Interrupted`]).
pub fn run_long_range(
    architecture: Architecture,
    task: &LatchTask,
    (examples, epochs): (usize, usize),
    seed: u64,
    device: &Device,
    observer: &mut dyn TrainObserver,
) -> Result<(LongRangeResult, SentimentClassifier), TrainError> {
    let train_set = task.sequences(examples, seed);
    let val_set = task.sequences(examples / 4, seed + 1);
    let test_set = task.sequences(examples / 2, seed + 2);
    let model = task.model(architecture);
    let train = task_training(epochs);
    let spec = FitSpec {
        train_set: &train_set,
        val_set: &val_set,
        num_classes: 2,
        num_words: TASK_WORDS,
        model: &model,
        train: &train,
        seed,
        unlabelled: None,
    };
    let embeddings = task_vectors(model.embed_dim, seed);
    let outcome = fit_with(spec, device, None, observer, Some(&embeddings))?;
    let test = evaluate(&outcome.model, &test_set, 256, false, device)?;
    Ok((
        LongRangeResult {
            architecture,
            distance: task.distance,
            accuracy: test.metrics.accuracy,
        },
        outcome.model,
    ))
}

/// The mean norm of `∂L/∂x_t`, the loss's gradient with respect to the input vector at step
/// `t`, over 64 sequences of `task`; index 0 is the last step. How much of the error signal
/// reaches a token `k` steps back. Refused for a model with no recurrent layer; a gradient
/// the device cannot return is an error.
pub fn input_gradient_norms(
    model: &SentimentClassifier,
    task: &LatchTask,
    seed: u64,
    device: &Device,
) -> Result<Vec<f64>, TrainError> {
    let Some(layer) = model.encoder.first() else {
        return Err(TrainError::InvalidConfig {
            key: "architecture",
            problem: "the input gradient by step is measured through a recurrent layer: use \
                      \"rnn\", \"gru\" or \"lstm\""
                .into(),
        });
    };
    let device = device.clone().autodiff();
    let layer = layer.clone().fork(&device);
    let model = model.clone().fork(&device);
    let set = task.sequences(64, seed);
    let rows: Vec<usize> = (0..set.len()).collect();
    let (input, labels) = make_batch(&set, &rows, false, 1, &device);
    let ModelInput { tokens, step_mask } = input;
    let [batch, steps] = tokens.dims();
    let x = embedding(model.embedding.val(), tokens)
        .detach()
        .require_grad();
    let out = layer.forward(
        x.clone(),
        step_mask,
        None,
        model.config.implementation,
        InferencePrecision::Fast,
    );
    let hidden = layer.hidden;
    let last: Tensor<2> = out
        .slice([0..batch, steps - 1..steps, 0..hidden])
        .reshape([batch, hidden]);
    let logits = (last.matmul(model.dense_weight.val()) + model.dense_bias.val().unsqueeze())
        .reshape([batch]);
    let grads = bce_with_logits(logits, labels.reshape([batch])).backward();
    // The input requires a gradient and reaches the loss, so Burn always has one for it.
    let grad = x.grad(&grads).ok_or_else(|| TrainError::DeviceRead {
        backend: format!("{device:?}"),
        message: "the input's gradient was not computed".into(),
    })?;
    let e = grad.dims()[2];
    let values = try_host(grad)?;
    Ok((0..steps)
        .rev()
        .map(|t| {
            (0..batch)
                .map(|b| {
                    let v = &values[(b * steps + t) * e..(b * steps + t + 1) * e];
                    v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt()
                })
                .sum::<f64>()
                / batch as f64
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Silent;

    fn is_noise(t: u32) -> bool {
        (FIRST_NOISE..TASK_WORDS as u32).contains(&t)
    }

    #[test]
    fn the_deciding_token_sits_at_its_distance_and_is_never_noise() {
        for lag in [Lag::Noise, Lag::Filler] {
            for distance in [0, 1, 7, 30] {
                let task = LatchTask {
                    distance,
                    lag,
                    ..LatchTask::default()
                };
                let set = task.sequences(50, 3);
                let steps = task_steps(distance);
                assert_eq!(set.sequences.maxlen, steps);
                assert!(set.sequences.lengths.iter().all(|&l| l == steps));
                for i in 0..set.len() {
                    let row = set.sequences.row(i);
                    let signal = if set.labels[i] == 1 {
                        POSITIVE
                    } else {
                        NEGATIVE
                    };
                    // `distance` steps before the last one, and nowhere else.
                    assert_eq!(row[steps - 1 - distance], signal);
                    let deciding = row.iter().filter(|&&t| t == POSITIVE || t == NEGATIVE);
                    assert_eq!(deciding.count(), 1, "{row:?}");
                    assert!(row[..LEAD].iter().all(|&t| is_noise(t)), "{row:?}");
                    let lag_words = &row[LEAD + 1..];
                    match lag {
                        Lag::Noise => assert!(lag_words.iter().all(|&t| is_noise(t))),
                        Lag::Filler => assert!(lag_words.iter().all(|&t| t == FILLER)),
                    }
                }
                // Balanced labels.
                assert_eq!(set.labels.iter().filter(|&&y| y == 1).count(), 25);
            }
        }
        // The noise is drawn anew at every step: it covers its words and varies along a row.
        let set = LatchTask::at(40).sequences(50, 5);
        let mut seen = [false; TASK_WORDS];
        set.sequences
            .ids
            .iter()
            .for_each(|&t| seen[t as usize] = true);
        assert!(seen[FIRST_NOISE as usize..].iter().all(|&s| s));
        assert!(!seen[FILLER as usize]);
        let row = set.sequences.row(0);
        assert!(row[LEAD + 1..].windows(2).any(|w| w[0] != w[1]));
        // Labels come in a seeded order, not alternating, and a seed fixes everything.
        assert_ne!(set.labels[..8], [0, 1, 0, 1, 0, 1, 0, 1]);
        assert_eq!(LatchTask::at(40).sequences(50, 5), set);
        assert_ne!(LatchTask::at(40).sequences(50, 6), set);
    }

    #[test]
    fn a_tiny_lstm_learns_distance_10_and_its_gradients_are_measured() {
        let device = Device::flex();
        let task = LatchTask::at(10);
        let (result, model) =
            run_long_range(Architecture::Lstm, &task, (400, 8), 1, &device, &mut Silent).unwrap();
        assert!(result.accuracy > 0.95, "{result:?}");
        let norms = input_gradient_norms(&model, &task, 9, &device).unwrap();
        assert_eq!(norms.len(), task_steps(10));
        assert!(norms.iter().all(|n| n.is_finite() && *n > 0.0), "{norms:?}");
    }

    #[test]
    fn the_initial_model_is_what_training_starts_from() {
        let device = Device::flex();
        let task = LatchTask::at(20);
        let model = initial_task_model(Architecture::Lstm, &task, 4, &device).unwrap();
        assert!(model.embeddings_frozen());
        let table = model
            .embedding
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(table, task_vectors(16, 4).weights);
        let first_bias = |model: &SentimentClassifier| -> Vec<f32> {
            let bias = model.encoder[0].bias.val().into_data();
            bias.try_to_vec::<f32>().unwrap()
        };
        // Chrono biases for 25 steps: forget gate ln u with u in [1, 24], input gate −ln u.
        let bias = first_bias(&model);
        let (input, forget) = (&bias[..32], &bias[32..64]);
        assert!(
            forget
                .iter()
                .all(|&b| (0.0..=24f32.ln() + 1e-6).contains(&b))
        );
        assert!(input.iter().zip(forget).all(|(i, f)| *i == -f));
        assert!(forget.iter().any(|&b| b > 2.0), "{forget:?}");
        // Keras' biases when asked.
        let keras = LatchTask {
            gate_bias: TaskGateBias::Keras,
            ..task
        };
        let model = initial_task_model(Architecture::Lstm, &keras, 4, &device).unwrap();
        let bias = first_bias(&model);
        assert!(bias[32..64].iter().all(|&b| b == 1.0) && bias[..32].iter().all(|&b| b == 0.0));

        let transformer = SentimentClassifier::new(
            &ModelConfig {
                architecture: Architecture::Transformer,
                embed_dim: 8,
                heads: 2,
                ..ModelConfig::default()
            },
            TASK_WORDS,
            2,
            1,
            &device,
        )
        .unwrap();
        let err = input_gradient_norms(&transformer, &task, 1, &device).unwrap_err();
        assert!(err.to_string().contains("recurrent layer"), "{err}");
    }
}
