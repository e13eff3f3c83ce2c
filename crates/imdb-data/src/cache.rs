//! A versioned binary cache of the tokenized corpus, so that a second load reads one file
//! instead of 100,000 small ones.
//!
//! Layout (little-endian): magic `IMDBTOK\0`, format version (u32), tokenizer version (u32),
//! archive SHA-256 (64 ASCII bytes), unlabelled flag (u8), the vocabulary (u64 count, then each
//! word as u32 length + UTF-8), the train, test and unlabelled splits (u64 count, then each
//! review as u32 id, u8 rating, u8 class (0 negative, 1 positive, 2 unlabelled), u32 length,
//! length × u32 ranks), and finally the SHA-256 of everything before it. A file that fails any
//! check is ignored and rebuilt. It holds the IMDB corpus tokenized with the default settings
//! only: other sources and settings are tokenized at every load.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::atomic::write_atomic;
use crate::error::{DataError, Result};
use crate::tokenized::{TokenizedCorpus, TokenizedReview, imdb_classes};
use crate::tokenizer::{TOKENIZER_VERSION, TokenizerConfig};
use crate::vocab::Vocabulary;

const MAGIC: &[u8; 8] = b"IMDBTOK\0";
/// Version of the file layout above.
pub const CACHE_FORMAT_VERSION: u32 = 1;

/// What a cache file must match to be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKey {
    /// SHA-256 of the archive, lowercase hex.
    pub archive_sha256: String,
    /// Whether the unlabelled reviews are included.
    pub with_unsup: bool,
}

impl CacheKey {
    /// The file name for this key inside the archive's data folder.
    pub fn file_name(&self) -> String {
        let part = if self.with_unsup { "all" } else { "labelled" };
        format!("tokens-f{CACHE_FORMAT_VERSION}-t{TOKENIZER_VERSION}-{part}.bin")
    }
}

/// Writes the corpus to `path` atomically (temporary file, then rename).
pub fn write_cache(path: &Path, corpus: &TokenizedCorpus) -> Result<()> {
    let mut buf = Vec::with_capacity(estimated_size(corpus));
    buf.extend_from_slice(MAGIC);
    buf.extend_from_slice(&CACHE_FORMAT_VERSION.to_le_bytes());
    buf.extend_from_slice(&TOKENIZER_VERSION.to_le_bytes());
    buf.extend_from_slice(&sha_field(&corpus.archive_sha256));
    buf.push(u8::from(!corpus.unsup.is_empty()));
    buf.extend_from_slice(&(corpus.vocab.len() as u64).to_le_bytes());
    for word in corpus.vocab.words() {
        buf.extend_from_slice(&(word.len() as u32).to_le_bytes());
        buf.extend_from_slice(word.as_bytes());
    }
    for split in [&corpus.train, &corpus.test, &corpus.unsup] {
        buf.extend_from_slice(&(split.len() as u64).to_le_bytes());
        for review in split {
            buf.extend_from_slice(&review.id.to_le_bytes());
            buf.push(review.rating);
            buf.push(match review.class {
                Some(class) => class.min(1) as u8,
                None => 2,
            });
            buf.extend_from_slice(&(review.ranks.len() as u32).to_le_bytes());
            for rank in &review.ranks {
                buf.extend_from_slice(&rank.to_le_bytes());
            }
        }
    }
    let digest = Sha256::digest(&buf);
    buf.extend_from_slice(&digest);

    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| DataError::io("cannot create folder", dir, e))?;
    }
    write_atomic(path, &buf)
}

/// Reads the cache at `path` if it exists, is intact and matches `key`; `None` otherwise.
pub fn read_cache(path: &Path, key: &CacheKey) -> Option<TokenizedCorpus> {
    let bytes = std::fs::read(path).ok()?;
    parse(&bytes, key)
}

fn parse(bytes: &[u8], key: &CacheKey) -> Option<TokenizedCorpus> {
    let body_len = bytes.len().checked_sub(32)?;
    let (body, digest) = bytes.split_at(body_len);
    if Sha256::digest(body).as_slice() != digest {
        return None;
    }
    let mut r = Reader { bytes: body };
    if r.take(8)? != MAGIC
        || r.u32()? != CACHE_FORMAT_VERSION
        || r.u32()? != TOKENIZER_VERSION
        || r.take(64)? != sha_field(&key.archive_sha256)
        || (r.take(1)?[0] == 1) != key.with_unsup
    {
        return None;
    }
    let word_count = r.u64()? as usize;
    let mut words = Vec::with_capacity(word_count.min(body.len()));
    for _ in 0..word_count {
        let len = r.u32()? as usize;
        words.push(std::str::from_utf8(r.take(len)?).ok()?.to_string());
    }
    let mut splits = Vec::with_capacity(3);
    for _ in 0..3 {
        let count = r.u64()? as usize;
        let mut reviews = Vec::with_capacity(count.min(body.len()));
        for _ in 0..count {
            let id = r.u32()?;
            let rating = r.take(1)?[0];
            let class = match r.take(1)?[0] {
                c @ (0 | 1) => Some(u32::from(c)),
                2 => None,
                _ => return None,
            };
            let len = r.u32()? as usize;
            let ranks = r
                .take(len.checked_mul(4)?)?
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            reviews.push(TokenizedReview {
                id,
                rating,
                class,
                ranks,
            });
        }
        splits.push(reviews);
    }
    if !r.bytes.is_empty() {
        return None;
    }
    let unsup = splits.pop()?;
    let test = splits.pop()?;
    let train = splits.pop()?;
    Some(TokenizedCorpus {
        vocab: Vocabulary::from_ranked_words(words),
        classes: imdb_classes(),
        train,
        test,
        unsup,
        archive_sha256: key.archive_sha256.clone(),
        tokenizer: TokenizerConfig::default(),
    })
}

fn sha_field(sha: &str) -> [u8; 64] {
    let mut field = [b'0'; 64];
    for (dst, src) in field.iter_mut().zip(sha.bytes()) {
        *dst = src;
    }
    field
}

fn estimated_size(corpus: &TokenizedCorpus) -> usize {
    let tokens: usize = [&corpus.train, &corpus.test, &corpus.unsup]
        .iter()
        .flat_map(|s| s.iter())
        .map(|r| 10 + 4 * r.ranks.len())
        .sum();
    tokens + corpus.vocab.len() * 12 + 256
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.bytes.len() {
            return None;
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::{RawReview, Sentiment};

    fn corpus() -> TokenizedCorpus {
        let review = |id, s: Sentiment, text: &str| RawReview {
            id,
            rating: if s == Sentiment::Positive { 8 } else { 3 },
            sentiment: Some(s),
            text: text.into(),
        };
        let unsup = RawReview {
            id: 9,
            rating: 0,
            sentiment: None,
            text: "whatever film".into(),
        };
        TokenizedCorpus::build(
            &[
                review(1, Sentiment::Negative, "awful film"),
                review(2, Sentiment::Positive, "lovely film"),
            ],
            &[review(3, Sentiment::Positive, "lovely new film")],
            &[unsup],
            "ab".repeat(32),
        )
    }

    fn key(with_unsup: bool) -> CacheKey {
        CacheKey {
            archive_sha256: "ab".repeat(32),
            with_unsup,
        }
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.bin");
        let c = corpus();
        write_cache(&path, &c).unwrap();
        assert_eq!(read_cache(&path, &key(true)), Some(c));
    }

    #[test]
    fn other_key_or_damage_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.bin");
        write_cache(&path, &corpus()).unwrap();
        assert!(read_cache(&path, &key(false)).is_none());
        let other = CacheKey {
            archive_sha256: "cd".repeat(32),
            with_unsup: true,
        };
        assert!(read_cache(&path, &other).is_none());

        let mut bytes = std::fs::read(&path).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        assert!(read_cache(&path, &key(true)).is_none());

        std::fs::write(&path, &bytes[..10]).unwrap();
        assert!(read_cache(&path, &key(true)).is_none());
    }
}
