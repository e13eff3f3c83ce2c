//! The library's recipe (`imdb_train::Recipe`) computes what `cargo xtask experiment` does:
//! the same settings, in ten lines of another project's code, give byte-identical
//! `predictions.csv` — for skip-gram vectors, and for a pretrained language model stacked
//! with an n-gram model, including a second stacked run of the same seed, which takes the
//! first one's n-gram models instead of fitting its own.

mod common;

use std::path::Path;

use burn::tensor::Device;
use imdb_data::DataConfig;
use imdb_model::ModelConfig;
use imdb_model::ngram::NgramConfig;
use imdb_train::pretrain::PretrainConfig;
use imdb_train::{FineTuneConfig, Recipe, Silent, TrainConfig};

const CONFIG: &str = r#"
name = "recipe"
[defaults]
seed = 5
[defaults.data]
source = "csv"
train = "reviews.csv"
test_fraction = 0.2
text_field = "review"
label_field = "sentiment"
num_words = 100
maxlen = 24
val_size = 40
[defaults.model]
embed_dim = 8
units = 8
mask_padding = true
[defaults.train]
epochs = 3
batch_size = 16
learning_rate = 0.01
[[runs]]
name = "skipgram"
embeddings = { source = "skipgram", skipgram_epochs = 2 }
[[runs]]
name = "stacked"
pretrain = { epochs = 1, window = 8, batch_size = 16, samples = 16 }
ngram_stack = { max_n = 2 }
[[runs]]
name = "stacked-short"
pretrain = { epochs = 1, window = 8, batch_size = 16, samples = 16 }
ngram_stack = { max_n = 2 }
train.epochs = 2
"#;

/// The recipe the config's defaults describe.
fn recipe(csv: &Path) -> Recipe {
    let data = DataConfig {
        num_words: 100,
        maxlen: 24,
        val_size: 40,
        ..DataConfig::csv(csv, "review", "sentiment", 0.2)
    };
    let model = ModelConfig {
        embed_dim: 8,
        units: 8,
        mask_padding: true,
        ..ModelConfig::default()
    };
    let train = TrainConfig {
        epochs: 3,
        batch_size: 16,
        learning_rate: 0.01,
        ..TrainConfig::default()
    };
    Recipe::new(data)
        .with_model(model)
        .with_train(train)
        .with_seed(5)
}

/// Trains `recipe` on the CSV in the library and writes its `predictions.csv` as a run does.
fn library_predictions(recipe: &Recipe, out: &Path) -> Vec<u8> {
    let corpus = imdb_data::load_labelled(&recipe.data, recipe.seed).unwrap();
    let trained = recipe.fit(&corpus, &Device::flex(), &mut Silent).unwrap();
    let path = out.join("predictions.csv");
    imdb_report::tables::write_predictions_csv(
        &path,
        &trained.test.probabilities,
        &trained.test.labels,
        trained.saved.classes(),
    )
    .unwrap();
    std::fs::read(path).unwrap()
}

#[test]
fn the_library_recipe_gives_the_experiment_commands_predictions() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let csv = dir.join("reviews.csv");
    imdb_data::synthetic::write_synthetic_csv(&csv, 300, 21).unwrap();
    std::fs::write(dir.join("recipe.toml"), CONFIG).unwrap();
    let data_dir = dir.join("data");
    let out = common::run(
        common::command(&data_dir)
            .args(["experiment", "recipe.toml", "--out"])
            .arg(dir.join("runs"))
            .current_dir(dir),
    );
    let log = String::from_utf8_lossy(&out.stderr);
    let shared = "(n-gram models fitted for an earlier run on the same sets)";
    let sharing: Vec<&str> = log.lines().filter(|l| l.contains(shared)).collect();
    assert!(
        sharing.len() == 1 && sharing[0].starts_with("[stacked-short]"),
        "only the second stacked run takes the first one's n-gram models:\n{log}"
    );

    let skipgram = recipe(&csv).with_skipgram(2);
    let stacked = recipe(&csv)
        .with_pretraining(
            PretrainConfig {
                epochs: 1,
                window: 8,
                batch_size: 16,
                samples: 16,
                ..PretrainConfig::default()
            },
            FineTuneConfig::default(),
        )
        .with_ngram_stack(NgramConfig {
            max_n: 2,
            ..NgramConfig::default()
        });
    let mut stacked_short = stacked.clone();
    stacked_short.train.epochs = 2;
    for (name, recipe) in [
        ("skipgram", skipgram),
        ("stacked", stacked),
        ("stacked-short", stacked_short),
    ] {
        let out = dir.join(format!("library-{name}"));
        std::fs::create_dir_all(&out).unwrap();
        let ours = library_predictions(&recipe, &out);
        let theirs =
            std::fs::read(dir.join(format!("runs/recipe/{name}/predictions.csv"))).unwrap();
        assert!(ours.len() > 100, "{name}: predictions were written");
        assert!(
            ours == theirs,
            "{name}: the library's predictions.csv differs from the command's:\n{}\n---\n{}",
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&theirs)
        );
    }
}
