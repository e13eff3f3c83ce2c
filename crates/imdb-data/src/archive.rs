//! Safe extraction of the `.tar.gz` archive.
//!
//! Extraction refuses absolute paths, `..` components, links and device files, and writes into
//! a temporary folder that is renamed into place only when the whole archive was read. A
//! truncated or hostile archive therefore leaves nothing behind.

use std::fs::File;
use std::io::BufReader;
use std::path::{Component, Path, PathBuf};

use flate2::read::GzDecoder;
use tar::EntryType;

use crate::error::{DataError, Result};

/// Name of the corpus' top folder inside the archive.
pub const CORPUS_ROOT: &str = "aclImdb";

/// Extracts `archive` so that the corpus ends up at `dest/aclImdb`, and returns that path.
///
/// If `dest/aclImdb` already exists it is returned as is: extraction is all-or-nothing, so an
/// existing folder is a complete one.
pub fn extract_corpus(archive: &Path, dest: &Path) -> Result<PathBuf> {
    let final_root = dest.join(CORPUS_ROOT);
    if final_root.is_dir() {
        return Ok(final_root);
    }
    std::fs::create_dir_all(dest).map_err(|e| DataError::io("cannot create folder", dest, e))?;
    // Dropped (and deleted) on every early return.
    let staging = tempfile::Builder::new()
        .prefix(".extracting-")
        .tempdir_in(dest)
        .map_err(|e| DataError::io("cannot create a temporary folder in", dest, e))?;
    unpack_checked(archive, staging.path())?;
    let staged_root = staging.path().join(CORPUS_ROOT);
    if !staged_root.is_dir() {
        return Err(DataError::Layout {
            path: archive.to_path_buf(),
            problem: format!("the archive has no top folder `{CORPUS_ROOT}/`"),
        });
    }
    match std::fs::rename(&staged_root, &final_root) {
        Ok(()) => Ok(final_root),
        // Another process finished the same extraction first: theirs is complete too.
        Err(_) if final_root.is_dir() => Ok(final_root),
        Err(e) => Err(DataError::io(
            "cannot move the extracted corpus to",
            final_root,
            e,
        )),
    }
}

/// What a checked archive entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file; its contents can be read from the entry.
    File,
    /// A folder.
    Dir,
}

/// Calls `visit` with every entry of `archive` after checking it: its path (relative, without
/// `..`), its kind, and the entry to read a file's contents from. Links, devices and escaping
/// paths stop the walk with [`DataError::UnsafeEntry`]; a damaged stream with
/// [`DataError::CorruptArchive`].
pub fn for_each_checked_entry(
    archive: &Path,
    mut visit: impl FnMut(&Path, EntryKind, &mut dyn std::io::Read) -> Result<()>,
) -> Result<()> {
    let file = File::open(archive).map_err(|e| DataError::io("cannot open", archive, e))?;
    let mut tar = tar::Archive::new(GzDecoder::new(BufReader::with_capacity(1 << 16, file)));
    let entries = tar.entries().map_err(|e| corrupt(archive, e))?;
    let mut seen_any = false;
    for entry in entries {
        let mut entry = entry.map_err(|e| corrupt(archive, e))?;
        seen_any = true;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let unsafe_entry = |reason| DataError::UnsafeEntry {
            path: archive.to_path_buf(),
            entry: name.clone(),
            reason,
        };
        let relative = safe_relative_path(&entry.path().map_err(|e| corrupt(archive, e))?)
            .map_err(&unsafe_entry)?;
        let kind = match entry.header().entry_type() {
            EntryType::Regular | EntryType::Continuous => EntryKind::File,
            EntryType::Directory => EntryKind::Dir,
            EntryType::Symlink | EntryType::Link => return Err(unsafe_entry("a link")),
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                return Err(unsafe_entry("a device or pipe"));
            }
            // Metadata records (pax, GNU long names) are applied by the reader itself.
            EntryType::XGlobalHeader | EntryType::XHeader => continue,
            _ => return Err(unsafe_entry("an unsupported entry type")),
        };
        visit(&relative, kind, &mut entry)?;
    }
    if !seen_any {
        return Err(DataError::CorruptArchive {
            path: archive.to_path_buf(),
            message: "the archive is empty".to_string(),
        });
    }
    Ok(())
}

/// A damaged-stream error for `archive`.
pub(crate) fn corrupt(archive: &Path, e: std::io::Error) -> DataError {
    DataError::CorruptArchive {
        path: archive.to_path_buf(),
        message: e.to_string(),
    }
}

/// Unpacks every entry of `archive` under `into`, after checking each one.
fn unpack_checked(archive: &Path, into: &Path) -> Result<()> {
    for_each_checked_entry(archive, |relative, kind, contents| {
        let target = into.join(relative);
        match kind {
            EntryKind::Dir => std::fs::create_dir_all(&target)
                .map_err(|e| DataError::io("cannot create folder", &target, e)),
            EntryKind::File => {
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| DataError::io("cannot create folder", parent, e))?;
                }
                let mut out = File::create(&target)
                    .map_err(|e| DataError::io("cannot create", &target, e))?;
                // A read error here is a truncated or corrupt stream, not a disk problem.
                std::io::copy(contents, &mut out).map_err(|e| corrupt(archive, e))?;
                Ok(())
            }
        }
    })
}

/// `path` if it stays inside the extraction folder, else why not.
fn safe_relative_path(path: &Path) -> std::result::Result<PathBuf, &'static str> {
    let mut clean = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err("a `..` component"),
            Component::RootDir | Component::Prefix(_) => return Err("an absolute path"),
        }
    }
    if clean.as_os_str().is_empty() {
        return Err("an empty path");
    }
    Ok(clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_are_kept() {
        assert_eq!(
            safe_relative_path(Path::new("./aclImdb/train/pos/1_7.txt")).unwrap(),
            PathBuf::from("aclImdb/train/pos/1_7.txt")
        );
    }

    #[test]
    fn escaping_paths_are_refused() {
        assert!(safe_relative_path(Path::new("aclImdb/../../etc/passwd")).is_err());
        assert!(safe_relative_path(Path::new("/etc/passwd")).is_err());
        assert!(safe_relative_path(Path::new(".")).is_err());
    }
}
