//! `cargo xtask`: the front door of imdb-sentiment.
//!
//! Each command lives in its own module; `main` only parses and dispatches. Errors are printed
//! as one message that says what was wrong and what to do, with exit code 1 (2 for usage
//! errors, as clap does).

mod backend;
mod bench;
mod cli;
mod data;
mod error;

use std::process::ExitCode;

// Training allocates and frees buffers of many megabytes every step; glibc's allocator returns
// them to the system each time, and the page faults of getting them back cost more than the
// arithmetic of some operations. mimalloc keeps them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;

use crate::cli::{BenchCommand, Cli, Command};
use crate::error::XtaskError;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            match err {
                XtaskError::Usage(_) => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

fn run(cli: Cli) -> Result<(), XtaskError> {
    match cli.command {
        Command::Bench(BenchCommand::TrainStep(args)) => bench::train_step(&args),
        Command::Bench(BenchCommand::Predict(args)) => bench::predict(&args),
        other => Err(XtaskError::Usage(format!("{other:?}: not built yet"))),
    }
}
