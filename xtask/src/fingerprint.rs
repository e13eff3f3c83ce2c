//! FNV-1a: a short, stable name for long content (cache keys, equality checks in benches).

pub use imdb_rng::fnv1a;

/// [`fnv1a`] over the bytes of `text`.
pub fn fnv1a_text(text: &str) -> u64 {
    fnv1a(text.bytes().map(u64::from))
}
