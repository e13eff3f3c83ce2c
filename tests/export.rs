//! `cargo xtask export`: the folder other frameworks load. Small models of every recurrent
//! kind, readout, padding and tokenizer setting (and a stacked one) are trained, exported,
//! and read back by `examples/pytorch/numpy_predict.py` — numpy, safetensors and the Hugging
//! Face tokenizer, no deep-learning framework — which must give our ids and our f32
//! probabilities. The Python side needs `IMDB_PYTHON` (a python with those packages; `.ci/run`
//! makes one and sets `IMDB_REQUIRE_PYTHON=1`, which makes its absence a failure).

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{command, repo, run};

/// The runs exported: every cell, both paddings, masked or not, each readout, two layers,
/// both directions, HTML stripped, three classes, a stack.
const RUNS: &str = r#"
[[runs]]
name = "lstm"

[[runs]]
name = "gru-bi-max"
model = { architecture = "gru", bidirectional = true, readout = "max", layers = 2 }

[[runs]]
name = "rnn-mean-pre"
model = { architecture = "rnn", readout = "mean" }
data = { padding = "pre", truncating = "pre", strip_html = true }

[[runs]]
name = "lstm-unmasked-pre"
model = { mask_padding = false, bidirectional = true }
data = { padding = "pre" }

[[runs]]
name = "bands"
data = { rating_bands = [[1, 2], [3, 4], [7, 10]] }

[[runs]]
name = "stacked"
model = { architecture = "gru", bidirectional = true, readout = "max" }
ngram_stack = { max_n = 3, hash_bits = 16 }
"#;

/// Texts that exercise the tokenizer and truncation.
fn texts() -> Vec<String> {
    let mut texts: Vec<String> = [
        "A moving, beautifully shot film.<br /><br />The END.",
        "It’s awful — don’t watch it; rock 'n' roll's dead''s",
        "Película ÉPICA 😀 naïve Straße ΑΘΗΝΑ 東京 10/10 $4.95",
        "<i>great</i> <a href=\"x.html\">film</a> 3 < 4 <br>x<BR/>y",
        "",
        "!!! ... <br />",
    ]
    .map(String::from)
    .to_vec();
    // Longer than any maxlen here, so both truncations matter.
    let long: Vec<&str> = ["bad", "good", "the", "film", "great", "dull", "plot"]
        .iter()
        .cycle()
        .take(150)
        .copied()
        .collect();
    texts.push(long.join(" "));
    texts.push(format!(
        "{} but in the end it was wonderful",
        long.join(" ")
    ));
    texts
}

fn python() -> Option<PathBuf> {
    match std::env::var_os("IMDB_PYTHON") {
        Some(path) => Some(PathBuf::from(path)),
        None => {
            assert!(
                std::env::var("IMDB_REQUIRE_PYTHON").as_deref() != Ok("1"),
                "IMDB_REQUIRE_PYTHON=1 but IMDB_PYTHON names no python (one with numpy, \
                 safetensors and tokenizers, as .ci/run makes)"
            );
            None
        }
    }
}

fn jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn exported_models_are_read_by_numpy_and_tokenizers_as_we_read_them() {
    let tmp = tempfile::tempdir().unwrap();
    let smoke = std::fs::read_to_string(repo().join("configs/smoke.toml")).unwrap();
    let head = &smoke[..smoke.find("[[runs]]").unwrap()];
    let config = tmp.path().join("export.toml");
    std::fs::write(
        &config,
        format!("{}{RUNS}", head.replace("\"smoke\"", "\"export\"")),
    )
    .unwrap();
    let data = tmp.path().join("data");
    run(command(&data)
        .arg("experiment")
        .arg(&config)
        .arg("--out")
        .arg(tmp.path().join("runs")));
    let input = tmp.path().join("texts.jsonl");
    let lines: String = texts()
        .iter()
        .map(|t| serde_json::json!({ "text": t }).to_string() + "\n")
        .collect();
    std::fs::write(&input, lines).unwrap();
    let python = python();
    if python.is_none() {
        eprintln!("IMDB_PYTHON is not set: the numpy and tokenizers side of this test skipped");
    }
    for name in [
        "lstm",
        "gru-bi-max",
        "rnn-mean-pre",
        "lstm-unmasked-pre",
        "bands",
        "stacked",
    ] {
        let run_dir = tmp.path().join("runs/export").join(name);
        let exported = tmp.path().join("exported").join(name);
        run(command(&data)
            .args(["export", "--model"])
            .arg(&run_dir)
            .arg("--out")
            .arg(&exported));
        for file in [
            "model.safetensors",
            "config.json",
            "tokenizer.json",
            "vocab.json",
            "README.md",
        ] {
            assert!(exported.join(file).is_file(), "{name}: {file}");
        }
        let card = std::fs::read_to_string(exported.join("README.md")).unwrap();
        for needle in [
            "## Data",
            "Maas et al.",
            "## Training",
            "## Test metrics",
            "## Intended use",
        ] {
            assert!(
                card.contains(needle),
                "{name}: {needle} missing from the card:\n{card}"
            );
        }
        let ours = tmp.path().join(format!("{name}-ours.jsonl"));
        run(command(&data)
            .env("IMDB_F32_INFERENCE", "1")
            .args(["predict", "--model"])
            .arg(&run_dir)
            .arg("--input")
            .arg(&input)
            .arg("--output")
            .arg(&ours));
        let Some(python) = &python else { continue };
        let theirs = tmp.path().join(format!("{name}-theirs.jsonl"));
        let status = Command::new(python)
            .arg(repo().join("examples/pytorch/numpy_predict.py"))
            .arg(&exported)
            .arg("--input")
            .arg(&input)
            .arg("--output")
            .arg(&theirs)
            .arg("--ids")
            .status()
            .unwrap();
        assert!(status.success(), "{name}: numpy_predict.py failed");
        let saved = imdb_train::SavedModel::load(&run_dir, &burn::tensor::Device::flex()).unwrap();
        let (ours, theirs) = (jsonl(&ours), jsonl(&theirs));
        assert_eq!(ours.len(), theirs.len());
        let mut largest = 0.0f64;
        for ((text, a), b) in texts().iter().zip(&ours).zip(&theirs) {
            let ids: Vec<u64> = b["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect();
            let expected: Vec<u64> = saved.encode_ids(text).iter().map(|&i| i.into()).collect();
            assert_eq!(ids, expected, "{name}: the tokenizer's ids of {text:?}");
            assert_eq!(a["label"], b["label"], "{name}: {text:?}");
            for class in saved.classes() {
                let (p, q) = (
                    a["probabilities"][class].as_f64().unwrap(),
                    b["probabilities"][class].as_f64().unwrap(),
                );
                largest = largest.max((p - q).abs());
            }
        }
        eprintln!("{name}: largest probability difference to numpy {largest:.2e}");
        assert!(largest <= 1e-5, "{name}: {largest}");
    }
}
