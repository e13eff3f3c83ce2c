//! How `IMDB_ARCHIVE` chooses the archive. The variable is process-wide, so this file holds
//! the only test that sets it: no other test of this binary can race with it.

use std::path::{Path, PathBuf};

use imdb_data::fetch::ArchiveSource;

#[test]
fn explicit_path_wins_over_the_environment_which_wins_over_the_download() {
    // SAFETY: this binary's only test; nothing else reads or writes the environment meanwhile.
    unsafe { std::env::set_var("IMDB_ARCHIVE", "/from/env.tar.gz") };
    assert_eq!(
        ArchiveSource::resolve(None),
        ArchiveSource::Local(PathBuf::from("/from/env.tar.gz"))
    );
    assert_eq!(
        ArchiveSource::resolve(Some(Path::new("/x/y.tar.gz"))),
        ArchiveSource::Local(PathBuf::from("/x/y.tar.gz"))
    );
    // Empty or unset: the official download.
    unsafe { std::env::set_var("IMDB_ARCHIVE", "") };
    assert_eq!(ArchiveSource::resolve(None), ArchiveSource::official());
    unsafe { std::env::remove_var("IMDB_ARCHIVE") };
    assert_eq!(ArchiveSource::resolve(None), ArchiveSource::official());
}
