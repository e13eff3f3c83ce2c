//! `cargo xtask evaluate`: re-evaluate a saved model on the whole test set of the data it was
//! trained on (the run folder's `config.toml` names it; IMDB without one), or of another
//! experiment config's data (`--config`).

use std::time::Instant;

use imdb_data::prepare;
use imdb_report::tables::classification_report;
use imdb_train::{Confusion, SavedModel, evaluate_at};

use crate::cli::EvaluateArgs;
use crate::config::load_experiment;
use crate::error::XtaskError;

/// Runs the command.
pub fn run(args: &EvaluateArgs) -> Result<(), XtaskError> {
    let precision = crate::precision::from_env()?;
    let device = args.backend.device()?;
    let saved = SavedModel::load(&args.model, &device)?;
    let (data_config, seed) = match &args.config {
        Some(path) => {
            let run = &load_experiment(path)?.runs[0].config;
            (run.data.clone(), run.seed)
        }
        None => crate::data::run_data(&args.model)?,
    };
    // Encoded as the model was trained, whatever the config says.
    let mut data_config = data_config.with_preprocessing(&saved.manifest.preprocessing);
    // The whole test set, whatever the run sampled; the split itself does not matter here.
    data_config.test_limit = None;
    data_config.train_limit = None;
    let corpus = crate::data::load_data(&data_config, seed, false)?;
    if corpus.classes != saved.classes() {
        return Err(XtaskError::Usage(format!(
            "the data's classes ({}) are not the model's ({}): evaluate on data with the same \
             classes, or fix `classes` in the config",
            corpus.classes.join(", "),
            saved.classes().join(", ")
        )));
    }
    // Every training text may serve as validation: only the test set is read.
    data_config.val_size = data_config
        .val_size
        .min(corpus.train.len().saturating_sub(1))
        .max(1);
    let data = prepare(&corpus, &data_config, seed)?;
    let started = Instant::now();
    let result = evaluate_at(&saved.model, &data.test, (512, true), precision, &device)?;
    let seconds = started.elapsed().as_secs_f64();
    let m = result.metrics;
    println!(
        "Test results ({} texts, {seconds:.2} s):",
        result.labels.len()
    );
    println!("- loss: {:.4}", m.loss);
    println!("- accuracy: {:.4}", m.accuracy);
    println!("- precision: {:.4}", m.precision);
    println!("- recall: {:.4}", m.recall);
    println!("- f1: {:.4}", m.f1);
    println!("- auc: {:.4}", m.auc);
    println!("Classification report:");
    print!(
        "{}",
        classification_report(
            &Confusion::from_probabilities(&result.probabilities, &result.labels),
            saved.classes(),
            4
        )
    );
    Ok(())
}
