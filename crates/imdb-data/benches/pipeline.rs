//! Benchmark of the data pipeline on the real corpus (not a test):
//! `IMDB_ARCHIVE=../shared/data/aclImdb_v1.tar.gz cargo bench -p imdb-data`.
//!
//! Times, in one fresh temporary data folder: hashing the archive, a first load straight from
//! the archive, extracting it, reading +
//! tokenizing + ranking + encoding the 50,000 labelled reviews from the extracted files, and
//! loading the tokenized corpus from the cache. Prints one JSON line at the end.

use std::time::Instant;

use imdb_data::fetch::{LocatedArchive, sha256_file};
use imdb_data::load::tokenize_extracted;
use imdb_data::{ArchiveSource, LoadOptions, Vocabulary, extract_corpus, load_corpus};

fn main() {
    let Some(archive) = std::env::var_os("IMDB_ARCHIVE") else {
        eprintln!("set IMDB_ARCHIVE to the corpus archive to run this benchmark");
        std::process::exit(2);
    };
    let archive = std::path::PathBuf::from(archive);
    let dir = tempfile::tempdir().expect("temporary folder");

    let t = Instant::now();
    let sha256 = sha256_file(&archive).expect("hash");
    let hash_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let streamed = imdb_data::corpus::read_archive(&archive, false).expect("read archive");
    let streamed_corpus =
        imdb_data::TokenizedCorpus::build(&streamed.train, &streamed.test, &[], sha256.clone());
    let stream_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let root = extract_corpus(&archive, dir.path()).expect("extract");
    let extract_s = t.elapsed().as_secs_f64();

    let located = LocatedArchive {
        path: archive.clone(),
        sha256,
    };
    let t = Instant::now();
    let corpus = tokenize_extracted(&root, &located, false, Default::default()).expect("tokenize");
    let tokenize_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let encoded: usize = corpus
        .train
        .iter()
        .chain(&corpus.test)
        .map(|r| Vocabulary::encode_ranks(&r.ranks, 20_000).len())
        .sum();
    let encode_s = t.elapsed().as_secs_f64();
    assert_eq!(streamed_corpus, corpus);

    let options = LoadOptions {
        source: ArchiveSource::Local(archive),
        data_dir: dir.path().join("data"),
        with_unsup: false,
        use_cache: true,
        show_progress: false,
        tokenizer: Default::default(),
        vocabulary: None,
    };
    load_corpus(&options).expect("first load writes the cache");
    let t = Instant::now();
    let (cached, report) = load_corpus(&options).expect("cached load");
    let cache_s = t.elapsed().as_secs_f64();
    assert!(report.from_cache && cached == corpus);

    let stats = corpus.stats();
    println!(
        "reviews: {} train, {} test",
        corpus.train.len(),
        corpus.test.len()
    );
    println!("encoded ids: {encoded}");
    println!("stats: {}", serde_json_like(&stats));
    println!("hash archive            {hash_s:7.3} s");
    println!(
        "first load from archive {stream_s:7.3} s (read .tar.gz + tokenize + rank, no extraction)"
    );
    println!("extract archive         {extract_s:7.3} s");
    println!("read+tokenize+rank 50k  {tokenize_s:7.3} s");
    println!("encode 50k              {encode_s:7.3} s");
    println!(
        "from extracted files    {:7.3} s (tokenize + encode)",
        tokenize_s + encode_s
    );
    println!(
        "load from cache         {cache_s:7.3} s (hash {:.3} s + read {:.3} s)",
        report.locate_time.as_secs_f64(),
        report.tokenize_time.as_secs_f64()
    );
    println!(
        "{{\"hash_s\":{hash_s:.4},\"archive_load_s\":{stream_s:.4},\"extract_s\":{extract_s:.4},\"tokenize_s\":{tokenize_s:.4},\
         \"encode_s\":{encode_s:.4},\"cache_load_s\":{cache_s:.4}}}"
    );
}

fn serde_json_like(stats: &imdb_data::CorpusStats) -> String {
    format!("{stats:?}")
}
