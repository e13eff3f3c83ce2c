//! Experiment configs: a name, defaults, and runs that override any default.
//!
//! ```toml
//! name = "maxlen"
//! [defaults]
//! seed = 42
//! [defaults.model]
//! units = 32
//! [[runs]]
//! name = "maxlen-120"
//! data.maxlen = 120
//! ```
//!
//! A run is its defaults with its own keys merged over them (tables merge key by key). Parsing
//! is strict: an unknown key, a wrong type or an impossible value is an error naming the file,
//! the run, the key and what is allowed.

use std::path::{Path, PathBuf};

use imdb_data::DataConfig;
use imdb_model::ModelConfig;
use imdb_train::TrainConfig;
use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::error::XtaskError;

/// Where pretrained word vectors come from (the architecture issue's embeddings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingsConfig {
    /// GloVe or fastText vectors in their text format (`.txt`, `.vec`, optionally `.gz`); or
    /// `"skipgram"` to train vectors on the corpus' unlabelled reviews.
    pub source: String,
    /// Keep the pretrained vectors fixed during training.
    #[serde(default)]
    pub freeze: bool,
    /// Skip-gram epochs over the unlabelled reviews (when `source = "skipgram"`).
    #[serde(default = "default_skipgram_epochs")]
    pub skipgram_epochs: usize,
}

fn default_skipgram_epochs() -> usize {
    1
}

/// Everything one run needs, after merging its overrides over the defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// Fixes the split, initialization, shuffling and dropout.
    pub seed: u64,
    /// Train and evaluate the run once per seed (each in its folder `seed-<n>`, `seed` set to
    /// it) and report the mean and spread; empty: once, with `seed`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub seeds: Vec<u64>,
    /// Where to compute.
    pub backend: Backend,
    /// Preprocessing (notebook §1–3).
    pub data: DataConfig,
    /// The model (notebook §4).
    pub model: ModelConfig,
    /// Training (notebook §5).
    pub train: TrainConfig,
    /// Pretrained word vectors, if any.
    pub embeddings: Option<EmbeddingsConfig>,
    /// Pretrain the embedding and recurrent layers as a language model on the unlabelled and
    /// training texts first (cached; see `crate::pretrain`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pretrain: Option<imdb_train::pretrain::PretrainConfig>,
    /// How the pretrained layers are taken and fine-tuned (with `pretrain` only): which
    /// layers, their learning rate beside the new output layer's, epochs kept fixed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fine_tune: Option<imdb_train::FineTuneConfig>,
    /// Stack the trained network with a Naive-Bayes-weighted n-gram logistic regression
    /// (NBSVM-style) fitted on the same training reviews; the test verdicts are the stack's
    /// (see `crate::stack`). Two classes only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ngram_stack: Option<imdb_model::ngram::NgramConfig>,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            seeds: Vec::new(),
            backend: Backend::Flex,
            data: DataConfig::default(),
            model: ModelConfig::default(),
            train: TrainConfig::default(),
            embeddings: None,
            pretrain: None,
            fine_tune: None,
            ngram_stack: None,
        }
    }
}

/// One named run, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// Unique within the experiment; the run's folder name.
    pub name: String,
    /// Its settings.
    pub config: RunConfig,
}

/// A parsed experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct Experiment {
    /// The experiment's name; its output folder.
    pub name: String,
    /// What it shows, for the report.
    pub description: String,
    /// The config file it came from.
    pub path: PathBuf,
    /// Keep each finished run's checkpoint folder (per-epoch weights and optimizer state,
    /// ~40 MB for the baseline) instead of removing it once the run's results are written.
    pub keep_checkpoints: bool,
    /// Its runs, in file order.
    pub runs: Vec<Run>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExperiment {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    keep_checkpoints: bool,
    #[serde(default)]
    defaults: toml::Table,
    runs: Vec<toml::Table>,
}

/// Reads and checks an experiment config.
pub fn load_experiment(path: &Path) -> Result<Experiment, XtaskError> {
    let text = std::fs::read_to_string(path).map_err(|e| XtaskError::Config {
        path: path.to_path_buf(),
        message: format!("cannot read it: {e}"),
    })?;
    parse_experiment(&text, path)
}

/// Parses an experiment config's text (`path` names it in errors).
pub fn parse_experiment(text: &str, path: &Path) -> Result<Experiment, XtaskError> {
    let fail = |message: String| XtaskError::Config {
        path: path.to_path_buf(),
        message,
    };
    let deserializer = toml::Deserializer::parse(text).map_err(|e| fail(e.to_string()))?;
    let raw: RawExperiment =
        serde_path_to_error::deserialize(deserializer).map_err(|e| fail(describe(&e)))?;
    if !is_name(&raw.name) {
        return Err(fail(format!(
            "name {:?} must be letters, digits, '-' or '_' (it names the output folder)",
            raw.name
        )));
    }
    if raw.runs.is_empty() {
        return Err(fail("it has no [[runs]]: add at least one".into()));
    }
    // The defaults alone must already be a valid run.
    resolve(&raw.defaults, &toml::Table::new()).map_err(|m| fail(format!("[defaults]: {m}")))?;
    let mut runs: Vec<Run> = Vec::new();
    for (index, table) in raw.runs.iter().enumerate() {
        let mut overrides = table.clone();
        let name = match overrides.remove("name") {
            Some(toml::Value::String(name)) if is_name(&name) => name,
            Some(other) => {
                return Err(fail(format!(
                    "run {}: name {other} must be a string of letters, digits, '-' or '_'",
                    index + 1
                )));
            }
            None => return Err(fail(format!("run {} has no `name`", index + 1))),
        };
        if runs.iter().any(|r| r.name == name) {
            return Err(fail(format!(
                "two runs are named {name:?}: names must be unique"
            )));
        }
        let mut config =
            resolve(&raw.defaults, &overrides).map_err(|m| fail(format!("run {name:?}: {m}")))?;
        resolve_data_paths(&mut config.data, path)
            .map_err(|m| fail(format!("run {name:?}: {m}")))?;
        runs.push(Run { name, config });
    }
    Ok(Experiment {
        name: raw.name,
        description: raw.description,
        path: path.to_path_buf(),
        keep_checkpoints: raw.keep_checkpoints,
        runs,
    })
}

/// Makes `train` and `test` absolute, reading a relative path from the config file's folder.
fn resolve_data_paths(data: &mut imdb_data::DataConfig, config_file: &Path) -> Result<(), String> {
    let base = config_file.parent().unwrap_or(Path::new(""));
    for (key, path) in [("train", &mut data.train), ("test", &mut data.test)] {
        if let Some(p) = path.as_mut()
            && p.is_relative()
        {
            *p = std::path::absolute(base.join(&*p))
                .map_err(|e| format!("key `data.{key}`: cannot resolve {}: {e}", p.display()))?;
        }
    }
    Ok(())
}

fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Merges `overrides` over `defaults` and deserializes and validates the result.
fn resolve(defaults: &toml::Table, overrides: &toml::Table) -> Result<RunConfig, String> {
    let mut merged = defaults.clone();
    merge(&mut merged, overrides);
    let config: RunConfig =
        serde_path_to_error::deserialize(toml::Value::Table(merged)).map_err(|e| describe(&e))?;
    validate(&config)?;
    Ok(config)
}

fn merge(base: &mut toml::Table, over: &toml::Table) {
    for (key, value) in over {
        match (base.get_mut(key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            _ => {
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

/// `key.path: message` from a deserialization error.
fn describe<E: std::fmt::Display>(e: &serde_path_to_error::Error<E>) -> String {
    let path = e.path().to_string();
    let inner = e.inner().to_string();
    // toml's messages can span lines (with a source excerpt); keep their first line.
    let inner = inner.lines().next().unwrap_or("").trim();
    if path == "." || path.is_empty() {
        inner.to_string()
    } else {
        format!("key `{path}`: {inner}")
    }
}

fn validate(config: &RunConfig) -> Result<(), String> {
    check_seeds(&config.seeds).map_err(|problem| format!("key `seeds`: {problem}"))?;
    if config.fine_tune.is_some() && config.pretrain.is_none() {
        return Err(
            "key `fine_tune`: it sets how pretrained layers are fine-tuned, but the run has no \
             `pretrain`; add `pretrain = { epochs = 1 }` or remove it"
                .into(),
        );
    }
    if config.pretrain.is_some() && config.embeddings.is_some() {
        return Err(
            "keys `pretrain` and `embeddings`: the language model learns its own word vectors; \
             give one of the two"
                .into(),
        );
    }
    // Everything the library's recipe checks (every key and the word tables' size) is refused
    // here, before the corpus is read.
    config
        .recipe(imdb_model::InferencePrecision::Fast)
        .validate()
        .map_err(recipe_refusal)
}

/// A refusal of the library's recipe in the config's words: the key first.
fn recipe_refusal(error: imdb_train::TrainError) -> String {
    match error {
        imdb_train::TrainError::InvalidRecipe { key, problem } => format!("key `{key}`: {problem}"),
        other => other.to_string(),
    }
}

/// `seeds` must not repeat a seed (it would train the same run twice and shrink the spread).
pub fn check_seeds(seeds: &[u64]) -> Result<(), String> {
    for (i, seed) in seeds.iter().enumerate() {
        if seeds[..i].contains(seed) {
            return Err(format!(
                "seed {seed} is given twice; give each seed once, e.g. seeds = [1, 2, 3]"
            ));
        }
    }
    Ok(())
}

impl RunConfig {
    /// What the run trains, as the library's recipe (everything but the backend and seeds),
    /// its test evaluated at `precision`.
    pub fn recipe(&self, precision: imdb_model::InferencePrecision) -> imdb_train::Recipe {
        let embeddings = self.embeddings.as_ref().map(|e| imdb_train::VectorsRecipe {
            source: if e.source == crate::embeddings::SKIPGRAM {
                imdb_train::WordVectors::SkipGram {
                    epochs: e.skipgram_epochs,
                }
            } else {
                imdb_train::WordVectors::File(PathBuf::from(&e.source))
            },
            freeze: e.freeze,
        });
        imdb_train::Recipe {
            data: self.data.clone(),
            model: self.model.clone(),
            train: self.train.clone(),
            seed: self.seed,
            embeddings,
            pretrain: self.pretrain.clone(),
            fine_tune: self.fine_tune.clone().unwrap_or_default(),
            ngram_stack: self.ngram_stack,
            precision,
        }
    }

    /// The seeds the run trains with, each with its config (`seed` set, `seeds` cleared) and
    /// whether it gets its own folder (only when `seeds` is given).
    pub fn per_seed(&self) -> (Vec<RunConfig>, bool) {
        if self.seeds.is_empty() {
            return (vec![self.clone()], false);
        }
        let configs = self
            .seeds
            .iter()
            .map(|&seed| RunConfig {
                seed,
                seeds: Vec::new(),
                ..self.clone()
            })
            .collect();
        (configs, true)
    }
}

/// Checks the settings that depend on the run's data (the library recipe's
/// [`check_corpus`](imdb_train::Recipe::check_corpus)), naming the run and the key.
pub fn check_against_corpus(
    experiment: &Experiment,
    run: &Run,
    corpus: &imdb_data::TokenizedCorpus,
) -> Result<(), XtaskError> {
    let recipe = run.config.recipe(imdb_model::InferencePrecision::Fast);
    recipe
        .check_corpus(corpus)
        .map_err(|error| XtaskError::Config {
            path: experiment.path.clone(),
            message: format!("run {:?}: {}", run.name, recipe_refusal(error)),
        })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn parse(text: &str) -> Result<Experiment, String> {
        parse_experiment(text, Path::new("test.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn runs_override_defaults_key_by_key() {
        let e = parse(
            r#"
            name = "demo"
            [defaults]
            seed = 7
            [defaults.model]
            units = 32
            dropout = 0.0
            [[runs]]
            name = "a"
            [[runs]]
            name = "b"
            data.maxlen = 120
            model.units = 16
            train = { epochs = 2, early_stopping = { patience = 5 } }
            "#,
        )
        .unwrap();
        assert_eq!(e.runs.len(), 2);
        let (a, b) = (&e.runs[0].config, &e.runs[1].config);
        assert_eq!((a.seed, a.model.units, a.data.maxlen), (7, 32, 200));
        assert_eq!(
            (b.model.units, b.model.dropout, b.data.maxlen),
            (16, 0.0, 120)
        );
        assert_eq!((b.train.epochs, b.train.early_stopping.patience), (2, 5));
        let f1 = parse(
            "name = \"x\"\n[[runs]]\nname = \"a\"\ntrain.early_stopping.monitor = \"val_f1\"",
        )
        .unwrap();
        assert_eq!(
            f1.runs[0].config.train.early_stopping.monitor,
            imdb_train::Monitor::ValF1
        );
        assert_eq!(b.train.batch_size, 64);
    }

    #[test]
    fn errors_name_the_file_the_run_and_the_key() {
        let cases = [
            ("[[runs]]\nname = \"a\"\ndata.maxlenn = 3", "data.maxlenn"),
            ("[[runs]]\nname = \"a\"\ndata.maxlen = 0", "data.maxlen"),
            (
                "[[runs]]\nname = \"a\"\ndata.num_words = 3",
                "data.num_words",
            ),
            (
                "[[runs]]\nname = \"a\"\ntrain.learning_rate = -0.01",
                "train.learning_rate",
            ),
            (
                "[[runs]]\nname = \"a\"\nmodel.units = \"many\"",
                "model.units",
            ),
            (
                "[[runs]]\nname = \"a\"\nmodel.dropout = 1.5",
                "model.dropout",
            ),
            // Sizes that would fail on allocation, not with a message.
            (
                "[[runs]]\nname = \"a\"\nmodel.embed_dim = 1000000000",
                "model.embed_dim",
            ),
            (
                "[[runs]]\nname = \"a\"\nmodel.layers = 1000",
                "model.layers",
            ),
            (
                "[[runs]]\nname = \"a\"\ndata.num_words = 1000000000",
                "data.num_words",
            ),
            (
                "[[runs]]\nname = \"a\"\ndata.maxlen = 100000",
                "data.maxlen",
            ),
            (
                "[[runs]]\nname = \"a\"\ntrain.batch_size = 100000",
                "train.batch_size",
            ),
            (
                "[[runs]]\nname = \"a\"\npretrain = { epochs = 1, window = 1000000 }",
                "pretrain.window",
            ),
            // The language model's output table is `units` wide.
            (
                "[[runs]]\nname = \"a\"\npretrain = { epochs = 1 }\n\
                 model = { embed_dim = 8, units = 4096 }\ndata.num_words = 100000",
                "data.num_words",
            ),
            (
                "[[runs]]\nname = \"a\"\npretrain = { epochs = 1, batch_size = 100000 }",
                "pretrain.batch_size",
            ),
            (
                "[[runs]]\nname = \"a\"\npretrain = { epochs = 1, samples = 1000000000 }",
                "pretrain.samples",
            ),
            ("[[runs]]\nname = \"a\"\nbackend = \"tpu\"", "backend"),
        ];
        for (runs, key) in cases {
            let err = parse(&format!("name = \"x\"\n{runs}")).unwrap_err();
            assert!(err.starts_with("test.toml: run \"a\": key `"), "{err}");
            assert!(err.contains(key), "{key}: {err}");
        }
        let err = parse("name = \"x\"\nrunz = []").unwrap_err();
        assert!(err.contains("runz"), "{err}");
        let err =
            parse("name = \"x\"\n[[runs]]\nname = \"a\"\n[[runs]]\nname = \"a\"").unwrap_err();
        assert!(err.contains("unique"), "{err}");
        let err = parse("name = \"x y\"\n[[runs]]\nname = \"a\"").unwrap_err();
        assert!(err.contains("output folder"), "{err}");
        let err = parse("name = \"x\"\n[defaults.data]\nval_size = 0\n[[runs]]\nname = \"a\"")
            .unwrap_err();
        assert!(
            err.contains("[defaults]") && err.contains("val_size"),
            "{err}"
        );
    }

    /// A corpus of `train` empty training texts over `classes` classes.
    fn corpus(train: usize, classes: usize) -> imdb_data::TokenizedCorpus {
        let review = imdb_data::TokenizedReview {
            id: 0,
            rating: 0,
            class: Some(0),
            ranks: Vec::new(),
        };
        imdb_data::TokenizedCorpus {
            vocab: imdb_data::Vocabulary::from_ranked_words(Vec::new()),
            classes: (0..classes).map(|c| format!("c{c}")).collect(),
            train: vec![review; train],
            test: Vec::new(),
            unsup: Vec::new(),
            archive_sha256: String::new(),
            tokenizer: Default::default(),
        }
    }

    #[test]
    fn runs_are_checked_against_the_corpus() {
        let e = parse("name = \"x\"\n[[runs]]\nname = \"a\"\ndata.val_size = 30000").unwrap();
        let err = check_against_corpus(&e, &e.runs[0], &corpus(25_000, 2))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("data.val_size") && err.contains("25000"),
            "{err}"
        );
        check_against_corpus(&e, &e.runs[0], &corpus(40_000, 2)).unwrap();
        let stacked = parse("name = \"x\"\n[[runs]]\nname = \"a\"\nngram_stack = {}").unwrap();
        check_against_corpus(&stacked, &stacked.runs[0], &corpus(10_000, 2)).unwrap();
        let err = check_against_corpus(&stacked, &stacked.runs[0], &corpus(10_000, 3))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("key `ngram_stack`") && err.contains("3 classes"),
            "{err}"
        );
    }

    #[test]
    fn data_paths_are_read_from_the_config_folder() {
        let e = parse_experiment(
            "name = \"x\"\n[defaults.data]\nsource = \"csv\"\ntrain = \"data/t.csv\"\n\
             test_fraction = 0.2\n[[runs]]\nname = \"a\"",
            Path::new("/some/where/exp.toml"),
        )
        .unwrap();
        assert_eq!(
            e.runs[0].config.data.train.as_deref(),
            Some(Path::new("/some/where/data/t.csv"))
        );
        let err = parse("name = \"x\"\n[[runs]]\nname = \"a\"\ndata.source = \"csv\"").unwrap_err();
        assert!(err.contains("data.train"), "{err}");
    }

    #[test]
    fn pretraining_settings_are_checked_with_their_key() {
        let run = |keys: &str| parse(&format!("name = \"x\"\n[[runs]]\nname = \"a\"\n{keys}"));
        let ok =
            run("pretrain = { epochs = 2 }\nfine_tune = { freeze_recurrent_epochs = 1 }").unwrap();
        let config = &ok.runs[0].config;
        assert_eq!(config.pretrain.as_ref().unwrap().epochs, 2);
        assert_eq!(
            config.fine_tune.as_ref().unwrap().freeze_recurrent_epochs,
            1
        );
        for (keys, expected) in [
            (
                "fine_tune = { pretrained_lr_scale = 0.5 }",
                "has no `pretrain`",
            ),
            ("pretrain = { epochs = 0 }", "pretrain.epochs"),
            ("pretrain = { windw = 70 }", "windw"),
            (
                "pretrain = {}\nfine_tune = { pretrained_lr_scale = 0.0 }",
                "fine_tune.pretrained_lr_scale",
            ),
            (
                "pretrain = {}\nmodel = { bidirectional = true, layers = 2 }",
                "key `model.layers`: with `pretrain`, a bidirectional language model has one layer",
            ),
            (
                "pretrain = {}\nmodel = { bidirectional = true, mask_padding = false }",
                "key `model.mask_padding`: with `pretrain`, a bidirectional",
            ),
            (
                "pretrain = {}\nmodel.architecture = \"transformer\"",
                "key `model.architecture`: with `pretrain`, a language model reads word by word",
            ),
            (
                "pretrain = {}\nembeddings = { source = \"skipgram\" }",
                "give one of the two",
            ),
        ] {
            let err = run(keys).unwrap_err().to_string();
            assert!(err.contains(expected), "{keys}: {err}");
        }
    }

    #[test]
    fn ngram_stack_settings_are_checked_with_their_key() {
        let run = |keys: &str| parse(&format!("name = \"x\"\n[[runs]]\nname = \"a\"\n{keys}"));
        let ok = run("ngram_stack = { max_n = 2 }").unwrap();
        let stack = ok.runs[0].config.ngram_stack.unwrap();
        assert_eq!((stack.max_n, stack.c), (2, 1.0));
        for (keys, expected) in [
            (
                "ngram_stack = { max_n = 0 }",
                "key `ngram_stack.max_n`: must be 1, 2 or 3",
            ),
            ("ngram_stack = { c = -1.0 }", "key `ngram_stack.c`"),
            ("ngram_stack = { n = 2 }", "unknown field `n`"),
        ] {
            let err = run(keys).unwrap_err().to_string();
            assert!(err.contains(expected), "{keys}: {err}");
        }
    }

    #[test]
    fn every_shipped_config_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
        let mut count = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let e = load_experiment(&path).unwrap_or_else(|e| panic!("{e}"));
                assert!(!e.runs.is_empty());
                count += 1;
            }
        }
        assert!(
            count >= 3,
            "expected the shipped configs in {}",
            dir.display()
        );
    }

    #[test]
    fn seeds_expand_into_one_config_each_and_refuse_repeats() {
        let e = parse(
            "name = \"x\"\n[defaults]\nseed = 7\n[[runs]]\nname = \"a\"\n[[runs]]\nname = \"b\"\nseeds = [1, 2, 3]",
        )
        .unwrap();
        let (a, a_folders) = e.runs[0].config.per_seed();
        assert_eq!((a.len(), a[0].seed, a_folders), (1, 7, false));
        let (b, b_folders) = e.runs[1].config.per_seed();
        assert!(b_folders);
        assert_eq!(b.iter().map(|c| c.seed).collect::<Vec<_>>(), [1, 2, 3]);
        assert!(b.iter().all(|c| c.seeds.is_empty()));
        // A seed's config is exactly the config of a one-seed run with that seed.
        let single = parse("name = \"x\"\n[[runs]]\nname = \"b\"\nseed = 2").unwrap();
        assert_eq!(b[1], single.runs[0].config);
        // `seeds` is left out of a written config when empty (fingerprints unchanged).
        assert!(!toml::to_string(&a[0]).unwrap().contains("seeds"));
        let err = parse("name = \"x\"\n[[runs]]\nname = \"a\"\nseeds = [1, 2, 1]").unwrap_err();
        assert!(
            err.contains("seeds") && err.contains("seed 1 is given twice"),
            "{err}"
        );
    }

    /// A run with every optional table and key set, so that its TOML names every run key.
    fn every_key_set() -> RunConfig {
        let mut config = RunConfig {
            seeds: vec![42, 1],
            embeddings: Some(EmbeddingsConfig {
                source: "skipgram".into(),
                freeze: true,
                skipgram_epochs: 3,
            }),
            pretrain: Some(imdb_train::pretrain::PretrainConfig {
                max_texts: Some(100),
                seed: Some(7),
                ..Default::default()
            }),
            fine_tune: Some(imdb_train::FineTuneConfig::default()),
            ngram_stack: Some(imdb_model::ngram::NgramConfig::default()),
            ..RunConfig::default()
        };
        let data = &mut config.data;
        data.train = Some("train.csv".into());
        data.test = Some("test.csv".into());
        data.test_fraction = Some(0.2);
        data.delimiter = Some(';');
        data.classes = Some(vec!["neg".into(), "pos".into()]);
        data.rating_bands = Some(vec![[1, 4], [7, 10]]);
        data.train_limit = Some(10);
        data.test_limit = Some(10);
        config.model.chrono_init = 200;
        config.train.warmup_steps = 100;
        config.train.grad_clip_norm = Some(1.0);
        config.train.adversarial = Some(imdb_train::AdversarialConfig {
            epsilon: 5.0,
            kind: imdb_train::AdversarialKind::Both,
            unlabelled_per_batch: 64,
            xi: 1e-6,
            power_iterations: 1,
        });
        config
    }

    /// Every dotted key path of a TOML table (a table's own key too: `train.early_stopping`
    /// is a key as well as a table).
    fn key_paths(table: &toml::Table, prefix: &str, out: &mut BTreeSet<String>) {
        for (key, value) in table {
            let path = format!("{prefix}{key}");
            if let toml::Value::Table(inner) = value {
                key_paths(inner, &format!("{path}."), out);
            } else {
                out.insert(path);
            }
        }
    }

    /// The keys `docs/configs.md` lists: the first cell of each table row, in backquotes.
    fn documented_keys() -> BTreeSet<String> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/configs.md");
        let text = std::fs::read_to_string(&path).expect("docs/configs.md");
        text.lines()
            .filter_map(|line| line.strip_prefix("| `"))
            .filter_map(|rest| rest.split_once('`'))
            .map(|(key, _)| key.to_string())
            .collect()
    }

    #[test]
    fn docs_list_every_key() {
        let full = every_key_set();
        let text = toml::to_string(&full).unwrap();
        // Every key written is one the parser reads back (it refuses unknown keys).
        let back: RunConfig = toml::from_str(&text).unwrap();
        assert_eq!(back, full);
        let mut accepted = BTreeSet::new();
        key_paths(&toml::from_str(&text).unwrap(), "", &mut accepted);
        // The file's own keys (`name` is also each run's).
        for key in [
            "name",
            "description",
            "keep_checkpoints",
            "defaults",
            "runs",
        ] {
            accepted.insert(key.to_string());
        }
        let documented = documented_keys();
        let missing: Vec<_> = accepted.difference(&documented).collect();
        let unknown: Vec<_> = documented.difference(&accepted).collect();
        assert!(
            missing.is_empty() && unknown.is_empty(),
            "docs/configs.md does not list {missing:?}, and lists {unknown:?}, which the \
             parser does not accept"
        );
        // The file keys exist: a config using each of them parses.
        let e = parse(
            "name = \"x\"\ndescription = \"d\"\nkeep_checkpoints = true\n[defaults]\nseed = 1\n\
             [[runs]]\nname = \"a\"",
        )
        .unwrap();
        assert!(e.keep_checkpoints && e.description == "d");
    }
}
