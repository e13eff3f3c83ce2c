//! The whole pipeline on a small synthetic archive: load, cache, statistics, preparation.

use imdb_data::synthetic::{SyntheticSpec, write_synthetic_archive};
use imdb_data::{ArchiveSource, DataConfig, LoadOptions, load_corpus, prepare};

fn options(dir: &std::path::Path, with_unsup: bool) -> LoadOptions {
    LoadOptions {
        source: ArchiveSource::Local(dir.join("synthetic.tar.gz")),
        data_dir: dir.join("data"),
        with_unsup,
        use_cache: true,
        show_progress: false,
        tokenizer: Default::default(),
        vocabulary: None,
    }
}

#[test]
fn load_then_reload_from_cache() {
    let dir = tempfile::tempdir().unwrap();
    let spec = SyntheticSpec {
        per_class: 30,
        unsup: 12,
        ..SyntheticSpec::default()
    };
    write_synthetic_archive(&dir.path().join("synthetic.tar.gz"), &spec).unwrap();

    let (first, report) = load_corpus(&options(dir.path(), true)).unwrap();
    assert!(!report.from_cache);
    assert_eq!(
        (first.train.len(), first.test.len(), first.unsup.len()),
        (60, 60, 12)
    );
    assert_eq!(report.archive.sha256.len(), 64);
    let stats = first.stats();
    assert_eq!(stats.train_classes.counts, [30, 30]);
    assert!(stats.train_lengths.unwrap().min >= spec.min_words);
    // `<br />` never becomes a word.
    assert!(first.vocab.rank("br").is_none());

    let (second, report) = load_corpus(&options(dir.path(), true)).unwrap();
    assert!(report.from_cache);
    assert_eq!(first, second);

    // A damaged cache is rebuilt, not trusted.
    std::fs::write(&report.cache_path, b"garbage").unwrap();
    let (third, report) = load_corpus(&options(dir.path(), true)).unwrap();
    assert!(!report.from_cache);
    assert_eq!(first, third);

    // Without unlabelled reviews the key differs: another cache file.
    let (labelled, report) = load_corpus(&options(dir.path(), false)).unwrap();
    assert!(!report.from_cache);
    assert!(labelled.unsup.is_empty());
    assert_eq!(labelled.train, first.train);

    let config = DataConfig {
        maxlen: 16,
        val_size: 10,
        ..DataConfig::default()
    };
    let data = prepare(&labelled, &config, 42).unwrap();
    assert_eq!(
        (data.train.len(), data.val.len(), data.test.len()),
        (50, 10, 60)
    );
    assert!(data.train.sequences.ids.chunks(16).all(|row| row[0] == 1));
}

#[test]
fn corpus_with_a_missing_class_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("src/aclImdb");
    std::fs::create_dir_all(root.join("train/pos")).unwrap();
    std::fs::create_dir_all(root.join("test/pos")).unwrap();
    std::fs::create_dir_all(root.join("test/neg")).unwrap();
    std::fs::write(root.join("train/pos/1_9.txt"), "fine").unwrap();
    let archive = dir.path().join("synthetic.tar.gz");
    let file = std::fs::File::create(&archive).unwrap();
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        file,
        flate2::Compression::fast(),
    ));
    builder.append_dir_all("aclImdb", &root).unwrap();
    builder.into_inner().unwrap().finish().unwrap();

    let err = load_corpus(&options(dir.path(), false))
        .unwrap_err()
        .to_string();
    assert!(err.contains("train/neg is missing"), "{err}");
}
