//! A saved model as a folder other frameworks load: `model.safetensors` with PyTorch's names
//! and layouts, `config.json`, a Hugging Face `tokenizer.json` and `vocab.json`.
//!
//! Layouts: our matrices are stored `[in, G·H]` and the dense layer `[features, outputs]`;
//! PyTorch's are `[G·H, in]` and `[outputs, features]`, so every matrix is transposed. Gate
//! blocks follow `torch.nn.LSTM` (i, f, g, o: ours already) and `torch.nn.GRU` (r, z, n: ours
//! are z, r, n and are permuted; the arithmetic is already torch's, `b_hn` inside
//! `r·(W_hn h + b_hn)`). Our LSTM and RNN have one bias: it is written as `bias_ih`, zeros as
//! `bias_hh`. Names: `embedding.weight` `[num_words, embed_dim]`; per recurrent layer `k`
//! `rnn.weight_ih_l{k}`, `rnn.weight_hh_l{k}`, `rnn.bias_ih_l{k}`, `rnn.bias_hh_l{k}` (with
//! `_reverse` for the backward direction, whose features follow the forward ones, as in
//! torch); `head.weight`, `head.bias`. A stacked model adds `ngram.weight` (one per hash
//! bucket) and `ngram.bias`; `config.json` says how to combine them.
//!
//! How the reader must use a model (what `config.json` states): encode with `tokenizer.json`
//! (the start id first, unknown words `<UNK>`), cut to `maxlen` ids on the `truncating` side;
//! with `mask_padding` run the recurrent layers on the real ids only (padding changes
//! nothing), without it pad to `maxlen` with id 0 on the `padding` side and run on every step;
//! read out the last layer by its final states (`last`) or by the max or mean over the real
//! steps' outputs; two classes have one logit, `sigmoid` of it the probability of
//! `classes[1]`, more classes one logit each (softmax).

use std::path::Path;

use burn::tensor::Tensor;
use imdb_data::vocab::{INDEX_FROM, OOV_ID, PAD_ID, START_ID, UNUSED_ID};
use imdb_data::{Padding, Truncating};
use imdb_model::recurrent::{CellKind, Direction};
use imdb_model::{Architecture, Readout};
use serde_json::{Value, json};

use crate::artifacts::SavedModel;
use crate::error::TrainError;
use crate::records::save_json;
use crate::step::try_host;
use crate::tensor_file::{NamedTensor, write_tensors};

/// Version of the exported folder's layout (`config.json`'s `format`).
pub const EXPORT_FORMAT: u32 = 1;

/// The special tokens of `tokenizer.json`, by id.
pub const SPECIAL_TOKENS: [(&str, u32); 4] = [
    ("<PAD>", PAD_ID),
    ("<START>", START_ID),
    ("<UNK>", OOV_ID),
    ("<UNUSED>", UNUSED_ID),
];

/// Writes `model.safetensors`, `config.json`, `tokenizer.json` and `vocab.json` for `saved`
/// into `dir` (created if needed), each atomically. A Transformer is refused: only the
/// recurrent architectures have a PyTorch counterpart here.
pub fn export(saved: &SavedModel, dir: &Path) -> Result<(), TrainError> {
    let config = &saved.model.config;
    let cell = config
        .architecture
        .cell()
        .ok_or_else(|| TrainError::InvalidConfig {
            key: "architecture",
            problem: "a Transformer cannot be exported (only the recurrent architectures, whose \
                  layers map onto torch.nn.LSTM, GRU and RNN); export an LSTM, GRU or RNN \
                  model"
                .into(),
        })?;
    std::fs::create_dir_all(dir).map_err(|e| TrainError::io("cannot create", dir, e))?;
    write_tensors(&dir.join("model.safetensors"), &tensors(saved, cell)?, None)?;
    save_json(&config_json(saved), &dir.join("config.json"))?;
    save_json(&tokenizer_json(saved), &dir.join("tokenizer.json"))?;
    save_json(&saved.vocab, &dir.join("vocab.json"))
}

/// Every tensor of the export, PyTorch's names and layouts.
fn tensors(saved: &SavedModel, cell: CellKind) -> Result<Vec<NamedTensor>, TrainError> {
    let model = &saved.model;
    let mut out = Vec::new();
    let [rows, cols] = model.embedding.dims();
    out.push(NamedTensor::new(
        "embedding.weight",
        &[rows, cols],
        try_host(model.embedding.val())?,
    ));
    let directions = if model.config.bidirectional { 2 } else { 1 };
    for (i, layer) in model.encoder.iter().enumerate() {
        let suffix = format!(
            "l{}{}",
            i / directions,
            if layer.direction == Direction::Reverse {
                "_reverse"
            } else {
                ""
            }
        );
        let h = layer.hidden;
        let order = torch_gate_order(cell);
        let g = order.len() * h;
        let w_ih = matrix(layer.w_ih.val())?;
        let w_hh = matrix(layer.w_hh.val())?;
        let bias = try_host(layer.bias.val())?;
        out.push(NamedTensor::new(
            format!("rnn.weight_ih_{suffix}"),
            &[g, w_ih.0],
            transpose_gates(&w_ih.1, w_ih.0, h, &order),
        ));
        out.push(NamedTensor::new(
            format!("rnn.weight_hh_{suffix}"),
            &[g, h],
            transpose_gates(&w_hh.1, w_hh.0, h, &order),
        ));
        let (bias_ih, bias_hh) = match cell {
            // Input bias, then recurrent bias, each in our gate order.
            CellKind::Gru => (
                permute_blocks(&bias[..g], h, &order),
                permute_blocks(&bias[g..], h, &order),
            ),
            _ => (permute_blocks(&bias, h, &order), vec![0.0; g]),
        };
        out.push(NamedTensor::new(
            format!("rnn.bias_ih_{suffix}"),
            &[g],
            bias_ih,
        ));
        out.push(NamedTensor::new(
            format!("rnn.bias_hh_{suffix}"),
            &[g],
            bias_hh,
        ));
    }
    let (features, dense) = matrix(model.dense_weight.val())?;
    let outputs = model.outputs();
    out.push(NamedTensor::new(
        "head.weight",
        &[outputs, features],
        transpose(&dense, features, outputs),
    ));
    out.push(NamedTensor::new(
        "head.bias",
        &[outputs],
        try_host(model.dense_bias.val())?,
    ));
    if let Some(stack) = &saved.stack {
        let weights = stack.ngram.weights();
        out.push(NamedTensor::new(
            "ngram.weight",
            &[weights.len()],
            weights.to_vec(),
        ));
        out.push(NamedTensor::new(
            "ngram.bias",
            &[1],
            vec![stack.ngram.bias()],
        ));
    }
    Ok(out)
}

/// Our gate blocks in torch's order: `order[k]` is the block of ours that torch's block `k`
/// is.
fn torch_gate_order(cell: CellKind) -> Vec<usize> {
    match cell {
        // i, f, c, o: the same as torch's i, f, g, o.
        CellKind::Lstm => vec![0, 1, 2, 3],
        // Ours z, r, h; torch's r, z, n.
        CellKind::Gru => vec![1, 0, 2],
        CellKind::Rnn => vec![0],
    }
}

/// A matrix's rows and row-major values.
fn matrix(t: Tensor<2>) -> Result<(usize, Vec<f32>), TrainError> {
    let rows = t.dims()[0];
    Ok((rows, try_host(t)?))
}

/// `[rows, cols]` row-major, transposed to `[cols, rows]`.
fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}

/// Our `[rows, G·H]` weights as torch's `[G·H, rows]`, gate blocks in `order`.
fn transpose_gates(values: &[f32], rows: usize, hidden: usize, order: &[usize]) -> Vec<f32> {
    let g = order.len() * hidden;
    let t = transpose(values, rows, g);
    let blocks: Vec<&[f32]> = t.chunks_exact(hidden * rows).collect();
    order
        .iter()
        .flat_map(|&b| blocks[b].iter().copied())
        .collect()
}

/// A `[G·H]` bias with its gate blocks in `order`.
fn permute_blocks(values: &[f32], hidden: usize, order: &[usize]) -> Vec<f32> {
    let blocks: Vec<&[f32]> = values.chunks_exact(hidden).collect();
    order
        .iter()
        .flat_map(|&b| blocks[b].iter().copied())
        .collect()
}

fn name<T: serde::Serialize>(value: T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// `config.json`: everything a reader needs to rebuild and feed the model.
pub fn config_json(saved: &SavedModel) -> Value {
    let config = &saved.model.config;
    let pre = &saved.manifest.preprocessing;
    let classes = saved.classes();
    let mut value = json!({
        "format": EXPORT_FORMAT,
        "architecture": name(config.architecture),
        "num_layers": config.layers,
        "bidirectional": config.bidirectional,
        "readout": name(config.readout),
        "num_words": pre.num_words,
        "embed_dim": config.embed_dim,
        "units": config.units,
        "classes": classes,
        "outputs": saved.model.outputs(),
        "output": if classes.len() == 2 {
            "one logit: sigmoid(logit) is the probability of classes[1]"
        } else {
            "one logit per class, in the order of classes: softmax gives the probabilities"
        },
        "maxlen": pre.maxlen,
        "padding": name(pre.padding),
        "truncating": name(pre.truncating),
        "mask_padding": config.mask_padding,
        "lowercase": pre.tokenizer.lowercase,
        "strip_html": pre.tokenizer.strip_html,
        "special_tokens": SPECIAL_TOKENS.iter().map(|(t, id)| (t.to_string(), json!(id)))
            .collect::<serde_json::Map<String, Value>>(),
        "word_ids": format!(
            "the word of vocab.json's rank r has id r + {}; ids of num_words and above are \
             never produced",
            INDEX_FROM + 1
        ),
        "reading": reading(config.architecture, config.readout, config.mask_padding, pre),
    });
    if let Some(stack) = &saved.stack {
        let s = stack.stacking;
        value["stack"] = json!({
            "network_weight": s.network_weight,
            "ngram_weight": s.other_weight,
            "bias": s.bias,
            "max_n": stack.ngram.max_n(),
            "hash_bits": stack.ngram.hash_bits(),
            "meaning": "the verdict's log-odds is network_weight * network + ngram_weight * \
                        ngram + bias, where network is the network's logit and ngram is \
                        ngram.bias plus the sum of ngram.weight[b] over the distinct buckets b \
                        of the text's n-grams (1 to max_n consecutive ids of all the text's \
                        ids, untruncated, the start id included)",
            "hash": "bucket = FNV-1a 64-bit over the n-gram's ids as little-endian u32 bytes \
                     (offset 0xcbf29ce484222325, prime 0x100000001b3), shifted right by \
                     64 - hash_bits",
        });
    }
    value
}

/// How to read a text, in words (for `config.json`).
fn reading(
    architecture: Architecture,
    readout: Readout,
    mask_padding: bool,
    pre: &imdb_data::Preprocessing,
) -> String {
    let keep = match pre.truncating {
        Truncating::Pre => "last",
        Truncating::Post => "first",
    };
    let steps = if mask_padding {
        "run the recurrent layers on those ids only (padding is masked: it changes nothing)"
            .to_string()
    } else {
        format!(
            "pad them to {} with id 0 {} them and run the recurrent layers on every step",
            pre.maxlen,
            match pre.padding {
                Padding::Pre => "before",
                Padding::Post => "after",
            }
        )
    };
    let out = match readout {
        Readout::Last => "the final state of each direction of the last layer",
        Readout::Max => "the largest value of each feature over the real steps of the last layer",
        Readout::Mean => "the mean of each feature over the real steps of the last layer",
    };
    format!(
        "{}: tokenize with tokenizer.json, keep the {keep} {} ids, {steps}; the head reads \
         {out} (forward features first)",
        name(architecture).as_str().unwrap_or_default(),
        pre.maxlen
    )
}

/// `tokenizer.json` in the Hugging Face `tokenizers` format: the same words as our tokenizer
/// (`<br>` tags are breaks, `strip_html` drops every tag, curly apostrophes are straight,
/// lowercase, words are runs of letters and digits with inner apostrophes), a WordLevel
/// vocabulary with our ids, `<UNK>` for unknown words and the start id first. No truncation
/// or padding: the reader applies `maxlen`, `truncating` and `padding` from `config.json`.
pub fn tokenizer_json(saved: &SavedModel) -> Value {
    let tokenizer = saved.manifest.preprocessing.tokenizer;
    let replace = |pattern: &str, content: &str| json!({"type": "Replace", "pattern": {"Regex": pattern}, "content": content});
    let mut normalizers = vec![replace("<[bB][rR] */?>", " ")];
    if tokenizer.strip_html {
        // A tag: `<`, a letter, `/` or `!`, up to the next `>` within 256 characters.
        normalizers.push(replace("<[A-Za-z/!][^>]{0,254}>", " "));
    }
    normalizers.push(json!({"type": "Replace", "pattern": {"String": "\u{2019}"}, "content": "'"}));
    if tokenizer.lowercase {
        normalizers.push(json!({"type": "Lowercase"}));
    }
    let mut vocab = serde_json::Map::new();
    for (token, id) in SPECIAL_TOKENS {
        vocab.insert(token.to_string(), json!(id));
    }
    for (rank, word) in saved.vocab.words().iter().enumerate() {
        vocab.insert(word.clone(), json!(rank as u32 + INDEX_FROM + 1));
    }
    let added: Vec<Value> = SPECIAL_TOKENS
        .iter()
        .map(|(token, id)| {
            json!({"id": id, "content": token, "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": normalizers},
        "pre_tokenizer": {
            "type": "Split",
            "pattern": {"Regex": "[\\p{Alphabetic}\\p{N}]+(?:'[\\p{Alphabetic}\\p{N}]+)*"},
            "behavior": "Removed",
            "invert": true
        },
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [
                {"SpecialToken": {"id": "<START>", "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}}
            ],
            "pair": [
                {"SpecialToken": {"id": "<START>", "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
                {"Sequence": {"id": "B", "type_id": 1}}
            ],
            "special_tokens": {"<START>": {"id": "<START>", "ids": [START_ID], "tokens": ["<START>"]}}
        },
        "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<UNK>"}
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor_file::read_tensors;
    use burn::tensor::Device;
    use imdb_data::{DataConfig, Vocabulary};
    use imdb_model::{ModelConfig, SentimentClassifier};

    fn saved(config: ModelConfig, classes: usize) -> SavedModel {
        let model = SentimentClassifier::new(&config, 12, classes, 3, &Device::flex()).unwrap();
        let vocab = Vocabulary::build(["a b c d e f g h"]);
        let names: Vec<String> = (0..classes).map(|c| format!("c{c}")).collect();
        let pre = DataConfig {
            num_words: 12,
            maxlen: 5,
            ..DataConfig::default()
        }
        .preprocessing();
        SavedModel::new(model, pre, &vocab, &names).unwrap()
    }

    #[test]
    fn names_and_shapes_are_torchs_and_a_transformer_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let config = ModelConfig {
            architecture: Architecture::Gru,
            embed_dim: 6,
            units: 4,
            layers: 2,
            bidirectional: true,
            ..ModelConfig::default()
        };
        export(&saved(config, 3), dir.path()).unwrap();
        let file = dir.path().join("model.safetensors");
        let names = [
            "embedding.weight",
            "rnn.weight_ih_l0",
            "rnn.weight_hh_l0_reverse",
            "rnn.weight_ih_l1",
            "rnn.bias_hh_l1_reverse",
            "head.weight",
            "head.bias",
        ];
        let tensors = read_tensors(&file, &names, "test").unwrap();
        let shapes: Vec<Vec<usize>> = tensors.iter().map(|t| t.shape.clone()).collect();
        assert_eq!(
            shapes,
            [
                vec![12, 6],
                vec![12, 6],
                vec![12, 4],
                vec![12, 8],
                vec![12],
                vec![3, 8],
                vec![3]
            ]
        );
        let config: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("config.json")).unwrap())
                .unwrap();
        for (key, value) in [
            ("architecture", json!("gru")),
            ("num_layers", json!(2)),
            ("bidirectional", json!(true)),
            ("readout", json!("last")),
            ("num_words", json!(12)),
            ("embed_dim", json!(6)),
            ("units", json!(4)),
            ("classes", json!(["c0", "c1", "c2"])),
            ("maxlen", json!(5)),
            ("padding", json!("post")),
            ("truncating", json!("post")),
            ("mask_padding", json!(true)),
            ("lowercase", json!(true)),
            ("strip_html", json!(false)),
        ] {
            assert_eq!(config[key], value, "{key}: {config}");
        }
        let tokenizer: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("tokenizer.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(tokenizer["model"]["vocab"]["a"], 4);
        assert_eq!(tokenizer["model"]["vocab"]["<UNK>"], 2);

        let transformer = ModelConfig {
            architecture: Architecture::Transformer,
            embed_dim: 8,
            heads: 2,
            ff_dim: 8,
            ..ModelConfig::default()
        };
        let refused = export(&saved(transformer, 2), &dir.path().join("t"))
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("Transformer cannot be exported"),
            "{refused}"
        );
        assert!(!dir.path().join("t").exists());
    }

    #[test]
    fn gates_are_transposed_and_reordered_as_torch_keeps_them() {
        // Two inputs, hidden 1, three gate blocks (a GRU's z, r, h) holding 10·input + gate.
        let ours: Vec<f32> = (0..2)
            .flat_map(|i| (0..3).map(move |g| (10 * i + g) as f32))
            .collect();
        let torch = transpose_gates(&ours, 2, 1, &torch_gate_order(CellKind::Gru));
        // torch: [3 gates, 2 inputs], gates r, z, n.
        assert_eq!(torch, [1.0, 11.0, 0.0, 10.0, 2.0, 12.0]);
        assert_eq!(
            permute_blocks(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2, &[1, 0, 2]),
            [3.0, 4.0, 1.0, 2.0, 5.0, 6.0]
        );
        assert_eq!(
            transpose(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2, 3),
            [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]
        );
    }
}
