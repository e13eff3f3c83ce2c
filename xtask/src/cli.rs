//! The command line: every command and flag, with `--help` text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use imdb_model::{Architecture, Implementation};
use imdb_train::long_range::{Lag, TaskGateBias};

use crate::backend::Backend;

/// imdb-sentiment: IMDB sentiment classification with recurrent networks, in Rust on Burn.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", version, about, long_about = None)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The user commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every run of an experiment config and write its results, figures and report.
    Experiment(ExperimentArgs),
    /// Fetch, verify and extract the corpus, and say where it is.
    Download(DownloadArgs),
    /// Print the notebook's exploratory numbers and write its two figures.
    Eda(EdaArgs),
    /// Classify texts given as arguments, one per line on standard input, or from a file
    /// (--input), to standard output or a file (--output).
    Predict(PredictArgs),
    /// A saved model's metrics on its run's test set, a labelled file (--data) or another
    /// config's data, encoded with the model's vocabulary.
    Evaluate(EvaluateArgs),
    /// Write an experiment's summary.csv, comparison figures and index.html from its
    /// finished runs (what the shards of a grid each do when they end).
    Summarize(SummarizeArgs),
    /// Export a saved model as a folder other frameworks load: model.safetensors (PyTorch's
    /// names and layouts), config.json, tokenizer.json (Hugging Face), vocab.json and a
    /// model card (README.md).
    Export(ExportArgs),
    /// Measure speed: training steps or prediction.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Serve a saved model over HTTP: POST /predict, GET /health, and a page at / to try it.
    Serve(ServeArgs),
    /// How far back RNN, GRU and LSTM remember: the latch task by distance, the gradient by
    /// step back, and trained review classifiers reading neutral words after each review.
    LongRange(LongRangeArgs),
}

/// `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A run folder holding a saved model (model.json, model.bpk, vocab.json).
    #[arg(long)]
    pub model: PathBuf,
    /// Address to listen on (port 0: any free port, printed at start).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: std::net::SocketAddr,
    /// Seconds a client has to send a request's headers, and a request to be read and
    /// answered; past them the connection is closed (headers) or answered 408 (the rest).
    #[arg(long, default_value_t = 10)]
    pub timeout: u64,
    /// Requests waiting or running at once; past it a request is answered 503 with
    /// Retry-After.
    #[arg(long, default_value_t = 64)]
    pub queue: usize,
    /// Accept requests whose Host header names this host too (repeatable); localhost,
    /// `127.0.0.1`, `[::1]` and the bound address always are.
    #[arg(long = "allowed-host", value_name = "HOST")]
    pub allowed_hosts: Vec<String>,
    /// Let pages of this origin (e.g. `https://reviews.example`) call the API from a
    /// browser; cross-origin requests are refused without it.
    #[arg(long)]
    pub cors_origin: Option<String>,
    /// Backend to run on.
    #[arg(long, value_enum, default_value_t = Backend::Flex)]
    pub backend: Backend,
    /// A text that makes the model's thread panic (for testing its restart).
    #[arg(long, hide = true)]
    pub fault_text: Option<String>,
}

/// `long-range`.
#[derive(Debug, Args)]
pub struct LongRangeArgs {
    /// Output folder: CSV files, figures and `index.html`.
    #[arg(long, default_value = "runs/long_range")]
    pub out: PathBuf,
    /// Distances (steps between the deciding token and the end) to try.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "10,20,50,100,200,500,1000"
    )]
    pub distances: Vec<usize>,
    /// The distance (one of `--distances`) at which the gradient reaching each step back is
    /// measured, before and after training.
    #[arg(long, default_value_t = 200)]
    pub gradient_distance: usize,
    /// Training sequences per run (a quarter as many more for validation, half for testing).
    #[arg(long, default_value_t = 4000)]
    pub examples: usize,
    /// Epochs per run.
    #[arg(long, default_value_t = 15)]
    pub epochs: usize,
    /// What fills the steps between the deciding token and the end: random noise words (the
    /// noisy latch) or one filler word repeated (the noise-free latch).
    #[arg(long, value_enum, default_value_t = LagArg::Noise)]
    pub lag: LagArg,
    /// How the LSTM's and GRU's gate biases start: chrono initialization for the sequence's
    /// length, or Keras' (LSTM forget gate 1).
    #[arg(long, value_enum, default_value_t = GateBiasArg::Chrono)]
    pub gate_bias: GateBiasArg,
    /// Seed of the data and the models.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Backend to run on.
    #[arg(long, value_enum, default_value_t = Backend::Flex)]
    pub backend: Backend,
    /// The experiment whose trained runs the filler probe reads (runs not yet trained are
    /// trained first, into `--runs-dir`, as `experiment` would).
    #[arg(long, default_value = "configs/architectures.toml")]
    pub probe_config: PathBuf,
    /// The runs of `--probe-config` to probe: one per cell, trained the same way.
    #[arg(long, value_delimiter = ',', default_value = "rnn,gru,lstm")]
    pub probe_runs: Vec<String>,
    /// Where the probed runs are (as `experiment --out`).
    #[arg(long, default_value = "runs")]
    pub runs_dir: PathBuf,
    /// Neutral filler words appended after each test review, one probe point per count.
    #[arg(long, value_delimiter = ',', default_value = "0,25,50,100,200")]
    pub fillers: Vec<usize>,
    /// Only the synthetic task: no probe on the reviews (which needs the corpus and trained
    /// models).
    #[arg(long)]
    pub no_probe: bool,
}

/// `long-range --lag`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LagArg {
    /// Random noise words.
    Noise,
    /// One filler word, repeated.
    Filler,
}

impl From<LagArg> for Lag {
    fn from(value: LagArg) -> Self {
        match value {
            LagArg::Noise => Lag::Noise,
            LagArg::Filler => Lag::Filler,
        }
    }
}

/// `long-range --gate-bias`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GateBiasArg {
    /// Chrono initialization (Tallec & Ollivier, 2018).
    Chrono,
    /// Keras' biases.
    Keras,
}

impl From<GateBiasArg> for TaskGateBias {
    fn from(value: GateBiasArg) -> Self {
        match value {
            GateBiasArg::Chrono => TaskGateBias::Chrono,
            GateBiasArg::Keras => TaskGateBias::Keras,
        }
    }
}

/// `experiment`.
#[derive(Debug, Args)]
pub struct ExperimentArgs {
    /// The experiment config, e.g. configs/maxlen.toml.
    pub config: PathBuf,
    /// Output folder; results go to `OUT/<experiment name>/`.
    #[arg(long, default_value = "runs")]
    pub out: PathBuf,
    /// Run only the runs with this name (repeatable).
    #[arg(long = "only", value_name = "RUN")]
    pub only: Vec<String>,
    /// Backend for every run, overriding the config.
    #[arg(long, value_enum)]
    pub backend: Option<Backend>,
    /// Keep each finished run's checkpoint folder (as `keep_checkpoints = true` in the
    /// config does); by default it is removed once the run's results are written.
    #[arg(long)]
    pub keep_checkpoints: bool,
    /// Train every selected run once per seed (comma-separated, e.g. `--seeds 42,1,2`),
    /// overriding the config's `seed` and `seeds`; the summary gives the mean and spread.
    #[arg(long, value_delimiter = ',')]
    pub seeds: Vec<u64>,
    /// Train only shard I of N of the grid (`0/2`, `1/2`, as Slurm's array ids): the (run,
    /// seed) units dealt in turn, unit k to shard k mod N. Shards may share one --out folder
    /// at once; each writes the summary of what is finished when it ends.
    #[arg(long, value_parser = parse_shard)]
    pub shard: Option<Shard>,
}

/// One shard of a grid: `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 0 to `count - 1`.
    pub index: usize,
    /// How many shards the grid is dealt to.
    pub count: usize,
}

/// Parses `I/N` with `I < N`.
pub fn parse_shard(text: &str) -> Result<Shard, String> {
    let usage = || format!("{text:?}: give I/N, with 0 <= I < N, e.g. 0/4");
    let (index, count) = text.split_once('/').ok_or_else(usage)?;
    let (index, count): (usize, usize) = (
        index.trim().parse().map_err(|_| usage())?,
        count.trim().parse().map_err(|_| usage())?,
    );
    if count == 0 || index >= count {
        return Err(usage());
    }
    Ok(Shard { index, count })
}

/// `summarize`.
#[derive(Debug, Args)]
pub struct SummarizeArgs {
    /// An experiment's output folder (`OUT/<experiment name>`, holding `experiment.toml`).
    pub folder: PathBuf,
    /// The seeds the grid was trained with, if given on its command line (`--seeds`).
    #[arg(long, value_delimiter = ',')]
    pub seeds: Vec<u64>,
    /// The runs the grid was restricted to, if any (`--only`, repeatable).
    #[arg(long = "only", value_name = "RUN")]
    pub only: Vec<String>,
}

/// `download`.
#[derive(Debug, Args)]
pub struct DownloadArgs {
    /// Use this local archive instead of IMDB_ARCHIVE or the official download.
    #[arg(long)]
    pub archive: Option<PathBuf>,
}

/// `eda`.
#[derive(Debug, Args)]
pub struct EdaArgs {
    /// Take `maxlen` (the dashed line) and the data settings from this experiment config.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Folder for the two figures.
    #[arg(long, default_value = "runs/eda")]
    pub out: PathBuf,
}

/// Output format of `predict`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Format {
    /// One line per review: label, probability, text.
    #[default]
    Text,
    /// One JSON object per line with `label` and `probability`.
    Json,
}

/// `predict`.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// A run folder holding a saved model (model.json, model.bpk, vocab.json).
    #[arg(long)]
    pub model: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Explain each verdict word by word (occlusion): text output names the words that
    /// pushed it most, JSON adds `tokens`, every word in order with its weight.
    #[arg(long)]
    pub explain: bool,
    /// Backend to run on.
    #[arg(long, value_enum, default_value_t = Backend::Flex)]
    pub backend: Backend,
    /// Classify the texts of this file, read in batches: .txt (one text per line),
    /// .csv/.tsv (a header row; --text-field names the column) or .jsonl (--text-field
    /// names the key).
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// The column or key of the text in --input (default `text`).
    #[arg(long)]
    pub text_field: Option<String>,
    /// The column or key of each text's id in --input, carried to the output (default: the
    /// row number).
    #[arg(long)]
    pub id_field: Option<String>,
    /// Write the verdicts to this file instead of standard output: .csv (id, label,
    /// probability, each class's probability) or .jsonl (one object per text; with
    /// --explain, its `tokens`). It appears only once every text is classified.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Reviews to classify; without any (and without --input), one review per line is read
    /// from standard input.
    pub text: Vec<String>,
}

/// `evaluate`.
#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// A run folder holding a saved model.
    #[arg(long)]
    pub model: PathBuf,
    /// A labelled file or folder to evaluate on: .csv, .tsv or .jsonl (by its extension), or
    /// a folder with one subfolder of text files per class. Without it (and without
    /// --config), the run's own test set, as the run evaluated it.
    #[arg(long, conflicts_with = "config")]
    pub data: Option<PathBuf>,
    /// The column (CSV) or key (JSON Lines) of the text in --data (default `text`).
    #[arg(long)]
    pub text_field: Option<String>,
    /// The column or key of the label in --data (default `label`).
    #[arg(long)]
    pub label_field: Option<String>,
    /// Evaluate on the whole test set of this experiment config's data (its first run).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Also write predictions.csv, classification_report.txt, the confusion matrix (CSV and
    /// figure) and metrics.json into this folder.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Backend to run on.
    #[arg(long, value_enum, default_value_t = Backend::Flex)]
    pub backend: Backend,
}

/// `export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// A run folder holding a saved model.
    #[arg(long)]
    pub model: PathBuf,
    /// The folder to write (created if needed).
    #[arg(long)]
    pub out: PathBuf,
}

/// `bench` subcommands.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Seconds per training step (forward, backward, Adam) on random full-length batches.
    TrainStep(TrainStepArgs),
    /// Reviews per second when classifying the 25,000 test reviews.
    Predict(PredictBenchArgs),
    /// Explanations: their cost per review, and whether they are faithful (deleting the k
    /// words with the largest weights lowers the verdict's probability more than deleting k
    /// random words).
    Explain(ExplainBenchArgs),
    /// Requests per second and latency of `serve` under concurrent clients on loopback.
    Serve(ServeBenchArgs),
    /// Seconds to train the baseline's skip-gram vectors (IMDB's 50,000 unlabelled and 25,000
    /// training reviews), never from the cache.
    Skipgram(SkipgramBenchArgs),
}

/// `bench skipgram`.
#[derive(Debug, Args)]
pub struct SkipgramBenchArgs {
    /// Passes over the reviews (the baseline's `skipgram_epochs`).
    #[arg(long, default_value_t = 3)]
    pub epochs: usize,
    /// Vector size (the baseline's `embed_dim`).
    #[arg(long, default_value_t = 128)]
    pub dim: usize,
    /// Vocabulary size including the 4 reserved ids (the baseline's `num_words`).
    #[arg(long, default_value_t = 20_000)]
    pub num_words: usize,
    /// Seed (the baseline's).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Threads (default: every core); the vectors are the same on any number.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Train on only the first N reviews (the unlabelled ones come first).
    #[arg(long)]
    pub reviews: Option<usize>,
}

/// `bench serve`.
#[derive(Debug, Args)]
pub struct ServeBenchArgs {
    /// A run folder holding a saved model; the clients send its own test reviews.
    #[arg(long)]
    pub model: PathBuf,
    /// Concurrent clients, each with its own connection, one review per request.
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Seconds measured (after one second of warm-up).
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Ask for explanations too.
    #[arg(long)]
    pub explain: bool,
    /// Fairness under abuse instead: 4 clients flood the server with the costliest legal
    /// explained requests (giving up after 1 s), while one client sends single plain reviews
    /// and measures its latency; then a plain request right after the flood.
    #[arg(long)]
    pub flood: bool,
    /// Backend to run on.
    #[arg(long, value_enum, default_value_t = Backend::Flex)]
    pub backend: Backend,
}

/// `bench explain`.
#[derive(Debug, Args)]
pub struct ExplainBenchArgs {
    /// A run folder holding a saved model; its own test set is read (encoded as trained).
    #[arg(long)]
    pub model: PathBuf,
    /// Test reviews explained (a seeded sample).
    #[arg(long, default_value_t = 1000)]
    pub reviews: usize,
    /// The largest number of words deleted: the curve runs k = 1, 2, …, this.
    #[arg(long, default_value_t = 10)]
    pub max_k: usize,
    /// Seed of the sample and of the random deletions.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Backend to run on.
    #[arg(long, value_enum, default_value_t = Backend::Flex)]
    pub backend: Backend,
}

/// `bench train-step`.
#[derive(Debug, Args)]
pub struct TrainStepArgs {
    /// Backend to run on.
    #[arg(long, value_enum, default_value_t = Backend::Flex)]
    pub backend: Backend,
    /// Reviews per batch.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Time steps per review.
    #[arg(long, default_value_t = 200)]
    pub seq_len: usize,
    /// Embedding size.
    #[arg(long, default_value_t = 128)]
    pub embed: usize,
    /// Recurrent units.
    #[arg(long, default_value_t = 64)]
    pub units: usize,
    /// Vocabulary size.
    #[arg(long, default_value_t = 20_000)]
    pub vocab: usize,
    /// Input dropout.
    #[arg(long, default_value_t = 0.2)]
    pub dropout: f64,
    /// Recurrent dropout (Burn's stock layer runs without it).
    #[arg(long, default_value_t = 0.2)]
    pub recurrent_dropout: f64,
    /// The recurrent cell: lstm, gru or rnn.
    #[arg(long, value_parser = parse_name::<Architecture>, default_value = "lstm")]
    pub cell: Architecture,
    /// Implementations to time (fused, composed, burn), in order; the first is
    /// `seconds_per_step` in the JSON line.
    #[arg(long, value_parser = parse_name::<Implementation>, value_delimiter = ',', default_value = "fused,burn")]
    pub implementation: Vec<Implementation>,
    /// Timed steps.
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// Untimed warm-up steps.
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// Also time steps with this adversarial loss (at, vat or both; ε = 1), alternating with
    /// plain steps, and print the cost of each relative to a plain step.
    #[arg(long, value_parser = parse_name::<imdb_train::AdversarialKind>)]
    pub adversarial: Option<imdb_train::AdversarialKind>,
    /// Texts without labels per virtual adversarial batch (0: the labelled batch; at most
    /// 4096, with `--adversarial vat` or `both`).
    #[arg(long, default_value_t = 0)]
    pub unlabelled: usize,
}

/// `bench predict`.
#[derive(Debug, Args)]
pub struct PredictBenchArgs {
    /// A saved model; without it, a freshly initialized notebook model (same speed).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Backend to run on.
    #[arg(long, value_enum, default_value_t = Backend::Flex)]
    pub backend: Backend,
    /// Reviews per batch.
    #[arg(long, default_value_t = 512)]
    pub batch: usize,
    /// Repetitions; the best is reported.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Time `predict --input FILE` instead (needs --model): streaming the file in batches
    /// beside classifying its texts read into memory first, alternated `--repeat` times.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// The column or key of the text in --input (default `text`).
    #[arg(long)]
    pub text_field: Option<String>,
    /// Implementations of the recurrent layers to time (fused, composed, burn), in order; the
    /// first is `seconds` in the JSON line. `burn` (Burn's stock LSTM) reads the same weights.
    #[arg(long, value_parser = parse_name::<Implementation>, value_delimiter = ',', default_value = "fused,burn")]
    pub implementation: Vec<Implementation>,
}

/// Parses a lowercase name the way the TOML configs spell it (`"lstm"`, `"fused"`, ...).
pub fn parse_name<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::String(text.to_string())).map_err(|e| e.to_string())
}
