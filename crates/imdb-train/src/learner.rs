//! The training loop: Adam, cross-entropy (binary for two classes, categorical for more),
//! per-epoch metrics, early stopping that restores the best weights, per-epoch checkpoints and
//! resumption.
//!
//! Each step goes through burn-train's [`TrainStep`] (forward, loss, backward) and
//! `TrainStep::optimize` (burn-optim's `ModuleOptimizer` driving [`FusedAdam`]). The loop itself is ours rather than
//! burn-train's `SupervisedTraining`: that one panics on checkpoint I/O errors, keeps the
//! optimizer state out of reach (so an exact resume is impossible), and cannot put the best
//! weights back in memory.

use std::path::Path;
use std::time::Instant;

use burn::grad_clipping::GradientClippingConfig;
use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::tensor::Device;
use burn::train::TrainStep;
use imdb_data::embeddings::AlignedVectors;
use imdb_data::{EncodedSet, PaddedSequences, derive_seed};
use imdb_model::{ModelConfig, SentimentClassifier};

use crate::adversarial::Adversarial;
use crate::batcher::{batch_input, make_batch, plan_batches};
use crate::checkpoint::{CHECKPOINT_FORMAT, CheckpointDir, CheckpointState};
use crate::config::{Monitor, TrainConfig};
use crate::error::TrainError;
use crate::evaluate::evaluate;
use crate::history::{EpochRecord, History};
use crate::metrics::{ClassProbabilities, Metrics};
use crate::optim::FusedAdam;
use crate::progress::TrainObserver;
use crate::records::{load_module, load_optimizer, save_module, save_optimizer};
use crate::step::{TrainBatch, Trainee};
use crate::transfer::{PretrainedLayers, PretrainedStart, drop_frozen_gradients, learning_rates};

/// Everything a training run needs.
#[derive(Debug, Clone, Copy)]
pub struct FitSpec<'a> {
    /// The texts to learn from: encoded ids and class ids.
    pub train_set: &'a EncodedSet,
    /// The texts early stopping watches, encoded like `train_set`.
    pub val_set: &'a EncodedSet,
    /// Number of classes; every class id is below it.
    pub num_classes: usize,
    /// Vocabulary size of the encoded data (every token id is below it).
    pub num_words: usize,
    /// The model to build.
    pub model: &'a ModelConfig,
    /// How to train it.
    pub train: &'a TrainConfig,
    /// Fixes initialization, shuffling and dropout.
    pub seed: u64,
    /// Texts without labels (e.g. the source's unlabelled reviews), encoded like
    /// `train_set`: with `train.adversarial`'s virtual adversarial loss, its unlabelled batches
    /// are drawn from these and the training texts.
    pub unlabelled: Option<&'a EncodedSet>,
}

/// The result of a training run.
#[derive(Debug, Clone)]
pub struct FitOutcome {
    /// The kept model (best epoch's weights when restoring), in evaluation mode.
    pub model: SentimentClassifier,
    /// Every epoch's metrics.
    pub history: History,
    /// The epoch training resumed after, if it resumed from a checkpoint.
    pub resumed_after: Option<usize>,
}

/// The optimizer `config` asks for: [`FusedAdam`], with gradient clipping if set.
pub fn optimizer(config: &TrainConfig) -> ModuleOptimizer {
    let optim = ModuleOptimizer::from(FusedAdam::new(
        config.beta_1 as f32,
        config.beta_2 as f32,
        config.epsilon as f32,
    ));
    match config.grad_clip_norm {
        Some(norm) => optim.with_grad_clipping(GradientClippingConfig::Norm(norm as f32).init()),
        None => optim,
    }
}

/// Identifies a configuration, so a checkpoint is only resumed by the run that made it.
fn fingerprint(spec: &FitSpec<'_>) -> String {
    let value = serde_json::json!({
        "model": spec.model,
        "train": spec.train,
        "seed": spec.seed,
        "num_words": spec.num_words,
        "num_classes": spec.num_classes,
        "sizes": [spec.train_set.len(), spec.val_set.len()],
        "maxlen": spec.train_set.sequences.maxlen,
    });
    value.to_string()
}

/// Word vectors to start from instead of random ones.
#[derive(Debug, Clone, PartialEq)]
pub struct InitialEmbeddings {
    /// `num_words × embed_dim`, row-major.
    pub weights: Vec<f32>,
    /// Keep them fixed during training.
    pub freeze: bool,
    /// Names their source in the checkpoint fingerprint (e.g. the vectors file and its hash).
    pub source: String,
}

impl InitialEmbeddings {
    /// Aligned word vectors (from a file or skip-gram) as the classifier's start; `source`
    /// names them in the checkpoint fingerprint.
    pub fn from_vectors(vectors: AlignedVectors, source: String, freeze: bool) -> Self {
        Self {
            weights: vectors.weights,
            freeze,
            source,
        }
    }
}

/// Trains a model. With `checkpoint_dir`, each epoch is checkpointed there and a run that
/// finds a checkpoint of the same configuration resumes after its last epoch (or, if that
/// run had finished, returns its result without training).
pub fn fit(
    spec: FitSpec<'_>,
    device: &Device,
    checkpoint_dir: Option<&Path>,
    observer: &mut dyn TrainObserver,
) -> Result<FitOutcome, TrainError> {
    fit_with(spec, device, checkpoint_dir, observer, None)
}

/// Where training starts.
#[derive(Debug, Clone, Copy)]
pub enum Start<'a> {
    /// A classifier drawn from the seed, with these word vectors if any.
    Fresh(Option<&'a InitialEmbeddings>),
    /// Given weights.
    Pretrained(&'a PretrainedStart),
}

/// [`fit`], starting from given word vectors.
pub fn fit_with(
    spec: FitSpec<'_>,
    device: &Device,
    checkpoint_dir: Option<&Path>,
    observer: &mut dyn TrainObserver,
    embeddings: Option<&InitialEmbeddings>,
) -> Result<FitOutcome, TrainError> {
    fit_from(
        spec,
        device,
        checkpoint_dir,
        observer,
        Start::Fresh(embeddings),
    )
}

/// [`fit`], starting from `start`.
pub fn fit_from(
    spec: FitSpec<'_>,
    device: &Device,
    checkpoint_dir: Option<&Path>,
    observer: &mut dyn TrainObserver,
    start: Start<'_>,
) -> Result<FitOutcome, TrainError> {
    let (embeddings, fine_tune) = match start {
        Start::Fresh(embeddings) => (embeddings, None),
        Start::Pretrained(pretrained) => (None, Some(&pretrained.fine_tune)),
    };
    let FitSpec {
        train_set,
        val_set,
        num_classes,
        num_words,
        model: model_config,
        train: config,
        seed,
        unlabelled,
    } = spec;
    config.validate()?;
    model_config.validate()?;
    check_set("train", train_set, num_classes, num_words)?;
    check_set("validation", val_set, num_classes, num_words)?;
    let ad_device = device.clone().autodiff();
    let mut model =
        SentimentClassifier::new(model_config, num_words, num_classes, seed, &ad_device)?;
    if let Start::Pretrained(pretrained) = start {
        if pretrained.model.config != *model_config
            || pretrained.model.num_words() != num_words
            || pretrained.model.num_classes() != num_classes
        {
            return Err(TrainError::InvalidConfig {
                key: "pretrained",
                problem: format!(
                    "the starting weights ({}) are for another model than this run's",
                    pretrained.source
                ),
            });
        }
        pretrained.fine_tune.validate()?;
        let fresh_encoder = model.encoder.clone();
        model = crate::records::copy_weights(pretrained.model.clone(), model)?;
        if pretrained.fine_tune.layers == PretrainedLayers::Embedding {
            model.encoder = fresh_encoder;
        }
    }
    let outputs = model.outputs();
    if let Some(e) = embeddings {
        model = model.with_embeddings(e.weights.clone(), e.freeze)?;
    }
    let adversarial = config
        .adversarial
        .clone()
        .map(|settings| Adversarial::new(settings, train_set, num_words, &ad_device));
    // Texts the virtual adversarial loss reads without their labels.
    let pool = match &config.adversarial {
        Some(settings)
            if settings.kind.virtual_adversarial() && settings.unlabelled_per_batch > 0 =>
        {
            let pool = unlabelled_pool(unlabelled, train_set)?;
            let mut by_length: Vec<usize> = (0..pool.len()).collect();
            by_length.sort_by_key(|&row| pool.sequences.lengths[row]);
            Some((pool, by_length))
        }
        _ => None,
    };
    let mut trainee = Trainee {
        model,
        l2: config.l2,
        adversarial,
    };
    let mut optim = optimizer(config);

    let checkpoints = checkpoint_dir.map(CheckpointDir::new);
    let mut fingerprint = fingerprint(&spec);
    if let Some((pool, _)) = &pool {
        fingerprint += &format!(" unlabelled={}", pool.len());
    }
    if let Some(e) = embeddings {
        fingerprint += &format!(" embeddings={} freeze={}", e.source, e.freeze);
    }
    if let Start::Pretrained(pretrained) = start {
        fingerprint += &format!(
            " pretrained={} fine_tune={}",
            pretrained.source,
            serde_json::json!(pretrained.fine_tune)
        );
    }
    let mut history = History::default();
    let mut best_score: Option<f64> = None;
    let mut wait = 0usize;
    let mut best_model: Option<SentimentClassifier> = None;
    let mut start_epoch = 1;
    let mut resumed_after = None;
    if let Some(dir) = &checkpoints
        && let Some(state) = dir.load_state(&fingerprint)?
    {
        if let Some(best) = state.history.best_epoch {
            let weights = load_module(trainee.clone(), &dir.model_path(best), "model checkpoint")?;
            best_model = Some(weights.model);
        }
        trainee = load_module(trainee, &dir.model_path(state.epoch), "model checkpoint")?;
        optim = load_optimizer(optim, &dir.optim_path(state.epoch))?;
        history = state.history;
        best_score = state.best_score;
        wait = state.wait;
        start_epoch = state.epoch + 1;
        resumed_after = Some(state.epoch);
        if state.finished {
            observer.message(&format!(
                "training had finished after epoch {}",
                state.epoch
            ));
            let model = keep(best_model, trainee.model, config);
            return Ok(FitOutcome {
                model,
                history,
                resumed_after,
            });
        }
        observer.message(&format!("resuming after epoch {}", state.epoch));
    }
    if let Some(dir) = &checkpoints {
        dir.create()?;
    }

    let trim = config.bucketing && model_config.mask_padding;
    let mut stopped = false;
    for epoch in start_epoch..=config.epochs {
        let lr = config.learning_rate * config.lr_decay.powi(epoch as i32 - 1);
        let plan = plan_batches(
            &train_set.sequences.lengths,
            config.batch_size,
            Some(derive_seed(seed, &[epoch as u64])),
            trim,
        );
        observer.epoch_start(epoch, config.epochs, plan.len());
        let started = Instant::now();
        let mut loss_sum = 0.0f64;
        // Every training row's probabilities, in batch order, computed once per batch.
        let mut probabilities = ClassProbabilities::default();
        let mut labels = Vec::with_capacity(train_set.len());
        let mut correct = 0usize;
        for (b, rows) in plan.iter().enumerate() {
            if observer.should_stop() {
                return Err(TrainError::Interrupted { epoch });
            }
            let (input, targets) = make_batch(train_set, rows, trim, outputs, &ad_device);
            let unlabelled = pool.as_ref().zip(config.adversarial.as_ref()).map(
                |((pool, by_length), settings)| {
                    let draw = derive_seed(seed, &[epoch as u64, b as u64, 2]);
                    let count = settings.unlabelled_per_batch;
                    let rows = sample_similar_lengths(by_length, count, draw);
                    batch_input(pool, &rows, trim, &ad_device)
                },
            );
            let batch = TrainBatch {
                input,
                labels: targets,
                dropout_seed: derive_seed(seed, &[epoch as u64, b as u64, 1]),
                unlabelled,
            };
            let out = TrainStep::step(&trainee, batch);
            if !out.item.loss.is_finite() {
                return Err(TrainError::NonFiniteLoss {
                    epoch,
                    batch: b,
                    value: out.item.loss,
                    learning_rate: lr,
                });
            }
            // Linear warm-up over the first steps of the run, then the epoch's rate.
            let step = (epoch - 1) * plan.len() + b + 1;
            let lr = lr * (step as f64 / config.warmup_steps.max(1) as f64).min(1.0);
            let mut grads = out.grads;
            let rates = match fine_tune {
                Some(fine_tune) => {
                    drop_frozen_gradients(&mut grads, &trainee.model, fine_tune, epoch);
                    learning_rates(&trainee.model, fine_tune, lr)
                }
                None => lr.into(),
            };
            trainee = TrainStep::optimize(trainee, &mut optim, rates, grads);
            loss_sum += out.item.loss as f64 * rows.len() as f64;
            let batch = ClassProbabilities::from_logits(&out.item.logits, outputs);
            for (i, &r) in rows.iter().enumerate() {
                correct += usize::from(batch.predicted(i) == train_set.labels[r]);
                labels.push(train_set.labels[r]);
            }
            probabilities.num_classes = batch.num_classes;
            probabilities.values.extend(batch.values);
            let seen = labels.len() as f64;
            observer.batch_end(b, loss_sum / seen, correct as f64 / seen);
        }
        let train_seconds = started.elapsed().as_secs_f64();
        let train = Metrics::compute(&probabilities, &labels, loss_sum / labels.len() as f64);

        let started = Instant::now();
        let current = trainee.model.valid();
        let val = evaluate(
            &current,
            val_set,
            config.eval_batch_size,
            config.bucketing,
            device,
        )?
        .metrics;
        let val_seconds = started.elapsed().as_secs_f64();
        let record = EpochRecord {
            epoch,
            train,
            val,
            train_seconds,
            val_seconds,
        };

        let score = monitored(config.early_stopping.monitor, &val);
        let improved = match best_score {
            None => true,
            Some(best) if config.early_stopping.monitor.higher_is_better() => {
                score > best + config.early_stopping.min_delta
            }
            Some(best) => score < best - config.early_stopping.min_delta,
        };
        if improved {
            best_score = Some(score);
            wait = 0;
            history.best_epoch = Some(epoch);
            best_model = Some(current);
        } else {
            wait += 1;
        }
        history.epochs.push(record.clone());
        observer.epoch_end(&record, improved);
        if config.early_stopping.enabled
            && wait >= config.early_stopping.patience
            && epoch < config.epochs
        {
            stopped = true;
            history.stopped_early = true;
        }
        let finished = stopped || epoch == config.epochs;
        if let Some(dir) = &checkpoints {
            // The best epoch's weights are its own file: nothing a committed state names is
            // rewritten before the next commit.
            save_module(trainee.clone(), &dir.model_path(epoch))?;
            save_optimizer(&optim, &dir.optim_path(epoch))?;
            dir.commit(&CheckpointState {
                format: CHECKPOINT_FORMAT,
                fingerprint: fingerprint.clone(),
                epoch,
                history: history.clone(),
                best_score,
                wait,
                finished,
            })?;
        }
        if stopped {
            observer.message(&format!(
                "early stopping: {} did not improve for {} epochs",
                config.early_stopping.monitor.name(),
                config.early_stopping.patience
            ));
            break;
        }
    }
    if config.early_stopping.restore_best_weights
        && let Some(best) = history.best_epoch
    {
        observer.message(&format!("restoring the weights of epoch {best}"));
    }
    let model = keep(best_model, trainee.model, config);
    Ok(FitOutcome {
        model,
        history,
        resumed_after,
    })
}

/// The model to return: the best one when restoring, else the last, in evaluation mode.
fn keep(
    best: Option<SentimentClassifier>,
    last: SentimentClassifier,
    config: &TrainConfig,
) -> SentimentClassifier {
    match best {
        Some(best) if config.early_stopping.restore_best_weights => best.valid(),
        _ => last.valid(),
    }
}

/// The texts the virtual adversarial loss draws its batches from: `unlabelled`'s, then the
/// training texts (labels unused), all padded to the same length.
fn unlabelled_pool(
    unlabelled: Option<&EncodedSet>,
    train_set: &EncodedSet,
) -> Result<EncodedSet, TrainError> {
    let Some(extra) = unlabelled else {
        return Ok(train_set.clone());
    };
    let (a, b) = (&extra.sequences, &train_set.sequences);
    if a.maxlen != b.maxlen || a.padding != b.padding {
        return Err(TrainError::BadSet {
            split: "unlabelled",
            problem: format!(
                "texts padded to {} ({:?}) while the training texts are padded to {} ({:?}): \
                 encode both with the same preprocessing",
                a.maxlen, a.padding, b.maxlen, b.padding
            ),
        });
    }
    // Built in one pass: the training texts are copied once, after the unlabelled ones.
    let sequences = PaddedSequences {
        ids: [a.ids.as_slice(), &b.ids].concat(),
        lengths: [a.lengths.as_slice(), &b.lengths].concat(),
        maxlen: b.maxlen,
        padding: b.padding,
    };
    let rows = sequences.lengths.len();
    Ok(EncodedSet {
        sequences,
        labels: vec![0; rows],
        source: (0..rows).collect(),
    })
}

/// `count` rows of similar length, fixed by `seed`: drawn with replacement from a window of
/// `16 · count` rows around a random place in `by_length` (the rows in order of length), so
/// that a batch cut to its longest text wastes little on padding.
fn sample_similar_lengths(by_length: &[usize], count: usize, seed: u64) -> Vec<usize> {
    let mut rng = imdb_data::SeededRng::new(seed);
    let n = by_length.len();
    let width = (16 * count).clamp(1, n);
    let start = rng.below((n - width + 1) as u64) as usize;
    (0..count)
        .map(|_| by_length[start + rng.below(width as u64) as usize])
        .collect()
}

fn monitored(monitor: Monitor, val: &Metrics) -> f64 {
    match monitor {
        Monitor::ValLoss => val.loss,
        Monitor::ValAccuracy => val.accuracy,
        Monitor::ValPrecision => val.precision,
        Monitor::ValRecall => val.recall,
        Monitor::ValF1 => val.f1,
        Monitor::ValAuc => val.auc,
    }
}

/// Refuses an empty set, or one whose class or token ids the model could not take.
fn check_set(
    split: &'static str,
    set: &EncodedSet,
    num_classes: usize,
    num_words: usize,
) -> Result<(), TrainError> {
    if set.is_empty() {
        return Err(TrainError::EmptySet { split });
    }
    if set.labels.len() != set.sequences.len() {
        return Err(TrainError::BadSet {
            split,
            problem: format!(
                "{} labels for {} texts",
                set.labels.len(),
                set.sequences.len()
            ),
        });
    }
    if let Some(&bad) = set.labels.iter().find(|&&y| y as usize >= num_classes) {
        return Err(TrainError::BadSet {
            split,
            problem: format!(
                "class id {bad} with {num_classes} classes: ids must be below num_classes"
            ),
        });
    }
    if let Some(&bad) = set
        .sequences
        .ids
        .iter()
        .find(|&&id| id as usize >= num_words)
    {
        return Err(TrainError::BadSet {
            split,
            problem: format!(
                "token id {bad} with num_words = {num_words}: encode with the same num_words"
            ),
        });
    }
    Ok(())
}
