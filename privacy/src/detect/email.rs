//! E-mail addresses, found around each `@` rather than by one regex: the
//! local part runs left from the `@` over address characters, the domain
//! right over labels ending in a 2+ letter top-level label. An address whose
//! domain is the local part of the next ("a@b.cc@d.ee") joins it in one
//! span (the merge in `span`), so neither half is left in clear. A local
//! part that starts after a `*` is an address masked already.

use std::ops::Range;

fn local_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"._%+-".contains(&b)
}

fn domain_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'.'
}

/// Every e-mail address in the folded text.
pub(crate) fn find(text: &str) -> Vec<Range<usize>> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    for at in memchr_all(b, b'@') {
        let mut start = at;
        while start > 0 && local_byte(b[start - 1]) {
            start -= 1;
        }
        // Leading dots or dashes are punctuation, not the address.
        while start < at && matches!(b[start], b'.' | b'-') {
            start += 1;
        }
        if start == at || (start > 0 && b[start - 1] == b'*') {
            continue;
        }
        let mut end = at + 1;
        while end < b.len() && domain_byte(b[end]) {
            end += 1;
        }
        // Trim to the last label made of letters only.
        let domain = &text[at + 1..end];
        let Some(cut) = domain_end(domain) else {
            continue;
        };
        out.push(start..at + 1 + cut);
    }
    out
}

/// Length of the domain up to the end of its last all-letter label (2+
/// letters) with at least one dot before it.
fn domain_end(domain: &str) -> Option<usize> {
    let mut best = None;
    let mut pos = 0;
    let labels: Vec<&str> = domain.split('.').collect();
    for (i, label) in labels.iter().enumerate() {
        if label.is_empty() {
            break;
        }
        pos += label.len();
        if i > 0 {
            let letters = label.bytes().take_while(u8::is_ascii_alphabetic).count();
            if letters >= 2 && letters == label.len() {
                best = Some(pos);
            } else if letters >= 2 {
                // "qq.com谢谢" folds to letters then other text; "qq.com123": stop at the letters.
                best = Some(pos - label.len() + letters);
                break;
            }
        }
        pos += 1;
    }
    best
}

fn memchr_all(b: &[u8], needle: u8) -> impl Iterator<Item = usize> + '_ {
    b.iter()
        .enumerate()
        .filter(move |(_, &x)| x == needle)
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emails(text: &str) -> Vec<&str> {
        find(text).into_iter().map(|r| &text[r]).collect()
    }

    #[test]
    fn finds_addresses() {
        assert_eq!(
            emails("mail: jane.doe@example.co.uk."),
            vec!["jane.doe@example.co.uk"]
        );
        assert_eq!(emails("我的邮箱abc123@qq.com谢谢"), vec!["abc123@qq.com"]);
        assert_eq!(
            emails("jane.doe@example.cdoe@example.co"),
            vec!["jane.doe@example.cdoe", "example.cdoe@example.co"]
        );
        assert_eq!(emails("a***@qq.com"), Vec::<&str>::new());
        assert_eq!(emails("@@ x@y z@localhost"), Vec::<&str>::new());
    }
}
