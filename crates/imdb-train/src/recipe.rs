//! The whole recipe that turns a tokenized corpus into a saved classifier, as
//! `cargo xtask experiment` runs it: preprocessing and the split, a start (random weights,
//! word vectors from a file, skip-gram vectors trained on the corpus, or a language model
//! pretrained on its unlabelled and training texts), training with early stopping, the test
//! evaluation, and the optional n-gram stack. [`Recipe::fit`] runs it in one call; its steps
//! are public too, so that a caller can put a cache or progress display around the costly
//! ones (`xtask` caches skip-gram vectors and language models beside the corpus) and still
//! compute exactly what `fit` computes.
//!
//! ```no_run
//! use burn::tensor::Device;
//! use imdb_data::DataConfig;
//! use imdb_train::{Recipe, Silent};
//!
//! // A CSV with `review` and `sentiment` columns, a fifth held out for the test.
//! let data = DataConfig::csv("reviews.csv", "review", "sentiment", 0.2);
//! let corpus = imdb_data::load_labelled(&data, 42)?;
//! let recipe = Recipe::new(data).with_skipgram(3);
//! let trained = recipe.fit(&corpus, &Device::flex(), &mut Silent)?;
//! println!("test accuracy {:.4}", trained.test.metrics.accuracy);
//! trained.saved.save(std::path::Path::new("my-model"))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::Device;
use imdb_data::embeddings::AlignedVectors;
use imdb_data::{
    DataConfig, EncodedSet, PreparedData, SkipGramConfig, SourceKind, TokenizedCorpus,
    TokenizedReview, Vocabulary,
};
use imdb_model::language_model::LanguageModel;
use imdb_model::ngram::NgramConfig;
use imdb_model::{InferencePrecision, ModelConfig, ModelError, Readout};

use crate::artifacts::SavedModel;
use crate::config::TrainConfig;
use crate::error::TrainError;
use crate::evaluate::{Evaluation, evaluate_at};
use crate::history::History;
use crate::learner::{FitOutcome, FitSpec, InitialEmbeddings, Start, fit_from};
use crate::ngram_stack::{FittedNgrams, StackInputs, StackRecord, stack_fitted, stack_with_ngrams};
use crate::pretrain::{PretrainConfig, PretrainEpoch, PretrainObserver, pretrain_language_model};
use crate::progress::TrainObserver;
use crate::transfer::{FineTuneConfig, PretrainedStart};

/// How many texts language-model pretraining holds out to measure perplexity (the last
/// unlabelled ones; without unlabelled texts, a tenth of the training texts up to this many).
pub const HELD_OUT_TEXTS: usize = 1000;

/// Where a recipe's starting word vectors come from.
#[derive(Debug, Clone, PartialEq)]
pub enum WordVectors {
    /// Skip-gram vectors trained for `epochs` on the corpus' unlabelled and training texts
    /// (no labels, no test texts), `embed_dim` wide, seeded by the recipe's seed.
    SkipGram {
        /// Passes over the texts (at least one).
        epochs: usize,
    },
    /// A GloVe or fastText file in its text format (`.txt`, `.vec`, optionally `.gz`).
    File(PathBuf),
}

/// Starting word vectors, and whether they stay fixed.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorsRecipe {
    /// Where they come from.
    pub source: WordVectors,
    /// Keep them fixed during training.
    pub freeze: bool,
}

/// Everything that shapes a trained classifier (see the module docs). Built with
/// [`Recipe::new`] and the `with_*` methods, or field by field.
#[derive(Debug, Clone)]
pub struct Recipe {
    /// Preprocessing, the split and the source.
    pub data: DataConfig,
    /// The network.
    pub model: ModelConfig,
    /// Training, early stopping and the evaluation batch.
    pub train: TrainConfig,
    /// Fixes the split, initialization, shuffling, dropout and every random start.
    pub seed: u64,
    /// Starting word vectors; ignored when `pretrain` is set.
    pub embeddings: Option<VectorsRecipe>,
    /// Pretrain the embedding and recurrent layers as a language model first.
    pub pretrain: Option<PretrainConfig>,
    /// How the pretrained layers are taken and fine-tuned (with `pretrain`).
    pub fine_tune: FineTuneConfig,
    /// Stack the network with an n-gram model (two classes only).
    pub ngram_stack: Option<NgramConfig>,
    /// The arithmetic of the test evaluation (and of the saved model's first use).
    pub precision: InferencePrecision,
}

/// What [`Recipe::fit`] gives: the model to save and use, and what it measured.
#[derive(Debug)]
pub struct Trained {
    /// The whole predictor: the network, its preprocessing and vocabulary, and the n-gram
    /// stack when there is one.
    pub saved: SavedModel,
    /// The sets it was trained, stopped and tested on.
    pub data: PreparedData,
    /// Every epoch's metrics.
    pub history: History,
    /// The test evaluation of the saved model (the stack's, for a stacked recipe).
    pub test: Evaluation,
    /// How each part of a stack did, for a stacked recipe.
    pub stack: Option<StackRecord>,
    /// The language model's epochs, for a pretrained recipe.
    pub pretraining: Option<Vec<PretrainEpoch>>,
}

/// The test evaluation of a trained network, and what it becomes once stacked.
#[derive(Debug)]
pub struct Finished {
    /// The whole predictor (see [`Trained::saved`]).
    pub saved: SavedModel,
    /// The test evaluation of `saved`.
    pub test: Evaluation,
    /// How each part of a stack did, for a stacked recipe.
    pub stack: Option<StackRecord>,
    /// Seconds spent evaluating the network on the test set.
    pub predict_seconds: f64,
}

impl Recipe {
    /// The notebook's model and training on `data`, from random weights, seed 42.
    pub fn new(data: DataConfig) -> Self {
        Self {
            data,
            model: ModelConfig::default(),
            train: TrainConfig::default(),
            seed: 42,
            embeddings: None,
            pretrain: None,
            fine_tune: FineTuneConfig::default(),
            ngram_stack: None,
            precision: InferencePrecision::Fast,
        }
    }

    /// The same recipe with this network.
    pub fn with_model(mut self, model: ModelConfig) -> Self {
        self.model = model;
        self
    }

    /// The same recipe with this training.
    pub fn with_train(mut self, train: TrainConfig) -> Self {
        self.train = train;
        self
    }

    /// The same recipe with this seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The same recipe starting from skip-gram vectors trained for `epochs` on the corpus.
    pub fn with_skipgram(mut self, epochs: usize) -> Self {
        self.embeddings = Some(VectorsRecipe {
            source: WordVectors::SkipGram { epochs },
            freeze: false,
        });
        self
    }

    /// The same recipe starting from a pretrained language model, fine-tuned as `fine_tune`
    /// says.
    pub fn with_pretraining(mut self, pretrain: PretrainConfig, fine_tune: FineTuneConfig) -> Self {
        self.pretrain = Some(pretrain);
        self.fine_tune = fine_tune;
        self
    }

    /// The same recipe stacked with an n-gram model.
    pub fn with_ngram_stack(mut self, ngram: NgramConfig) -> Self {
        self.ngram_stack = Some(ngram);
        self
    }

    /// Checks every setting before any work is done, naming a refused one by its section and
    /// key (`data.maxlen`, `model.units`, `train.batch_size`, `pretrain.window`,
    /// `fine_tune.pretrained_lr_scale`, `ngram_stack.max_n`); a vocabulary whose word tables
    /// would outgrow the model's bound is refused as `data.num_words` (with `pretrain`, the
    /// language model's output table counts too). [`fit`](Self::fit) calls it first.
    pub fn validate(&self) -> Result<(), TrainError> {
        match self.data.validate() {
            Err(imdb_data::DataError::InvalidSetting { setting, problem }) => {
                return Err(invalid("data", setting, problem));
            }
            other => other?,
        }
        model_keyed("model", self.model.validate())?;
        let tables = if self.pretrain.is_some() {
            self.model
                .check_language_model_vocabulary(self.data.num_words)
        } else {
            self.model.check_vocabulary(self.data.num_words)
        };
        tables.map_err(|ModelError::InvalidConfig { problem, .. }| {
            invalid("data", "num_words", problem)
        })?;
        keyed("train", self.train.validate())?;
        if let Some(pretrain) = &self.pretrain {
            keyed("pretrain", pretrain.validate())?;
            self.model.check_language_model().map_err(
                |ModelError::InvalidConfig { key, problem }| {
                    invalid("model", key, format!("with `pretrain`, {problem}"))
                },
            )?;
            keyed("fine_tune", self.fine_tune.validate())?;
        }
        if let Some(ngram) = &self.ngram_stack {
            model_keyed("ngram_stack", ngram.validate())?;
        }
        Ok(())
    }

    /// Checks the settings that depend on the corpus, before any work is done: `data.val_size`
    /// must leave training texts, and `ngram_stack` needs two classes. [`prepare`](Self::prepare)
    /// calls it first (and so does [`fit`](Self::fit)).
    pub fn check_corpus(&self, corpus: &TokenizedCorpus) -> Result<(), TrainError> {
        let (val_size, train_texts) = (self.data.val_size, corpus.train.len());
        if val_size >= train_texts {
            return Err(invalid(
                "data",
                "val_size",
                format!(
                    "{val_size} is not less than the {train_texts} training texts; use a \
                     smaller value (the notebook uses 5000 of IMDB's 25000)"
                ),
            ));
        }
        if self.ngram_stack.is_some() && corpus.classes.len() != 2 {
            return Err(TrainError::InvalidRecipe {
                key: "ngram_stack".into(),
                problem: format!(
                    "the stack is for two-class models, but the data has {} classes ({}); \
                     leave out `ngram_stack`",
                    corpus.classes.len(),
                    corpus.classes.join(", ")
                ),
            });
        }
        Ok(())
    }

    /// Every step in order, nothing cached: prepare the sets, compute the start, train,
    /// evaluate on the test set, stack. `observer` sees the classifier's training.
    pub fn fit(
        &self,
        corpus: &TokenizedCorpus,
        device: &Device,
        observer: &mut dyn TrainObserver,
    ) -> Result<Trained, TrainError> {
        self.validate()?;
        let data = self.prepare(corpus)?;
        let embeddings = match (&self.embeddings, &self.pretrain) {
            (Some(vectors), None) => Some(self.initial_embeddings(vectors, corpus)?),
            _ => None,
        };
        let pretrained = match &self.pretrain {
            Some(settings) => {
                let mut quiet = QuietPretraining;
                let (model, epochs) = self.pretrain_language_model(
                    settings,
                    corpus,
                    &device.clone().autodiff(),
                    &mut quiet,
                )?;
                let start =
                    self.pretrained_start(model, data.classes.len(), "language model".into())?;
                Some((start, epochs))
            }
            None => None,
        };
        let start = match &pretrained {
            Some((start, _)) => Start::Pretrained(start),
            None => Start::Fresh(embeddings.as_ref()),
        };
        let outcome = self.train_network(corpus, &data, start, device, None, observer)?;
        let finished = self.finish(corpus, &data, &outcome, device)?;
        Ok(Trained {
            saved: finished.saved,
            data,
            history: outcome.history,
            test: finished.test,
            stack: finished.stack,
            pretraining: pretrained.map(|(_, epochs)| epochs),
        })
    }

    /// Encodes, pads, shuffles and splits the corpus (seeded by the recipe's seed), after
    /// [`check_corpus`](Self::check_corpus).
    pub fn prepare(&self, corpus: &TokenizedCorpus) -> Result<PreparedData, TrainError> {
        self.check_corpus(corpus)?;
        Ok(imdb_data::prepare(corpus, &self.data, self.seed)?)
    }

    /// The skip-gram settings of `WordVectors::SkipGram { epochs }`.
    pub fn skipgram_config(&self, epochs: usize) -> SkipGramConfig {
        SkipGramConfig {
            dim: self.model.embed_dim,
            epochs: epochs.max(1),
            seed: self.seed,
            ..SkipGramConfig::default()
        }
    }

    /// The texts skip-gram vectors learn from: the unlabelled ones and the training ones (no
    /// labels, no test texts). IMDB's vectors need its unlabelled reviews; other sources may
    /// have none.
    pub fn skipgram_texts<'c>(
        &self,
        corpus: &'c TokenizedCorpus,
    ) -> Result<Vec<&'c [u32]>, TrainError> {
        if self.data.source == SourceKind::Imdb && corpus.unsup.is_empty() {
            return Err(TrainError::InvalidConfig {
                key: "embeddings",
                problem: "skip-gram embeddings need the unlabelled reviews, which this corpus \
                          lacks"
                    .into(),
            });
        }
        Ok(skipgram_reviews(corpus))
    }

    /// The starting word vectors `vectors` asks for, trained or read here (nothing cached).
    pub fn initial_embeddings(
        &self,
        vectors: &VectorsRecipe,
        corpus: &TokenizedCorpus,
    ) -> Result<InitialEmbeddings, TrainError> {
        let (aligned, source) = self.word_vectors(&vectors.source, corpus)?;
        Ok(InitialEmbeddings::from_vectors(
            aligned,
            source,
            vectors.freeze,
        ))
    }

    /// The word vectors `source` names, aligned to the corpus' vocabulary, and a name for
    /// them (the skip-gram key, or the file and the start of its SHA-256).
    pub fn word_vectors(
        &self,
        source: &WordVectors,
        corpus: &TokenizedCorpus,
    ) -> Result<(AlignedVectors, String), TrainError> {
        Ok(match source {
            WordVectors::SkipGram { epochs } => {
                let settings = self.skipgram_config(*epochs);
                let texts = self.skipgram_texts(corpus)?;
                let aligned = imdb_data::train_skipgram(&texts, self.data.num_words, &settings);
                (aligned, self.skipgram_key(&settings))
            }
            WordVectors::File(path) => {
                let digest = imdb_data::fetch::sha256_file(path)?;
                let aligned = imdb_data::load_word_vectors(
                    path,
                    &corpus.vocab,
                    self.data.num_words,
                    self.model.embed_dim,
                    self.seed,
                )?;
                (aligned, format!("{}@{}", path.display(), &digest[..16]))
            }
        })
    }

    /// Names skip-gram vectors by everything that shapes them (a cache key, and the source
    /// a checkpoint's fingerprint records).
    pub fn skipgram_key(&self, settings: &SkipGramConfig) -> String {
        // `skipgram3`: the sharded trainer's vectors (earlier versions' differ).
        format!(
            "skipgram3-n{}-d{}-e{}-s{}",
            self.data.num_words, settings.dim, settings.epochs, settings.seed
        )
    }

    /// The language model pretraining trains: the classifier's body read out by its last
    /// state (pooling is the classifier's business).
    pub fn language_model_config(&self) -> ModelConfig {
        ModelConfig {
            readout: Readout::Last,
            ..self.model.clone()
        }
    }

    /// The seed of pretraining: its own when `settings` gives one, the recipe's otherwise.
    pub fn pretraining_seed(&self, settings: &PretrainConfig) -> u64 {
        settings.seed.unwrap_or(self.seed)
    }

    /// The texts a language model learns from and the held-out ones its perplexity is
    /// measured on: the unlabelled texts but the last [`HELD_OUT_TEXTS`], then the training
    /// texts (never the test texts), at most `max_texts`; without unlabelled texts, the
    /// training texts with the last tenth (at most [`HELD_OUT_TEXTS`]) held out.
    pub fn pretraining_texts(
        &self,
        settings: &PretrainConfig,
        corpus: &TokenizedCorpus,
    ) -> (Vec<Vec<u32>>, Vec<Vec<u32>>) {
        let num_words = self.data.num_words;
        let encode = |r: &TokenizedReview| Vocabulary::encode_ranks(&r.ranks, num_words);
        let (mut texts, held_out): (Vec<Vec<u32>>, Vec<Vec<u32>>) = if corpus.unsup.is_empty() {
            let keep = corpus.train.len() - (corpus.train.len() / 10).min(HELD_OUT_TEXTS);
            (
                corpus.train[..keep].iter().map(encode).collect(),
                corpus.train[keep..].iter().map(encode).collect(),
            )
        } else {
            let keep = corpus.unsup.len() - corpus.unsup.len().min(HELD_OUT_TEXTS);
            let mut texts: Vec<Vec<u32>> = corpus.unsup[..keep].iter().map(encode).collect();
            texts.extend(corpus.train.iter().map(encode));
            (texts, corpus.unsup[keep..].iter().map(encode).collect())
        };
        texts.truncate(settings.max_texts.unwrap_or(usize::MAX));
        (texts, held_out)
    }

    /// A fresh language model of the recipe's body, drawn from the pretraining seed on
    /// `device` (an autodiff device).
    pub fn language_model(
        &self,
        settings: &PretrainConfig,
        device: &Device,
    ) -> Result<LanguageModel, TrainError> {
        Ok(LanguageModel::new(
            &self.language_model_config(),
            self.data.num_words,
            self.pretraining_seed(settings),
            device,
        )?)
    }

    /// Pretrains a language model from scratch on the corpus (nothing cached), on `device`
    /// (an autodiff device).
    pub fn pretrain_language_model(
        &self,
        settings: &PretrainConfig,
        corpus: &TokenizedCorpus,
        device: &Device,
        observer: &mut dyn PretrainObserver,
    ) -> Result<(LanguageModel, Vec<PretrainEpoch>), TrainError> {
        let (texts, held_out) = self.pretraining_texts(settings, corpus);
        pretrain_language_model(
            self.language_model(settings, device)?,
            (&texts, &held_out),
            settings,
            self.pretraining_seed(settings),
            device,
            observer,
        )
    }

    /// The classifier's start from a pretrained language model (`source` names it in the
    /// checkpoint's fingerprint).
    pub fn pretrained_start(
        &self,
        language_model: LanguageModel,
        num_classes: usize,
        source: String,
    ) -> Result<PretrainedStart, TrainError> {
        let mut classifier = language_model.into_classifier(num_classes, self.seed)?;
        // The same weights under the classifier's own readout.
        classifier.config = self.model.clone();
        Ok(PretrainedStart {
            model: classifier,
            source,
            fine_tune: self.fine_tune.clone(),
        })
    }

    /// The texts without labels that virtual adversarial training reads besides the training
    /// texts: the corpus' unlabelled ones, encoded like the training texts, when
    /// `train.adversarial` asks for unlabelled batches (never validation or test texts).
    pub fn unlabelled_texts(
        &self,
        corpus: &TokenizedCorpus,
    ) -> Result<Option<EncodedSet>, TrainError> {
        let wanted = self.train.adversarial.as_ref().is_some_and(|settings| {
            settings.kind.virtual_adversarial() && settings.unlabelled_per_batch > 0
        });
        if !wanted || corpus.unsup.is_empty() {
            return Ok(None);
        }
        let all = (0..corpus.unsup.len()).collect();
        Ok(Some(EncodedSet::encode(&corpus.unsup, all, &self.data)?))
    }

    /// Trains the network from `start`; with `checkpoint`, each epoch is checkpointed there
    /// and an interrupted run resumes (see [`fit_from`]).
    pub fn train_network(
        &self,
        corpus: &TokenizedCorpus,
        data: &PreparedData,
        start: Start<'_>,
        device: &Device,
        checkpoint: Option<&Path>,
        observer: &mut dyn TrainObserver,
    ) -> Result<FitOutcome, TrainError> {
        let unlabelled = self.unlabelled_texts(corpus)?;
        let spec = FitSpec {
            train_set: &data.train,
            val_set: &data.val,
            num_classes: data.classes.len(),
            num_words: self.data.num_words,
            model: &self.model,
            train: &self.train,
            seed: self.seed,
            unlabelled: unlabelled.as_ref(),
        };
        fit_from(spec, device, checkpoint, observer, start)
    }

    /// Evaluation batch size and bucketing, as training sets them.
    pub fn eval_settings(&self) -> (usize, bool) {
        (self.train.eval_batch_size, self.train.bucketing)
    }

    /// The trained network's test evaluation, stacked when the recipe says so, and the saved
    /// model that gives exactly these verdicts.
    pub fn finish(
        &self,
        corpus: &TokenizedCorpus,
        data: &PreparedData,
        outcome: &FitOutcome,
        device: &Device,
    ) -> Result<Finished, TrainError> {
        self.finish_with(corpus, data, outcome, device, None)
    }

    /// The n-gram models of this recipe's stack on `data` (see [`FittedNgrams`]), or `None`
    /// when it does not stack: what [`finish_with`](Self::finish_with) can share between
    /// networks trained on the same sets.
    pub fn fit_ngrams(
        &self,
        corpus: &TokenizedCorpus,
        data: &PreparedData,
    ) -> Result<Option<FittedNgrams>, TrainError> {
        let Some(config) = &self.ngram_stack else {
            return Ok(None);
        };
        let reviews = (corpus.train.as_slice(), corpus.test.as_slice());
        FittedNgrams::fit(config, data, reviews, self.data.num_words).map(Some)
    }

    /// [`finish`](Self::finish), stacking with n-gram models fitted before by
    /// [`fit_ngrams`](Self::fit_ngrams) on the same sets when `ngrams` is given (the same
    /// verdicts, without fitting them again); refused when they were fitted with other
    /// settings or on other sets.
    pub fn finish_with(
        &self,
        corpus: &TokenizedCorpus,
        data: &PreparedData,
        outcome: &FitOutcome,
        device: &Device,
        ngrams: Option<&FittedNgrams>,
    ) -> Result<Finished, TrainError> {
        let eval = self.eval_settings();
        let started = Instant::now();
        let network_test = evaluate_at(&outcome.model, &data.test, eval, self.precision, device)?;
        let predict_seconds = started.elapsed().as_secs_f64();
        let mut saved = SavedModel::new(
            outcome.model.clone(),
            self.data.preprocessing(),
            &corpus.vocab,
            &data.classes,
        )?;
        let Some(ngram) = &self.ngram_stack else {
            return Ok(Finished {
                saved,
                test: network_test,
                stack: None,
                predict_seconds,
            });
        };
        let inputs = StackInputs {
            model: &outcome.model,
            data,
            train_reviews: &corpus.train,
            test_reviews: &corpus.test,
            num_words: self.data.num_words,
            eval,
            precision: self.precision,
        };
        let (test, record, stack) = match ngrams {
            Some(fitted) => stack_fitted(ngram, fitted, &inputs, &network_test, device)?,
            None => stack_with_ngrams(ngram, &inputs, &network_test, device)?,
        };
        saved = saved.with_stack(stack)?;
        Ok(Finished {
            saved,
            test,
            stack: Some(record),
            predict_seconds,
        })
    }
}

/// The reviews skip-gram vectors learn from: the unlabelled ones and the training ones (no
/// labels, no test texts).
pub fn skipgram_reviews(corpus: &TokenizedCorpus) -> Vec<&[u32]> {
    corpus
        .unsup
        .iter()
        .chain(&corpus.train)
        .map(|r| r.ranks.as_slice())
        .collect()
}

/// Pretraining seen by nobody.
struct QuietPretraining;

impl PretrainObserver for QuietPretraining {}

/// A refused setting under its section's name.
fn invalid(section: &str, key: &str, problem: String) -> TrainError {
    TrainError::InvalidRecipe {
        key: format!("{section}.{key}"),
        problem,
    }
}

/// A model setting's refusal under its section's name.
fn model_keyed(section: &str, result: Result<(), ModelError>) -> Result<(), TrainError> {
    result.map_err(|ModelError::InvalidConfig { key, problem }| invalid(section, key, problem))
}

/// A training setting's refusal under its section's name.
fn keyed(section: &str, result: Result<(), TrainError>) -> Result<(), TrainError> {
    result.map_err(|e| match e {
        TrainError::InvalidConfig { key, problem } => invalid(section, key, problem),
        other => other,
    })
}
