//! Sizes beyond the model's bounds are refused with the key named, before anything is
//! allocated: a model of them would otherwise fail on allocation (an abort, not an error).

use burn::tensor::Device;
use imdb_model::language_model::LanguageModel;
use imdb_model::{
    Architecture, MAX_EMBEDDING_WEIGHTS, MAX_LAYERS, MAX_WIDTH, ModelConfig, ModelError,
    SentimentClassifier,
};

fn refused_key(result: Result<(), ModelError>) -> (&'static str, String) {
    match result {
        Err(ModelError::InvalidConfig { key, problem }) => (key, problem),
        Ok(()) => panic!("accepted"),
    }
}

#[test]
fn widths_and_depths_beyond_the_bounds_name_their_key() {
    let at_bounds = ModelConfig {
        embed_dim: MAX_WIDTH,
        units: MAX_WIDTH,
        ff_dim: MAX_WIDTH,
        layers: MAX_LAYERS,
        ..ModelConfig::default()
    };
    at_bounds.validate().unwrap();
    let cases = [
        (
            ModelConfig {
                embed_dim: MAX_WIDTH + 1,
                ..ModelConfig::default()
            },
            "embed_dim",
        ),
        (
            ModelConfig {
                units: usize::MAX,
                ..ModelConfig::default()
            },
            "units",
        ),
        (
            ModelConfig {
                architecture: Architecture::Transformer,
                ff_dim: MAX_WIDTH + 1,
                ..ModelConfig::default()
            },
            "ff_dim",
        ),
        (
            ModelConfig {
                layers: MAX_LAYERS + 1,
                ..ModelConfig::default()
            },
            "layers",
        ),
    ];
    for (config, key) in cases {
        let (refused, problem) = refused_key(config.validate());
        assert_eq!(refused, key, "{problem}");
        assert!(problem.contains("at most"), "{problem}");
    }
}

#[test]
fn a_vocabulary_too_large_for_memory_is_refused_before_the_model_is_built() {
    let config = ModelConfig::default();
    let largest = MAX_EMBEDDING_WEIGHTS / config.embed_dim;
    config.check_vocabulary(largest).unwrap();
    let (key, problem) = refused_key(config.check_vocabulary(largest + 1));
    assert_eq!(key, "num_words");
    assert!(problem.contains("embed_dim 128"), "{problem}");
    // An overflowing product is refused too, not wrapped around.
    assert_eq!(
        refused_key(config.check_vocabulary(usize::MAX)).0,
        "num_words"
    );

    // 2^40 × 128 weights: building it would abort on allocation.
    let device = Device::flex();
    let Err(ModelError::InvalidConfig { key, .. }) =
        SentimentClassifier::new(&config, 1 << 40, 2, 1, &device)
    else {
        panic!("a 2^40-word classifier was built");
    };
    assert_eq!(key, "num_words");

    // A language model's output table is `units` wide: an embedding that fits does not make
    // it fit.
    let wide = ModelConfig {
        embed_dim: 8,
        units: MAX_WIDTH,
        ..ModelConfig::default()
    };
    let words = MAX_EMBEDDING_WEIGHTS / MAX_WIDTH + 1;
    wide.check_vocabulary(words).unwrap();
    let Err(ModelError::InvalidConfig { key, problem }) =
        LanguageModel::new(&wide, words, 1, &device)
    else {
        panic!("a language model with an oversized output table was built");
    };
    assert_eq!(key, "num_words");
    assert!(problem.contains("units 4096"), "{problem}");
}
