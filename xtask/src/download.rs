//! `cargo xtask download`: fetch, verify and extract the corpus, and say where it is.

use imdb_data::corpus::{Split, read_split};
use imdb_data::{ArchiveSource, LoadOptions, fetch_and_extract};

use crate::cli::DownloadArgs;
use crate::error::XtaskError;

/// Runs the command.
pub fn run(args: &DownloadArgs) -> Result<(), XtaskError> {
    let mut options = LoadOptions::from_env()?;
    if let Some(archive) = &args.archive {
        options.source = ArchiveSource::Local(archive.clone());
    }
    match &options.source {
        ArchiveSource::Local(path) => eprintln!("using the local archive {}", path.display()),
        ArchiveSource::Download { url, .. } => eprintln!("downloading {url}"),
    }
    let (archive, root) = fetch_and_extract(&options)?;
    let train = read_split(&root, Split::Train)?.len();
    let test = read_split(&root, Split::Test)?.len();
    println!("archive: {}", archive.path.display());
    println!("sha256:  {}", archive.sha256);
    if archive.sha256 == imdb_data::OFFICIAL_SHA256 {
        println!("         (the official archive)");
    }
    println!("corpus:  {}", root.display());
    println!("reviews: {train} train, {test} test");
    Ok(())
}
