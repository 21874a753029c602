//! The order of session ids: their byte order (that of [`str::cmp`]), decided on the first
//! eight bytes as one integer when they differ. Most session ids differ there, and sorting
//! half a million of them a day spent its time in `memcmp` calls.

use std::cmp::Ordering;

/// The first eight bytes of `s` as a big-endian integer, zero-padded: comparing two of them
/// orders the strings as [`str::cmp`] does whenever they differ.
pub(super) fn prefix(s: &str) -> u64 {
    let mut bytes = [0u8; 8];
    let n = s.len().min(8);
    bytes[..n].copy_from_slice(&s.as_bytes()[..n]);
    u64::from_be_bytes(bytes)
}

/// The byte order of two strings.
pub(super) fn text_order(a: &str, b: &str) -> Ordering {
    prefix(a).cmp(&prefix(b)).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_order_is_the_byte_order() {
        let words = [
            "",
            "a",
            "ab",
            "ab\0",
            "abcdefgh",
            "abcdefgh\0",
            "abcdefghi",
            "abcdefgg~",
            "b",
            "é",
            "e\u{301}",
            "zzzzzzzzzzzz",
            "0f3a-11",
            "0f3a-1",
            "ABCDEFGHIJ",
            "abcdefgH",
        ];
        for a in words {
            for b in words {
                assert_eq!(text_order(a, b), a.cmp(b), "{a:?} vs {b:?}");
            }
        }
    }
}
