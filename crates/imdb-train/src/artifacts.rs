//! A trained model saved with everything needed to use it again: weights, configuration,
//! preprocessing, vocabulary and class names. [`SavedModel::load`] brings it back to classify
//! new text.
//!
//! Files in the model folder: `model.bpk` (weights, burnpack), `model.json` (the manifest:
//! model settings, preprocessing, class names), `vocab.json` (the words the model knows, by
//! rank). Loading checks the three against each other and refuses, naming the file, a manifest
//! whose shapes do not match the weights or the vocabulary.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use imdb_data::vocab::INDEX_FROM;
use imdb_data::{EncodedText, Padding, Preprocessing, Vocabulary};
use imdb_model::{InferencePrecision, ModelConfig, ModelInput, Predictor, SentimentClassifier};
use serde::{Deserialize, Serialize};

use crate::error::TrainError;
use crate::explain::{RowLayout, TokenWeight, occlude};
use crate::metrics::{ClassProbabilities, predicted_class};
use crate::records::{load_json, load_module, save_json, save_module};
use crate::step::try_host;

/// Version of the saved-model layout (2: preprocessing and class names; 1 kept IMDB settings).
pub const MODEL_FORMAT: u32 = 2;

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
            },
            vocab: visible_words(vocab, model.num_words()),
            model,
            precision: InferencePrecision::Fast,
        };
        saved.check(Path::new("model.json"))?;
        Ok(saved)
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

    /// Writes the three files into `dir` (created if needed), each atomically; the manifest
    /// last, so a folder with a manifest is complete.
    pub fn save(&self, dir: &Path) -> Result<(), TrainError> {
        std::fs::create_dir_all(dir).map_err(|e| TrainError::io("cannot create", dir, e))?;
        save_module(self.model.clone(), &weights_path(dir))?;
        save_json(&self.vocab, &vocab_path(dir))?;
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
        if format != Some(u64::from(MODEL_FORMAT)) {
            return Err(bad(
                manifest_file,
                "model manifest",
                format!(
                    "format {} is not {MODEL_FORMAT}: it was saved by another version of this \
                     project; train it again with this one",
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
        let saved = Self {
            model,
            manifest,
            vocab,
            precision: InferencePrecision::Fast,
        };
        saved.check(&manifest_file)?;
        Ok(saved)
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
            // The settings were validated when the model was built or loaded.
            let padded = pre.encode(&self.saved.vocab, chunk)?;
            let input = ModelInput::from_padded(
                &padded.ids,
                &padded.lengths,
                pre.maxlen,
                pre.padding == Padding::Pre,
                &device,
            );
            let logits = try_host(self.predictor.logits(input))?;
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
    /// words cut by truncation). The prediction is the one [`predict`](Self::predict) gives,
    /// up to rounding.
    pub fn explain(&self, texts: &[&str]) -> Result<Vec<Explanation>, TrainError> {
        let saved = self.saved;
        let pre = &saved.manifest.preprocessing;
        let encoded: Vec<EncodedText> = texts
            .iter()
            .map(|t| pre.encode_words(&saved.vocab, t))
            .collect();
        let ids: Vec<&[u32]> = encoded.iter().map(|e| e.ids.as_slice()).collect();
        let layout = RowLayout {
            padding: pre.padding,
            fixed_steps: (!saved.model.config.mask_padding).then_some(pre.maxlen),
        };
        let device = saved.model.embedding.device();
        let occluded = occlude(
            &self.predictor,
            saved.model.outputs(),
            &ids,
            layout,
            &device,
        )?;
        Ok(encoded
            .into_iter()
            .zip(occluded)
            .map(|(text, occlusion)| {
                let mut weights = vec![0.0f32; text.words.len()];
                for (word, weight) in text.word_of.iter().zip(&occlusion.weights) {
                    if let Some(w) = word {
                        weights[*w] = *weight;
                    }
                }
                Explanation {
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

/// The first `num_words - 4` words of `vocab`: those the model has ids for.
fn visible_words(vocab: &Vocabulary, num_words: usize) -> Vocabulary {
    let known = num_words.saturating_sub(INDEX_FROM as usize + 1);
    Vocabulary::from_ranked_words(vocab.words()[..known.min(vocab.len())].to_vec())
}
