//! One call from "nothing on disk" to a tokenized corpus: fetch, read, tokenize, cache.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::cache::{CacheKey, read_cache, write_cache};
use crate::corpus::{RawReview, Split, check_layout, read_archive, read_split};
use crate::error::{DataError, Result};
use crate::fetch::{
    ArchiveSource, LocatedArchive, OFFICIAL_SHA256, default_data_dir, locate_archive,
};
use crate::tokenized::{TokenizedCorpus, imdb_classes};
use crate::tokenizer::TokenizerConfig;
use crate::vocab::Vocabulary;

/// Reviews per class and labelled split in the official corpus.
pub const OFFICIAL_REVIEWS_PER_CLASS: usize = 12_500;

/// How to load the corpus.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Where the archive comes from.
    pub source: ArchiveSource,
    /// Folder for the download, the extracted corpus and the cache.
    pub data_dir: PathBuf,
    /// Also read the 50,000 unlabelled reviews of `train/unsup`.
    pub with_unsup: bool,
    /// Use (and write) the tokenized cache.
    pub use_cache: bool,
    /// Show a progress bar while downloading.
    pub show_progress: bool,
    /// How reviews are split into words; only the default settings are cached.
    pub tokenizer: TokenizerConfig,
    /// Rank the words as this vocabulary does (e.g. a trained model's) rather than by their
    /// frequency in the training reviews; the cache is then neither read nor written.
    pub vocabulary: Option<Vocabulary>,
}

impl LoadOptions {
    /// The defaults: `IMDB_ARCHIVE` or the official download, `IMDB_DATA_DIR` or the user's
    /// cache folder, labelled reviews only, cache on, progress bar on.
    pub fn from_env() -> Result<Self> {
        Ok(Self {
            source: ArchiveSource::resolve(None),
            data_dir: default_data_dir()?,
            with_unsup: false,
            use_cache: true,
            show_progress: true,
            tokenizer: TokenizerConfig::default(),
            vocabulary: None,
        })
    }
}

/// What a load did, and how long each part took.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// The archive and its digest.
    pub archive: LocatedArchive,
    /// Where the extracted corpus is or would be (`…/aclImdb`); loading does not extract.
    pub corpus_root: PathBuf,
    /// The cache file.
    pub cache_path: PathBuf,
    /// True if the corpus came from the cache.
    pub from_cache: bool,
    /// Time to locate (and hash or download) the archive.
    pub locate_time: Duration,
    /// Time to read, tokenize and rank (from the extracted folder if there is one, else from the
    /// archive), or to read the cache.
    pub tokenize_time: Duration,
}

/// The folder that keeps the extraction and cache of one archive.
pub fn archive_dir(data_dir: &Path, archive_sha256: &str) -> PathBuf {
    data_dir.join(format!(
        "aclImdb-{}",
        &archive_sha256[..16.min(archive_sha256.len())]
    ))
}

/// Fetches, reads and tokenizes the corpus, using the cache when it can.
pub fn load_corpus(options: &LoadOptions) -> Result<(TokenizedCorpus, LoadReport)> {
    let start = Instant::now();
    let archive = locate_archive(&options.source, &options.data_dir, options.show_progress)?;
    let locate_time = start.elapsed();
    let dir = archive_dir(&options.data_dir, &archive.sha256);
    // Caches written beside the corpus by processes killed mid-write.
    crate::atomic::sweep_temporaries(&dir, crate::atomic::ABANDONED_AFTER, false)?;
    let key = CacheKey {
        archive_sha256: archive.sha256.clone(),
        with_unsup: options.with_unsup,
    };
    let cache_path = dir.join(key.file_name());
    let mut report = LoadReport {
        corpus_root: dir.join(crate::archive::CORPUS_ROOT),
        archive,
        cache_path,
        from_cache: false,
        locate_time,
        tokenize_time: Duration::ZERO,
    };

    // The cache holds the default tokenization only.
    let use_cache = options.use_cache
        && options.tokenizer == TokenizerConfig::default()
        && options.vocabulary.is_none();
    // Commands loading at once (shards of a grid): one builds the cache, the others wait
    // and read it.
    let _building = if use_cache {
        let mut name = report.cache_path.as_os_str().to_os_string();
        name.push(".lock");
        Some(crate::atomic::lock_exclusive(
            std::path::Path::new(&name),
            || eprintln!("waiting for another command that is building the tokenized corpus"),
        )?)
    } else {
        None
    };
    if use_cache {
        let start = Instant::now();
        if let Some(corpus) = read_cache(&report.cache_path, &key) {
            report.from_cache = true;
            report.tokenize_time = start.elapsed();
            return Ok((corpus, report));
        }
    }

    // An extracted folder is the fastest source; without one, read the archive's stream
    // rather than write 100,000 files first.
    let start = Instant::now();
    let corpus = if report.corpus_root.is_dir() {
        let (train, test, unsup) =
            read_extracted(&report.corpus_root, &report.archive, options.with_unsup)?;
        build(options, &report.archive, (&train, &test, &unsup))
    } else {
        let reviews = read_archive(&report.archive.path, options.with_unsup)?;
        check_official_counts(&report.archive, &reviews.train, &reviews.test)?;
        build(
            options,
            &report.archive,
            (&reviews.train, &reviews.test, &reviews.unsup),
        )
    };
    report.tokenize_time = start.elapsed();
    if use_cache {
        write_cache(&report.cache_path, &corpus)?;
    }
    Ok((corpus, report))
}

/// Tokenizes the reviews as `options` say (ranked anew, or against its vocabulary).
fn build(
    options: &LoadOptions,
    archive: &LocatedArchive,
    reviews: (&[RawReview], &[RawReview], &[RawReview]),
) -> TokenizedCorpus {
    let (classes, sha) = (imdb_classes(), archive.sha256.clone());
    match &options.vocabulary {
        Some(vocab) => {
            TokenizedCorpus::build_against(reviews, classes, sha, options.tokenizer, vocab.clone())
        }
        None => TokenizedCorpus::build_with(reviews, classes, sha, options.tokenizer),
    }
}

/// Fetches the archive and extracts it (once) into its data folder; returns the archive and the
/// corpus root. Loading does not need this; it is for users who want the files.
pub fn fetch_and_extract(options: &LoadOptions) -> Result<(LocatedArchive, PathBuf)> {
    let archive = locate_archive(&options.source, &options.data_dir, options.show_progress)?;
    let root = crate::archive::extract_corpus(
        &archive.path,
        &archive_dir(&options.data_dir, &archive.sha256),
    )?;
    check_layout(&root)?;
    Ok((archive, root))
}

/// Reads and tokenizes an extracted corpus with `tokenizer`, checking its layout, and for the
/// official archive its counts.
pub fn tokenize_extracted(
    root: &Path,
    archive: &LocatedArchive,
    with_unsup: bool,
    tokenizer: TokenizerConfig,
) -> Result<TokenizedCorpus> {
    let (train, test, unsup) = read_extracted(root, archive, with_unsup)?;
    Ok(TokenizedCorpus::build_with(
        (&train, &test, &unsup),
        imdb_classes(),
        archive.sha256.clone(),
        tokenizer,
    ))
}

/// The reviews of an extracted corpus (train, test, and unlabelled if asked), its layout
/// checked, and for the official archive its counts.
fn read_extracted(
    root: &Path,
    archive: &LocatedArchive,
    with_unsup: bool,
) -> Result<(Vec<RawReview>, Vec<RawReview>, Vec<RawReview>)> {
    check_layout(root)?;
    let train = read_split(root, Split::Train)?;
    let test = read_split(root, Split::Test)?;
    let unsup = if with_unsup {
        read_split(root, Split::Unsup)?
    } else {
        Vec::new()
    };
    check_official_counts(archive, &train, &test)?;
    Ok((train, test, unsup))
}

/// For the official archive (known digest), requires its 12,500 reviews per class and split.
fn check_official_counts(
    archive: &LocatedArchive,
    train: &[RawReview],
    test: &[RawReview],
) -> Result<()> {
    if archive.sha256 != OFFICIAL_SHA256 {
        return Ok(());
    }
    for (name, split) in [("train", train), ("test", test)] {
        if split.len() != 2 * OFFICIAL_REVIEWS_PER_CLASS {
            return Err(DataError::Layout {
                path: archive.path.clone(),
                problem: format!(
                    "{name} has {} reviews, the official corpus has {}: delete the archive \
                     and download it again",
                    split.len(),
                    2 * OFFICIAL_REVIEWS_PER_CLASS
                ),
            });
        }
    }
    Ok(())
}
