//! Getting the archive: download with checksum and progress bar, or a local copy.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{DataError, Result};

/// The official address of the corpus (Maas et al., 2011).
pub const OFFICIAL_URL: &str = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz";

/// SHA-256 of the official archive, lowercase hex.
pub const OFFICIAL_SHA256: &str =
    "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe";

/// Environment variable naming a local archive to use instead of downloading.
pub const ARCHIVE_ENV: &str = "IMDB_ARCHIVE";

/// Environment variable naming the folder that keeps downloads, extractions and caches.
pub const DATA_DIR_ENV: &str = "IMDB_DATA_DIR";

/// File name of the archive inside the data folder.
pub const ARCHIVE_FILE_NAME: &str = "aclImdb_v1.tar.gz";

/// Where the archive comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveSource {
    /// Download from `url` and require the SHA-256 `sha256` (lowercase hex).
    Download {
        /// Address of the archive.
        url: String,
        /// Expected SHA-256, lowercase hex.
        sha256: String,
    },
    /// Use an archive already on disk; its digest is computed and recorded, not checked.
    Local(PathBuf),
}

impl ArchiveSource {
    /// The official download.
    pub fn official() -> Self {
        Self::Download {
            url: OFFICIAL_URL.to_string(),
            sha256: OFFICIAL_SHA256.to_string(),
        }
    }

    /// `explicit` if given, else the archive named by `IMDB_ARCHIVE`, else the official download.
    pub fn resolve(explicit: Option<&Path>) -> Self {
        match explicit {
            Some(path) => Self::Local(path.to_path_buf()),
            None => match std::env::var_os(ARCHIVE_ENV) {
                Some(path) if !path.is_empty() => Self::Local(PathBuf::from(path)),
                _ => Self::official(),
            },
        }
    }
}

/// An archive on disk with its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocatedArchive {
    /// Path of the `.tar.gz` file.
    pub path: PathBuf,
    /// Its SHA-256, lowercase hex.
    pub sha256: String,
}

/// The folder that keeps downloads, extractions and caches: `IMDB_DATA_DIR` if set, else
/// `imdb-sentiment` in the user's cache folder.
pub fn default_data_dir() -> Result<PathBuf> {
    match std::env::var_os(DATA_DIR_ENV) {
        Some(dir) if !dir.is_empty() => Ok(PathBuf::from(dir)),
        _ => dirs::cache_dir()
            .map(|dir| dir.join("imdb-sentiment"))
            .ok_or(DataError::NoDataDir),
    }
}

/// Lowercase hex SHA-256 of everything `reader` yields.
pub fn sha256_reader(mut reader: impl Read) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// Lowercase hex SHA-256 of a file.
pub fn sha256_file(path: &Path) -> Result<String> {
    let file = File::open(path).map_err(|e| DataError::io("cannot open", path, e))?;
    sha256_reader(BufReader::new(file)).map_err(|e| DataError::io("cannot read", path, e))
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Makes the archive available on disk and returns it with its digest.
///
/// A local source is checked to exist and hashed. A download goes to
/// `data_dir/aclImdb_v1.tar.gz`; a file already there with the right digest is reused.
pub fn locate_archive(
    source: &ArchiveSource,
    data_dir: &Path,
    show_progress: bool,
) -> Result<LocatedArchive> {
    match source {
        ArchiveSource::Local(path) => {
            if !path.is_file() {
                return Err(DataError::io(
                    "cannot find the archive named by IMDB_ARCHIVE (or the config)",
                    path,
                    std::io::Error::from(std::io::ErrorKind::NotFound),
                ));
            }
            Ok(LocatedArchive {
                sha256: sha256_file(path)?,
                path: path.clone(),
            })
        }
        ArchiveSource::Download { url, sha256 } => {
            let target = data_dir.join(ARCHIVE_FILE_NAME);
            if target.is_file() && sha256_file(&target)? == *sha256 {
                return Ok(LocatedArchive {
                    path: target,
                    sha256: sha256.clone(),
                });
            }
            download(url, sha256, &target, show_progress)?;
            Ok(LocatedArchive {
                path: target,
                sha256: sha256.clone(),
            })
        }
    }
}

/// How long a download may wait on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DownloadTimeouts {
    /// To connect (resolving the name included).
    pub connect: std::time::Duration,
    /// For the answer's headers, and between two pieces of the body: a server that stalls
    /// this long fails the download (what was received is kept, to resume from).
    pub read: std::time::Duration,
}

impl Default for DownloadTimeouts {
    fn default() -> Self {
        Self {
            connect: std::time::Duration::from_secs(30),
            read: std::time::Duration::from_secs(60),
        }
    }
}

/// The partial download of `target`: `target` with `.part` added.
pub fn partial_path(target: &Path) -> PathBuf {
    let mut name = target.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    target.with_file_name(name)
}

/// Downloads `url` to `target`, requiring the SHA-256 `expected`, with the default
/// [`DownloadTimeouts`].
///
/// The body goes to `target.part` (see [`partial_path`]), which is renamed to `target` only
/// once complete and verified, so `target` is never left half-written. A download that stops
/// (the connection drops, the server stalls past the read timeout) keeps `target.part`, and
/// the next call resumes it with a `Range` request (starting over if the server does not
/// honour it); a finished download whose digest is wrong is removed.
pub fn download(url: &str, expected: &str, target: &Path, show_progress: bool) -> Result<()> {
    download_with(
        url,
        expected,
        target,
        show_progress,
        DownloadTimeouts::default(),
    )
}

/// [`download`] with the given timeouts.
pub fn download_with(
    url: &str,
    expected: &str,
    target: &Path,
    show_progress: bool,
    timeouts: DownloadTimeouts,
) -> Result<()> {
    let dir = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| DataError::io("cannot create folder", dir, e))?;
    let part = partial_path(target);
    let fail = |message: String| DataError::Download {
        url: url.to_string(),
        message,
    };
    let timed_out = |e: &dyn std::fmt::Display| {
        let text = e.to_string();
        if text.to_ascii_lowercase().contains("timeout") || text.contains("timed out") {
            format!(
                "the server sent nothing for {} s ({text})",
                timeouts.read.as_secs_f64()
            )
        } else {
            text
        }
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(timeouts.connect))
        .timeout_recv_response(Some(timeouts.read))
        .timeout_per_read(Some(timeouts.read))
        .build()
        .into();

    // What an earlier, interrupted download kept.
    let have = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    let mut request = agent.get(url);
    if have > 0 {
        request = request.header("Range", format!("bytes={have}-"));
    }
    let response = request.call().map_err(|e| fail(timed_out(&e)))?;
    match response.status().as_u16() {
        200 | 206 => {}
        // The kept part is no prefix of what the server has: start over.
        416 if have > 0 => {
            std::fs::remove_file(&part).map_err(|e| DataError::io("cannot remove", &part, e))?;
            return download_with(url, expected, target, show_progress, timeouts);
        }
        status => return Err(fail(format!("the server answered HTTP {status}"))),
    }
    let length = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // A 206 from where we stopped continues the file; anything else starts it over.
    let resumed = have > 0
        && response.status().as_u16() == 206
        && response
            .headers()
            .get("content-range")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with(&format!("bytes {have}-")));
    let start = if resumed { have } else { 0 };
    let total = length.map(|n| n + start);
    let mut body = response.into_body().into_reader();

    let mut hasher = Sha256::new();
    let mut file = if resumed {
        let mut existing = File::open(&part).map_err(|e| DataError::io("cannot read", &part, e))?;
        std::io::copy(&mut existing, &mut HashWriter(&mut hasher))
            .map_err(|e| DataError::io("cannot read", &part, e))?;
        std::fs::OpenOptions::new()
            .append(true)
            .open(&part)
            .map_err(|e| DataError::io("cannot write", &part, e))?
    } else {
        File::create(&part).map_err(|e| DataError::io("cannot create", &part, e))?
    };
    let bar = progress_bar(total, show_progress);
    let mut buf = vec![0u8; 1 << 16];
    let mut received = start;
    let stopped = loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break None,
            Ok(n) => n,
            Err(e) => break Some(timed_out(&e)),
        };
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n])
            .map_err(|e| DataError::io("cannot write", &part, e))?;
        received += n as u64;
        bar.set_position(received);
    };
    bar.finish_and_clear();
    file.sync_all()
        .map_err(|e| DataError::io("cannot write", &part, e))?;
    drop(file);
    let short = total.is_some_and(|total| received < total);
    if stopped.is_some() || short {
        return Err(fail(format!(
            "{} after {received} of {} bytes; they are kept in {}: run the same command \
             again to resume",
            stopped.unwrap_or_else(|| "the connection closed".to_string()),
            total.map_or("?".to_string(), |t| t.to_string()),
            part.display()
        )));
    }
    let actual = hex(&hasher.finalize());
    if actual != expected {
        // Not worth resuming: start over next time.
        let _ = std::fs::remove_file(&part);
        return Err(DataError::Checksum {
            path: target.to_path_buf(),
            expected: expected.to_string(),
            actual,
        });
    }
    std::fs::rename(&part, target)
        .map_err(|e| DataError::io("cannot move the download to", target, e))?;
    Ok(())
}

/// Feeds what is written into a hasher.
struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn progress_bar(total: Option<u64>, show: bool) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = match total {
        Some(total) => indicatif::ProgressBar::new(total),
        None => indicatif::ProgressBar::no_length(),
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "downloading {bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style);
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_known_input() {
        // Digest of "abc" from FIPS 180-2, appendix B.1.
        let digest = sha256_reader(&b"abc"[..]).unwrap();
        assert_eq!(
            digest,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn missing_local_archive_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.tar.gz");
        let err = locate_archive(&ArchiveSource::Local(missing.clone()), dir.path(), false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("nope.tar.gz"), "{err}");
        assert!(err.contains("IMDB_ARCHIVE"), "{err}");
    }
}
