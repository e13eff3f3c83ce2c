//! Trains the notebook's LSTM on your own labelled CSV and saves it as a model folder that
//! `predict`, `evaluate`, `serve` and `export` read.
//!
//! ```sh
//! cargo run --release -p imdb-train --example train_csv -- reviews.csv review sentiment my-model
//! ```
//!
//! Any number of classes; a fifth of the rows is held out as the test set.

use std::path::Path;

use burn::tensor::Device;
use imdb_data::DataConfig;
use imdb_train::{ConsoleProgress, Recipe, Trained};

/// Trains on `csv` (its `text` and `label` columns) with `recipe`'s settings and saves the
/// model into `out`.
pub fn train_csv(
    csv: &Path,
    (text, label): (&str, &str),
    recipe: impl FnOnce(DataConfig) -> Recipe,
    out: &Path,
) -> Result<Trained, Box<dyn std::error::Error>> {
    let data = DataConfig::csv(csv, text, label, 0.2);
    let corpus = imdb_data::load_labelled(&data, 42)?;
    let recipe = recipe(data);
    let trained = recipe.fit(&corpus, &Device::flex(), &mut ConsoleProgress::new("csv"))?;
    trained.saved.save(out)?;
    Ok(trained)
}

#[allow(dead_code)] // a test calls `train_csv` alone
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [csv, text, label, out] = args.as_slice() else {
        return Err("usage: train_csv FILE.csv TEXT_COLUMN LABEL_COLUMN OUT_FOLDER".into());
    };
    let trained = train_csv(Path::new(csv), (text, label), Recipe::new, Path::new(out))?;
    println!(
        "test accuracy {:.4} on {} texts; model saved in {out}",
        trained.test.metrics.accuracy,
        trained.test.labels.len()
    );
    Ok(())
}
