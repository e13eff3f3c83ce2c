//! Downloads from a local HTTP server on 127.0.0.1: checksum, atomic write, broken transfers.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::thread::JoinHandle;

use imdb_data::DataError;
use std::time::{Duration, Instant};

use imdb_data::fetch::{
    ArchiveSource, DownloadTimeouts, download, download_with, hex, locate_archive, partial_path,
    sha256_file,
};

/// Serves `body` to each of `connections` requests; `cut` sends only that many bytes but
/// announces the whole length.
fn serve(body: Vec<u8>, connections: usize, cut: Option<usize>) -> (String, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/aclImdb_v1.tar.gz",
        listener.local_addr().unwrap()
    );
    let handle = std::thread::spawn(move || {
        for _ in 0..connections {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let header = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/gzip\r\n\
                 Connection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(header.as_bytes());
            let _ = stream.write_all(&body[..cut.unwrap_or(body.len())]);
        }
    });
    (url, handle)
}

fn sha_of(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(bytes))
}

#[test]
fn download_verifies_and_is_reused() {
    let body: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let sha = sha_of(&body);
    let (url, server) = serve(body.clone(), 1, None);
    let dir = tempfile::tempdir().unwrap();
    let source = ArchiveSource::Download {
        url,
        sha256: sha.clone(),
    };
    let located = locate_archive(&source, dir.path(), false).unwrap();
    server.join().unwrap();
    assert_eq!(located.sha256, sha);
    assert_eq!(std::fs::read(&located.path).unwrap(), body);
    // The server is gone: a second call must reuse the verified file.
    let again = locate_archive(&source, dir.path(), false).unwrap();
    assert_eq!(again.path, located.path);
    assert_eq!(sha256_file(&again.path).unwrap(), sha);
}

#[test]
fn wrong_checksum_leaves_no_file() {
    let body = b"not the corpus".to_vec();
    let (url, server) = serve(body, 1, None);
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("aclImdb_v1.tar.gz");
    let err = download(&url, &"0".repeat(64), &target, false).unwrap_err();
    server.join().unwrap();
    assert!(matches!(err, DataError::Checksum { .. }), "{err}");
    assert!(err.to_string().contains("expected 0000"), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// Serves `body` honouring `Range: bytes=N-` (206 from N), to `connections` requests; the
/// first answer stops after `cut` bytes of what it announced and, with `stall`, then sends
/// nothing more for that long before closing.
fn serve_ranges(
    body: Vec<u8>,
    connections: usize,
    cut: usize,
    stall: Option<Duration>,
) -> (String, JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/aclImdb_v1.tar.gz",
        listener.local_addr().unwrap()
    );
    let handle = std::thread::spawn(move || {
        let mut ranges = Vec::new();
        for i in 0..connections {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0u8; 4096];
            let n = stream.read(&mut request).unwrap_or(0);
            let request = String::from_utf8_lossy(&request[..n]).to_ascii_lowercase();
            let from: usize = request
                .lines()
                .find_map(|l| l.strip_prefix("range: bytes="))
                .and_then(|r| r.trim_end_matches('-').parse().ok())
                .unwrap_or(0);
            ranges.push(format!("{from}"));
            let rest = &body[from..];
            let header = if from > 0 {
                format!(
                    "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes \
                     {from}-{}/{}\r\nConnection: close\r\n\r\n",
                    rest.len(),
                    body.len() - 1,
                    body.len()
                )
            } else {
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    rest.len()
                )
            };
            let _ = stream.write_all(header.as_bytes());
            let send = if i == 0 {
                cut.min(rest.len())
            } else {
                rest.len()
            };
            let _ = stream.write_all(&rest[..send]);
            let _ = stream.flush();
            if i == 0
                && let Some(stall) = stall
            {
                std::thread::sleep(stall);
            }
        }
        ranges
    });
    (url, handle)
}

fn quick() -> DownloadTimeouts {
    DownloadTimeouts {
        connect: Duration::from_secs(5),
        read: Duration::from_millis(500),
    }
}

#[test]
fn a_dropped_connection_keeps_what_came_and_the_next_download_resumes_it() {
    let body: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let sha = sha_of(&body);
    let (url, server) = serve_ranges(body.clone(), 2, 30_000, None);
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("aclImdb_v1.tar.gz");
    let err = download_with(&url, &sha, &target, false, quick()).unwrap_err();
    assert!(matches!(err, DataError::Download { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("30000 of 100000 bytes") && text.contains(".part") && text.contains("again"),
        "{text}"
    );
    assert!(!target.exists());
    assert_eq!(
        std::fs::read(partial_path(&target)).unwrap(),
        &body[..30_000]
    );
    // Run again: the rest is asked for with a Range request, and the whole file verifies.
    download_with(&url, &sha, &target, false, quick()).unwrap();
    assert_eq!(server.join().unwrap(), ["0", "30000"]);
    assert_eq!(std::fs::read(&target).unwrap(), body);
    assert!(!partial_path(&target).exists());
}

#[test]
fn a_stalled_server_times_out_and_says_what_to_do() {
    let body = vec![9u8; 50_000];
    let sha = sha_of(&body);
    let (url, server) = serve_ranges(body.clone(), 2, 10_000, Some(Duration::from_millis(1500)));
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("aclImdb_v1.tar.gz");
    let started = Instant::now();
    let err = download_with(&url, &sha, &target, false, quick()).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(1400),
        "{:?}",
        started.elapsed()
    );
    let text = err.to_string();
    assert!(text.contains("sent nothing for 0.5 s"), "{text}");
    assert!(
        text.contains("IMDB_ARCHIVE") && text.contains("resume"),
        "{text}"
    );
    assert_eq!(
        std::fs::metadata(partial_path(&target)).unwrap().len(),
        10_000
    );
    // The one-connection server is free again once its stall is over.
    std::thread::sleep(Duration::from_millis(1500).saturating_sub(started.elapsed()));
    download_with(&url, &sha, &target, false, quick()).unwrap();
    assert_eq!(server.join().unwrap(), ["0", "10000"]);
    assert_eq!(std::fs::read(&target).unwrap(), body);
}

#[test]
fn unreachable_server_is_a_clear_error() {
    // Bind then drop: nothing listens on this port any more.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{port}/a.tar.gz");
    let err = download(&url, &"0".repeat(64), &dir.path().join("a"), false).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&url) && text.contains("IMDB_ARCHIVE"),
        "{text}"
    );
}
