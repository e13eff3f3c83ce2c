//! Starting word vectors for runs that ask for them (`[embeddings]` in a config): a GloVe or
//! fastText file, or skip-gram vectors trained on the corpus' unlabelled reviews (cached).

use std::path::{Path, PathBuf};
use std::time::Instant;

use imdb_data::embeddings::AlignedVectors;
use imdb_data::fetch::sha256_file;
use imdb_data::{SkipGramConfig, TokenizedCorpus, load_word_vectors, train_skipgram, write_atomic};
use imdb_train::InitialEmbeddings;

use crate::config::RunConfig;
use crate::error::XtaskError;

/// The `source` that asks for skip-gram vectors trained here.
pub const SKIPGRAM: &str = "skipgram";

/// The word vectors `config` asks for, or `None` for random initialization. Writes their
/// coverage to `run_dir/embeddings.json`.
pub fn initial_embeddings(
    config: &RunConfig,
    corpus: &TokenizedCorpus,
    run_dir: &Path,
) -> Result<Option<InitialEmbeddings>, XtaskError> {
    let Some(e) = &config.embeddings else {
        return Ok(None);
    };
    let num_words = config.data.num_words;
    let dim = config.model.embed_dim;
    let started = Instant::now();
    let (vectors, source) = if e.source == SKIPGRAM {
        let settings = SkipGramConfig {
            dim,
            epochs: e.skipgram_epochs.max(1),
            seed: config.seed,
            ..SkipGramConfig::default()
        };
        let key = format!(
            "skipgram-n{num_words}-d{dim}-e{}-s{}",
            settings.epochs, settings.seed
        );
        // IMDB's vectors are learnt from its unlabelled reviews too; other sources have none.
        let with_unsup = config.data.source == imdb_data::SourceKind::Imdb;
        (
            skipgram(corpus, num_words, &settings, &key, with_unsup)?,
            key,
        )
    } else {
        let path = PathBuf::from(&e.source);
        let digest = sha256_file(&path)?;
        let vectors = load_word_vectors(&path, &corpus.vocab, num_words, dim, config.seed)?;
        (vectors, format!("{}@{}", path.display(), &digest[..16]))
    };
    eprintln!(
        "embeddings {source}: {} of {} words have a vector ({:.1}%), {:.1} s{}",
        vectors.found,
        vectors.total,
        100.0 * vectors.coverage(),
        started.elapsed().as_secs_f64(),
        if e.freeze { ", frozen" } else { "" }
    );
    let summary = serde_json::json!({
        "source": source,
        "found": vectors.found,
        "total": vectors.total,
        "coverage": vectors.coverage(),
        "freeze": e.freeze,
    });
    let text = serde_json::to_string_pretty(&summary)
        .map_err(|err| XtaskError::io("cannot encode", run_dir.join("embeddings.json"), err))?;
    write_atomic(&run_dir.join("embeddings.json"), text.as_bytes())?;
    Ok(Some(InitialEmbeddings {
        weights: vectors.weights,
        freeze: e.freeze,
        source,
    }))
}

/// Skip-gram vectors on the unlabelled (with `with_unsup`) and training texts (no labels, no
/// test texts), cached beside the tokenized corpus.
fn skipgram(
    corpus: &TokenizedCorpus,
    num_words: usize,
    settings: &SkipGramConfig,
    key: &str,
    with_unsup: bool,
) -> Result<AlignedVectors, XtaskError> {
    if with_unsup && corpus.unsup.is_empty() {
        return Err(XtaskError::Usage(
            "skip-gram embeddings need the unlabelled reviews, which this corpus lacks".into(),
        ));
    }
    let data_dir = imdb_data::default_data_dir()?;
    let cache =
        imdb_data::load::archive_dir(&data_dir, &corpus.archive_sha256).join(format!("{key}.f32"));
    let words = num_words.saturating_sub(4);
    if let Ok(bytes) = std::fs::read(&cache)
        && bytes.len() == num_words * settings.dim * 4
    {
        let weights = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        return Ok(AlignedVectors {
            weights,
            dim: settings.dim,
            found: words.min(corpus.vocab.len()),
            total: words,
        });
    }
    eprintln!(
        "training skip-gram vectors on {} unlabelled and {} training reviews…",
        corpus.unsup.len(),
        corpus.train.len()
    );
    let reviews: Vec<&[u32]> = corpus
        .unsup
        .iter()
        .chain(&corpus.train)
        .map(|r| r.ranks.as_slice())
        .collect();
    let vectors = train_skipgram(&reviews, num_words, settings);
    if let Some(dir) = cache.parent() {
        std::fs::create_dir_all(dir).map_err(|e| XtaskError::io("cannot create", dir, e))?;
    }
    let bytes: Vec<u8> = vectors
        .weights
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    write_atomic(&cache, &bytes)?;
    Ok(vectors)
}
