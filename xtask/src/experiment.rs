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
    EncodedSet, SourceKind, TokenizedCorpus, TokenizedReview, Vocabulary, kept_range, write_atomic,
};
use imdb_model::{InferencePrecision, SentimentClassifier};
use imdb_report::{
    ExplainedRow, RunMetrics, RunReport, RunSummary, TestOutcome, read_metrics_json,
    rows_to_explain, write_metrics_json,
};
use imdb_train::explain::{RowLayout, StackedSequence, occlude_stacked, occlude_towards};
use imdb_train::{
    ConsoleProgress, EpochRecord, History, SavedModel, Start, TokenWeight, TrainObserver,
};

use crate::cli::ExperimentArgs;
use crate::config::{Experiment, Run, RunConfig, check_against_corpus, load_experiment};
use crate::error::XtaskError;
use crate::lock::{Holding, OutputLock};
use crate::ngram_cache::NgramCache;

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
        if is_selected(run, args) {
            selected.extend(seed_runs(run, args, &out).0);
        }
    }
    if let Some(shard) = args.shard {
        let units = selected.len();
        selected = selected
            .into_iter()
            .enumerate()
            .filter(|(k, _)| k % shard.count == shard.index)
            .map(|(_, unit)| unit)
            .collect();
        eprintln!(
            "shard {}/{}: {} of the grid's {units} (run, seed) units",
            shard.index,
            shard.count,
            selected.len()
        );
    }
    let precision = crate::precision::from_env()?;
    // IMDB's unlabelled reviews are loaded once for every IMDB run if one needs them; they
    // change nothing for the others (the vocabulary comes from the training reviews).
    let needs_unsup = selected.iter().any(|(r, _, _)| {
        r.config.data.source == SourceKind::Imdb
            && (r.config.pretrain.is_some()
                || r.config
                    .embeddings
                    .as_ref()
                    .is_some_and(|e| e.source == crate::embeddings::SKIPGRAM))
    });
    // Every run's data is loaded and checked before the first one trains or anything is
    // written or deleted.
    let loading = Instant::now();
    let mut corpora: HashMap<String, TokenizedCorpus> = HashMap::new();
    for (run, _, _) in &selected {
        let key = data_key(&run.config);
        if !corpora.contains_key(&key) {
            let corpus = crate::data::load_data(&run.config.data, run.config.seed, needs_unsup)?;
            corpora.insert(key.clone(), corpus);
        }
        check_against_corpus(&experiment, run, &corpora[&key])?;
    }

    std::fs::create_dir_all(&out).map_err(io("cannot create", &out))?;
    // Held until every run and the summary are written: alone, or shared by the shards of
    // one grid (each run folder then has its own lock).
    let holding = match args.shard {
        Some(_) => Holding::Shared,
        None => Holding::Exclusive,
    };
    let _lock = OutputLock::acquire_as(&out, holding, "experiment command")?;
    if holding == Holding::Exclusive {
        // Nobody else writes here: a temporary file is what a killed command left behind.
        sweep(&out, true)?;
    }
    let config_text =
        std::fs::read(&experiment.path).map_err(io("cannot read", &experiment.path))?;
    write_atomic(&out.join("experiment.toml"), &config_text)?;

    let loading_seconds = loading.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut timings = Vec::new();
    let mut ngrams = NgramCache::new(selected.iter().map(|(run, _, _)| &run.config));
    for (run, dir, label) in &selected {
        std::fs::create_dir_all(dir).map_err(io("cannot create", dir))?;
        let _run_lock =
            OutputLock::acquire_as(dir, Holding::Exclusive, "command training this run")?;
        sweep(dir, true)?;
        let corpus = &corpora[&data_key(&run.config)];
        let context = RunContext {
            experiment: &experiment,
            args,
            dir,
            label,
            precision,
        };
        let times = run_one(&context, run, corpus, &mut ngrams, stop.clone())?;
        ngrams.release(&run.config);
        if let Some(times) = times {
            timings.push((label.clone(), times));
        }
    }
    let page = summarize_locked(&experiment, args, &out)?;
    let seconds = started.elapsed().as_secs_f64();
    if !timings.is_empty() {
        let name = match args.shard {
            Some(s) => format!("timings-shard-{}-of-{}.csv", s.index, s.count),
            None => "timings.csv".to_string(),
        };
        write_timings(&out.join(name), loading_seconds, &timings)?;
    }
    eprintln!(
        "experiment {} done in {:.0} s (and {loading_seconds:.0} s loading data): {}",
        experiment.name,
        seconds,
        page.display()
    );
    Ok(())
}

/// Where one run's time went, in seconds.
#[derive(Debug, Clone, Copy)]
struct RunTimes {
    /// Preparing its data and its start: skip-gram vectors or a language model, trained or
    /// read from the cache.
    start: f64,
    /// Training the classifier.
    training: f64,
    /// Fitting and stacking an n-gram model (`ngram_stack`; 0 without).
    stacking: f64,
    /// Evaluating on the test set, explaining, writing the report.
    report: f64,
}

/// Removes the temporary files a killed command left in `dir` (a folder this command holds
/// the lock of), and says so.
fn sweep(dir: &Path, recursive: bool) -> Result<(), XtaskError> {
    let swept = imdb_data::sweep_temporaries(dir, std::time::Duration::ZERO, recursive)?;
    if swept > 0 {
        eprintln!(
            "removed {swept} temporary file(s) an interrupted command left in {}",
            dir.display()
        );
    }
    Ok(())
}

/// [`write_summary`] under the experiment's summary lock (shards end at any time), the
/// experiment folder's abandoned temporary files swept first.
fn summarize_locked(
    experiment: &Experiment,
    args: &ExperimentArgs,
    out: &Path,
) -> Result<std::path::PathBuf, XtaskError> {
    let _summary = imdb_data::lock_exclusive(&out.join(".summary.lock"), || {
        eprintln!("waiting for another shard writing the summary")
    })?;
    // Other shards may be writing their own files here: only what is surely abandoned.
    imdb_data::sweep_temporaries(out, imdb_data::ABANDONED_AFTER, false)?;
    write_summary(experiment, args, out)
}

/// `cargo xtask summarize OUT/EXPERIMENT`: the summary of an experiment's finished runs, from
/// the `experiment.toml` its commands copied there.
pub fn summarize(args: &crate::cli::SummarizeArgs) -> Result<(), XtaskError> {
    let config = args.folder.join("experiment.toml");
    if !config.is_file() {
        return Err(XtaskError::Usage(format!(
            "{} has no experiment.toml: give the folder an experiment wrote (OUT/<experiment \
             name>)",
            args.folder.display()
        )));
    }
    let experiment = load_experiment(&config)?;
    let out = args
        .folder
        .parent()
        .map_or_else(|| Path::new(".").to_path_buf(), Path::to_path_buf);
    let experiment_args = ExperimentArgs {
        config,
        out,
        only: args.only.clone(),
        backend: None,
        keep_checkpoints: false,
        seeds: args.seeds.clone(),
        shard: None,
    };
    let page = summarize_locked(&experiment, &experiment_args, &args.folder)?;
    eprintln!("summary of {}: {}", experiment.name, page.display());
    Ok(())
}

/// Prints where the experiment's time went and writes it to `path`: the data loading, then
/// each run trained by this command.
fn write_timings(
    path: &Path,
    loading_seconds: f64,
    timings: &[(String, RunTimes)],
) -> Result<(), XtaskError> {
    let mut rows = vec![vec![
        "loading data".to_string(),
        format!("{loading_seconds:.1}"),
        "0".into(),
        "0".into(),
        "0".into(),
    ]];
    eprintln!("where the time went: loading data {loading_seconds:.0} s");
    for (label, t) in timings {
        rows.push([t.start, t.training, t.stacking, t.report].iter().fold(
            vec![label.clone()],
            |mut row, v| {
                row.push(format!("{v:.1}"));
                row
            },
        ));
        let stacking = if t.stacking > 0.0 {
            format!(", n-gram stack {:.0} s", t.stacking)
        } else {
            String::new()
        };
        eprintln!(
            "  {label}: start (data, vectors or language model) {:.0} s, training {:.0} s{stacking}, \
             test and report {:.0} s",
            t.start, t.training, t.report
        );
    }
    crate::table::write_csv(
        path,
        &[
            "step",
            "start_seconds",
            "training_seconds",
            "stacking_seconds",
            "report_seconds",
        ],
        &rows,
    )
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

/// Trains, evaluates and reports one run (one seed of it); its times, or `None` if it had
/// already finished.
fn run_one(
    context: &RunContext<'_>,
    run: &Run,
    corpus: &TokenizedCorpus,
    ngrams: &mut NgramCache,
    stop: Arc<AtomicBool>,
) -> Result<Option<RunTimes>, XtaskError> {
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
        return Ok(None);
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

    let started = Instant::now();
    let device = config.backend.device()?;
    let recipe = config.recipe(precision);
    let data = recipe.prepare(corpus)?;
    // The costly starts come from the caches beside the corpus (built when missing); the
    // rest is the library's recipe, step by step.
    let embeddings = crate::embeddings::initial_embeddings(&recipe, corpus, dir)?;
    let mut observer = Interruptible {
        inner: ConsoleProgress::new(label.to_string()),
        stop,
    };
    let pretrained = crate::pretrain::pretrained_start(
        &recipe,
        &device.clone().autodiff(),
        corpus,
        data.classes.len(),
        dir,
        &observer.stop,
    )?;
    let start = match &pretrained {
        Some((pretrained, _)) => Start::Pretrained(pretrained),
        None => Start::Fresh(embeddings.as_ref()),
    };
    let start_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let outcome = recipe.train_network(
        corpus,
        &data,
        start,
        &device,
        Some(&checkpoint),
        &mut observer,
    )?;
    let training_seconds = started.elapsed().as_secs_f64();

    let reporting = Instant::now();
    // A record left by an earlier configuration of this run would describe other verdicts.
    let stacking_json = dir.join("stacking.json");
    if stacking_json.exists() {
        std::fs::remove_file(&stacking_json).map_err(io("cannot remove", &stacking_json))?;
    }
    // The runs of one seed share their n-gram models (fitted by the first of them).
    let shared = ngrams.get_or_fit(&config, || recipe.fit_ngrams(corpus, &data))?;
    let mut finished = recipe.finish_with(
        corpus,
        &data,
        &outcome,
        &device,
        shared.as_ref().map(|shared| shared.fitted),
    )?;
    let (saved, test, predict_seconds) = (finished.saved, finished.test, finished.predict_seconds);
    let mut stacking_seconds = 0.0;
    if let (Some(record), Some(shared)) = (&mut finished.stack, &shared) {
        record.seconds += shared.fit_seconds();
    }
    let reused = shared.is_some_and(|shared| shared.fitted_earlier);
    if let Some(record) = &finished.stack {
        imdb_train::records::save_json(record, &stacking_json)?;
        let accuracy = record.test_accuracy;
        eprintln!(
            "[{label}] stacked with {} n-grams in {:.0} s{}: test accuracy network {:.4}, \
             n-grams {:.4}, stacked {:.4}",
            record.ngram_features,
            record.seconds,
            if reused {
                " (n-gram models fitted for an earlier run on the same sets)"
            } else {
                ""
            },
            accuracy.network,
            accuracy.ngram,
            accuracy.stacked
        );
        stacking_seconds = record.seconds;
    }
    let stack_record = finished.stack;
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
    let explained = explain_rows(&saved, &data.test, (&test_outcome, config.seed), precision)?;
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
        pretraining: pretrained.as_ref().map(|(_, epochs)| epochs.as_slice()),
        stacking: stack_record.as_ref(),
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
    Ok(Some(RunTimes {
        start: start_seconds,
        training: training_seconds,
        stacking: stacking_seconds,
        report: reporting.elapsed().as_secs_f64() - stacking_seconds,
    }))
}

/// The test rows the report explains (see [`rows_to_explain`]), word by word towards the
/// verdicts the evaluation gave, each id decoded as the model read it: the network's ids, or
/// every id of the review for a stacked model (its n-gram part reads them all).
fn explain_rows(
    saved: &SavedModel,
    set: &EncodedSet,
    (test, seed): (&TestOutcome<'_>, u64),
    precision: InferencePrecision,
) -> Result<Vec<ExplainedRow>, XtaskError> {
    let model = &saved.model;
    let pre = &saved.manifest.preprocessing;
    let rows = rows_to_explain(test, seed);
    let verdicts: Vec<u32> = rows
        .iter()
        .map(|&i| test.probabilities.predicted(i))
        .collect();
    let layout = RowLayout {
        padding: pre.padding,
        fixed_steps: (!model.config.mask_padding).then_some(pre.maxlen),
    };
    let predictor = model.predictor().with_precision(precision);
    let device = model.embedding.device();
    let (sequences, occluded): (Vec<Vec<u32>>, _) = match &saved.stack {
        Some(stack) => {
            let all: Vec<Vec<u32>> = rows
                .iter()
                .map(|&i| Vocabulary::encode_ranks(&test.reviews[i].ranks, pre.num_words))
                .collect();
            let stacked: Vec<StackedSequence<'_>> = all
                .iter()
                .map(|ids| StackedSequence {
                    all: ids,
                    kept: kept_range(ids.len(), pre.maxlen, pre.truncating),
                })
                .collect();
            let occluded = occlude_stacked(
                &predictor,
                stack,
                (&stacked, Some(&verdicts)),
                layout,
                &device,
            )?;
            (all, occluded)
        }
        None => {
            let kept: Vec<&[u32]> = rows.iter().map(|&i| set.sequences.real(i)).collect();
            let occluded = occlude_towards(
                &predictor,
                model.outputs(),
                (&kept, Some(&verdicts)),
                layout,
                &device,
            )?;
            (kept.into_iter().map(<[u32]>::to_vec).collect(), occluded)
        }
    };
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

/// True if `args` (`--only`) selects `run`.
fn is_selected(run: &Run, args: &ExperimentArgs) -> bool {
    args.only.is_empty() || args.only.contains(&run.name)
}

/// `run` once per seed — with `--seeds` if it is selected, else as configured — each with its
/// folder under `out` and its label on the console; and whether the seeds have folders of
/// their own. Training and the summary both read this, so the summary reads the folders
/// that were trained.
fn seed_runs(
    run: &Run,
    args: &ExperimentArgs,
    out: &Path,
) -> (Vec<(Run, std::path::PathBuf, String)>, bool) {
    let mut config = run.config.clone();
    if !args.seeds.is_empty() && is_selected(run, args) {
        config.seeds = args.seeds.clone();
    }
    let (configs, per_seed_folders) = config.per_seed();
    let runs = configs
        .into_iter()
        .map(|config| {
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
            (run, dir, label)
        })
        .collect();
    (runs, per_seed_folders)
}

/// What a finished run (one seed of it) in `dir` is chosen by: its stack's accuracy on
/// validation rows it was not fitted on (`stacking.json`), or the validation accuracy of the
/// weights it kept; NaN (never chosen) for a stack recorded without the held-out number.
fn validation_accuracy(dir: &Path, history: &History) -> Result<f64, XtaskError> {
    let stacking = dir.join("stacking.json");
    if stacking.is_file() {
        let text = std::fs::read_to_string(&stacking)
            .map_err(|e| XtaskError::io("cannot read", &stacking, e))?;
        let record: imdb_report::StackRecord =
            serde_json::from_str(&text).map_err(|e| XtaskError::io("cannot read", &stacking, e))?;
        return Ok(record.validation_held_out.unwrap_or(f64::NAN));
    }
    Ok(history.kept_validation_accuracy().unwrap_or(f64::NAN))
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
        let (seed_runs, per_seed_folders) = seed_runs(run, args, out);
        let (mut seeds, mut validation, mut histories) = (Vec::new(), Vec::new(), Vec::new());
        for (seed_run, dir, _) in &seed_runs {
            let Some(metrics) = read_metrics_json(&dir.join("metrics.json")) else {
                break;
            };
            let path = dir.join("history.json");
            let Ok(text) = std::fs::read_to_string(&path) else {
                break;
            };
            let history: History =
                serde_json::from_str(&text).map_err(|e| XtaskError::io("cannot read", &path, e))?;
            validation.push(validation_accuracy(dir, &history)?);
            histories.push(history);
            seeds.push((seed_run.config.seed, metrics));
        }
        if seeds.len() < seed_runs.len() || histories.is_empty() {
            continue;
        }
        let summary = RunSummary {
            run: run.name.clone(),
            seeds,
            validation,
            per_seed_folders,
        };
        finished.push((summary, histories.swap_remove(0)));
    }
    Ok(imdb_report::write_experiment_report(
        out,
        &experiment.name,
        &experiment.description,
        &finished,
    )?)
}
