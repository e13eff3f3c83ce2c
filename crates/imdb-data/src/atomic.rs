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
        return Err(DataError::io(
            "cannot write into missing folder",
            dir,
            std::io::Error::from(std::io::ErrorKind::NotFound),
        ));
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

    #[cfg(unix)]
    #[test]
    fn read_only_folder_is_a_clear_error() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let ro = dir.path().join("ro");
        std::fs::create_dir(&ro).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
        let result = write_atomic(&ro.join("a.txt"), b"x");
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
        // Root ignores permissions; only check the message where the write was refused.
        if let Err(err) = result {
            assert!(err.to_string().contains("ro"), "{err}");
        }
    }
}
