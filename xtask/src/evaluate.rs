//! `cargo xtask evaluate`: a saved model's metrics on labelled texts, always encoded with the
//! model's own vocabulary and preprocessing:
//!
//! - with no other argument, the test set of the run that saved it, as the run evaluated it
//!   (its `test_limit`, `eval_batch_size` and `bucketing`): the run's `metrics.json` and
//!   `predictions.csv` again, stacked runs included;
//! - `--data FILE_OR_DIR`: any labelled CSV/TSV, JSON Lines file or folder per class, without
//!   a config (`--text-field`, `--label-field` name its columns or keys);
//! - `--config CONFIG`: the whole test set of another experiment config's data (its first
//!   run's).
//!
//! The metrics, the classification report and the confusion matrix are printed; `--out DIR`
//! writes them with `predictions.csv`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Instant;

use imdb_data::labelled::read_source;
use imdb_data::{DataConfig, SourceKind, Vocabulary, prepare};
use imdb_report::tables::classification_report;
use imdb_report::{confusion_text, write_evaluation};
use imdb_train::{Confusion, SavedModel};
use rayon::prelude::*;

use crate::cli::EvaluateArgs;
use crate::config::load_experiment;
use crate::error::XtaskError;

/// Labelled texts ready for the model: every id of each text, and its class id.
struct LabelledIds {
    /// What they are, for the console and `metrics.json`.
    what: String,
    ids: Vec<Vec<u32>>,
    labels: Vec<u32>,
}

/// Runs the command.
pub fn run(args: &EvaluateArgs) -> Result<(), XtaskError> {
    if let Some(out) = &args.out
        && out.join("model.json").exists()
    {
        return Err(XtaskError::Usage(format!(
            "--out {}: that folder holds a saved model, whose run's results this would \
             overwrite; give another folder",
            out.display()
        )));
    }
    if args.data.is_none() && (args.text_field.is_some() || args.label_field.is_some()) {
        return Err(XtaskError::Usage(
            "--text-field and --label-field name the fields of --data FILE; give --data".into(),
        ));
    }
    let device = args.backend.device()?;
    let saved = crate::data::load_model(&args.model, &device)?;
    let run = crate::data::run_config(&args.model)?;
    let eval = (run.train.eval_batch_size, run.train.bucketing);
    let set = match (&args.data, &args.config) {
        (Some(path), _) => labelled_file(&saved, path, args)?,
        (None, Some(config)) => {
            let run = &load_experiment(config)?.runs[0].config;
            let mut data = run.data.clone();
            // The whole test set, whatever the run sampled.
            (data.test_limit, data.train_limit) = (None, None);
            let what = format!("the test set of {}", config.display());
            test_set(&saved, data, run.seed, what)?
        }
        (None, None) => {
            let what = format!("the test set of the run in {}", args.model.display());
            test_set(&saved, run.data.clone(), run.seed, what)?
        }
    };
    let started = Instant::now();
    let result = saved.evaluate_ids(&set.ids, &set.labels, eval)?;
    let seconds = started.elapsed().as_secs_f64();
    let m = &result.metrics;
    println!(
        "Results on {} ({} texts, {seconds:.2} s):",
        set.what,
        result.labels.len()
    );
    println!("- loss: {:.4}", m.loss);
    println!("- accuracy: {:.4}", m.accuracy);
    println!("- precision: {:.4}", m.precision);
    println!("- recall: {:.4}", m.recall);
    println!("- f1: {:.4}", m.f1);
    println!("- auc: {:.4}", m.auc);
    let confusion = Confusion::from_probabilities(&result.probabilities, &result.labels);
    println!("Classification report:");
    print!("{}", classification_report(&confusion, saved.classes(), 4));
    println!("Confusion matrix (rows: true class, columns: predicted):");
    print!("{}", confusion_text(&confusion, saved.classes()));
    if let Some(out) = &args.out {
        write_evaluation(out, &result, saved.classes(), &set.what)?;
        eprintln!(
            "wrote predictions.csv, the report and the confusion matrix to {}",
            out.display()
        );
    }
    Ok(())
}

/// The test set of `data` (a config's data settings, paths resolved), split with `seed` as an
/// experiment splits it, encoded as the model encodes text, with class ids by the model's
/// class names.
fn test_set(
    saved: &SavedModel,
    data: DataConfig,
    seed: u64,
    what: String,
) -> Result<LabelledIds, XtaskError> {
    let pre = &saved.manifest.preprocessing;
    let mut data = data.with_preprocessing(pre);
    let corpus = crate::data::load_data_for(saved, &data, seed)?;
    let to_model = class_map(saved, &corpus.classes, |_| None)?;
    // Every training text may serve as validation: only the test set is read.
    data.val_size = data
        .val_size
        .min(corpus.train.len().saturating_sub(1))
        .max(1);
    let prepared = prepare(&corpus, &data, seed)?;
    let ids = prepared
        .test
        .source
        .iter()
        .map(|&i| Vocabulary::encode_ranks(&corpus.test[i].ranks, pre.num_words))
        .collect();
    let labels = prepared
        .test
        .labels
        .iter()
        .map(|&c| to_model[c as usize])
        .collect();
    Ok(LabelledIds { what, ids, labels })
}

/// A labelled file or folder (its kind from its name), read without a config.
fn labelled_file(
    saved: &SavedModel,
    path: &Path,
    args: &EvaluateArgs,
) -> Result<LabelledIds, XtaskError> {
    let defaults = DataConfig::default();
    let config = DataConfig {
        source: SourceKind::of_path(path)?,
        text_field: args.text_field.clone().unwrap_or(defaults.text_field),
        label_field: args.label_field.clone().unwrap_or(defaults.label_field),
        ..DataConfig::default()
    };
    let texts = read_source(&config, path)?;
    // The distinct labels, each with where it first occurs.
    let mut first_seen: BTreeMap<&str, String> = BTreeMap::new();
    for t in &texts {
        first_seen
            .entry(t.label.as_str())
            .or_insert_with(|| t.location());
    }
    let names: Vec<String> = first_seen.keys().map(|l| l.to_string()).collect();
    let to_model = class_map(saved, &names, |label| first_seen.get(label).cloned())?;
    let index: HashMap<&str, u32> = names
        .iter()
        .zip(to_model)
        .map(|(name, class)| (name.as_str(), class))
        .collect();
    let labels = texts.iter().map(|t| index[t.label.as_str()]).collect();
    let ids = texts
        .par_iter()
        .map(|t| saved.encode_ids(&t.text))
        .collect();
    Ok(LabelledIds {
        what: path.display().to_string(),
        ids,
        labels,
    })
}

/// The model's class id of each of `names` (the data's classes); names the model does not
/// know are refused, all of them named (with `location(name)` where one is known).
fn class_map(
    saved: &SavedModel,
    names: &[String],
    location: impl Fn(&str) -> Option<String>,
) -> Result<Vec<u32>, XtaskError> {
    let model = saved.classes();
    let unknown: Vec<String> = names
        .iter()
        .filter(|n| !model.contains(n))
        .map(|n| match location(n) {
            Some(at) => format!("{n:?} (first at {at})"),
            None => format!("{n:?}"),
        })
        .collect();
    if !unknown.is_empty() {
        return Err(XtaskError::Usage(format!(
            "the data has labels the model does not know: {}; the model's classes are {}. \
             Evaluate on data labelled with those classes",
            unknown.join(", "),
            model
                .iter()
                .map(|c| format!("{c:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(names
        .iter()
        .map(|n| model.iter().position(|c| c == n).unwrap_or_default() as u32)
        .collect())
}
