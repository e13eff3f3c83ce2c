//! End-to-end tests of what leaves an experiment: the saved model is the whole predictor
//! (stack included) and `evaluate` reproduces the run's results from it; `evaluate --data`
//! and `predict --input/--output` work on the user's files with the model's own vocabulary;
//! `export` writes a folder other frameworks read.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::{command, repo, run};

/// The smoke experiment's `lstm` run with `extra` keys, trained into `tmp/runs/<name>`: its
/// folder and the data folder.
fn smoke_run(tmp: &Path, name: &str, extra: &str) -> (PathBuf, PathBuf) {
    let smoke = std::fs::read_to_string(repo().join("configs/smoke.toml")).unwrap();
    let config = smoke
        .replace("name = \"smoke\"", &format!("name = \"{name}\""))
        .replace(
            "[[runs]]\nname = \"lstm\"\n",
            &format!("[[runs]]\nname = \"lstm\"\n{extra}\n"),
        );
    assert!(config.contains(extra), "the smoke config changed shape");
    let path = tmp.join(format!("{name}.toml"));
    std::fs::write(&path, config).unwrap();
    let data = tmp.join("data");
    run(command(&data)
        .arg("experiment")
        .arg(&path)
        .args(["--only", "lstm", "--out"])
        .arg(tmp.join("runs")));
    (tmp.join("runs").join(name).join("lstm"), data)
}

fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn fails(cmd: &mut Command) -> String {
    let out: Output = cmd.output().unwrap();
    assert!(
        !out.status.success(),
        "should have failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `evaluate --model RUN --out DIR` with nothing else gives the run's own `metrics.json`
/// numbers and `predictions.csv`, byte for byte.
fn check_evaluate_reproduces(run_dir: &Path, data: &Path, tmp: &Path) {
    let out_dir = tmp.join(format!(
        "evaluated-{}",
        run_dir
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
    ));
    let out = run(command(data)
        .args(["evaluate", "--model"])
        .arg(run_dir)
        .arg("--out")
        .arg(&out_dir));
    let printed = String::from_utf8(out.stdout).unwrap();
    let reported = json(&run_dir.join("metrics.json"));
    let evaluated = json(&out_dir.join("metrics.json"));
    for (ours, theirs) in [
        ("accuracy", "test_accuracy"),
        ("loss", "test_loss"),
        ("auc", "test_auc"),
        ("f1", "test_f1"),
    ] {
        assert_eq!(
            evaluated["metrics"][ours],
            reported[theirs],
            "{ours} of {}: {printed}",
            run_dir.display()
        );
    }
    assert_eq!(
        std::fs::read(out_dir.join("predictions.csv")).unwrap(),
        std::fs::read(run_dir.join("predictions.csv")).unwrap(),
        "predictions.csv of {}",
        run_dir.display()
    );
    assert!(printed.contains("Confusion matrix"), "{printed}");
    assert!(printed.contains("weighted avg"), "{printed}");
}

#[test]
fn saved_stacked_and_three_class_models_give_what_their_runs_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let (stacked, data) = smoke_run(
        tmp.path(),
        "stacked",
        "ngram_stack = { max_n = 2, hash_bits = 18 }",
    );
    // The stack is saved with the network.
    let manifest = json(&stacked.join("model.json"));
    assert_eq!(manifest["format"], 3);
    assert_eq!(manifest["stack"]["hash_bits"], 18, "{manifest}");
    assert!(stacked.join("ngram.safetensors").is_file());
    // The run's test accuracy is the stack's, and the saved model gives it back.
    let record = json(&stacked.join("stacking.json"));
    let metrics = json(&stacked.join("metrics.json"));
    assert_eq!(metrics["test_accuracy"], record["test_accuracy"]["stacked"]);
    assert_ne!(
        record["test_accuracy"]["stacked"], record["test_accuracy"]["network"],
        "the stack should change some verdict: {record}"
    );
    check_evaluate_reproduces(&stacked, &data, tmp.path());

    let (three, data) = smoke_run(
        tmp.path(),
        "bands",
        "data.rating_bands = [[1, 2], [3, 4], [7, 10]]",
    );
    assert_eq!(
        json(&three.join("model.json"))["classes"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    check_evaluate_reproduces(&three, &data, tmp.path());
}

/// A stacked verdict's word weights are the falls of the stacked probability: deleting the
/// heaviest word changes `predict`'s probability by its weight.
#[test]
fn a_stacked_verdict_is_explained_by_the_stacked_probability() {
    let tmp = tempfile::tempdir().unwrap();
    let (stacked, data) = smoke_run(tmp.path(), "stacked", "ngram_stack = { hash_bits = 16 }");
    let text = "a wonderful and moving film with a great story although the ending was dull";
    let predict = |text: &str, explain: bool| -> serde_json::Value {
        let mut cmd = command(&data);
        cmd.env("IMDB_F32_INFERENCE", "1")
            .args(["predict", "--format", "json", "--model"])
            .arg(&stacked);
        if explain {
            cmd.arg("--explain");
        }
        let out = run(cmd.arg(text));
        serde_json::from_str(String::from_utf8(out.stdout).unwrap().trim()).unwrap()
    };
    let explained = predict(text, true);
    let tokens = explained["tokens"].as_array().unwrap();
    let words: Vec<&str> = tokens
        .iter()
        .map(|t| t["token"].as_str().unwrap())
        .collect();
    let weights: Vec<f64> = tokens
        .iter()
        .map(|t| t["weight"].as_f64().unwrap())
        .collect();
    let heaviest = (0..weights.len())
        .max_by(|&a, &b| weights[a].abs().total_cmp(&weights[b].abs()))
        .unwrap();
    assert!(weights[heaviest].abs() > 1e-4, "{explained}");
    let without: Vec<&str> = words
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != heaviest)
        .map(|(_, w)| *w)
        .collect();
    let label = explained["label"].as_str().unwrap();
    let probability = |v: &serde_json::Value| v["probabilities"][label].as_f64().unwrap();
    let whole = probability(&predict(text, false));
    let fall = whole - probability(&predict(&without.join(" "), false));
    assert!(
        (fall - weights[heaviest]).abs() < 1e-5,
        "deleting {:?}: fall {fall}, weight {}",
        words[heaviest],
        weights[heaviest]
    );
    assert!((whole - probability(&explained)).abs() < 1e-5);
}

#[test]
fn an_older_stacked_folder_loads_as_its_network_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let (stacked, data) = smoke_run(tmp.path(), "stacked", "ngram_stack = { hash_bits = 16 }");
    // What the previous version wrote: format 2, no stack, no n-gram file.
    let mut manifest = json(&stacked.join("model.json"));
    manifest["format"] = 2.into();
    manifest.as_object_mut().unwrap().remove("stack");
    std::fs::write(stacked.join("model.json"), manifest.to_string()).unwrap();
    std::fs::remove_file(stacked.join("ngram.safetensors")).unwrap();
    let out = run(command(&data).args(["evaluate", "--model"]).arg(&stacked));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("loads as the network alone") && log.contains("again"),
        "{log}"
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let network = json(&stacked.join("stacking.json"))["test_accuracy"]["network"]
        .as_f64()
        .unwrap();
    assert!(
        text.contains(&format!("- accuracy: {network:.4}")),
        "the network alone: {network}: {text}"
    );
    // A format this version does not know is refused, with what to do.
    manifest["format"] = 1.into();
    std::fs::write(stacked.join("model.json"), manifest.to_string()).unwrap();
    let refused = fails(command(&data).args(["evaluate", "--model"]).arg(&stacked));
    assert!(refused.contains("train it again"), "{refused}");
}
