//! The workspace's Rust examples (`examples/rust/`), run on a small synthetic CSV: what
//! another project writes to train, save, load and predict with the library's recipe.

#[allow(dead_code)]
#[path = "../../../examples/rust/predict.rs"]
mod predict;
#[allow(dead_code)]
#[path = "../../../examples/rust/pretrain_finetune.rs"]
mod pretrain_finetune;
#[allow(dead_code)]
#[path = "../../../examples/rust/train_csv.rs"]
mod train_csv;

use std::path::Path;

use burn::tensor::Device;
use imdb_data::DataConfig;
use imdb_model::ModelConfig;
use imdb_train::pretrain::PretrainConfig;
use imdb_train::{Recipe, SavedModel, TrainConfig};

fn write_csv(path: &Path, rows: usize) {
    imdb_data::synthetic::write_synthetic_csv(path, rows, 11).unwrap();
}

/// A tiny network that learns the synthetic task in a few seconds.
fn tiny(data: DataConfig) -> Recipe {
    let data = DataConfig {
        num_words: 100,
        maxlen: 16,
        val_size: 40,
        ..data
    };
    let model = ModelConfig {
        embed_dim: 8,
        units: 8,
        mask_padding: true,
        ..ModelConfig::default()
    };
    let train = TrainConfig {
        epochs: 6,
        batch_size: 16,
        learning_rate: 0.02,
        ..TrainConfig::default()
    };
    Recipe::new(data)
        .with_model(model)
        .with_train(train)
        .with_seed(3)
}

#[test]
fn train_csv_then_predict_gives_the_saved_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("reviews.csv");
    write_csv(&csv, 400);
    let out = dir.path().join("model");
    let trained = train_csv::train_csv(&csv, ("review", "sentiment"), tiny, &out).expect("trains");
    assert_eq!(trained.saved.classes(), ["negative", "positive"]);
    assert_eq!(
        trained.test.labels.len(),
        80,
        "a fifth of 400 rows is the test set"
    );
    assert!(
        trained.test.metrics.accuracy >= 0.8,
        "sentiment words in nearly every review: accuracy {}",
        trained.test.metrics.accuracy
    );

    let texts = [
        "the plot was wonderful and great",
        "it was awful and boring",
    ];
    let loaded = predict::predict(&out, &texts).expect("the saved folder loads");
    let in_memory = trained.saved.predict(&texts, 256).unwrap();
    assert_eq!(loaded, in_memory, "the saved model is the trained one");
    assert_eq!(loaded[0].label, "positive");
    assert_eq!(loaded[1].label, "negative");
}

#[test]
fn pretrain_finetune_saves_the_whole_stack() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("reviews.csv");
    write_csv(&csv, 400);
    let out = dir.path().join("stacked");
    let recipe = |data| {
        let mut recipe = pretrain_finetune::semisupervised(tiny(data).data, 1);
        let quick = tiny(DataConfig::default());
        recipe.model = quick.model;
        recipe.train = quick.train;
        recipe.pretrain = Some(PretrainConfig {
            epochs: 1,
            window: 8,
            batch_size: 16,
            samples: 16,
            ..PretrainConfig::default()
        });
        recipe
    };
    let trained = pretrain_finetune::pretrain_finetune(&csv, ("review", "sentiment"), recipe, &out)
        .expect("pretrains, fine-tunes and stacks");
    let epochs = trained
        .pretraining
        .as_ref()
        .expect("a language model was pretrained");
    assert_eq!(epochs.len(), 1);
    assert!(epochs[0].held_out_perplexity.is_finite());
    let stack = trained.stack.as_ref().expect("the recipe stacks");
    assert_eq!(stack.test_accuracy.stacked, trained.test.metrics.accuracy);
    assert!(
        out.join("ngram.safetensors").is_file(),
        "the stack is saved"
    );

    let loaded = SavedModel::load(&out, &Device::flex()).unwrap();
    let texts = ["wonderful and great", "awful boring"];
    assert_eq!(
        loaded.predict(&texts, 8).unwrap(),
        trained.saved.predict(&texts, 8).unwrap(),
        "the loaded stack gives the trained stack's verdicts"
    );
}
