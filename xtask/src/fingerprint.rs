//! FNV-1a: a short, stable name for long content (cache keys, equality checks in benches).

/// FNV-1a (64 bits) over `items`, each folded in as one unit (a byte, or a float's bits).
pub fn fnv1a(items: impl IntoIterator<Item = u64>) -> u64 {
    items.into_iter().fold(0xcbf2_9ce4_8422_2325u64, |h, item| {
        (h ^ item).wrapping_mul(0x0100_0000_01b3)
    })
}

/// [`fnv1a`] over the bytes of `text`.
pub fn fnv1a_text(text: &str) -> u64 {
    fnv1a(text.bytes().map(u64::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_values() {
        // From the FNV reference test vectors.
        assert_eq!(fnv1a_text(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a_text("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a_text("foobar"), 0x8594_4171_f739_67e8);
    }
}
