//! Training a tiny model on a small synthetic corpus: it learns, it is reproducible, it
//! resumes, it stops early, it refuses to diverge silently, and it saves and reloads.

use burn::tensor::Device;
use imdb_data::{EncodedSet, PreparedData};
use imdb_model::{Architecture, ModelConfig};
use imdb_train::{
    EarlyStoppingConfig, FitSpec, SavedModel, Silent, TrainConfig, TrainError, TrainObserver,
    evaluate, fit,
};

mod common;

use common::synthetic as data;

/// A history without its timings, which differ from run to run.
fn metrics_only(h: &imdb_train::History) -> Vec<(imdb_train::Metrics, imdb_train::Metrics)> {
    h.epochs.iter().map(|e| (e.train, e.val)).collect()
}

fn tiny_model() -> ModelConfig {
    ModelConfig {
        embed_dim: 8,
        units: 8,
        ..ModelConfig::default()
    }
}

fn quick(epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 16,
        learning_rate: 0.01,
        ..TrainConfig::default()
    }
}

fn spec<'a>(data: &'a PreparedData, model: &'a ModelConfig, train: &'a TrainConfig) -> FitSpec<'a> {
    FitSpec {
        train_set: &data.train,
        val_set: &data.val,
        num_classes: data.classes.len(),
        num_words: 60,
        model,
        train,
        seed: 11,
        unlabelled: None,
    }
}

#[test]
fn learns_the_synthetic_task_and_is_reproducible() {
    let (data, _, _) = data();
    let device = Device::flex();
    let (model, train) = (tiny_model(), quick(4));
    let a = fit(spec(&data, &model, &train), &device, None, &mut Silent).unwrap();
    let test = evaluate(&a.model, &data.test, 64, true, &device).unwrap();
    assert!(test.metrics.accuracy > 0.8, "test {:?}", test.metrics);
    assert!(test.metrics.auc > 0.85, "test {:?}", test.metrics);
    assert_eq!(test.probabilities.len(), data.test.len());
    let h = &a.history;
    assert!(
        h.epochs
            .iter()
            .all(|e| e.train.is_finite() && e.val.is_finite())
    );
    assert!(h.epochs.last().unwrap().train.loss < h.epochs[0].train.loss);

    let b = fit(spec(&data, &model, &train), &device, None, &mut Silent).unwrap();
    assert_eq!(metrics_only(&a.history), metrics_only(&b.history));
}

#[test]
fn bucketing_changes_speed_not_the_masked_results_of_evaluation() {
    let (data, _, _) = data();
    let device = Device::flex();
    let (model, train) = (tiny_model(), quick(1));
    let out = fit(spec(&data, &model, &train), &device, None, &mut Silent).unwrap();
    let bucketed = evaluate(&out.model, &data.test, 32, true, &device).unwrap();
    let plain = evaluate(&out.model, &data.test, 32, false, &device).unwrap();
    for (a, b) in bucketed
        .probabilities
        .values
        .iter()
        .zip(&plain.probabilities.values)
    {
        assert!((a - b).abs() < 1e-5);
    }
}

/// Stops training when asked at the given (epoch, batch).
struct StopAt {
    epoch: usize,
    current: usize,
}

impl TrainObserver for StopAt {
    fn epoch_start(&mut self, epoch: usize, _: usize, _: usize) {
        self.current = epoch;
    }
    fn should_stop(&mut self) -> bool {
        self.current == self.epoch
    }
}

#[test]
fn an_interrupted_run_resumes_to_the_same_result() {
    let (data, _, _) = data();
    let device = Device::flex();
    let (model, train) = (tiny_model(), quick(3));
    let dir = tempfile::tempdir().unwrap();
    let straight = fit(
        spec(&data, &model, &train),
        &device,
        Some(&dir.path().join("a")),
        &mut Silent,
    )
    .unwrap();

    let ckpt = dir.path().join("b");
    let err = fit(
        spec(&data, &model, &train),
        &device,
        Some(&ckpt),
        &mut StopAt {
            epoch: 3,
            current: 0,
        },
    )
    .unwrap_err();
    assert!(matches!(err, TrainError::Interrupted { epoch: 3 }), "{err}");
    let resumed = fit(
        spec(&data, &model, &train),
        &device,
        Some(&ckpt),
        &mut Silent,
    )
    .unwrap();
    assert_eq!(resumed.resumed_after, Some(2));
    assert_eq!(
        metrics_only(&resumed.history),
        metrics_only(&straight.history)
    );
    assert_eq!(resumed.history.best_epoch, straight.history.best_epoch);
    let (p1, p2) = (
        evaluate(&straight.model, &data.test, 64, true, &device)
            .unwrap()
            .probabilities,
        evaluate(&resumed.model, &data.test, 64, true, &device)
            .unwrap()
            .probabilities,
    );
    assert_eq!(p1, p2);

    // A finished run is not trained again.
    let again = fit(
        spec(&data, &model, &train),
        &device,
        Some(&ckpt),
        &mut Silent,
    )
    .unwrap();
    assert_eq!(again.resumed_after, Some(3));
    assert_eq!(
        metrics_only(&again.history),
        metrics_only(&straight.history)
    );

    // Killed after epoch 3's files were written but before its commit: the files of epoch 3
    // are there (here copied from the straight run, which wrote the same ones), the state still
    // names epoch 2. The resumed run recomputes epoch 3 and ends where the straight one did.
    let torn = dir.path().join("torn");
    let err = fit(
        spec(&data, &model, &train),
        &device,
        Some(&torn),
        &mut StopAt {
            epoch: 3,
            current: 0,
        },
    )
    .unwrap_err();
    assert!(matches!(err, TrainError::Interrupted { epoch: 3 }), "{err}");
    let with_epoch_3 = dir.path().join("with-3");
    fit(
        spec(&data, &model, &train),
        &device,
        Some(&with_epoch_3),
        &mut StopAt {
            epoch: 4,
            current: 0,
        },
    )
    .unwrap();
    for file in ["epoch-3.model.bpk", "epoch-3.optim.bpk"] {
        std::fs::copy(with_epoch_3.join(file), torn.join(file)).unwrap();
    }
    std::fs::write(torn.join(".tmp-half-written"), b"torn").unwrap();
    let after_tear = fit(
        spec(&data, &model, &train),
        &device,
        Some(&torn),
        &mut Silent,
    )
    .unwrap();
    assert_eq!(after_tear.resumed_after, Some(2));
    assert_eq!(
        metrics_only(&after_tear.history),
        metrics_only(&straight.history)
    );
    assert_eq!(
        evaluate(&after_tear.model, &data.test, 64, true, &device)
            .unwrap()
            .probabilities,
        p1
    );

    // Another configuration refuses this checkpoint instead of mixing runs.
    let other = quick(4);
    let err = fit(
        spec(&data, &model, &other),
        &device,
        Some(&ckpt),
        &mut Silent,
    )
    .unwrap_err();
    assert!(err.to_string().contains("other settings"), "{err}");
}

#[test]
fn early_stopping_restores_the_best_epoch() {
    let (data, _, _) = data();
    let device = Device::flex();
    let model = tiny_model();
    // An impossible improvement threshold: only the first epoch counts as best.
    let train = TrainConfig {
        early_stopping: EarlyStoppingConfig {
            patience: 1,
            min_delta: 1e9,
            ..EarlyStoppingConfig::default()
        },
        ..quick(5)
    };
    let out = fit(spec(&data, &model, &train), &device, None, &mut Silent).unwrap();
    assert_eq!(out.history.epochs_run(), 2);
    assert!(out.history.stopped_early);
    assert_eq!(out.history.best_epoch, Some(1));
    let val = evaluate(&out.model, &data.val, 64, true, &device)
        .unwrap()
        .metrics;
    assert!((val.loss - out.history.epochs[0].val.loss).abs() < 1e-6);
}

#[test]
fn divergence_is_an_error_not_garbage() {
    let (data, _, _) = data();
    let model = tiny_model();
    // Steps of 1e38 overflow f32 within a few batches.
    let train = TrainConfig {
        learning_rate: 1e38,
        ..quick(3)
    };
    let err = fit(
        spec(&data, &model, &train),
        &Device::flex(),
        None,
        &mut Silent,
    )
    .unwrap_err();
    assert!(matches!(err, TrainError::NonFiniteLoss { .. }), "{err}");
    assert!(err.to_string().contains("learning_rate"), "{err}");
}

#[test]
fn saved_model_reloads_and_classifies_any_text() {
    let device = Device::flex();
    let (dir, saved) = saved_folder(3);
    assert!(SavedModel::exists(dir.path()));
    let loaded = SavedModel::load(dir.path(), &device).unwrap();
    let long = "wonderful ".repeat(5000);
    let texts = [
        "a wonderful brilliant film",
        "awful boring waste",
        "",
        "😀🎬",
        "película",
        long.as_str(),
    ];
    let a = saved.predict(&texts, 4).unwrap();
    let b = loaded.predict(&texts, 4).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.len(), texts.len());
    assert_eq!(
        (a[0].label.as_str(), a[1].label.as_str()),
        ("positive", "negative")
    );
    assert!(a[0].probabilities[1] > a[1].probabilities[1], "{a:?}");
    assert!(a.iter().all(|p| (0.5..=1.0).contains(&p.probability)));
    assert!(
        a.iter()
            .all(|p| (p.probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-6)
    );

    let err = SavedModel::load(&dir.path().join("nope"), &device)
        .unwrap_err()
        .to_string();
    assert!(err.contains("model.json"), "{err}");
    std::fs::write(dir.path().join("model.bpk"), b"garbage").unwrap();
    let err = SavedModel::load(dir.path(), &device)
        .unwrap_err()
        .to_string();
    assert!(err.contains("model.bpk"), "{err}");
}

#[test]
fn empty_validation_set_is_refused() {
    let (mut data, _, _) = data();
    data.val.labels.clear();
    data.val.sequences.lengths.clear();
    data.val.sequences.ids.clear();
    let (model, train) = (tiny_model(), quick(1));
    let err = fit(
        spec(&data, &model, &train),
        &Device::flex(),
        None,
        &mut Silent,
    )
    .unwrap_err();
    assert!(err.to_string().contains("validation set is empty"), "{err}");
}

/// Trains the tiny model for `epochs` and saves it into a fresh folder.
fn saved_folder(epochs: usize) -> (tempfile::TempDir, SavedModel) {
    let (data, vocab, data_config) = data();
    let (model, train) = (tiny_model(), quick(epochs));
    let out = fit(
        spec(&data, &model, &train),
        &Device::flex(),
        None,
        &mut Silent,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let saved = SavedModel::new(
        out.model,
        data_config.preprocessing(),
        &vocab,
        &data.classes,
    )
    .unwrap();
    saved.save(dir.path()).unwrap();
    (dir, saved)
}

fn load_error(dir: &std::path::Path) -> String {
    SavedModel::load(dir, &Device::flex())
        .unwrap_err()
        .to_string()
}

#[test]
fn a_saved_model_whose_files_disagree_is_refused_naming_the_file() {
    let (dir, _) = saved_folder(1);
    let manifest_path = dir.path().join("model.json");
    let manifest = std::fs::read_to_string(&manifest_path).unwrap();
    let edit = |from: &str, to: &str| {
        assert!(manifest.contains(from), "{manifest}");
        std::fs::write(&manifest_path, manifest.replacen(from, to, 1)).unwrap();
    };

    // Each edit of the manifest, and what the refusal must name.
    let cases: [(&str, &str, &[&str]); 5] = [
        ("\"maxlen\": 40", "\"maxlen\": 0", &["model.json", "maxlen"]),
        (
            "\"num_words\": 60",
            "\"num_words\": 70",
            &["model.bpk", "model.json", "[70, 8]"],
        ),
        (
            "\"negative\",",
            "\"negative\", \"neutral\",",
            &["model.bpk", "model.json", "dense_weight"],
        ),
        ("\"negative\",", "", &["model.json", "1 class"]),
        (
            "\"format\": 3",
            "\"format\": 1",
            &["model.json", "format 1"],
        ),
    ];
    for (from, to, needles) in cases {
        edit(from, to);
        let err = load_error(dir.path());
        for needle in needles {
            assert!(err.contains(needle), "{from} -> {to}: {err}");
        }
    }
    std::fs::write(&manifest_path, &manifest).unwrap();

    // A stacked model whose n-gram file is missing or does not fit its manifest.
    let (stacked_dir, saved) = saved_folder(1);
    let stack = imdb_train::NgramStack {
        ngram: imdb_model::ngram::NgramClassifier::from_weights(2, 8, vec![0.5; 256], -0.25)
            .unwrap(),
        stacking: imdb_train::Stacking {
            network_weight: 0.5,
            other_weight: 1.5,
            bias: 0.1,
        },
    };
    let stacked = saved.with_stack(stack.clone()).unwrap();
    stacked.save(stacked_dir.path()).unwrap();
    let back = SavedModel::load(stacked_dir.path(), &Device::flex()).unwrap();
    assert_eq!(back.stack.as_ref(), Some(&stack));
    let ngram_file = stacked_dir.path().join("ngram.safetensors");
    std::fs::remove_file(&ngram_file).unwrap();
    let err = load_error(stacked_dir.path());
    assert!(
        err.contains("ngram.safetensors") && err.contains("missing"),
        "{err}"
    );
    let stacked_manifest = stacked_dir.path().join("model.json");
    let text = std::fs::read_to_string(&stacked_manifest).unwrap();
    stacked.save(stacked_dir.path()).unwrap();
    std::fs::write(
        &stacked_manifest,
        text.replace("\"hash_bits\": 8", "\"hash_bits\": 9"),
    )
    .unwrap();
    let err = load_error(stacked_dir.path());
    assert!(
        err.contains("256 weights") && err.contains("hash_bits = 9"),
        "{err}"
    );
    // Saved again without the stack, the n-gram file goes with it.
    SavedModel::load(dir.path(), &Device::flex())
        .unwrap()
        .save(stacked_dir.path())
        .unwrap();
    assert!(!ngram_file.exists());

    let vocab_path = dir.path().join("vocab.json");
    let vocab = std::fs::read(&vocab_path).unwrap();
    std::fs::write(&vocab_path, b"not json").unwrap();
    let err = load_error(dir.path());
    assert!(err.contains("vocab.json"), "{err}");
    let many: Vec<String> = (0..100).map(|i| format!("w{i}")).collect();
    std::fs::write(&vocab_path, serde_json::to_string(&many).unwrap()).unwrap();
    let err = load_error(dir.path());
    assert!(
        err.contains("model.json") && err.contains("100 words"),
        "{err}"
    );
    std::fs::remove_file(&vocab_path).unwrap();
    let err = load_error(dir.path());
    assert!(err.contains("vocab.json"), "{err}");
    std::fs::write(&vocab_path, vocab).unwrap();
    SavedModel::load(dir.path(), &Device::flex()).unwrap();

    let bpk = dir.path().join("model.bpk");
    let weights = std::fs::read(&bpk).unwrap();
    std::fs::write(&bpk, &weights[..weights.len() / 2]).unwrap();
    let err = load_error(dir.path());
    assert!(err.contains("model.bpk"), "{err}");
}

/// Three classes from the binary synthetic task: positive texts split by their id's parity
/// into two classes that the words cannot tell apart, and the negative class.
fn three_classes(data: &PreparedData) -> PreparedData {
    let relabel = |set: &EncodedSet| EncodedSet {
        labels: set
            .labels
            .iter()
            .zip(&set.source)
            .map(|(&y, &i)| if y == 0 { 0 } else { 1 + (i % 2) as u32 })
            .collect(),
        ..set.clone()
    };
    PreparedData {
        classes: ["negative", "positive-a", "positive-b"]
            .map(String::from)
            .to_vec(),
        train: relabel(&data.train),
        val: relabel(&data.val),
        test: relabel(&data.test),
    }
}

#[test]
fn three_classes_train_with_a_softmax_and_report_macro_metrics() {
    let (binary, _, _) = data();
    let data = three_classes(&binary);
    let device = Device::flex();
    let (model, train) = (tiny_model(), quick(4));
    let out = fit(spec(&data, &model, &train), &device, None, &mut Silent).unwrap();
    assert_eq!(out.model.outputs(), 3);
    let h = &out.history;
    assert!(h.epochs.last().unwrap().train.loss < h.epochs[0].train.loss);
    // The first loss is near ln 3 (uniform over three classes), not a binary loss.
    assert!((h.epochs[0].train.loss - 3f64.ln()).abs() < 0.4, "{h:?}");
    let test = evaluate(&out.model, &data.test, 64, true, &device).unwrap();
    assert_eq!(test.probabilities.num_classes, 3);
    assert_eq!(test.probabilities.len(), data.test.len());
    // Negatives are told from positives; the two positive halves are a coin toss, so the
    // accuracy is about 2/3 at best and above chance (1/3).
    assert!(test.metrics.accuracy > 0.45, "{:?}", test.metrics);
    assert!(test.metrics.auc > 0.6, "{:?}", test.metrics);
    let predicted: Vec<u32> = test.probabilities.predictions();
    assert!(predicted.contains(&0) && predicted.iter().any(|&p| p > 0));

    // A label outside the classes is refused before training.
    let mut bad = data.clone();
    bad.train.labels[0] = 3;
    let err = fit(spec(&bad, &model, &train), &device, None, &mut Silent).unwrap_err();
    assert!(err.to_string().contains("class id 3"), "{err}");
}

#[test]
fn the_transformers_dropout_depends_on_the_seed_alone_so_it_resumes_exactly() {
    let (data, _, _) = data();
    let device = Device::flex();
    let model = ModelConfig {
        architecture: Architecture::Transformer,
        embed_dim: 8,
        heads: 2,
        ff_dim: 16,
        dropout: 0.3,
        ..ModelConfig::default()
    };
    let train = quick(2);
    let straight = fit(spec(&data, &model, &train), &device, None, &mut Silent).unwrap();
    // Interrupted in its second epoch, then resumed by a fresh call: the second epoch's masks
    // must not depend on what the device's generator drew before.
    let dir = tempfile::tempdir().unwrap();
    let err = fit(
        spec(&data, &model, &train),
        &device,
        Some(dir.path()),
        &mut StopAt {
            epoch: 2,
            current: 0,
        },
    )
    .unwrap_err();
    assert!(matches!(err, TrainError::Interrupted { epoch: 2 }), "{err}");
    device.seed(12345);
    let _ = burn::tensor::Tensor::<2>::random([4, 4], burn::tensor::Distribution::Default, &device);
    let resumed = fit(
        spec(&data, &model, &train),
        &device,
        Some(dir.path()),
        &mut Silent,
    )
    .unwrap();
    assert_eq!(resumed.resumed_after, Some(1));
    assert_eq!(
        metrics_only(&resumed.history),
        metrics_only(&straight.history)
    );
    assert!(straight.history.epochs[1].train.loss.is_finite());
}
