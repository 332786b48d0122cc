//! Half-width folding for detection only.
//!
//! Shoppers typing on Chinese keyboards often send full-width digits and
//! punctuation ("１３８１２３４５６７８", "＋８６", "（０１０）"). Every detector
//! works on a folded copy where each character maps to exactly one character,
//! so a byte range found in the copy maps back to a byte range of the
//! original; the output keeps the original characters outside masked spans.

/// The folded text and, for every byte boundary of it, the byte offset of the
/// same boundary in the original text.
pub(crate) struct Folded<'a> {
    /// Text with full-width forms folded to ASCII, dashes and odd spaces unified.
    pub text: std::borrow::Cow<'a, str>,
    /// `map[i]` is the original offset of folded offset `i`; empty when the
    /// folding changed nothing (offsets are then the same).
    map: Vec<usize>,
}

impl<'a> Folded<'a> {
    /// Folds `original`; borrows it unchanged when nothing needs folding.
    pub fn new(original: &'a str) -> Self {
        if !original.chars().any(|c| fold(c) != c) {
            return Folded {
                text: std::borrow::Cow::Borrowed(original),
                map: Vec::new(),
            };
        }
        let mut text = String::with_capacity(original.len());
        let mut map = Vec::with_capacity(original.len() + 1);
        for (at, c) in original.char_indices() {
            let f = fold(c);
            for _ in 0..f.len_utf8() {
                map.push(at);
            }
            text.push(f);
        }
        map.push(original.len());
        Folded {
            text: std::borrow::Cow::Owned(text),
            map,
        }
    }

    /// Original byte offset of folded byte offset `at` (a char boundary).
    pub fn original(&self, at: usize) -> usize {
        if self.map.is_empty() {
            at
        } else {
            self.map[at]
        }
    }
}

/// One character's detection form: full-width ASCII variants (U+FF01–FF5E)
/// to ASCII, the ideographic and no-break spaces to a space, the common
/// dashes to '-', and the Chinese full stop inside numbers stays as it is.
pub(crate) fn fold(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        '\u{3000}' | '\u{00A0}' | '\u{2002}'..='\u{200A}' | '\u{202F}' => ' ',
        '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{FE63}' => '-',
        _ => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_full_width_digits_and_maps_offsets_back() {
        let original = "电话１３８－1234";
        let f = Folded::new(original);
        assert_eq!(f.text, "电话138-1234");
        let start = f.text.find('1').unwrap();
        assert_eq!(&original[f.original(start)..], "１３８－1234");
        assert_eq!(f.original(f.text.len()), original.len());
    }

    #[test]
    fn borrows_plain_text() {
        let f = Folded::new("call 415-555-2671");
        assert!(matches!(f.text, std::borrow::Cow::Borrowed(_)));
        assert_eq!(f.original(5), 5);
    }
}
