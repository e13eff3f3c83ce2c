//! Splitting review text into words, the way Keras' IMDB copy was prepared.
//!
//! Text is lowercased; `<br />` tags are line breaks, not words (Keras' copy kept them as the
//! word `br`, which this tokenizer deliberately drops); a word is a run of letters and digits,
//! with apostrophes kept inside it (`don't`, `i've`); every other character separates words, so
//! `Wal-Mart` gives `wal mart` and `$4.95` gives `4 95`, as in Keras' copy.

use serde::{Deserialize, Serialize};

/// Version of the tokenization rules; part of every cache key, so a change here invalidates
/// caches built with the old rules.
pub const TOKENIZER_VERSION: u32 = 1;

/// The tokenizer's settings; the defaults are the rules above, with which every IMDB number
/// of this project was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenizerConfig {
    /// Lowercase every word (Keras' `Tokenizer(lower=True)`).
    pub lowercase: bool,
    /// Drop every HTML tag (`<i>`, `<a href=…>`, …) instead of reading its letters as words.
    /// `<br>` tags are always line breaks.
    pub strip_html: bool,
}

impl Default for TokenizerConfig {
    fn default() -> Self {
        Self {
            lowercase: true,
            strip_html: false,
        }
    }
}

/// Calls `emit` with each word of `text`, lowercased, in order.
///
/// The words are borrowed from a buffer reused between calls, so tokenizing allocates nothing
/// per word.
pub fn for_each_token(text: &str, emit: impl FnMut(&str)) {
    for_each_token_with(text, TokenizerConfig::default(), emit)
}

/// [`for_each_token`] with the given settings.
pub fn for_each_token_with(text: &str, config: TokenizerConfig, mut emit: impl FnMut(&str)) {
    let mut word = String::with_capacity(32);
    // An apostrophe seen after a word character, kept only if another word character follows.
    let mut pending_apostrophe = false;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if c == '<'
            && let Some(len) =
                br_tag_len(rest).or_else(|| config.strip_html.then(|| html_tag_len(rest)).flatten())
        {
            flush(&mut word, &mut emit);
            pending_apostrophe = false;
            rest = &rest[len..];
            continue;
        }
        rest = &rest[c.len_utf8()..];
        if c.is_alphanumeric() {
            if pending_apostrophe {
                word.push('\'');
                pending_apostrophe = false;
            }
            if !config.lowercase {
                word.push(c);
            } else if c.is_ascii() {
                word.push(c.to_ascii_lowercase());
            } else {
                word.extend(c.to_lowercase());
            }
        } else if (c == '\'' || c == '\u{2019}') && !word.is_empty() && !pending_apostrophe {
            pending_apostrophe = true;
        } else {
            flush(&mut word, &mut emit);
            pending_apostrophe = false;
        }
    }
    flush(&mut word, &mut emit);
}

/// The words of `text`, lowercased, as owned strings.
pub fn tokenize(text: &str) -> Vec<String> {
    tokenize_with(text, TokenizerConfig::default())
}

/// The words of `text` under `config`, as owned strings.
pub fn tokenize_with(text: &str, config: TokenizerConfig) -> Vec<String> {
    let mut words = Vec::new();
    for_each_token_with(text, config, |w| words.push(w.to_string()));
    words
}

/// Length in bytes of an HTML tag at the start of `s`: `<` then a letter, `/` or `!`, up to the
/// next `>` (at most 256 bytes, so a stray `<` never swallows the text after it).
fn html_tag_len(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let second = *bytes.get(1)?;
    if !(second.is_ascii_alphabetic() || second == b'/' || second == b'!') {
        return None;
    }
    let end = bytes.iter().take(256).position(|&b| b == b'>')?;
    Some(end + 1)
}

fn flush(word: &mut String, emit: &mut impl FnMut(&str)) {
    if !word.is_empty() {
        emit(word);
        word.clear();
    }
}

/// Length in bytes of a `<br>`, `<br/>` or `<br />` tag (any case, any spaces) at the start of
/// `s`, if there is one.
fn br_tag_len(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    if bytes.len() < 4
        || !bytes[1].eq_ignore_ascii_case(&b'b')
        || !bytes[2].eq_ignore_ascii_case(&b'r')
    {
        return None;
    }
    let mut i = 3;
    while i < bytes.len() && bytes[i] == b' ' {
        i += 1;
    }
    if i < bytes.len() && bytes[i] == b'/' {
        i += 1;
    }
    (i < bytes.len() && bytes[i] == b'>').then_some(i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowercases_and_splits_on_punctuation() {
        assert_eq!(
            tokenize("This movie... was GREAT! 10/10, Wal-Mart $4.95"),
            [
                "this", "movie", "was", "great", "10", "10", "wal", "mart", "4", "95"
            ]
        );
    }

    #[test]
    fn line_breaks_are_not_words() {
        assert_eq!(
            tokenize("end.<br /><br />Next<BR>line<br/>x"),
            ["end", "next", "line", "x"]
        );
        // A `<` that opens no line break is punctuation.
        assert_eq!(
            tokenize("a <b>bold</b> c<br"),
            ["a", "b", "bold", "b", "c", "br"]
        );
    }

    #[test]
    fn apostrophes_stay_inside_words_only() {
        assert_eq!(
            tokenize("I've said 'don't' - rock 'n' roll's end''s"),
            ["i've", "said", "don't", "rock", "n", "roll's", "end", "s"]
        );
        assert_eq!(tokenize("it\u{2019}s"), ["it's"]);
    }

    #[test]
    fn settings_keep_case_and_strip_tags() {
        let keep_case = TokenizerConfig {
            lowercase: false,
            ..TokenizerConfig::default()
        };
        assert_eq!(tokenize_with("The FILM", keep_case), ["The", "FILM"]);
        let strip = TokenizerConfig {
            strip_html: true,
            ..TokenizerConfig::default()
        };
        assert_eq!(
            tokenize_with("a <i>great</i> <a href=\"x.html\">film</a> 3 < 4", strip),
            ["a", "great", "film", "3", "4"]
        );
        // Without stripping, tag letters are words, as they always were.
        assert_eq!(tokenize("<i>great</i>"), ["i", "great", "i"]);
    }

    #[test]
    fn non_english_and_emoji() {
        assert_eq!(
            tokenize("Película ÉPICA 😀 naïve"),
            ["película", "épica", "naïve"]
        );
        assert!(tokenize("").is_empty());
        assert!(tokenize("!!! ... <br />").is_empty());
    }
}
