//! Starting word vectors for runs that ask for them (`[embeddings]` in a config).

use std::path::Path;

use imdb_data::TokenizedCorpus;
use imdb_train::InitialEmbeddings;

use crate::config::RunConfig;
use crate::error::XtaskError;

/// The word vectors `config` asks for, or `None` for random initialization.
pub fn initial_embeddings(
    config: &RunConfig,
    _corpus: &TokenizedCorpus,
    _run_dir: &Path,
) -> Result<Option<InitialEmbeddings>, XtaskError> {
    match &config.embeddings {
        None => Ok(None),
        Some(e) => Err(XtaskError::Usage(format!(
            "embeddings source {:?}: pretrained embeddings are not available yet",
            e.source
        ))),
    }
}
