//! The long-range page written from fabricated results: its figures are real files, and its
//! reading follows the numbers (which cell carries the token how far, the gradient check, the
//! probe's plain-evaluation check, the note when a gated cell falls short of the literature).

use imdb_model::Architecture;
use imdb_report::long_range::{FillerProbe, LongRangePage, ProbedModel, write_long_range_page};
use imdb_train::long_range::{GradientCurve, LatchTask, LongRangeResult, TaskGateBias};
use imdb_train::probe::ProbeRow;

const DISTANCES: [usize; 5] = [10, 20, 50, 100, 200];

/// Accuracy by distance: the RNN at chance from 50, the GRU from 200, the LSTM never unless
/// `lstm_fails_from` says so.
fn results(lstm_fails_from: Option<usize>) -> Vec<LongRangeResult> {
    let mut out = Vec::new();
    for (architecture, lost) in [
        (Architecture::Rnn, Some(50)),
        (Architecture::Gru, Some(200)),
        (Architecture::Lstm, lstm_fails_from),
    ] {
        for d in DISTANCES {
            let failed = lost.is_some_and(|l| d >= l);
            out.push(LongRangeResult {
                architecture,
                distance: d,
                accuracy: if failed { 0.5 } else { 1.0 },
            });
        }
    }
    out
}

/// Gradients by step back: the RNN's fall by a factor of 10 per 5 steps, the gated cells'
/// stay near 1.
fn gradients() -> Vec<GradientCurve> {
    let mut out = Vec::new();
    for architecture in [Architecture::Rnn, Architecture::Gru, Architecture::Lstm] {
        for trained in [false, true] {
            let norms = (0..205)
                .map(|k| match architecture {
                    Architecture::Rnn => 10f64.powf(-(k as f64) / 5.0),
                    _ => 1.0 / (1.0 + k as f64 / 100.0),
                })
                .collect();
            out.push(GradientCurve {
                architecture,
                trained,
                distance: 200,
                norms,
            });
        }
    }
    out
}

fn probe() -> FillerProbe {
    let rows = |model: &str, accuracies: [f64; 3]| -> Vec<ProbeRow> {
        [0, 25, 200]
            .into_iter()
            .zip(accuracies)
            .map(|(fillers, accuracy)| ProbeRow {
                model: model.into(),
                fillers,
                accuracy,
                kept: if fillers == 0 { 1.0 } else { accuracy },
            })
            .collect()
    };
    FillerProbe {
        models: vec![
            ProbedModel {
                run: "rnn".into(),
                architecture: Architecture::Rnn,
                recorded_accuracy: Some(0.6263),
                rows: rows("rnn", [0.6263, 0.5004, 0.4937]),
            },
            ProbedModel {
                run: "lstm".into(),
                architecture: Architecture::Lstm,
                recorded_accuracy: Some(0.85),
                rows: rows("lstm", [0.8512, 0.8347, 0.6305]),
            },
        ],
        fillers: vec!["the".into(), "and".into(), "<b>".into()],
    }
}

fn page(
    results: &[LongRangeResult],
    gate_bias: TaskGateBias,
    probe: Option<&FillerProbe>,
) -> String {
    let dir = tempfile::tempdir().unwrap();
    let gradients = gradients();
    let path = write_long_range_page(
        dir.path(),
        &LongRangePage {
            results,
            gradients: &gradients,
            task: LatchTask {
                gate_bias,
                ..LatchTask::at(200)
            },
            examples: 4000,
            epochs: 15,
            seed: 42,
            synthetic_seconds: 61.0,
            probe,
        },
    )
    .unwrap();
    assert_eq!(path, dir.path().join("index.html"));
    let stems: &[&str] = if probe.is_some() {
        &["long_range_accuracy", "gradient_norms", "filler_probe"]
    } else {
        &["long_range_accuracy", "gradient_norms"]
    };
    for stem in stems {
        let png = std::fs::read(dir.path().join(format!("{stem}.png"))).unwrap();
        assert_eq!(&png[1..4], b"PNG", "{stem}");
        assert!(dir.path().join(format!("{stem}.svg")).is_file());
    }
    assert_eq!(
        dir.path().join("filler_probe.png").exists(),
        probe.is_some()
    );
    let html = std::fs::read_to_string(path).unwrap();
    // Self-contained: the figures are inline, nothing is fetched.
    assert_eq!(html.matches("data:image/png;base64,").count(), stems.len());
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"));
    html
}

#[test]
fn the_reading_follows_the_numbers() {
    let probe = probe();
    let html = page(&results(None), TaskGateBias::Chrono, Some(&probe));
    for expected in [
        "the <b>RNN</b> carries the token up to 20 steps, and is at chance from 50 steps",
        "the <b>GRU</b> carries the token up to 100 steps, and is at chance from 200 steps",
        "the <b>LSTM</b> carries the token at every distance tried, up to 200 steps",
        "LSTM at 200 steps: <b>1.000</b> (carried)",
        "vanilla RNN at 50 steps: <b>0.500</b> (at chance)",
        // The RNN's gradient 50 steps back: 10^-10 of the last step's.
        "the RNN is at chance from 50 steps, and its trained gradient 50 steps back is 1.0e-10 \
         of the last step's (10.0 orders of magnitude down)",
        "chrono initialization",
        // The probe: readings, the plain-evaluation check both ways, escaped filler words.
        "the LSTM goes from 0.8512 to 0.6305 with 200 neutral words and keeps 63.0% of its verdicts",
        "rnn 0.6263 (identical to its run's test accuracy)",
        "lstm 0.8512 (its run recorded 0.8500)",
        "the, and, &lt;b&gt;",
        "The LSTM (lstm) holds its verdict longest: after 200 neutral words it keeps 63.0% of \
         its verdicts, against 49.4% for the RNN.",
    ] {
        assert!(html.contains(expected), "missing {expected:?}");
    }
    assert!(!html.contains("Short of the literature"));
    // Numbers this run did not measure are labelled as past ones, with command and date.
    let past = html
        .split("How this task was chosen")
        .nth(1)
        .expect("the section on how the task was chosen");
    assert!(
        past.starts_with(" (past measurements, not this run's)")
            && past.contains("2026-12-02")
            && past.contains("cargo xtask long-range"),
        "{past}"
    );
}

#[test]
fn an_lstm_short_of_the_literature_is_said_so_and_the_probe_is_optional() {
    let html = page(&results(Some(50)), TaskGateBias::Keras, None);
    assert!(
        html.contains(
            "<b>Short of the literature here:</b> the LSTM falls below 0.95 from 50 steps"
        )
    );
    assert!(html.contains("Keras' biases (LSTM forget gate 1"));
    assert!(html.contains("LSTM at 200 steps: <b>0.500</b> (not carried)"));
    assert!(!html.contains("On the reviews"));
}
