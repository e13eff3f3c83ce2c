//! The small synthetic corpus the training tests learn from.

use imdb_data::synthetic::{SyntheticSpec, write_synthetic_archive};
use imdb_data::{
    ArchiveSource, DataConfig, LoadOptions, PreparedData, Vocabulary, load_corpus, prepare,
};

/// 150 reviews per class (60 training reviews held out for validation), 60 words, 40 steps:
/// the prepared sets, the corpus' vocabulary and the data settings.
pub fn synthetic() -> (PreparedData, Vocabulary, DataConfig) {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("synthetic.tar.gz");
    let spec = SyntheticSpec {
        per_class: 150,
        unsup: 0,
        min_words: 10,
        seed: 3,
    };
    write_synthetic_archive(&archive, &spec).unwrap();
    let options = LoadOptions {
        source: ArchiveSource::Local(archive),
        data_dir: dir.path().join("data"),
        with_unsup: false,
        use_cache: false,
        show_progress: false,
        tokenizer: Default::default(),
        vocabulary: None,
    };
    let (corpus, _) = load_corpus(&options).unwrap();
    let config = DataConfig {
        num_words: 60,
        maxlen: 40,
        val_size: 60,
        ..DataConfig::default()
    };
    (prepare(&corpus, &config, 7).unwrap(), corpus.vocab, config)
}
