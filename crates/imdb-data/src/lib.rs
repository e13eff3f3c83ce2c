//! Labelled text, from files to padded id sequences: the IMDB movie-review corpus (Maas et
//! al., 2011) or your own CSV, JSON Lines or folder-per-class data, with any number of classes.
//!
//! This crate is the data layer of the notebook it reproduces (sections 1–3): it downloads and
//! verifies the archive (or uses a local one named by `IMDB_ARCHIVE`), extracts it safely, reads
//! the `aclImdb` layout or a labelled source ([`source`], [`load_labelled`]), tokenizes the
//! texts, ranks a vocabulary with Keras' conventions (0 padding, 1 start, 2 unknown, 3 unused,
//! words from 4), encodes and decodes text, pads and truncates to `maxlen`, splits off a
//! validation set with a seeded shuffle, and computes the exploratory statistics. A binary
//! cache makes the second load of IMDB read one file.
//!
//! It has no deep-learning dependency: any project can use it to get the corpus.
//!
//! Worked examples of the crates together, from another project's point of view, are in the
//! workspace's `examples/rust/`: `train_csv` (train on a CSV and save), `predict` (load a saved
//! model and classify) and `pretrain_finetune` (language-model pretraining, fine-tuning and
//! the n-gram stack), run with `cargo run --release -p imdb-train --example NAME`.
//!
//! ```
//! use imdb_data::{Padding, Truncating, Vocabulary, pad_sequences};
//!
//! let vocab = Vocabulary::build(["a great film", "a dull film"]);
//! let ids = vocab.encode_text("A great, great film!", 20_000);
//! assert_eq!(vocab.decode(&ids), "<START> a great great film");
//!
//! let padded = pad_sequences(&[ids], 8, Padding::Post, Truncating::Post).unwrap();
//! assert_eq!(padded.lengths, [5]);
//! assert_eq!(padded.row(0)[5..], [0, 0, 0]);
//! ```
//!
//! Your own data: a CSV with a header row, three classes, a fifth of it held out for testing.
//!
//! ```
//! use imdb_data::{DataConfig, SourceKind, load_labelled, prepare};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let mut rows = String::from("text,label\n");
//! for i in 0..30 {
//!     let label = ["bad", "fine", "good"][i % 3];
//!     rows += &format!("\"review {i}, quite {label}\",{label}\n");
//! }
//! std::fs::write(dir.path().join("reviews.csv"), rows).unwrap();
//! let config = DataConfig {
//!     source: SourceKind::Csv,
//!     train: Some(dir.path().join("reviews.csv")),
//!     test_fraction: Some(0.2),
//!     val_size: 4,
//!     maxlen: 8,
//!     ..DataConfig::default()
//! };
//! let corpus = load_labelled(&config, 42).unwrap();
//! assert_eq!(corpus.classes, ["bad", "fine", "good"]);
//! let data = prepare(&corpus, &config, 42).unwrap();
//! assert_eq!((data.train.len(), data.val.len(), data.test.len()), (20, 4, 6));
//! ```
#![deny(missing_docs)]

pub mod archive;
pub mod atomic;
pub mod cache;
pub mod corpus;
pub mod embeddings;
pub mod error;
pub mod fetch;
pub mod filler;
pub mod labelled;
pub mod load;
pub mod prepare;
pub mod sequence;
pub mod skipgram;
pub mod source;
pub mod split;
pub mod stats;
pub mod stream;
pub mod synthetic;
pub mod tokenized;
pub mod tokenizer;
pub mod vocab;

pub use archive::extract_corpus;
pub use atomic::{ABANDONED_AFTER, AtomicFile, lock_exclusive, sweep_temporaries, write_atomic};
pub use corpus::{RawReview, Sentiment, Split};
pub use embeddings::{AlignedVectors, load_word_vectors};
pub use error::{DataError, Result};
pub use fetch::{ArchiveSource, LocatedArchive, OFFICIAL_SHA256, OFFICIAL_URL, default_data_dir};
pub use labelled::{load_labelled, load_labelled_against, relabel_by_rating};
pub use load::{LoadOptions, LoadReport, fetch_and_extract, load_corpus};
pub use prepare::{DataConfig, EncodedSet, EncodedText, PreparedData, Preprocessing, prepare};
pub use sequence::{MAX_MAXLEN, PaddedSequences, Padding, Truncating, kept_range, pad_sequences};
pub use skipgram::{SkipGramConfig, train_skipgram, train_skipgram_with_progress};
pub use source::{LabelledText, SourceKind};
pub use split::{SeededRng, derive_seed};
pub use stats::{ClassCounts, LengthStats};
pub use tokenized::{CorpusStats, LabelledDocument, TokenizedCorpus, TokenizedReview};
pub use tokenizer::{TokenizerConfig, tokenize};
pub use vocab::Vocabulary;
