//! `cargo xtask eda`: the notebook's exploratory numbers (§1–2) and its two figures, for the
//! IMDB corpus or the data source of an experiment config.

use imdb_data::{DataConfig, Vocabulary};
use imdb_report::figures::{ClassDistribution, LengthHistogram, write_figure};

use crate::cli::EdaArgs;
use crate::config::load_experiment;
use crate::error::XtaskError;

/// Runs the command.
pub fn run(args: &EdaArgs) -> Result<(), XtaskError> {
    let (data, seed): (DataConfig, u64) = match &args.config {
        Some(path) => {
            let experiment = load_experiment(path)?;
            let run = &experiment.runs[0].config;
            (run.data.clone(), run.seed)
        }
        None => (DataConfig::default(), 42),
    };
    let corpus = crate::data::load_data(&data, seed, false)?;
    let stats = corpus.stats();
    println!("Training texts: {}", corpus.train.len());
    println!("Test texts: {}", corpus.test.len());
    if let Some(first) = corpus.train.first() {
        let ids = Vocabulary::encode_ranks(&first.ranks, data.num_words);
        let shown: Vec<String> = ids.iter().take(20).map(u32::to_string).collect();
        println!(
            "First training review, first 20 ids: [{}]",
            shown.join(", ")
        );
        let label = first.label();
        println!(
            "Its label: {label} ({})",
            corpus
                .classes
                .get(label as usize)
                .map_or("?", String::as_str)
        );
    }
    println!("Classes (train): {}", stats.train_classes.describe());
    println!("Classes (test): {}", stats.test_classes.describe());
    if let Some(l) = &stats.train_lengths {
        println!("Mean length: {:.5}", l.mean);
        println!("Median length: {}", l.p50);
        println!("90th percentile: {}", l.p90);
        println!("95th percentile: {}", l.p95);
        println!("Maximum length: {}", l.max);
        let cut = imdb_data::LengthStats::share_longer_than(&corpus.train_lengths(), data.maxlen);
        println!(
            "Texts longer than maxlen = {}: {:.1}%",
            data.maxlen,
            100.0 * cut
        );
    }
    println!(
        "Vocabulary: {} ranked words, {} kept (num_words)",
        stats.vocabulary_size, data.num_words
    );
    if let Some(second) = corpus.train.get(1) {
        let ids = Vocabulary::encode_ranks(&second.ranks, data.num_words);
        println!(
            "A decoded text (first 80 ids):\n{}",
            corpus.vocab.decode(&ids[..ids.len().min(80)])
        );
    }
    std::fs::create_dir_all(&args.out)
        .map_err(|e| XtaskError::io("cannot create", &args.out, e))?;
    let classes = write_figure(
        &ClassDistribution {
            train: stats.train_classes.clone(),
            test: stats.test_classes.clone(),
        },
        &args.out,
    )?;
    let lengths = write_figure(
        &LengthHistogram {
            lengths: corpus.train_lengths(),
            maxlen: data.maxlen,
            bins: 50,
        },
        &args.out,
    )?;
    for figure in [classes, lengths] {
        println!(
            "wrote {}",
            args.out.join(format!("{}.png", figure.stem)).display()
        );
    }
    Ok(())
}
