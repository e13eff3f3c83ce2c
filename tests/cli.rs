//! End-to-end tests of `cargo xtask`: the smoke experiment, its outputs, skipping and
//! resuming, concurrent experiments, predict, evaluate, and the command line's errors.
//!
//! They use the corpus named by `IMDB_ARCHIVE` (CI sets it to the shared archive) or, when it
//! is not set, a small synthetic archive built here. They never reach the network.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

mod common;
use common::{command, headless_chromium, repo, run, smoke_lstm, trained_model};

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
    // The run chosen on validation is the one with the highest validation accuracy.
    let columns: Vec<&str> = header.split(',').collect();
    let at = |name: &str| columns.iter().position(|c| *c == name).unwrap();
    let rows: Vec<Vec<&str>> = summary
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    // The first of equals, as runs are listed.
    let v = |r: &Vec<&str>| r[at("val_accuracy")].parse::<f64>().unwrap();
    let best = rows
        .iter()
        .fold(&rows[0], |best, r| if v(r) > v(best) { r } else { best });
    for row in &rows {
        let chosen = row[at("chosen_on_validation")] == "true";
        assert_eq!(chosen, row[0] == best[0], "{summary}");
    }
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
    assert_eq!(metrics["epochs_run"].as_u64(), Some(2));
    let predictions = std::fs::read_to_string(run.join("predictions.csv")).unwrap();
    assert_eq!(
        predictions.lines().next(),
        Some("index,true_label,probability,predicted_label")
    );
    assert_eq!(predictions.lines().count(), 201);
    // The reported accuracy is the share of rows whose verdict is their label.
    let right = predictions
        .lines()
        .skip(1)
        .filter(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            let predicted = u32::from(cells[2].parse::<f64>().unwrap() > 0.5);
            assert_eq!(cells[3], predicted.to_string(), "{line}");
            cells[1] == cells[3]
        })
        .count();
    assert_eq!(accuracy, right as f64 / 200.0, "{metrics}");
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(
        html.contains("data:image/png;base64,")
            && !html.contains("http://")
            && !html.contains("https://")
    );

    for page in [run.join("report.html"), exp.join("index.html")] {
        check_in_browser(&page, tmp.path());
        check_fits_at_1280(&page, tmp.path());
    }
    // The run's checkpoints are removed once its results are written (no keep_checkpoints).
    assert!(!run.join("checkpoint").exists());

    // A second run skips both finished runs and leaves their results untouched; the
    // temporary files a killed command left are swept under the lock.
    let before = std::fs::read(run.join("metrics.json")).unwrap();
    for stale in [run.join(".tmp-AbC123"), exp.join(".tmp-XyZ789")] {
        std::fs::write(stale, b"half a file").unwrap();
    }
    let again = smoke(&out, &data);
    let log = String::from_utf8_lossy(&again.stderr);
    assert_eq!(log.matches("already finished").count(), 2, "{log}");
    assert_eq!(std::fs::read(run.join("metrics.json")).unwrap(), before);
    assert!(log.contains("removed 2 temporary file(s)"), "{log}");
    assert!(!run.join(".tmp-AbC123").exists() && !exp.join(".tmp-XyZ789").exists());
}

#[test]
fn seeds_train_once_each_and_the_summary_gives_mean_and_spread() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, data) = (tmp.path().join("runs"), tmp.path().join("data"));
    let experiment = |extra: &[&str]| run(smoke_lstm(&data, &out).args(extra));
    experiment(&["--seeds", "7,8"]);
    let exp = out.join("smoke");
    let accuracy = |dir: &Path| {
        let metrics: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("metrics.json")).unwrap())
                .unwrap();
        metrics["test_accuracy"].as_f64().unwrap()
    };
    let (a, b) = (
        accuracy(&exp.join("lstm/seed-7")),
        accuracy(&exp.join("lstm/seed-8")),
    );
    let seed_config = std::fs::read_to_string(exp.join("lstm/seed-8/config.toml")).unwrap();
    assert!(seed_config.contains("seed = 8") && !seed_config.contains("seeds"));
    let summary = std::fs::read_to_string(exp.join("summary.csv")).unwrap();
    let header: Vec<&str> = summary.lines().next().unwrap().split(',').collect();
    let row: Vec<&str> = summary.lines().nth(1).unwrap().split(',').collect();
    let column = |name: &str| row[header.iter().position(|c| *c == name).unwrap()];
    assert_eq!(summary.lines().count(), 2, "{summary}");
    assert_eq!(column("run"), "lstm");
    assert_eq!(column("seeds"), "7 8");
    assert_eq!(column("test_accuracy"), format!("{:.4}", (a + b) / 2.0));
    // Two values: the sample standard deviation is |a - b| / sqrt(2).
    assert_eq!(
        column("test_accuracy_std"),
        format!("{:.4}", (a - b).abs() / 2f64.sqrt())
    );
    let index = std::fs::read_to_string(exp.join("index.html")).unwrap();
    assert!(index.contains("lstm/seed-7/report.html") && index.contains("lstm/seed-8/report.html"));
    // Validation accuracy, mean and spread over the seeds: each seed's kept epoch's.
    let val = |dir: &str| -> f64 {
        let history: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(exp.join(dir).join("history.json")).unwrap(),
        )
        .unwrap();
        let best = history["best_epoch"].as_u64().unwrap() as usize;
        history["epochs"][best - 1]["val"]["accuracy"]
            .as_f64()
            .unwrap()
    };
    let (va, vb) = (val("lstm/seed-7"), val("lstm/seed-8"));
    assert_eq!(column("val_accuracy"), format!("{:.4}", (va + vb) / 2.0));
    assert_eq!(
        column("val_accuracy_std"),
        format!("{:.4}", (va - vb).abs() / 2f64.sqrt())
    );
    assert_eq!(column("chosen_on_validation"), "true", "the only run");

    // Seed 7 in its folder is exactly the run trained once with the config's seed (7).
    experiment(&[]);
    assert_eq!(
        std::fs::read(exp.join("lstm/predictions.csv")).unwrap(),
        std::fs::read(exp.join("lstm/seed-7/predictions.csv")).unwrap()
    );
    let summary = std::fs::read_to_string(exp.join("summary.csv")).unwrap();
    let row: Vec<&str> = summary.lines().nth(1).unwrap().split(',').collect();
    let column = |name: &str| row[header.iter().position(|c| *c == name).unwrap()];
    assert_eq!(
        (column("seeds"), column("test_accuracy_std")),
        ("7", "0.0000"),
        "{summary}"
    );
    assert_eq!(column("test_accuracy"), format!("{a:.4}"));

    // A repeated seed is refused before anything trains.
    let refused = command(&data)
        .args([
            "experiment",
            "configs/smoke.toml",
            "--seeds",
            "1,1",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("--seeds") && err.contains("seed 1 is given twice"),
        "{err}"
    );
}

#[test]
fn bench_skipgram_gives_the_same_vectors_on_one_and_two_threads() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let bench = |threads: &str| {
        let out = run(command(&data).args([
            "bench",
            "skipgram",
            "--epochs",
            "2",
            "--dim",
            "16",
            "--reviews",
            "500",
            "--threads",
            threads,
        ]));
        let text = String::from_utf8(out.stdout).unwrap();
        let json: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        assert_eq!(json["reviews"], 500, "{text}");
        assert!(json["seconds"].as_f64().unwrap() > 0.0, "{text}");
        assert!(text.contains("nearest to great"), "{text}");
        json["fingerprint"].as_str().unwrap().to_string()
    };
    assert_eq!(bench("1"), bench("2"));
    let refused = command(&data)
        .args(["bench", "skipgram", "--threads", "0"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--threads"));
}

/// `configs/smoke.toml` renamed `name` with the `epochs = 2` line replaced by `train`.
fn smoke_variant(dir: &Path, name: &str, train: &str) -> PathBuf {
    let config = dir.join(format!("{name}.toml"));
    let text = std::fs::read_to_string(repo().join("configs/smoke.toml"))
        .unwrap()
        .replace("epochs = 2", train)
        .replace("name = \"smoke\"", &format!("name = \"{name}\""));
    std::fs::write(&config, text).unwrap();
    config
}

/// The metrics of a finished run without its timings.
fn metrics_without_times(run: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(run.join("metrics.json")).unwrap();
    let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
    for key in ["train_seconds", "seconds_per_epoch", "predict_seconds"] {
        value.as_object_mut().unwrap().remove(key);
    }
    value
}

/// Killed with SIGKILL again and again, at moments spread over the run and while checkpoint
/// files are being written, a run resumes each time and ends with exactly the metrics and
/// predictions of a run that was never interrupted.
#[test]
fn sigkilled_runs_resume_to_the_uninterrupted_result() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // Early stopping with patience: the best epoch's weights must survive the kills too.
    let config = smoke_variant(
        tmp.path(),
        "kill",
        "epochs = 6\nearly_stopping = { patience = 2 }",
    );
    let experiment = |out: &Path| {
        let mut cmd = command(&data);
        cmd.arg("experiment")
            .arg(&config)
            .arg("--out")
            .arg(out)
            .args(["--only", "lstm"]);
        cmd
    };
    let reference = tmp.path().join("reference");
    let timer = std::time::Instant::now();
    run(&mut experiment(&reference));
    // On the small corpus built without IMDB_ARCHIVE a whole run takes a fraction of a
    // second: the timed kills scale with it, so that they land before the run ends.
    let uninterrupted = timer.elapsed();

    let out = tmp.path().join("killed");
    let checkpoint = out.join("kill/lstm/checkpoint");
    let committed = || checkpoint.join("state.json").is_file();
    let mut kills = 0;
    let mut while_writing = 0;
    // Per attempt: its log, and whether a committed checkpoint was there when it was killed.
    let mut attempts: Vec<(PathBuf, bool)> = Vec::new();
    for attempt in 0..9u64 {
        let log = tmp.path().join(format!("attempt-{attempt}.log"));
        let mut child = experiment(&out)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        // Attempts take turns: killed while a checkpoint file is being written, after a
        // delay, or once a checkpoint is committed (so that some kill lands after one).
        let delay = std::time::Duration::from_millis(150 + 170 * attempt)
            .min(uninterrupted.mul_f64(0.1 * attempt as f64));
        let had_checkpoint = committed();
        let mut writing = false;
        let finished = loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "attempt {attempt} failed on its own");
                break true;
            }
            writing = attempt % 3 == 0
                && std::fs::read_dir(&checkpoint).is_ok_and(|entries| {
                    entries
                        .flatten()
                        .any(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
                });
            let kill = match attempt % 3 {
                0 => writing,
                1 => started.elapsed() >= delay,
                // A checkpoint committed by this attempt, not only by an earlier one.
                _ => committed() && (!had_checkpoint || started.elapsed() >= delay),
            };
            if kill || started.elapsed() > std::time::Duration::from_secs(120) {
                break false;
            }
            std::thread::sleep(std::time::Duration::from_micros(500));
        };
        if finished {
            attempts.push((log, false));
            break;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        while_writing += usize::from(writing);
        attempts.push((log, committed()));
    }
    eprintln!("{kills} kills, {while_writing} of them while a checkpoint file was being written");
    assert!(
        kills >= 2,
        "the run finished before it could be killed twice"
    );
    let last_log = tmp.path().join("last.log");
    let status = experiment(&out)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&last_log).unwrap())
        .status()
        .unwrap();
    assert!(status.success());
    attempts.push((last_log, false));
    // Some kill landed after a committed checkpoint, and the run after it resumed from it.
    let after_checkpoint = attempts
        .iter()
        .position(|(_, committed)| *committed)
        .expect("no kill landed after a committed checkpoint");
    let logs: Vec<String> = attempts[after_checkpoint + 1..]
        .iter()
        .map(|(log, _)| std::fs::read_to_string(log).unwrap())
        .collect();
    // A kill can land after the last epoch's checkpoint, while the test set is scored: the
    // next run then starts from that finished checkpoint instead of training again.
    assert!(
        logs.iter().any(|l| l.contains("resuming after epoch")
            || l.contains("training had finished after epoch")),
        "no run resumed after the kill of attempt {after_checkpoint}: {logs:?}"
    );
    let (a, b) = (reference.join("kill/lstm"), out.join("kill/lstm"));
    assert_eq!(metrics_without_times(&a), metrics_without_times(&b));
    assert_eq!(
        std::fs::read(a.join("predictions.csv")).unwrap(),
        std::fs::read(b.join("predictions.csv")).unwrap(),
        "predictions differ after {kills} kills"
    );
    assert!(!b.join("checkpoint").exists(), "checkpoints kept");
}

/// A second `experiment` on an output folder in use is refused, naming the command that holds
/// it, and leaves that command's work alone.
#[test]
fn a_second_experiment_on_the_same_folder_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let out = tmp.path().join("runs");
    let config = smoke_variant(
        tmp.path(),
        "busy",
        "epochs = 40\nearly_stopping = { enabled = false }",
    );
    let spawn = || {
        command(&data)
            .arg("experiment")
            .arg(&config)
            .arg("--out")
            .arg(&out)
            .args(["--only", "lstm", "--keep-checkpoints"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut first = spawn();
    // Wait until the first one trains (its first epoch committed).
    let state = out.join("busy/lstm/checkpoint/state.json");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !state.is_file() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let second = spawn().wait_with_output().unwrap();
    let running = first.try_wait().unwrap().is_none();
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(
        running,
        "the first command ended before the second was refused"
    );
    let log = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "{log}");
    assert!(
        log.contains(&format!("pid {}", first.id())) && log.contains("another experiment"),
        "{log}"
    );
    // The first one's checkpoint is intact.
    let text = std::fs::read_to_string(&state).unwrap();
    let committed: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(committed["epoch"].as_u64().unwrap() >= 1, "{text}");
}

#[test]
fn two_experiments_in_separate_folders_run_at_once_and_agree() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let spawn = |out: &Path| {
        smoke_lstm(&data, out)
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
fn predict_explains_each_verdict_and_bench_explain_checks_faithfulness() {
    let tmp = tempfile::tempdir().unwrap();
    let (model, data) = trained_model(tmp.path());
    let out = run(command(&data)
        .args(["predict", "--explain", "--format", "json", "--model"])
        .arg(&model)
        .args(["A wonderful, WONDERFUL film.", ""]));
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let tokens = lines[0]["tokens"].as_array().unwrap();
    let words: Vec<&str> = tokens
        .iter()
        .map(|t| t["token"].as_str().unwrap())
        .collect();
    assert_eq!(
        words,
        ["a", "wonderful", "wonderful", "film"],
        "in review order"
    );
    assert!(
        tokens
            .iter()
            .all(|t| t["weight"].as_f64().unwrap().is_finite())
    );
    assert!(tokens.iter().any(|t| t["weight"].as_f64().unwrap() != 0.0));
    assert_eq!(lines[1]["tokens"].as_array().unwrap().len(), 0);
    assert!(lines[1]["label"].is_string());
    // The same verdict as without explanation.
    let plain = run(command(&data)
        .args(["predict", "--format", "json", "--model"])
        .arg(&model)
        .arg("A wonderful, WONDERFUL film."));
    let plain: serde_json::Value = serde_json::from_slice(&plain.stdout).unwrap();
    assert!(plain.get("tokens").is_none());
    assert_eq!(plain["label"], lines[0]["label"]);
    // Text: the verdict, then the words that pushed it most.
    let out = run(command(&data)
        .args(["predict", "--explain", "--model"])
        .arg(&model)
        .arg("A wonderful film."));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let label = lines
        .next()
        .unwrap()
        .split('\t')
        .next()
        .unwrap()
        .to_string();
    let why = lines.next().unwrap();
    assert!(why.starts_with(&format!("\tfor {label}: ")), "{text}");
    assert!(why.contains("; against: "), "{text}");

    let out = run(command(&data)
        .args([
            "bench",
            "explain",
            "--reviews",
            "40",
            "--max-k",
            "3",
            "--model",
        ])
        .arg(&model));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let last: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["reviews"], 40);
    assert!(last["ms_per_review"].as_f64().unwrap() > 0.0);
    let curve = last["curve"].as_array().unwrap();
    assert_eq!(curve.len(), 3, "{stdout}");
    // Faithful: deleting the heaviest words costs the verdict more than deleting as many
    // random ones (for k = 1 it cannot cost less: the weights are those single deletions).
    for (k, point) in curve.iter().enumerate() {
        assert_eq!(point["k"], k + 1);
        let (top, random) = (
            point["top"].as_f64().unwrap(),
            point["random"].as_f64().unwrap(),
        );
        assert!(top > random, "k = {}: {point}", k + 1);
    }
    assert!(curve[0]["top_wins"].as_f64().unwrap() > 0.5, "{stdout}");
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
    // Sizes that would fail on allocation are refused with the flag named.
    for (args, named) in [
        (&["--batch", "100000"][..], "--batch"),
        (&["--seq-len", "100000"], "--seq-len"),
        (&["--units", "5000"], "--units"),
        (&["--vocab", "100000000"], "--vocab"),
        (
            &["--adversarial", "vat", "--unlabelled", "100000"],
            "--unlabelled",
        ),
        (&["--unlabelled", "8"], "--unlabelled"),
    ] {
        let out = command(tmp.path())
            .args(["bench", "train-step"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(named), "{args:?}: {err}");
    }
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
    // The numbers are the corpus's, computed here from the same archive.
    let options = imdb_data::LoadOptions {
        source: imdb_data::ArchiveSource::Local(common::archive()),
        data_dir: tmp.path().join("eda-data"),
        with_unsup: false,
        use_cache: false,
        show_progress: false,
        tokenizer: Default::default(),
        vocabulary: None,
    };
    let (corpus, _) = imdb_data::load_corpus(&options).unwrap();
    let lengths = corpus.stats().train_lengths.unwrap();
    for line in [
        format!("Training texts: {}", corpus.train.len()),
        format!("Test texts: {}", corpus.test.len()),
        format!("Mean length: {:.5}", lengths.mean),
        format!("Median length: {}", lengths.p50),
        format!("95th percentile: {}", lengths.p95),
        format!("Maximum length: {}", lengths.max),
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in {text}");
    }
}

#[test]
fn long_range_writes_its_csvs_and_page_and_probes_trained_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, runs, data) = (
        tmp.path().join("long_range"),
        tmp.path().join("runs"),
        tmp.path().join("data"),
    );
    let long_range = |gradient_distance: &str, extra: &[&str]| {
        let mut cmd = command(&data);
        cmd.args([
            "long-range",
            "--distances",
            "3,6",
            "--gradient-distance",
            gradient_distance,
            "--examples",
            "64",
            "--epochs",
            "1",
            "--probe-config",
            "configs/smoke.toml",
            "--probe-runs",
            "lstm",
            "--fillers",
            "0,5,20",
        ])
        .arg("--out")
        .arg(&out)
        .arg("--runs-dir")
        .arg(&runs)
        .args(extra);
        cmd
    };
    let first = run(&mut long_range("6", &[]));
    let log = String::from_utf8_lossy(&first.stderr);
    // The probed run did not exist: it was trained as `experiment` would.
    assert!(log.contains("probe: training lstm"), "{log}");
    assert!(runs.join("smoke/lstm/metrics.json").is_file());
    let stdout = String::from_utf8_lossy(&first.stdout);
    // No filler is the plain evaluation: the run's own test accuracy, exactly.
    assert!(
        stdout.contains("the run's own test accuracy") && stdout.contains(": identical"),
        "{stdout}"
    );

    let csv = std::fs::read_to_string(out.join("long_range.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("architecture,distance,test_accuracy"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 6, "{csv}");
    for cell in ["RNN", "GRU", "LSTM"] {
        let distances: Vec<&str> = rows.iter().filter(|r| r[0] == cell).map(|r| r[1]).collect();
        assert_eq!(distances, ["3", "6"], "{csv}");
    }
    // Each accuracy is a count of the 32 test sequences (half of --examples 64), written
    // with 4 decimals.
    for r in &rows {
        let right = (r[2].parse::<f64>().unwrap() * 32.0).round();
        assert!((0.0..=32.0).contains(&right), "{r:?}");
        assert_eq!(format!("{:.4}", right / 32.0), r[2], "{r:?}");
    }

    let norms = std::fs::read_to_string(out.join("gradient_norms.csv")).unwrap();
    assert_eq!(
        norms.lines().next(),
        Some("architecture,model,steps_back,gradient_norm")
    );
    // 3 cells × (initial, trained) × the 11 steps of a distance-6 sequence.
    assert_eq!(norms.lines().count(), 1 + 3 * 2 * 11, "{norms}");

    let probe = std::fs::read_to_string(out.join("filler_probe.csv")).unwrap();
    let mut lines = probe.lines();
    assert_eq!(
        lines.next(),
        Some("model,architecture,fillers,test_accuracy,verdicts_kept")
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let fillers: Vec<&str> = rows.iter().map(|r| r[2]).collect();
    assert_eq!(fillers, ["0", "5", "20"], "{probe}");
    assert_eq!(
        (rows[0][0], rows[0][1], rows[0][4]),
        ("lstm", "LSTM", "1.0000")
    );
    let recorded: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(runs.join("smoke/lstm/metrics.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        rows[0][3],
        format!("{:.4}", recorded["test_accuracy"].as_f64().unwrap())
    );

    for stem in ["long_range_accuracy", "gradient_norms", "filler_probe"] {
        assert!(out.join(format!("{stem}.png")).is_file(), "{stem}");
        assert!(out.join(format!("{stem}.svg")).is_file(), "{stem}");
    }
    let page = out.join("index.html");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("The latch task") && html.contains("On the reviews"));
    check_in_browser(&page, tmp.path());
    check_fits_at_1280(&page, tmp.path());

    // Again: the probed run is finished, so nothing is trained for the probe.
    let again = run(&mut long_range("6", &["--no-probe"]));
    assert!(!String::from_utf8_lossy(&again.stderr).contains("probe: training"));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains("On the reviews"));
    // The folder holds what the page shows: no probe left over from the first run.
    assert!(!out.join("filler_probe.csv").exists() && !out.join("filler_probe.png").exists());

    // Settings that cannot work are refused before anything runs.
    for (gradient_distance, flags, expected) in [
        (
            "5",
            &[][..],
            "--gradient-distance 5 is not one of --distances",
        ),
        ("6", &["--probe-runs", "nope"][..], "--probe-runs nope"),
    ] {
        let refused = long_range(gradient_distance, flags).output().unwrap();
        assert_eq!(refused.status.code(), Some(2));
        let err = String::from_utf8_lossy(&refused.stderr);
        assert!(err.contains(expected), "{err}");
    }
}

/// Loads a copy of `page` with a measuring script in headless Chromium, 1280 px wide: the page
/// must not be wider than the window, and every table must sit in a box inside the window
/// that scrolls sideways (so the last columns are reachable, never cut off).
fn check_fits_at_1280(page: &Path, tmp: &Path) {
    let Some((mut browser, _profile)) =
        headless_chromium("width check", &page.display().to_string())
    else {
        return;
    };
    let probe = r#"<script>addEventListener('load', () => {
  const w = innerWidth;
  const bad = [...document.querySelectorAll('table')].filter(t => {
    const box = t.parentElement;
    const r = box.getBoundingClientRect();
    return getComputedStyle(box).overflowX !== 'auto' || r.right > w + 0.5;
  }).length;
  const page = document.documentElement.scrollWidth;
  document.body.insertAdjacentHTML('beforeend',
    `<p id="fit">width=${w} page=${page} tables=${document.querySelectorAll('table').length} bad=${bad}</p>`);
});</script>"#;
    let html = std::fs::read_to_string(page).unwrap();
    let copy = tmp.join(format!(
        "fit-{}.html",
        page.file_stem().unwrap().to_string_lossy()
    ));
    std::fs::write(&copy, html.replace("</body>", &format!("{probe}</body>"))).unwrap();
    let out = browser
        .args(["--window-size=1280,900", "--dump-dom"])
        .arg(format!("file://{}", copy.canonicalize().unwrap().display()))
        .stderr(Stdio::null())
        .output()
        .expect("chromium starts");
    let dom = String::from_utf8_lossy(&out.stdout);
    let fit = dom
        // The last one: the script's own text holds the tag too.
        .rsplit("<p id=\"fit\">")
        .next()
        .filter(|_| dom.contains("</script>"))
        .and_then(|rest| rest.split("</p>").next())
        .unwrap_or_else(|| panic!("the probe did not run on {}", copy.display()));
    let field = |name: &str| -> u64 {
        fit.split(' ')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing in {fit:?}"))
    };
    assert!(
        field("tables") > 0,
        "{}: no table measured ({fit})",
        page.display()
    );
    assert_eq!(
        field("bad"),
        0,
        "{}: a table is cut off ({fit})",
        page.display()
    );
    assert!(
        field("page") <= field("width"),
        "{}: the page is wider than the window ({fit})",
        page.display()
    );
}

/// Renders `page` in headless Chromium and checks the screenshot shows the page: as wide as
/// the window, and drawn (figures and tables, not a blank or an error page). Without a
/// browser the check is skipped, unless `IMDB_REQUIRE_BROWSER` is set (CI sets it).
fn check_in_browser(page: &Path, tmp: &Path) {
    let Some((mut browser, _profile)) =
        headless_chromium("browser check", &page.display().to_string())
    else {
        return;
    };
    let shot = tmp.join(format!(
        "{}.png",
        page.file_stem().unwrap().to_string_lossy()
    ));
    let status = browser
        .args(["--hide-scrollbars", "--window-size=1200,2400"])
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

/// The smoke experiment's `lstm` run started from a language model with `pretrain` settings.
fn pretrain_config(dir: &Path, name: &str, pretrain: &str) -> PathBuf {
    let smoke = std::fs::read_to_string(repo().join("configs/smoke.toml")).unwrap();
    let config = smoke.replace(
        "[[runs]]\nname = \"lstm\"\n",
        &format!(
            "[[runs]]\nname = \"lstm\"\npretrain = {{ {pretrain} }}\n\
             fine_tune = {{ pretrained_lr_scale = 0.5, freeze_recurrent_epochs = 1 }}\n"
        ),
    );
    assert!(
        config.contains("pretrain"),
        "the smoke config changed shape"
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, config).unwrap();
    path
}

/// The language-model cache folders under `data`.
fn lm_folders(data: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for corpus in std::fs::read_dir(data).unwrap() {
        let corpus = corpus.unwrap().path();
        if corpus.is_dir() {
            for entry in std::fs::read_dir(&corpus).unwrap() {
                let path = entry.unwrap().path();
                // A cache folder, not its lock file beside it.
                if path.is_dir()
                    && path
                        .file_name()
                        .unwrap()
                        .to_string_lossy()
                        .starts_with("lm2-")
                {
                    found.push(path);
                }
            }
        }
    }
    found.sort();
    found
}

/// Each pretraining epoch's loss and perplexity as the run's `pretrain.json` records them.
fn pretrain_epochs(run: &Path) -> Vec<(f64, f64)> {
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("pretrain.json")).unwrap()).unwrap();
    record["epochs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["train_loss"].as_f64().unwrap(),
                e["held_out_perplexity"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn pretraining_is_cached_resumed_and_refused_on_mismatch() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let settings = "window = 20, batch_size = 16, samples = 32, max_texts = 300";
    let one = pretrain_config(tmp.path(), "one", &format!("epochs = 1, {settings}"));
    let two = pretrain_config(tmp.path(), "two", &format!("epochs = 2, {settings}"));
    let experiment = |config: &Path, out: &str| {
        let out = tmp.path().join(out);
        let output = run(command(&data)
            .arg("experiment")
            .arg(config)
            .args(["--only", "lstm", "--out"])
            .arg(&out));
        (
            out.join("smoke/lstm"),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };

    // Trained once, with its epoch in the cache, its table and curve in the report.
    let (first, log) = experiment(&one, "a");
    assert!(log.contains("epochs 1 to 1"), "{log}");
    let folders = lm_folders(&data);
    assert_eq!(folders.len(), 1, "{folders:?}");
    let folder = &folders[0];
    for file in ["epoch-1.bpk", "optimizer-1.bpk", "record.json"] {
        assert!(folder.join(file).is_file(), "{file} missing");
    }
    assert_eq!(pretrain_epochs(&first).len(), 1);
    let report = std::fs::read_to_string(first.join("report.html")).unwrap();
    assert!(
        report.contains("Language-model pretraining") && report.contains("held-out perplexity")
    );
    assert!(first.join("pretrain_perplexity.svg").is_file());
    let config = std::fs::read_to_string(first.join("config.toml")).unwrap();
    assert!(config.contains("freeze_recurrent_epochs = 1"), "{config}");
    // Where the time went: the data, then the run (its start includes the pretraining).
    let timings = std::fs::read_to_string(tmp.path().join("a/smoke/timings.csv")).unwrap();
    let rows: Vec<&str> = timings.lines().collect();
    assert_eq!(
        rows[0],
        "step,start_seconds,training_seconds,stacking_seconds,report_seconds"
    );
    assert!(
        rows[1].starts_with("loading data,") && rows[2].starts_with("lstm,"),
        "{timings}"
    );
    assert!(log.contains("where the time went"), "{log}");

    // The same settings again: from the cache, the same classifier.
    let (again, log) = experiment(&one, "b");
    assert!(log.contains("1 epochs from the cache"), "{log}");
    assert!(!log.contains("pretraining language model"), "{log}");
    assert_eq!(
        std::fs::read(first.join("predictions.csv")).unwrap(),
        std::fs::read(again.join("predictions.csv")).unwrap()
    );

    // One more epoch resumes after the cached one, in the same folder.
    let (resumed, log) = experiment(&two, "c");
    assert!(log.contains("resuming after epoch 1 of 2"), "{log}");
    assert!(log.contains("epochs 2 to 2"), "{log}");
    assert_eq!(lm_folders(&data), folders);
    assert!(folder.join("epoch-2.bpk").is_file() && folder.join("optimizer-2.bpk").is_file());
    assert!(!folder.join("optimizer-1.bpk").exists());
    let resumed_epochs = pretrain_epochs(&resumed);
    assert_eq!(resumed_epochs[0], pretrain_epochs(&first)[0]);

    // A record made with other settings is refused: both epochs are trained again, from
    // scratch, and give what the resumed run gave.
    let record_path = folder.join("record.json");
    let record = std::fs::read_to_string(&record_path).unwrap();
    std::fs::write(
        &record_path,
        record.replacen("\"window\\\":20", "\"window\\\":21", 1),
    )
    .unwrap();
    assert_ne!(std::fs::read_to_string(&record_path).unwrap(), record);
    let (retrained, log) = experiment(&two, "d");
    assert!(
        log.contains("other settings") && log.contains("epochs 1 to 2"),
        "{log}"
    );
    assert_eq!(pretrain_epochs(&retrained), resumed_epochs);

    // Another setting, another folder.
    let other = pretrain_config(
        tmp.path(),
        "other",
        &format!("epochs = 1, {settings}, learning_rate = 0.01"),
    );
    let (_, log) = experiment(&other, "e");
    assert!(log.contains("epochs 1 to 1"), "{log}");
    assert_eq!(lm_folders(&data).len(), 2);

    // A bidirectional GRU is pretrained both ways, in its own folder, and starts the run.
    let bidirectional = pretrain_config(tmp.path(), "bi", &format!("epochs = 1, {settings}"));
    let text = std::fs::read_to_string(&bidirectional).unwrap().replace(
        "pretrain = {",
        "model = { architecture = \"gru\", bidirectional = true, readout = \"max\" }\npretrain = {",
    );
    std::fs::write(&bidirectional, text).unwrap();
    let (run_dir, log) = experiment(&bidirectional, "f");
    assert!(log.contains("epochs 1 to 1"), "{log}");
    assert_eq!(lm_folders(&data).len(), 3);
    let epochs = pretrain_epochs(&run_dir);
    assert!(epochs[0].1.is_finite() && epochs[0].1 > 1.0, "{epochs:?}");
    let model = std::fs::read_to_string(run_dir.join("model.json")).unwrap();
    assert!(model.contains("\"bidirectional\": true"), "{model}");
}

/// The smoke experiment's `lstm` run with `extra` keys added to it.
fn smoke_with(dir: &Path, name: &str, extra: &str) -> PathBuf {
    let smoke = std::fs::read_to_string(repo().join("configs/smoke.toml")).unwrap();
    let config = smoke.replace(
        "[[runs]]\nname = \"lstm\"\n",
        &format!("[[runs]]\nname = \"lstm\"\n{extra}\n"),
    );
    assert!(config.contains(extra), "the smoke config changed shape");
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, config).unwrap();
    path
}

#[test]
fn an_ngram_stack_gives_the_test_verdicts_and_refuses_more_than_two_classes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let experiment = |config: &Path| {
        command(&data)
            .arg("experiment")
            .arg(config)
            .args(["--only", "lstm", "--out"])
            .arg(tmp.path().join("runs"))
            .output()
            .unwrap()
    };
    let stacked = smoke_with(tmp.path(), "stacked", "ngram_stack = { max_n = 2 }");
    let output = experiment(&stacked);
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{log}");
    assert!(
        log.contains("stacked with") && log.contains("n-gram stack"),
        "{log}"
    );

    let folder = tmp.path().join("runs/smoke/lstm");
    let json = |file: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(folder.join(file)).unwrap()).unwrap()
    };
    let record = json("stacking.json");
    let metrics = json("metrics.json");
    let stacked_accuracy = record["test_accuracy"]["stacked"].as_f64().unwrap();
    assert_eq!(metrics["test_accuracy"].as_f64().unwrap(), stacked_accuracy);
    assert!(
        record["ngram_features"].as_u64().unwrap() > 1000,
        "{record}"
    );
    for part in ["network", "ngram", "stacked"] {
        let accuracy = record["validation_accuracy"][part].as_f64().unwrap();
        assert!(accuracy > 0.5 && accuracy <= 1.0, "{part}: {record}");
    }
    // predictions.csv holds the stack's verdicts: they give its accuracy.
    let predictions = std::fs::read_to_string(folder.join("predictions.csv")).unwrap();
    let rows: Vec<(u32, u32)> = predictions
        .lines()
        .skip(1)
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            (fields[1].parse().unwrap(), fields[3].parse().unwrap())
        })
        .collect();
    let right = rows
        .iter()
        .filter(|(truth, verdict)| truth == verdict)
        .count();
    assert_eq!(right as f64 / rows.len() as f64, stacked_accuracy);
    // Its time has its own column (tenths of a second: on these few reviews often 0.0).
    let timings = std::fs::read_to_string(tmp.path().join("runs/smoke/timings.csv")).unwrap();
    let lstm = timings.lines().find(|l| l.starts_with("lstm,")).unwrap();
    let seconds: Vec<f64> = lstm
        .split(',')
        .skip(1)
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(seconds.len(), 4, "{timings}");
    assert!(seconds[2] >= 0.0 && seconds[2] < 60.0, "{timings}");

    let report = std::fs::read_to_string(folder.join("report.html")).unwrap();
    assert!(report.contains("Stacked with an n-gram model"));

    // The same run without the stack: its record goes with it.
    let plain = smoke_with(tmp.path(), "plain", "");
    assert!(experiment(&plain).status.success());
    assert!(!folder.join("stacking.json").exists());
    let report = std::fs::read_to_string(folder.join("report.html")).unwrap();
    assert!(!report.contains("Stacked with an n-gram model"));

    // Rating bands make four classes: refused before any training, naming the key.
    let bands = smoke_with(
        tmp.path(),
        "bands",
        "ngram_stack = {}\ndata.rating_bands = [[1, 2], [3, 4], [7, 8], [9, 10]]",
    );
    let output = experiment(&bands);
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        log.contains("key `ngram_stack`") && log.contains("4 classes"),
        "{log}"
    );
    assert!(!log.contains("epoch 1"), "{log}");
}

/// Every file under `dir`, with its bytes, in name order.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                files.push((path, bytes));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn a_finished_run_edited_into_a_refused_one_is_left_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let (run_dir, data) = trained_model(tmp.path());
    let experiment_dir = run_dir.parent().unwrap().to_path_buf();
    let before = snapshot(&experiment_dir);
    // The lstm run now asks for a stack on four classes; another run comes before it.
    let smoke = std::fs::read_to_string(repo().join("configs/smoke.toml")).unwrap();
    let edited = smoke.replace(
        "[[runs]]\nname = \"lstm\"\n",
        "[[runs]]\nname = \"first\"\n\n[[runs]]\nname = \"lstm\"\nngram_stack = {}\n\
         data.rating_bands = [[1, 2], [3, 4], [7, 8], [9, 10]]\n",
    );
    let config = tmp.path().join("smoke.toml");
    std::fs::write(&config, edited).unwrap();
    let out = command(&data)
        .arg("experiment")
        .arg(&config)
        .arg("--out")
        .arg(tmp.path().join("runs"))
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains("key `ngram_stack`") && log.contains("4 classes"),
        "{log}"
    );
    assert!(!log.contains("epoch 1"), "nothing trains: {log}");
    assert!(
        snapshot(&experiment_dir) == before,
        "the finished run's folder changed"
    );
}
