//! Loading a run's data the way every command does. IMDB: `IMDB_ARCHIVE` or the official
//! download, `IMDB_DATA_DIR` or the user's cache folder, through the tokenized cache, relabelled
//! by rating bands if asked. Other sources: the files the config names.

use std::time::Instant;

use std::path::Path;

use imdb_data::{
    DataConfig, LoadOptions, PreparedData, Preprocessing, SourceKind, TokenizedCorpus, load_corpus,
    load_labelled, prepare, relabel_by_rating,
};

use crate::config::RunConfig;
use crate::error::XtaskError;

/// Loads the IMDB corpus with the default tokenizer (with the unlabelled reviews if asked) and
/// says where it came from.
pub fn load(with_unsup: bool) -> Result<(TokenizedCorpus, imdb_data::LoadReport), XtaskError> {
    load_imdb(&DataConfig::default(), with_unsup)
}

fn load_imdb(
    config: &DataConfig,
    with_unsup: bool,
) -> Result<(TokenizedCorpus, imdb_data::LoadReport), XtaskError> {
    let mut options = LoadOptions::from_env()?;
    options.with_unsup = with_unsup;
    options.tokenizer = config.tokenizer();
    let start = Instant::now();
    let (corpus, report) = load_corpus(&options)?;
    eprintln!(
        "corpus: {} ({}), {} train + {} test reviews{}, loaded in {:.2} s{}",
        report.archive.path.display(),
        &report.archive.sha256[..12],
        corpus.train.len(),
        corpus.test.len(),
        if with_unsup {
            format!(" + {} unlabelled", corpus.unsup.len())
        } else {
            String::new()
        },
        start.elapsed().as_secs_f64(),
        if report.from_cache {
            " from the cache"
        } else {
            ""
        }
    );
    Ok((corpus, report))
}

/// The data `config` describes (paths already resolved), `seed` fixing a held-out test share;
/// `with_unsup` adds IMDB's unlabelled reviews.
pub fn load_data(
    config: &DataConfig,
    seed: u64,
    with_unsup: bool,
) -> Result<TokenizedCorpus, XtaskError> {
    if config.source == SourceKind::Imdb {
        let (corpus, _) = load_imdb(config, with_unsup)?;
        return Ok(match &config.rating_bands {
            Some(bands) => relabel_by_rating(corpus, bands)?,
            None => corpus,
        });
    }
    let start = Instant::now();
    let corpus = load_labelled(config, seed)?;
    eprintln!(
        "data: {} {} ({} train + {} test texts; classes {}), loaded in {:.2} s",
        config.source.name(),
        config
            .train
            .as_deref()
            .map_or(String::new(), |p| p.display().to_string()),
        corpus.train.len(),
        corpus.test.len(),
        imdb_data::ClassCounts::from_labels(
            &corpus.classes,
            corpus.train.iter().map(|r| r.label())
        )
        .describe(),
        start.elapsed().as_secs_f64()
    );
    Ok(corpus)
}

/// The data settings and seed of the run that saved the model in `dir`.
pub fn run_data(dir: &Path) -> Result<(DataConfig, u64), XtaskError> {
    let path = dir.join("config.toml");
    if !path.is_file() {
        return Ok((DataConfig::default(), 42));
    }
    let text =
        std::fs::read_to_string(&path).map_err(|e| XtaskError::io("cannot read", &path, e))?;
    let run: RunConfig = toml::from_str(&text).map_err(|e| XtaskError::Config {
        path: path.clone(),
        message: format!("cannot read the run's settings: {e}"),
    })?;
    Ok((run.data, run.seed))
}

/// The data the model saved in `dir` was trained on: its run's settings (encoded with
/// `preprocessing`, the model's own, when given), the corpus, and the sets split as the run
/// split them. A source with too few training texts for the run's validation share still
/// gives its test set.
pub fn trained_data(
    dir: &Path,
    preprocessing: Option<&Preprocessing>,
) -> Result<(DataConfig, TokenizedCorpus, PreparedData), XtaskError> {
    let (mut config, seed) = run_data(dir)?;
    if let Some(pre) = preprocessing {
        config = config.with_preprocessing(pre);
    }
    let corpus = load_data(&config, seed, false)?;
    config.val_size = config
        .val_size
        .min(corpus.train.len().saturating_sub(1))
        .max(1);
    let data = prepare(&corpus, &config, seed)?;
    Ok((config, corpus, data))
}
