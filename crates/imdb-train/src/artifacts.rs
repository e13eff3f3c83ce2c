//! A trained model saved with everything needed to use it again: weights, configuration and
//! vocabulary. [`SavedModel::load`] brings it back to classify new text.
//!
//! Files in the model folder: `model.bpk` (weights, burnpack), `model.json` (configuration),
//! `vocab.json` (the words the model knows, by rank).

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use imdb_data::{DataConfig, Padding, Vocabulary, pad_sequences};
use imdb_model::{ModelConfig, ModelInput, SentimentClassifier};
use serde::{Deserialize, Serialize};

use crate::error::TrainError;
use crate::metrics::sigmoid;
use crate::records::{load_json, load_module, save_json, save_module};
use crate::step::host;

/// Version of the saved-model layout.
pub const MODEL_FORMAT: u32 = 1;

/// The configuration saved beside the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelManifest {
    /// Layout version.
    pub format: u32,
    /// The model's settings.
    pub model: ModelConfig,
    /// The preprocessing the model was trained with.
    pub data: DataConfig,
    /// Vocabulary size (embedding rows).
    pub num_words: usize,
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
}

/// One classified text.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// Probability that the review is positive.
    pub probability: f32,
    /// `true` for positive (probability ≥ 0.5).
    pub positive: bool,
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
    /// Bundles a trained model with its preprocessing; only the `num_words - 4` words the model
    /// can see are kept from `vocab`.
    pub fn new(model: SentimentClassifier, data: &DataConfig, vocab: &Vocabulary) -> Self {
        let known = model
            .num_words()
            .saturating_sub(imdb_data::vocab::INDEX_FROM as usize + 1);
        let words = vocab.words()[..known.min(vocab.len())].to_vec();
        Self {
            manifest: ModelManifest {
                format: MODEL_FORMAT,
                model: model.config.clone(),
                data: data.clone(),
                num_words: model.num_words(),
            },
            model,
            vocab: Vocabulary::from_ranked_words(words),
        }
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

    /// Loads a model saved by [`SavedModel::save`] onto `device`.
    pub fn load(dir: &Path, device: &Device) -> Result<Self, TrainError> {
        if !manifest_path(dir).is_file() {
            return Err(TrainError::BadArtifact {
                path: dir.to_path_buf(),
                what: "model folder",
                message: "it has no model.json; pass the folder of a finished run".to_string(),
            });
        }
        let manifest: ModelManifest = load_json(&manifest_path(dir), "model manifest")?;
        if manifest.format != MODEL_FORMAT {
            return Err(TrainError::BadArtifact {
                path: manifest_path(dir),
                what: "model manifest",
                message: format!("format {} is not {MODEL_FORMAT}", manifest.format),
            });
        }
        let vocab: Vocabulary = load_json(&vocab_path(dir), "vocabulary")?;
        let skeleton = SentimentClassifier::new(&manifest.model, manifest.num_words, 0, device)?;
        let model = load_module(skeleton, &weights_path(dir), "model")?;
        Ok(Self {
            model,
            manifest,
            vocab,
        })
    }

    /// Classifies texts, with the preprocessing the model was trained with. Any text works:
    /// empty, very long (truncated like training data), emoji or another language (unknown
    /// words become `<UNK>`).
    pub fn predict(&self, texts: &[&str], batch_size: usize) -> Vec<Prediction> {
        let data = &self.manifest.data;
        let device = self.model.embedding.device();
        let predictor = self.model.predictor();
        let mut predictions = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(batch_size.max(1)) {
            let encoded: Vec<Vec<u32>> = chunk
                .iter()
                .map(|t| self.vocab.encode_text(t, self.manifest.num_words))
                .collect();
            // `maxlen` was validated when the model was trained.
            let Ok(padded) = pad_sequences(&encoded, data.maxlen, data.padding, data.truncating)
            else {
                return predictions;
            };
            let input = ModelInput::from_padded(
                &padded.ids,
                &padded.lengths,
                data.maxlen,
                data.padding == Padding::Pre,
                &device,
            );
            predictions.extend(host(predictor.logits(input)).into_iter().map(|logit| {
                let probability = sigmoid(logit);
                Prediction {
                    probability,
                    positive: probability >= 0.5,
                }
            }));
        }
        predictions
    }
}
