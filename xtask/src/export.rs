//! `cargo xtask export --model RUN --out DIR`: a saved model as a folder any framework loads
//! (`imdb_train::export`: `model.safetensors` with PyTorch's names and layouts,
//! `config.json`, `tokenizer.json`, `vocab.json`), with a model card, `README.md`: the data
//! and its licence, the training command and config, the test metrics with their spread over
//! seeds where the run has siblings, intended use and limits.

use std::path::{Path, PathBuf};

use imdb_data::{SourceKind, write_atomic};
use imdb_report::{RunMetrics, read_metrics_json};
use imdb_train::SavedModel;

use crate::cli::ExportArgs;
use crate::error::XtaskError;

/// Runs the command.
pub fn run(args: &ExportArgs) -> Result<(), XtaskError> {
    if args.out.join("model.json").exists() || args.out == args.model {
        return Err(XtaskError::Usage(format!(
            "--out {}: that folder holds a saved model; export into a folder of its own",
            args.out.display()
        )));
    }
    let saved = crate::data::load_model(&args.model, &burn::tensor::Device::flex())?;
    imdb_train::export::export(&saved, &args.out)?;
    let card = model_card(&args.model, &saved)?;
    write_atomic(&args.out.join("README.md"), card.as_bytes())?;
    eprintln!(
        "exported {} to {}: model.safetensors, config.json, tokenizer.json, vocab.json, \
         README.md",
        args.model.display(),
        args.out.display()
    );
    Ok(())
}

/// The experiment config a run folder was trained from (`experiment.toml` in its experiment's
/// folder, one or two levels up), if it is there.
fn experiment_file(run: &Path) -> Option<PathBuf> {
    run.ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join("experiment.toml"))
        .find(|p| p.is_file())
}

/// Each seed's metrics when `run` is one seed folder (`seed-N`) of a run trained with several.
fn sibling_seeds(run: &Path) -> Vec<(String, RunMetrics)> {
    let is_seed = |p: &Path| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("seed-"))
    };
    let (Some(parent), true) = (run.parent(), is_seed(run)) else {
        return Vec::new();
    };
    let mut seeds: Vec<(String, RunMetrics)> = std::fs::read_dir(parent)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| is_seed(p))
        .filter_map(|p| {
            let metrics = read_metrics_json(&p.join("metrics.json"))?;
            Some((p.file_name()?.to_string_lossy().into_owned(), metrics))
        })
        .collect();
    seeds.sort_by(|a, b| a.0.cmp(&b.0));
    seeds
}

/// The model card.
fn model_card(run: &Path, saved: &SavedModel) -> Result<String, XtaskError> {
    let config = crate::data::run_config(run)?;
    let config_text = std::fs::read_to_string(run.join("config.toml")).ok();
    let metrics = read_metrics_json(&run.join("metrics.json"));
    let model = &saved.model.config;
    let pre = &saved.manifest.preprocessing;
    let architecture = serde_json::to_value(model.architecture)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let run_name = run
        .file_name()
        .map_or(String::new(), |n| n.to_string_lossy().into_owned());
    let mut card = format!(
        "# {architecture} text classifier ({run_name})\n\nA {}{}{architecture} over {} word \
         vectors of {} numbers ({} units{}, read out by {}), classifying text into {}{}. \
         Exported by imdb-sentiment (`cargo xtask export`) from `{}`.\n\n",
        if model.layers > 1 {
            format!("{}-layer ", model.layers)
        } else {
            String::new()
        },
        if model.bidirectional {
            "bidirectional "
        } else {
            ""
        },
        pre.num_words,
        model.embed_dim,
        model.units,
        if model.bidirectional {
            " per direction"
        } else {
            ""
        },
        serde_json::to_value(model.readout)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        saved
            .classes()
            .iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(", "),
        if saved.stack.is_some() {
            ", stacked with a hashed n-gram logistic regression (NBSVM-style) over all of each \
             text's words"
        } else {
            ""
        },
        run.display()
    );
    card += "## Files\n\n- `model.safetensors`: the weights, with PyTorch's names and layouts \
             (`embedding.weight`, `rnn.*` as `torch.nn.LSTM`/`GRU`/`RNN` name them, \
             `head.weight`, `head.bias`";
    if saved.stack.is_some() {
        card += ", and the n-gram part's `ngram.weight` and `ngram.bias`";
    }
    card += ").\n- `config.json`: the architecture, classes, `maxlen`, padding and truncation, \
             the tokenizer settings and how to read a text (`reading`";
    if saved.stack.is_some() {
        card += "; `stack`: how the two parts combine and how n-grams are hashed";
    }
    card += ").\n- `tokenizer.json`: a Hugging Face `tokenizers` tokenizer giving the model's \
             ids (the start id first), before truncation.\n- `vocab.json`: the words by \
             rank (the word of rank r has id r + 4).\n\n`examples/pytorch/predict.py` in the \
             imdb-sentiment repository loads this folder with `torch`, `safetensors` and \
             `tokenizers` and gives the model's probabilities.\n\n";
    card += "## Data\n\n";
    card += &match config.data.source {
        SourceKind::Imdb => {
            let labels = match &config.data.rating_bands {
                Some(bands) => format!(
                    "star ratings in bands {}",
                    bands
                        .iter()
                        .map(|[a, b]| format!("{a}–{b}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                None => "negative (ratings 1–4) and positive (7–10) reviews".to_string(),
            };
            format!(
                "The Large Movie Review Dataset v1.0 (Maas et al., 2011, \"Learning Word Vectors \
                 for Sentiment Analysis\", ACL; https://ai.stanford.edu/~amaas/data/sentiment/): \
                 25,000 training and 25,000 test reviews from IMDB, labelled by {labels}. The \
                 dataset is distributed by its authors for research, with the request to cite \
                 the paper; the reviews belong to their IMDB authors. {} training reviews were \
                 held out for validation (early stopping{}).\n\n",
                config.data.val_size,
                if saved.stack.is_some() {
                    ", and fitting the stack"
                } else {
                    ""
                }
            )
        }
        kind => format!(
            "The user's own {} source `{}` (test: {}); its licence is its owner's.\n\n",
            kind.name(),
            config
                .data
                .train
                .as_deref()
                .map_or(String::new(), |p| p.display().to_string()),
            match (&config.data.test, config.data.test_fraction) {
                (Some(test), _) => format!("`{}`", test.display()),
                (None, Some(f)) => format!("a seeded {:.0}% of it held out", 100.0 * f),
                (None, None) => "none".to_string(),
            }
        ),
    };
    card += "## Training\n\n";
    match experiment_file(run) {
        Some(file) => {
            card += &format!(
                "Trained by `cargo xtask experiment CONFIG` from the experiment config copied to \
                 `{}`, seed {}. The run's resolved settings (`config.toml`):\n\n",
                file.display(),
                config.seed
            )
        }
        None => {
            card += &format!(
                "Trained by `cargo xtask experiment CONFIG`, seed {}. The run's resolved \
                 settings:\n\n",
                config.seed
            )
        }
    }
    if let Some(text) = &config_text {
        card += &format!("```toml\n{}```\n\n", text);
    }
    card += "## Test metrics\n\n";
    match &metrics {
        Some(m) => {
            card += &format!(
                "On the run's test set ({}): accuracy {:.4}, loss {:.4}, ROC AUC {:.4}, F1 \
                 {:.4} (`metrics.json`; `cargo xtask evaluate --model RUN` reproduces them).",
                match config.data.test_limit {
                    Some(n) => format!("a seeded sample of {n} texts"),
                    None => "every test text".to_string(),
                },
                m.test_accuracy,
                m.test_loss,
                m.test_auc,
                m.test_f1
            );
            let seeds = sibling_seeds(run);
            if seeds.len() > 1 {
                let accuracies: Vec<f64> = seeds.iter().map(|(_, m)| m.test_accuracy).collect();
                let n = accuracies.len() as f64;
                let mean = accuracies.iter().sum::<f64>() / n;
                let std =
                    (accuracies.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
                card += &format!(
                    " The same configuration over {} seeds ({}): accuracy {mean:.4} ± {std:.4} \
                     (sample standard deviation).",
                    seeds.len(),
                    seeds
                        .iter()
                        .map(|(s, m)| format!("{s} {:.4}", m.test_accuracy))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            card += "\n\n";
        }
        None => card += "No `metrics.json` in the run folder: not measured here.\n\n",
    }
    card += &format!(
        "## Intended use and limits\n\n- Made to classify {} like the training texts, and as a \
         baseline for research and teaching; not for decisions about people.\n- It reads at \
         most {} tokens of a text (the {} ones, its start token included){}; words outside its {} most frequent training \
         words are unknown to it.\n- Its accuracy is that of the test set above, whose texts \
         are like its training texts; expect less on other domains, other languages, sarcasm \
         and mixed verdicts.\n- It inherits the biases of its training data.\n",
        match config.data.source {
            SourceKind::Imdb => "English movie reviews",
            _ => "texts",
        },
        pre.maxlen,
        match pre.truncating {
            imdb_data::Truncating::Pre => "last",
            imdb_data::Truncating::Post => "first",
        },
        if saved.stack.is_some() {
            " in its network; its n-gram part reads them all"
        } else {
            ""
        },
        pre.num_words.saturating_sub(4)
    );
    Ok(card)
}
