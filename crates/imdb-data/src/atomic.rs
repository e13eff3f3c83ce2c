//! Writing files so that a crash never leaves a half-written one behind.

use std::io::Write;
use std::path::Path;

use crate::error::{DataError, Result};

/// Writes `bytes` to `path` through a temporary file in the same folder, synced and then
/// renamed over `path`: readers see the old file or the new one, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
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
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(|e| DataError::io("cannot create a temporary file in", dir, e))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| DataError::io("cannot write", path, e))?;
    // Temporary files are created private (0600); results are ordinary files.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(|e| DataError::io("cannot set permissions of", path, e))?;
    }
    tmp.persist(path)
        .map_err(|e| DataError::io("cannot replace", path, e.error))?;
    Ok(())
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
