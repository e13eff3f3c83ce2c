//! Benchmark of a user's CSV source (not a test): loading and tokenizing a 50,000-row CSV of
//! reviews, the shape of the "IMDB Dataset of 50K Movie Reviews" file (`review,sentiment`).
//!
//! `IMDB_ARCHIVE=../shared/data/aclImdb_v1.tar.gz cargo bench -p imdb-data --bench csv_source`
//! writes the corpus' 50,000 labelled reviews to such a CSV (about 65 MB) in a temporary
//! folder; without `IMDB_ARCHIVE` it writes 50,000 synthetic reviews of the same size. Then it
//! times `load_labelled` (read, parse, classify, hold out 20% for testing, tokenize, rank the
//! vocabulary) three times and prints the best; the last line is JSON.

use std::time::Instant;

use imdb_data::synthetic::synthetic_review;
use imdb_data::{DataConfig, SeededRng, SourceKind, load_labelled};

fn main() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("IMDB Dataset.csv");
    let mut writer = csv::Writer::from_path(&path).expect("csv file");
    writer
        .write_record(["review", "sentiment"])
        .expect("header");
    let source = match std::env::var_os("IMDB_ARCHIVE") {
        Some(archive) => {
            let reviews =
                imdb_data::corpus::read_archive(archive.as_ref(), false).expect("read the archive");
            for r in reviews.train.iter().chain(&reviews.test) {
                let label = r.sentiment.map_or("unlabelled", |s| s.name());
                writer.write_record([r.text.as_str(), label]).expect("row");
            }
            "aclImdb reviews"
        }
        None => {
            let mut rng = SeededRng::new(1);
            for i in 0..50_000 {
                let positive = i % 2 == 0;
                let text = synthetic_review(&mut rng, positive, 230);
                let label = if positive { "positive" } else { "negative" };
                writer.write_record([text.as_str(), label]).expect("row");
            }
            "synthetic reviews"
        }
    };
    writer.flush().expect("flush");
    drop(writer);
    let bytes = std::fs::metadata(&path).expect("size").len();
    let config = DataConfig {
        source: SourceKind::Csv,
        train: Some(path),
        test_fraction: Some(0.2),
        text_field: "review".into(),
        label_field: "sentiment".into(),
        ..DataConfig::default()
    };
    let mut best = f64::INFINITY;
    let mut rows = 0;
    for _ in 0..3 {
        let t = Instant::now();
        let corpus = load_labelled(&config, 42).expect("load");
        let seconds = t.elapsed().as_secs_f64();
        rows = corpus.train.len() + corpus.test.len();
        println!(
            "loaded {rows} rows ({} classes, {} words ranked) in {seconds:.3} s",
            corpus.classes.len(),
            corpus.vocab.len()
        );
        best = best.min(seconds);
    }
    println!(
        "{{\"source\":\"{source}\",\"rows\":{rows},\"bytes\":{bytes},\"threads\":{},\"seconds\":{best:.4}}}",
        rayon::current_num_threads()
    );
}
