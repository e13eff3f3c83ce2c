//! Training a tiny model on a small synthetic corpus: it learns, it is reproducible, it
//! resumes, it stops early, it refuses to diverge silently, and it saves and reloads.

use burn::tensor::Device;
use imdb_data::synthetic::{SyntheticSpec, write_synthetic_archive};
use imdb_data::{
    ArchiveSource, DataConfig, LoadOptions, PreparedData, Vocabulary, load_corpus, prepare,
};
use imdb_model::ModelConfig;
use imdb_train::{
    EarlyStoppingConfig, FitSpec, SavedModel, Silent, TrainConfig, TrainError, TrainObserver,
    evaluate, fit,
};

fn data() -> (PreparedData, Vocabulary, DataConfig) {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("synthetic.tar.gz");
    let spec = SyntheticSpec {
        per_class: 150,
        unsup: 0,
        min_words: 10,
        seed: 3,
    };
    write_synthetic_archive(&archive, &spec).unwrap();
    let options = LoadOptions {
        source: ArchiveSource::Local(archive),
        data_dir: dir.path().join("data"),
        with_unsup: false,
        use_cache: false,
        show_progress: false,
    };
    let (corpus, _) = load_corpus(&options).unwrap();
    let config = DataConfig {
        num_words: 60,
        maxlen: 40,
        val_size: 60,
        ..DataConfig::default()
    };
    (prepare(&corpus, &config, 7).unwrap(), corpus.vocab, config)
}

/// A history without its timings, which differ from run to run.
fn metrics_only(
    h: &imdb_train::History,
) -> Vec<(imdb_train::BinaryMetrics, imdb_train::BinaryMetrics)> {
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
        data,
        num_words: 60,
        model,
        train,
        seed: 11,
    }
}

#[test]
fn learns_the_synthetic_task_and_is_reproducible() {
    let (data, _, _) = data();
    let device = Device::flex();
    let (model, train) = (tiny_model(), quick(4));
    let a = fit(spec(&data, &model, &train), &device, None, &mut Silent).unwrap();
    let test = evaluate(&a.model, &data.test, 64, true, &device);
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
    let bucketed = evaluate(&out.model, &data.test, 32, true, &device);
    let plain = evaluate(&out.model, &data.test, 32, false, &device);
    for (a, b) in bucketed.probabilities.iter().zip(&plain.probabilities) {
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
        evaluate(&straight.model, &data.test, 64, true, &device).probabilities,
        evaluate(&resumed.model, &data.test, 64, true, &device).probabilities,
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
    let val = evaluate(&out.model, &data.val, 64, true, &device).metrics;
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
    let (data, vocab, data_config) = data();
    let device = Device::flex();
    let (model, train) = (tiny_model(), quick(3));
    let out = fit(spec(&data, &model, &train), &device, None, &mut Silent).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let saved = SavedModel::new(out.model, &data_config, &vocab);
    saved.save(dir.path()).unwrap();
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
    let a = saved.predict(&texts, 4);
    let b = loaded.predict(&texts, 4);
    assert_eq!(a, b);
    assert_eq!(a.len(), texts.len());
    assert!(a[0].probability > a[1].probability, "{a:?}");
    assert!(a.iter().all(|p| (0.0..=1.0).contains(&p.probability)));

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
