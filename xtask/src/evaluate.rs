//! `cargo xtask evaluate`: re-evaluate a saved model on the whole test set.

use std::time::Instant;

use imdb_data::prepare;
use imdb_report::tables::classification_report;
use imdb_train::{Confusion, SavedModel, evaluate};

use crate::cli::EvaluateArgs;
use crate::error::XtaskError;

/// Runs the command.
pub fn run(args: &EvaluateArgs) -> Result<(), XtaskError> {
    let device = args.backend.device()?;
    let saved = SavedModel::load(&args.model, &device)?;
    let (corpus, _) = crate::data::load(false)?;
    let mut data_config = saved.manifest.data.clone();
    // The whole test set, whatever the run sampled; the split itself does not matter here.
    data_config.test_limit = None;
    data_config.train_limit = None;
    let data = prepare(&corpus, &data_config, 0)?;
    let started = Instant::now();
    let result = evaluate(&saved.model, &data.test, 512, true, &device);
    let seconds = started.elapsed().as_secs_f64();
    let m = result.metrics;
    println!(
        "Test results ({} reviews, {seconds:.2} s):",
        result.labels.len()
    );
    println!("- loss: {:.4}", m.loss);
    println!("- accuracy: {:.4}", m.accuracy);
    println!("- precision: {:.4}", m.precision);
    println!("- recall: {:.4}", m.recall);
    println!("- auc: {:.4}", m.auc);
    println!("Classification report:");
    print!(
        "{}",
        classification_report(
            &Confusion::from_probabilities(&result.probabilities, &result.labels),
            4
        )
    );
    Ok(())
}
