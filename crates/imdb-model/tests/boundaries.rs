//! The model crate's rules (ARCHITECTURE.md): usable alone, it depends on no data, network,
//! archive or progress crate and does no file or environment access.

use std::path::Path;

#[test]
fn depends_on_no_data_network_archive_or_progress_crate() {
    let manifest = include_str!("../Cargo.toml");
    let dependencies: Vec<&str> = manifest
        .split("\n[")
        .filter(|section| section.contains("dependencies]") && !section.starts_with("dev-"))
        .flat_map(|section| section.lines().skip(1))
        .filter_map(|line| line.split(['=', '.']).next())
        .map(str::trim)
        .filter(|name| !name.is_empty() && !name.starts_with('#'))
        .collect();
    assert!(dependencies.contains(&"burn"), "read {dependencies:?}");
    for forbidden in [
        "imdb-data",
        "ureq",
        "tar",
        "flate2",
        "indicatif",
        "dirs",
        "sha2",
        "tempfile",
    ] {
        assert!(
            !dependencies.contains(&forbidden),
            "imdb-model depends on {forbidden}"
        );
    }
}

fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push((
                path.display().to_string(),
                std::fs::read_to_string(&path).unwrap(),
            ));
        }
    }
}

#[test]
fn reads_no_file_and_no_environment_variable() {
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    assert!(files.len() > 5, "found {} source files", files.len());
    for (path, text) in &files {
        for forbidden in ["std::env", "std::fs", "env::var", "File::open"] {
            assert!(!text.contains(forbidden), "{path} uses {forbidden}");
        }
    }
}
