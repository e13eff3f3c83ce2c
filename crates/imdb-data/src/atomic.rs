//! Writing files so that a crash never leaves a half-written one behind.

use std::io::Write;
use std::path::Path;

use crate::error::{DataError, Result};

/// Writes `bytes` to `path` through a temporary file in the same folder, synced and then
/// renamed over `path`: readers see the old file or the new one, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(bytes)
        .map_err(|e| DataError::io("cannot write", path, e))?;
    file.commit()
}

/// A file written in pieces that appears at its path whole or not at all: the pieces go to a
/// temporary file in the same folder, which [`commit`](Self::commit) syncs and renames over
/// the path. Dropped without a commit (an error, a panic), the temporary file is removed and
/// the path is untouched.
pub struct AtomicFile {
    path: std::path::PathBuf,
    tmp: std::io::BufWriter<tempfile::NamedTempFile>,
}

impl AtomicFile {
    /// Starts writing `path` (its folder must exist).
    pub fn create(path: &Path) -> Result<Self> {
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        if !dir.is_dir() {
            let (action, kind) = if dir.exists() {
                (
                    "cannot write into (it is a file, not a folder)",
                    std::io::ErrorKind::NotADirectory,
                )
            } else {
                (
                    "cannot write into missing folder",
                    std::io::ErrorKind::NotFound,
                )
            };
            return Err(DataError::io(action, dir, std::io::Error::from(kind)));
        }
        let tmp = tempfile::Builder::new()
            .prefix(TEMPORARY_PREFIX)
            .tempfile_in(dir)
            .map_err(|e| DataError::io("cannot create a temporary file in", dir, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            tmp: std::io::BufWriter::with_capacity(1 << 16, tmp),
        })
    }

    /// Syncs what was written and renames it over the path.
    pub fn commit(self) -> Result<()> {
        let path = self.path;
        let tmp = self
            .tmp
            .into_inner()
            .map_err(|e| DataError::io("cannot write", &path, e.into_error()))?;
        tmp.as_file()
            .sync_all()
            .map_err(|e| DataError::io("cannot write", &path, e))?;
        // Temporary files are created private (0600); results are ordinary files.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            tmp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o644))
                .map_err(|e| DataError::io("cannot set permissions of", &path, e))?;
        }
        tmp.persist(&path)
            .map_err(|e| DataError::io("cannot replace", &path, e.error))?;
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tmp.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.tmp.flush()
    }
}

/// An exclusive lock on `path` (created if missing), waited for if another process holds it
/// (`waiting` is then called once, e.g. to say so): for caches that several commands may
/// build at once, so that one builds and the others read what it built. The operating
/// system frees it when the process ends, however it ends.
pub fn lock_exclusive(path: &Path, waiting: impl FnOnce()) -> Result<std::fs::File> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|e| DataError::io("cannot create", dir, e))?;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| DataError::io("cannot open the lock file", path, e))?;
    match file.try_lock() {
        Ok(()) => return Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => waiting(),
        Err(std::fs::TryLockError::Error(e)) => return Err(DataError::io("cannot lock", path, e)),
    }
    file.lock()
        .map_err(|e| DataError::io("cannot lock", path, e))?;
    Ok(file)
}

/// The prefix of [`write_atomic`]'s and [`AtomicFile`]'s temporary files.
pub const TEMPORARY_PREFIX: &str = ".tmp-";

/// How old a temporary file must be before [`sweep_temporaries`] takes it for abandoned in a
/// folder that other processes may be writing into at the same time: one hour, far longer
/// than any one write takes.
pub const ABANDONED_AFTER: std::time::Duration = std::time::Duration::from_secs(3600);

/// Removes the temporary files that a process killed during [`write_atomic`] (or before an
/// [`AtomicFile`]'s commit) leaves behind: the files named `.tmp-*` in `dir` — and in its
/// subfolders with `recursive` — last modified at least `min_age` ago (give zero for a
/// folder the caller holds a lock on, [`ABANDONED_AFTER`] otherwise). Returns how many it
/// removed; a missing folder has none.
pub fn sweep_temporaries(
    dir: &Path,
    min_age: std::time::Duration,
    recursive: bool,
) -> Result<usize> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(0);
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(|e| DataError::io("cannot list", dir, e))?;
        let path = entry.path();
        let kind = entry
            .file_type()
            .map_err(|e| DataError::io("cannot read", &path, e))?;
        if kind.is_dir() {
            if recursive {
                removed += sweep_temporaries(&path, min_age, true)?;
            }
            continue;
        }
        if !entry
            .file_name()
            .to_string_lossy()
            .starts_with(TEMPORARY_PREFIX)
        {
            continue;
        }
        let age = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .unwrap_or_default();
        if age >= min_age {
            match std::fs::remove_file(&path) {
                Ok(()) => removed += 1,
                // Renamed into place or swept by another process meanwhile.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(DataError::io("cannot remove", &path, e)),
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_file_dropped_before_its_commit_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        let mut file = AtomicFile::create(&path).unwrap();
        file.write_all(b"half of it").unwrap();
        drop(file);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let mut file = AtomicFile::create(&path).unwrap();
        file.write_all(b"all ").unwrap();
        file.write_all(b"of it").unwrap();
        file.commit().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"all of it");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn an_exclusive_lock_is_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache/x.lock");
        let first = lock_exclusive(&path, || panic!("nobody holds it")).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let path = path.clone();
            std::thread::spawn(move || {
                let _held = lock_exclusive(&path, || tx.send(()).unwrap()).unwrap();
            })
        };
        rx.recv_timeout(std::time::Duration::from_secs(5))
            .expect("the second taker waits");
        drop(first);
        waiter.join().unwrap();
    }

    #[test]
    fn abandoned_temporaries_are_swept_by_age_and_others_kept() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("run/checkpoint");
        std::fs::create_dir_all(&nested).unwrap();
        let old = dir.path().join(".tmp-old");
        let fresh = dir.path().join(".tmp-fresh");
        let deep = nested.join(".tmp-deep");
        let kept = dir.path().join("model.json");
        for path in [&old, &fresh, &deep, &kept] {
            std::fs::write(path, b"x").unwrap();
        }
        let two_hours_ago = std::time::SystemTime::now() - 2 * ABANDONED_AFTER;
        std::fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(two_hours_ago)
            .unwrap();
        assert_eq!(
            sweep_temporaries(dir.path(), ABANDONED_AFTER, false).unwrap(),
            1
        );
        assert!(!old.exists() && fresh.exists() && deep.exists() && kept.exists());
        let zero = std::time::Duration::ZERO;
        assert_eq!(sweep_temporaries(dir.path(), zero, true).unwrap(), 2);
        assert!(!fresh.exists() && !deep.exists() && kept.exists());
        assert_eq!(
            sweep_temporaries(&dir.path().join("none"), zero, true).unwrap(),
            0
        );
    }

    #[test]
    fn missing_folder_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = write_atomic(&dir.path().join("no/such/a.txt"), b"x")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("missing folder") && err.contains("no/such"),
            "{err}"
        );
    }

    /// Failures that hold for root too (CI runs as root, which ignores permissions).
    #[test]
    fn a_file_in_the_way_is_a_clear_error_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        // The folder is a file.
        let blocker = dir.path().join("blocker");
        std::fs::write(&blocker, b"keep").unwrap();
        let err = write_atomic(&blocker.join("a.txt"), b"x")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("not a folder") && err.contains("blocker"),
            "{err}"
        );
        assert_eq!(std::fs::read(&blocker).unwrap(), b"keep");
        // The target is a folder that holds a file: it cannot be replaced.
        let target = dir.path().join("a.txt");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("inside"), b"x").unwrap();
        let err = write_atomic(&target, b"x").unwrap_err().to_string();
        assert!(
            err.contains("cannot replace") && err.contains("a.txt"),
            "{err}"
        );
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(".tmp-"))
            .collect();
        assert!(left.is_empty(), "temporary files left: {left:?}");
    }
}
