//! A run report and an experiment page written from a small fabricated result: every file is
//! there, figures are real PNG/SVG, the page is self-contained, and bad folders are errors.

use imdb_data::{ClassCounts, CorpusStats, LengthStats, TokenizedReview, Vocabulary};
use imdb_model::{ModelConfig, SentimentClassifier};
use imdb_report::figures::{ConfusionHeatmap, render};
use imdb_report::{
    ExplainedRow, RunMetrics, RunReport, RunSummary, TestOutcome, rows_to_explain,
    write_experiment_report, write_run_report,
};
use imdb_train::pretrain::PretrainEpoch;
use imdb_train::{ClassProbabilities, Confusion, EpochRecord, History, Metrics, TokenWeight};

fn history() -> History {
    let m = |loss: f64, acc: f64| Metrics {
        loss,
        accuracy: acc,
        precision: acc,
        recall: acc,
        f1: acc,
        auc: acc + 0.05,
    };
    History {
        epochs: (1..=3)
            .map(|e| EpochRecord {
                epoch: e,
                train: m(0.7 - 0.1 * e as f64, 0.6 + 0.1 * e as f64),
                val: m(0.6 - 0.05 * e as f64, 0.65 + 0.05 * e as f64),
                train_seconds: 1.5,
                val_seconds: 0.2,
            })
            .collect(),
        best_epoch: Some(2),
        stopped_early: false,
    }
}

fn metrics(run: &str, accuracy: f64) -> RunMetrics {
    RunMetrics {
        run: run.into(),
        backend: "flex".into(),
        params: 1234,
        epochs_run: 3,
        best_epoch: Some(2),
        train_seconds: 4.5,
        seconds_per_epoch: 1.5,
        predict_seconds: 0.1,
        test_loss: 0.4,
        test_accuracy: accuracy,
        test_precision: 0.8,
        test_recall: 0.7,
        test_f1: 0.75,
        test_auc: 0.9,
    }
}

fn names(classes: &[&str]) -> Vec<String> {
    classes.iter().map(|c| c.to_string()).collect()
}

fn counts(classes: &[String], each: usize) -> ClassCounts {
    ClassCounts {
        names: classes.to_vec(),
        counts: vec![each; classes.len()],
    }
}

/// Writes a run report of 40 fabricated test texts over `classes` into `dir`, with the rows
/// it asks for explained if `explain` (every "bad" pushes the verdict, "good" argues against
/// it); returns the page's HTML.
fn fabricated_report(
    dir: &std::path::Path,
    classes: &[String],
    explain: bool,
    pretraining: Option<&[PretrainEpoch]>,
) -> String {
    let n = classes.len();
    let vocab =
        Vocabulary::from_ranked_words(vec!["good".into(), "bad".into(), "<b>film</b>".into()]);
    let reviews: Vec<TokenizedReview> = (0..40)
        .map(|i| TokenizedReview {
            id: i,
            rating: 0,
            class: Some(i % n as u32),
            ranks: (0..(10 + 30 * i)).map(|k| k % 3).collect(),
        })
        .collect();
    let refs: Vec<&TokenizedReview> = reviews.iter().collect();
    let labels: Vec<u32> = reviews.iter().map(|r| r.label()).collect();
    // Each row's probabilities: a fabricated score for one class, the rest shared.
    let probabilities = ClassProbabilities {
        num_classes: n,
        values: (0..40)
            .flat_map(|i| {
                let p = ((i * 37) % 100) as f32 / 100.0;
                let favoured = (i * 7 % n as u32) as usize;
                (0..n).map(move |k| {
                    if n == 2 {
                        if k == 1 { p } else { 1.0 - p }
                    } else if k == favoured {
                        0.5 + p / 2.0
                    } else {
                        (0.5 - p / 2.0) / (n - 1) as f32
                    }
                })
            })
            .collect(),
    };
    let model = SentimentClassifier::new(
        &ModelConfig::default(),
        50,
        n,
        1,
        &burn::tensor::Device::flex(),
    )
    .unwrap();
    let corpus = CorpusStats {
        train_classes: counts(classes, 40 / n),
        test_classes: counts(classes, 40 / n),
        unsup_reviews: 0,
        train_lengths: LengthStats::from_lengths(&[10, 20, 300]),
        test_lengths: None,
        vocabulary_size: 3,
    };
    let test = TestOutcome {
        reviews: &refs,
        probabilities: &probabilities,
        labels: &labels,
        classes,
        vocab: &vocab,
        num_words: 50,
    };
    let explained: Vec<ExplainedRow> = if explain {
        rows_to_explain(&test, 3)
            .into_iter()
            .map(|index| ExplainedRow {
                index,
                tokens: ["good", "bad", "<b>film</b>"]
                    .iter()
                    .map(|&w| TokenWeight {
                        token: w.into(),
                        weight: match w {
                            "bad" => 0.25,
                            "good" => -0.1,
                            _ => 0.01,
                        },
                    })
                    .collect(),
            })
            .collect()
    } else {
        Vec::new()
    };
    let report = RunReport {
        run: "demo",
        experiment: "exp",
        config_toml: "seed = 1\n[model]\nunits = \"<64>\"\n",
        summary: &model.summary(200),
        corpus: &corpus,
        train_lengths: &[10, 20, 300, 450],
        maxlen: 200,
        history: &history(),
        test,
        metrics: &metrics("demo", 0.8),
        seed: 3,
        explained: &explained,
        pretraining,
        stacking: None,
    };
    let page = write_run_report(dir, &report).unwrap();
    std::fs::read_to_string(page).unwrap()
}

#[test]
fn a_pretrained_run_shows_its_perplexity_table_and_curve() {
    let dir = tempfile::tempdir().unwrap();
    let epochs: Vec<PretrainEpoch> = [(5.16, 250.8), (4.68, 214.1), (4.56, 198.3)]
        .iter()
        .enumerate()
        .map(|(i, &(loss, ppl))| PretrainEpoch {
            epoch: i + 1,
            train_loss: loss,
            held_out_perplexity: ppl,
            seconds: 181.0,
        })
        .collect();
    let names = names(&["negative", "positive"]);
    let html = fabricated_report(dir.path(), &names, false, Some(&epochs));
    assert!(html.contains("Language-model pretraining"));
    for value in ["250.8", "214.1", "198.3", "4.6800"] {
        assert!(html.contains(value), "{value} missing from the table");
    }
    let svg = std::fs::read_to_string(dir.path().join("pretrain_perplexity.svg")).unwrap();
    assert!(svg.contains("held-out perplexity"));
    assert!(dir.path().join("pretrain_perplexity.png").is_file());
    // A run without pretraining has neither.
    let plain = tempfile::tempdir().unwrap();
    let html = fabricated_report(plain.path(), &names, false, None);
    assert!(!html.contains("Language-model pretraining"));
    assert!(!plain.path().join("pretrain_perplexity.svg").exists());
}

#[test]
fn run_report_writes_every_file() {
    let dir = tempfile::tempdir().unwrap();
    let html = fabricated_report(dir.path(), &names(&["negative", "positive"]), false, None);
    for file in [
        "history.csv",
        "predictions.csv",
        "classification_report.txt",
        "examples.json",
        "report.html",
        "class_distribution.png",
        "length_histogram.svg",
        "curve_loss.png",
        "curve_accuracy.png",
        "curve_auc.png",
        "confusion_matrix.png",
        "roc_curve.png",
        "accuracy_by_length.png",
    ] {
        assert!(dir.path().join(file).is_file(), "missing {file}");
    }
    let png = std::fs::read(dir.path().join("roc_curve.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let svg = std::fs::read_to_string(dir.path().join("curve_loss.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("loss per epoch"));
    assert!(html.contains("data:image/png;base64,"));
    // Text from the data is escaped, never interpreted.
    assert!(html.contains("&lt;b&gt;film&lt;/b&gt;") && !html.contains("<b>film</b>"));
    assert!(html.contains("&lt;64&gt;"));
    let history_csv = std::fs::read_to_string(dir.path().join("history.csv")).unwrap();
    assert_eq!(history_csv.lines().count(), 4);
    assert!(history_csv.lines().nth(2).unwrap().ends_with(",true"));
    let examples: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("examples.json")).unwrap())
            .unwrap();
    assert_eq!(examples["random_sample"].as_array().unwrap().len(), 5);
    let fp = examples["confident_mistakes_by_true_class"]["negative"]
        .as_array()
        .unwrap();
    assert!(!fp.is_empty());
    let probs: Vec<f64> = fp
        .iter()
        .map(|e| e["probability"].as_f64().unwrap())
        .collect();
    assert!(probs.windows(2).all(|w| w[0] >= w[1]), "{probs:?}");
    assert!(
        fp.iter()
            .all(|e| e["label"] == "negative" && e["predicted"] == "positive")
    );
    let report = std::fs::read_to_string(dir.path().join("classification_report.txt")).unwrap();
    assert!(
        report.contains("    negative ") && report.contains("    positive "),
        "{report}"
    );
}

#[test]
fn run_report_for_three_classes_names_every_class() {
    let dir = tempfile::tempdir().unwrap();
    let classes = names(&["bad", "fine", "good"]);
    let html = fabricated_report(dir.path(), &classes, false, None);
    let report = std::fs::read_to_string(dir.path().join("classification_report.txt")).unwrap();
    let rows: Vec<&str> = report.lines().filter(|l| !l.trim().is_empty()).collect();
    // Header, one row per class, accuracy, macro and weighted averages.
    assert_eq!(rows.len(), 1 + 3 + 3, "{report}");
    for class in &classes {
        assert!(
            rows.iter()
                .any(|r| r.trim_start().starts_with(class.as_str())),
            "{report}"
        );
        assert!(html.contains(&format!("Most confident mistakes on true class {class}")));
    }
    let predictions = std::fs::read_to_string(dir.path().join("predictions.csv")).unwrap();
    assert!(
        predictions.starts_with("index,true_label,predicted_label,p_bad,p_fine,p_good\n"),
        "{predictions}"
    );
    assert_eq!(predictions.lines().count(), 41);
    let roc = std::fs::read_to_string(dir.path().join("roc_curve.svg")).unwrap();
    for class in &classes {
        assert!(
            roc.contains(&format!("{class} (AUC")),
            "ROC legend lacks {class}"
        );
    }
    let confusion = std::fs::read_to_string(dir.path().join("confusion_matrix.svg")).unwrap();
    assert!(
        confusion.contains("good (2)"),
        "confusion matrix lacks class names"
    );
}

#[test]
fn experiment_page_compares_runs() {
    let dir = tempfile::tempdir().unwrap();
    let three_seeds = RunSummary {
        run: "b".into(),
        seeds: vec![
            (1, metrics("b", 0.84)),
            (2, metrics("b", 0.85)),
            (3, metrics("b", 0.86)),
        ],
        validation: vec![0.80, 0.81, 0.82],
        per_seed_folders: true,
    };
    let runs = vec![
        (RunSummary::single(42, metrics("a", 0.8), 0.9), history()),
        (three_seeds, history()),
    ];
    let page = write_experiment_report(dir.path(), "exp", "two runs", &runs).unwrap();
    let summary = std::fs::read_to_string(dir.path().join("summary.csv")).unwrap();
    assert_eq!(summary.lines().count(), 3);
    assert!(summary.starts_with("run,backend,params,epochs_run,best_epoch,train_seconds"));
    let header: Vec<&str> = summary.lines().next().unwrap().split(',').collect();
    let row = |line: usize, column: &str| {
        let at = header.iter().position(|c| *c == column).unwrap();
        summary
            .lines()
            .nth(line)
            .unwrap()
            .split(',')
            .nth(at)
            .unwrap()
            .to_string()
    };
    assert_eq!(
        (row(1, "test_accuracy"), row(1, "test_accuracy_std")),
        ("0.8000".into(), "0.0000".into())
    );
    assert_eq!(
        (row(1, "seeds"), row(2, "seeds")),
        ("42".into(), "1 2 3".into())
    );
    assert_eq!(
        (row(2, "test_accuracy"), row(2, "test_accuracy_std")),
        ("0.8500".into(), "0.0100".into())
    );
    let comparison = std::fs::read_to_string(dir.path().join("comparison.svg")).unwrap();
    assert!(comparison.contains("0.8500 ± 0.0100"), "the spread's label");
    assert_eq!(
        comparison.matches("<circle").count(),
        6,
        "a dot per seed, validation and test"
    );
    assert!(
        comparison.contains("0.8100 ± 0.0100"),
        "validation's spread"
    );
    // Chosen on validation ("a": 0.90 against 0.81), not on test ("b": 0.85 against 0.80).
    assert_eq!(
        (
            row(1, "chosen_on_validation"),
            row(2, "chosen_on_validation")
        ),
        ("true".into(), "false".into())
    );
    let index = std::fs::read_to_string(dir.path().join("index.html")).unwrap();
    assert!(index.contains("Chosen on validation: a</b>"), "{index}");
    for file in [
        "comparison.png",
        "val_loss_by_run.png",
        "val_accuracy_by_run.svg",
    ] {
        assert!(dir.path().join(file).is_file(), "missing {file}");
    }
    let html = std::fs::read_to_string(page).unwrap();
    assert!(html.contains("a/report.html") && html.contains("b/seed-3/report.html"));
}

/// Failures that hold for root too (CI runs as root, which ignores permissions).
#[test]
fn missing_folders_and_files_in_the_way_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = write_experiment_report(&missing, "exp", "", &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("nope") && err.contains("missing"), "{err}");
    // The output folder is a file.
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let err = write_experiment_report(&file, "exp", "", &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("a-file") && err.contains("not a folder"),
        "{err}"
    );
    // A folder where the summary file goes.
    let out = dir.path().join("out");
    std::fs::create_dir_all(out.join("summary.csv").join("x")).unwrap();
    let err = write_experiment_report(&out, "exp", "", &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("summary.csv"), "{err}");
}

#[test]
fn confusion_figure_renders_in_both_formats() {
    let figure = render(&ConfusionHeatmap {
        // true negative 8, false positive 2; false negative 4, true positive 10
        confusion: Confusion {
            counts: vec![vec![8, 2], vec![4, 10]],
        },
        classes: names(&["negative", "positive"]),
    })
    .unwrap();
    assert_eq!(figure.stem, "confusion_matrix");
    assert!(figure.png.len() > 1000);
    for count in ["10", "2", "8", "4"] {
        assert!(
            figure.svg.contains(&format!(">\n{count}\n</text>")),
            "{count} not drawn"
        );
    }
}

/// Each run of an experiment is drawn in its own colour and marker pair (ten colours, then the
/// next marker), so that ten runs or more never share a style.
#[test]
fn runs_never_share_a_series_style() {
    use imdb_report::figures::series_style;
    let styles: Vec<_> = (0..40).map(series_style).collect();
    for (i, a) in styles.iter().enumerate() {
        for (j, b) in styles.iter().enumerate().skip(i + 1) {
            assert_ne!(a, b, "runs {i} and {j} share a style");
        }
    }
    // The first ten differ by colour alone (what a reader tells apart first).
    let colours: std::collections::HashSet<_> =
        styles[..10].iter().map(|(c, _)| (c.0, c.1, c.2)).collect();
    assert_eq!(colours.len(), 10);
}

#[test]
fn explained_examples_are_highlighted_and_the_words_behind_mistakes_listed() {
    let dir = tempfile::tempdir().unwrap();
    let html = fabricated_report(dir.path(), &names(&["negative", "positive"]), true, None);
    // The shown examples and mistakes: their words coloured by weight, escaped.
    assert!(html.contains("Text (explained: the words read, coloured by weight)"));
    assert!(html.contains("rgba(44,160,44,0.85)\" title=\"+0.2500\">bad</span>"));
    assert!(html.contains("rgba(214,39,40,0.34)\" title=\"-0.1000\">good</span>"));
    assert!(html.contains("&lt;b&gt;film&lt;/b&gt;</span>") && !html.contains("<b>film</b>"));
    // "bad" drives every mistake analysed, then the film word; "good" never (it argues
    // against the verdicts).
    assert!(html.contains("Words that drive mistakes"));
    let examples: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("examples.json")).unwrap())
            .unwrap();
    let drivers = examples["words_driving_mistakes"].as_array().unwrap();
    let words: Vec<&str> = drivers
        .iter()
        .map(|d| d["word"].as_str().unwrap())
        .collect();
    assert_eq!(words[0], "bad", "{drivers:?}");
    assert!(!words.contains(&"good"));
    let mistakes: u64 = drivers
        .iter()
        .filter(|d| d["word"] == "bad")
        .map(|d| d["mistakes"].as_u64().unwrap())
        .sum();
    let fp = examples["confident_mistakes_by_true_class"]["negative"]
        .as_array()
        .unwrap()
        .len();
    assert!(mistakes as usize >= fp, "{drivers:?}");
    // Without explanations the plain text stays.
    let plain = fabricated_report(dir.path(), &names(&["negative", "positive"]), false, None);
    assert!(plain.contains("Text (first 120 words)") && !plain.contains("Words that drive"));
}
