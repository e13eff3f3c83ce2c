//! From the user's labelled files to a [`TokenizedCorpus`]: read the source, hold out the test
//! share if asked, turn labels into class ids, tokenize. And IMDB's star ratings as classes.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{DataError, Result};
use crate::prepare::DataConfig;
use crate::source::{
    Fields, LabelledText, SourceKind, csv_delimiter, read_csv, read_folders, read_jsonl,
};
use crate::split::{derive_seed, shuffled_indices};
use crate::tokenized::{LabelledDocument, TokenizedCorpus};

/// A labelled text with its class id, ready to tokenize.
#[derive(Debug, Clone)]
struct ClassifiedText {
    id: u32,
    class: u32,
    text: String,
}

impl LabelledDocument for ClassifiedText {
    fn id(&self) -> u32 {
        self.id
    }
    fn rating(&self) -> u8 {
        0
    }
    fn class(&self) -> Option<u32> {
        Some(self.class)
    }
    fn text(&self) -> &str {
        &self.text
    }
}

/// Reads one file or folder of `config`'s source.
pub fn read_source(config: &DataConfig, path: &Path) -> Result<Vec<LabelledText>> {
    let fields = Fields {
        text: &config.text_field,
        label: &config.label_field,
    };
    match config.source {
        SourceKind::Csv => read_csv(path, &fields, csv_delimiter(path, config.delimiter)?),
        SourceKind::Jsonl => read_jsonl(path, &fields),
        SourceKind::Folders => read_folders(path),
        SourceKind::Imdb => Err(DataError::InvalidSetting {
            setting: "source",
            problem: "the IMDB corpus is loaded with load_corpus, not read from a file".into(),
        }),
    }
}

/// Loads a CSV, JSON Lines or folders source as `config` describes it (paths already resolved):
/// the training texts and the test texts (or a share of the training texts held out with
/// `seed`), their labels turned into class ids, tokenized, with the vocabulary ranked on the
/// training texts.
pub fn load_labelled(config: &DataConfig, seed: u64) -> Result<TokenizedCorpus> {
    load_labelled_against(config, seed, None)
}

/// [`load_labelled`], the words ranked as `vocabulary` ranks them when given (e.g. a trained
/// model's, see [`TokenizedCorpus::build_against`]).
pub fn load_labelled_against(
    config: &DataConfig,
    seed: u64,
    vocabulary: Option<&crate::vocab::Vocabulary>,
) -> Result<TokenizedCorpus> {
    config.validate()?;
    let train_path = config.train.as_deref().ok_or(DataError::InvalidSetting {
        setting: "train",
        problem: "missing: give train = \"PATH\"".into(),
    })?;
    let mut train = read_source(config, train_path)?;
    let test = match (&config.test, config.test_fraction) {
        (Some(path), _) => read_source(config, path)?,
        (None, Some(fraction)) => hold_out(&mut train, fraction, seed, train_path)?,
        (None, None) => {
            return Err(DataError::InvalidSetting {
                setting: "test",
                problem: "missing: give test = \"PATH\", or test_fraction = 0.2".into(),
            });
        }
    };
    let classes = match &config.classes {
        Some(classes) => classes.clone(),
        None => sorted_labels(&train),
    };
    if classes.len() < 2 {
        return Err(DataError::Source {
            path: train_path.to_path_buf(),
            line: None,
            problem: format!(
                "its labels hold {} class{} ({}): a classifier needs at least two",
                classes.len(),
                if classes.len() == 1 { "" } else { "es" },
                classes.join(", ")
            ),
        });
    }
    let index: HashMap<&str, u32> = classes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i as u32))
        .collect();
    let given = config.classes.is_some();
    let classify = |texts: Vec<LabelledText>, split: &str| -> Result<Vec<ClassifiedText>> {
        texts
            .into_iter()
            .enumerate()
            .map(|(i, t)| match index.get(t.label.as_str()) {
                Some(&class) => Ok(ClassifiedText {
                    id: i as u32,
                    class,
                    text: t.text,
                }),
                None => Err(DataError::Source {
                    path: t.file.clone(),
                    line: t.line,
                    problem: if given {
                        format!(
                            "label {:?} is not one of the classes ({}): add it to classes or \
                             fix the label",
                            t.label,
                            classes.join(", ")
                        )
                    } else {
                        format!(
                            "{split} label {:?} never occurs in the training data, whose \
                             classes are {}",
                            t.label,
                            classes.join(", ")
                        )
                    },
                }),
            })
            .collect()
    };
    let digest = source_digest(&train, &test);
    let train = classify(train, "training")?;
    let test = classify(test, "test")?;
    let texts = (&train[..], &test[..], &[][..]);
    Ok(match vocabulary {
        Some(vocab) => TokenizedCorpus::build_against(
            texts,
            classes,
            digest,
            config.tokenizer(),
            vocab.clone(),
        ),
        None => TokenizedCorpus::build_with(texts, classes, digest, config.tokenizer()),
    })
}

/// Moves a seeded `fraction` of `train` into the returned test set (both keep file order).
fn hold_out(
    train: &mut Vec<LabelledText>,
    fraction: f64,
    seed: u64,
    path: &Path,
) -> Result<Vec<LabelledText>> {
    let n = train.len();
    let held = (n as f64 * fraction).round() as usize;
    if held == 0 || held >= n {
        return Err(DataError::Source {
            path: path.to_path_buf(),
            line: None,
            problem: format!(
                "test_fraction = {fraction} of its {n} examples leaves {held} for testing and {} \
                 for training: both need at least one",
                n - held.min(n)
            ),
        });
    }
    let mut is_test = vec![false; n];
    for i in shuffled_indices(n, derive_seed(seed, &[0x7e57]))
        .into_iter()
        .take(held)
    {
        is_test[i] = true;
    }
    let (test, kept): (Vec<_>, Vec<_>) = std::mem::take(train)
        .into_iter()
        .zip(is_test)
        .partition(|(_, t)| *t);
    *train = kept.into_iter().map(|(x, _)| x).collect();
    Ok(test.into_iter().map(|(x, _)| x).collect())
}

/// The distinct labels of `texts`, sorted numerically if they are all integers, else as text.
fn sorted_labels(texts: &[LabelledText]) -> Vec<String> {
    let distinct: BTreeSet<&str> = texts.iter().map(|t| t.label.as_str()).collect();
    let mut labels: Vec<String> = distinct.into_iter().map(str::to_string).collect();
    if labels.iter().all(|l| l.parse::<i64>().is_ok()) {
        labels.sort_by_key(|l| l.parse::<i64>().unwrap_or_default());
    }
    labels
}

/// SHA-256 over every label and text, in order: keys caches built from this data.
fn source_digest(train: &[LabelledText], test: &[LabelledText]) -> String {
    let mut hasher = Sha256::new();
    for (split, texts) in [("train", train), ("test", test)] {
        hasher.update(split.as_bytes());
        for t in texts {
            hasher.update((t.label.len() as u64).to_le_bytes());
            hasher.update(t.label.as_bytes());
            hasher.update((t.text.len() as u64).to_le_bytes());
            hasher.update(t.text.as_bytes());
        }
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks IMDB rating bands: each `[low, high]` within 1–10 with `low <= high`, no two
/// overlapping, at least two.
pub fn check_rating_bands(bands: &[[u8; 2]]) -> Result<()> {
    let invalid = |problem: String| {
        Err(DataError::InvalidSetting {
            setting: "rating_bands",
            problem,
        })
    };
    if bands.len() < 2 {
        return invalid(format!(
            "{} band(s): give at least two, e.g. [[1, 4], [7, 10]]",
            bands.len()
        ));
    }
    for (i, &[low, high]) in bands.iter().enumerate() {
        if !(1..=10).contains(&low) || !(1..=10).contains(&high) || low > high {
            return invalid(format!(
                "[{low}, {high}] is not a band of ratings: use [low, high] with 1 <= low <= high \
                 <= 10"
            ));
        }
        for &[other_low, other_high] in &bands[..i] {
            if low <= other_high && other_low <= high {
                return invalid(format!(
                    "[{low}, {high}] overlaps [{other_low}, {other_high}]: a rating belongs to \
                     one band"
                ));
            }
        }
    }
    Ok(())
}

/// The class name of a band: `1-2`, or `7` for a band of one rating.
pub fn band_name(&[low, high]: &[u8; 2]) -> String {
    if low == high {
        low.to_string()
    } else {
        format!("{low}-{high}")
    }
}

/// The IMDB corpus with its classes replaced by rating bands (see
/// [`DataConfig::rating_bands`]): each labelled review's class is the band holding its rating.
/// A rating in no band is an error (IMDB's labelled ratings are 1–4 and 7–10).
pub fn relabel_by_rating(
    mut corpus: TokenizedCorpus,
    bands: &[[u8; 2]],
) -> Result<TokenizedCorpus> {
    check_rating_bands(bands)?;
    let band_of = |rating: u8| {
        bands
            .iter()
            .position(|&[low, high]| (low..=high).contains(&rating))
    };
    for (split, reviews) in [("train", &mut corpus.train), ("test", &mut corpus.test)] {
        for review in reviews.iter_mut() {
            let Some(band) = band_of(review.rating) else {
                return Err(DataError::InvalidSetting {
                    setting: "rating_bands",
                    problem: format!(
                        "the {split} review {} has rating {}, which is in no band: every \
                         labelled rating (1-4, 7-10) needs one",
                        review.id, review.rating
                    ),
                });
            };
            review.class = Some(band as u32);
        }
    }
    corpus.classes = bands.iter().map(band_name).collect();
    Ok(corpus)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::{RawReview, Sentiment};
    use std::path::PathBuf;

    fn csv_config(dir: &Path, train: &str, test: Option<&str>) -> DataConfig {
        DataConfig {
            source: SourceKind::Csv,
            train: Some(dir.join(train)),
            test: test.map(|t| dir.join(t)),
            test_fraction: test.is_none().then_some(0.25),
            ..DataConfig::default()
        }
    }

    fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    #[test]
    fn classes_are_sorted_labels_and_ids_follow_them() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "train.csv",
            "text,label\ngood,pos\nbad,neg\nmeh,mixed\nfine,pos\n",
        );
        write(dir.path(), "test.csv", "text,label\nawful,neg\n");
        let corpus =
            load_labelled(&csv_config(dir.path(), "train.csv", Some("test.csv")), 1).unwrap();
        assert_eq!(corpus.classes, ["mixed", "neg", "pos"]);
        let labels: Vec<u32> = corpus.train.iter().map(|r| r.label()).collect();
        assert_eq!(labels, [2, 1, 0, 2]);
        assert_eq!(corpus.test[0].label(), 1);
        assert_eq!(corpus.stats().train_classes.counts, [1, 1, 2]);
    }

    #[test]
    fn integer_labels_sort_numerically_and_classes_fix_the_order() {
        let dir = tempfile::tempdir().unwrap();
        // Three of each label: a held-out quarter (2 rows) cannot take every row of one.
        write(
            dir.path(),
            "t.csv",
            "text,label\na,10\nb,2\nc,1\nd,2\ne,1\nf,10\ng,1\nh,2\ni,10\n",
        );
        let mut config = csv_config(dir.path(), "t.csv", None);
        let corpus = load_labelled(&config, 3).unwrap();
        assert_eq!(corpus.classes, ["1", "2", "10"]);
        assert_eq!(corpus.train.len() + corpus.test.len(), 9);
        assert_eq!(corpus.test.len(), 2);

        config.classes = Some(vec!["10".into(), "2".into(), "1".into()]);
        let fixed = load_labelled(&config, 3).unwrap();
        assert_eq!(fixed.classes, ["10", "2", "1"]);
    }

    #[test]
    fn bad_labels_are_errors_naming_file_line_and_label() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "train.csv", "text,label\ngood,pos\nbad,neg\n");
        write(dir.path(), "test.csv", "text,label\nok,pos\nhuh,mixed\n");
        let err = load_labelled(&csv_config(dir.path(), "train.csv", Some("test.csv")), 1)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("test.csv:3") && err.contains("\"mixed\"") && err.contains("neg, pos"),
            "{err}"
        );

        let mut config = csv_config(dir.path(), "train.csv", Some("test.csv"));
        config.classes = Some(vec!["neg".into(), "zzz".into()]);
        let err = load_labelled(&config, 1).unwrap_err().to_string();
        assert!(
            err.contains("train.csv:2") && err.contains("\"pos\"") && err.contains("classes"),
            "{err}"
        );

        write(dir.path(), "one.csv", "text,label\na,x\nb,x\n");
        let err = load_labelled(&csv_config(dir.path(), "one.csv", Some("test.csv")), 1)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("one.csv") && err.contains("at least two"),
            "{err}"
        );
    }

    #[test]
    fn settings_that_do_not_fit_the_source_are_refused() {
        let imdb_with_file = DataConfig {
            train: Some("x.csv".into()),
            ..DataConfig::default()
        };
        assert!(
            imdb_with_file
                .validate()
                .unwrap_err()
                .to_string()
                .contains("train")
        );
        let csv_without_test = DataConfig {
            source: SourceKind::Csv,
            train: Some("x.csv".into()),
            ..DataConfig::default()
        };
        let err = csv_without_test.validate().unwrap_err().to_string();
        assert!(err.contains("test_fraction"), "{err}");
        let bad_fraction = DataConfig {
            test_fraction: Some(1.5),
            ..csv_without_test.clone()
        };
        assert!(bad_fraction.validate().is_err());
        let one_class = DataConfig {
            test_fraction: Some(0.2),
            classes: Some(vec!["a".into()]),
            ..csv_without_test
        };
        assert!(
            one_class
                .validate()
                .unwrap_err()
                .to_string()
                .contains("at least two")
        );
    }

    #[test]
    fn rating_bands_relabel_imdb() {
        let review = |id, rating, s| RawReview {
            id,
            rating,
            sentiment: Some(s),
            text: "a film".into(),
        };
        let corpus = TokenizedCorpus::build(
            &[
                review(1, 1, Sentiment::Negative),
                review(2, 4, Sentiment::Negative),
                review(3, 9, Sentiment::Positive),
            ],
            &[review(4, 7, Sentiment::Positive)],
            &[],
            "00".into(),
        );
        let bands = [[1, 2], [3, 4], [7, 10]];
        let relabelled = relabel_by_rating(corpus.clone(), &bands).unwrap();
        assert_eq!(relabelled.classes, ["1-2", "3-4", "7-10"]);
        let labels: Vec<u32> = relabelled.train.iter().map(|r| r.label()).collect();
        assert_eq!(labels, [0, 1, 2]);
        assert_eq!(relabelled.test[0].label(), 2);

        let err = relabel_by_rating(corpus, &[[1, 4], [8, 10]])
            .unwrap_err()
            .to_string();
        assert!(err.contains("rating 7") && err.contains("no band"), "{err}");
        assert!(check_rating_bands(&[[1, 5], [5, 10]]).is_err());
        assert!(check_rating_bands(&[[0, 5], [6, 10]]).is_err());
        assert!(check_rating_bands(&[[1, 10]]).is_err());
        assert_eq!(band_name(&[7, 7]), "7");
    }
}
