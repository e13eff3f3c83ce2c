//! End-to-end tests of `cargo xtask` on the user's own data: CSV, TSV, JSON Lines and folder
//! sources, three classes, `eda`, `predict` and `evaluate` on them, and every kind of bad input
//! refused with a message naming the file (and line), with nothing written.
//!
//! Every input is a small file the test writes; nothing reaches the network or the IMDB corpus.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

mod common;
use common::{run, xtask};

/// A command run in `dir` with a private data folder.
fn command(dir: &Path) -> Command {
    let mut cmd = Command::new(xtask());
    cmd.current_dir(dir)
        .env("IMDB_DATA_DIR", dir.join("cache"))
        .env_remove("IMDB_ARCHIVE")
        .stdin(Stdio::null());
    cmd
}

/// Runs a command that must fail; returns its standard error.
fn fails(cmd: &mut Command) -> String {
    let out = cmd.output().expect("xtask runs");
    assert!(
        !out.status.success(),
        "xtask should have failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const CLASSES: [&str; 3] = ["bad", "fine", "good"];
const WORDS: [[&str; 3]; 3] = [
    ["awful", "dreadful", "boring"],
    ["decent", "okay", "average"],
    ["superb", "brilliant", "moving"],
];
const FILLER: [&str; 8] = [
    "the", "film", "plot", "actor", "scene", "story", "was", "quite",
];

/// `n` texts cycling through the classes: filler words and two words of their class.
fn examples(n: usize, offset: usize) -> Vec<(String, &'static str)> {
    (0..n)
        .map(|i| {
            let k = (i + offset) % 3;
            let j = i * 7 + offset;
            let text = format!(
                "{} {} {} {}, {} {}",
                FILLER[j % 8],
                FILLER[(j / 8) % 8],
                WORDS[k][j % 3],
                FILLER[(j + 3) % 8],
                WORDS[k][(j + 1) % 3],
                FILLER[(j + 5) % 8]
            );
            (text, CLASSES[k])
        })
        .collect()
}

fn csv(rows: &[(String, &str)], delimiter: char) -> String {
    let mut out = format!("id{delimiter}review{delimiter}rating\n");
    for (i, (text, label)) in rows.iter().enumerate() {
        let text = if delimiter == ',' {
            format!("\"{text}\"")
        } else {
            text.replace(delimiter, " ")
        };
        out += &format!("{i}{delimiter}{text}{delimiter}{label}\n");
    }
    out
}

fn write(path: &Path, contents: impl AsRef<[u8]>) {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(path, contents).unwrap();
}

/// An experiment config over `data` (a `[defaults.data]` body) with a tiny, quick model.
fn config(dir: &Path, name: &str, data: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    write(
        &path,
        format!(
            "name = \"{name}\"\n[defaults]\nseed = 3\n[defaults.data]\nnum_words = 200\n\
             maxlen = 12\nval_size = 30\n{data}\n[defaults.model]\nembed_dim = 16\nunits = 16\n\
             [defaults.train]\nepochs = 6\nbatch_size = 16\nlearning_rate = 0.02\n\
             [[runs]]\nname = \"lstm\"\n"
        ),
    );
    path
}

fn experiment(dir: &Path, config: &Path) -> Output {
    run(command(dir)
        .arg("experiment")
        .arg(config)
        .arg("--out")
        .arg(dir.join("runs")))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn a_three_class_csv_trains_reports_predicts_and_evaluates() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // A byte-order mark and CRLF line ends, as spreadsheet exports write them.
    let body = csv(&examples(240, 0), ',').replace('\n', "\r\n");
    write(&dir.join("data/reviews.csv"), format!("\u{feff}{body}"));
    let cfg = config(
        dir,
        "three",
        "source = \"csv\"\ntrain = \"data/reviews.csv\"\ntest_fraction = 0.25\n\
         text_field = \"review\"\nlabel_field = \"rating\"",
    );
    experiment(dir, &cfg);
    let run_dir = dir.join("runs/three/lstm");

    let metrics: serde_json::Value =
        serde_json::from_str(&read(&run_dir.join("metrics.json"))).unwrap();
    let accuracy = metrics["test_accuracy"].as_f64().unwrap();
    assert!(accuracy > 0.9, "a separable three-class task: {metrics}");
    assert!(metrics["test_f1"].as_f64().unwrap() > 0.9, "{metrics}");
    let summary = read(&dir.join("runs/three/summary.csv"));
    assert!(summary.lines().next().unwrap().contains("test_accuracy"));

    let report = read(&run_dir.join("classification_report.txt"));
    for class in CLASSES {
        assert!(
            report
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{class} "))),
            "{report}"
        );
    }
    assert!(report.contains("macro avg") && report.contains("weighted avg"));
    let predictions = read(&run_dir.join("predictions.csv"));
    assert!(
        predictions.starts_with("index,true_label,predicted_label,p_bad,p_fine,p_good\n"),
        "{predictions}"
    );
    assert_eq!(predictions.lines().count(), 1 + 60);
    let manifest: serde_json::Value =
        serde_json::from_str(&read(&run_dir.join("model.json"))).unwrap();
    assert_eq!(manifest["classes"], serde_json::json!(CLASSES));
    assert!(read(&run_dir.join("confusion_matrix.svg")).contains("good (2)"));
    let page = read(&run_dir.join("report.html"));
    assert!(page.contains("Most confident mistakes on true class fine"));

    let out = run(command(dir)
        .args(["predict", "--format", "json", "--model"])
        .arg(&run_dir)
        .args(["the plot was superb and brilliant", "awful and dreadful"]));
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["label"], "good", "{lines:?}");
    assert_eq!(lines[1]["label"], "bad", "{lines:?}");
    let sum: f64 = CLASSES
        .iter()
        .map(|c| lines[0]["probabilities"][c].as_f64().unwrap())
        .sum();
    assert!((sum - 1.0).abs() < 1e-5, "{lines:?}");
    let out = run(command(dir)
        .args(["predict", "--model"])
        .arg(&run_dir)
        .arg("decent, okay, average"));
    assert!(
        String::from_utf8(out.stdout).unwrap().starts_with("fine\t"),
        "text output starts with the class name"
    );

    // `evaluate` finds the run's data through its config.toml: the same held-out test set.
    let out = run(command(dir).args(["evaluate", "--model"]).arg(&run_dir));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("(60 texts"), "{text}");
    assert!(
        text.contains(&format!("- accuracy: {accuracy:.4}")),
        "{text}"
    );
    assert!(text.contains("good "), "{text}");

    // `eda` on the same source: class counts by name.
    let out = run(command(dir)
        .args(["eda", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(dir.join("eda")));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Training texts: 180"), "{text}");
    assert!(text.contains("Classes (train): bad: "), "{text}");
    assert!(dir.join("eda/class_distribution.png").is_file());
    assert!(dir.join("eda/length_histogram.png").is_file());
}

#[test]
fn jsonl_tsv_and_folders_sources_train() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // JSON Lines with integer labels and a test file; two classes.
    let two = |rows: Vec<(String, &str)>| -> String {
        rows.into_iter()
            .filter(|(_, c)| *c != "fine")
            .map(|(t, c)| {
                serde_json::json!({"text": t, "label": u32::from(c == "good")}).to_string() + "\n"
            })
            .collect()
    };
    write(&dir.join("train.jsonl"), two(examples(240, 0)));
    write(&dir.join("test.jsonl"), two(examples(60, 1)));
    let cfg = config(
        dir,
        "jsonl",
        "source = \"jsonl\"\ntrain = \"train.jsonl\"\ntest = \"test.jsonl\"",
    );
    experiment(dir, &cfg);
    let manifest = read(&dir.join("runs/jsonl/lstm/model.json"));
    assert!(
        manifest.contains("\"0\",") && manifest.contains("\"1\""),
        "{manifest}"
    );
    let predictions = read(&dir.join("runs/jsonl/lstm/predictions.csv"));
    assert!(predictions.starts_with("index,true_label,probability,predicted_label\n"));
    assert_eq!(predictions.lines().count(), 1 + 40);

    // TSV by its extension, with a fixed class order.
    write(&dir.join("t.tsv"), csv(&examples(180, 0), '\t'));
    let cfg = config(
        dir,
        "tsv",
        "source = \"csv\"\ntrain = \"t.tsv\"\ntest_fraction = 0.2\ntext_field = \"review\"\n\
         label_field = \"rating\"\nclasses = [\"good\", \"fine\", \"bad\"]",
    );
    experiment(dir, &cfg);
    let report = read(&dir.join("runs/tsv/lstm/classification_report.txt"));
    let order: Vec<&str> = report
        .lines()
        .skip(2)
        .take(3)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(order, ["good", "fine", "bad"], "{report}");

    // A folder per class, for training and for testing.
    for (split, rows) in [("train", examples(150, 0)), ("test", examples(30, 2))] {
        for (i, (text, class)) in rows.iter().enumerate() {
            write(&dir.join(format!("folders/{split}/{class}/{i}.txt")), text);
        }
    }
    let cfg = config(
        dir,
        "folders",
        "source = \"folders\"\ntrain = \"folders/train\"\ntest = \"folders/test\"",
    );
    experiment(dir, &cfg);
    let metrics: serde_json::Value =
        serde_json::from_str(&read(&dir.join("runs/folders/lstm/metrics.json"))).unwrap();
    assert!(
        metrics["test_accuracy"].as_f64().unwrap() > 0.8,
        "{metrics}"
    );
}

/// Runs the experiment of a CSV config whose training file is `train` (and test file
/// `test`, if any); returns its error and checks that nothing was written.
fn refused(dir: &Path, name: &str, train: &[u8], test: Option<&[u8]>, extra: &str) -> String {
    let case = dir.join(name);
    write(&case.join("train.csv"), train);
    let mut data = "source = \"csv\"\ntrain = \"train.csv\"\n".to_string();
    match test {
        Some(test) => {
            write(&case.join("test.csv"), test);
            data += "test = \"test.csv\"\n";
        }
        None => data += "test_fraction = 0.25\n",
    }
    data += extra;
    let cfg = config(&case, name, &data);
    let err = fails(
        command(&case)
            .arg("experiment")
            .arg(&cfg)
            .arg("--out")
            .arg(case.join("runs")),
    );
    assert!(!case.join("runs").exists(), "{name}: something was written");
    err
}

#[test]
fn bad_inputs_are_clear_errors_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let good: String = examples(60, 0)
        .iter()
        .map(|(t, c)| format!("\"{t}\",{c}\n"))
        .collect();
    let table = |body: &str| format!("text,label\n{body}");

    let err = fails(
        command(dir)
            .arg("experiment")
            .arg(config(
                dir,
                "missing",
                "source = \"csv\"\ntrain = \"nope.csv\"\ntest_fraction = 0.2",
            ))
            .arg("--out")
            .arg(dir.join("runs")),
    );
    assert!(
        err.contains("nope.csv") && err.contains("no such file"),
        "{err}"
    );

    let err = refused(dir, "columns", b"body,sentiment\nok,1\n", None, "");
    assert!(
        err.contains("train.csv:1") && err.contains("\"body\", \"sentiment\""),
        "{err}"
    );

    let ragged = table(&format!("{good}\"one\",bad,extra\n"));
    let err = refused(dir, "ragged", ragged.as_bytes(), None, "");
    assert!(
        err.contains("train.csv:62") && err.contains("3 fields"),
        "{err}"
    );

    let mut latin1 = table(&good).into_bytes();
    latin1.extend_from_slice(b"caf\xe9 film,good\n");
    let err = refused(dir, "latin1", &latin1, None, "");
    assert!(
        err.contains("train.csv:62") && err.contains("UTF-8"),
        "{err}"
    );

    let err = refused(dir, "empty", b"", None, "");
    assert!(err.contains("train.csv") && err.contains("empty"), "{err}");

    let one_class = table("\"a film\",good\n\"a scene\",good\n\"a plot\",good\n\"a story\",good\n");
    let err = refused(dir, "one", one_class.as_bytes(), None, "");
    assert!(
        err.contains("train.csv") && err.contains("at least two"),
        "{err}"
    );

    let err = refused(
        dir,
        "outside",
        table(&good).as_bytes(),
        None,
        "classes = [\"bad\", \"good\"]\n",
    );
    assert!(
        err.contains("train.csv:") && err.contains("\"fine\"") && err.contains("classes"),
        "{err}"
    );

    let unknown = table("\"a new film\",superb\n");
    let err = refused(
        dir,
        "unknown",
        table(&good).as_bytes(),
        Some(unknown.as_bytes()),
        "",
    );
    assert!(
        err.contains("test.csv:2") && err.contains("\"superb\"") && err.contains("training"),
        "{err}"
    );

    let err = refused(
        dir,
        "both",
        table(&good).as_bytes(),
        None,
        "test = \"x.csv\"\n",
    );
    assert!(err.contains("test_fraction"), "{err}");
}

/// Reads a `predict --output` CSV: each row's id, label and class probabilities.
fn verdicts_csv(path: &Path) -> Vec<(String, String, Vec<f32>)> {
    let text = read(path);
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "id,label,probability,p_bad,p_fine,p_good",
        "{text}"
    );
    lines
        .map(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            let p = cells[3..].iter().map(|c| c.parse().unwrap()).collect();
            (cells[0].to_string(), cells[1].to_string(), p)
        })
        .collect()
}

/// A three-class model trained on a CSV in `dir`: its run folder.
fn three_class_model(dir: &Path) -> PathBuf {
    write(&dir.join("train.csv"), csv(&examples(240, 0), ','));
    let cfg = config(
        dir,
        "own",
        "source = \"csv\"\ntrain = \"train.csv\"\ntest_fraction = 0.25\n\
         text_field = \"review\"\nlabel_field = \"rating\"",
    );
    experiment(dir, &cfg);
    dir.join("runs/own/lstm")
}

#[test]
fn evaluate_and_predict_read_files_with_the_models_own_vocabulary() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let model = three_class_model(dir);

    // New labelled texts whose own word ranking differs from the model's: the class words
    // of one class are far more frequent here, so ranking these texts would give other ids.
    let new: Vec<(String, &str)> = examples(90, 1)
        .into_iter()
        .map(|(text, class)| {
            let extra = if class == "bad" {
                " awful awful awful"
            } else {
                ""
            };
            (format!("{text}{extra} superb"), class)
        })
        .collect();
    let jsonl: String = new
        .iter()
        .map(|(t, c)| serde_json::json!({"body": t, "stars": c}).to_string() + "\n")
        .collect();
    write(&dir.join("new.jsonl"), &jsonl);
    let evaluated = dir.join("evaluated");
    let out = run(command(dir)
        .args(["evaluate", "--model"])
        .arg(&model)
        .args([
            "--data",
            "new.jsonl",
            "--text-field",
            "body",
            "--label-field",
            "stars",
        ])
        .arg("--out")
        .arg(&evaluated));
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(printed.contains("(90 texts"), "{printed}");
    assert!(printed.contains("Confusion matrix"), "{printed}");
    let metrics: serde_json::Value =
        serde_json::from_str(&read(&evaluated.join("metrics.json"))).unwrap();
    let confusion = read(&evaluated.join("confusion_matrix.csv"));
    assert!(
        confusion.starts_with("true_label,bad,fine,good\n"),
        "{confusion}"
    );

    // Predict the same texts, then score them by hand: the same accuracy, exactly.
    write(&dir.join("new.csv"), {
        let mut body = "key,body\n".to_string();
        for (i, (t, _)) in new.iter().enumerate() {
            body += &format!("k{i},\"{t}\"\n");
        }
        body
    });
    run(command(dir)
        .args(["predict", "--model"])
        .arg(&model)
        .args([
            "--input",
            "new.csv",
            "--text-field",
            "body",
            "--id-field",
            "key",
        ])
        .args(["--output", "verdicts.csv"]));
    let verdicts = verdicts_csv(&dir.join("verdicts.csv"));
    assert_eq!(verdicts.len(), 90);
    assert_eq!(verdicts[7].0, "k7");
    let right = verdicts
        .iter()
        .zip(&new)
        .filter(|((_, label, _), (_, class))| label == class)
        .count();
    assert_eq!(
        metrics["metrics"]["accuracy"].as_f64().unwrap(),
        right as f64 / 90.0,
        "{metrics}"
    );
    // And the same probabilities, row by row.
    let evaluated_rows = read(&evaluated.join("predictions.csv"));
    for (line, (_, _, p)) in evaluated_rows.lines().skip(1).zip(&verdicts) {
        let cells: Vec<f32> = line
            .split(',')
            .skip(3)
            .map(|c| c.parse().unwrap())
            .collect();
        for (a, b) in cells.iter().zip(p) {
            assert!((a - b).abs() < 1e-6, "{line} vs {p:?}");
        }
    }
    // Through a config whose training file is these texts: the same numbers, because the
    // texts are encoded with the model's vocabulary, not ranked anew.
    let other = config(
        dir,
        "other",
        "source = \"jsonl\"\ntrain = \"new.jsonl\"\ntest = \"new.jsonl\"\n\
         text_field = \"body\"\nlabel_field = \"stars\"",
    );
    let out = run(command(dir)
        .args(["evaluate", "--model"])
        .arg(&model)
        .arg("--config")
        .arg(&other));
    let through_config = String::from_utf8(out.stdout).unwrap();
    let metric_lines = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| l.starts_with("- "))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(metric_lines(&through_config), metric_lines(&printed));

    // Refusals: a label the model does not know, a missing field, a folder with no model.
    write(
        &dir.join("unknown.jsonl"),
        "{\"body\": \"superb\", \"stars\": \"good\"}\n{\"body\": \"meh\", \"stars\": \"meh\"}\n",
    );
    let err = fails(
        command(dir)
            .args(["evaluate", "--model"])
            .arg(&model)
            .args([
                "--data",
                "unknown.jsonl",
                "--text-field",
                "body",
                "--label-field",
                "stars",
            ]),
    );
    assert!(
        err.contains("\"meh\"") && err.contains("unknown.jsonl:2") && err.contains("\"fine\""),
        "{err}"
    );
    let err = fails(
        command(dir)
            .args(["evaluate", "--model"])
            .arg(&model)
            .args(["--data", "new.jsonl"]),
    );
    assert!(
        err.contains("no key \"text\"") && err.contains("\"body\""),
        "{err}"
    );
    let err = fails(
        command(dir)
            .args(["evaluate", "--model"])
            .arg(dir)
            .args(["--data", "new.jsonl"]),
    );
    assert!(err.contains("model.json"), "{err}");
    let err = fails(
        command(dir)
            .args(["evaluate", "--model"])
            .arg(&model)
            .args(["--data", "new.txt"]),
    );
    assert!(err.contains("new.txt"), "{err}");
}

#[test]
fn predict_streams_files_in_and_out_and_leaves_nothing_half_written() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let model = three_class_model(dir);
    let predict = |args: &[&str]| {
        let mut cmd = command(dir);
        cmd.args(["predict", "--model"]).arg(&model).args(args);
        cmd
    };

    // Plain text, one review per line, to JSON Lines with every word's weight.
    write(
        &dir.join("reviews.txt"),
        "the plot was superb and brilliant\n\nawful and dreadful\n",
    );
    let out = run(&mut predict(&[
        "--input",
        "reviews.txt",
        "--output",
        "out.jsonl",
        "--explain",
    ]));
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrote out.jsonl"));
    let rows: Vec<serde_json::Value> = read(&dir.join("out.jsonl"))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 3, "an empty line is a text too");
    assert_eq!(
        (rows[0]["id"].as_str(), rows[0]["label"].as_str()),
        (Some("1"), Some("good"))
    );
    assert_eq!(rows[2]["label"], "bad");
    assert_eq!(rows[2]["tokens"][0]["token"], "awful", "{}", rows[2]);

    // A CSV whose texts hold line breaks and commas, its ids carried through.
    write(
        &dir.join("quoted.csv"),
        "key,review\nfirst,\"superb,\nbrilliant\"\nsecond,\"awful\r\nand dreadful\"\n",
    );
    run(&mut predict(&[
        "--input",
        "quoted.csv",
        "--text-field",
        "review",
        "--id-field",
        "key",
        "--output",
        "quoted-out.csv",
    ]));
    let verdicts = verdicts_csv(&dir.join("quoted-out.csv"));
    let got: Vec<(&str, &str)> = verdicts
        .iter()
        .map(|(i, l, _)| (i.as_str(), l.as_str()))
        .collect();
    assert_eq!(got, [("first", "good"), ("second", "bad")]);

    // A malformed row fails naming the file and line, and writes nothing.
    let out_dir = dir.join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let mut rows = "key,review\n".to_string();
    for i in 0..700 {
        rows += &format!("{i},superb film\n");
    }
    rows += "bad,superb,extra\n";
    write(&dir.join("broken.csv"), rows);
    let err = fails(&mut predict(&[
        "--input",
        "broken.csv",
        "--text-field",
        "review",
        "--output",
        "out/verdicts.csv",
    ]));
    assert!(
        err.contains("broken.csv:702") && err.contains("3 fields"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(&out_dir).unwrap().count(),
        0,
        "nothing left behind"
    );
    // Outputs that cannot hold the verdicts are refused before any work.
    let err = fails(&mut predict(&[
        "--input",
        "reviews.txt",
        "--output",
        "out/v.txt",
    ]));
    assert!(err.contains(".csv or .jsonl"), "{err}");
    let err = fails(&mut predict(&[
        "--input",
        "reviews.txt",
        "--output",
        "out/v.csv",
        "--explain",
    ]));
    assert!(err.contains(".jsonl"), "{err}");
    let err = fails(&mut predict(&["--input", "missing.csv"]));
    assert!(
        err.contains("missing.csv") && err.contains("no such file"),
        "{err}"
    );
}
