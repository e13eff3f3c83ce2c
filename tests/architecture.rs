//! The rules ARCHITECTURE.md states, checked against the code: which crate may depend on
//! which (every arrow points down), what only `xtask` may do, and that every command is
//! described.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

mod common;
use common::xtask;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The crate's non-dev dependencies, by name.
fn dependencies(krate: &str) -> BTreeSet<String> {
    let path = repo().join(krate).join("Cargo.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let manifest: toml::Table = text.parse().unwrap();
    let mut names = BTreeSet::new();
    if let Some(deps) = manifest.get("dependencies").and_then(toml::Value::as_table) {
        names.extend(deps.keys().cloned());
    }
    if let Some(targets) = manifest.get("target").and_then(toml::Value::as_table) {
        for target in targets.values() {
            if let Some(deps) = target.get("dependencies").and_then(toml::Value::as_table) {
                names.extend(deps.keys().cloned());
            }
        }
    }
    names
}

const CRATES: [(&str, &str); 6] = [
    ("imdb-rng", "crates/imdb-rng"),
    ("imdb-data", "crates/imdb-data"),
    ("imdb-model", "crates/imdb-model"),
    ("imdb-train", "crates/imdb-train"),
    ("imdb-report", "crates/imdb-report"),
    ("xtask", "xtask"),
];

#[test]
fn every_arrow_points_down() {
    // The layers of ARCHITECTURE.md's diagram: the workspace crates each may use.
    let allowed: [(&str, &[&str]); 6] = [
        ("imdb-rng", &[]),
        ("imdb-data", &["imdb-rng"]),
        ("imdb-model", &["imdb-rng"]),
        ("imdb-train", &["imdb-rng", "imdb-data", "imdb-model"]),
        (
            "imdb-report",
            &["imdb-rng", "imdb-data", "imdb-model", "imdb-train"],
        ),
        (
            "xtask",
            &[
                "imdb-rng",
                "imdb-data",
                "imdb-model",
                "imdb-train",
                "imdb-report",
            ],
        ),
    ];
    let workspace: BTreeSet<&str> = CRATES.iter().map(|(name, _)| *name).collect();
    for ((name, dir), (same, allowed)) in CRATES.iter().zip(allowed) {
        assert_eq!(*name, same);
        let deps = dependencies(dir);
        assert!(
            !deps.is_empty() || *name == "imdb-rng",
            "{name}: read no dependency"
        );
        for dep in &deps {
            if workspace.contains(dep.as_str()) {
                assert!(allowed.contains(&dep.as_str()), "{name} depends on {dep}");
            }
        }
    }
    // The random numbers depend on nothing; the data crate on no deep-learning crate.
    assert!(dependencies("crates/imdb-rng").is_empty());
    let data = dependencies("crates/imdb-data");
    assert!(!data.iter().any(|d| d.starts_with("burn")), "{data:?}");
}

fn sources(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            out.push((path, text));
        }
    }
}

#[test]
fn only_xtask_sets_the_allocator_and_handles_ctrl_c() {
    for (name, dir) in CRATES.iter().filter(|(name, _)| *name != "xtask") {
        let mut files = Vec::new();
        sources(&repo().join(dir).join("src"), &mut files);
        assert!(!files.is_empty(), "{name}: no sources read");
        for (path, text) in &files {
            for forbidden in ["#[global_allocator]", "ctrlc::", "std::process::exit"] {
                assert!(
                    !text.contains(forbidden),
                    "{} uses {forbidden}",
                    path.display()
                );
            }
        }
        assert!(
            !dependencies(dir).contains("ctrlc"),
            "{name} depends on ctrlc"
        );
    }
    let main = std::fs::read_to_string(repo().join("xtask/src/main.rs")).unwrap();
    assert!(main.contains("#[global_allocator]"));
}

/// The subcommands `--help` lists, from its "Commands:" section.
fn commands(args: &[&str]) -> Vec<String> {
    let out = std::process::Command::new(xtask())
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    help.split("Commands:")
        .nth(1)
        .unwrap_or_else(|| panic!("no commands in {help}"))
        .split("\n\n")
        .next()
        .unwrap()
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

#[test]
fn architecture_md_describes_every_command() {
    let text = std::fs::read_to_string(repo().join("ARCHITECTURE.md")).unwrap();
    let top = commands(&[]);
    assert!(top.len() >= 7, "{top:?}");
    for command in &top {
        assert!(
            text.contains(&format!("`{command}`")) || text.contains(&format!("`{command} ")),
            "ARCHITECTURE.md does not name the command `{command}`"
        );
    }
    for command in commands(&["bench"]) {
        assert!(
            text.contains(&format!("`bench {command}`")),
            "ARCHITECTURE.md does not name `bench {command}`"
        );
    }
}
