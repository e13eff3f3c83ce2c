//! One `experiment` command per output folder at a time, or the shards of one grid together;
//! one command per run folder at a time.

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

/// How an [`OutputLock`] is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holding {
    /// The only command in the folder (an unsharded experiment).
    Exclusive,
    /// One of several shards of one grid, each training other runs (`--shard I/N`).
    Shared,
}

impl OutputLock {
    /// The lock file of `dir`.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(".lock")
    }

    /// Takes the lock of `dir` as `holding` says, or says who holds it (`holder` names what
    /// holds it in the refusal: an experiment command, a shard, the training of a run).
    pub fn acquire_as(dir: &Path, holding: Holding, holder: &str) -> Result<Self, XtaskError> {
        let path = Self::path(dir);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| XtaskError::io("cannot open the lock file", &path, e))?;
        let taken = match holding {
            Holding::Exclusive => file.try_lock(),
            Holding::Shared => file.try_lock_shared(),
        };
        match taken {
            Ok(()) => {
                if holding == Holding::Exclusive {
                    let command: Vec<String> = std::env::args().collect();
                    let who = format!("pid {} ({})\n", std::process::id(), command.join(" "));
                    file.set_len(0)
                        .and_then(|()| file.write_all(who.as_bytes()))
                        .map_err(|e| XtaskError::io("cannot write the lock file", &path, e))?;
                }
                Ok(Self { _file: file })
            }
            Err(TryLockError::WouldBlock) => {
                let who = std::fs::read_to_string(&path).unwrap_or_default();
                let who = who.trim();
                Err(XtaskError::Usage(format!(
                    "{} is in use by another {holder} ({}); wait for it to finish, or write to \
                     another folder with --out",
                    dir.display(),
                    if who.is_empty() {
                        "shards of a grid, or one starting"
                    } else {
                        who
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

    fn acquire(dir: &Path) -> Result<OutputLock, XtaskError> {
        OutputLock::acquire_as(dir, Holding::Exclusive, "experiment command")
    }

    #[test]
    fn a_second_lock_is_refused_naming_the_holder_and_freed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let first = acquire(dir.path()).unwrap();
        let err = acquire(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())) && err.contains("--out"),
            "{err}"
        );
        drop(first);
        let exclusive = acquire(dir.path()).unwrap();
        let refused = OutputLock::acquire_as(dir.path(), Holding::Shared, "shard")
            .unwrap_err()
            .to_string();
        assert!(refused.contains("another shard"), "{refused}");
        drop(exclusive);
        // Shards share the folder; an unsharded command waits for them to be done.
        let a = OutputLock::acquire_as(dir.path(), Holding::Shared, "shard").unwrap();
        let b = OutputLock::acquire_as(dir.path(), Holding::Shared, "shard").unwrap();
        assert!(acquire(dir.path()).is_err());
        drop((a, b));
        acquire(dir.path()).unwrap();
    }
}
