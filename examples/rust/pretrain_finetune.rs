//! Pretrains the classifier's embedding and LSTM as a language model on a CSV's training
//! texts (no labels), fine-tunes it on the labels, stacks it with an n-gram model, and saves
//! the whole stack: `configs/semisupervised.toml`'s `best` recipe on your own data.
//!
//! ```sh
//! cargo run --release -p imdb-train --example pretrain_finetune -- reviews.csv review sentiment my-model
//! ```
//!
//! Two classes (the n-gram stack's limit).

use std::path::Path;

use burn::tensor::Device;
use imdb_data::DataConfig;
use imdb_model::ngram::NgramConfig;
use imdb_train::pretrain::PretrainConfig;
use imdb_train::{ConsoleProgress, FineTuneConfig, Recipe, Trained};

/// The recipe: a language model first, fine-tuned, then stacked with word and pair n-grams.
pub fn semisupervised(data: DataConfig, pretrain_epochs: usize) -> Recipe {
    let pretrain = PretrainConfig {
        epochs: pretrain_epochs,
        ..PretrainConfig::default()
    };
    Recipe::new(data)
        .with_pretraining(pretrain, FineTuneConfig::default())
        .with_ngram_stack(NgramConfig {
            max_n: 2,
            ..NgramConfig::default()
        })
}

/// Trains `recipe` on `csv` (its `text` and `label` columns, a fifth held out for the test)
/// and saves the stacked model into `out`.
pub fn pretrain_finetune(
    csv: &Path,
    (text, label): (&str, &str),
    recipe: impl FnOnce(DataConfig) -> Recipe,
    out: &Path,
) -> Result<Trained, Box<dyn std::error::Error>> {
    let data = DataConfig::csv(csv, text, label, 0.2);
    let corpus = imdb_data::load_labelled(&data, 42)?;
    let trained = recipe(data).fit(&corpus, &Device::flex(), &mut ConsoleProgress::new("lm"))?;
    trained.saved.save(out)?;
    Ok(trained)
}

#[allow(dead_code)] // a test calls `pretrain_finetune` alone
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [csv, text, label, out] = args.as_slice() else {
        return Err("usage: pretrain_finetune FILE.csv TEXT_COLUMN LABEL_COLUMN OUT_FOLDER".into());
    };
    let recipe = |data| semisupervised(data, 2);
    let trained = pretrain_finetune(Path::new(csv), (text, label), recipe, Path::new(out))?;
    if let (Some(epochs), Some(stack)) = (&trained.pretraining, &trained.stack) {
        let last = epochs.last().map_or(f64::NAN, |e| e.held_out_perplexity);
        println!(
            "language model: held-out perplexity {last:.1}; test accuracy network {:.4}, \
             n-grams {:.4}, stacked {:.4}",
            stack.test_accuracy.network, stack.test_accuracy.ngram, stack.test_accuracy.stacked
        );
    }
    println!("model saved in {out}");
    Ok(())
}
