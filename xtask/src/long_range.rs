//! `cargo xtask long-range`: accuracy against distance for RNN, GRU and LSTM on the synthetic
//! long-range task, and the gradient that reaches each step back.

use std::time::Instant;

use imdb_data::write_atomic;
use imdb_model::{Architecture, SentimentClassifier};
use imdb_report::figures::{LineChart, write_figure};
use imdb_train::long_range::{TASK_WORDS, input_gradient_norms, run_long_range, task_model};

use crate::cli::LongRangeArgs;
use crate::error::XtaskError;

const ARCHITECTURES: [(Architecture, &str); 3] = [
    (Architecture::Rnn, "RNN"),
    (Architecture::Gru, "GRU"),
    (Architecture::Lstm, "LSTM"),
];

/// Runs the command.
pub fn run(args: &LongRangeArgs) -> Result<(), XtaskError> {
    if args.distances.is_empty() || args.examples < 8 {
        return Err(XtaskError::Usage(
            "give at least one --distances value and --examples of at least 8".into(),
        ));
    }
    let device = args.backend.device()?;
    std::fs::create_dir_all(&args.out)
        .map_err(|e| XtaskError::io("cannot create", &args.out, e))?;
    let started = Instant::now();
    let mut csv = String::from("architecture,distance,test_accuracy\n");
    let mut accuracy_series = Vec::new();
    let mut trained = Vec::new();
    let far = *args.distances.iter().max().unwrap_or(&50);
    for (architecture, name) in ARCHITECTURES {
        let mut points = Vec::new();
        for &distance in &args.distances {
            let (result, model) = run_long_range(
                architecture,
                distance,
                args.examples,
                args.epochs,
                args.seed,
                &device,
            )?;
            println!(
                "{name:>5} distance {distance:>4}: test accuracy {:.3}",
                result.accuracy
            );
            csv += &format!("{name},{distance},{:.4}\n", result.accuracy);
            points.push((distance as f64, result.accuracy));
            if distance == far {
                trained.push((name, model));
            }
        }
        accuracy_series.push((name.to_string(), points));
    }
    write_atomic(&args.out.join("long_range.csv"), csv.as_bytes())?;
    write_figure(
        &LineChart {
            stem: "long_range_accuracy".into(),
            title: "Remembering one token across a distance".into(),
            x_desc: "Steps between the deciding token and the end".into(),
            y_desc: "Test accuracy".into(),
            series: accuracy_series,
            log_y: false,
            reference: Some((0.5, "chance".into())),
        },
        &args.out,
    )?;

    // How much gradient reaches each step back: at initialization (the vanishing-gradient
    // argument) and after training at the longest distance.
    let mut norms_csv = String::from("architecture,model,steps_back,gradient_norm\n");
    let mut series = Vec::new();
    for ((architecture, name), (_, trained_model)) in ARCHITECTURES.iter().zip(&trained) {
        let fresh = SentimentClassifier::new(
            &task_model(*architecture),
            TASK_WORDS,
            2,
            args.seed,
            &device,
        )?;
        for (label, model) in [("initial", &fresh), ("trained", trained_model)] {
            let norms = input_gradient_norms(model, far, args.seed + 7, &device);
            for (k, n) in norms.iter().enumerate() {
                norms_csv += &format!("{name},{label},{k},{n:.6e}\n");
            }
            let first = norms.first().copied().unwrap_or(1.0).max(f64::MIN_POSITIVE);
            let at_far = norms.get(far).copied().unwrap_or(0.0);
            println!(
                "{name:>5} {label:>7}: gradient {far} steps back is {:.2e} of the last step's",
                at_far / first
            );
            if label == "initial" {
                series.push((
                    format!("{name} (initial)"),
                    norms
                        .iter()
                        .enumerate()
                        .map(|(k, n)| (k as f64, n / first))
                        .collect(),
                ));
            }
        }
    }
    write_atomic(&args.out.join("gradient_norms.csv"), norms_csv.as_bytes())?;
    write_figure(
        &LineChart {
            stem: "gradient_norms".into(),
            title: "Gradient reaching each input step, at initialization".into(),
            x_desc: "Steps back from the end".into(),
            y_desc: "‖∂L/∂x‖ relative to the last step".into(),
            series,
            log_y: true,
            reference: None,
        },
        &args.out,
    )?;
    eprintln!(
        "long-range task done in {:.0} s: {}",
        started.elapsed().as_secs_f64(),
        args.out.display()
    );
    Ok(())
}
