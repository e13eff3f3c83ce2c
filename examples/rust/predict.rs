//! Loads a saved model folder (a run of `cargo xtask experiment`, or one that `train_csv`
//! wrote) and classifies the texts given on the command line.
//!
//! ```sh
//! cargo run --release -p imdb-train --example predict -- runs/baseline/masked "A moving film." "Dull."
//! ```

use std::path::Path;

use burn::tensor::Device;
use imdb_train::{Prediction, SavedModel};

/// The verdicts of the model saved in `dir` on `texts`.
pub fn predict(dir: &Path, texts: &[&str]) -> Result<Vec<Prediction>, Box<dyn std::error::Error>> {
    let model = SavedModel::load(dir, &Device::flex())?;
    Ok(model.predict(texts, 256)?)
}

#[allow(dead_code)] // a test calls `predict` alone
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((dir, texts)) = args.split_first() else {
        return Err("usage: predict MODEL_FOLDER TEXT [TEXT ...]".into());
    };
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    for (text, verdict) in texts.iter().zip(predict(Path::new(dir), &texts)?) {
        println!("{}\t{:.4}\t{text}", verdict.label, verdict.probability);
    }
    Ok(())
}
