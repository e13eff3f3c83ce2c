//! A trained model saved with everything needed to use it again: weights, configuration,
//! preprocessing, vocabulary and class names. [`SavedModel::load`] brings it back to classify
//! new text.
//!
//! Files in the model folder: `model.bpk` (weights, burnpack), `model.json` (the manifest:
//! model settings, preprocessing, class names, and a stacked model's stack weights),
//! `vocab.json` (the words the model knows, by rank) and, for a network stacked with an
//! n-gram model, `ngram.safetensors` (the n-gram model's bucket weights and bias). Loading
//! checks the files against each other and refuses, naming the file, a manifest whose shapes
//! do not match the weights or the vocabulary.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use imdb_data::vocab::INDEX_FROM;
use imdb_data::{EncodedSet, EncodedText, Padding, Preprocessing, Vocabulary};
use imdb_model::ngram::NgramClassifier;
use imdb_model::{InferencePrecision, ModelConfig, ModelInput, Predictor, SentimentClassifier};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::TrainError;
use crate::evaluate::{Evaluation, evaluate_at};
use crate::explain::{RowLayout, StackedSequence, TokenWeight, occlude, occlude_stacked};
use crate::metrics::{ClassProbabilities, predicted_class};
use crate::records::{load_json, load_module, save_json, save_module};
use crate::stacking::{NgramStack, Stacking};
use crate::step::try_host;
use crate::tensor_file::{NamedTensor, read_tensors, write_tensors};

/// Version of the saved-model layout (3: a stacked model's n-gram part and stack weights;
/// 2: preprocessing and class names; 1 kept IMDB settings).
pub const MODEL_FORMAT: u32 = 3;

/// The oldest layout this version reads: a format-2 folder loads as its network alone (format
/// 2 did not save a stack).
pub const OLDEST_READABLE_FORMAT: u32 = 2;

/// The configuration saved beside the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelManifest {
    /// Layout version.
    pub format: u32,
    /// The model's settings.
    pub model: ModelConfig,
    /// How text is encoded for the model.
    pub preprocessing: Preprocessing,
    /// Class names by class id.
    pub classes: Vec<String>,
    /// For a network stacked with an n-gram model: the n-gram settings and the stack's weights
    /// (the n-gram weights are in `ngram.safetensors`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<StackManifest>,
}

/// What `model.json` says of a stacked model: the stacked log-odds of a text is
/// `network_weight · network + ngram_weight · ngram + bias`, with `network` the network's
/// log-odds of its first (or last) `maxlen` ids and `ngram` the n-gram model's of all of them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StackManifest {
    /// The n-gram model's longest n-gram.
    pub max_n: usize,
    /// Its n-grams are hashed into `2^hash_bits` buckets (`imdb_model::ngram::ngram_bucket`).
    pub hash_bits: u32,
    /// The weight of the network's log-odds.
    pub network_weight: f64,
    /// The weight of the n-gram model's log-odds.
    pub ngram_weight: f64,
    /// The constant term.
    pub bias: f64,
}

/// A trained model with its preprocessing, ready to classify text.
#[derive(Debug, Clone)]
pub struct SavedModel {
    /// The network, in evaluation mode.
    pub model: SentimentClassifier,
    /// Its configuration.
    pub manifest: ModelManifest,
    /// The words it knows, by rank.
    pub vocab: Vocabulary,
    /// How inference computes (see [`InferencePrecision`]).
    pub precision: InferencePrecision,
    /// The n-gram model and the weights a stacked model combines the network with.
    pub stack: Option<NgramStack>,
}

/// One classified text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// The predicted class id.
    pub class: u32,
    /// The predicted class's name.
    pub label: String,
    /// The predicted class's probability.
    pub probability: f32,
    /// Every class's probability, by class id.
    pub probabilities: Vec<f32>,
}

fn weights_path(dir: &Path) -> PathBuf {
    dir.join("model.bpk")
}

fn manifest_path(dir: &Path) -> PathBuf {
    dir.join("model.json")
}

fn vocab_path(dir: &Path) -> PathBuf {
    dir.join("vocab.json")
}

fn ngram_path(dir: &Path) -> PathBuf {
    dir.join("ngram.safetensors")
}

impl SavedModel {
    /// Bundles a trained model with its preprocessing and class names; only the
    /// `num_words - 4` words the model can see are kept from `vocab`.
    pub fn new(
        model: SentimentClassifier,
        preprocessing: Preprocessing,
        vocab: &Vocabulary,
        classes: &[String],
    ) -> Result<Self, TrainError> {
        let saved = Self {
            manifest: ModelManifest {
                format: MODEL_FORMAT,
                model: model.config.clone(),
                preprocessing,
                classes: classes.to_vec(),
                stack: None,
            },
            vocab: visible_words(vocab, model.num_words()),
            model,
            precision: InferencePrecision::Fast,
            stack: None,
        };
        saved.check(Path::new("model.json"))?;
        Ok(saved)
    }

    /// The same model stacked with an n-gram model: its verdicts become the stack's. Only
    /// for two classes.
    pub fn with_stack(mut self, stack: NgramStack) -> Result<Self, TrainError> {
        if self.manifest.classes.len() != 2 {
            return Err(TrainError::InvalidConfig {
                key: "ngram_stack",
                problem: format!(
                    "stacks two-class models; this one has {} classes",
                    self.manifest.classes.len()
                ),
            });
        }
        let s = stack.stacking;
        self.manifest.stack = Some(StackManifest {
            max_n: stack.ngram.max_n(),
            hash_bits: stack.ngram.hash_bits(),
            network_weight: s.network_weight,
            ngram_weight: s.other_weight,
            bias: s.bias,
        });
        self.stack = Some(stack);
        Ok(self)
    }

    /// The same model computing at `precision`.
    pub fn with_precision(mut self, precision: InferencePrecision) -> Self {
        self.precision = precision;
        self
    }

    /// Class names by class id.
    pub fn classes(&self) -> &[String] {
        &self.manifest.classes
    }

    /// Writes the files into `dir` (created if needed), each atomically; the manifest last,
    /// so a folder with a manifest is complete. A model without a stack removes an
    /// `ngram.safetensors` left by an earlier one.
    pub fn save(&self, dir: &Path) -> Result<(), TrainError> {
        std::fs::create_dir_all(dir).map_err(|e| TrainError::io("cannot create", dir, e))?;
        save_module(self.model.clone(), &weights_path(dir))?;
        save_json(&self.vocab, &vocab_path(dir))?;
        let ngram_file = ngram_path(dir);
        match &self.stack {
            Some(stack) => write_tensors(
                &ngram_file,
                &[
                    NamedTensor::new(
                        "weights",
                        &[stack.ngram.weights().len()],
                        stack.ngram.weights().to_vec(),
                    ),
                    NamedTensor::new("bias", &[1], vec![stack.ngram.bias()]),
                ],
                None,
            )?,
            None if ngram_file.exists() => std::fs::remove_file(&ngram_file)
                .map_err(|e| TrainError::io("cannot remove", &ngram_file, e))?,
            None => {}
        }
        save_json(&self.manifest, &manifest_path(dir))
    }

    /// True if `dir` holds a complete saved model.
    pub fn exists(dir: &Path) -> bool {
        manifest_path(dir).is_file() && weights_path(dir).is_file() && vocab_path(dir).is_file()
    }

    /// Loads a model saved by [`SavedModel::save`] onto `device`, checking that the manifest,
    /// the weights and the vocabulary fit together.
    pub fn load(dir: &Path, device: &Device) -> Result<Self, TrainError> {
        let manifest_file = manifest_path(dir);
        if !manifest_file.is_file() {
            return Err(TrainError::BadArtifact {
                path: dir.to_path_buf(),
                what: "model folder",
                message: "it has no model.json; pass the folder of a finished run".to_string(),
            });
        }
        let bad = |path: PathBuf, what: &'static str, message: String| TrainError::BadArtifact {
            path,
            what,
            message,
        };
        let value: serde_json::Value = load_json(&manifest_file, "model manifest")?;
        let format = value.get("format").and_then(serde_json::Value::as_u64);
        let readable = u64::from(OLDEST_READABLE_FORMAT)..=u64::from(MODEL_FORMAT);
        if !format.is_some_and(|f| readable.contains(&f)) {
            return Err(bad(
                manifest_file,
                "model manifest",
                format!(
                    "format {} is not one this version reads ({OLDEST_READABLE_FORMAT} to \
                     {MODEL_FORMAT}): it was saved by another version of this project; train \
                     it again with this one",
                    format.map_or("(none)".to_string(), |f| f.to_string())
                ),
            ));
        }
        let manifest: ModelManifest = serde_json::from_value(value)
            .map_err(|e| bad(manifest_file.clone(), "model manifest", e.to_string()))?;
        manifest
            .preprocessing
            .validate()
            .map_err(|e| bad(manifest_file.clone(), "model manifest", e.to_string()))?;
        manifest
            .model
            .validate()
            .map_err(|e| bad(manifest_file.clone(), "model manifest", e.to_string()))?;
        let vocab: Vocabulary = load_json(&vocab_path(dir), "vocabulary")?;
        let skeleton = SentimentClassifier::new(
            &manifest.model,
            manifest.preprocessing.num_words,
            manifest.classes.len(),
            0,
            device,
        )
        .map_err(|e| bad(manifest_file.clone(), "model manifest", e.to_string()))?;
        let model = load_module(skeleton, &weights_path(dir), "model").map_err(|e| match e {
            TrainError::BadArtifact {
                path,
                what,
                message,
            } => TrainError::BadArtifact {
                path,
                what,
                message: format!("{message}, against the shapes that model.json describes"),
            },
            other => other,
        })?;
        let stack = match &manifest.stack {
            Some(m) => Some(load_stack(&ngram_path(dir), m)?),
            None => None,
        };
        let saved = Self {
            model,
            manifest,
            vocab,
            precision: InferencePrecision::Fast,
            stack,
        };
        saved.check(&manifest_file)?;
        Ok(saved)
    }

    /// Every id of `text` as this model encodes it, before truncation (what a stacked model's
    /// n-gram part reads; the network reads the first or last `maxlen`).
    pub fn encode_ids(&self, text: &str) -> Vec<u32> {
        self.manifest.preprocessing.encode_ids(&self.vocab, text)
    }

    /// Evaluates the model on texts given as their untruncated ids (as
    /// [`encode_ids`](Self::encode_ids) gives them) with their true classes, `batch_size`
    /// rows per pass, by length with `bucketing` (see [`evaluate_at`]); a stacked model gives
    /// the stack's verdicts.
    pub fn evaluate_ids(
        &self,
        ids: &[Vec<u32>],
        labels: &[u32],
        (batch_size, bucketing): (usize, bool),
    ) -> Result<Evaluation, TrainError> {
        if ids.len() != labels.len() {
            return Err(TrainError::BadSet {
                split: "evaluation",
                problem: format!("{} texts for {} labels", ids.len(), labels.len()),
            });
        }
        let classes = self.manifest.classes.len() as u32;
        if let Some(bad) = labels.iter().find(|&&l| l >= classes) {
            return Err(TrainError::BadSet {
                split: "evaluation",
                problem: format!("class id {bad} given; the model has {classes} classes"),
            });
        }
        let set = EncodedSet {
            sequences: self.manifest.preprocessing.pad(ids)?,
            labels: labels.to_vec(),
            source: (0..ids.len()).collect(),
        };
        let device = self.model.embedding.device();
        let network = evaluate_at(
            &self.model,
            &set,
            (batch_size, bucketing),
            self.precision,
            &device,
        )?;
        match &self.stack {
            Some(stack) => stack.evaluate(&network, ids, "evaluation"),
            None => Ok(network),
        }
    }

    /// Checks that the parts agree: as many outputs as classes, as many embedding rows as
    /// `num_words`, no more words than the model has ids for.
    fn check(&self, manifest_file: &Path) -> Result<(), TrainError> {
        let bad = |message: String| TrainError::BadArtifact {
            path: manifest_file.to_path_buf(),
            what: "model manifest",
            message,
        };
        let m = &self.manifest;
        if self.stack.is_some() && m.classes.len() != 2 {
            return Err(bad(format!(
                "it stacks an n-gram model on {} classes: stacks are for two",
                m.classes.len()
            )));
        }
        if m.classes.len() < 2 {
            return Err(bad(format!(
                "{} class name(s): a classifier has at least two",
                m.classes.len()
            )));
        }
        if self.model.num_classes() != m.classes.len() {
            return Err(bad(format!(
                "it names {} classes but the weights have {} outputs",
                m.classes.len(),
                self.model.outputs()
            )));
        }
        if self.model.num_words() != m.preprocessing.num_words {
            return Err(bad(format!(
                "num_words = {} but the embedding has {} rows",
                m.preprocessing.num_words,
                self.model.num_words()
            )));
        }
        let ids = self.vocab.len() + INDEX_FROM as usize + 1;
        if ids > m.preprocessing.num_words {
            return Err(bad(format!(
                "vocab.json has {} words, more than num_words = {} leaves room for",
                self.vocab.len(),
                m.preprocessing.num_words
            )));
        }
        Ok(())
    }

    /// Classifies texts, with the preprocessing the model was trained with: one prediction per
    /// text, in order. Any text works: empty, very long (truncated like training data), emoji
    /// or another language (unknown words become `<UNK>`). To classify many times, keep a
    /// [`session`](Self::session): it prepares the model's inference tables once.
    pub fn predict(
        &self,
        texts: &[&str],
        batch_size: usize,
    ) -> Result<Vec<Prediction>, TrainError> {
        self.session().predict(texts, batch_size)
    }

    /// The model ready to classify and explain many times: the inference tables (each word's
    /// input projection) are computed here, once.
    pub fn session(&self) -> Session<'_> {
        Session {
            saved: self,
            predictor: self.model.predictor().with_precision(self.precision),
        }
    }
}

/// A [`SavedModel`] ready for inference (see [`SavedModel::session`]).
pub struct Session<'a> {
    saved: &'a SavedModel,
    predictor: Predictor<'a>,
}

impl Session<'_> {
    /// The saved model this session runs.
    pub fn saved(&self) -> &SavedModel {
        self.saved
    }

    /// The model's inference, its tables ready (for [`crate::explain`]'s functions).
    pub fn predictor(&self) -> &Predictor<'_> {
        &self.predictor
    }

    /// [`SavedModel::predict`].
    pub fn predict(
        &self,
        texts: &[&str],
        batch_size: usize,
    ) -> Result<Vec<Prediction>, TrainError> {
        let pre = &self.saved.manifest.preprocessing;
        let device = self.saved.model.embedding.device();
        let outputs = self.saved.model.outputs();
        let mut predictions = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(batch_size.max(1)) {
            let ids: Vec<Vec<u32>> = chunk.par_iter().map(|t| self.saved.encode_ids(t)).collect();
            // The settings were validated when the model was built or loaded.
            let padded = pre.pad(&ids)?;
            let input = ModelInput::from_padded(
                &padded.ids,
                &padded.lengths,
                pre.maxlen,
                pre.padding == Padding::Pre,
                &device,
            );
            let mut logits = try_host(self.predictor.logits(input))?;
            if let Some(stack) = &self.saved.stack
                && logits.len() == ids.len()
            {
                for (logit, ids) in logits.iter_mut().zip(&ids) {
                    *logit = stack.logit(*logit, ids);
                }
            }
            let probabilities = ClassProbabilities::from_logits(&logits, outputs);
            if probabilities.len() != chunk.len() {
                return Err(TrainError::DeviceRead {
                    backend: format!("{device:?}"),
                    message: format!(
                        "{} predictions for {} texts",
                        probabilities.len(),
                        chunk.len()
                    ),
                });
            }
            for i in 0..probabilities.len() {
                predictions.push(self.saved.prediction(probabilities.row(i)));
            }
        }
        Ok(predictions)
    }

    /// Classifies `texts` and explains each verdict word by word (see [`crate::explain`]):
    /// every word of the text in order with its weight towards the predicted class (0 for
    /// words cut by truncation, unless a stacked model's n-gram part reads them: a stacked
    /// verdict's weights are the falls of the stacked probability). The prediction is the one
    /// [`predict`](Self::predict) gives, up to rounding.
    pub fn explain(&self, texts: &[&str]) -> Result<Vec<Explanation>, TrainError> {
        let saved = self.saved;
        let pre = &saved.manifest.preprocessing;
        let encoded: Vec<EncodedText> = texts
            .iter()
            .map(|t| pre.encode_words(&saved.vocab, t))
            .collect();
        let layout = RowLayout {
            padding: pre.padding,
            fixed_steps: (!saved.model.config.mask_padding).then_some(pre.maxlen),
        };
        let device = saved.model.embedding.device();
        // Each weight with the index, in `all`, of the id it belongs to.
        let (occluded, positions): (_, Vec<Vec<usize>>) = match &saved.stack {
            Some(stack) => {
                let sequences: Vec<StackedSequence<'_>> = encoded
                    .iter()
                    .map(|e| StackedSequence {
                        all: &e.all,
                        kept: e.kept.clone(),
                    })
                    .collect();
                let occluded =
                    occlude_stacked(&self.predictor, stack, (&sequences, None), layout, &device)?;
                (
                    occluded,
                    encoded.iter().map(|e| (0..e.all.len()).collect()).collect(),
                )
            }
            None => {
                let ids: Vec<&[u32]> = encoded.iter().map(|e| e.ids.as_slice()).collect();
                let outputs = saved.model.outputs();
                let occluded = occlude(&self.predictor, outputs, &ids, layout, &device)?;
                (
                    occluded,
                    encoded.iter().map(|e| e.kept.clone().collect()).collect(),
                )
            }
        };
        Ok(encoded
            .into_iter()
            .zip(occluded.into_iter().zip(positions))
            .map(|(text, (occlusion, positions))| {
                let mut weights = vec![0.0f32; text.words.len()];
                // Position `p` of `all` is word `p - 1` (position 0 is the start id).
                for (p, weight) in positions.iter().zip(&occlusion.weights) {
                    if let Some(w) = p.checked_sub(1) {
                        weights[w] = *weight;
                    }
                }
                let words = |p: &usize| p.saturating_sub(1);
                let read = match (positions.first(), positions.last()) {
                    (Some(first), Some(last)) if *last > 0 => words(first)..*last,
                    _ => 0..0,
                };
                Explanation {
                    read,
                    prediction: saved.prediction(&occlusion.probabilities),
                    tokens: text
                        .words
                        .into_iter()
                        .zip(weights)
                        .map(|(token, weight)| TokenWeight { token, weight })
                        .collect(),
                }
            })
            .collect())
    }
}

/// A verdict and the words behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// The verdict.
    pub prediction: Prediction,
    /// Every word of the text, in order, with its weight towards the verdict.
    pub tokens: Vec<TokenWeight>,
    /// The words the model read (`tokens[read]`; those cut by truncation weigh 0).
    pub read: std::ops::Range<usize>,
}

/// How many rows of the fast inference path explaining `text` costs a model encoding with
/// `preprocessing`: the text and its copies without each id the model reads (every id for a
/// stacked model, whose n-gram part reads them all; the first or last `maxlen` otherwise).
/// Counted without looking words up, so that a server can price a request before queueing it.
pub fn explanation_rows(preprocessing: &Preprocessing, stacked: bool, text: &str) -> usize {
    let mut words = 0usize;
    imdb_data::tokenizer::for_each_token_with(text, preprocessing.tokenizer, |_| words += 1);
    let ids = words + 1;
    1 + if stacked {
        ids
    } else {
        ids.min(preprocessing.maxlen)
    }
}

impl SavedModel {
    /// The prediction for one row of class probabilities.
    fn prediction(&self, probabilities: &[f32]) -> Prediction {
        let class = predicted_class(probabilities) as usize;
        Prediction {
            class: class as u32,
            label: self.manifest.classes[class].clone(),
            probability: probabilities[class],
            probabilities: probabilities.to_vec(),
        }
    }
}

/// The n-gram part of a stacked model, from `path` and what the manifest says of it.
fn load_stack(path: &Path, manifest: &StackManifest) -> Result<NgramStack, TrainError> {
    let bad = |message: String| TrainError::BadArtifact {
        path: path.to_path_buf(),
        what: "n-gram weights",
        message,
    };
    if !path.is_file() {
        return Err(bad(
            "missing: model.json describes a stacked model; copy the whole model folder".into(),
        ));
    }
    let mut tensors = read_tensors(path, &["weights", "bias"], "n-gram weights")?.into_iter();
    let (weights, bias) = match (tensors.next(), tensors.next()) {
        (Some(weights), Some(bias)) if bias.values.len() == 1 => (weights, bias.values[0]),
        _ => return Err(bad("its bias is not one number".into())),
    };
    let ngram =
        NgramClassifier::from_weights(manifest.max_n, manifest.hash_bits, weights.values, bias)
            .map_err(|e| bad(format!("{e}, against model.json's stack")))?;
    let stacking = Stacking {
        network_weight: manifest.network_weight,
        other_weight: manifest.ngram_weight,
        bias: manifest.bias,
    };
    if [
        stacking.network_weight,
        stacking.other_weight,
        stacking.bias,
    ]
    .iter()
    .any(|w| !w.is_finite())
    {
        return Err(bad(
            "model.json's stack weights are not finite numbers".into()
        ));
    }
    Ok(NgramStack { ngram, stacking })
}

/// The first `num_words - 4` words of `vocab`: those the model has ids for.
fn visible_words(vocab: &Vocabulary, num_words: usize) -> Vocabulary {
    let known = num_words.saturating_sub(INDEX_FROM as usize + 1);
    Vocabulary::from_ranked_words(vocab.words()[..known.min(vocab.len())].to_vec())
}
