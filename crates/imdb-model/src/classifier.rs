//! The text classifier: `Embedding → recurrent layers (or a Transformer) → Dense`.
//!
//! Two classes have one output (a logit, `sigmoid` gives the probability of class 1, the
//! notebook's `Dense(1, sigmoid)`); more classes have one output per class (`softmax`).

use burn::module::{Module, Param};
use burn::nn::transformer::{
    TransformerEncoder, TransformerEncoderConfig, TransformerEncoderInput,
};
use burn::tensor::module::embedding;
use burn::tensor::{Device, Int, Tensor, TensorData, s};
use imdb_rng::SeededRng;

use crate::config::{ModelConfig, Pooling, Readout};
use crate::error::ModelError;
use crate::init::{glorot_uniform, param1, param2, uniform};
use crate::ops::{fused_embedding, has_fused_kernels};
use crate::recurrent::{
    Direction, GateBias, Implementation, InferencePrecision, RecurrentLayer, StateOutput,
};
use crate::summary::{LayerSummary, ModelSummary};

/// One batch of encoded reviews.
#[derive(Debug, Clone)]
pub struct ModelInput {
    /// Token ids, `[batch, steps]`.
    pub tokens: Tensor<2, Int>,
    /// `[batch, steps]`: 1 for a real token, 0 for padding.
    pub step_mask: Tensor<2>,
}

impl ModelInput {
    /// Builds a batch from padded rows of ids (row-major `[batch, steps]`) and true lengths;
    /// `pre_padded` says whether the padding is before the review.
    pub fn from_padded(
        ids: &[u32],
        lengths: &[usize],
        steps: usize,
        pre_padded: bool,
        device: &Device,
    ) -> Self {
        let batch = lengths.len();
        let tokens: Vec<i64> = ids.iter().map(|&id| id as i64).collect();
        let mut mask = vec![0.0f32; batch * steps];
        for (row, &len) in mask.chunks_exact_mut(steps.max(1)).zip(lengths) {
            let len = len.min(steps);
            let real = if pre_padded {
                &mut row[steps - len..]
            } else {
                &mut row[..len]
            };
            real.fill(1.0);
        }
        Self {
            tokens: Tensor::from_data(TensorData::new(tokens, [batch, steps]), device),
            step_mask: Tensor::from_data(TensorData::new(mask, [batch, steps]), device),
        }
    }
}

/// `Embedding → (Bi)RNN/GRU/LSTM layers or a Transformer → Dense`: for two classes one logit
/// per text (`sigmoid(logit)` is the probability of class 1, the notebook's positive review),
/// for `n > 2` classes `n` logits (`softmax` gives the class probabilities).
#[derive(Module, Debug)]
pub struct SentimentClassifier {
    /// Word vectors, `[num_words, embed_dim]`.
    pub embedding: Param<Tensor<2>>,
    /// Recurrent layers, layer by layer, forward direction before backward (empty for the
    /// Transformer).
    pub encoder: Vec<RecurrentLayer>,
    /// The Transformer encoder, for that architecture.
    pub transformer: Option<TransformerEncoder>,
    /// Output weights, `[features, outputs]` (see [`SentimentClassifier::outputs`]).
    pub dense_weight: Param<Tensor<2>>,
    /// Output bias, `[outputs]`.
    pub dense_bias: Param<Tensor<1>>,
    /// The settings the model was built with.
    #[module(skip)]
    pub config: ModelConfig,
}

impl SentimentClassifier {
    /// A new model for `num_classes` classes (at least 2) over `num_words` token ids, with
    /// Keras' initialization, fully determined by `seed`.
    pub fn new(
        config: &ModelConfig,
        num_words: usize,
        num_classes: usize,
        seed: u64,
        device: &Device,
    ) -> Result<Self, ModelError> {
        config.validate()?;
        if num_words == 0 {
            return Err(ModelError::InvalidConfig {
                key: "num_words",
                problem: "the vocabulary is empty".to_string(),
            });
        }
        config.check_vocabulary(num_words)?;
        if num_classes < 2 {
            return Err(ModelError::InvalidConfig {
                key: "num_classes",
                problem: format!(
                    "{num_classes} class(es): a classifier needs at least 2, so the data must \
                     hold at least two distinct labels"
                ),
            });
        }
        let outputs = outputs_for(num_classes);
        let mut rng = SeededRng::new(seed);
        let e = config.embed_dim;
        let embedding = param2(
            uniform(&mut rng, num_words * e, 0.05),
            [num_words, e],
            device,
        );
        let directions = if config.bidirectional { 2 } else { 1 };
        let mut encoder = Vec::new();
        let mut transformer = None;
        let mut input = e;
        match config.architecture.cell() {
            Some(cell) => {
                for _ in 0..config.layers {
                    for direction in 0..directions {
                        encoder.push(RecurrentLayer::init(
                            cell,
                            (input, config.units),
                            if direction == 1 {
                                Direction::Reverse
                            } else {
                                Direction::Forward
                            },
                            GateBias::from_chrono_steps(config.chrono_init),
                            &mut rng,
                            device,
                        ));
                    }
                    input = config.units * directions;
                }
            }
            None => {
                // Burn initializes these weights from the device's generator: seeded here from
                // the model's seed, so they depend on nothing else.
                device.seed(seed);
                transformer = Some(
                    TransformerEncoderConfig::new(e, config.ff_dim, config.heads, config.layers)
                        .with_dropout(config.dropout)
                        .with_norm_first(true)
                        .init(device),
                );
            }
        }
        Ok(Self {
            embedding,
            encoder,
            transformer,
            dense_weight: param2(
                glorot_uniform(&mut rng, input, outputs),
                [input, outputs],
                device,
            ),
            dense_bias: param1(vec![0.0; outputs], device),
            config: config.clone(),
        })
    }

    /// Replaces the word vectors with `weights` (`num_words × embed_dim`, row-major), e.g.
    /// pretrained GloVe vectors; `freeze` keeps them fixed during training.
    pub fn with_embeddings(mut self, weights: Vec<f32>, freeze: bool) -> Result<Self, ModelError> {
        let [rows, cols] = self.embedding.dims();
        if weights.len() != rows * cols {
            return Err(ModelError::InvalidConfig {
                key: "embeddings",
                problem: format!(
                    "{} values given for a {rows} × {cols} embedding",
                    weights.len()
                ),
            });
        }
        let device = self.embedding.device();
        let param = param2(weights, [rows, cols], &device);
        self.embedding = if freeze {
            param.set_require_grad(false)
        } else {
            param
        };
        Ok(self)
    }

    /// True if the word vectors are not trained.
    pub fn embeddings_frozen(&self) -> bool {
        !self.embedding.is_require_grad()
    }

    /// Vocabulary size (rows of the embedding).
    pub fn num_words(&self) -> usize {
        self.embedding.dims()[0]
    }

    /// Output units: 1 for two classes (a logit), else one per class.
    pub fn outputs(&self) -> usize {
        self.dense_bias.dims()[0]
    }

    /// Number of classes the model tells apart.
    pub fn num_classes(&self) -> usize {
        match self.outputs() {
            1 => 2,
            n => n,
        }
    }

    fn directions(&self) -> usize {
        if self.config.bidirectional { 2 } else { 1 }
    }

    /// Logits `[batch, outputs]` for a batch (see [`outputs`](Self::outputs)). With
    /// `dropout_seed` the model is in training mode and the seed fixes every dropout mask (the
    /// Transformer's too); without it, dropout is off.
    pub fn forward(&self, input: ModelInput, dropout_seed: Option<u64>) -> Tensor<2> {
        self.run(input, dropout_seed, None, InferencePrecision::Fast, None)
    }

    /// [`forward`](Self::forward) with `perturbation` (`[batch, steps, embed_dim]`) added to
    /// what the first layer reads: the looked-up word vectors after dropout (for the
    /// Transformer, after its positions and dropout). Adversarial training pushes the vectors
    /// so, and differentiates by it.
    pub fn forward_perturbed(
        &self,
        input: ModelInput,
        dropout_seed: Option<u64>,
        perturbation: Tensor<3>,
    ) -> Tensor<2> {
        self.run(
            input,
            dropout_seed,
            None,
            InferencePrecision::Fast,
            Some(perturbation),
        )
    }

    /// [`forward`](Self::forward), optionally with the first layer's input projections looked
    /// up per word (`tables`, one per direction) instead of computed per token, and with the
    /// fused kernels computing at `precision` where nothing is differentiated.
    fn run(
        &self,
        input: ModelInput,
        dropout_seed: Option<u64>,
        tables: Option<&[Tensor<2>]>,
        precision: InferencePrecision,
        perturbation: Option<Tensor<3>>,
    ) -> Tensor<2> {
        let features =
            match self.encode(input, dropout_seed, tables, precision, false, perturbation) {
                Encoded::Features(features) => features,
                Encoded::Steps(seq, step_mask) => pool_steps(seq, &step_mask, self.config.readout),
            };
        features.matmul(self.dense_weight.val()) + self.dense_bias.val().unsqueeze()
    }

    /// The last recurrent layer's output at every step, `[batch, steps, hidden]` (dropout as
    /// in [`forward`](Self::forward)): what a language model reads to predict the next word.
    /// A bidirectional layer gives `[batch, steps, 2 · units]`, the forward half first (at
    /// step `t` it has read the words up to `t`) and the backward half after (the words from
    /// `t` on). Only for models that can be language models (see
    /// [`ModelConfig::check_language_model`]).
    pub fn step_features(
        &self,
        input: ModelInput,
        dropout_seed: Option<u64>,
    ) -> Result<Tensor<3>, ModelError> {
        self.config.check_language_model()?;
        match self.encode(
            input,
            dropout_seed,
            None,
            InferencePrecision::Fast,
            true,
            None,
        ) {
            Encoded::Steps(seq, _) => Ok(seq),
            Encoded::Features(_) => unreachable!("every step was asked for"),
        }
    }

    /// The network up to its dense layer: the readout's features, or with `every_step` (or a
    /// pooling readout) the last layer's output at every step with the step mask it used.
    fn encode(
        &self,
        input: ModelInput,
        dropout_seed: Option<u64>,
        tables: Option<&[Tensor<2>]>,
        precision: InferencePrecision,
        every_step: bool,
        mut perturbation: Option<Tensor<3>>,
    ) -> Encoded {
        let device = input.tokens.device();
        let [batch, steps] = input.tokens.dims();
        let mut rng = dropout_seed.map(SeededRng::new);
        let step_mask = if self.config.mask_padding {
            input.step_mask.clone()
        } else {
            Tensor::ones([batch, steps], &device)
        };
        let tokens = input.tokens;
        if let Some(transformer) = &self.transformer {
            let features = self.transformer_features(
                transformer,
                tokens,
                step_mask,
                rng.as_mut(),
                perturbation,
            );
            return Encoded::Features(features);
        }
        // In training on the CPU backends, the lookup and the first layer's input-dropout mask
        // are one op whose backward runs on every core; it runs below, once the mask is drawn.
        let fused_lookup = tables.is_none()
            && rng.is_some()
            && self.config.implementation == Implementation::Fused
            && has_fused_kernels(&device);
        // With tables the first layer reads them: nothing needs the word vectors themselves.
        let mut seq = if tables.is_some() || fused_lookup {
            Tensor::empty([batch, steps, 0], &device)
        } else {
            embedding(self.embedding.val(), tokens.clone())
        };
        let directions = self.directions();
        let mut finals: Vec<Tensor<2>> = Vec::new();
        for (index, pair) in self.encoder.chunks(directions).enumerate() {
            if let Some(rng) = rng.as_mut() {
                let features = if index == 0 {
                    self.config.embed_dim
                } else {
                    seq.dims()[2]
                };
                let mut rate_mask = None;
                if index == 0 && self.config.spatial_dropout > 0.0 {
                    rate_mask = Some(dropout_mask(
                        rng,
                        batch,
                        features,
                        self.config.spatial_dropout,
                    ));
                }
                if self.config.dropout > 0.0 {
                    let m = dropout_mask(rng, batch, features, self.config.dropout);
                    rate_mask = Some(match rate_mask {
                        Some(prev) => prev.iter().zip(&m).map(|(a, b)| a * b).collect(),
                        None => m,
                    });
                }
                if index == 0 && fused_lookup {
                    let mask = rate_mask.unwrap_or_else(|| vec![1.0; batch * features]);
                    let mask = Tensor::from_data(TensorData::new(mask, [batch, features]), &device);
                    seq = fused_embedding(self.embedding.val(), tokens.clone(), mask);
                } else if let Some(mask) = rate_mask {
                    let mask: Tensor<3> =
                        Tensor::from_data(TensorData::new(mask, [batch, 1, features]), &device);
                    seq = seq * mask;
                }
            }
            if index == 0
                && let Some(r) = perturbation.take()
            {
                seq = seq + r;
            }
            let first_tables = tables.filter(|_| index == 0);
            // Only the last layer's final states are read, and only by the `Last` readout: that
            // layer then returns nothing else, `[batch, 1, hidden]`.
            let last_layer = (index + 1) * directions == self.encoder.len();
            let final_only = last_layer && self.config.readout == Readout::Last && !every_step;
            let outputs: Vec<Tensor<3>> = pair
                .iter()
                .enumerate()
                .map(|(direction, layer)| {
                    if let Some(tables) = first_tables {
                        let table = tables[direction].clone();
                        return layer.forward_lookup(
                            table,
                            tokens.clone(),
                            step_mask.clone(),
                            if final_only {
                                StateOutput::FinalOnly
                            } else {
                                StateOutput::EveryStep
                            },
                            precision,
                        );
                    }
                    let rec_mask = match rng.as_mut() {
                        Some(rng) if self.config.recurrent_dropout > 0.0 => {
                            let m = dropout_mask(
                                rng,
                                batch,
                                layer.hidden,
                                self.config.recurrent_dropout,
                            );
                            Some(Tensor::from_data(
                                TensorData::new(m, [batch, layer.hidden]),
                                &device,
                            ))
                        }
                        _ => None,
                    };
                    let implementation = self.config.implementation;
                    if final_only {
                        let last = layer.final_state(
                            seq.clone(),
                            step_mask.clone(),
                            rec_mask,
                            implementation,
                            precision,
                        );
                        return last.unsqueeze_dim(1);
                    }
                    layer.forward(
                        seq.clone(),
                        step_mask.clone(),
                        rec_mask,
                        implementation,
                        precision,
                    )
                })
                .collect();
            if final_only {
                finals = outputs
                    .into_iter()
                    .map(|last| {
                        let [batch, _, hidden] = last.dims();
                        last.reshape([batch, hidden])
                    })
                    .collect();
                break;
            }
            seq = if outputs.len() == 1 {
                outputs.into_iter().next().unwrap_or(seq)
            } else {
                Tensor::cat(outputs, 2)
            };
        }
        if finals.is_empty() {
            Encoded::Steps(seq, step_mask)
        } else {
            Encoded::Features(Tensor::cat(finals, 1))
        }
    }

    /// The Transformer's pooled review vectors, `[batch, embed_dim]`.
    fn transformer_features(
        &self,
        transformer: &TransformerEncoder,
        tokens: Tensor<2, Int>,
        step_mask: Tensor<2>,
        rng: Option<&mut SeededRng>,
        perturbation: Option<Tensor<3>>,
    ) -> Tensor<2> {
        let device = tokens.device();
        let [batch, steps] = tokens.dims();
        let e = self.config.embed_dim;
        let positions: Tensor<3> = Tensor::from_data(
            TensorData::new(sinusoidal_positions(steps, e), [1, steps, e]),
            &device,
        );
        let mut x = embedding(self.embedding.val(), tokens) + positions;
        if let Some(rng) = rng {
            if self.config.spatial_dropout > 0.0 {
                let mask = dropout_mask(rng, batch, e, self.config.spatial_dropout);
                x = x * Tensor::<3>::from_data(TensorData::new(mask, [batch, 1, e]), &device);
            }
            // Burn's encoder draws its dropout masks from the device's generator: seeded from
            // this batch's dropout seed, they depend on that seed alone (and a resumed run
            // draws the same masks as an uninterrupted one).
            device.seed(rng.next_u64());
        }
        if let Some(r) = perturbation {
            x = x + r;
        }
        let padding = step_mask.clone().equal_elem(0.0);
        let out = transformer.forward(TransformerEncoderInput::new(x).mask_pad(padding));
        match self.config.pooling {
            Pooling::First => out.slice(s![.., 0..1, ..]).reshape([batch, e]),
            Pooling::Mean => pool_steps(out, &step_mask, Readout::Mean),
        }
    }

    /// Class probabilities, `[batch, num_classes]`, dropout off: `[1 - p, p]` with the
    /// sigmoid's `p` for two classes, the softmax for more.
    pub fn predict_proba(&self, input: ModelInput) -> Tensor<2> {
        probabilities(self.forward(input, None))
    }

    /// A view for classifying many batches, with the fast inference precision (see
    /// [`Predictor::with_precision`]). When the first layer is fused, its input projection
    /// `embedding · w_ih + bias` is computed once per word of the vocabulary, and each batch
    /// only looks rows up: two thirds of the arithmetic of inference disappear.
    pub fn predictor(&self) -> Predictor<'_> {
        let fused = self.config.implementation == Implementation::Fused
            && self.transformer.is_none()
            && has_fused_kernels(&self.embedding.device());
        let tables = fused.then(|| {
            self.encoder[..self.directions()]
                .iter()
                .map(|layer| layer.projection_table(self.embedding.val()).inner())
                .collect()
        });
        Predictor {
            model: self,
            tables,
            precision: InferencePrecision::Fast,
        }
    }

    /// A Keras-style summary: each layer, its output shape and its parameter count.
    pub fn summary(&self, maxlen: usize) -> ModelSummary {
        let e = self.config.embed_dim;
        let cell = self.config.architecture.cell();
        let dirs = self.directions();
        let mut rows = vec![LayerSummary {
            name: "embedding".into(),
            kind: "Embedding".into(),
            output_shape: format!("(None, {maxlen}, {e})"),
            params: self.num_words() * e,
        }];
        if self.config.spatial_dropout > 0.0 {
            rows.push(LayerSummary {
                name: "spatial_dropout1d".into(),
                kind: "SpatialDropout1D".into(),
                output_shape: format!("(None, {maxlen}, {e})"),
                params: 0,
            });
        }
        let mut input = e;
        if let Some(transformer) = &self.transformer {
            rows.push(LayerSummary {
                name: "transformer_encoder".into(),
                kind: format!(
                    "TransformerEncoder({} layers, {} heads)",
                    self.config.layers, self.config.heads
                ),
                output_shape: format!("(None, {maxlen}, {e})"),
                params: transformer.num_params(),
            });
            rows.push(LayerSummary {
                name: "pooling".into(),
                kind: match self.config.pooling {
                    Pooling::Mean => "GlobalAveragePooling1D".into(),
                    Pooling::First => "FirstToken".into(),
                },
                output_shape: format!("(None, {e})"),
                params: 0,
            });
        }
        let layers = if self.transformer.is_some() {
            0
        } else {
            self.config.layers
        };
        let pooled = self.config.readout != Readout::Last;
        for (l, cell) in (0..layers).zip(std::iter::repeat(cell).flatten()) {
            let last = l + 1 == self.config.layers && !pooled;
            let width = self.config.units * dirs;
            let shape = if last {
                format!("(None, {width})")
            } else {
                format!("(None, {maxlen}, {width})")
            };
            let params = dirs * cell.param_count(input, self.config.units);
            let base = cell.keras_name().to_lowercase();
            let name = if l == 0 { base } else { format!("{base}_{l}") };
            let (name, kind) = if dirs == 2 {
                (
                    format!("bidirectional_{name}"),
                    format!("Bidirectional({})", cell.keras_name()),
                )
            } else {
                (name, cell.keras_name().to_string())
            };
            rows.push(LayerSummary {
                name,
                kind,
                output_shape: shape,
                params,
            });
            input = width;
        }
        if pooled && layers > 0 {
            rows.push(LayerSummary {
                name: "pooling".into(),
                kind: match self.config.readout {
                    Readout::Max => "GlobalMaxPooling1D".into(),
                    _ => "GlobalAveragePooling1D".into(),
                },
                output_shape: format!("(None, {input})"),
                params: 0,
            });
        }
        rows.push(LayerSummary {
            name: "dense".into(),
            kind: "Dense".into(),
            output_shape: format!("(None, {})", self.outputs()),
            params: (input + 1) * self.outputs(),
        });
        ModelSummary::new(rows, self.num_params())
    }
}

/// Pools `[batch, steps, features]` outputs over the real steps of each row (`step_mask` is 1
/// there): the largest value or the mean of each feature.
fn pool_steps(seq: Tensor<3>, step_mask: &Tensor<2>, readout: Readout) -> Tensor<2> {
    let [batch, steps, features] = seq.dims();
    let weights = step_mask.clone().reshape([batch, steps, 1]);
    match readout {
        Readout::Max => {
            // Padding steps are pushed far below any output (|h| <= 1) so they never win.
            let shifted = seq + (weights - 1.0) * 1e4;
            shifted.max_dim(1).reshape([batch, features])
        }
        _ => {
            let counts = step_mask
                .clone()
                .sum_dim(1)
                .clamp_min(1.0)
                .reshape([batch, 1]);
            (seq * weights).sum_dim(1).reshape([batch, features]) / counts
        }
    }
}

/// What [`SentimentClassifier::encode`] gives: the dense layer's input, or every step of the
/// last layer with the step mask.
// Returned once per forward pass and matched at once: its size costs nothing.
#[allow(clippy::large_enum_variant)]
enum Encoded {
    Features(Tensor<2>),
    Steps(Tensor<3>, Tensor<2>),
}

/// A model prepared for inference over many batches (see
/// [`SentimentClassifier::predictor`]).
#[derive(Debug)]
pub struct Predictor<'a> {
    model: &'a SentimentClassifier,
    tables: Option<Vec<Tensor<2>>>,
    precision: InferencePrecision,
}

impl Predictor<'_> {
    /// The same predictor computing at `precision`: [`InferencePrecision::Fast`] (the default)
    /// is within about 1e-5 of the training pass, [`InferencePrecision::F32`] is exactly its
    /// arithmetic.
    pub fn with_precision(mut self, precision: InferencePrecision) -> Self {
        self.precision = precision;
        self
    }

    /// Logits `[batch, outputs]`, dropout off; the same numbers as
    /// [`SentimentClassifier::forward`] up to rounding (exactly, with
    /// [`InferencePrecision::F32`]).
    pub fn logits(&self, input: ModelInput) -> Tensor<2> {
        self.model
            .run(input, None, self.tables.as_deref(), self.precision, None)
    }

    /// Class probabilities, `[batch, num_classes]` (see
    /// [`SentimentClassifier::predict_proba`]).
    pub fn probabilities(&self, input: ModelInput) -> Tensor<2> {
        probabilities(self.logits(input))
    }
}

/// Output units for `num_classes` classes: one logit for two, else one per class.
pub fn outputs_for(num_classes: usize) -> usize {
    if num_classes == 2 { 1 } else { num_classes }
}

/// Class probabilities from logits `[batch, outputs]`: `[1 - σ(x), σ(x)]` for one output,
/// the softmax over the outputs otherwise.
pub fn probabilities(logits: Tensor<2>) -> Tensor<2> {
    let [_, outputs] = logits.dims();
    if outputs == 1 {
        let p = burn::tensor::activation::sigmoid(logits);
        Tensor::cat(vec![p.clone().neg() + 1.0, p], 1)
    } else {
        burn::tensor::activation::softmax(logits, 1)
    }
}

/// The sinusoidal position encodings of Vaswani et al. (2017), `[steps, dim]` row-major.
pub fn sinusoidal_positions(steps: usize, dim: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; steps * dim];
    for pos in 0..steps {
        for i in 0..dim {
            let angle = pos as f64 / 10_000f64.powf((2 * (i / 2)) as f64 / dim as f64);
            out[pos * dim + i] = if i % 2 == 0 { angle.sin() } else { angle.cos() } as f32;
        }
    }
    out
}

/// Keras-style inverted dropout mask: 0 with probability `rate`, else `1 / (1 - rate)`.
pub fn dropout_mask(rng: &mut SeededRng, rows: usize, cols: usize, rate: f64) -> Vec<f32> {
    let keep = (1.0 / (1.0 - rate)) as f32;
    (0..rows * cols)
        .map(|_| {
            if (rng.next_f32() as f64) < rate {
                0.0
            } else {
                keep
            }
        })
        .collect()
}
