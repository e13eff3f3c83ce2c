//! Reading the aclImdb folder layout: `{train,test}/{pos,neg}/<id>_<rating>.txt` and
//! `train/unsup/<id>_0.txt`.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};

/// Which part of the corpus a review belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// `train/pos` and `train/neg`: 25,000 labelled reviews.
    Train,
    /// `test/pos` and `test/neg`: 25,000 labelled reviews.
    Test,
    /// `train/unsup`: 50,000 unlabelled reviews.
    Unsup,
}

impl Split {
    /// The folder name of the split in the layout.
    pub fn dir_name(self) -> &'static str {
        match self {
            Split::Train | Split::Unsup => "train",
            Split::Test => "test",
        }
    }
}

/// A review's sentiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sentiment {
    /// Rating ≤ 4 out of 10; class 0.
    Negative,
    /// Rating ≥ 7 out of 10; class 1.
    Positive,
}

impl Sentiment {
    /// The class index used by the model: 0 for negative, 1 for positive.
    pub fn class(self) -> u32 {
        match self {
            Sentiment::Negative => 0,
            Sentiment::Positive => 1,
        }
    }

    /// The sentiment of class index `class` (0 or 1); anything else is positive.
    pub fn from_class(class: u32) -> Self {
        if class == 0 {
            Sentiment::Negative
        } else {
            Sentiment::Positive
        }
    }

    /// `negative` or `positive`.
    pub fn name(self) -> &'static str {
        match self {
            Sentiment::Negative => "negative",
            Sentiment::Positive => "positive",
        }
    }

    fn dir_name(self) -> &'static str {
        match self {
            Sentiment::Negative => "neg",
            Sentiment::Positive => "pos",
        }
    }
}

/// One review as found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawReview {
    /// The number before `_` in the file name.
    pub id: u32,
    /// The rating after `_` (1–10; 0 for unlabelled reviews).
    pub rating: u8,
    /// The sentiment, `None` for unlabelled reviews.
    pub sentiment: Option<Sentiment>,
    /// The review's text, as stored (with `<br />` line breaks).
    pub text: String,
}

/// Parses `<id>_<rating>.txt`.
pub fn parse_file_name(name: &str) -> Option<(u32, u8)> {
    let stem = name.strip_suffix(".txt")?;
    let (id, rating) = stem.split_once('_')?;
    Some((id.parse().ok()?, rating.parse().ok()?))
}

/// Checks that `root` has the aclImdb layout: the four labelled folders exist.
pub fn check_layout(root: &Path) -> Result<()> {
    for split in [Split::Train, Split::Test] {
        for sentiment in [Sentiment::Negative, Sentiment::Positive] {
            let dir = root.join(split.dir_name()).join(sentiment.dir_name());
            if !dir.is_dir() {
                return Err(DataError::Layout {
                    path: root.to_path_buf(),
                    problem: format!(
                        "folder {}/{} is missing",
                        split.dir_name(),
                        sentiment.dir_name()
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Reads every review of `split` under the corpus root, sorted by sentiment then id so the
/// order never depends on the file system.
///
/// Labelled ratings must agree with their folder (negative ≤ 4, positive ≥ 7); a split with
/// no review of some class is a layout error.
pub fn read_split(root: &Path, split: Split) -> Result<Vec<RawReview>> {
    let classes: &[(Option<Sentiment>, &str)] = match split {
        Split::Train | Split::Test => &[
            (Some(Sentiment::Negative), "neg"),
            (Some(Sentiment::Positive), "pos"),
        ],
        Split::Unsup => &[(None, "unsup")],
    };
    let mut reviews = Vec::new();
    for &(sentiment, dir_name) in classes {
        let dir = root.join(split.dir_name()).join(dir_name);
        let mut files = list_reviews(root, &dir)?;
        if files.is_empty() {
            return Err(DataError::Layout {
                path: root.to_path_buf(),
                problem: format!("folder {}/{dir_name} has no review", split.dir_name()),
            });
        }
        files.sort_unstable_by_key(|(id, _, _)| *id);
        let read: Vec<RawReview> = files
            .into_par_iter()
            .map(|(id, rating, path)| {
                check_rating(root, &path, sentiment, rating)?;
                let bytes =
                    std::fs::read(&path).map_err(|e| DataError::io("cannot read", &path, e))?;
                let text = String::from_utf8(bytes).map_err(|_| DataError::NotUtf8 { path })?;
                Ok(RawReview {
                    id,
                    rating,
                    sentiment,
                    text,
                })
            })
            .collect::<Result<_>>()?;
        reviews.extend(read);
    }
    Ok(reviews)
}

/// The reviews of the three splits, each sorted by sentiment then id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorpusReviews {
    /// Labelled training reviews.
    pub train: Vec<RawReview>,
    /// Labelled test reviews.
    pub test: Vec<RawReview>,
    /// Unlabelled reviews (empty unless asked for).
    pub unsup: Vec<RawReview>,
}

/// Reads the reviews straight from the `.tar.gz`, without extracting it: one pass over the
/// compressed stream instead of 100,000 files written and read back. The same checks as for an
/// extracted folder apply (layout, names, ratings, UTF-8), plus those of safe extraction.
pub fn read_archive(archive: &Path, with_unsup: bool) -> Result<CorpusReviews> {
    let mut reviews = CorpusReviews::default();
    let root = Path::new(crate::archive::CORPUS_ROOT);
    crate::archive::for_each_checked_entry(archive, |relative, kind, contents| {
        if kind != crate::archive::EntryKind::File {
            return Ok(());
        }
        let Ok(inside) = relative.strip_prefix(root) else {
            return Ok(());
        };
        let parts: Vec<&str> = inside.iter().filter_map(|p| p.to_str()).collect();
        let [split_dir, class_dir, file_name] = parts[..] else {
            return Ok(());
        };
        let (target, sentiment) = match (split_dir, class_dir) {
            ("train", "neg") => (&mut reviews.train, Some(Sentiment::Negative)),
            ("train", "pos") => (&mut reviews.train, Some(Sentiment::Positive)),
            ("test", "neg") => (&mut reviews.test, Some(Sentiment::Negative)),
            ("test", "pos") => (&mut reviews.test, Some(Sentiment::Positive)),
            ("train", "unsup") if with_unsup => (&mut reviews.unsup, None),
            _ => return Ok(()),
        };
        let path = archive.join(relative);
        let Some((id, rating)) = parse_file_name(file_name) else {
            return Err(DataError::Layout {
                path: archive.to_path_buf(),
                problem: format!("{} is not named <id>_<rating>.txt", relative.display()),
            });
        };
        check_rating(archive, &path, sentiment, rating)?;
        let mut bytes = Vec::new();
        contents
            .read_to_end(&mut bytes)
            .map_err(|e| crate::archive::corrupt(archive, e))?;
        let text = String::from_utf8(bytes).map_err(|_| DataError::NotUtf8 { path })?;
        target.push(RawReview {
            id,
            rating,
            sentiment,
            text,
        });
        Ok(())
    })?;
    let splits = [
        (Split::Train, &mut reviews.train),
        (Split::Test, &mut reviews.test),
    ];
    for (split, list) in splits {
        list.sort_unstable_by_key(|r| (r.sentiment, r.id));
        for sentiment in [Sentiment::Negative, Sentiment::Positive] {
            if !list.iter().any(|r| r.sentiment == Some(sentiment)) {
                return Err(DataError::Layout {
                    path: archive.to_path_buf(),
                    problem: format!(
                        "folder {}/{} is missing or has no review",
                        split.dir_name(),
                        sentiment.dir_name()
                    ),
                });
            }
        }
    }
    reviews.unsup.sort_unstable_by_key(|r| r.id);
    if with_unsup && reviews.unsup.is_empty() {
        return Err(DataError::Layout {
            path: archive.to_path_buf(),
            problem: "folder train/unsup is missing or has no review".to_string(),
        });
    }
    Ok(reviews)
}

fn list_reviews(root: &Path, dir: &Path) -> Result<Vec<(u32, u8, PathBuf)>> {
    let entries = std::fs::read_dir(dir).map_err(|e| DataError::io("cannot list", dir, e))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| DataError::io("cannot list", dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let Some((id, rating)) = parse_file_name(&name) else {
            return Err(DataError::Layout {
                path: root.to_path_buf(),
                problem: format!("{} is not named <id>_<rating>.txt", entry.path().display()),
            });
        };
        files.push((id, rating, entry.path()));
    }
    Ok(files)
}

fn check_rating(root: &Path, path: &Path, sentiment: Option<Sentiment>, rating: u8) -> Result<()> {
    let ok = match sentiment {
        Some(Sentiment::Negative) => (1..=4).contains(&rating),
        Some(Sentiment::Positive) => (7..=10).contains(&rating),
        None => rating == 0,
    };
    if ok {
        Ok(())
    } else {
        Err(DataError::Layout {
            path: root.to_path_buf(),
            problem: format!(
                "{} has rating {rating}, which does not fit its folder \
                 (neg: 1-4, pos: 7-10, unsup: 0)",
                path.display()
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_parse() {
        assert_eq!(parse_file_name("10000_4.txt"), Some((10000, 4)));
        assert_eq!(parse_file_name("7_10.txt"), Some((7, 10)));
        assert_eq!(parse_file_name("urls_pos.txt"), None);
        assert_eq!(parse_file_name("1_2.md"), None);
    }

    #[test]
    fn reads_sorted_and_checks_ratings() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for (sub, name, text) in [
            ("train/neg", "5_1.txt", "bad"),
            ("train/neg", "2_3.txt", "poor"),
            ("train/pos", "3_9.txt", "great"),
            ("test/neg", "1_2.txt", "dull"),
            ("test/pos", "1_8.txt", "fine"),
        ] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
            std::fs::write(root.join(sub).join(name), text).unwrap();
        }
        check_layout(root).unwrap();
        let train = read_split(root, Split::Train).unwrap();
        let ids: Vec<u32> = train.iter().map(|r| r.id).collect();
        assert_eq!(ids, [2, 5, 3]);
        assert_eq!(train[2].sentiment, Some(Sentiment::Positive));
        assert_eq!(train[0].text, "poor");

        std::fs::write(root.join("train/pos/4_2.txt"), "mislabelled").unwrap();
        let err = read_split(root, Split::Train).unwrap_err().to_string();
        assert!(err.contains("4_2.txt") && err.contains("rating 2"), "{err}");
    }

    #[test]
    fn missing_folder_is_a_layout_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("train/pos")).unwrap();
        let err = check_layout(dir.path()).unwrap_err().to_string();
        assert!(err.contains("train/neg is missing"), "{err}");
    }
}
