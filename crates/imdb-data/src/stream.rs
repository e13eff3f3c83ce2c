//! Texts to classify, read one at a time from a file of any size: plain text (one text per
//! line), CSV/TSV with a header (a text column and, optionally, an id column), or JSON Lines
//! (a text key and, optionally, an id key). Memory stays that of one record whatever the
//! file's size. Bad input is an error naming the file and line, and what to fix.
//!
//! ```
//! use imdb_data::stream::TextReader;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("reviews.csv");
//! std::fs::write(&path, "id,review\nr1,\"Great, truly\"\nr2,\"Dull\nand long\"\n").unwrap();
//! let texts: Vec<_> = TextReader::open(&path, "review", Some("id"))
//!     .unwrap()
//!     .collect::<Result<_, _>>()
//!     .unwrap();
//! assert_eq!(texts[1].id, "r2");
//! assert_eq!(texts[1].text, "Dull\nand long");
//! ```

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{DataError, Result};
use crate::source::{csv_delimiter, csv_problem, extension, quoted_list};

/// One text read from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputText {
    /// Its id: the id field's value, or its row number (1 for the first text).
    pub id: String,
    /// The text.
    pub text: String,
    /// The line it starts on (1-based; a CSV's header is line 1).
    pub line: usize,
}

/// The kind of input, from the file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// `.txt` (or any other name): one text per line.
    Lines,
    /// `.csv`, `.tsv`, `.tab`: a header row, then one text per row.
    Csv,
    /// `.jsonl`, `.ndjson`: one JSON object per line; blank lines are skipped.
    Jsonl,
}

impl InputFormat {
    /// The format of the file `path`, from its extension.
    pub fn of_path(path: &Path) -> Self {
        match extension(path).as_str() {
            "csv" | "tsv" | "tab" => InputFormat::Csv,
            "jsonl" | "ndjson" => InputFormat::Jsonl,
            _ => InputFormat::Lines,
        }
    }
}

/// Counts the bytes read through it (for progress).
struct Counted<R> {
    inner: R,
    bytes: Arc<AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

enum Records {
    Lines(BufReader<Counted<File>>),
    Csv {
        reader: csv::Reader<Counted<File>>,
        text: usize,
        id: Option<usize>,
        record: csv::StringRecord,
    },
    Jsonl {
        lines: BufReader<Counted<File>>,
        text: String,
        id: Option<String>,
    },
}

/// Reads an input file's texts one at a time (see the module docs); an iterator of
/// [`InputText`]s, ending at the first error.
pub struct TextReader {
    path: PathBuf,
    records: Records,
    bytes: Arc<AtomicU64>,
    line: usize,
    rows: usize,
    failed: bool,
}

fn error(path: &Path, line: Option<usize>, problem: impl Into<String>) -> DataError {
    DataError::Source {
        path: path.to_path_buf(),
        line,
        problem: problem.into(),
    }
}

impl TextReader {
    /// Opens `path`, its format from its extension ([`InputFormat::of_path`]); `text_field`
    /// and `id_field` name the CSV columns or JSON keys (a plain-text file has neither). A
    /// CSV's header is read and checked here.
    pub fn open(path: &Path, text_field: &str, id_field: Option<&str>) -> Result<Self> {
        let file = File::open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                error(path, None, "no such file: check the path")
            } else {
                DataError::io("cannot open", path, e)
            }
        })?;
        let bytes = Arc::new(AtomicU64::new(0));
        let counted = Counted {
            inner: file,
            bytes: bytes.clone(),
        };
        let records = match InputFormat::of_path(path) {
            InputFormat::Lines => Records::Lines(BufReader::new(counted)),
            InputFormat::Jsonl => Records::Jsonl {
                lines: BufReader::new(counted),
                text: text_field.to_string(),
                id: id_field.map(str::to_string),
            },
            InputFormat::Csv => {
                let mut reader = csv::ReaderBuilder::new()
                    .delimiter(csv_delimiter(path, None)?)
                    .has_headers(true)
                    .flexible(false)
                    .from_reader(counted);
                let headers: Vec<String> = reader
                    .headers()
                    .map_err(|e| csv_error(path, &e))?
                    .iter()
                    .map(|h| h.trim_start_matches('\u{feff}').to_string())
                    .collect();
                if headers.iter().all(String::is_empty) {
                    return Err(error(
                        path,
                        Some(1),
                        "the file is empty: it needs a header row naming its columns",
                    ));
                }
                let column = |name: &str| -> Result<usize> {
                    headers.iter().position(|h| h == name).ok_or_else(|| {
                        error(
                            path,
                            Some(1),
                            format!(
                                "no column {name:?}; the header has {}. Name the columns with \
                                 --text-field and --id-field",
                                quoted_list(&headers)
                            ),
                        )
                    })
                };
                let text = column(text_field)?;
                let id = id_field.map(column).transpose()?;
                Records::Csv {
                    reader,
                    text,
                    id,
                    record: csv::StringRecord::new(),
                }
            }
        };
        Ok(Self {
            path: path.to_path_buf(),
            records,
            bytes,
            line: 0,
            rows: 0,
            failed: false,
        })
    }

    /// Bytes of the file read so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// The next text, `None` at the end.
    fn next_text(&mut self) -> Result<Option<InputText>> {
        let path = self.path.clone();
        match &mut self.records {
            Records::Lines(lines) => {
                let Some(line) = read_line(lines, &path, &mut self.line)? else {
                    return Ok(None);
                };
                self.rows += 1;
                Ok(Some(InputText {
                    id: self.rows.to_string(),
                    text: line,
                    line: self.line,
                }))
            }
            Records::Jsonl { lines, text, id } => loop {
                let Some(raw) = read_line(lines, &path, &mut self.line)? else {
                    return Ok(None);
                };
                if raw.trim().is_empty() {
                    continue;
                }
                let line = self.line;
                let fail = |problem: String| error(&path, Some(line), problem);
                let value: serde_json::Value = serde_json::from_str(&raw)
                    .map_err(|e| fail(format!("not a JSON object: {e}")))?;
                let object = value
                    .as_object()
                    .ok_or_else(|| fail("not a JSON object: each line must be {...}".into()))?;
                let field = |name: &str| {
                    object.get(name).ok_or_else(|| {
                        let keys: Vec<String> = object.keys().cloned().collect();
                        fail(format!(
                            "no key {name:?}; this object has {}. Name the keys with \
                             --text-field and --id-field",
                            quoted_list(&keys)
                        ))
                    })
                };
                let body = match field(text)? {
                    serde_json::Value::String(s) => s.clone(),
                    other => return Err(fail(format!("{text:?} must be a string, not {other}"))),
                };
                self.rows += 1;
                let id = match id {
                    None => self.rows.to_string(),
                    Some(key) => match field(key)? {
                        serde_json::Value::String(s) => s.clone(),
                        serde_json::Value::Number(n) => n.to_string(),
                        other => {
                            return Err(fail(format!(
                                "{key:?} must be a string or a number, not {other}"
                            )));
                        }
                    },
                };
                return Ok(Some(InputText {
                    id,
                    text: body,
                    line,
                }));
            },
            Records::Csv {
                reader,
                text,
                id,
                record,
            } => {
                if !reader
                    .read_record(record)
                    .map_err(|e| csv_error(&path, &e))?
                {
                    return Ok(None);
                }
                self.rows += 1;
                let line = record.position().map_or(0, |p| p.line() as usize);
                Ok(Some(InputText {
                    id: id.map_or_else(|| self.rows.to_string(), |c| record[c].to_string()),
                    text: record[*text].to_string(),
                    line,
                }))
            }
        }
    }
}

impl Iterator for TextReader {
    type Item = Result<InputText>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let next = self.next_text().transpose();
        if matches!(next, Some(Err(_))) {
            self.failed = true;
        }
        next
    }
}

/// The next line of `lines` without its line end (`\n` or `\r\n`), counting it in `line`;
/// a line that is not UTF-8 is an error naming it.
fn read_line(lines: &mut impl BufRead, path: &Path, line: &mut usize) -> Result<Option<String>> {
    let mut bytes = Vec::new();
    let n = lines
        .read_until(b'\n', &mut bytes)
        .map_err(|e| DataError::io("cannot read", path, e))?;
    if n == 0 {
        return Ok(None);
    }
    *line += 1;
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
    if *line == 1 && bytes.starts_with("\u{feff}".as_bytes()) {
        bytes.drain(..3);
    }
    String::from_utf8(bytes).map(Some).map_err(|e| {
        error(
            path,
            Some(*line),
            format!(
                "not valid UTF-8 (byte {} of the line): save the file as UTF-8",
                e.utf8_error().valid_up_to() + 1
            ),
        )
    })
}

fn csv_error(path: &Path, e: &csv::Error) -> DataError {
    error(
        path,
        e.position().map(|p| p.line() as usize),
        csv_problem(e),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(name: &str, contents: &[u8], text: &str, id: Option<&str>) -> Result<Vec<InputText>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        TextReader::open(&path, text, id)?.collect()
    }

    #[test]
    fn lines_keep_every_line_and_number_them() {
        let texts = read(
            "a.txt",
            "\u{feff}good film\r\n\nbad one\n".as_bytes(),
            "",
            None,
        )
        .unwrap();
        let got: Vec<(&str, &str, usize)> = texts
            .iter()
            .map(|t| (t.id.as_str(), t.text.as_str(), t.line))
            .collect();
        assert_eq!(
            got,
            [("1", "good film", 1), ("2", "", 2), ("3", "bad one", 3)]
        );
    }

    #[test]
    fn csv_and_jsonl_read_texts_ids_and_line_breaks() {
        let csv = b"id\treview\nx\tfine, ok\n7\t\"two\nlines\"\n";
        let texts = read("a.tsv", csv, "review", Some("id")).unwrap();
        assert_eq!(texts.len(), 2);
        assert_eq!(
            (texts[1].id.as_str(), texts[1].text.as_str()),
            ("7", "two\nlines")
        );
        assert_eq!(texts[1].line, 3);
        let jsonl = b"{\"text\": \"a\\nb\", \"id\": 12}\n\n{\"text\": \"c\", \"id\": \"k\"}\n";
        let texts = read("a.jsonl", jsonl, "text", Some("id")).unwrap();
        let got: Vec<(&str, &str, usize)> = texts
            .iter()
            .map(|t| (t.id.as_str(), t.text.as_str(), t.line))
            .collect();
        assert_eq!(got, [("12", "a\nb", 1), ("k", "c", 3)]);
        let numbered = read("a.jsonl", jsonl, "text", None).unwrap();
        assert_eq!(numbered[1].id, "2");
    }

    #[test]
    fn bad_input_names_the_file_and_line() {
        let fails = |name: &str, contents: &[u8], text: &str, id: Option<&str>| {
            read(name, contents, text, id).unwrap_err().to_string()
        };
        let e = fails("a.csv", b"id,text\n1,fine\n2,bad,extra\n", "text", None);
        assert!(e.contains("a.csv:3") && e.contains("3 fields"), "{e}");
        let e = fails("a.csv", b"id,body\n1,fine\n", "text", None);
        assert!(e.contains(":1") && e.contains("no column \"text\"") && e.contains("\"body\""));
        let e = fails("a.csv", b"text\n", "text", Some("key"));
        assert!(e.contains("no column \"key\""), "{e}");
        let e = fails(
            "a.jsonl",
            b"{\"text\": \"ok\"}\n{\"text\": 3}\n",
            "text",
            None,
        );
        assert!(
            e.contains("a.jsonl:2") && e.contains("must be a string"),
            "{e}"
        );
        let e = fails("a.jsonl", b"{\"text\": \"ok\"}\nnot json\n", "text", None);
        assert!(e.contains(":2") && e.contains("not a JSON object"), "{e}");
        let e = fails("a.jsonl", b"{\"body\": \"ok\"}\n", "text", None);
        assert!(
            e.contains("no key \"text\"") && e.contains("\"body\""),
            "{e}"
        );
        let e = fails("a.txt", b"fine\nbad \xff byte\n", "", None);
        assert!(e.contains("a.txt:2") && e.contains("UTF-8"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let missing = TextReader::open(&dir.path().join("none.txt"), "text", None);
        assert!(missing.err().unwrap().to_string().contains("no such file"));
    }

    #[test]
    fn the_reader_counts_the_bytes_it_read_and_stops_after_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        std::fs::write(&path, b"{\"text\": \"a\"}\nbad\n{\"text\": \"b\"}\n").unwrap();
        let mut reader = TextReader::open(&path, "text", None).unwrap();
        assert!(reader.next().unwrap().is_ok());
        assert!(reader.next().unwrap().is_err());
        assert!(reader.next().is_none());
        assert_eq!(reader.bytes_read(), std::fs::metadata(&path).unwrap().len());
    }
}
