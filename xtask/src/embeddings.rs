//! Starting word vectors for runs that ask for them (`[embeddings]` in a config): a GloVe or
//! fastText file, or skip-gram vectors trained on the corpus' unlabelled reviews (cached).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use imdb_data::embeddings::AlignedVectors;
use imdb_data::fetch::sha256_file;
use imdb_data::{
    SkipGramConfig, TokenizedCorpus, load_word_vectors, train_skipgram_with_progress, write_atomic,
};
use imdb_train::InitialEmbeddings;
use indicatif::{ProgressBar, ProgressStyle};

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
        // `skipgram3`: the sharded trainer's vectors (earlier versions' differ).
        let key = format!(
            "skipgram3-n{num_words}-d{dim}-e{}-s{}",
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
    // One command trains these vectors at a time; the others wait, then read them.
    let _building = imdb_data::lock_exclusive(&cache.with_extension("f32.lock"), || {
        eprintln!("skip-gram vectors {key}: waiting for another command that is training them")
    })?;
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
    let vectors = train_with_progress(&skipgram_reviews(corpus), num_words, settings);
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

/// The reviews skip-gram vectors learn from: the unlabelled ones and the training ones (no
/// labels, no test texts).
pub fn skipgram_reviews(corpus: &TokenizedCorpus) -> Vec<&[u32]> {
    corpus
        .unsup
        .iter()
        .chain(&corpus.train)
        .map(|r| r.ranks.as_slice())
        .collect()
}

/// Trains skip-gram vectors on `reviews` (see [`skipgram_reviews`]), showing a progress bar
/// with an ETA on a terminal (a line every tenth otherwise).
pub fn train_with_progress(
    reviews: &[&[u32]],
    num_words: usize,
    settings: &SkipGramConfig,
) -> AlignedVectors {
    eprintln!(
        "training skip-gram vectors on {} unlabelled and training reviews, {} epochs, on {} \
         threads…",
        reviews.len(),
        settings.epochs,
        rayon::current_num_threads()
    );
    let interactive = std::io::stderr().is_terminal();
    let bar = if interactive {
        let bar = ProgressBar::new(0);
        if let Ok(style) = ProgressStyle::with_template(
            "skip-gram {bar:40} {percent:>3}% {human_pos}/{human_len} words [{elapsed_precise}<{eta_precise}]",
        ) {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let started = Instant::now();
    let mut tenth_shown = 0u64;
    let vectors = train_skipgram_with_progress(reviews, num_words, settings, &mut |done, all| {
        bar.set_length(all);
        bar.set_position(done);
        let tenth = (done * 10).checked_div(all).unwrap_or(10);
        if !interactive && tenth > tenth_shown {
            tenth_shown = tenth;
            let seconds = started.elapsed().as_secs_f64();
            let left = seconds * (all - done) as f64 / done.max(1) as f64;
            eprintln!(
                "skip-gram: {}% of {all} words in {seconds:.0} s, about {left:.0} s left",
                tenth * 10
            );
        }
    });
    bar.finish_and_clear();
    vectors
}

/// `cargo xtask bench skipgram`: the baseline's skip-gram job, timed (the vectors' nearest
/// words to a few probes as a sanity check); the last line is JSON.
pub fn bench(args: &crate::cli::SkipgramBenchArgs) -> Result<(), XtaskError> {
    if args.epochs == 0 || args.dim == 0 || args.threads == Some(0) || args.reviews == Some(0) {
        return Err(XtaskError::Usage(
            "--epochs, --dim, --threads and --reviews must be at least 1".into(),
        ));
    }
    let (corpus, _) = crate::data::load(true)?;
    let settings = SkipGramConfig {
        dim: args.dim,
        epochs: args.epochs,
        seed: args.seed,
        ..SkipGramConfig::default()
    };
    let threads = args.threads.unwrap_or_else(rayon::current_num_threads);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| XtaskError::Usage(format!("cannot start {threads} threads: {e}")))?;
    let mut reviews = skipgram_reviews(&corpus);
    if let Some(limit) = args.reviews {
        reviews.truncate(limit);
    }
    let words: u64 = reviews.iter().map(|r| r.len() as u64).sum();
    let started = Instant::now();
    let vectors = pool.install(|| train_with_progress(&reviews, args.num_words, &settings));
    let seconds = started.elapsed().as_secs_f64();
    for probe in ["great", "awful", "boring", "actor"] {
        let near: Vec<String> = imdb_data::embeddings::nearest(&vectors, &corpus.vocab, probe, 5)
            .into_iter()
            .map(|(w, s)| format!("{w} {s:.2}"))
            .collect();
        println!("nearest to {probe}: {}", near.join(", "));
    }
    // FNV-1a over the vectors' bits: equal fingerprints, equal vectors.
    let fingerprint =
        crate::fingerprint::fnv1a(vectors.weights.iter().map(|w| u64::from(w.to_bits())));
    println!(
        "{} reviews, {words} words, {} epochs, {} dimensions, {threads} threads: {seconds:.1} s",
        reviews.len(),
        args.epochs,
        args.dim
    );
    println!(
        "{}",
        serde_json::json!({
            "reviews": reviews.len(),
            "words": words,
            "epochs": args.epochs,
            "dim": args.dim,
            "threads": threads,
            "seconds": seconds,
            "fingerprint": format!("{fingerprint:016x}"),
        })
    );
    Ok(())
}
