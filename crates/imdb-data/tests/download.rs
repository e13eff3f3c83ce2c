//! Downloads from a local HTTP server on 127.0.0.1: checksum, atomic write, broken transfers.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::thread::JoinHandle;

use imdb_data::DataError;
use imdb_data::fetch::{ArchiveSource, download, hex, locate_archive, sha256_file};

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

#[test]
fn cut_connection_is_an_error_and_leaves_no_file() {
    let body = vec![7u8; 100_000];
    let sha = sha_of(&body);
    let (url, server) = serve(body, 1, Some(1_000));
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("aclImdb_v1.tar.gz");
    let err = download(&url, &sha, &target, false).unwrap_err();
    server.join().unwrap();
    assert!(matches!(err, DataError::Download { .. }), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
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
