//! `cargo xtask`: the front door of imdb-sentiment.
//!
//! Each command lives in its own module; `main` only parses and dispatches. Errors are printed
//! as one message that says what was wrong and what to do, with exit code 1 (2 for usage
//! errors, as clap does).

mod backend;
mod bench;
mod bench_explain;
mod cli;
mod config;
mod data;
mod download;
mod eda;
mod embeddings;
mod error;
mod evaluate;
mod experiment;
mod export;
mod fingerprint;
mod lock;
mod long_range;
mod ngram_cache;
mod precision;
mod predict;
mod pretrain;
mod serve;
mod table;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

// Training allocates and frees buffers of many megabytes every step; glibc's allocator returns
// them to the system each time, and the page faults of getting them back cost more than the
// arithmetic of some operations. mimalloc keeps them (see `keep_freed_memory`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

unsafe extern "C" {
    /// mimalloc's option setter (`mimalloc.h`); the `mimalloc` crate binds it only behind a
    /// feature whose dependency is not worth adding for one call.
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// Tells mimalloc never to hand freed memory back to the system. By default it does so a
/// second after a free, and a training step frees and reallocates tens of megabytes, so steps
/// paid page faults and the kernel's zeroing of fresh pages again (measured with `perf stat`
/// over `bench train-step --steps 20`: 2,476 to 5,190 page faults without this, about 340 with
/// it, in runs of 5 to 60 steps alike, so only warm-up faults remain). Peak memory is
/// unchanged: mimalloc reuses what it keeps.
fn keep_freed_memory() {
    /// `mi_option_purge_delay` in the `mi_option_e` enum of the mimalloc 3 that
    /// libmimalloc-sys 0.1.49 builds (pinned in Cargo.lock); -1 means "never purge".
    const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;
    // SAFETY: a plain store into mimalloc's option table, made before any other thread runs.
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
}

use clap::Parser;

use crate::cli::{BenchCommand, Cli, Command};
use crate::error::XtaskError;

fn main() -> ExitCode {
    keep_freed_memory();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            match err {
                XtaskError::Usage(_) => ExitCode::from(2),
                XtaskError::Interrupted(_) => ExitCode::from(130),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

fn run(cli: Cli) -> Result<(), XtaskError> {
    // A value of IMDB_F32_INFERENCE that cannot be read is an error before anything runs.
    precision::from_env()?;
    match cli.command {
        Command::Experiment(args) => experiment::run(&args, interrupt_flag()),
        Command::Download(args) => download::run(&args),
        Command::Eda(args) => eda::run(&args),
        Command::Predict(args) => predict::run(&args),
        Command::Evaluate(args) => evaluate::run(&args),
        Command::Export(args) => export::run(&args),
        Command::Summarize(args) => experiment::summarize(&args),
        Command::Bench(BenchCommand::TrainStep(args)) => bench::train_step(&args),
        Command::Bench(BenchCommand::Predict(args)) => bench::predict(&args),
        Command::Bench(BenchCommand::Explain(args)) => bench_explain::run(&args),
        Command::Bench(BenchCommand::Serve(args)) => serve::bench::run(&args),
        Command::Bench(BenchCommand::Skipgram(args)) => embeddings::bench(&args),
        Command::Serve(args) => serve::run(&args),
        Command::LongRange(args) => long_range::run(&args, interrupt_flag()),
    }
}

/// Set by the first Ctrl-C: training stops at the next batch and keeps its last checkpoint.
/// A second Ctrl-C ends the process at once.
fn interrupt_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let seen = flag.clone();
    let installed = ctrlc::set_handler(move || {
        if seen.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\ninterrupted: stopping after this batch (Ctrl-C again to quit at once)");
    });
    if let Err(e) = installed {
        eprintln!("note: Ctrl-C will end the process at once ({e})");
    }
    flag
}
