//! The run's tables: `history.csv`, `predictions.csv`, `classification_report.txt`,
//! `metrics.json`, and an experiment's `summary.csv`.

use std::path::Path;

use imdb_data::write_atomic;
use imdb_train::{BinaryMetrics, Confusion, History};
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

fn metric_cells(m: &BinaryMetrics) -> [String; 5] {
    [m.loss, m.accuracy, m.precision, m.recall, m.auc].map(|v| format!("{v:.6}"))
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
            "auc",
            "val_loss",
            "val_accuracy",
            "val_precision",
            "val_recall",
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

/// `predictions.csv`: each test review's index, true label, probability and predicted label.
pub fn write_predictions_csv(
    path: &Path,
    probabilities: &[f32],
    labels: &[u8],
) -> Result<(), ReportError> {
    let mut rows = vec![
        ["index", "true_label", "probability", "predicted_label"]
            .map(String::from)
            .to_vec(),
    ];
    for (i, (&p, &y)) in probabilities.iter().zip(labels).enumerate() {
        rows.push(vec![
            i.to_string(),
            y.to_string(),
            format!("{p:.6}"),
            u8::from(p >= 0.5).to_string(),
        ]);
    }
    write(path, &csv_bytes(rows, path)?)
}

/// scikit-learn's `classification_report(y_true, y_pred, digits=digits)`, character for
/// character, for classes 0 and 1.
pub fn classification_report(confusion: &Confusion, digits: usize) -> String {
    let positive = *confusion;
    let negative = confusion.swapped();
    let support = |c: &Confusion| c.true_positives + c.false_negatives;
    let f1 = |c: &Confusion| {
        let (p, r) = (c.precision(), c.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    };
    let classes = [("0", negative), ("1", positive)];
    let width = "weighted avg".len().max(digits);
    let mut out = format!(
        "{:>width$} {:>10}{:>10}{:>10}{:>10}\n\n",
        "", "precision", "recall", "f1-score", "support"
    );
    let row = |name: &str, p: f64, r: f64, f: f64, s: usize| {
        format!("{name:>width$}  {p:>9.digits$} {r:>9.digits$} {f:>9.digits$} {s:>9}\n")
    };
    for (name, c) in &classes {
        out += &row(name, c.precision(), c.recall(), f1(c), support(c));
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
    let mean = |f: &dyn Fn(&Confusion) -> f64| (f(&classes[0].1) + f(&classes[1].1)) / 2.0;
    out += &row(
        "macro avg",
        mean(&|c| c.precision()),
        mean(&|c| c.recall()),
        mean(&f1),
        total,
    );
    let weighted = |f: &dyn Fn(&Confusion) -> f64| {
        if total == 0 {
            return 0.0;
        }
        classes
            .iter()
            .map(|(_, c)| f(c) * support(c) as f64)
            .sum::<f64>()
            / total as f64
    };
    out += &row(
        "weighted avg",
        weighted(&|c| c.precision()),
        weighted(&|c| c.recall()),
        weighted(&f1),
        total,
    );
    out
}

/// `classification_report.txt`.
pub fn write_classification_report(path: &Path, confusion: &Confusion) -> Result<(), ReportError> {
    write(path, classification_report(confusion, 4).as_bytes())
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
    /// Test precision (positive class).
    pub test_precision: f64,
    /// Test recall (positive class).
    pub test_recall: f64,
    /// Test ROC AUC.
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
pub const SUMMARY_COLUMNS: [&str; 13] = [
    "run",
    "backend",
    "params",
    "epochs_run",
    "best_epoch",
    "train_seconds",
    "seconds_per_epoch",
    "predict_seconds",
    "test_loss",
    "test_accuracy",
    "test_precision",
    "test_recall",
    "test_auc",
];

impl RunMetrics {
    /// The run's row under [`SUMMARY_COLUMNS`].
    pub fn summary_row(&self) -> Vec<String> {
        vec![
            self.run.clone(),
            self.backend.clone(),
            self.params.to_string(),
            self.epochs_run.to_string(),
            self.best_epoch.map_or(String::new(), |e| e.to_string()),
            format!("{:.2}", self.train_seconds),
            format!("{:.2}", self.seconds_per_epoch),
            format!("{:.3}", self.predict_seconds),
            format!("{:.4}", self.test_loss),
            format!("{:.4}", self.test_accuracy),
            format!("{:.4}", self.test_precision),
            format!("{:.4}", self.test_recall),
            format!("{:.4}", self.test_auc),
        ]
    }
}

/// `summary.csv`: one row per run.
pub fn write_summary_csv(path: &Path, runs: &[RunMetrics]) -> Result<(), ReportError> {
    let mut rows = vec![SUMMARY_COLUMNS.map(String::from).to_vec()];
    rows.extend(runs.iter().map(RunMetrics::summary_row));
    write(path, &csv_bytes(rows, path)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_report_matches_sklearn_by_hand() {
        // y_true = [1,1,1,0,0,0,0,1], y_pred = [1,0,1,0,0,1,0,1]:
        // class 1: TP 3, FN 1, FP 1 -> P 0.75, R 0.75, F1 0.75, support 4
        // class 0: TP 3, FN 1, FP 1 -> P 0.75, R 0.75, F1 0.75, support 4
        let c = Confusion {
            true_positives: 3,
            false_positives: 1,
            true_negatives: 3,
            false_negatives: 1,
        };
        let expected = "              precision    recall  f1-score   support\n\
                        \n\
                        \x20          0     0.7500    0.7500    0.7500         4\n\
                        \x20          1     0.7500    0.7500    0.7500         4\n\
                        \n\
                        \x20   accuracy                         0.7500         8\n\
                        \x20  macro avg     0.7500    0.7500    0.7500         8\n\
                        weighted avg     0.7500    0.7500    0.7500         8\n";
        assert_eq!(classification_report(&c, 4), expected);
    }

    #[test]
    fn classification_report_unbalanced_by_hand() {
        // Class 1: TP 2, FN 2, FP 1. Class 0: TP 5 (=TN), FN 1, FP 2 ... computed by hand:
        // class 0: P = 5/7 = 0.7143, R = 5/6 = 0.8333, F1 = 2PR/(P+R) = 0.7692, support 6
        // class 1: P = 2/3 = 0.6667, R = 2/4 = 0.5000, F1 = 0.5714, support 4
        // accuracy 7/10; macro P 0.6905 R 0.6667 F1 0.6703; weighted P 0.6952 R 0.7000 F1 0.6901
        let c = Confusion {
            true_positives: 2,
            false_positives: 1,
            true_negatives: 5,
            false_negatives: 2,
        };
        let report = classification_report(&c, 4);
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
        let c = Confusion {
            true_positives: 8181,
            false_negatives: 4319,
            true_negatives: 10565,
            false_positives: 1935,
        };
        let report = classification_report(&c, 4);
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
}
