//! `cargo xtask predict`: classify texts with a saved model; prints each verdict's class name
//! and probability (`--format json`: every class's probability too).

use std::io::{BufRead, Write};

use imdb_train::{Prediction, SavedModel, TokenWeight};

use crate::cli::{Format, PredictArgs};
use crate::error::XtaskError;

/// Reviews per batch.
const BATCH: usize = 256;

/// Runs the command.
pub fn run(args: &PredictArgs) -> Result<(), XtaskError> {
    let device = args.backend.device()?;
    let model =
        SavedModel::load(&args.model, &device)?.with_precision(crate::precision::from_env()?);
    let texts: Vec<String> = if args.text.is_empty() {
        read_stdin_lines()?
    } else {
        args.text.clone()
    };
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let session = model.session();
    let explained: Vec<(Prediction, Option<Vec<TokenWeight>>)> = if args.explain {
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
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for (text, (p, tokens)) in texts.iter().zip(&explained) {
        let line = match args.format {
            Format::Json => {
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
                value.to_string()
            }
            Format::Text => {
                let shown: String = text.chars().take(70).collect();
                let more = if text.chars().count() > 70 { "…" } else { "" };
                let mut line = format!("{}\t{:.4}\t{shown}{more}", p.label, p.probability);
                if let Some(tokens) = tokens {
                    line += &format!("\n\t{}", strongest_words(tokens, &p.label));
                }
                line
            }
        };
        writeln!(out, "{line}")
            .map_err(|e| XtaskError::io("cannot write", "standard output", e))?;
    }
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

/// One review per line; a line that is not UTF-8 is an error naming it.
fn read_stdin_lines() -> Result<Vec<String>, XtaskError> {
    let stdin = std::io::stdin();
    let mut lines = Vec::new();
    for (i, line) in stdin.lock().split(b'\n').enumerate() {
        let bytes = line.map_err(|e| XtaskError::Input {
            line: i + 1,
            message: e.to_string(),
        })?;
        let text = String::from_utf8(bytes).map_err(|e| XtaskError::Input {
            line: i + 1,
            message: format!(
                "not valid UTF-8 (byte {} of the line); convert the input to UTF-8",
                e.utf8_error().valid_up_to() + 1
            ),
        })?;
        lines.push(text.trim_end_matches('\r').to_string());
    }
    Ok(lines)
}
