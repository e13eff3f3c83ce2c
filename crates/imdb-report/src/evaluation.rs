//! The files of one evaluation outside an experiment (`cargo xtask evaluate --out DIR`):
//! `predictions.csv`, `classification_report.txt`, `confusion_matrix.csv` and its figure, and
//! `metrics.json`; and the confusion matrix as text for the console.

use std::path::Path;

use imdb_data::write_atomic;
use imdb_train::{Confusion, Evaluation, Metrics};
use serde::Serialize;

use crate::error::ReportError;
use crate::figures::{ConfusionHeatmap, write_figure};
use crate::tables::{write_classification_report, write_predictions_csv};

/// The confusion matrix as aligned text: one row per true class, one column per predicted
/// class, each labelled with its name.
pub fn confusion_text(confusion: &Confusion, classes: &[String]) -> String {
    let width = classes
        .iter()
        .map(|c| c.chars().count())
        .chain(
            confusion
                .counts
                .iter()
                .flatten()
                .map(|n| n.to_string().len()),
        )
        .chain(["true \\ predicted".len()])
        .max()
        .unwrap_or(1);
    let mut out = format!("{:>width$}", "true \\ predicted");
    for class in classes {
        out += &format!("  {class:>width$}");
    }
    out.push('\n');
    for (class, row) in classes.iter().zip(&confusion.counts) {
        out += &format!("{class:>width$}");
        for n in row {
            out += &format!("  {n:>width$}");
        }
        out.push('\n');
    }
    out
}

/// `confusion_matrix.csv`: a header of predicted classes, then one row per true class.
fn confusion_csv(
    confusion: &Confusion,
    classes: &[String],
    path: &Path,
) -> Result<Vec<u8>, ReportError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let encode = |e: csv::Error| ReportError::io("cannot encode", path, e);
    let mut header = vec!["true_label".to_string()];
    header.extend(classes.iter().cloned());
    writer.write_record(&header).map_err(encode)?;
    for (class, row) in classes.iter().zip(&confusion.counts) {
        let mut cells = vec![class.clone()];
        cells.extend(row.iter().map(usize::to_string));
        writer.write_record(&cells).map_err(encode)?;
    }
    writer
        .into_inner()
        .map_err(|e| ReportError::io("cannot encode", path, e))
}

/// What `metrics.json` of an evaluation holds.
#[derive(Debug, Serialize)]
struct EvaluationRecord<'a> {
    /// What was evaluated (the data's path or description).
    data: &'a str,
    /// Rows evaluated.
    texts: usize,
    /// Class names by class id.
    classes: &'a [String],
    /// Loss and the notebook's metrics.
    metrics: &'a Metrics,
}

/// Writes an evaluation's files into `dir` (created if needed), each atomically:
/// `predictions.csv` (as a run's), `classification_report.txt`, `confusion_matrix.csv`,
/// `confusion_matrix.png`/`.svg` and `metrics.json`; `data` says what was evaluated.
pub fn write_evaluation(
    dir: &Path,
    evaluation: &Evaluation,
    classes: &[String],
    data: &str,
) -> Result<(), ReportError> {
    std::fs::create_dir_all(dir).map_err(|e| ReportError::io("cannot create", dir, e))?;
    let confusion = Confusion::from_probabilities(&evaluation.probabilities, &evaluation.labels);
    write_predictions_csv(
        &dir.join("predictions.csv"),
        &evaluation.probabilities,
        &evaluation.labels,
        classes,
    )?;
    write_classification_report(&dir.join("classification_report.txt"), &confusion, classes)?;
    let csv_path = dir.join("confusion_matrix.csv");
    write_atomic(&csv_path, &confusion_csv(&confusion, classes, &csv_path)?)?;
    write_figure(
        &ConfusionHeatmap {
            confusion: confusion.clone(),
            classes: classes.to_vec(),
        },
        dir,
    )?;
    let record = EvaluationRecord {
        data,
        texts: evaluation.labels.len(),
        classes,
        metrics: &evaluation.metrics,
    };
    let path = dir.join("metrics.json");
    let text = serde_json::to_string_pretty(&record)
        .map_err(|e| ReportError::io("cannot encode", &path, e))?;
    Ok(write_atomic(&path, text.as_bytes())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matrix_names_rows_and_columns_and_every_file_is_written() {
        let classes = ["bad", "fine", "good"].map(String::from);
        let confusion = Confusion {
            counts: vec![vec![3, 1, 0], vec![0, 12, 1], vec![1, 0, 4]],
        };
        let text = confusion_text(&confusion, &classes);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0].ends_with("good"), "{text}");
        assert!(lines[2].trim_start().starts_with("fine") && lines[2].contains("12"));
        let cells: Vec<&str> = lines[3].split_whitespace().collect();
        assert_eq!(cells, ["good", "1", "0", "4"]);

        let labels = vec![0, 1, 2, 2];
        let logits = vec![2.0, 0.0, 0.0, 0.0, 3.0, 0.0, 0.0, 0.0, 1.0, 5.0, 0.0, 0.0];
        let evaluation = Evaluation::from_logits(logits, 3, labels);
        let dir = tempfile::tempdir().unwrap();
        write_evaluation(dir.path(), &evaluation, &classes, "test.csv").unwrap();
        let csv = std::fs::read_to_string(dir.path().join("confusion_matrix.csv")).unwrap();
        assert_eq!(
            csv,
            "true_label,bad,fine,good\nbad,1,0,0\nfine,0,1,0\ngood,1,0,1\n"
        );
        let metrics: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("metrics.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(metrics["texts"], 4);
        assert_eq!(metrics["metrics"]["accuracy"], 0.75);
        for file in [
            "predictions.csv",
            "classification_report.txt",
            "confusion_matrix.png",
        ] {
            assert!(dir.path().join(file).is_file(), "{file}");
        }
    }
}
