//! `cargo xtask predict`: classify texts with a saved model — given as arguments, one per line
//! on standard input, or from a file (`--input`: .txt, .csv/.tsv, .jsonl) of any size, read
//! and classified in batches so that memory stays flat. Each verdict's class name and
//! probability go to standard output (`--format json`: every class's probability too), or to
//! `--output` (.csv or .jsonl, with an id per text), which appears whole once every text is
//! classified, or not at all.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use imdb_data::AtomicFile;
use imdb_data::stream::{InputText, TextReader};
use imdb_train::{Prediction, SavedModel, Session, TokenWeight};

use crate::cli::{Format, PredictArgs};
use crate::error::XtaskError;

/// Texts per batch.
const BATCH: usize = 512;

/// Where the verdicts go.
pub enum Sink<W: Write> {
    /// Standard output, one line per text.
    Stdout(Format),
    /// A CSV file: `id,label,probability,p_<class>...` (boxed: the writer keeps its buffer).
    Csv(Box<csv::Writer<W>>),
    /// A JSON Lines file: one object per text.
    Jsonl(W),
}

/// Runs the command.
pub fn run(args: &PredictArgs) -> Result<(), XtaskError> {
    let mut sink = open_sink(args)?;
    if args.input.is_none() && (args.text_field.is_some() || args.id_field.is_some()) {
        return Err(XtaskError::Usage(
            "--text-field and --id-field name the fields of --input FILE; give --input".into(),
        ));
    }
    let device = args.backend.device()?;
    let model = crate::data::load_model(&args.model, &device)?;
    let texts: Box<dyn Iterator<Item = Result<InputText, XtaskError>>> = match &args.input {
        Some(path) => {
            if !args.text.is_empty() {
                return Err(XtaskError::Usage(
                    "give texts as arguments or --input FILE, not both".into(),
                ));
            }
            let text_field = args.text_field.as_deref().unwrap_or("text");
            let reader = TextReader::open(path, text_field, args.id_field.as_deref())?;
            Box::new(Progress::new(reader, path)?.map(|t| t.map_err(XtaskError::from)))
        }
        None if !args.text.is_empty() => Box::new(args.text.iter().enumerate().map(|(i, t)| {
            Ok(InputText {
                id: (i + 1).to_string(),
                text: t.clone(),
                line: i + 1,
            })
        })),
        None => Box::new(stdin_lines()),
    };
    let session = model.session();
    classify(&session, &model, texts, &mut sink, args.explain)
        .map_err(|e| rename_output(e, args))?;
    finish(sink, args)
}

/// Classifies `texts` with `session` (of `model`) in batches of [`BATCH`], explaining them if
/// asked, and writes each verdict to `sink` as it comes (a CSV's header first): memory holds
/// one batch whatever the input's size. Returns the number of texts.
pub fn classify<W: Write>(
    session: &Session<'_>,
    model: &SavedModel,
    texts: impl Iterator<Item = Result<InputText, XtaskError>>,
    sink: &mut Sink<W>,
    explain: bool,
) -> Result<usize, XtaskError> {
    let write_error = |e: std::io::Error| XtaskError::io("cannot write", OUTPUT, e);
    if let Sink::Csv(writer) = sink {
        let mut header = vec!["id".to_string(), "label".into(), "probability".into()];
        header.extend(model.classes().iter().map(|c| format!("p_{c}")));
        writer
            .write_record(&header)
            .map_err(|e| write_error(e.into()))?;
    }
    let mut count = 0;
    let mut batch: Vec<InputText> = Vec::with_capacity(BATCH);
    let mut texts = texts.peekable();
    while texts.peek().is_some() {
        batch.clear();
        for text in texts.by_ref().take(BATCH) {
            batch.push(text?);
        }
        let refs: Vec<&str> = batch.iter().map(|t| t.text.as_str()).collect();
        let verdicts: Vec<(Prediction, Option<Vec<TokenWeight>>)> = if explain {
            session
                .explain(&refs)?
                .into_iter()
                .map(|e| (e.prediction, Some(e.tokens)))
                .collect()
        } else {
            session
                .predict(&refs, BATCH)?
                .into_iter()
                .map(|p| (p, None))
                .collect()
        };
        for (text, (p, tokens)) in batch.iter().zip(&verdicts) {
            write_verdict(sink, model, text, p, tokens.as_deref()).map_err(write_error)?;
        }
        count += batch.len();
    }
    Ok(count)
}

/// What [`classify`] calls its output in errors, replaced by the real name by the command.
const OUTPUT: &str = "the output";

/// An error about "the output" named after `--output`.
fn rename_output(error: XtaskError, args: &PredictArgs) -> XtaskError {
    match error {
        XtaskError::Io {
            action,
            path,
            message,
        } if path.as_os_str() == OUTPUT => XtaskError::Io {
            action,
            path: output_name(args).into(),
            message,
        },
        other => other,
    }
}

/// The sink `--output` (or its absence) asks for; a bad combination is refused before any
/// work.
fn open_sink(args: &PredictArgs) -> Result<Sink<AtomicFile>, XtaskError> {
    let Some(path) = &args.output else {
        return Ok(Sink::Stdout(args.format));
    };
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if Some(path) == args.input.as_ref() {
        return Err(XtaskError::Usage(format!(
            "--output {} is the input file: give another path",
            path.display()
        )));
    }
    match ext.as_str() {
        "csv" if args.explain => Err(XtaskError::Usage(
            "--explain gives every word's weight, which needs a .jsonl --output".into(),
        )),
        "csv" => {
            let writer = csv::Writer::from_writer(AtomicFile::create(path)?);
            Ok(Sink::Csv(Box::new(writer)))
        }
        "jsonl" => Ok(Sink::Jsonl(AtomicFile::create(path)?)),
        _ => Err(XtaskError::Usage(format!(
            "--output {}: name a .csv or .jsonl file",
            path.display()
        ))),
    }
}

fn output_name(args: &PredictArgs) -> String {
    args.output
        .as_ref()
        .map_or("standard output".to_string(), |p| p.display().to_string())
}

/// Writes one verdict to `sink`.
fn write_verdict<W: Write>(
    sink: &mut Sink<W>,
    model: &SavedModel,
    text: &InputText,
    p: &Prediction,
    tokens: Option<&[TokenWeight]>,
) -> std::io::Result<()> {
    let json = || {
        let by_class: serde_json::Map<String, serde_json::Value> = model
            .classes()
            .iter()
            .zip(&p.probabilities)
            .map(|(class, &prob)| (class.clone(), serde_json::json!(prob)))
            .collect();
        let mut value = serde_json::json!({
            "label": p.label,
            "probability": p.probability,
            "probabilities": by_class,
        });
        if let Some(tokens) = tokens {
            value["tokens"] = serde_json::json!(tokens);
        }
        value
    };
    match sink {
        Sink::Stdout(Format::Json) => writeln!(std::io::stdout().lock(), "{}", json()),
        Sink::Stdout(Format::Text) => {
            let shown: String = text.text.chars().take(70).collect();
            let shown = shown.replace(['\n', '\r'], " ");
            let more = if text.text.chars().count() > 70 {
                "…"
            } else {
                ""
            };
            let mut line = format!("{}\t{:.4}\t{shown}{more}", p.label, p.probability);
            if let Some(tokens) = tokens {
                line += &format!("\n\t{}", strongest_words(tokens, &p.label));
            }
            writeln!(std::io::stdout().lock(), "{line}")
        }
        Sink::Jsonl(file) => {
            let mut value = json();
            value["id"] = serde_json::json!(text.id);
            writeln!(file, "{value}")
        }
        Sink::Csv(writer) => {
            let mut row = vec![text.id.clone(), p.label.clone(), p.probability.to_string()];
            row.extend(p.probabilities.iter().map(f32::to_string));
            writer.write_record(&row).map_err(std::io::Error::other)
        }
    }
}

/// Commits the output file, if any.
fn finish(sink: Sink<AtomicFile>, args: &PredictArgs) -> Result<(), XtaskError> {
    let file = match sink {
        Sink::Stdout(_) => return Ok(()),
        Sink::Jsonl(file) => file,
        Sink::Csv(writer) => writer
            .into_inner()
            .map_err(|e| XtaskError::io("cannot write", output_name(args), e.error()))?,
    };
    file.commit()?;
    if let Some(path) = &args.output {
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// The texts of `reader`, showing how much of the file is read: a bar on a terminal, a line
/// per tenth otherwise.
pub struct Progress {
    reader: TextReader,
    bar: Option<indicatif::ProgressBar>,
    total: u64,
    tenths: u64,
    texts: usize,
}

impl Progress {
    /// Progress over `reader`, which reads `path`.
    pub fn new(reader: TextReader, path: &Path) -> Result<Self, XtaskError> {
        let total = std::fs::metadata(path)
            .map_err(|e| XtaskError::io("cannot read", path, e))?
            .len();
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "predict {bar:30} {bytes}/{total_bytes} ({eta} left) {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        Ok(Self {
            reader,
            bar,
            total,
            tenths: 0,
            texts: 0,
        })
    }
}

impl Iterator for Progress {
    type Item = imdb_data::Result<InputText>;

    fn next(&mut self) -> Option<Self::Item> {
        let next = self.reader.next();
        let read = self.reader.bytes_read();
        match &self.bar {
            Some(bar) => {
                bar.set_position(read);
                if next.is_none() {
                    bar.finish_and_clear();
                }
            }
            None => {
                self.texts += usize::from(matches!(next, Some(Ok(_))));
                let tenths = (read * 10).checked_div(self.total).unwrap_or(10);
                if tenths > self.tenths && self.texts > 0 {
                    self.tenths = tenths;
                    eprintln!(
                        "predict: {}% of the input read ({} texts)",
                        tenths * 10,
                        self.texts
                    );
                }
            }
        }
        next
    }
}

/// `bench predict --input FILE`: texts per second of [`classify`] streaming `input` (read,
/// tokenized, classified and written as CSV to nowhere, batch by batch) beside classifying
/// the same texts read into memory first (tokenized and classified in batches of [`BATCH`],
/// the reading not timed), alternated `args.repeat` times; and the best of each.
pub fn bench_file(
    model_dir: &Path,
    input: &Path,
    args: &crate::cli::PredictBenchArgs,
) -> Result<(), XtaskError> {
    let device = args.backend.device()?;
    let model = crate::data::load_model(model_dir, &device)?;
    let session = model.session();
    let text_field = args.text_field.as_deref().unwrap_or("text");
    let (mut streamed, mut in_memory) = (f64::INFINITY, f64::INFINITY);
    let mut count = 0;
    for round in 0..args.repeat.max(1) {
        let started = std::time::Instant::now();
        let reader = TextReader::open(input, text_field, None)?;
        let mut sink = Sink::Csv(Box::new(csv::Writer::from_writer(std::io::sink())));
        let texts = reader.map(|t| t.map_err(XtaskError::from));
        count = classify(&session, &model, texts, &mut sink, false)?;
        let seconds = started.elapsed().as_secs_f64();
        streamed = streamed.min(seconds);

        let texts: Vec<String> = TextReader::open(input, text_field, None)?
            .map(|t| t.map(|t| t.text))
            .collect::<Result<_, _>>()?;
        let started = std::time::Instant::now();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let predictions = session.predict(&refs, BATCH)?;
        let seconds_in_memory = started.elapsed().as_secs_f64();
        in_memory = in_memory.min(seconds_in_memory);
        drop(predictions);
        println!(
            "round {}: streamed {count} texts in {seconds:.2} s ({:.0}/s); in memory {:.2} s \
             ({:.0}/s)",
            round + 1,
            count as f64 / seconds,
            seconds_in_memory,
            count as f64 / seconds_in_memory
        );
    }
    println!(
        "{}",
        serde_json::json!({
            "texts": count,
            "streamed_seconds": streamed,
            "in_memory_seconds": in_memory,
            "streamed_per_second": count as f64 / streamed,
            "in_memory_per_second": count as f64 / in_memory,
            "ratio": in_memory / streamed,
        })
    );
    Ok(())
}

/// Words shown per side of a text explanation.
const STRONGEST: usize = 5;

/// The words that pushed a verdict most, each side: `for pos: great +0.210, ...; against:
/// dull -0.050`.
pub fn strongest_words(tokens: &[TokenWeight], label: &str) -> String {
    let mut order: Vec<&TokenWeight> = tokens.iter().filter(|t| t.weight != 0.0).collect();
    order.sort_by(|a, b| b.weight.abs().total_cmp(&a.weight.abs()));
    let side = |supports: bool| -> Vec<String> {
        order
            .iter()
            .filter(|t| (t.weight > 0.0) == supports)
            .take(STRONGEST)
            .map(|t| format!("{} {:+.3}", t.token, t.weight))
            .collect()
    };
    let (pro, con) = (side(true), side(false));
    let show = |words: Vec<String>| {
        if words.is_empty() {
            "no word".to_string()
        } else {
            words.join(", ")
        }
    };
    format!("for {label}: {}; against: {}", show(pro), show(con))
}

/// One text per line of standard input, read as the batches need them; a line that is not
/// UTF-8 is an error naming it.
fn stdin_lines() -> impl Iterator<Item = Result<InputText, XtaskError>> {
    let mut failed = false;
    std::io::stdin()
        .lock()
        .split(b'\n')
        .enumerate()
        .map_while(move |(i, line)| {
            if failed {
                return None;
            }
            let text = line
                .map_err(|e| XtaskError::Input {
                    line: i + 1,
                    message: e.to_string(),
                })
                .and_then(|bytes| {
                    String::from_utf8(bytes).map_err(|e| XtaskError::Input {
                        line: i + 1,
                        message: format!(
                            "not valid UTF-8 (byte {} of the line); convert the input to UTF-8",
                            e.utf8_error().valid_up_to() + 1
                        ),
                    })
                });
            failed = text.is_err();
            Some(text.map(|t| InputText {
                id: (i + 1).to_string(),
                text: t.trim_end_matches('\r').to_string(),
                line: i + 1,
            }))
        })
}
