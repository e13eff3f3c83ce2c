//! Loading a run's data the way every command does. IMDB: `IMDB_ARCHIVE` or the official
//! download, `IMDB_DATA_DIR` or the user's cache folder, through the tokenized cache, relabelled
//! by rating bands if asked. Other sources: the files the config names.

use std::time::Instant;

use std::path::Path;

use imdb_data::{
    DataConfig, LoadOptions, PreparedData, SourceKind, TokenizedCorpus, Vocabulary, load_corpus,
    load_labelled_against, prepare, relabel_by_rating,
};
use imdb_train::SavedModel;

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
    load_imdb_against(config, with_unsup, None)
}

fn load_imdb_against(
    config: &DataConfig,
    with_unsup: bool,
    vocabulary: Option<&Vocabulary>,
) -> Result<(TokenizedCorpus, imdb_data::LoadReport), XtaskError> {
    let mut options = LoadOptions::from_env()?;
    options.with_unsup = with_unsup;
    options.tokenizer = config.tokenizer();
    options.vocabulary = vocabulary.cloned();
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
    load_labelled_logged(config, seed, None)
}

/// A labelled source (`vocabulary`: ranked as it ranks words), saying what was loaded.
fn load_labelled_logged(
    config: &DataConfig,
    seed: u64,
    vocabulary: Option<&Vocabulary>,
) -> Result<TokenizedCorpus, XtaskError> {
    let start = Instant::now();
    let corpus = load_labelled_against(config, seed, vocabulary)?;
    eprintln!(
        "data: {} {} ({} train + {} test texts; classes {}){}, loaded in {:.2} s",
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
        if vocabulary.is_some() {
            ", encoded with the model's vocabulary"
        } else {
            ""
        },
        start.elapsed().as_secs_f64()
    );
    Ok(corpus)
}

/// The data `config` describes (paths resolved; its encoding settings are the model's), its
/// words ranked as `saved`'s vocabulary ranks them, so that every text is encoded as the
/// model encodes new text. IMDB comes from the tokenized cache when the model was trained on
/// it (the ranks then agree), and is tokenized again against the model's words otherwise.
pub fn load_data_for(
    saved: &SavedModel,
    config: &DataConfig,
    seed: u64,
) -> Result<TokenizedCorpus, XtaskError> {
    if config.source != SourceKind::Imdb {
        return load_labelled_logged(config, seed, Some(&saved.vocab));
    }
    let (mut corpus, _) = load_imdb(config, false)?;
    if !corpus.ranks_agree_with(&saved.vocab) {
        eprintln!("the model was trained on other texts: tokenizing IMDB with its vocabulary");
        corpus = load_imdb_against(config, false, Some(&saved.vocab))?.0;
    }
    Ok(match &config.rating_bands {
        Some(bands) => relabel_by_rating(corpus, bands)?,
        None => corpus,
    })
}

/// The resolved settings of the run that saved the model in `dir` (the IMDB defaults with
/// seed 42 for a folder without `config.toml`).
pub fn run_config(dir: &Path) -> Result<RunConfig, XtaskError> {
    let path = dir.join("config.toml");
    if !path.is_file() {
        return Ok(RunConfig::default());
    }
    let text =
        std::fs::read_to_string(&path).map_err(|e| XtaskError::io("cannot read", &path, e))?;
    toml::from_str(&text).map_err(|e| XtaskError::Config {
        path: path.clone(),
        message: format!("cannot read the run's settings: {e}"),
    })
}

/// The data settings and seed of the run that saved the model in `dir`.
pub fn run_data(dir: &Path) -> Result<(DataConfig, u64), XtaskError> {
    let run = run_config(dir)?;
    Ok((run.data, run.seed))
}

/// The data the model `saved` in `dir` was trained on: its run's settings encoded with the
/// model's preprocessing, the corpus (its words ranked as the model's, see
/// [`load_data_for`]), and the sets split as the run split them. A source with too few
/// training texts for the run's validation share still gives its test set.
pub fn trained_data(
    dir: &Path,
    saved: &SavedModel,
) -> Result<(DataConfig, TokenizedCorpus, PreparedData), XtaskError> {
    let (config, seed) = run_data(dir)?;
    let mut config = config.with_preprocessing(&saved.manifest.preprocessing);
    let corpus = load_data_for(saved, &config, seed)?;
    config.val_size = config
        .val_size
        .min(corpus.train.len().saturating_sub(1))
        .max(1);
    let data = prepare(&corpus, &config, seed)?;
    Ok((config, corpus, data))
}

/// The model saved in `dir`, on `device`, at the inference precision `IMDB_F32_INFERENCE`
/// asks for. A run saved before stacks were saved (format 2) whose run stacked an n-gram
/// model loads as its network alone, and says so.
pub fn load_model(dir: &Path, device: &burn::tensor::Device) -> Result<SavedModel, XtaskError> {
    let saved = SavedModel::load(dir, device)?.with_precision(crate::precision::from_env()?);
    if saved.stack.is_none() && dir.join("stacking.json").is_file() {
        eprintln!(
            "note: {} was saved by an earlier version (model format {}), which kept only the \
             network of a stacked run: it loads as the network alone and gives less than the \
             run's stacked metrics. Run its experiment again to save the whole stack.",
            dir.display(),
            saved.manifest.format
        );
    }
    Ok(saved)
}
