//! Padding and truncating id sequences to one length, as Keras' `pad_sequences` does, keeping
//! each sequence's true length so that later stages can mask the padding.

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::vocab::PAD_ID;

/// Which side of a short sequence receives the padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Padding {
    /// Padding before the review (Keras' default).
    Pre,
    /// Padding after the review (the notebook's choice).
    #[default]
    Post,
}

/// Which side of a long sequence is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Truncating {
    /// Keep the end of the review (Keras' default).
    Pre,
    /// Keep the beginning of the review (the notebook's choice).
    #[default]
    Post,
}

/// Sequences of one length in a flat row-major buffer, with their true lengths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaddedSequences {
    /// `len() * maxlen` ids, row after row.
    pub ids: Vec<u32>,
    /// The number of real (non-padding) ids in each row, at most `maxlen`.
    pub lengths: Vec<usize>,
    /// The row length.
    pub maxlen: usize,
    /// Where the padding went.
    pub padding: Padding,
}

impl PaddedSequences {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.lengths.len()
    }

    /// True if there is no row.
    pub fn is_empty(&self) -> bool {
        self.lengths.is_empty()
    }

    /// Row `i`, padding included.
    pub fn row(&self, i: usize) -> &[u32] {
        &self.ids[i * self.maxlen..(i + 1) * self.maxlen]
    }

    /// Row `i` without its padding.
    pub fn real(&self, i: usize) -> &[u32] {
        let row = self.row(i);
        match self.padding {
            Padding::Post => &row[..self.lengths[i]],
            Padding::Pre => &row[self.maxlen - self.lengths[i]..],
        }
    }
}

/// The longest `maxlen` allowed: four times IMDB's longest review (about 2,500 words). The
/// padded arrays grow as texts × `maxlen`, and a recurrent network's training memory with it.
pub const MAX_MAXLEN: usize = 10_000;

/// Checks that `maxlen` is usable: at least 1, at most [`MAX_MAXLEN`].
pub fn check_maxlen(maxlen: usize) -> Result<()> {
    if maxlen == 0 {
        return Err(DataError::InvalidSetting {
            setting: "maxlen",
            problem: "0 would drop every word: use a positive length such as 200".to_string(),
        });
    }
    if maxlen > MAX_MAXLEN {
        return Err(DataError::InvalidSetting {
            setting: "maxlen",
            problem: format!(
                "{maxlen} words is too long: every text is padded to it, so use at most \
                 {MAX_MAXLEN} (IMDB's longest review has about 2,500 words)"
            ),
        });
    }
    Ok(())
}

/// Cuts `seq` to at most `maxlen` ids on the `truncating` side.
pub fn truncate(seq: &[u32], maxlen: usize, truncating: Truncating) -> &[u32] {
    &seq[kept_range(seq.len(), maxlen, truncating)]
}

/// Which ids of a sequence of `len` ids [`truncate`] keeps.
pub fn kept_range(len: usize, maxlen: usize, truncating: Truncating) -> std::ops::Range<usize> {
    if len <= maxlen {
        return 0..len;
    }
    match truncating {
        Truncating::Pre => len - maxlen..len,
        Truncating::Post => 0..maxlen,
    }
}

/// Pads with [`PAD_ID`] and truncates every sequence to exactly `maxlen` ids.
pub fn pad_sequences<S: AsRef<[u32]>>(
    sequences: &[S],
    maxlen: usize,
    padding: Padding,
    truncating: Truncating,
) -> Result<PaddedSequences> {
    check_maxlen(maxlen)?;
    let mut ids = vec![PAD_ID; sequences.len() * maxlen];
    let mut lengths = Vec::with_capacity(sequences.len());
    for (row, seq) in ids.chunks_exact_mut(maxlen).zip(sequences) {
        let kept = truncate(seq.as_ref(), maxlen, truncating);
        match padding {
            Padding::Post => row[..kept.len()].copy_from_slice(kept),
            Padding::Pre => row[maxlen - kept.len()..].copy_from_slice(kept),
        }
        lengths.push(kept.len());
    }
    Ok(PaddedSequences {
        ids,
        lengths,
        maxlen,
        padding,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seqs() -> Vec<Vec<u32>> {
        vec![vec![1, 5, 6, 7, 8], vec![1, 9], vec![]]
    }

    #[test]
    fn post_padding_post_truncating_like_the_notebook() {
        let p = pad_sequences(&seqs(), 3, Padding::Post, Truncating::Post).unwrap();
        assert_eq!(p.ids, [1, 5, 6, 1, 9, 0, 0, 0, 0]);
        assert_eq!(p.lengths, [3, 2, 0]);
        assert_eq!(p.real(1), [1, 9]);
    }

    #[test]
    fn pre_padding_pre_truncating_like_keras_defaults() {
        let p = pad_sequences(&seqs(), 3, Padding::Pre, Truncating::Pre).unwrap();
        assert_eq!(p.ids, [6, 7, 8, 0, 1, 9, 0, 0, 0]);
        assert_eq!(p.lengths, [3, 2, 0]);
        assert_eq!(p.real(0), [6, 7, 8]);
        assert_eq!(p.real(1), [1, 9]);
    }

    #[test]
    fn zero_maxlen_is_refused() {
        let err = pad_sequences(&seqs(), 0, Padding::Pre, Truncating::Pre).unwrap_err();
        assert!(err.to_string().contains("maxlen"));
    }

    #[test]
    fn maxlen_beyond_the_bound_is_refused_and_the_bound_itself_pads() {
        let at_bound = pad_sequences(&seqs(), MAX_MAXLEN, Padding::Post, Truncating::Pre).unwrap();
        assert_eq!(at_bound.ids.len(), 3 * MAX_MAXLEN);
        for maxlen in [MAX_MAXLEN + 1, usize::MAX] {
            let err = pad_sequences(&seqs(), maxlen, Padding::Post, Truncating::Pre).unwrap_err();
            let message = err.to_string();
            assert!(
                message.contains("maxlen") && message.contains("at most 10000"),
                "{message}"
            );
        }
    }
}
