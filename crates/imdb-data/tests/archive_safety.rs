//! Hostile and broken archives are refused with a clear error and leave nothing behind.

use std::io::Write;
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;
use imdb_data::DataError;
use imdb_data::extract_corpus;
use imdb_data::synthetic::{SyntheticSpec, write_synthetic_archive};

/// Writes a `.tar.gz` whose entries are given raw: (name as stored, type, data, link target).
fn raw_archive(path: &Path, entries: &[(&str, tar::EntryType, &[u8], &str)]) {
    let file = std::fs::File::create(path).unwrap();
    let mut builder = tar::Builder::new(GzEncoder::new(file, Compression::fast()));
    for &(name, kind, data, link) in entries {
        let mut header = tar::Header::new_old();
        // Written byte by byte: `set_path` itself refuses `..`, which is what we want to test.
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        header.set_entry_type(kind);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append(&header, data).unwrap();
    }
    builder
        .into_inner()
        .unwrap()
        .finish()
        .unwrap()
        .flush()
        .unwrap();
}

/// Nothing but the archive itself may remain in `dir` after a failed extraction.
fn assert_nothing_left(dir: &Path) {
    let left: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name != "a.tar.gz")
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

fn extract_err(entries: &[(&str, tar::EntryType, &[u8], &str)]) -> (DataError, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("a.tar.gz");
    raw_archive(&archive, entries);
    let err = extract_corpus(&archive, dir.path()).unwrap_err();
    assert_nothing_left(dir.path());
    (err, dir)
}

const FILE: tar::EntryType = tar::EntryType::Regular;

#[test]
fn path_traversal_is_refused() {
    let (err, _dir) = extract_err(&[
        ("aclImdb/train/pos/1_9.txt", FILE, b"good", ""),
        ("aclImdb/../../evil.txt", FILE, b"pwned", ""),
    ]);
    assert!(matches!(err, DataError::UnsafeEntry { .. }), "{err}");
    assert!(err.to_string().contains("`..`"), "{err}");
}

#[test]
fn absolute_path_is_refused() {
    let (err, _dir) = extract_err(&[("/tmp/imdb-evil.txt", FILE, b"pwned", "")]);
    assert!(err.to_string().contains("absolute path"), "{err}");
    assert!(!Path::new("/tmp/imdb-evil.txt").exists());
}

#[test]
fn symlink_and_hard_link_are_refused() {
    let (err, _dir) = extract_err(&[(
        "aclImdb/train/pos/1_9.txt",
        tar::EntryType::Symlink,
        b"",
        "/etc/passwd",
    )]);
    assert!(err.to_string().contains("a link"), "{err}");
    let (err, _dir) = extract_err(&[
        ("aclImdb/README", FILE, b"x", ""),
        ("aclImdb/other", tar::EntryType::Link, b"", "aclImdb/README"),
    ]);
    assert!(err.to_string().contains("a link"), "{err}");
}

#[test]
fn device_is_refused() {
    let (err, _dir) = extract_err(&[("aclImdb/dev", tar::EntryType::Char, b"", "")]);
    assert!(err.to_string().contains("device"), "{err}");
}

#[test]
fn truncated_gzip_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("a.tar.gz");
    write_synthetic_archive(&archive, &SyntheticSpec::default()).unwrap();
    let bytes = std::fs::read(&archive).unwrap();
    std::fs::write(&archive, &bytes[..bytes.len() / 2]).unwrap();
    let err = extract_corpus(&archive, dir.path()).unwrap_err();
    assert!(matches!(err, DataError::CorruptArchive { .. }), "{err}");
    assert!(err.to_string().contains("truncated or corrupt"), "{err}");
    assert_nothing_left(dir.path());
}

#[test]
fn not_an_archive_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("a.tar.gz");
    std::fs::write(&archive, b"<html>404 not found</html>").unwrap();
    let err = extract_corpus(&archive, dir.path()).unwrap_err();
    assert!(matches!(err, DataError::CorruptArchive { .. }), "{err}");
    assert_nothing_left(dir.path());
}

#[test]
fn archive_without_corpus_root_is_refused() {
    let (err, _dir) = extract_err(&[("other/README", FILE, b"x", "")]);
    assert!(err.to_string().contains("aclImdb"), "{err}");
}

#[test]
fn good_archive_extracts_once() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("a.tar.gz");
    write_synthetic_archive(&archive, &SyntheticSpec::default()).unwrap();
    let root = extract_corpus(&archive, dir.path()).unwrap();
    assert!(root.join("train/pos").is_dir());
    assert!(root.join("train/unsup").is_dir());
    // A second call reuses the complete folder.
    assert_eq!(extract_corpus(&archive, dir.path()).unwrap(), root);
}
