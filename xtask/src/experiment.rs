//! `cargo xtask experiment CONFIG`: every run of an experiment, then its comparison page.
//!
//! Each run writes into `OUT/<experiment>/<run>/`: `config.toml` (resolved), the saved model
//! (`model.bpk`, `model.json`, `vocab.json`), `history.csv` / `history.json`,
//! `predictions.csv`, `classification_report.txt`, the figures, `examples.json`, `report.html`
//! and, last, `metrics.json`. A run whose `metrics.json` exists with the same `config.toml` is
//! skipped; an interrupted one resumes from its checkpoint (`checkpoint/`, removed once the run
//! is finished unless `keep_checkpoints = true` or `--keep-checkpoints`). One command at a time
//! writes into an experiment's folder (a lock, `.lock`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use imdb_data::{
    DataConfig, EncodedSet, SourceKind, TokenizedCorpus, TokenizedReview, prepare, write_atomic,
};
use imdb_model::{InferencePrecision, SentimentClassifier};
use imdb_report::{
    ExplainedRow, RunMetrics, RunReport, RunSummary, TestOutcome, read_metrics_json,
    rows_to_explain, write_metrics_json,
};
use imdb_train::explain::{RowLayout, occlude_towards};
use imdb_train::{
    ConsoleProgress, EpochRecord, FitSpec, History, SavedModel, TokenWeight, TrainObserver,
    evaluate_at,
};

use crate::cli::ExperimentArgs;
use crate::config::{Experiment, Run, RunConfig, check_against_corpus, load_experiment};
use crate::error::XtaskError;

/// Console progress that also stops when Ctrl-C was pressed.
struct Interruptible {
    inner: ConsoleProgress,
    stop: Arc<AtomicBool>,
}

impl TrainObserver for Interruptible {
    fn epoch_start(&mut self, epoch: usize, epochs: usize, batches: usize) {
        self.inner.epoch_start(epoch, epochs, batches);
    }
    fn batch_end(&mut self, batch: usize, loss: f64, accuracy: f64) {
        self.inner.batch_end(batch, loss, accuracy);
    }
    fn epoch_end(&mut self, record: &EpochRecord, improved: bool) {
        self.inner.epoch_end(record, improved);
    }
    fn message(&mut self, text: &str) {
        self.inner.message(text);
    }
    fn should_stop(&mut self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl Fn(std::io::Error) -> XtaskError + 'a {
    move |e| XtaskError::io(action, path, e)
}

/// Runs the experiment.
pub fn run(args: &ExperimentArgs, stop: Arc<AtomicBool>) -> Result<(), XtaskError> {
    let experiment = load_experiment(&args.config)?;
    for name in &args.only {
        if !experiment.runs.iter().any(|r| &r.name == name) {
            let names: Vec<&str> = experiment.runs.iter().map(|r| r.name.as_str()).collect();
            return Err(XtaskError::Usage(format!(
                "--only {name}: {} has no such run; its runs are: {}",
                experiment.path.display(),
                names.join(", ")
            )));
        }
    }
    if !args.seeds.is_empty() {
        crate::config::check_seeds(&args.seeds)
            .map_err(|problem| XtaskError::Usage(format!("--seeds: {problem}")))?;
    }
    // Each selected run, once per seed: (run, its folder, its label on the console).
    let mut selected: Vec<(Run, std::path::PathBuf, String)> = Vec::new();
    let out = args.out.join(&experiment.name);
    for run in &experiment.runs {
        if !(args.only.is_empty() || args.only.contains(&run.name)) {
            continue;
        }
        let mut config = run.config.clone();
        if !args.seeds.is_empty() {
            config.seeds = args.seeds.clone();
        }
        let (configs, per_seed_folders) = config.per_seed();
        for config in configs {
            let (dir, label) = if per_seed_folders {
                let folder = imdb_report::seed_folder(config.seed);
                (
                    out.join(&run.name).join(&folder),
                    format!("{}/{folder}", run.name),
                )
            } else {
                (out.join(&run.name), run.name.clone())
            };
            let run = Run {
                name: run.name.clone(),
                config,
            };
            selected.push((run, dir, label));
        }
    }
    let precision = crate::precision::from_env()?;
    // IMDB's unlabelled reviews are loaded once for every IMDB run if one needs them; they
    // change nothing for the others (the vocabulary comes from the training reviews).
    let needs_unsup = selected.iter().any(|(r, _, _)| {
        r.config.data.source == SourceKind::Imdb
            && r.config
                .embeddings
                .as_ref()
                .is_some_and(|e| e.source == crate::embeddings::SKIPGRAM)
    });
    // Every run's data is loaded and checked before the first one trains.
    let mut corpora: HashMap<String, TokenizedCorpus> = HashMap::new();
    for (run, _, _) in &selected {
        let key = data_key(&run.config);
        if !corpora.contains_key(&key) {
            let corpus = crate::data::load_data(&run.config.data, run.config.seed, needs_unsup)?;
            corpora.insert(key.clone(), corpus);
        }
        check_against_corpus(&experiment, run, corpora[&key].train.len())?;
    }

    std::fs::create_dir_all(&out).map_err(io("cannot create", &out))?;
    // Held until every run and the summary are written.
    let _lock = crate::lock::OutputLock::acquire(&out)?;
    let config_text =
        std::fs::read(&experiment.path).map_err(io("cannot read", &experiment.path))?;
    write_atomic(&out.join("experiment.toml"), &config_text)?;

    let started = Instant::now();
    for (run, dir, label) in &selected {
        let corpus = &corpora[&data_key(&run.config)];
        let context = RunContext {
            experiment: &experiment,
            args,
            dir,
            label,
            precision,
        };
        run_one(&context, run, corpus, stop.clone())?;
    }
    let page = write_summary(&experiment, args, &out)?;
    eprintln!(
        "experiment {} done in {:.0} s: {}",
        experiment.name,
        started.elapsed().as_secs_f64(),
        page.display()
    );
    Ok(())
}

/// The resolved config of `run` with the command line's overrides, as TOML.
fn resolved_toml(
    run: &Run,
    args: &ExperimentArgs,
) -> Result<(crate::config::RunConfig, String), XtaskError> {
    let mut config = run.config.clone();
    if let Some(backend) = args.backend {
        config.backend = backend;
    }
    let text = toml::to_string_pretty(&config).map_err(|e| XtaskError::Config {
        path: args.config.clone(),
        message: format!("run {:?}: cannot write its resolved config: {e}", run.name),
    })?;
    Ok((config, text))
}

/// What identifies a run's data: the same key, the same corpus (the seed matters only when it
/// draws a held-out test share).
fn data_key(config: &RunConfig) -> String {
    let d = &config.data;
    let seed = d.test_fraction.map(|_| config.seed);
    serde_json::json!([
        d.source,
        d.train,
        d.test,
        d.test_fraction,
        d.text_field,
        d.label_field,
        d.delimiter,
        d.classes,
        d.rating_bands,
        d.tokenizer(),
        seed,
    ])
    .to_string()
}

/// Where one run (one seed of it) goes and what it shares with the others.
struct RunContext<'a> {
    experiment: &'a Experiment,
    args: &'a ExperimentArgs,
    /// The run's folder (its seed's, for a run with several).
    dir: &'a Path,
    /// The run's name on the console and in its report (with its seed folder if any).
    label: &'a str,
    precision: InferencePrecision,
}

fn run_one(
    context: &RunContext<'_>,
    run: &Run,
    corpus: &TokenizedCorpus,
    stop: Arc<AtomicBool>,
) -> Result<(), XtaskError> {
    let RunContext {
        experiment,
        args,
        dir,
        label,
        precision,
    } = *context;
    let (config, toml_text) = resolved_toml(run, args)?;
    let config_path = dir.join("config.toml");
    let metrics_path = dir.join("metrics.json");
    let previous = std::fs::read_to_string(&config_path).ok();
    let checkpoint = dir.join("checkpoint");
    let keep_checkpoints = experiment.keep_checkpoints || args.keep_checkpoints;
    if previous.as_deref() == Some(toml_text.as_str()) && read_metrics_json(&metrics_path).is_some()
    {
        eprintln!("[{label}] already finished: {}", dir.display());
        // A run killed between its last result and this cleanup.
        if !keep_checkpoints {
            remove_checkpoints(&checkpoint)?;
        }
        return Ok(());
    }
    if previous.is_some() && previous.as_deref() != Some(toml_text.as_str()) {
        eprintln!("[{label}] its configuration changed: starting it again");
        remove_checkpoints(&checkpoint)?;
        if metrics_path.exists() {
            std::fs::remove_file(&metrics_path).map_err(io("cannot remove", &metrics_path))?;
        }
    }
    std::fs::create_dir_all(dir).map_err(io("cannot create", dir))?;
    write_atomic(&config_path, toml_text.as_bytes())?;

    let device = config.backend.device()?;
    let data = prepare(corpus, &config.data, config.seed)?;
    let embeddings = crate::embeddings::initial_embeddings(&config, corpus, dir)?;
    let spec = FitSpec {
        train_set: &data.train,
        val_set: &data.val,
        num_classes: data.classes.len(),
        num_words: config.data.num_words,
        model: &config.model,
        train: &config.train,
        seed: config.seed,
    };
    let mut observer = Interruptible {
        inner: ConsoleProgress::new(label.to_string()),
        stop,
    };
    let outcome = imdb_train::fit_with(
        spec,
        &device,
        Some(&checkpoint),
        &mut observer,
        embeddings.as_ref(),
    )?;

    let started = Instant::now();
    let test = evaluate_at(
        &outcome.model,
        &data.test,
        (config.train.eval_batch_size, config.train.bucketing),
        precision,
        &device,
    )?;
    let predict_seconds = started.elapsed().as_secs_f64();

    let saved = SavedModel::new(
        outcome.model.clone(),
        config.data.preprocessing(),
        &corpus.vocab,
        &data.classes,
    )?;
    saved.save(dir)?;
    let history_json = serde_json::to_string_pretty(&outcome.history)
        .map_err(|e| XtaskError::io("cannot encode", dir.join("history.json"), e))?;
    write_atomic(&dir.join("history.json"), history_json.as_bytes())?;

    let metrics = run_metrics(
        &run.name,
        config.backend.name(),
        &outcome.model,
        &outcome.history,
        &test.metrics,
        predict_seconds,
    );
    let reviews: Vec<&TokenizedReview> =
        data.test.source.iter().map(|&i| &corpus.test[i]).collect();
    let test_outcome = TestOutcome {
        reviews: &reviews,
        probabilities: &test.probabilities,
        labels: &test.labels,
        classes: &data.classes,
        vocab: &corpus.vocab,
        num_words: config.data.num_words,
    };
    let explained = explain_rows(
        &outcome.model,
        &data.test,
        (&test_outcome, config.seed),
        precision,
        &config.data,
    )?;
    let report = RunReport {
        run: label,
        experiment: &experiment.name,
        config_toml: &toml_text,
        summary: &outcome.model.summary(config.data.maxlen),
        corpus: &corpus.stats(),
        train_lengths: &corpus.train_lengths(),
        maxlen: config.data.maxlen,
        history: &outcome.history,
        test: test_outcome,
        metrics: &metrics,
        seed: config.seed,
        explained: &explained,
    };
    let page = imdb_report::write_run_report(dir, &report)?;
    // Last: its presence marks the run as finished.
    write_metrics_json(&metrics_path, &metrics)?;
    if !keep_checkpoints {
        remove_checkpoints(&checkpoint)?;
    }
    eprintln!(
        "[{label}] test accuracy {:.4}, AUC {:.4}, loss {:.4}; {} epochs ({:.1} s each); {}",
        metrics.test_accuracy,
        metrics.test_auc,
        metrics.test_loss,
        metrics.epochs_run,
        metrics.seconds_per_epoch,
        page.display()
    );
    Ok(())
}

/// The test rows the report explains (see [`rows_to_explain`]), word by word towards the
/// verdicts the evaluation gave, each id decoded as the model read it.
fn explain_rows(
    model: &SentimentClassifier,
    set: &EncodedSet,
    (test, seed): (&TestOutcome<'_>, u64),
    precision: InferencePrecision,
    data: &DataConfig,
) -> Result<Vec<ExplainedRow>, XtaskError> {
    let rows = rows_to_explain(test, seed);
    let sequences: Vec<&[u32]> = rows.iter().map(|&i| set.sequences.real(i)).collect();
    let verdicts: Vec<u32> = rows
        .iter()
        .map(|&i| test.probabilities.predicted(i))
        .collect();
    let layout = RowLayout {
        padding: data.padding,
        fixed_steps: (!model.config.mask_padding).then_some(data.maxlen),
    };
    let predictor = model.predictor().with_precision(precision);
    let occluded = occlude_towards(
        &predictor,
        model.outputs(),
        (&sequences, Some(&verdicts)),
        layout,
        &model.embedding.device(),
    )?;
    Ok(rows
        .iter()
        .zip(sequences)
        .zip(occluded)
        .map(|((&index, ids), occlusion)| ExplainedRow {
            index,
            tokens: ids
                .iter()
                .zip(occlusion.weights)
                .map(|(&id, weight)| TokenWeight {
                    token: test.vocab.id_to_word(id).to_string(),
                    weight,
                })
                .collect(),
        })
        .collect())
}

/// Removes a run's checkpoint folder, if it has one.
fn remove_checkpoints(checkpoint: &Path) -> Result<(), XtaskError> {
    if checkpoint.exists() {
        std::fs::remove_dir_all(checkpoint).map_err(io("cannot remove", checkpoint))?;
    }
    Ok(())
}

/// The headline numbers of a finished run.
pub fn run_metrics(
    run: &str,
    backend: &str,
    model: &SentimentClassifier,
    history: &History,
    test: &imdb_train::Metrics,
    predict_seconds: f64,
) -> RunMetrics {
    use burn::module::Module;
    RunMetrics {
        run: run.to_string(),
        backend: backend.to_string(),
        params: model.num_params(),
        epochs_run: history.epochs_run(),
        best_epoch: history.best_epoch,
        train_seconds: history.train_seconds(),
        seconds_per_epoch: history.seconds_per_epoch(),
        predict_seconds,
        test_loss: test.loss,
        test_accuracy: test.accuracy,
        test_precision: test.precision,
        test_recall: test.recall,
        test_f1: test.f1,
        test_auc: test.auc,
    }
}

/// `summary.csv`, comparison figures and `index.html` over every finished run of the
/// experiment (a run with several seeds once all of them are finished).
fn write_summary(
    experiment: &Experiment,
    args: &ExperimentArgs,
    out: &Path,
) -> Result<std::path::PathBuf, XtaskError> {
    let mut finished = Vec::new();
    for run in &experiment.runs {
        let mut config = run.config.clone();
        // `--seeds` applies to the runs it trained; the others are read as configured.
        if !args.seeds.is_empty() && (args.only.is_empty() || args.only.contains(&run.name)) {
            config.seeds = args.seeds.clone();
        }
        let (configs, per_seed_folders) = config.per_seed();
        let mut seeds = Vec::new();
        let mut first_history = None;
        for config in &configs {
            let dir = if per_seed_folders {
                out.join(&run.name)
                    .join(imdb_report::seed_folder(config.seed))
            } else {
                out.join(&run.name)
            };
            let (Some(metrics), Ok(history)) = (
                read_metrics_json(&dir.join("metrics.json")),
                std::fs::read_to_string(dir.join("history.json")),
            ) else {
                break;
            };
            if first_history.is_none() {
                let history: History = serde_json::from_str(&history)
                    .map_err(|e| XtaskError::io("cannot read", dir.join("history.json"), e))?;
                first_history = Some(history);
            }
            seeds.push((config.seed, metrics));
        }
        if seeds.len() < configs.len() {
            continue;
        }
        if let Some(history) = first_history {
            let summary = RunSummary {
                run: run.name.clone(),
                seeds,
                per_seed_folders,
            };
            finished.push((summary, history));
        }
    }
    Ok(imdb_report::write_experiment_report(
        out,
        &experiment.name,
        &experiment.description,
        &finished,
    )?)
}
