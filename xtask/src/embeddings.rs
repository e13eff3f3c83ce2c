//! Starting word vectors for runs that ask for them (`[embeddings]` in a config): a GloVe or
//! fastText file, or skip-gram vectors trained on the corpus' unlabelled reviews (cached).

use std::io::IsTerminal;
use std::path::Path;
use std::time::Instant;

use imdb_data::embeddings::AlignedVectors;
use imdb_data::{SkipGramConfig, TokenizedCorpus, train_skipgram_with_progress, write_atomic};
use imdb_train::recipe::skipgram_reviews;
use imdb_train::{InitialEmbeddings, Recipe, WordVectors};
use indicatif::{ProgressBar, ProgressStyle};

use crate::error::XtaskError;

/// The `source` that asks for skip-gram vectors trained here.
pub const SKIPGRAM: &str = "skipgram";

/// The word vectors `recipe` asks for, or `None` for random initialization: a file's, or
/// skip-gram vectors from the cache beside the corpus (trained and cached when missing).
/// Writes their coverage to `run_dir/embeddings.json`.
pub fn initial_embeddings(
    recipe: &Recipe,
    corpus: &TokenizedCorpus,
    run_dir: &Path,
) -> Result<Option<InitialEmbeddings>, XtaskError> {
    let Some(e) = &recipe.embeddings else {
        return Ok(None);
    };
    let started = Instant::now();
    let (vectors, source) = match &e.source {
        WordVectors::SkipGram { epochs } => {
            let settings = recipe.skipgram_config(*epochs);
            let key = recipe.skipgram_key(&settings);
            let texts = recipe.skipgram_texts(corpus)?;
            let vectors = skipgram(corpus, &texts, recipe.data.num_words, &settings, &key)?;
            (vectors, key)
        }
        file => recipe.word_vectors(file, corpus)?,
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
    Ok(Some(InitialEmbeddings::from_vectors(
        vectors, source, e.freeze,
    )))
}

/// Skip-gram vectors trained on `texts` (the recipe's), cached beside the tokenized corpus.
fn skipgram(
    corpus: &TokenizedCorpus,
    texts: &[&[u32]],
    num_words: usize,
    settings: &SkipGramConfig,
    key: &str,
) -> Result<AlignedVectors, XtaskError> {
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
    let vectors = train_with_progress(texts, num_words, settings);
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
