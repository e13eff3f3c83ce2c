//! The long-range lesson on real text: how long a trained classifier keeps its verdict while
//! neutral words follow the review. Each test text gets `k` filler words after its last word
//! ([`imdb_data::filler`]), the model reads them all, and the probe reports its accuracy and
//! how many verdicts stayed those it gave with no filler.

use burn::tensor::Device;
use imdb_data::EncodedSet;
use imdb_data::filler::append_fillers;
use imdb_model::{InferencePrecision, SentimentClassifier};
use serde::{Deserialize, Serialize};

use crate::error::TrainError;
use crate::evaluate::{Evaluation, evaluate_at};

/// The model's results with `fillers` filler words after every text.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbePoint {
    /// Filler words appended to each text.
    pub fillers: usize,
    /// The evaluation of the longer texts.
    pub evaluation: Evaluation,
    /// Share of texts whose predicted class is the one predicted with no filler.
    pub kept: f64,
}

/// One row of a probe's table: a model (its name), a filler count, its accuracy and the share
/// of verdicts kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeRow {
    /// The model's name (e.g. its run).
    pub model: String,
    /// Filler words appended to each text.
    pub fillers: usize,
    /// Test accuracy on the longer texts.
    pub accuracy: f64,
    /// Share of verdicts unchanged from no filler.
    pub kept: f64,
}

impl ProbePoint {
    /// The table row of this point for the model named `model`.
    pub fn row(&self, model: &str) -> ProbeRow {
        ProbeRow {
            model: model.to_string(),
            fillers: self.fillers,
            accuracy: self.evaluation.metrics.accuracy,
            kept: self.kept,
        }
    }
}

/// Evaluates `model` on `set` with `k` fillers from `words` appended to every text, for each
/// `k` of `counts` (in that order), the fillers drawn with `seed` (see
/// [`append_fillers`]). Evaluation as [`evaluate_at`] with `(batch_size, bucketing)` and
/// `precision`; `k = 0` gives exactly that evaluation of `set`. Refused when `words` is empty
/// and some `k` is not 0.
pub fn filler_probe(
    model: &SentimentClassifier,
    set: &EncodedSet,
    (words, counts, seed): (&[u32], &[usize], u64),
    (batch_size, bucketing): (usize, bool),
    precision: InferencePrecision,
    device: &Device,
) -> Result<Vec<ProbePoint>, TrainError> {
    if words.is_empty() && counts.iter().any(|&k| k > 0) {
        return Err(TrainError::InvalidConfig {
            key: "fillers",
            problem: "no filler word to append: give at least one".into(),
        });
    }
    let plain = evaluate_at(model, set, (batch_size, bucketing), precision, device)?;
    let verdicts = plain.probabilities.predictions();
    counts
        .iter()
        .map(|&k| {
            // k = 0 goes through the same path, so that it checks the path.
            let longer = append_fillers(set, words, k, seed);
            let evaluation =
                evaluate_at(model, &longer, (batch_size, bucketing), precision, device)?;
            let same = evaluation
                .probabilities
                .predictions()
                .iter()
                .zip(&verdicts)
                .filter(|(a, b)| a == b)
                .count();
            Ok(ProbePoint {
                fillers: k,
                kept: same as f64 / verdicts.len().max(1) as f64,
                evaluation,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluate::evaluate;
    use crate::long_range::{FILLER, LatchTask, run_long_range};
    use crate::progress::Silent;
    use imdb_model::Architecture;

    #[test]
    fn no_filler_is_the_plain_evaluation_and_fillers_change_the_texts_read() {
        let device = Device::flex();
        let task = LatchTask::at(3);
        let (_, model) =
            run_long_range(Architecture::Lstm, &task, (200, 2), 4, &device, &mut Silent).unwrap();
        let set = task.sequences(60, 11);
        let plain = evaluate(&model, &set, 16, true, &device).unwrap();
        let points = filler_probe(
            &model,
            &set,
            (&[FILLER, 9, 10], &[0, 30], 2),
            (16, true),
            InferencePrecision::Fast,
            &device,
        )
        .unwrap();
        assert_eq!(points.len(), 2);
        assert_eq!(points[0].fillers, 0);
        assert_eq!(points[0].evaluation, plain);
        assert_eq!(points[0].kept, 1.0);
        assert_eq!(points[1].fillers, 30);
        assert_ne!(
            points[1].evaluation.probabilities, plain.probabilities,
            "30 more words changed nothing the model read"
        );
        // The share of verdicts the fillers left as they were.
        let same = (0..plain.labels.len())
            .filter(|&i| {
                points[1].evaluation.probabilities.predicted(i) == plain.probabilities.predicted(i)
            })
            .count();
        assert_eq!(points[1].kept, same as f64 / plain.labels.len() as f64);
        let row = points[1].row("lstm");
        assert_eq!((row.model.as_str(), row.fillers), ("lstm", 30));
        let err = filler_probe(
            &model,
            &set,
            (&[], &[0, 1], 2),
            (16, true),
            InferencePrecision::Fast,
            &device,
        )
        .unwrap_err();
        assert!(err.to_string().contains("filler"), "{err}");
    }
}
