//! What the end-to-end test files share: the binary under test and running it.

// Each test file uses its own part of these helpers.
#![allow(dead_code)]

use std::process::{Command, Output};

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
