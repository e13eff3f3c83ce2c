//! End-to-end tests of `cargo xtask`: the smoke experiment, its outputs, skipping and
//! resuming, concurrent experiments, predict, evaluate, and the command line's errors.
//!
//! They use the corpus named by `IMDB_ARCHIVE` (CI sets it to the shared archive) or, when it
//! is not set, a small synthetic archive built here. They never reach the network.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

mod common;
use common::{run, xtask};

use imdb_data::synthetic::{SyntheticSpec, write_synthetic_archive};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The archive the tests use: `IMDB_ARCHIVE`, or a synthetic one made once.
fn archive() -> PathBuf {
    static SYNTHETIC: OnceLock<PathBuf> = OnceLock::new();
    if let Some(path) = std::env::var_os("IMDB_ARCHIVE") {
        return PathBuf::from(path);
    }
    SYNTHETIC
        .get_or_init(|| {
            let dir = std::env::temp_dir().join(format!("imdb-cli-tests-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("synthetic.tar.gz");
            let spec = SyntheticSpec {
                per_class: 250,
                unsup: 20,
                min_words: 12,
                seed: 5,
            };
            write_synthetic_archive(&path, &spec).unwrap();
            path
        })
        .clone()
}

/// A command with the test corpus and a private data folder.
fn command(data_dir: &Path) -> Command {
    let mut cmd = Command::new(xtask());
    cmd.current_dir(repo())
        .env("IMDB_ARCHIVE", archive())
        .env("IMDB_DATA_DIR", data_dir)
        .stdin(Stdio::null());
    cmd
}

fn smoke(out_dir: &Path, data_dir: &Path) -> Output {
    run(command(data_dir)
        .args(["experiment", "configs/smoke.toml", "--out"])
        .arg(out_dir))
}

#[test]
fn smoke_experiment_writes_everything_and_reruns_skip() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, data) = (tmp.path().join("runs"), tmp.path().join("data"));
    smoke(&out, &data);
    let exp = out.join("smoke");
    for file in [
        "summary.csv",
        "index.html",
        "comparison.png",
        "comparison.svg",
        "val_loss_by_run.png",
        "experiment.toml",
    ] {
        assert!(exp.join(file).is_file(), "missing {file}");
    }
    let summary = std::fs::read_to_string(exp.join("summary.csv")).unwrap();
    let header = summary.lines().next().unwrap();
    for column in [
        "run",
        "backend",
        "epochs_run",
        "best_epoch",
        "train_seconds",
        "test_loss",
        "test_accuracy",
        "test_precision",
        "test_recall",
        "test_auc",
    ] {
        assert!(
            header.split(',').any(|c| c == column),
            "summary.csv lacks {column}: {header}"
        );
    }
    assert_eq!(summary.lines().count(), 3, "{summary}");
    let run = exp.join("lstm");
    for file in [
        "config.toml",
        "model.bpk",
        "model.json",
        "vocab.json",
        "history.csv",
        "history.json",
        "predictions.csv",
        "classification_report.txt",
        "metrics.json",
        "examples.json",
        "report.html",
        "class_distribution.png",
        "length_histogram.png",
        "curve_loss.png",
        "curve_accuracy.png",
        "curve_auc.png",
        "confusion_matrix.png",
        "roc_curve.png",
        "accuracy_by_length.png",
    ] {
        assert!(run.join(file).is_file(), "missing lstm/{file}");
    }
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("metrics.json")).unwrap()).unwrap();
    let accuracy = metrics["test_accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&accuracy));
    assert_eq!(metrics["epochs_run"].as_u64(), Some(2));
    let predictions = std::fs::read_to_string(run.join("predictions.csv")).unwrap();
    assert_eq!(
        predictions.lines().next(),
        Some("index,true_label,probability,predicted_label")
    );
    assert_eq!(predictions.lines().count(), 201);
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(
        html.contains("data:image/png;base64,")
            && !html.contains("http://")
            && !html.contains("https://")
    );

    for page in [run.join("report.html"), exp.join("index.html")] {
        check_in_browser(&page, tmp.path());
    }

    // A second run skips both finished runs and leaves their results untouched.
    let before = std::fs::read(run.join("metrics.json")).unwrap();
    let again = smoke(&out, &data);
    let log = String::from_utf8_lossy(&again.stderr);
    assert_eq!(log.matches("already finished").count(), 2, "{log}");
    assert_eq!(std::fs::read(run.join("metrics.json")).unwrap(), before);
}

#[test]
fn killed_experiment_resumes_and_completes() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, data) = (tmp.path().join("runs"), tmp.path().join("data"));
    // A longer smoke run, killed once its first epoch is checkpointed.
    let config = tmp.path().join("long.toml");
    let text = std::fs::read_to_string(repo().join("configs/smoke.toml"))
        .unwrap()
        .replace(
            "epochs = 2",
            "epochs = 40\nearly_stopping = { enabled = false }",
        )
        .replace("name = \"smoke\"", "name = \"long\"");
    std::fs::write(&config, text).unwrap();
    let mut child = command(&data)
        .args(["experiment"])
        .arg(&config)
        .arg("--out")
        .arg(&out)
        .args(["--only", "lstm"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let state = out.join("long/lstm/checkpoint/state.json");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !state.is_file() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(state.is_file(), "no checkpoint was written before the kill");
    assert!(!out.join("long/lstm/metrics.json").exists());

    let resumed = run(command(&data)
        .args(["experiment"])
        .arg(&config)
        .arg("--out")
        .arg(&out)
        .args(["--only", "lstm"]));
    let log = String::from_utf8_lossy(&resumed.stderr);
    assert!(log.contains("resuming after epoch"), "{log}");
    let history: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("long/lstm/history.json")).unwrap())
            .unwrap();
    let epochs = history["epochs"].as_array().unwrap();
    let numbers: Vec<u64> = epochs
        .iter()
        .map(|e| e["epoch"].as_u64().unwrap())
        .collect();
    assert_eq!(
        numbers,
        (1..=numbers.len() as u64).collect::<Vec<_>>(),
        "{numbers:?}"
    );
    assert!(out.join("long/lstm/metrics.json").is_file());
}

#[test]
fn two_experiments_run_at_the_same_time() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let spawn = |out: &Path| {
        command(&data)
            .args([
                "experiment",
                "configs/smoke.toml",
                "--only",
                "lstm",
                "--out",
            ])
            .arg(out)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(&tmp.path().join("a")), spawn(&tmp.path().join("b")));
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let read = |dir: &str| {
        std::fs::read_to_string(tmp.path().join(dir).join("smoke/lstm/metrics.json")).unwrap()
    };
    let (a, b): (serde_json::Value, serde_json::Value) = (
        serde_json::from_str(&read("a")).unwrap(),
        serde_json::from_str(&read("b")).unwrap(),
    );
    // Same seed, same data: the same model, whichever finished first.
    assert_eq!(a["test_accuracy"], b["test_accuracy"]);
}

fn trained_model(tmp: &Path) -> (PathBuf, PathBuf) {
    let (out, data) = (tmp.join("runs"), tmp.join("data"));
    run(command(&data)
        .args([
            "experiment",
            "configs/smoke.toml",
            "--only",
            "lstm",
            "--out",
        ])
        .arg(&out));
    (out.join("smoke/lstm"), data)
}

#[test]
fn predict_handles_any_text_and_refuses_bad_utf8() {
    let tmp = tempfile::tempdir().unwrap();
    let (model, data) = trained_model(tmp.path());
    let long = "great ".repeat(20_000);
    let out = run(command(&data)
        .args(["predict", "--format", "json", "--model"])
        .arg(&model)
        .args([
            "A wonderful film.",
            "",
            "😀🎬🍿",
            "Una película terrible, aburrida.",
            &long,
        ]));
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    for l in &lines {
        // The verdict's probability, and every class's.
        let p = l["probability"].as_f64().unwrap();
        assert!((0.5..=1.0).contains(&p), "{l}");
        let positive = l["probabilities"]["positive"].as_f64().unwrap();
        let negative = l["probabilities"]["negative"].as_f64().unwrap();
        assert!((positive + negative - 1.0).abs() < 1e-6, "{l}");
        let label = l["label"].as_str().unwrap();
        assert_eq!(
            label,
            if positive >= 0.5 {
                "positive"
            } else {
                "negative"
            }
        );
        assert_eq!(p, positive.max(negative), "{l}");
    }

    // One review per line on standard input; the third line is not UTF-8.
    let mut child = command(&data)
        .args(["predict", "--model"])
        .arg(&model)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"good\nbad\n\xff\xfe broken\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3") && err.contains("UTF-8"), "{err}");

    let mut child = command(&data)
        .args(["predict", "--model"])
        .arg(&model)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"a fine film\nan awful one\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(
        text.lines()
            .all(|l| l.starts_with("positive\t") || l.starts_with("negative\t"))
    );
}

#[test]
fn evaluate_reports_the_test_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    let (model, data) = trained_model(tmp.path());
    let out = run(command(&data).args(["evaluate", "--model"]).arg(&model));
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in ["- loss:", "- accuracy:", "- auc:", "weighted avg"] {
        assert!(text.contains(needle), "{text}");
    }
    // Exact f32 inference agrees with the default (split bf16 where the CPU has AMX) to the
    // printed digits.
    let exact = run(command(&data)
        .env("IMDB_F32_INFERENCE", "1")
        .args(["evaluate", "--model"])
        .arg(&model));
    let metrics = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| l.starts_with("- "))
            .map(str::to_string)
            .collect()
    };
    let exact = String::from_utf8(exact.stdout).unwrap();
    assert_eq!(metrics(&exact), metrics(&text), "{exact}");
    assert_eq!(metrics(&text).len(), 6, "{text}");
    // The speed benchmark classifies the same test set with the fused layer and Burn's stock
    // LSTM, which compute the same function of the same weights.
    let out = run(command(&data)
        .args([
            "bench",
            "predict",
            "--repeat",
            "1",
            "--implementation",
            "fused,burn",
        ])
        .arg("--model")
        .arg(&model));
    let text = String::from_utf8(out.stdout).unwrap();
    let json: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(json["reviews"], 200, "{text}");
    for key in ["fused", "burn"] {
        assert!(
            json["by_implementation"][key].as_f64().unwrap() > 0.0,
            "{text}"
        );
    }
    let accuracies: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split("accuracy ").nth(1))
        .collect();
    assert_eq!(accuracies.len(), 2, "{text}");
    assert_eq!(accuracies[0], accuracies[1], "{text}");
    let bad = command(&data)
        .args(["evaluate", "--model"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("model.json"));
}

#[test]
fn help_and_bad_command_lines() {
    let tmp = tempfile::tempdir().unwrap();
    for cmd in [
        &["--help"][..],
        &["experiment", "--help"],
        &["predict", "--help"],
        &["bench", "train-step", "--help"],
        &["eda", "--help"],
        &["download", "--help"],
        &["evaluate", "--help"],
    ] {
        let out = run(command(tmp.path()).args(cmd));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{cmd:?}"
        );
    }
    let out = command(tmp.path()).arg("train").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unrecognized subcommand"));
    let out = command(tmp.path())
        .args(["experiment", "configs/smoke.toml", "--epochs", "3"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--epochs"));
    let out = command(tmp.path())
        .args(["experiment", "configs/nope.toml"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("configs/nope.toml"));
    let out = command(tmp.path())
        .args(["experiment", "configs/smoke.toml", "--only", "gru"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no such run") && err.contains("lstm-unmasked"),
        "{err}"
    );
    let out = command(tmp.path())
        .env("IMDB_F32_INFERENCE", "exact")
        .args(["experiment", "configs/smoke.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("IMDB_F32_INFERENCE=\"exact\""), "{err}");
}

#[test]
fn eda_prints_the_notebook_numbers_and_draws_its_figures() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(command(&tmp.path().join("data"))
        .args(["eda", "--out"])
        .arg(tmp.path().join("eda")));
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "Mean length:",
        "90th percentile:",
        "95th percentile:",
        "Maximum length:",
        "<START>",
    ] {
        assert!(text.contains(needle), "{text}");
    }
    assert!(tmp.path().join("eda/class_distribution.png").is_file());
    assert!(tmp.path().join("eda/length_histogram.svg").is_file());
}

/// Headless Chromium, if installed (`.ci/run` installs Debian's `chromium`).
fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH")?
                .to_str()?
                .split(':')
                .map(|dir| Path::new(dir).join(name))
                .find(|path| path.is_file())
        })
}

/// Renders `page` in headless Chromium and checks the screenshot shows the page: as wide as
/// the window, and drawn (figures and tables, not a blank or an error page). Without a
/// browser the check is skipped, unless `IMDB_REQUIRE_BROWSER` is set (CI sets it).
fn check_in_browser(page: &Path, tmp: &Path) {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("IMDB_REQUIRE_BROWSER").is_none(),
            "IMDB_REQUIRE_BROWSER is set but no chromium is on PATH: install Debian's `chromium`"
        );
        eprintln!(
            "no chromium on PATH: browser check of {} skipped",
            page.display()
        );
        return;
    };
    let shot = tmp.join(format!(
        "{}.png",
        page.file_stem().unwrap().to_string_lossy()
    ));
    let profile = tempfile::tempdir().unwrap();
    let status = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1200,2400",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.canonicalize().unwrap().display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("chromium starts");
    assert!(status.success(), "chromium failed on {}", page.display());
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&shot).expect("chromium wrote a screenshot"),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    assert_eq!(info.width, 1200, "{}", shot.display());
    let channels = info.color_type.samples();
    let mut colors = std::collections::HashSet::new();
    let mut inked = 0usize;
    for px in pixels[..info.buffer_size()].chunks_exact(channels) {
        let rgb = (px[0], px[1], px[2]);
        if rgb != (255, 255, 255) {
            inked += 1;
        }
        colors.insert(rgb);
    }
    let total = (info.width * info.height) as usize;
    // Text, tables and the embedded figures: many colours, a fair share of the page drawn.
    assert!(
        colors.len() > 64 && inked * 50 > total,
        "{} looks blank: {} colours, {inked} of {total} pixels drawn",
        shot.display(),
        colors.len()
    );
}
