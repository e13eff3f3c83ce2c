//! Language-model pretraining: the loss falls on text with structure, and the pretrained
//! layers land in the classifier unchanged.

use burn::module::Module;
use burn::tensor::Device;
use imdb_model::ModelConfig;
use imdb_model::language_model::LanguageModel;
use imdb_train::pretrain::{PretrainConfig, perplexity, pretrain_language_model, windows};

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

#[test]
fn the_language_model_learns_text_with_structure() {
    let device = Device::flex().autodiff();
    let (texts, held_out) = (cycles(200, 1), cycles(20, 2));
    let model = LanguageModel::new(&small(), 20, 3, &device).unwrap();
    let config = PretrainConfig {
        epochs: 4,
        window: 12,
        batch_size: 16,
        samples: 8,
        learning_rate: 0.02,
        ..PretrainConfig::default()
    };
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
    let bidirectional = ModelConfig {
        bidirectional: true,
        ..small()
    };
    let err = LanguageModel::new(&bidirectional, 20, 3, &device)
        .unwrap_err()
        .to_string();
    assert!(err.contains("one-directional"), "{err}");
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
