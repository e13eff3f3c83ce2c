//! Language-model pretraining: the loss falls on text with structure, an interrupted run
//! resumes exactly, the pretrained layers land in the classifier unchanged, and fine-tuning
//! freezes them, slows them or leaves them out as asked.

use burn::module::Module;
use burn::tensor::Device;
use imdb_data::{DataConfig, EncodedSet, Vocabulary};
use imdb_model::language_model::LanguageModel;
use imdb_model::{ModelConfig, SentimentClassifier};
use imdb_train::pretrain::{
    PretrainConfig, PretrainObserver, PretrainState, perplexity, pretrain_language_model,
    resume_pretraining, windows,
};
use imdb_train::records::{load_module, load_optimizer, save_module, save_optimizer};
use imdb_train::{
    FineTuneConfig, FitSpec, PretrainedLayers, PretrainedStart, Silent, Start, TrainConfig,
    fit_from,
};

fn small() -> ModelConfig {
    ModelConfig {
        embed_dim: 8,
        units: 16,
        dropout: 0.0,
        recurrent_dropout: 0.0,
        ..ModelConfig::default()
    }
}

/// Texts where each word decides the next: 4, 5, …, 15, 4, 5, … from a random start.
fn cycles(count: usize, seed: u64) -> Vec<Vec<u32>> {
    let mut rng = imdb_data::split::SeededRng::new(seed);
    (0..count)
        .map(|_| {
            let start = rng.below(12) as u32;
            (0..25).map(|t| 4 + (start + t) % 12).collect()
        })
        .collect()
}

#[test]
fn windows_cover_every_word_once_as_a_target() {
    let texts = vec![(0..10).collect::<Vec<u32>>(), vec![7], vec![1, 2]];
    let w = windows(&texts, 4);
    assert_eq!(
        w,
        vec![&[0, 1, 2, 3, 4][..], &[4, 5, 6, 7, 8], &[8, 9], &[1, 2]]
    );
    let targets: usize = w.iter().map(|w| w.len() - 1).sum();
    assert_eq!(targets, 9 + 1);
}

/// Four quick epochs over short windows: enough to learn [`cycles`].
fn quick_learning() -> PretrainConfig {
    PretrainConfig {
        epochs: 4,
        window: 12,
        batch_size: 16,
        samples: 8,
        learning_rate: 0.02,
        ..PretrainConfig::default()
    }
}

#[test]
fn the_language_model_learns_text_with_structure() {
    let device = Device::flex().autodiff();
    let (texts, held_out) = (cycles(200, 1), cycles(20, 2));
    let model = LanguageModel::new(&small(), 20, 3, &device).unwrap();
    let config = quick_learning();
    let before = perplexity(&model.valid(), &windows(&held_out, 12), &config).unwrap();
    let (_, history) =
        pretrain_language_model(model, (&texts, &held_out), &config, 7, &device, &mut ()).unwrap();
    assert_eq!(history.len(), 4);
    let after = history.last().unwrap().held_out_perplexity;
    // 20 words: a model that knows nothing is near 20; the next word is certain here.
    assert!(before > 10.0, "{before}");
    assert!(after < 2.0, "perplexity {before} -> {after}: {history:?}");
    assert!(history[3].train_loss < history[0].train_loss, "{history:?}");
}

#[test]
fn pretraining_is_deterministic_and_refuses_bad_input() {
    let device = Device::flex().autodiff();
    let (texts, held_out) = (cycles(40, 1), cycles(5, 2));
    let config = PretrainConfig {
        window: 10,
        batch_size: 8,
        samples: 4,
        ..PretrainConfig::default()
    };
    let run = || {
        let model = LanguageModel::new(&small(), 20, 3, &device).unwrap();
        pretrain_language_model(model, (&texts, &held_out), &config, 7, &device, &mut ())
            .unwrap()
            .1
            .iter()
            .map(|e| (e.train_loss, e.held_out_perplexity))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(), run());
    let model = || LanguageModel::new(&small(), 20, 3, &device).unwrap();
    let err = pretrain_language_model(
        model(),
        (&[vec![4, 25]], &held_out),
        &config,
        7,
        &device,
        &mut (),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("25") && err.contains("20 words"), "{err}");
    let err = pretrain_language_model(
        model(),
        (&[vec![4]], &held_out),
        &config,
        7,
        &device,
        &mut (),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("nothing to predict"), "{err}");
    for (config, expected) in [
        (
            ModelConfig {
                bidirectional: true,
                layers: 2,
                ..small()
            },
            "has one layer",
        ),
        (
            ModelConfig {
                architecture: imdb_model::Architecture::Transformer,
                ..small()
            },
            "needs a recurrent model",
        ),
    ] {
        let err = LanguageModel::new(&config, 20, 3, &device)
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "{err}");
    }
}

fn bidirectional() -> ModelConfig {
    ModelConfig {
        bidirectional: true,
        ..small()
    }
}

#[test]
fn a_bidirectional_language_model_learns_both_ways_without_seeing_its_targets() {
    let device = Device::flex().autodiff();
    let config = quick_learning();
    let train = |texts: &[Vec<u32>], held_out: &[Vec<u32>]| {
        let model = LanguageModel::new(&bidirectional(), 20, 3, &device).unwrap();
        let before = perplexity(&model.valid(), &windows(held_out, 12), &config).unwrap();
        let (_, history) =
            pretrain_language_model(model, (texts, held_out), &config, 7, &device, &mut ())
                .unwrap();
        (before, history.last().unwrap().held_out_perplexity)
    };
    // In the cycles each word decides both its successor and its predecessor.
    let (before, after) = train(&cycles(200, 1), &cycles(20, 2));
    assert!(
        before > 10.0 && after < 2.0,
        "perplexity {before} -> {after}"
    );
    // Words drawn independently: nothing predicts them, so a model that does not see the word
    // it predicts stays near the 16 words' perplexity (one that saw it would approach 1).
    let noise = |count: usize, seed: u64| {
        let mut rng = imdb_data::split::SeededRng::new(seed);
        (0..count)
            .map(|_| (0..25).map(|_| 4 + rng.below(16) as u32).collect())
            .collect::<Vec<Vec<u32>>>()
    };
    let (_, after) = train(&noise(200, 3), &noise(20, 4));
    assert!(
        after > 12.0,
        "perplexity on noise {after}: the model sees its targets"
    );
}

#[test]
fn a_bidirectional_language_model_starts_both_halves_of_the_classifier() {
    let device = Device::flex();
    let lm = LanguageModel::new(&bidirectional(), 20, 3, &device).unwrap();
    let values = |t: burn::tensor::Tensor<2>| t.into_data().try_to_vec::<f32>().unwrap();
    let forward = values(lm.body.encoder[0].w_hh.val());
    let backward = values(lm.body.encoder[1].w_hh.val());
    assert_ne!(forward, backward);
    let classifier = lm.into_classifier(2, 11).unwrap();
    assert_eq!(classifier.encoder.len(), 2);
    assert_eq!(values(classifier.encoder[0].w_hh.val()), forward);
    assert_eq!(values(classifier.encoder[1].w_hh.val()), backward);
    assert_eq!(classifier.dense_weight.dims(), [32, 1]);
}

#[test]
fn the_classifier_starts_from_the_pretrained_layers() {
    let device = Device::flex();
    let lm = LanguageModel::new(&small(), 20, 3, &device).unwrap();
    let values = |t: burn::tensor::Tensor<2>| t.into_data().try_to_vec::<f32>().unwrap();
    let embedding = values(lm.body.embedding.val());
    let w_ih = values(lm.body.encoder[0].w_ih.val());
    let w_hh = values(lm.body.encoder[0].w_hh.val());
    // A body other than a fresh classifier's with the classifier's seed.
    let classifier = lm.into_classifier(3, 11).unwrap();
    let fresh = imdb_model::SentimentClassifier::new(&small(), 20, 3, 11, &device).unwrap();
    assert_eq!(values(classifier.embedding.val()), embedding);
    assert_eq!(values(classifier.encoder[0].w_ih.val()), w_ih);
    assert_eq!(values(classifier.encoder[0].w_hh.val()), w_hh);
    assert_ne!(values(fresh.embedding.val()), embedding);
    assert_eq!(classifier.dense_weight.dims(), [16, 3]);
    assert_eq!(
        values(classifier.dense_weight.val()),
        values(fresh.dense_weight.val())
    );
}

/// Keeps the state after each epoch in files, as a cache would, and stops once `stop_after`
/// epochs are saved.
struct SaveAndStop {
    dir: std::path::PathBuf,
    stop_after: usize,
    saved: usize,
}

impl PretrainObserver for SaveAndStop {
    fn should_stop(&mut self) -> bool {
        self.saved >= self.stop_after
    }
    fn checkpoint(&mut self, state: &PretrainState) -> Result<(), imdb_train::TrainError> {
        save_module(state.model.clone(), &self.dir.join("model.bpk"))?;
        save_optimizer(&state.optimizer, &self.dir.join("optim.bpk"))?;
        self.saved = state.history.len();
        Ok(())
    }
}

/// Every weight of `model`, tensor by tensor.
fn weights(model: LanguageModel) -> Vec<Vec<f32>> {
    let mut all = vec![
        values(model.body.embedding.val()),
        values(model.output.val()),
        values(model.output_bias.val()),
    ];
    for layer in &model.body.encoder {
        all.push(values(layer.w_ih.val()));
        all.push(values(layer.w_hh.val()));
        all.push(values(layer.bias.val()));
    }
    all
}

#[test]
fn an_interrupted_pretraining_resumes_to_the_same_weights() {
    let device = Device::flex().autodiff();
    let (texts, held_out) = (cycles(40, 1), cycles(5, 2));
    let config = PretrainConfig {
        epochs: 3,
        window: 10,
        batch_size: 8,
        samples: 4,
        ..PretrainConfig::default()
    };
    let fresh = || LanguageModel::new(&small(), 20, 3, &device).unwrap();
    let (straight, history) =
        pretrain_language_model(fresh(), (&texts, &held_out), &config, 7, &device, &mut ())
            .unwrap();

    // Stopped in the second epoch: the first is saved.
    let dir = tempfile::tempdir().unwrap();
    let mut observer = SaveAndStop {
        dir: dir.path().to_path_buf(),
        stop_after: 1,
        saved: 0,
    };
    let err = pretrain_language_model(
        fresh(),
        (&texts, &held_out),
        &config,
        7,
        &device,
        &mut observer,
    )
    .unwrap_err();
    assert!(
        matches!(err, imdb_train::TrainError::Interrupted { epoch: 2 }),
        "{err}"
    );

    // Resumed from the files, with the first epoch's record.
    let mut state = PretrainState::new(fresh(), &config);
    state.model = load_module(state.model, &dir.path().join("model.bpk"), "lm").unwrap();
    state.optimizer = load_optimizer(state.optimizer, &dir.path().join("optim.bpk")).unwrap();
    state.history = history[..1].to_vec();
    let resumed =
        resume_pretraining(state, (&texts, &held_out), &config, 7, &device, &mut ()).unwrap();
    let scores = |h: &[imdb_train::pretrain::PretrainEpoch]| {
        h.iter()
            .map(|e| (e.epoch, e.train_loss, e.held_out_perplexity))
            .collect::<Vec<_>>()
    };
    assert_eq!(scores(&resumed.history), scores(&history));
    assert!(weights(resumed.model) == weights(straight.clone()));

    // Without the optimizer's moments, the same epochs give other weights: the test can fail.
    let mut state = PretrainState::new(fresh(), &config);
    state.model = load_module(state.model, &dir.path().join("model.bpk"), "lm").unwrap();
    state.history = history[..1].to_vec();
    let cold =
        resume_pretraining(state, (&texts, &held_out), &config, 7, &device, &mut ()).unwrap();
    assert!(weights(cold.model) != weights(straight));
}

/// Forty short texts over a dozen words, labelled by their first word.
fn labelled_set() -> EncodedSet {
    let words = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"];
    let texts: Vec<String> = (0..40)
        .map(|i| {
            (0..6)
                .map(|t| words[(i + t * 5) % 12])
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let labels = (0..40).map(|i| u32::from(i % 12 < 6)).collect();
    let config = DataConfig {
        maxlen: 8,
        num_words: 20,
        ..DataConfig::default()
    };
    let vocab = Vocabulary::build(texts.iter().map(String::as_str));
    EncodedSet {
        sequences: config
            .preprocessing()
            .encode(
                &vocab,
                &texts.iter().map(String::as_str).collect::<Vec<_>>(),
            )
            .unwrap(),
        labels,
        source: (0..40).collect(),
    }
}

/// One epoch from the language model's layers with `fine_tune` at `learning_rate`.
fn fine_tuned(
    fine_tune: FineTuneConfig,
    learning_rate: f64,
) -> (SentimentClassifier, SentimentClassifier) {
    let device = Device::flex();
    let set = labelled_set();
    let pretrained = LanguageModel::new(&small(), 20, 3, &device)
        .unwrap()
        .into_classifier(2, 11)
        .unwrap();
    let train = TrainConfig {
        epochs: 1,
        batch_size: 8,
        learning_rate,
        ..TrainConfig::default()
    };
    let spec = FitSpec {
        train_set: &set,
        val_set: &set,
        num_classes: 2,
        num_words: 20,
        model: &small(),
        train: &train,
        seed: 11,
        unlabelled: None,
    };
    let start = PretrainedStart {
        model: pretrained.clone(),
        source: "test".into(),
        fine_tune,
    };
    let outcome = fit_from(spec, &device, None, &mut Silent, Start::Pretrained(&start)).unwrap();
    (pretrained, outcome.model)
}

fn values<const D: usize>(t: burn::tensor::Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

/// The largest change of any value from `a` to `b`.
fn moved<const D: usize>(a: burn::tensor::Tensor<D>, b: burn::tensor::Tensor<D>) -> f32 {
    values(a)
        .iter()
        .zip(values(b))
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn frozen_pretrained_layers_stay_fixed_while_the_output_layer_learns() {
    let (start, trained) = fine_tuned(
        FineTuneConfig {
            freeze_recurrent_epochs: 1,
            freeze_embedding_epochs: 1,
            ..FineTuneConfig::default()
        },
        0.01,
    );
    assert_eq!(
        values(trained.embedding.val()),
        values(start.embedding.val())
    );
    for (a, b) in start.encoder.iter().zip(&trained.encoder) {
        assert_eq!(values(a.w_ih.val()), values(b.w_ih.val()));
        assert_eq!(values(a.w_hh.val()), values(b.w_hh.val()));
        assert_eq!(values(a.bias.val()), values(b.bias.val()));
    }
    assert!(moved(start.dense_weight.val(), trained.dense_weight.val()) > 1e-3);
    // Unfrozen, the same epoch moves them.
    let (start, trained) = fine_tuned(FineTuneConfig::default(), 0.01);
    assert!(moved(start.embedding.val(), trained.embedding.val()) > 1e-3);
    assert!(moved(start.encoder[0].w_hh.val(), trained.encoder[0].w_hh.val()) > 1e-3);
}

#[test]
fn a_lower_rate_for_pretrained_layers_moves_them_less() {
    let scaled = |scale| {
        let (start, trained) = fine_tuned(
            FineTuneConfig {
                pretrained_lr_scale: scale,
                ..FineTuneConfig::default()
            },
            0.01,
        );
        (
            moved(start.encoder[0].w_ih.val(), trained.encoder[0].w_ih.val()),
            moved(start.dense_weight.val(), trained.dense_weight.val()),
        )
    };
    let (full, dense_full) = scaled(1.0);
    let (tenth, dense_tenth) = scaled(0.1);
    // Adam's steps scale with the rate: a tenth of the rate, about a tenth of the move.
    assert!(tenth < full * 0.2, "{tenth} vs {full}");
    assert!(
        dense_tenth > dense_full * 0.5,
        "{dense_tenth} vs {dense_full}"
    );
}

#[test]
fn only_the_embedding_is_taken_when_asked() {
    // A rate so small that the weights stay where they started.
    let (start, trained) = fine_tuned(
        FineTuneConfig {
            layers: PretrainedLayers::Embedding,
            ..FineTuneConfig::default()
        },
        1e-9,
    );
    let fresh = SentimentClassifier::new(&small(), 20, 2, 11, &Device::flex()).unwrap();
    assert!(moved(start.embedding.val(), trained.embedding.val()) < 1e-5);
    assert!(moved(fresh.encoder[0].w_ih.val(), trained.encoder[0].w_ih.val()) < 1e-5);
    assert!(moved(start.encoder[0].w_ih.val(), trained.encoder[0].w_ih.val()) > 1e-2);
    let err = FineTuneConfig {
        layers: PretrainedLayers::Embedding,
        freeze_recurrent_epochs: 1,
        ..FineTuneConfig::default()
    }
    .validate()
    .unwrap_err()
    .to_string();
    assert!(err.contains("freeze_recurrent_epochs"), "{err}");
}
