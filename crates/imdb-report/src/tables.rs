//! The run's tables: `history.csv`, `predictions.csv`, `classification_report.txt`,
//! `metrics.json`, and an experiment's `summary.csv`.

use std::path::Path;

use imdb_data::write_atomic;
use imdb_train::{ClassProbabilities, Confusion, History, Metrics};
use serde::{Deserialize, Serialize};

use crate::error::ReportError;

fn csv_bytes(rows: Vec<Vec<String>>, path: &Path) -> Result<Vec<u8>, ReportError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows {
        writer
            .write_record(&row)
            .map_err(|e| ReportError::io("cannot encode", path, e))?;
    }
    writer
        .into_inner()
        .map_err(|e| ReportError::io("cannot encode", path, e))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    write_atomic(path, bytes).map_err(ReportError::from)
}

fn metric_cells(m: &Metrics) -> [String; 6] {
    [m.loss, m.accuracy, m.precision, m.recall, m.f1, m.auc].map(|v| format!("{v:.6}"))
}

/// `history.csv`: one row per epoch with every train and validation metric.
pub fn write_history_csv(path: &Path, history: &History) -> Result<(), ReportError> {
    let mut rows = vec![
        [
            "epoch",
            "loss",
            "accuracy",
            "precision",
            "recall",
            "f1",
            "auc",
            "val_loss",
            "val_accuracy",
            "val_precision",
            "val_recall",
            "val_f1",
            "val_auc",
            "train_seconds",
            "val_seconds",
            "kept",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for e in &history.epochs {
        let mut row = vec![e.epoch.to_string()];
        row.extend(metric_cells(&e.train));
        row.extend(metric_cells(&e.val));
        row.push(format!("{:.3}", e.train_seconds));
        row.push(format!("{:.3}", e.val_seconds));
        row.push((history.best_epoch == Some(e.epoch)).to_string());
        rows.push(row);
    }
    write(path, &csv_bytes(rows, path)?)
}

/// `predictions.csv`: each test text's index, true class id, probability and predicted class
/// id. For two classes the probability is class 1's (`index,true_label,probability,
/// predicted_label`); for more, one `p_<class>` column per class follows the predicted class.
/// Probabilities keep 9 significant digits, enough to read back the very `f32` the model gave
/// (so another tool recomputes the same ROC AUC).
pub fn write_predictions_csv(
    path: &Path,
    probabilities: &ClassProbabilities,
    labels: &[u32],
    classes: &[String],
) -> Result<(), ReportError> {
    let binary = probabilities.num_classes == 2;
    let mut header = vec!["index".to_string(), "true_label".to_string()];
    if binary {
        header.extend(["probability", "predicted_label"].map(String::from));
    } else {
        header.push("predicted_label".to_string());
        header.extend(classes.iter().map(|c| format!("p_{c}")));
    }
    let mut rows = vec![header];
    for (i, &y) in labels.iter().enumerate() {
        let row = probabilities.row(i);
        let predicted = probabilities.predicted(i).to_string();
        let mut cells = vec![i.to_string(), y.to_string()];
        if binary {
            cells.extend([significant(row[1]), predicted]);
        } else {
            cells.push(predicted);
            cells.extend(row.iter().map(|&p| significant(p)));
        }
        rows.push(cells);
    }
    write(path, &csv_bytes(rows, path)?)
}

/// `p` in fixed notation with [`PROBABILITY_DIGITS`] significant digits: every `f32` reads
/// back exactly from 9.
fn significant(p: f32) -> String {
    if p == 0.0 || !p.is_finite() {
        return p.to_string();
    }
    let magnitude = f64::from(p.abs()).log10().floor() as i32;
    let decimals = (PROBABILITY_DIGITS as i32 - 1 - magnitude).max(0) as usize;
    format!("{p:.decimals$}")
}

/// Significant digits of the probabilities in `predictions.csv`.
pub const PROBABILITY_DIGITS: usize = 9;

/// scikit-learn's `classification_report(y_true, y_pred, target_names=classes,
/// digits=digits)`, character for character: one row per class, then accuracy, macro and
/// weighted averages.
pub fn classification_report(confusion: &Confusion, classes: &[String], digits: usize) -> String {
    let names: Vec<String> = (0..confusion.num_classes())
        .map(|k| classes.get(k).cloned().unwrap_or_else(|| k.to_string()))
        .collect();
    let longest = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
    let width = "weighted avg".len().max(longest).max(digits);
    let mut out = format!(
        "{:>width$} {:>10}{:>10}{:>10}{:>10}\n\n",
        "", "precision", "recall", "f1-score", "support"
    );
    let row = |name: &str, p: f64, r: f64, f: f64, s: usize| {
        format!("{name:>width$}  {p:>9.digits$} {r:>9.digits$} {f:>9.digits$} {s:>9}\n")
    };
    for (k, name) in names.iter().enumerate() {
        out += &row(
            name,
            confusion.precision(k),
            confusion.recall(k),
            confusion.f1(k),
            confusion.support(k),
        );
    }
    out.push('\n');
    let total = confusion.total();
    out += &format!(
        "{:>width$}  {:>9} {:>9} {:>9.digits$} {total:>9}\n",
        "accuracy",
        "",
        "",
        confusion.accuracy()
    );
    out += &row(
        "macro avg",
        confusion.macro_average(Confusion::precision),
        confusion.macro_average(Confusion::recall),
        confusion.macro_average(Confusion::f1),
        total,
    );
    out += &row(
        "weighted avg",
        confusion.weighted_average(Confusion::precision),
        confusion.weighted_average(Confusion::recall),
        confusion.weighted_average(Confusion::f1),
        total,
    );
    out
}

/// `classification_report.txt`.
pub fn write_classification_report(
    path: &Path,
    confusion: &Confusion,
    classes: &[String],
) -> Result<(), ReportError> {
    write(
        path,
        classification_report(confusion, classes, 4).as_bytes(),
    )
}

/// The numbers of one finished run, as `metrics.json` and a row of `summary.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMetrics {
    /// The run's name.
    pub run: String,
    /// The backend it ran on.
    pub backend: String,
    /// Trainable parameters.
    pub params: usize,
    /// Epochs trained.
    pub epochs_run: usize,
    /// The epoch whose weights were kept.
    pub best_epoch: Option<usize>,
    /// Seconds spent on training batches, all epochs.
    pub train_seconds: f64,
    /// Mean seconds per training epoch.
    pub seconds_per_epoch: f64,
    /// Seconds to classify the test set.
    pub predict_seconds: f64,
    /// Test loss.
    pub test_loss: f64,
    /// Test accuracy.
    pub test_accuracy: f64,
    /// Test precision (class 1 for two classes, else macro).
    pub test_precision: f64,
    /// Test recall (class 1 for two classes, else macro).
    pub test_recall: f64,
    /// Test F1 (class 1 for two classes, else macro).
    #[serde(default)]
    pub test_f1: f64,
    /// Test ROC AUC (one-vs-rest macro for more than two classes).
    pub test_auc: f64,
}

/// `metrics.json`.
pub fn write_metrics_json(path: &Path, metrics: &RunMetrics) -> Result<(), ReportError> {
    let text = serde_json::to_string_pretty(metrics)
        .map_err(|e| ReportError::io("cannot encode", path, e))?;
    write(path, text.as_bytes())
}

/// Reads a `metrics.json`; `None` if it is missing or unreadable.
pub fn read_metrics_json(path: &Path) -> Option<RunMetrics> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// Columns of `summary.csv` and of the experiment page's table.
pub const SUMMARY_COLUMNS: [&str; 18] = [
    "run",
    "backend",
    "params",
    "epochs_run",
    "best_epoch",
    "train_seconds",
    "seconds_per_epoch",
    "predict_seconds",
    "val_accuracy",
    "val_accuracy_std",
    "chosen_on_validation",
    "test_loss",
    "test_accuracy",
    "test_accuracy_std",
    "test_precision",
    "test_recall",
    "test_auc",
    "seeds",
];

/// One row of `summary.csv`: a run trained with one seed or more, its numbers averaged over
/// the seeds.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    /// The run's name.
    pub run: String,
    /// Each seed and what it gave, in the order they ran.
    pub seeds: Vec<(u64, RunMetrics)>,
    /// Each seed's validation accuracy, in the same order: of the weights it kept, or for a
    /// stacked run its stack's accuracy on validation rows it was not fitted on (what runs
    /// are chosen by; test accuracy is reported, never chosen on).
    pub validation: Vec<f64>,
    /// Whether each seed has its own folder, [`seed_folder`], in the run's (a run given
    /// `seeds`); otherwise the run's folder holds its one seed's results.
    pub per_seed_folders: bool,
}

/// The folder, inside its run's, of one seed of a run trained with several.
pub fn seed_folder(seed: u64) -> String {
    format!("seed-{seed}")
}

impl RunSummary {
    /// A run trained once, with `seed`, whose validation accuracy is `validation`.
    pub fn single(seed: u64, metrics: RunMetrics, validation: f64) -> Self {
        Self {
            run: metrics.run.clone(),
            seeds: vec![(seed, metrics)],
            validation: vec![validation],
            per_seed_folders: false,
        }
    }

    /// The mean validation accuracy and its sample standard deviation over the seeds.
    pub fn validation_accuracy(&self) -> (f64, f64) {
        mean_and_std(self.validation.iter().copied())
    }

    /// The mean of `of` over the seeds.
    pub fn mean(&self, of: impl Fn(&RunMetrics) -> f64) -> f64 {
        mean_and_std(self.seeds.iter().map(|(_, m)| of(m))).0
    }

    /// The mean test accuracy and its sample standard deviation over the seeds (divided by
    /// n − 1, as pandas and R do; 0 for one seed).
    pub fn test_accuracy(&self) -> (f64, f64) {
        mean_and_std(self.seeds.iter().map(|(_, m)| m.test_accuracy))
    }

    /// Each seed's report page, relative to the experiment's folder.
    pub fn report_pages(&self) -> Vec<String> {
        if self.per_seed_folders {
            self.seeds
                .iter()
                .map(|(s, _)| format!("{}/{}/report.html", self.run, seed_folder(*s)))
                .collect()
        } else {
            vec![format!("{}/report.html", self.run)]
        }
    }

    /// Each seed's test accuracy.
    pub fn accuracies(&self) -> Vec<f64> {
        self.seeds.iter().map(|(_, m)| m.test_accuracy).collect()
    }

    /// The row under [`SUMMARY_COLUMNS`]: means over the seeds; epochs that differ between
    /// seeds are listed seed by seed, `/` between them; `chosen` marks the run chosen on
    /// validation ([`chosen_on_validation`]).
    pub fn row(&self, chosen: bool) -> Vec<String> {
        let first = self.seeds.first().map(|(_, m)| m);
        let listed = |of: &dyn Fn(&RunMetrics) -> String| {
            let values: Vec<String> = self.seeds.iter().map(|(_, m)| of(m)).collect();
            if values.windows(2).all(|w| w[0] == w[1]) {
                values.first().cloned().unwrap_or_default()
            } else {
                values.join("/")
            }
        };
        let (accuracy, std) = self.test_accuracy();
        let (val, val_std) = self.validation_accuracy();
        vec![
            self.run.clone(),
            first.map_or(String::new(), |m| m.backend.clone()),
            first.map_or(String::new(), |m| m.params.to_string()),
            listed(&|m| m.epochs_run.to_string()),
            listed(&|m| m.best_epoch.map_or(String::new(), |e| e.to_string())),
            format!("{:.2}", self.mean(|m| m.train_seconds)),
            format!("{:.2}", self.mean(|m| m.seconds_per_epoch)),
            format!("{:.3}", self.mean(|m| m.predict_seconds)),
            format!("{val:.4}"),
            format!("{val_std:.4}"),
            chosen.to_string(),
            format!("{:.4}", self.mean(|m| m.test_loss)),
            format!("{accuracy:.4}"),
            format!("{std:.4}"),
            format!("{:.4}", self.mean(|m| m.test_precision)),
            format!("{:.4}", self.mean(|m| m.test_recall)),
            format!("{:.4}", self.mean(|m| m.test_auc)),
            self.seeds
                .iter()
                .map(|(s, _)| s.to_string())
                .collect::<Vec<_>>()
                .join(" "),
        ]
    }
}

/// Mean and sample standard deviation (n − 1; 0 for fewer than two values).
fn mean_and_std(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let values: Vec<f64> = values.collect();
    if values.is_empty() {
        return (f64::NAN, 0.0);
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, 0.0);
    }
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, variance.sqrt())
}

/// The run with the highest mean validation accuracy (the first of equals; runs without a
/// validation accuracy are never chosen): how an experiment's configuration is chosen.
pub fn chosen_on_validation(runs: &[RunSummary]) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, run) in runs.iter().enumerate() {
        let (val, _) = run.validation_accuracy();
        if val.is_finite() && best.is_none_or(|(_, b)| val > b) {
            best = Some((i, val));
        }
    }
    best.map(|(i, _)| i)
}

/// The rows under [`SUMMARY_COLUMNS`] of `runs`, the one chosen on validation marked.
pub fn summary_rows(runs: &[RunSummary]) -> Vec<Vec<String>> {
    let chosen = chosen_on_validation(runs);
    runs.iter()
        .enumerate()
        .map(|(i, r)| r.row(chosen == Some(i)))
        .collect()
}

/// `summary.csv`: one row per run.
pub fn write_summary_csv(path: &Path, runs: &[RunSummary]) -> Result<(), ReportError> {
    let mut rows = vec![SUMMARY_COLUMNS.map(String::from).to_vec()];
    rows.extend(summary_rows(runs));
    write(path, &csv_bytes(rows, path)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binary(tp: usize, fp: usize, tn: usize, fneg: usize) -> Confusion {
        Confusion {
            counts: vec![vec![tn, fp], vec![fneg, tp]],
        }
    }

    fn digits() -> Vec<String> {
        vec!["0".into(), "1".into()]
    }

    #[test]
    fn classification_report_matches_sklearn_by_hand() {
        // y_true = [1,1,1,0,0,0,0,1], y_pred = [1,0,1,0,0,1,0,1]:
        // class 1: TP 3, FN 1, FP 1 -> P 0.75, R 0.75, F1 0.75, support 4
        // class 0: TP 3, FN 1, FP 1 -> P 0.75, R 0.75, F1 0.75, support 4
        let c = binary(3, 1, 3, 1);
        let expected = "              precision    recall  f1-score   support\n\
                        \n\
                        \x20          0     0.7500    0.7500    0.7500         4\n\
                        \x20          1     0.7500    0.7500    0.7500         4\n\
                        \n\
                        \x20   accuracy                         0.7500         8\n\
                        \x20  macro avg     0.7500    0.7500    0.7500         8\n\
                        weighted avg     0.7500    0.7500    0.7500         8\n";
        assert_eq!(classification_report(&c, &digits(), 4), expected);
    }

    #[test]
    fn classification_report_unbalanced_by_hand() {
        // Class 1: TP 2, FN 2, FP 1. Class 0: TP 5 (=TN), FN 1, FP 2 ... computed by hand:
        // class 0: P = 5/7 = 0.7143, R = 5/6 = 0.8333, F1 = 2PR/(P+R) = 0.7692, support 6
        // class 1: P = 2/3 = 0.6667, R = 2/4 = 0.5000, F1 = 0.5714, support 4
        // accuracy 7/10; macro P 0.6905 R 0.6667 F1 0.6703; weighted P 0.6952 R 0.7000 F1 0.6901
        let c = binary(2, 1, 5, 2);
        let report = classification_report(&c, &digits(), 4);
        let lines: Vec<&str> = report.lines().collect();
        assert_eq!(
            lines[2],
            "           0     0.7143    0.8333    0.7692         6"
        );
        assert_eq!(
            lines[3],
            "           1     0.6667    0.5000    0.5714         4"
        );
        assert_eq!(
            lines[5],
            "    accuracy                         0.7000        10"
        );
        assert_eq!(
            lines[6],
            "   macro avg     0.6905    0.6667    0.6703        10"
        );
        assert_eq!(
            lines[7],
            "weighted avg     0.6952    0.7000    0.6901        10"
        );
    }

    #[test]
    fn notebook_report_layout() {
        // The notebook's test report: support 12500 each, accuracy 0.7498 (18745 of 25000).
        let c = binary(8181, 1935, 10565, 4319);
        let report = classification_report(&c, &digits(), 4);
        assert!(
            report.contains("           0     0.7098    0.8452    0.7716     12500"),
            "{report}"
        );
        assert!(
            report.contains("           1     0.8087    0.6545    0.7235     12500"),
            "{report}"
        );
        assert!(
            report.contains("   macro avg     0.7593    0.7498    0.7475     25000"),
            "{report}"
        );
        assert!(
            report.contains("    accuracy                         0.7498     25000"),
            "{report}"
        );
    }

    #[test]
    fn classification_report_three_named_classes_by_hand() {
        // true \ predicted: rows are true classes.
        let c = Confusion {
            counts: vec![vec![1, 1, 0], vec![0, 1, 0], vec![1, 0, 1]],
        };
        let names = ["bad", "fine", "very good indeed"].map(String::from);
        let report = classification_report(&c, &names, 2);
        let lines: Vec<&str> = report.lines().collect();
        // Width is the longest name (16); bad: P 1/2, R 1/2, F1 0.5, support 2.
        assert_eq!(
            lines[0],
            format!(
                "{:>16} {:>10}{:>10}{:>10}{:>10}",
                "", "precision", "recall", "f1-score", "support"
            )
        );
        assert_eq!(
            lines[2],
            "             bad       0.50      0.50      0.50         2"
        );
        assert_eq!(
            lines[3],
            "            fine       0.50      1.00      0.67         1"
        );
        assert_eq!(
            lines[4],
            "very good indeed       1.00      0.50      0.67         2"
        );
        assert_eq!(
            lines[6],
            "        accuracy                           0.60         5"
        );
        assert_eq!(
            lines[7],
            "       macro avg       0.67      0.67      0.61         5"
        );
        assert_eq!(
            lines[8],
            "    weighted avg       0.70      0.60      0.60         5"
        );
    }

    #[test]
    fn predictions_csv_keeps_its_binary_columns_and_adds_classes_beyond() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.csv");
        let two = ClassProbabilities {
            num_classes: 2,
            values: vec![0.25, 0.75, 0.5, 0.5],
        };
        write_predictions_csv(&path, &two, &[1, 0], &digits()).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "index,true_label,probability,predicted_label\n0,1,0.750000000,1\n1,0,0.500000000,1\n"
        );
        let three = ClassProbabilities {
            num_classes: 3,
            values: vec![0.2, 0.5, 0.3],
        };
        let names = ["a", "b", "c"].map(String::from);
        write_predictions_csv(&path, &three, &[2], &names).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "index,true_label,predicted_label,p_a,p_b,p_c\n0,2,1,0.200000003,0.500000000,0.300000012\n"
        );
    }

    /// Every probability reads back as the very `f32` written, however small.
    #[test]
    fn predictions_read_back_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.csv");
        let mut rng = imdb_data::SeededRng::new(3);
        let mut values = Vec::new();
        for i in 0..2000 {
            let p = match i % 4 {
                0 => rng.next_f32(),
                1 => rng.next_f32() * 1e-6,
                2 => 1.0 - rng.next_f32() * 1e-6,
                _ => f32::from_bits(0x3F7F_FFFF - i),
            };
            values.extend([1.0 - p, p]);
        }
        let probabilities = ClassProbabilities {
            num_classes: 2,
            values,
        };
        let labels = vec![0u32; 2000];
        write_predictions_csv(&path, &probabilities, &labels, &digits()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, line) in text.lines().skip(1).enumerate() {
            let cell = line.split(',').nth(2).unwrap();
            let digits = cell.trim_start_matches(['0', '.']).replace('.', "");
            assert!(digits.len() <= PROBABILITY_DIGITS, "{cell}");
            assert_eq!(
                cell.parse::<f32>().unwrap(),
                probabilities.values[2 * i + 1],
                "row {i}: {cell}"
            );
        }
    }

    #[test]
    fn summary_rows_average_over_seeds() {
        let metrics = |accuracy: f64, epochs: usize| RunMetrics {
            run: "r".into(),
            backend: "flex".into(),
            params: 10,
            epochs_run: epochs,
            best_epoch: Some(epochs - 1),
            train_seconds: 2.0 * epochs as f64,
            seconds_per_epoch: 2.0,
            predict_seconds: 0.5,
            test_loss: 0.3,
            test_accuracy: accuracy,
            test_precision: 0.8,
            test_recall: 0.7,
            test_f1: 0.75,
            test_auc: accuracy + 0.1,
        };
        let three = RunSummary {
            run: "r".into(),
            seeds: vec![
                (1, metrics(0.80, 3)),
                (2, metrics(0.82, 3)),
                (3, metrics(0.87, 4)),
            ],
            validation: vec![0.90, 0.92, 0.91],
            per_seed_folders: true,
        };
        // mean 0.83; deviations -0.03, -0.01, 0.04: variance 0.0026 / 2 = 0.0013.
        let (mean, std) = three.test_accuracy();
        assert!((mean - 0.83).abs() < 1e-12);
        assert!((std - 0.0013f64.sqrt()).abs() < 1e-12);
        let row = three.row(true);
        let column =
            |name: &str| row[SUMMARY_COLUMNS.iter().position(|c| *c == name).unwrap()].clone();
        assert_eq!(column("test_accuracy"), "0.8300");
        assert_eq!(column("test_accuracy_std"), "0.0361");
        assert_eq!(column("test_auc"), "0.9300");
        assert_eq!(column("epochs_run"), "3/3/4");
        assert_eq!(column("train_seconds"), "6.67");
        assert_eq!(column("seeds"), "1 2 3");
        assert_eq!(column("val_accuracy"), "0.9100");
        assert_eq!(column("val_accuracy_std"), "0.0100");
        assert_eq!(column("chosen_on_validation"), "true");
        let one = RunSummary::single(42, metrics(0.8, 3), 0.95);
        assert_eq!(one.test_accuracy(), (0.8, 0.0));
        assert_eq!(one.row(false)[SUMMARY_COLUMNS.len() - 1], "42");
        assert_eq!(one.row(false)[13], "0.0000");
        // Chosen on validation, not on test: `one` has the lower test accuracy.
        assert_eq!(chosen_on_validation(&[three.clone(), one.clone()]), Some(1));
        let no_val = RunSummary::single(7, metrics(0.99, 3), f64::NAN);
        assert_eq!(chosen_on_validation(&[no_val, three.clone()]), Some(1));
        assert_eq!(one.report_pages(), ["r/report.html"]);
        assert_eq!(three.report_pages()[2], "r/seed-3/report.html");
    }
}
