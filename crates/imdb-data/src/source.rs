//! Labelled text from the user's own files: a CSV or TSV table, JSON Lines, or one folder per
//! class (Keras' `text_dataset_from_directory`, fastai's `from_folder`).
//!
//! Every reader returns the texts with their labels as written (a label is a string; an
//! integer label is read as its decimal text) and where each came from, so that a later error
//! (a label outside the class list) can name the file and line. Bad input is an error naming
//! the file, and the line where there is one; a byte-order mark and CRLF line ends are simply
//! handled.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};

/// The format of a labelled source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// The IMDB corpus (`aclImdb_v1.tar.gz`).
    #[default]
    Imdb,
    /// A table with a header row: comma-separated, or tab-separated for `.tsv` / `.tab` files
    /// or with another `delimiter`.
    Csv,
    /// One JSON object per line.
    Jsonl,
    /// One subfolder per class, one UTF-8 text file per example; the class is the folder name.
    Folders,
}

impl SourceKind {
    /// The name used in configs.
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Imdb => "imdb",
            SourceKind::Csv => "csv",
            SourceKind::Jsonl => "jsonl",
            SourceKind::Folders => "folders",
        }
    }
}

impl SourceKind {
    /// The source a path holds, told by its extension: `.csv`, `.tsv` or `.tab` a table,
    /// `.jsonl` or `.ndjson` JSON Lines, and a folder one subfolder per class.
    pub fn of_path(path: &Path) -> Result<Self> {
        if path.is_dir() {
            return Ok(SourceKind::Folders);
        }
        match extension(path).as_str() {
            "csv" | "tsv" | "tab" => Ok(SourceKind::Csv),
            "jsonl" | "ndjson" => Ok(SourceKind::Jsonl),
            _ if !path.exists() => Err(source_error(
                path,
                None,
                "no such file or folder: check the path",
            )),
            _ => Err(source_error(
                path,
                None,
                "cannot tell its format from its name: use a .csv, .tsv or .jsonl file, or a \
                 folder with one subfolder per class",
            )),
        }
    }
}

/// One example as read: its text, its label as written, and where it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelledText {
    /// The text.
    pub text: String,
    /// The label as written in the source.
    pub label: String,
    /// The file it came from.
    pub file: PathBuf,
    /// Its line in that file (1-based; the header is line 1 of a CSV), `None` for a file per
    /// example.
    pub line: Option<usize>,
}

impl LabelledText {
    /// `file` or `file:line`, for messages.
    pub fn location(&self) -> String {
        match self.line {
            Some(line) => format!("{}:{line}", self.file.display()),
            None => self.file.display().to_string(),
        }
    }
}

/// Which fields hold the text and the label (CSV columns or JSON keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields<'a> {
    /// The text's column or key.
    pub text: &'a str,
    /// The label's column or key.
    pub label: &'a str,
}

fn source_error(path: &Path, line: Option<usize>, problem: impl Into<String>) -> DataError {
    DataError::Source {
        path: path.to_path_buf(),
        line,
        problem: problem.into(),
    }
}

fn read_text_file(path: &Path) -> Result<String> {
    if !path.exists() {
        return Err(source_error(
            path,
            None,
            "no such file or folder: check the path (a relative path is read from the config \
             file's folder)",
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| DataError::io("cannot read", path, e))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let line = 1 + e.as_bytes()[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        source_error(
            path,
            Some(line),
            "not valid UTF-8 text: save the file as UTF-8",
        )
    })?;
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    })
}

/// The delimiter of a CSV source: `delimiter` if given, else a tab for `.tsv` and `.tab`
/// files and a comma otherwise.
pub fn csv_delimiter(path: &Path, delimiter: Option<char>) -> Result<u8> {
    match delimiter {
        Some(c) if c.is_ascii() && c != '"' && c != '\n' && c != '\r' => Ok(c as u8),
        Some(c) => Err(DataError::InvalidSetting {
            setting: "delimiter",
            problem: format!(
                "{c:?} cannot separate CSV fields: use one ASCII character such as \",\", \"\\t\" \
                 or \";\""
            ),
        }),
        None => {
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            Ok(
                if ext.eq_ignore_ascii_case("tsv") || ext.eq_ignore_ascii_case("tab") {
                    b'\t'
                } else {
                    b','
                },
            )
        }
    }
}

/// Reads a CSV (or TSV) file with a header row; `text` and `label` name its columns.
pub fn read_csv(path: &Path, fields: &Fields<'_>, delimiter: u8) -> Result<Vec<LabelledText>> {
    let text = read_text_file(path)?;
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(true)
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| csv_error(path, &text, &e))?
        .iter()
        .map(str::to_string)
        .collect::<Vec<_>>();
    if headers.is_empty() || (headers.len() == 1 && headers[0].is_empty()) {
        return Err(source_error(
            path,
            Some(1),
            "the file is empty: it needs a header row naming its columns, then one row per \
             example",
        ));
    }
    let column = |name: &str| -> Result<usize> {
        headers.iter().position(|h| h == name).ok_or_else(|| {
            source_error(
                path,
                Some(1),
                format!(
                    "no column {name:?}; the header has {}. Name the columns with text_field \
                     and label_field",
                    quoted_list(&headers)
                ),
            )
        })
    };
    let (text_col, label_col) = (column(fields.text)?, column(fields.label)?);
    let mut out = Vec::new();
    let mut record = csv::StringRecord::new();
    // Lines are counted here from byte offsets: the csv crate's own count is one short after
    // CRLF line ends, and its offset of a record there is that of the `\n` before it (hence
    // the `+ 1`: a record never starts with a line feed). Records come in order, so the
    // count only moves forward.
    let (mut counted_to, mut line) = (0usize, 1usize);
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(csv_error(path, &text, &e)),
        }
        let start = record
            .position()
            .map_or(counted_to, |p| (p.byte() as usize + 1).min(text.len()));
        line += newlines(&text.as_bytes()[counted_to..start]);
        counted_to = start;
        out.push(LabelledText {
            text: record[text_col].to_string(),
            label: record[label_col].trim().to_string(),
            file: path.to_path_buf(),
            line: Some(line),
        });
    }
    if out.is_empty() {
        return Err(source_error(
            path,
            None,
            "it has a header but no example: add one row per example",
        ));
    }
    Ok(out)
}

fn newlines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

fn csv_error(path: &Path, text: &str, e: &csv::Error) -> DataError {
    let line = e
        .position()
        .map(|p| 1 + newlines(&text.as_bytes()[..(p.byte() as usize + 1).min(text.len())]));
    source_error(path, line, csv_problem(e))
}

/// What a CSV reading error means for the user.
pub(crate) fn csv_problem(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!(
            "this row has {len} fields where the header has {expected_len}: quote fields that \
             contain the delimiter"
        ),
        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8 text: save the file as UTF-8".to_string(),
        _ => e.to_string(),
    }
}

/// A path's extension, lowercased (empty without one).
pub(crate) fn extension(path: &Path) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// Reads JSON Lines: one object per line with a string `text` field and a string or integer
/// `label` field; blank lines are skipped.
pub fn read_jsonl(path: &Path, fields: &Fields<'_>) -> Result<Vec<LabelledText>> {
    let text = read_text_file(path)?;
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty())
        .collect();
    if lines.is_empty() {
        return Err(source_error(
            path,
            None,
            "the file is empty: it needs one JSON object per line",
        ));
    }
    lines
        .into_par_iter()
        .map(|(line, raw)| {
            let fail = |problem: String| source_error(path, Some(line), problem);
            let value: serde_json::Value =
                serde_json::from_str(raw).map_err(|e| fail(format!("not a JSON object: {e}")))?;
            let object = value
                .as_object()
                .ok_or_else(|| fail("not a JSON object: each line must be {...}".to_string()))?;
            let field = |name: &str| {
                object.get(name).ok_or_else(|| {
                    let keys: Vec<String> = object.keys().cloned().collect();
                    fail(format!(
                        "no key {name:?}; this object has {}. Name the keys with text_field and \
                         label_field",
                        quoted_list(&keys)
                    ))
                })
            };
            let text = match field(fields.text)? {
                serde_json::Value::String(s) => s.clone(),
                other => {
                    return Err(fail(format!(
                        "{:?} must be a string, not {other}",
                        fields.text
                    )));
                }
            };
            let label = match field(fields.label)? {
                serde_json::Value::String(s) => s.trim().to_string(),
                serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
                other => {
                    return Err(fail(format!(
                        "{:?} must be a string or an integer, not {other}",
                        fields.label
                    )));
                }
            };
            Ok(LabelledText {
                text,
                label,
                file: path.to_path_buf(),
                line: Some(line),
            })
        })
        .collect()
}

/// Reads one subfolder per class under `root`, each holding one UTF-8 text file per example
/// (hidden files are skipped); the label is the subfolder's name. Files are read in name
/// order, so the order never depends on the file system.
pub fn read_folders(root: &Path) -> Result<Vec<LabelledText>> {
    if !root.is_dir() {
        return Err(source_error(
            root,
            None,
            "no such folder: give the folder that holds one subfolder per class",
        ));
    }
    let mut classes = list_dir(root)?
        .into_iter()
        .filter(|p| p.is_dir())
        .collect::<Vec<_>>();
    classes.sort();
    if classes.is_empty() {
        return Err(source_error(
            root,
            None,
            "it has no subfolder: put each class's text files in a subfolder named after the \
             class",
        ));
    }
    let mut files = Vec::new();
    for dir in &classes {
        let label = dir
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| source_error(dir, None, "the folder name is not UTF-8"))?
            .to_string();
        let mut in_class: Vec<PathBuf> =
            list_dir(dir)?.into_iter().filter(|p| p.is_file()).collect();
        in_class.sort();
        files.extend(in_class.into_iter().map(|p| (label.clone(), p)));
    }
    if files.is_empty() {
        return Err(source_error(
            root,
            None,
            "its class folders hold no file: add one text file per example",
        ));
    }
    files
        .into_par_iter()
        .map(|(label, file)| {
            Ok(LabelledText {
                text: read_text_file(&file)?,
                label,
                file,
                line: None,
            })
        })
        .collect()
}

/// The entries of `dir` that are not hidden (`.DS_Store`, `.git`, ...).
fn list_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| DataError::io("cannot list", dir, e))?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| DataError::io("cannot list", dir, e))?;
        if !entry.file_name().to_string_lossy().starts_with('.') {
            out.push(entry.path());
        }
    }
    Ok(out)
}

/// `names`, each quoted, comma-separated (`none` for no name), for messages.
pub(crate) fn quoted_list(names: &[String]) -> String {
    if names.is_empty() {
        return "none".to_string();
    }
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: Fields<'static> = Fields {
        text: "text",
        label: "label",
    };

    fn write(dir: &Path, name: &str, contents: &[u8]) -> PathBuf {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, contents).unwrap();
        path
    }

    #[test]
    fn csv_with_bom_crlf_quotes_and_integer_labels() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "a.csv",
            "\u{feff}id,text,label\r\n1,\"Great, truly\",1\r\n2,\"Dull \"\"film\"\"\",0\r\n"
                .as_bytes(),
        );
        let rows = read_csv(&path, &FIELDS, b',').unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].text, "Great, truly");
        assert_eq!(rows[1].text, "Dull \"film\"");
        assert_eq!((rows[0].label.as_str(), rows[1].label.as_str()), ("1", "0"));
        assert_eq!(rows[1].line, Some(3));
        assert_eq!(rows[1].location(), format!("{}:3", path.display()));
    }

    #[test]
    fn tsv_by_extension() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "a.tsv", b"text\tlabel\nfine, ok\tpos\n");
        let delimiter = csv_delimiter(&path, None).unwrap();
        assert_eq!(delimiter, b'\t');
        let rows = read_csv(&path, &FIELDS, delimiter).unwrap();
        assert_eq!(
            (rows[0].text.as_str(), rows[0].label.as_str()),
            ("fine, ok", "pos")
        );
        assert_eq!(csv_delimiter(Path::new("x.csv"), Some(';')).unwrap(), b';');
        assert!(csv_delimiter(Path::new("x.csv"), Some('é')).is_err());
    }

    #[test]
    fn csv_errors_name_file_line_and_columns() {
        let dir = tempfile::tempdir().unwrap();
        let missing = read_csv(&dir.path().join("none.csv"), &FIELDS, b',')
            .unwrap_err()
            .to_string();
        assert!(
            missing.contains("none.csv") && missing.contains("no such file"),
            "{missing}"
        );

        let path = write(dir.path(), "cols.csv", b"review,sentiment\nok,1\n");
        let err = read_csv(&path, &FIELDS, b',').unwrap_err().to_string();
        assert!(
            err.contains("cols.csv") && err.contains("\"review\", \"sentiment\""),
            "{err}"
        );

        let path = write(dir.path(), "ragged.csv", b"text,label\nok,1\nbad,1,extra\n");
        let err = read_csv(&path, &FIELDS, b',').unwrap_err().to_string();
        assert!(
            err.contains("ragged.csv:3") && err.contains("3 fields"),
            "{err}"
        );

        let path = write(dir.path(), "latin1.csv", b"text,label\nok,1\ncaf\xe9,0\n");
        let err = read_csv(&path, &FIELDS, b',').unwrap_err().to_string();
        assert!(
            err.contains("latin1.csv:3") && err.contains("UTF-8"),
            "{err}"
        );

        let path = write(dir.path(), "empty.csv", b"");
        let err = read_csv(&path, &FIELDS, b',').unwrap_err().to_string();
        assert!(err.contains("empty.csv") && err.contains("empty"), "{err}");

        let path = write(dir.path(), "header.csv", b"text,label\n");
        let err = read_csv(&path, &FIELDS, b',').unwrap_err().to_string();
        assert!(
            err.contains("header.csv") && err.contains("no example"),
            "{err}"
        );
    }

    #[test]
    fn jsonl_reads_strings_and_integers() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "a.jsonl",
            b"{\"text\": \"good\", \"label\": 2}\r\n\n{\"text\": \"bad\", \"label\": \"neg\"}\n",
        );
        let rows = read_jsonl(&path, &FIELDS).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].label.as_str(), rows[1].label.as_str()),
            ("2", "neg")
        );
        assert_eq!(rows[1].line, Some(3));
    }

    #[test]
    fn jsonl_errors_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "a.jsonl",
            b"{\"text\": \"a\", \"label\": 1}\n{oops\n",
        );
        let err = read_jsonl(&path, &FIELDS).unwrap_err().to_string();
        assert!(err.contains("a.jsonl:2") && err.contains("JSON"), "{err}");

        let path = write(dir.path(), "b.jsonl", b"{\"body\": \"a\", \"label\": 1}\n");
        let err = read_jsonl(&path, &FIELDS).unwrap_err().to_string();
        assert!(
            err.contains("b.jsonl:1") && err.contains("\"body\""),
            "{err}"
        );

        let path = write(
            dir.path(),
            "c.jsonl",
            b"{\"text\": \"a\", \"label\": 1.5}\n",
        );
        let err = read_jsonl(&path, &FIELDS).unwrap_err().to_string();
        assert!(
            err.contains("c.jsonl:1") && err.contains("integer"),
            "{err}"
        );

        let path = write(dir.path(), "d.jsonl", b"\n\n");
        let err = read_jsonl(&path, &FIELDS).unwrap_err().to_string();
        assert!(err.contains("d.jsonl") && err.contains("empty"), "{err}");
    }

    #[test]
    fn folders_give_one_class_per_subfolder() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "pos/b.txt", b"lovely");
        write(dir.path(), "pos/a.txt", "\u{feff}great".as_bytes());
        write(dir.path(), "neg/x.txt", b"awful");
        write(dir.path(), "neg/.DS_Store", b"\xff\xfe");
        let rows = read_folders(dir.path()).unwrap();
        let seen: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r.label.as_str(), r.text.as_str()))
            .collect();
        assert_eq!(
            seen,
            [("neg", "awful"), ("pos", "great"), ("pos", "lovely")]
        );

        write(dir.path(), "neg/bad.txt", b"caf\xe9");
        let err = read_folders(dir.path()).unwrap_err().to_string();
        assert!(err.contains("bad.txt") && err.contains("UTF-8"), "{err}");

        let empty = tempfile::tempdir().unwrap();
        let err = read_folders(empty.path()).unwrap_err().to_string();
        assert!(err.contains("no subfolder"), "{err}");
        let err = read_folders(&empty.path().join("nope"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no such folder"), "{err}");
    }
}
