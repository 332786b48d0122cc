//! Small helpers shared by the parsers and the index.

/// 1-based line number of byte `offset` in `text` (clamped to the text).
pub(crate) fn line_at(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// 64-bit FNV-1a: a tiny, stable content hash for index versions. Stable
/// across Rust releases (unlike `DefaultHasher`), so versions in logs and
/// metrics stay comparable between builds.
#[derive(Debug, Clone)]
pub(crate) struct Fnv64(u64);

impl Fnv64 {
    pub(crate) fn new() -> Self {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }

    pub(crate) fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// Writes a length prefix then the bytes, so ("ab","c") and ("a","bc") differ.
    pub(crate) fn write_field(&mut self, bytes: &[u8]) {
        self.write(&(bytes.len() as u64).to_le_bytes());
        self.write(bytes);
    }

    pub(crate) fn finish(&self) -> u64 {
        self.0
    }

    pub(crate) fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_at_counts_newlines_before_offset() {
        let t = "a\nbc\nd";
        assert_eq!(line_at(t, 0), 1);
        assert_eq!(line_at(t, 2), 2);
        assert_eq!(line_at(t, 5), 3);
        assert_eq!(line_at(t, 999), 3);
    }

    #[test]
    fn fnv_matches_reference_and_separates_fields() {
        let mut h = Fnv64::new();
        h.write(b"a");
        assert_eq!(h.finish(), 0xaf63_dc4c_8601_ec8c);
        let mut x = Fnv64::new();
        x.write_field(b"ab");
        x.write_field(b"c");
        let mut y = Fnv64::new();
        y.write_field(b"a");
        y.write_field(b"bc");
        assert_ne!(x.hex(), y.hex());
    }
}
