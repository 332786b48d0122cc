//! E-mail addresses, found around each `@` rather than by one regex: the
//! local part runs left from the `@` over address characters, the domain
//! right over labels ending in a 2+ letter top-level label. An address whose
//! domain is the local part of the next ("a@b.cc@d.ee") joins it in one
//! span (the merge in `span`), so neither half is left in clear. A local
//! part that starts after a `*` is an address masked already.

use std::ops::Range;
use std::sync::LazyLock;

use regex::Regex;

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

/// A dot written out: ".", " dot ", "[dot]", "(dot)".
const DOT: &str = r"(?:\.|[ \t]+dot[ \t]+|[ \t]*[\[(\{]dot[\])\}][ \t]*)";

static SPELLED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?i)(?-u:\b)(?P<local>[a-z0-9_%+-]+(?:{DOT}[a-z0-9_%+-]+){{0,4}})(?P<at>[ \t]*[\[(\{{<]at[\])\}}>][ \t]*|[ \t]+at[ \t]+)(?P<domain>[a-z0-9-]+(?:{DOT}[a-z0-9-]+){{1,3}})(?-u:\b)"
    ))
    .expect("spelled e-mail regex")
});

static AT_WORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)[\[(\{<]at[\])\}>]|[ \t]at[ \t]").expect("at regex"));

/// Top-level labels a spelled-out address may end in.
const TLDS: &[&str] = &[
    "com", "net", "org", "edu", "gov", "io", "me", "co", "uk", "cn", "hk", "tw", "sg", "au", "ca",
    "de", "fr", "jp", "nz", "in", "info", "biz", "us", "mo", "my", "ie",
];
/// Mail providers whose name makes "jane at gmail dot com" an address even
/// with a plain local part.
const PROVIDERS: &[&str] = &[
    "gmail",
    "googlemail",
    "outlook",
    "hotmail",
    "live",
    "yahoo",
    "icloud",
    "me",
    "proton",
    "protonmail",
    "qq",
    "163",
    "126",
    "sina",
    "foxmail",
    "aol",
    "gmx",
    "yandex",
    "mail",
];

/// Addresses spelled out so forms and filters miss them ("jane dot doe at
/// outlook dot com", "j.doe [at] proton.me"): a local part, "at" (bare or
/// bracketed) and a domain ending in a known top-level label. With a bare
/// " at " the local part must hold a dot, "_" or digit, or the domain be a
/// mail provider, so "look at amazon dot com" stays.
pub(crate) fn find_spelled(text: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    // Most messages hold no "at" at all: skip the costly pattern then.
    if !AT_WORD.is_match(text) {
        return out;
    }
    for caps in SPELLED.captures_iter(text) {
        let (Some(m), Some(local), Some(at), Some(domain)) = (
            caps.get(0),
            caps.name("local"),
            caps.name("at"),
            caps.name("domain"),
        ) else {
            continue;
        };
        if text[..m.start()].ends_with(['*', '@', '.']) {
            continue;
        }
        let labels: Vec<String> = domain
            .as_str()
            .to_lowercase()
            .split(|c: char| !c.is_ascii_alphanumeric() && c != '-')
            .filter(|l| !l.is_empty() && *l != "dot")
            .map(str::to_owned)
            .collect();
        let (Some(first), Some(last)) = (labels.first(), labels.last()) else {
            continue;
        };
        if !TLDS.contains(&last.as_str()) {
            continue;
        }
        let bracketed = at.as_str().contains(['[', '(', '{', '<']);
        let l = local.as_str().to_lowercase();
        let marked_local =
            l.contains(['.', '_']) || l.contains(" dot ") || l.bytes().any(|b| b.is_ascii_digit());
        if bracketed || marked_local || PROVIDERS.contains(&first.as_str()) {
            out.push(m.range());
        }
    }
    out
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

    fn spelled(text: &str) -> Vec<&str> {
        find_spelled(text).into_iter().map(|r| &text[r]).collect()
    }

    #[test]
    fn finds_spelled_out_addresses() {
        assert_eq!(
            spelled("write to ken dot wu at gmail dot com please"),
            vec!["ken dot wu at gmail dot com"]
        );
        assert_eq!(
            spelled("mail: lee_88 (at) example.co.uk"),
            vec!["lee_88 (at) example.co.uk"]
        );
        assert_eq!(
            spelled("it's amy at yahoo dot com"),
            vec!["amy at yahoo dot com"]
        );
        assert_eq!(spelled("r.hall[at]uni.edu"), vec!["r.hall[at]uni.edu"]);
        for text in [
            "look at amazon dot com",
            "arrived at 3 dot 5",
            "meet at home.com",
            "k*** at gmail dot com",
            "delivered at 5.30 pm",
        ] {
            assert_eq!(spelled(text), Vec::<&str>::new(), "{text}");
        }
    }
}
