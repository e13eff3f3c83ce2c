//! A recipe checks every setting before it does any work, and names a refused one by its
//! section and key, whoever builds it (a config file through `xtask`, or another project);
//! n-gram models fitted once stack exactly as a fresh fit does, and only on their own sets.

use burn::tensor::Device;
use imdb_data::DataConfig;
use imdb_model::ModelConfig;
use imdb_model::ngram::NgramConfig;
use imdb_train::pretrain::PretrainConfig;
use imdb_train::{FineTuneConfig, Recipe, Silent, Start, TrainConfig, TrainError};

/// The key and problem of a refusal, or a panic naming what came instead.
fn refused(result: Result<(), TrainError>) -> (String, String) {
    match result {
        Err(TrainError::InvalidRecipe { key, problem }) => (key, problem),
        other => panic!("expected a refused setting, got {other:?}"),
    }
}

fn recipe() -> Recipe {
    Recipe::new(DataConfig {
        num_words: 100,
        maxlen: 16,
        val_size: 40,
        ..DataConfig::default()
    })
}

#[test]
fn every_section_is_checked_and_named() {
    recipe().validate().expect("the defaults are valid");
    let pretrained =
        || recipe().with_pretraining(PretrainConfig::default(), FineTuneConfig::default());
    let cases: Vec<(Recipe, &str, &str)> = vec![
        (
            Recipe {
                data: DataConfig {
                    maxlen: 0,
                    ..recipe().data
                },
                ..recipe()
            },
            "data.maxlen",
            "",
        ),
        (
            recipe().with_model(ModelConfig {
                units: 0,
                ..ModelConfig::default()
            }),
            "model.units",
            "at least 1",
        ),
        (
            Recipe {
                data: DataConfig {
                    num_words: 1 << 40,
                    ..recipe().data
                },
                ..recipe()
            },
            "data.num_words",
            "",
        ),
        (
            recipe().with_train(TrainConfig {
                batch_size: 0,
                ..TrainConfig::default()
            }),
            "train.batch_size",
            "",
        ),
        (
            recipe().with_pretraining(
                PretrainConfig {
                    window: 1,
                    ..PretrainConfig::default()
                },
                FineTuneConfig::default(),
            ),
            "pretrain.window",
            "at least 2",
        ),
        (
            recipe().with_pretraining(
                PretrainConfig::default(),
                FineTuneConfig {
                    pretrained_lr_scale: 0.0,
                    ..FineTuneConfig::default()
                },
            ),
            "fine_tune.pretrained_lr_scale",
            "",
        ),
        (
            Recipe {
                model: ModelConfig {
                    bidirectional: true,
                    layers: 2,
                    ..ModelConfig::default()
                },
                ..pretrained()
            },
            "model.layers",
            "with `pretrain`, a bidirectional language model has one layer",
        ),
        (
            recipe().with_ngram_stack(NgramConfig {
                max_n: 0,
                ..NgramConfig::default()
            }),
            "ngram_stack.max_n",
            "",
        ),
    ];
    for (bad, key, problem) in cases {
        let (got_key, got_problem) = refused(bad.validate());
        assert_eq!(got_key, key, "{got_problem}");
        assert!(got_problem.contains(problem), "{key}: {got_problem}");
    }
}

#[test]
fn the_language_models_output_table_counts_only_with_pretraining() {
    // 2^28 weights at most: 2^21 words × 128 fits the embedding (embed_dim 128) but not a
    // language model's output table 256 units wide.
    let wide = |recipe: Recipe| Recipe {
        data: DataConfig {
            num_words: 1 << 21,
            ..recipe.data.clone()
        },
        model: ModelConfig {
            embed_dim: 128,
            units: 256,
            ..ModelConfig::default()
        },
        ..recipe
    };
    wide(recipe())
        .validate()
        .expect("a classifier's table fits");
    let pretrained = wide(recipe().with_pretraining(PretrainConfig::default(), Default::default()));
    let (key, problem) = refused(pretrained.validate());
    assert_eq!(key, "data.num_words", "{problem}");
    assert!(problem.contains("units"), "{problem}");
}

#[test]
fn fit_refuses_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("reviews.csv");
    imdb_data::synthetic::write_synthetic_csv(&csv, 200, 5).unwrap();
    let data = DataConfig::csv(&csv, "review", "sentiment", 0.2);
    let corpus = imdb_data::load_labelled(&data, 42).unwrap();
    let recipe = Recipe::new(DataConfig {
        num_words: 1 << 40,
        ..data
    });
    match recipe.fit(&corpus, &Device::flex(), &mut Silent) {
        Err(TrainError::InvalidRecipe { key, .. }) => assert_eq!(key, "data.num_words"),
        Err(other) => panic!("expected data.num_words refused, got {other}"),
        Ok(_) => panic!("a 2^40-word vocabulary was accepted"),
    }
}

#[test]
fn shared_ngram_models_give_the_same_stack_and_only_for_their_own_sets() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("reviews.csv");
    imdb_data::synthetic::write_synthetic_csv(&csv, 300, 9).unwrap();
    let data = DataConfig {
        num_words: 100,
        maxlen: 16,
        val_size: 40,
        ..DataConfig::csv(&csv, "review", "sentiment", 0.2)
    };
    let ngram = NgramConfig {
        max_n: 2,
        hash_bits: 16,
        ..NgramConfig::default()
    };
    let recipe = Recipe::new(data)
        .with_model(ModelConfig {
            embed_dim: 8,
            units: 8,
            ..ModelConfig::default()
        })
        .with_train(TrainConfig {
            epochs: 1,
            batch_size: 16,
            ..TrainConfig::default()
        })
        .with_ngram_stack(ngram);
    let corpus = imdb_data::load_labelled(&recipe.data, recipe.seed).unwrap();
    let device = Device::flex();
    let sets = recipe.prepare(&corpus).unwrap();
    let fitted = recipe
        .fit_ngrams(&corpus, &sets)
        .unwrap()
        .expect("it stacks");
    let outcome = recipe
        .train_network(
            &corpus,
            &sets,
            Start::Fresh(None),
            &device,
            None,
            &mut Silent,
        )
        .unwrap();
    let own = recipe.finish(&corpus, &sets, &outcome, &device).unwrap();
    let shared = recipe
        .finish_with(&corpus, &sets, &outcome, &device, Some(&fitted))
        .unwrap();
    assert_eq!(shared.test.probabilities, own.test.probabilities);
    assert_eq!(shared.saved.stack, own.saved.stack, "the saved stack too");
    let (mut a, mut b) = (shared.stack.unwrap(), own.stack.unwrap());
    (a.seconds, b.seconds) = (0.0, 0.0);
    assert_eq!(a, b);

    // Another seed draws other sets: the models fitted on the first ones are refused.
    let other_seed = recipe.clone().with_seed(43);
    let other_sets = other_seed.prepare(&corpus).unwrap();
    match other_seed.finish_with(&corpus, &other_sets, &outcome, &device, Some(&fitted)) {
        Err(TrainError::BadSet { problem, .. }) => assert!(problem.contains("other sets")),
        other => panic!(
            "models of other sets were used: {:?}",
            other.map(|f| f.test.metrics)
        ),
    }
    // Other n-gram settings are refused by their key.
    let longer = recipe
        .clone()
        .with_ngram_stack(NgramConfig { max_n: 3, ..ngram });
    match longer.finish_with(&corpus, &sets, &outcome, &device, Some(&fitted)) {
        Err(TrainError::InvalidRecipe { key, .. }) => assert_eq!(key, "ngram_stack"),
        other => panic!(
            "models of other settings were used: {:?}",
            other.map(|f| f.test.metrics)
        ),
    }
}

/// A corpus of `train` one-word training texts over `classes` classes.
fn corpus(train: usize, classes: usize) -> imdb_data::TokenizedCorpus {
    let reviews = (0..train)
        .map(|i| imdb_data::TokenizedReview {
            id: i as u32,
            rating: 0,
            class: Some((i % classes) as u32),
            ranks: vec![1],
        })
        .collect();
    imdb_data::TokenizedCorpus {
        vocab: imdb_data::Vocabulary::from_ranked_words(vec!["word".into()]),
        classes: (0..classes).map(|c| format!("c{c}")).collect(),
        train: reviews,
        test: Vec::new(),
        unsup: Vec::new(),
        archive_sha256: String::new(),
        tokenizer: Default::default(),
    }
}

#[test]
fn settings_that_depend_on_the_corpus_are_refused_before_training() {
    let stacked = recipe().with_ngram_stack(NgramConfig::default());
    stacked.check_corpus(&corpus(100, 2)).unwrap();
    let (key, problem) = refused(stacked.check_corpus(&corpus(100, 3)));
    assert_eq!(key, "ngram_stack");
    assert!(problem.contains("3 classes (c0, c1, c2)"), "{problem}");
    // `val_size` is 40: it must leave training texts.
    let (key, problem) = refused(recipe().check_corpus(&corpus(40, 2)));
    assert_eq!(key, "data.val_size");
    assert!(problem.contains("40 training texts"), "{problem}");
    // Preparing the sets, and so `fit`, checks first: nothing is trained.
    match stacked.fit(&corpus(100, 3), &Device::flex(), &mut Silent) {
        Err(TrainError::InvalidRecipe { key, .. }) => assert_eq!(key, "ngram_stack"),
        Err(other) => panic!("expected ngram_stack refused, got {other}"),
        Ok(_) => panic!("a stack of three classes was trained"),
    }
}
