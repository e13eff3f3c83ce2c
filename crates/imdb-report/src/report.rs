//! The whole report of a run, and the page of an experiment.

use std::path::{Path, PathBuf};

use imdb_data::{CorpusStats, write_atomic};
use imdb_model::ModelSummary;
use imdb_train::pretrain::PretrainEpoch;
use imdb_train::{Confusion, History, is_class, roc_auc, roc_curve};

use crate::error::ReportError;
use crate::examples::{Example, LENGTH_EDGES, LengthBucket, TestOutcome};
use crate::explained::{
    ExplainedRow, MistakeDriver, drivers_section, highlighted, mistake_drivers,
};
use crate::figures::{
    ChartSeries, ClassDistribution, ConfusionHeatmap, CurveMetric, LengthAccuracy, LengthHistogram,
    LineChart, Marker, RenderedFigure, RocFigure, RocSeries, RunComparison, TrainingCurve,
    ValidationOverlay, write_figure,
};
use crate::html::{Markup, figure_img, html, page, table, table_markup};
use crate::tables::{
    RunMetrics, RunSummary, SUMMARY_COLUMNS, chosen_on_validation, classification_report,
    summary_rows, write_classification_report, write_history_csv, write_predictions_csv,
    write_summary_csv,
};

/// Reviews in the seeded random sample (the notebook shows 5).
pub const SAMPLE_SIZE: usize = 5;
/// Mistakes shown in each direction.
pub const MISTAKES_SHOWN: usize = 5;

/// Everything a run's report shows.
#[derive(Debug, Clone, Copy)]
pub struct RunReport<'a> {
    /// The run's name.
    pub run: &'a str,
    /// The experiment it belongs to.
    pub experiment: &'a str,
    /// Its resolved configuration, as TOML.
    pub config_toml: &'a str,
    /// The model's layers and parameters.
    pub summary: &'a ModelSummary,
    /// Exploratory numbers of the corpus.
    pub corpus: &'a CorpusStats,
    /// Lengths of the training reviews, for the histogram.
    pub train_lengths: &'a [usize],
    /// Sequence length the run used.
    pub maxlen: usize,
    /// Per-epoch metrics.
    pub history: &'a History,
    /// Test predictions and the reviews behind them.
    pub test: TestOutcome<'a>,
    /// The run's headline numbers.
    pub metrics: &'a RunMetrics,
    /// Seed of the example sample.
    pub seed: u64,
    /// Test rows explained word by word (see [`crate::rows_to_explain`]): the examples and
    /// mistakes shown are highlighted, and the words that drive mistakes are listed. Empty:
    /// plain text.
    pub explained: &'a [ExplainedRow],
    /// The language-model pretraining the run started from, epoch by epoch, if any: shown as
    /// a table and a perplexity curve.
    pub pretraining: Option<&'a [PretrainEpoch]>,
    /// The n-gram stack the test verdicts came from, if any: shown as its own section.
    pub stacking: Option<&'a crate::StackRecord>,
}

/// The files a run's report consists of (besides `metrics.json`, which the caller writes last).
pub fn write_run_report(dir: &Path, report: &RunReport<'_>) -> Result<PathBuf, ReportError> {
    if !dir.is_dir() {
        return Err(ReportError::io(
            "cannot write the report into",
            dir,
            "the folder does not exist",
        ));
    }
    let test = &report.test;
    write_history_csv(&dir.join("history.csv"), report.history)?;
    write_predictions_csv(
        &dir.join("predictions.csv"),
        test.probabilities,
        test.labels,
        test.classes,
    )?;
    let confusion = Confusion::from_probabilities(test.probabilities, test.labels);
    write_classification_report(
        &dir.join("classification_report.txt"),
        &confusion,
        test.classes,
    )?;

    let figures = run_figures(dir, report, &confusion)?;
    let sample = test.random_sample(SAMPLE_SIZE, report.seed);
    let mistakes = test.confident_mistakes(MISTAKES_SHOWN);
    let buckets = test.accuracy_by_length(&LENGTH_EDGES);
    let length_figure = write_figure(
        &LengthAccuracy {
            buckets: buckets.clone(),
            maxlen: report.maxlen,
        },
        dir,
    )?;
    let by_class: serde_json::Map<String, serde_json::Value> = test
        .classes
        .iter()
        .cloned()
        .zip(mistakes.iter().map(|m| serde_json::json!(m)))
        .collect();
    let drivers = mistake_drivers(test, report.explained);
    let analysis = serde_json::json!({
        "random_sample": sample,
        "confident_mistakes_by_true_class": by_class,
        "accuracy_by_length": buckets,
        "words_driving_mistakes": drivers,
    });
    write_atomic(
        &dir.join("examples.json"),
        serde_json::to_string_pretty(&analysis)
            .map_err(|e| ReportError::io("cannot encode", dir.join("examples.json"), e))?
            .as_bytes(),
    )?;

    let pretraining = match report.pretraining {
        Some(epochs) => Some((epochs, write_figure(&perplexity_curve(epochs), dir)?)),
        None => None,
    };
    let html = run_page(
        report,
        &confusion,
        (&figures, &length_figure),
        (&sample, &mistakes, &drivers),
        &buckets,
        pretraining
            .as_ref()
            .map(|(epochs, figure)| (*epochs, figure)),
    );
    let path = dir.join("report.html");
    write_atomic(&path, html.as_bytes())?;
    Ok(path)
}

fn run_figures(
    dir: &Path,
    report: &RunReport<'_>,
    confusion: &Confusion,
) -> Result<Vec<(RenderedFigure, String)>, ReportError> {
    let test = &report.test;
    let mut figures = vec![
        (
            write_figure(
                &ClassDistribution {
                    train: report.corpus.train_classes.clone(),
                    test: report.corpus.test_classes.clone(),
                },
                dir,
            )?,
            "Class distribution of the training and test texts".to_string(),
        ),
        (
            write_figure(
                &LengthHistogram {
                    lengths: report.train_lengths.to_vec(),
                    maxlen: report.maxlen,
                    bins: 50,
                },
                dir,
            )?,
            format!("Text lengths with maxlen = {}", report.maxlen),
        ),
    ];
    for metric in [CurveMetric::Loss, CurveMetric::Accuracy, CurveMetric::Auc] {
        figures.push((
            write_figure(
                &TrainingCurve {
                    history: report.history.clone(),
                    metric,
                },
                dir,
            )?,
            format!("Training and validation {} per epoch", metric.name()),
        ));
    }
    figures.push((
        write_figure(
            &ConfusionHeatmap {
                confusion: confusion.clone(),
                classes: test.classes.to_vec(),
            },
            dir,
        )?,
        "Confusion matrix on the test set".to_string(),
    ));
    let curves = roc_series(test);
    let caption = match curves.as_slice() {
        [one] => format!("ROC curve on the test set (AUC {:.4})", one.auc),
        _ => format!(
            "ROC curves on the test set, each class against the rest (macro AUC {:.4})",
            report.metrics.test_auc
        ),
    };
    figures.push((write_figure(&RocFigure { curves }, dir)?, caption));
    Ok(figures)
}

/// The ROC curve of class 1 for two classes; of each class against the rest for more.
fn roc_series(test: &TestOutcome<'_>) -> Vec<RocSeries> {
    let n = test.probabilities.num_classes;
    let classes: Vec<usize> = if n == 2 { vec![1] } else { (0..n).collect() };
    classes
        .into_iter()
        .map(|k| {
            let scores = test.probabilities.column(k);
            let positive = is_class(test.labels, k as u32);
            RocSeries {
                label: test
                    .classes
                    .get(k)
                    .cloned()
                    .unwrap_or_else(|| k.to_string()),
                points: roc_curve(&scores, &positive),
                auc: roc_auc(&scores, &positive),
            }
        })
        .collect()
}

/// The examples as a table; an example with an explanation shows the words the model read,
/// coloured by weight, instead of its first words.
fn examples_table(examples: &[Example], explained: &[ExplainedRow]) -> Markup {
    let rows: Vec<Vec<Markup>> = examples
        .iter()
        .map(|e| {
            let text = match explained.iter().find(|r| r.index == e.index) {
                Some(row) => highlighted(&row.tokens),
                None => html! { (e.text) },
            };
            vec![
                html! { (e.index) },
                html! { (e.label) },
                html! { (e.predicted) },
                html! { (format!("{:.3}", e.probability)) },
                html! { (e.words) },
                html! { div.text { (text) } },
            ]
        })
        .collect();
    let text_column = if explained.is_empty() {
        "Text (first 120 words)"
    } else {
        "Text (explained: the words read, coloured by weight)"
    };
    table_markup(
        &[
            "Index",
            "True",
            "Predicted",
            "P(predicted)",
            "Words",
            text_column,
        ],
        &rows,
    )
}

/// Held-out perplexity after each pretraining epoch.
fn perplexity_curve(epochs: &[PretrainEpoch]) -> LineChart {
    let points = epochs
        .iter()
        .map(|e| (e.epoch as f64, e.held_out_perplexity))
        .collect();
    LineChart {
        stem: "pretrain_perplexity".into(),
        title: "Language model: held-out perplexity per epoch".into(),
        x_desc: "Pretraining epoch".into(),
        y_desc: "Perplexity (full softmax)".into(),
        series: vec![ChartSeries::solid(
            "held-out perplexity",
            points,
            0,
            Marker::Circle,
        )],
        log_x: false,
        log_y: false,
        reference: None,
    }
}

/// The pretraining section: a table of its epochs and the perplexity curve.
fn pretraining_section(epochs: &[PretrainEpoch], figure: &RenderedFigure) -> Markup {
    let rows: Vec<Vec<String>> = epochs
        .iter()
        .map(|e| {
            vec![
                e.epoch.to_string(),
                format!("{:.4}", e.train_loss),
                format!("{:.1}", e.held_out_perplexity),
                format!("{:.0}", e.seconds),
            ]
        })
        .collect();
    html! {
        h2 { "Language-model pretraining" }
        p {
            "The embedding and recurrent layers were first trained to predict each next word \
             (and a bidirectional model's backward half each previous word) of unlabelled and \
             training texts (no labels, no test texts); perplexity is measured on held-out \
             unlabelled texts with the full softmax, over every word predicted."
        }
        (table(
            &["Epoch", "sampled-softmax loss", "held-out perplexity", "seconds"],
            &rows,
        ))
        (figure_img(figure, "Held-out perplexity after each pretraining epoch"))
    }
}

fn run_page(
    report: &RunReport<'_>,
    confusion: &Confusion,
    (figures, length_figure): (&[(RenderedFigure, String)], &RenderedFigure),
    (sample, mistakes, drivers): (&[Example], &[Vec<Example>], &[MistakeDriver]),
    buckets: &[LengthBucket],
    pretraining: Option<(&[PretrainEpoch], &RenderedFigure)>,
) -> String {
    let m = report.metrics;
    let h = report.history;
    let headline = [
        ("Test accuracy", format!("{:.4}", m.test_accuracy)),
        ("Test ROC AUC", format!("{:.4}", m.test_auc)),
        ("Test loss", format!("{:.4}", m.test_loss)),
        ("Precision", format!("{:.4}", m.test_precision)),
        ("Recall", format!("{:.4}", m.test_recall)),
        ("F1", format!("{:.4}", m.test_f1)),
        (
            "Epochs (kept)",
            format!(
                "{} ({})",
                m.epochs_run,
                m.best_epoch.map_or("-".into(), |e| e.to_string())
            ),
        ),
        ("Seconds / epoch", format!("{:.1}", m.seconds_per_epoch)),
        ("Backend", m.backend.clone()),
    ];
    let c = report.corpus;
    let mut data_rows = vec![
        vec!["Training texts".into(), c.train_classes.describe()],
        vec!["Test texts".into(), c.test_classes.describe()],
        vec![
            "Vocabulary (ranked words)".into(),
            c.vocabulary_size.to_string(),
        ],
    ];
    if let Some(l) = &c.train_lengths {
        data_rows.push(vec![
            "Training lengths (words)".into(),
            format!(
                "mean {:.2}, median {:.0}, 90th {:.0}, 95th {:.0}, max {}",
                l.mean, l.p50, l.p90, l.p95, l.max
            ),
        ]);
    }
    let epoch_rows: Vec<Vec<String>> = h
        .epochs
        .iter()
        .map(|e| {
            vec![
                format!(
                    "{}{}",
                    e.epoch,
                    if h.best_epoch == Some(e.epoch) {
                        " (kept)"
                    } else {
                        ""
                    }
                ),
                format!("{:.4}", e.train.loss),
                format!("{:.4}", e.train.accuracy),
                format!("{:.4}", e.train.auc),
                format!("{:.4}", e.val.loss),
                format!("{:.4}", e.val.accuracy),
                format!("{:.4}", e.val.precision),
                format!("{:.4}", e.val.recall),
                format!("{:.4}", e.val.f1),
                format!("{:.4}", e.val.auc),
                format!("{:.1}", e.train_seconds),
            ]
        })
        .collect();
    let analysed = report
        .explained
        .iter()
        .filter(|r| report.test.probabilities.predicted(r.index) != report.test.labels[r.index])
        .count();
    let bucket_rows: Vec<Vec<String>> = buckets
        .iter()
        .map(|b| {
            vec![
                b.label(),
                b.count.to_string(),
                format!("{:.4}", b.accuracy),
                if b.low >= report.maxlen {
                    "yes".into()
                } else if b.high.is_some_and(|h| h <= report.maxlen) {
                    "no".into()
                } else {
                    "partly".into()
                },
            ]
        })
        .collect();
    let body = html! {
        h1 { (report.run) }
        p.lead {
            "Run of experiment " b { (report.experiment) } " — " (report.test.classes.len())
            " classes (" (report.test.classes.join(", ")) "), test set of "
            (report.test.labels.len()) " texts."
        }
        div {
            @for (name, value) in &headline {
                span.metric { (name) b { (value) } }
            }
        }
        h2 { "Configuration" }
        pre { (report.config_toml) }
        h2 { "Model" }
        pre { (report.summary.to_string()) }

        h2 { "Data (notebook §2)" }
        (table(&["", ""], &data_rows))
        @for (figure, caption) in &figures[..2] { (figure_img(figure, caption)) }

        @if let Some((epochs, figure)) = pretraining { (pretraining_section(epochs, figure)) }
        @if let Some(record) = report.stacking { (crate::stacking::stacking_section(record)) }
        h2 { "Training (notebook §5)" }
        (table(
            &[
                "Epoch",
                "loss",
                "accuracy",
                "auc",
                "val_loss",
                "val_accuracy",
                "val_precision",
                "val_recall",
                "val_f1",
                "val_auc",
                "seconds",
            ],
            &epoch_rows,
        ))
        @if h.stopped_early {
            p { "Early stopping ended training; the weights of the kept epoch were restored." }
        }
        @for (figure, caption) in &figures[2..5] { (figure_img(figure, caption)) }

        h2 { "Test evaluation (notebook §6)" }
        pre { (classification_report(confusion, report.test.classes, 4)) }
        div.grid {
            @for (figure, caption) in &figures[5..] { (figure_img(figure, caption)) }
        }

        h2 { "Examples (notebook §7)" }
        p {
            "A seeded random sample of test texts."
            @if !report.explained.is_empty() {
                " Each word the model read is coloured by how much it pushed the verdict \
                 (occlusion: the fall of the predicted class's probability without it): "
                span style="background:rgba(44,160,44,0.6)" { "towards the verdict" } ", "
                span style="background:rgba(214,39,40,0.6)" { "against it" }
                "; hover a word for its weight."
            }
        }
        (examples_table(sample, report.explained))
        h2 { "Error analysis" }
        @for (class, examples) in report.test.classes.iter().zip(mistakes) {
            h3 { "Most confident mistakes on true class " (class) }
            (examples_table(examples, report.explained))
        }
        (drivers_section(drivers, analysed))
        h3 { "Accuracy by text length" }
        (table(&["Words", "Texts", "Accuracy", "Truncated"], &bucket_rows))
        (figure_img(length_figure, "Test accuracy by text length"))
    };
    page(&format!("{} — {}", report.run, report.experiment), body)
}

/// Writes an experiment's `summary.csv`, comparison figures and `index.html`.
pub fn write_experiment_report(
    dir: &Path,
    name: &str,
    description: &str,
    runs: &[(RunSummary, History)],
) -> Result<PathBuf, ReportError> {
    let summaries: Vec<RunSummary> = runs.iter().map(|(s, _)| s.clone()).collect();
    write_summary_csv(&dir.join("summary.csv"), &summaries)?;
    let comparison = write_figure(
        &RunComparison {
            runs: summaries.clone(),
        },
        dir,
    )?;
    let histories: Vec<(String, History)> = runs
        .iter()
        .map(|(s, h)| (s.run.clone(), h.clone()))
        .collect();
    let val_loss = write_figure(
        &ValidationOverlay {
            runs: histories.clone(),
            metric: CurveMetric::Loss,
        },
        dir,
    )?;
    let val_acc = write_figure(
        &ValidationOverlay {
            runs: histories,
            metric: CurveMetric::Accuracy,
        },
        dir,
    )?;
    let rows = summary_rows(&summaries);
    let chosen = chosen_on_validation(&summaries).map(|i| &summaries[i]);
    let several_seeds = summaries.iter().any(|s| s.seeds.len() > 1);
    let mut links = Vec::new();
    for s in &summaries {
        let pages = s.report_pages();
        for (page, (seed, _)) in pages.iter().zip(&s.seeds) {
            let label = if pages.len() > 1 {
                format!("{} (seed {seed})", s.run)
            } else {
                s.run.clone()
            };
            links.push((page.clone(), label));
        }
    }
    let body = html! {
        h1 { "Experiment " (name) }
        p.lead { (description) }
        (table(&SUMMARY_COLUMNS, &rows))
        @if let Some(chosen) = chosen {
            @let (val, val_std) = chosen.validation_accuracy();
            @let (test, test_std) = chosen.test_accuracy();
            p {
                b { "Chosen on validation: " (chosen.run) }
                (format!(
                    " — the highest mean validation accuracy, {val:.4} ± {val_std:.4}; its test \
                     accuracy, reported and never chosen on: {test:.4} ± {test_std:.4}. A \
                     stacked run's validation accuracy is its stack's on validation rows it was \
                     not fitted on (two folds, each fitted on the other)."
                ))
            }
        }
        @if several_seeds {
            p {
                "A run trained with several seeds shows the mean over its seeds and the sample \
                 standard deviation of its test accuracy; its validation curves are its first \
                 seed's."
            }
        }
        p {
            "Reports of the runs: "
            @for (page, label) in &links { a href=(page) { (label) } " " }
        }
        (figure_img(
            &comparison,
            "Validation accuracy (what runs are chosen by), test accuracy and training time per run",
        ))
        (figure_img(&val_loss, "Validation loss per epoch, by run"))
        (figure_img(&val_acc, "Validation accuracy per epoch, by run"))
    };
    let path = dir.join("index.html");
    write_atomic(&path, page(&format!("Experiment {name}"), body).as_bytes())?;
    Ok(path)
}
