//! What the end-to-end test files share: the binary under test and running it.

// Each test file uses its own part of these helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use imdb_data::synthetic::{SyntheticSpec, write_synthetic_archive};

/// The `xtask` binary cargo built for these tests.
pub fn xtask() -> &'static str {
    env!("CARGO_BIN_EXE_xtask")
}

/// Runs `cmd`, which must succeed; its output otherwise goes into the failure message.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("xtask runs");
    assert!(
        out.status.success(),
        "xtask failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Headless Chromium, if installed (`.ci/run` installs Debian's `chromium`).
pub fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH")?
                .to_str()?
                .split(':')
                .map(|dir| Path::new(dir).join(name))
                .find(|path| path.is_file())
        })
}

/// Headless Chromium with a fresh profile and the flags a closed network needs, or `None`
/// (the `what` of `page` skipped, said on stderr) when it is not installed and
/// `IMDB_REQUIRE_BROWSER` is not `1` (CI sets it).
pub fn headless_chromium(what: &str, page: &str) -> Option<(Command, tempfile::TempDir)> {
    let Some(path) = chromium() else {
        assert!(
            std::env::var("IMDB_REQUIRE_BROWSER").as_deref() != Ok("1"),
            "IMDB_REQUIRE_BROWSER=1 but no chromium is on PATH: install Debian's `chromium`"
        );
        eprintln!("no chromium on PATH: {what} of {page} skipped");
        return None;
    };
    // Returned with the command, so that it lives until the browser is done.
    let profile = tempfile::tempdir().unwrap();
    let mut command = Command::new(path);
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()));
    Some((command, profile))
}

/// The workspace root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The archive the tests use: `IMDB_ARCHIVE`, or a synthetic one made once.
pub fn archive() -> PathBuf {
    static SYNTHETIC: OnceLock<PathBuf> = OnceLock::new();
    if let Some(path) = std::env::var_os("IMDB_ARCHIVE") {
        return PathBuf::from(path);
    }
    SYNTHETIC
        .get_or_init(|| {
            let dir = std::env::temp_dir().join(format!("imdb-cli-tests-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("synthetic.tar.gz");
            let spec = SyntheticSpec {
                per_class: 250,
                unsup: 20,
                min_words: 12,
                seed: 5,
            };
            write_synthetic_archive(&path, &spec).unwrap();
            path
        })
        .clone()
}

/// A command with the test corpus and a private data folder.
pub fn command(data_dir: &Path) -> Command {
    let mut cmd = Command::new(xtask());
    cmd.current_dir(repo())
        .env("IMDB_ARCHIVE", archive())
        .env("IMDB_DATA_DIR", data_dir)
        .stdin(Stdio::null());
    cmd
}

/// The command that trains the smoke experiment's `lstm` run into `out`.
pub fn smoke_lstm(data_dir: &Path, out: &Path) -> Command {
    let mut cmd = command(data_dir);
    cmd.args([
        "experiment",
        "configs/smoke.toml",
        "--only",
        "lstm",
        "--out",
    ])
    .arg(out);
    cmd
}

/// The smoke experiment's `lstm` run trained into `tmp/runs`: its folder, and the data folder.
pub fn trained_model(tmp: &Path) -> (PathBuf, PathBuf) {
    let (out, data) = (tmp.join("runs"), tmp.join("data"));
    run(&mut smoke_lstm(&data, &out));
    (out.join("smoke/lstm"), data)
}
