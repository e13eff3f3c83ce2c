//! One `experiment` command per output folder at a time.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::XtaskError;

/// An exclusive lock on an experiment's output folder, held until dropped. The operating
/// system releases it when the process ends, however it ends (a SIGKILL included), so a
/// stale lock never blocks the next command.
#[derive(Debug)]
pub struct OutputLock {
    _file: File,
}

impl OutputLock {
    /// The lock file of `dir`.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(".lock")
    }

    /// Takes the lock of `dir` (which must exist), or says who holds it.
    pub fn acquire(dir: &Path) -> Result<Self, XtaskError> {
        let path = Self::path(dir);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| XtaskError::io("cannot open the lock file", &path, e))?;
        match file.try_lock() {
            Ok(()) => {
                let command: Vec<String> = std::env::args().collect();
                let holder = format!("pid {} ({})\n", std::process::id(), command.join(" "));
                file.set_len(0)
                    .and_then(|()| file.write_all(holder.as_bytes()))
                    .map_err(|e| XtaskError::io("cannot write the lock file", &path, e))?;
                Ok(Self { _file: file })
            }
            Err(TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                let holder = holder.trim();
                Err(XtaskError::Usage(format!(
                    "{} is in use by another experiment command ({}); wait for it to finish, \
                     or write to another folder with --out",
                    dir.display(),
                    if holder.is_empty() {
                        "starting"
                    } else {
                        holder
                    }
                )))
            }
            Err(TryLockError::Error(e)) => Err(XtaskError::io("cannot lock", &path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_holder_and_freed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let first = OutputLock::acquire(dir.path()).unwrap();
        let err = OutputLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())) && err.contains("--out"),
            "{err}"
        );
        drop(first);
        OutputLock::acquire(dir.path()).unwrap();
    }
}
