//! `cargo xtask long-range`: the notebook's first lesson. RNN, GRU and LSTM on the latch task
//! (accuracy by distance, the gradient reaching each step back, before and after training),
//! then trained review classifiers of each cell reading neutral words after every test
//! review; one page, `index.html`, with the figures and a reading.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::table::write_csv;
use burn::tensor::Device;
use imdb_data::filler::neutral_words;
use imdb_model::Architecture;
use imdb_report::long_range::{
    FillerProbe, LongRangePage, ProbedModel, cell_name, write_long_range_page,
};
use imdb_report::read_metrics_json;
use imdb_train::long_range::{
    GradientCurve, LatchTask, LongRangeResult, initial_task_model, input_gradient_norms,
    run_long_range,
};
use imdb_train::probe::filler_probe;
use imdb_train::{SavedModel, TrainError, TrainObserver};

use crate::cli::{ExperimentArgs, LongRangeArgs};
use crate::config::load_experiment;
use crate::error::XtaskError;

/// The cells compared, in drawing order.
const CELLS: [Architecture; 3] = [Architecture::Rnn, Architecture::Gru, Architecture::Lstm];

/// Neutral filler words drawn from: the most class-balanced words among those in at least
/// this share of every class's training texts.
const NEUTRAL_WORDS: usize = 100;
const NEUTRAL_MIN_SHARE: f64 = 0.02;

/// Runs the command.
pub fn run(args: &LongRangeArgs, stop: Arc<AtomicBool>) -> Result<(), XtaskError> {
    if args.distances.is_empty() || args.examples < 8 || args.epochs == 0 {
        return Err(XtaskError::Usage(
            "give at least one --distances value, --examples of at least 8 and --epochs of at \
             least 1"
                .into(),
        ));
    }
    if !args.no_probe && (args.probe_runs.is_empty() || args.fillers.is_empty()) {
        return Err(XtaskError::Usage(
            "the probe needs --probe-runs and --fillers (or --no-probe)".into(),
        ));
    }
    if !args.distances.contains(&args.gradient_distance) {
        return Err(XtaskError::Usage(format!(
            "--gradient-distance {} is not one of --distances: the gradient is measured on a \
             model trained at that distance",
            args.gradient_distance
        )));
    }
    let device = args.backend.device()?;
    // The probe's inputs are checked before the long synthetic part.
    let probe_experiment = if args.no_probe {
        None
    } else {
        Some(load_experiment(&args.probe_config)?)
    };
    if let Some(experiment) = &probe_experiment {
        for name in &args.probe_runs {
            if !experiment.runs.iter().any(|r| &r.name == name) {
                return Err(XtaskError::Usage(format!(
                    "--probe-runs {name}: {} has no such run",
                    args.probe_config.display()
                )));
            }
        }
    }
    std::fs::create_dir_all(&args.out)
        .map_err(|e| XtaskError::io("cannot create", &args.out, e))?;
    let started = Instant::now();

    // The probe first: its data (the corpus, trained runs) is what can be missing, and it is
    // better refused before minutes of latch task than after.
    let probe = match &probe_experiment {
        Some(experiment) => Some(run_probe(args, &experiment.name, stop.clone())?),
        None => None,
    };
    let probe_seconds = started.elapsed().as_secs_f64();
    let (results, gradients) = latch_task(args, &stop, &device)?;
    let synthetic_seconds = started.elapsed().as_secs_f64() - probe_seconds;

    write_latch_csvs(&args.out, &results, &gradients)?;
    write_probe_csv(&args.out, probe.as_ref())?;
    let far = *args.distances.iter().max().unwrap_or(&200);
    let page = write_long_range_page(
        &args.out,
        &LongRangePage {
            results: &results,
            gradients: &gradients,
            task: task_at(args, far),
            examples: args.examples,
            epochs: args.epochs,
            seed: args.seed,
            synthetic_seconds,
            probe: probe.as_ref(),
        },
    )?;
    eprintln!(
        "long-range done in {:.0} s (latch task {synthetic_seconds:.0} s, probe \
         {probe_seconds:.0} s): {}",
        started.elapsed().as_secs_f64(),
        page.display()
    );
    Ok(())
}

/// The latch task of the command line at `distance`.
fn task_at(args: &LongRangeArgs, distance: usize) -> LatchTask {
    LatchTask {
        distance,
        lag: args.lag.into(),
        gate_bias: args.gate_bias.into(),
    }
}

/// Every cell at every distance, and the gradient by step back before and after training at
/// `--gradient-distance`.
fn latch_task(
    args: &LongRangeArgs,
    stop: &AtomicBool,
    device: &Device,
) -> Result<(Vec<LongRangeResult>, Vec<GradientCurve>), XtaskError> {
    let measured = args.gradient_distance;
    let mut results: Vec<LongRangeResult> = Vec::new();
    let mut gradients: Vec<GradientCurve> = Vec::new();
    for architecture in CELLS {
        let name = cell_name(architecture);
        for &distance in &args.distances {
            let task = task_at(args, distance);
            let run_started = Instant::now();
            let (result, model) = run_long_range(
                architecture,
                &task,
                (args.examples, args.epochs),
                args.seed,
                device,
                &mut StopOnCtrlC(stop),
            )
            .map_err(|e| match e {
                TrainError::Interrupted { .. } => XtaskError::Interrupted(
                    "the latch task stopped before its last run; its results were not written"
                        .into(),
                ),
                e => e.into(),
            })?;
            println!(
                "{name:>5} distance {distance:>4}: test accuracy {:.3} ({:.1} s)",
                result.accuracy,
                run_started.elapsed().as_secs_f64()
            );
            results.push(result);
            if distance == measured {
                let fresh = initial_task_model(architecture, &task, args.seed, device)?;
                for (trained, model) in [(false, &fresh), (true, &model)] {
                    let norms = input_gradient_norms(model, &task, args.seed + 7, device)?;
                    gradients.push(GradientCurve {
                        architecture,
                        trained,
                        distance: measured,
                        norms,
                    });
                }
            }
        }
    }
    for curve in &gradients {
        let at = |k: usize| curve.relative(k).map_or("-".into(), |r| format!("{r:.1e}"));
        println!(
            "{:>5} {:>7}: gradient 10 / 50 / {measured} steps back, relative to the last \
             step's: {} / {} / {}",
            cell_name(curve.architecture),
            stage(curve),
            at(10),
            at(50),
            at(measured)
        );
    }
    Ok((results, gradients))
}

fn stage(curve: &GradientCurve) -> &'static str {
    if curve.trained { "trained" } else { "initial" }
}

/// `long_range.csv` (its columns kept from the first version) and `gradient_norms.csv`.
fn write_latch_csvs(
    out: &Path,
    results: &[LongRangeResult],
    gradients: &[GradientCurve],
) -> Result<(), XtaskError> {
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|r| {
            vec![
                cell_name(r.architecture).to_string(),
                r.distance.to_string(),
                format!("{:.4}", r.accuracy),
            ]
        })
        .collect();
    write_csv(
        &out.join("long_range.csv"),
        &["architecture", "distance", "test_accuracy"],
        &rows,
    )?;
    let rows: Vec<Vec<String>> = gradients
        .iter()
        .flat_map(|curve| {
            curve.norms.iter().enumerate().map(move |(k, n)| {
                vec![
                    cell_name(curve.architecture).to_string(),
                    stage(curve).to_string(),
                    k.to_string(),
                    format!("{n:.6e}"),
                ]
            })
        })
        .collect();
    write_csv(
        &out.join("gradient_norms.csv"),
        &["architecture", "model", "steps_back", "gradient_norm"],
        &rows,
    )
}

/// `filler_probe.csv`; without a probe, the files of an earlier one are removed, so that the
/// folder holds what its page shows.
fn write_probe_csv(out: &Path, probe: Option<&FillerProbe>) -> Result<(), XtaskError> {
    let Some(probe) = probe else {
        for file in ["filler_probe.csv", "filler_probe.png", "filler_probe.svg"] {
            let path = out.join(file);
            if path.exists() {
                std::fs::remove_file(&path)
                    .map_err(|e| XtaskError::io("cannot remove", &path, e))?;
            }
        }
        return Ok(());
    };
    let rows: Vec<Vec<String>> = probe
        .models
        .iter()
        .flat_map(|model| {
            model.rows.iter().map(move |row| {
                vec![
                    row.model.clone(),
                    cell_name(model.architecture).to_string(),
                    row.fillers.to_string(),
                    format!("{:.4}", row.accuracy),
                    format!("{:.4}", row.kept),
                ]
            })
        })
        .collect();
    write_csv(
        &out.join("filler_probe.csv"),
        &[
            "model",
            "architecture",
            "fillers",
            "test_accuracy",
            "verdicts_kept",
        ],
        &rows,
    )
}

/// Silent training that stops at the next batch once Ctrl-C was pressed.
struct StopOnCtrlC<'a>(&'a AtomicBool);

impl TrainObserver for StopOnCtrlC<'_> {
    fn should_stop(&mut self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The filler probe: each probed run's saved model on its test set with neutral words
/// appended, after training the runs that are not finished.
fn run_probe(
    args: &LongRangeArgs,
    experiment: &str,
    stop: Arc<AtomicBool>,
) -> Result<FillerProbe, XtaskError> {
    let dirs: Vec<PathBuf> = args
        .probe_runs
        .iter()
        .map(|run| args.runs_dir.join(experiment).join(run))
        .collect();
    let missing: Vec<String> = args
        .probe_runs
        .iter()
        .zip(&dirs)
        .filter(|(_, dir)| read_metrics_json(&dir.join("metrics.json")).is_none())
        .map(|(run, _)| run.clone())
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "probe: training {} of {} first (as `cargo xtask experiment {} --only ...`)",
            missing.join(", "),
            args.probe_config.display(),
            args.probe_config.display()
        );
        let experiment_args = ExperimentArgs {
            config: args.probe_config.clone(),
            out: args.runs_dir.clone(),
            only: missing,
            backend: Some(args.backend),
            keep_checkpoints: false,
            seeds: Vec::new(),
            shard: None,
        };
        crate::experiment::run(&experiment_args, stop)?;
    }
    let precision = crate::precision::from_env()?;
    let device = args.backend.device()?;
    let mut probe = FillerProbe::default();
    for (run, dir) in args.probe_runs.iter().zip(&dirs) {
        let saved = SavedModel::load(dir, &device)?;
        let (_, corpus, data) = crate::data::trained_data(dir, &saved)?;
        let words = neutral_words(
            &data.train,
            data.classes.len(),
            NEUTRAL_WORDS,
            NEUTRAL_MIN_SHARE,
        )?;
        let probe_started = Instant::now();
        let points = filler_probe(
            &saved.model,
            &data.test,
            (&words, &args.fillers, args.seed),
            (512, true),
            precision,
            &device,
        )?;
        let recorded = recorded_accuracy(dir);
        let plain = points.iter().find(|p| p.fillers == 0);
        for point in &points {
            println!(
                "probe {run:>6}: {:>4} fillers, test accuracy {:.4}, verdicts kept {:.4}",
                point.fillers, point.evaluation.metrics.accuracy, point.kept
            );
        }
        if let (Some(plain), Some(recorded)) = (plain, recorded) {
            let same = plain.evaluation.metrics.accuracy == recorded;
            println!(
                "probe {run:>6}: no filler gives {:.4}, the run's own test accuracy {recorded:.4}: {} \
                 ({:.1} s)",
                plain.evaluation.metrics.accuracy,
                if same { "identical" } else { "DIFFERENT" },
                probe_started.elapsed().as_secs_f64()
            );
        }
        probe.models.push(ProbedModel {
            run: run.clone(),
            architecture: saved.model.config.architecture,
            recorded_accuracy: recorded,
            rows: points.iter().map(|p| p.row(run)).collect(),
        });
        if probe.fillers.is_empty() {
            probe.fillers = words
                .iter()
                .map(|&w| corpus.vocab.id_to_word(w).to_string())
                .collect();
        }
    }
    Ok(probe)
}

/// The test accuracy a finished run recorded in its `metrics.json`.
fn recorded_accuracy(dir: &Path) -> Option<f64> {
    read_metrics_json(&dir.join("metrics.json")).map(|m| m.test_accuracy)
}
