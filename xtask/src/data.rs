//! Loading the corpus the way every command does: `IMDB_ARCHIVE` or the official download,
//! `IMDB_DATA_DIR` or the user's cache folder, through the tokenized cache.

use std::time::Instant;

use imdb_data::{LoadOptions, TokenizedCorpus, load_corpus};

use crate::error::XtaskError;

/// Loads the corpus (with the unlabelled reviews if asked) and says where it came from.
pub fn load(with_unsup: bool) -> Result<(TokenizedCorpus, imdb_data::LoadReport), XtaskError> {
    let mut options = LoadOptions::from_env()?;
    options.with_unsup = with_unsup;
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
