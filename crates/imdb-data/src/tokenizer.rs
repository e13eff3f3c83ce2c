//! Splitting review text into words, the way Keras' IMDB copy was prepared.
//!
//! Text is lowercased; `<br />` tags are line breaks, not words (Keras' copy kept them as the
//! word `br`, which this tokenizer deliberately drops); a word is a run of letters and digits,
//! with apostrophes kept inside it (`don't`, `i've`); every other character separates words, so
//! `Wal-Mart` gives `wal mart` and `$4.95` gives `4 95`, as in Keras' copy.

/// Version of the tokenization rules; part of every cache key, so a change here invalidates
/// caches built with the old rules.
pub const TOKENIZER_VERSION: u32 = 1;

/// Calls `emit` with each word of `text`, lowercased, in order.
///
/// The words are borrowed from a buffer reused between calls, so tokenizing allocates nothing
/// per word.
pub fn for_each_token(text: &str, mut emit: impl FnMut(&str)) {
    let mut word = String::with_capacity(32);
    // An apostrophe seen after a word character, kept only if another word character follows.
    let mut pending_apostrophe = false;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if c == '<'
            && let Some(len) = br_tag_len(rest)
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
            if c.is_ascii() {
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
    let mut words = Vec::new();
    for_each_token(text, |w| words.push(w.to_string()));
    words
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
    fn non_english_and_emoji() {
        assert_eq!(
            tokenize("Película ÉPICA 😀 naïve"),
            ["película", "épica", "naïve"]
        );
        assert!(tokenize("").is_empty());
        assert!(tokenize("!!! ... <br />").is_empty());
    }
}
