//! Keywords that say what the next value is: personal ones ("身份证",
//! "卡号", "phone", "微信号", "收件人") make it masked whatever its shape;
//! order, tracking and coupon ones ("订单号", "运单", "order #", "优惠码")
//! keep it readable even when it looks like an ID or a card.
//!
//! A value belongs to the nearest keyword before it: each keyword's window
//! ends where the next keyword starts, so in "订单号是多少？我电话138…" the
//! number is the phone's.

use std::ops::Range;
use std::sync::LazyLock;

use regex::Regex;

use super::chain::{chain_at, keyword_value, Chain};
use super::keyword_lists::{lists, Class};
use super::name;
use crate::span::{Basis, Candidate, Kind};

struct Keywords {
    re: Regex,
    class: std::collections::HashMap<String, Class>,
}

static KEYWORDS: LazyLock<Keywords> = LazyLock::new(|| {
    let mut all: Vec<(&str, Class)> = lists().collect();
    // Longest first, so "order id" wins over "id" and "卡号" over nothing.
    all.sort_by_key(|(k, _)| std::cmp::Reverse(k.chars().count()));
    let alts: Vec<String> = all
        .iter()
        .map(|(k, _)| {
            let body = regex::escape(k).replace(' ', r"\s+");
            let ascii = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
            format!(
                "{}{}{}",
                if ascii(k.chars().next()) {
                    r"(?-u:\b)"
                } else {
                    ""
                },
                body,
                if ascii(k.chars().last()) {
                    r"(?-u:\b)"
                } else {
                    ""
                }
            )
        })
        .collect();
    let re = Regex::new(&format!("(?i){}|#", alts.join("|"))).expect("keyword regex");
    let class = all.into_iter().map(|(k, c)| (k.to_string(), c)).collect();
    Keywords { re, class }
});

/// What the keyword stage found.
#[derive(Default)]
pub(crate) struct Found {
    pub personal: Vec<Candidate>,
    pub keep: Vec<Range<usize>>,
}

fn class_of(matched: &str) -> Class {
    if matched == "#" {
        return Class::Keep;
    }
    let key: String = matched
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    KEYWORDS.class.get(&key).copied().unwrap_or(Class::Keep)
}

/// Filler between a keyword and its value: spaces, colons, "是", "为",
/// "号码", "is", "no.", "number" and the like. Returns the value's start and
/// whether a colon, "=", "#" or "号" said plainly that a value follows.
fn skip_filler(text: &str, mut at: usize, end: usize) -> (usize, bool) {
    const WORDS: &[&str] = &[
        "is", "was", "no.", "no", "number", "num", "nr", "id", "#", "to", "改成", "换成", "改为",
        "写",
    ];
    let mut explicit = false;
    loop {
        let rest = &text[at..end];
        let Some(c) = rest.chars().next() else { break };
        if c == ' ' || c == '\t' {
            at += 1;
        } else if ":=#是为：号码碼號的.".contains(c) {
            at += c.len_utf8();
            explicit |= ":=#：号號".contains(c);
        } else if let Some(w) = WORDS.iter().find(|w| {
            rest.get(..w.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(w))
                && !rest[w.len()..].starts_with(|c: char| c.is_ascii_alphanumeric())
        }) {
            at += w.len();
        } else {
            break;
        }
    }
    (at, explicit)
}

/// Up to six Chinese characters between a keyword and a colon or "是" ("身份证
/// 号码我发你：…"); never across punctuation, digits or a masked value.
fn loose_gap(text: &str, at: usize, end: usize) -> Option<usize> {
    let rest = &text[at..end];
    for (n, (i, c)) in rest.char_indices().enumerate() {
        if (':' == c || '：' == c || '是' == c) && n > 0 {
            return Some(skip_filler(text, at + i, end).0);
        }
        if n >= 6 || !('\u{4E00}'..='\u{9FFF}').contains(&c) {
            return None;
        }
    }
    None
}

/// Runs every keyword over the folded text.
pub(crate) fn find(text: &str, chains: &[Chain]) -> Found {
    let mut out = Found::default();
    let mut hits: Vec<(Range<usize>, Class)> = Vec::new();
    for m in KEYWORDS.re.find_iter(text) {
        // "Tracking # 7489…": a `#` right after a keyword is its filler.
        let after_keyword = hits
            .last()
            .is_some_and(|(r, _)| text[r.end..m.start()].trim().is_empty());
        if m.as_str() == "#" && after_keyword {
            continue;
        }
        hits.push((m.range(), class_of(m.as_str())));
    }
    for (n, (range, class)) in hits.iter().enumerate() {
        let window_end = hits.get(n + 1).map_or(text.len(), |(r, _)| r.start);
        if *class == Class::Address {
            continue;
        }
        let is_hash = &text[range.clone()] == "#";
        let mut gap = false;
        let (mut at, explicit) = if is_hash {
            (range.end, true)
        } else {
            skip_filler(text, range.end, window_end)
        };
        let digit_kind = matches!(
            class,
            Class::Personal(Kind::Phone | Kind::BankCard | Kind::IdCard | Kind::Passport)
        );
        if at == range.end && !is_hash {
            // Nothing after the keyword but maybe a few words before a colon.
            if let Some(v) = loose_gap(text, at, window_end) {
                at = v;
                gap = true;
            }
        }
        if digit_kind
            && !text[at..window_end]
                .starts_with(|c: char| c.is_ascii_digit() || c == '+' || c == '(')
        {
            // "退款到农行卡吧 6228…": a few Chinese characters before the number.
            if let Some(v) = short_gap(text, at, window_end) {
                at = v;
                gap = true;
            }
        }
        if at >= window_end {
            continue;
        }
        // Right after its keyword a value is masked whatever it overlaps;
        // a few words further on it yields to order numbers like a shape.
        let basis = if gap { Basis::Shape } else { Basis::Keyword };
        match *class {
            Class::Address => {}
            Class::Keep => keep_values(text, chains, at, window_end, is_hash, &mut out.keep),
            Class::NameIntro | Class::NameCue => {
                let found = if *class == Class::NameCue {
                    // "my wife's name, Rebecca Stein": a comma may stand between.
                    let at = skip_filler(
                        text,
                        at + usize::from(text[at..].starts_with(',')),
                        window_end,
                    )
                    .0;
                    name::after_cue(text, at, window_end)
                } else {
                    name::after_intro(text, at, window_end)
                };
                if let Some(r) = found {
                    out.personal.push(Candidate {
                        kind: Kind::Name,
                        range: r,
                        basis,
                    });
                }
            }
            Class::Personal(kind) => {
                if kind == Kind::Name {
                    let end = floor_boundary(text, (at + 120).min(window_end));
                    out.personal
                        .extend(name::corrections(text, at, end).into_iter().map(|range| {
                            Candidate {
                                kind,
                                range,
                                basis: Basis::Shape,
                            }
                        }));
                }
                let value = personal_value(text, chains, kind, at, window_end, explicit);
                if value.is_none() && kind == Kind::Passport {
                    // "passport number for the import - it's 548203917".
                    let end = floor_boundary(text, (at + 80).min(window_end));
                    if let Some(range) = later_document(text, at, end) {
                        out.personal.push(Candidate {
                            kind,
                            range,
                            basis: Basis::Shape,
                        });
                    }
                }
                if let Some(r) = value {
                    if matches!(kind, Kind::IdCard | Kind::Passport) {
                        more_like(text, &r, window_end, &mut out.personal, kind);
                    }
                    out.personal.push(Candidate {
                        kind,
                        range: r,
                        basis,
                    });
                }
            }
        }
    }
    out
}

/// The largest char boundary of `text` at or below `at`.
fn floor_boundary(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// The first passport or travel-permit number further on in a passport
/// keyword's window, when the keyword is not right before it: up to two
/// capital letters then 7–10 digits (passports of most countries, mainland
/// and Taiwan travel permits), standing alone.
fn later_document(text: &str, at: usize, end: usize) -> Option<Range<usize>> {
    let mut from = at;
    while from < end {
        let s = from + text[from..end].find(|c: char| c.is_ascii_alphanumeric())?;
        let r = run(text, s, end, |c| c.is_ascii_alphanumeric());
        from = r.end;
        let v = &text[r.clone()];
        let letters = v.bytes().take_while(u8::is_ascii_uppercase).count();
        let digits = v.len() - letters;
        let shaped = letters <= 2
            && (7..=10).contains(&digits)
            && v.bytes().skip(letters).all(|b| b.is_ascii_digit());
        let alone = !text[..s].ends_with(|c: char| c.is_ascii_alphanumeric() || "*-_#".contains(c))
            && !text[r.end..].starts_with(|c: char| "*-_@".contains(c));
        if shaped && alone {
            return Some(r);
        }
    }
    None
}

/// Up to four Chinese characters or spaces, then a digit: "卡吧 6228…".
fn short_gap(text: &str, at: usize, end: usize) -> Option<usize> {
    let rest = &text[at..end];
    for (n, (i, c)) in rest.char_indices().enumerate() {
        if c.is_ascii_digit() || c == '+' {
            return (n > 0).then_some(at + i);
        }
        if n >= 4 || !(c == ' ' || ('\u{4E00}'..='\u{9FFF}').contains(&c)) {
            return None;
        }
    }
    None
}

/// More values like `first` later in the same keyword's window — a
/// correction or a second number ("passport GB 123456789? no wait it's
/// 925076473"): same length and digit count within two.
fn more_like(text: &str, first: &Range<usize>, end: usize, out: &mut Vec<Candidate>, kind: Kind) {
    let shape = |v: &str| {
        let alnum = v.chars().filter(char::is_ascii_alphanumeric).count();
        (alnum, v.bytes().filter(u8::is_ascii_digit).count())
    };
    let (len0, dig0) = shape(&text[first.clone()]);
    let mut at = first.end;
    while at < end {
        let Some(s) = text[at..end]
            .find(|c: char| c.is_ascii_alphanumeric())
            .map(|i| at + i)
        else {
            break;
        };
        let r = run(text, s, end, |c| c.is_ascii_alphanumeric());
        let (len, dig) = shape(&text[r.clone()]);
        let boundary = !text[..s].ends_with(|c: char| c.is_ascii_alphanumeric());
        if boundary
            && dig >= 6
            && len.abs_diff(len0) <= 2
            && dig.abs_diff(dig0) <= 2
            && !is_masked_edge(text, &r)
        {
            out.push(Candidate {
                kind,
                range: r.clone(),
                basis: Basis::Shape,
            });
        }
        at = r.end;
    }
}

fn is_masked_edge(text: &str, r: &Range<usize>) -> bool {
    text[..r.start].ends_with('*') || text[r.end..].starts_with('*')
}

/// The maximal run of `ok` characters from `at`, not past `end`.
fn run(text: &str, at: usize, end: usize, ok: impl Fn(char) -> bool) -> Range<usize> {
    let len = text[at..end].find(|c: char| !ok(c)).unwrap_or(end - at);
    at..at + len
}

fn code_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// An order/tracking/coupon reference and any more of the same shape listed
/// after it ("订单号 A123、A124 和 A125").
fn keep_values(
    text: &str,
    chains: &[Chain],
    at: usize,
    end: usize,
    hash: bool,
    keep: &mut Vec<Range<usize>>,
) {
    let mut r = run(text, at, end, code_char);
    while r.end > r.start && text[..r.end].ends_with(['-', '_']) {
        r.end -= 1;
    }
    // A reference written in short groups ("1Z 999 AA1 01 2345 6784",
    // "9400 1000 …"): upper-case letters and digits, joined by single spaces.
    if r.len() < 8 {
        loop {
            let rest = &text[r.end..end];
            if !rest.starts_with(' ') {
                break;
            }
            let next = run(text, r.end + 1, end, |c| {
                c.is_ascii_digit() || c.is_ascii_uppercase()
            });
            let after_ok = !text[next.end..end].starts_with(|c: char| c.is_ascii_lowercase());
            if next.is_empty() || !after_ok {
                break;
            }
            r.end = next.end;
        }
    }
    let value = &text[r.clone()];
    let digits = value.bytes().filter(u8::is_ascii_digit).count();
    // A word in lower case is the sentence going on ("invoice to sarah"),
    // not a code: codes hold a digit or are written in capitals.
    let word = digits == 0 && value.bytes().any(|b| b.is_ascii_lowercase());
    if value.len() < 3 || (hash && digits < 5) || word {
        return;
    }
    // An all-digit order number written in groups keeps all its groups.
    if let Some((c, k)) = chain_at(chains, r.start) {
        if c.groups[k].range == r {
            let last = c.groups[k..].iter().take_while(|g| g.live).last();
            if let Some(g) = last {
                r.end = r.end.max(g.range.end.min(end));
            }
        }
    }
    keep.push(r.clone());
    // A list of more values of the same shape.
    let shape = |v: &str| (v.len(), v.bytes().filter(u8::is_ascii_digit).count());
    let (len0, dig0) = shape(value);
    let mut from = r.end;
    loop {
        let rest = &text[from..end];
        let trimmed = rest.trim_start_matches([' ', ',', '、', '/', '&', '和', '及', '与']);
        let trimmed = trimmed
            .strip_prefix("and ")
            .unwrap_or(trimmed)
            .trim_start_matches(' ');
        if trimmed.len() == rest.len() {
            break;
        }
        let s = from + rest.len() - trimmed.len();
        let next = run(text, s, end, code_char);
        let (len, dig) = shape(&text[next.clone()]);
        if next.is_empty() || len.abs_diff(len0) > 2 || dig.abs_diff(dig0) > 2 || dig == 0 {
            break;
        }
        keep.push(next.clone());
        from = next.end;
    }
}

/// The personal value of `kind` starting at `at`, if any.
fn personal_value(
    text: &str,
    chains: &[Chain],
    kind: Kind,
    at: usize,
    end: usize,
    explicit: bool,
) -> Option<Range<usize>> {
    let first = text[at..end].chars().next()?;
    match kind {
        Kind::Phone | Kind::BankCard => {
            if !(first.is_ascii_digit() || first == '+' || first == '(') {
                return None;
            }
            let (c, k) = chain_at(chains, at)?;
            let bounds = if kind == Kind::Phone {
                (5, 15)
            } else {
                (8, 19)
            };
            keyword_value(text, c, k, kind, bounds)
        }
        Kind::IdCard | Kind::Passport => {
            let r = joined_token(text, at, end, if kind == Kind::IdCard { 18 } else { 12 })?;
            let v = &text[r.clone()];
            let digits = v.bytes().filter(u8::is_ascii_digit).count();
            (digits >= 4 && v.chars().filter(char::is_ascii_alphanumeric).count() >= 6).then_some(r)
        }
        Kind::Account => {
            let r = run(text, at, end, |c| {
                c.is_ascii_alphanumeric() || "_-.@+".contains(c)
            });
            let mut r = r;
            while r.end > r.start && text[..r.end].ends_with(['.', '-']) {
                r.end -= 1;
            }
            let v = &text[r.clone()];
            let marked = v.bytes().any(|b| b.is_ascii_digit() || b"_-@".contains(&b));
            let ok = v.len() >= 5
                && v.starts_with(|c: char| c.is_ascii_alphanumeric())
                && (marked || explicit)
                && !is_masked_edge(text, &r);
            ok.then_some(r)
        }
        Kind::Name => name::after_keyword(text, at, end),
        Kind::Email | Kind::Address => None,
    }
}

/// An identity token: one alphanumeric run (whatever its length), then more
/// runs across single spaces or dashes while they hold digits and the total
/// stays within `max` characters ("110105 19491231 002X").
fn joined_token(text: &str, at: usize, end: usize, max: usize) -> Option<Range<usize>> {
    let alnum = |c: char| c.is_ascii_alphanumeric();
    let mut r = run(text, at, end, alnum);
    if r.is_empty() || is_masked_edge(text, &r) {
        return None;
    }
    let mut total = r.len();
    loop {
        let rest = &text[r.end..end];
        let Some(sep) = rest.chars().next().filter(|c| *c == ' ' || *c == '-') else {
            break;
        };
        let next = run(text, r.end + sep.len_utf8(), end, alnum);
        let piece = &text[next.clone()];
        if next.is_empty()
            || total + piece.len() > max
            || !piece.bytes().any(|b| b.is_ascii_digit())
            || is_masked_edge(text, &next)
        {
            break;
        }
        total += piece.len();
        r.end = next.end;
    }
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::chain::chains;

    fn personal(text: &str) -> Vec<(Kind, &str)> {
        find(text, &chains(text))
            .personal
            .into_iter()
            .map(|c| (c.kind, &text[c.range]))
            .collect()
    }

    fn keep(text: &str) -> Vec<&str> {
        find(text, &chains(text))
            .keep
            .into_iter()
            .map(|r| &text[r])
            .collect()
    }

    #[test]
    fn personal_keywords_name_their_values() {
        assert_eq!(
            personal("身份证110105194912310021"),
            vec![(Kind::IdCard, "110105194912310021")]
        );
        assert_eq!(
            personal("卡号 6222 0212 3456 7890 123"),
            vec![(Kind::BankCard, "6222 0212 3456 7890 123")]
        );
        assert_eq!(
            personal("微信号 wxid_abc123456"),
            vec![(Kind::Account, "wxid_abc123456")]
        );
        assert_eq!(
            personal("护照 E12345678"),
            vec![(Kind::Passport, "E12345678")]
        );
        assert_eq!(
            personal("我电话 010-12345678"),
            vec![(Kind::Phone, "010-12345678")]
        );
        assert_eq!(
            personal("身份证号码我发你:110105194912310021"),
            vec![(Kind::IdCard, "110105194912310021")]
        );
        assert_eq!(
            personal("身份证11010519491231002X6666666666666"),
            vec![(Kind::IdCard, "11010519491231002X6666666666666")]
        );
        assert_eq!(personal("WeChat pay please"), vec![]);
        assert_eq!(personal("my phone 13 pro max"), vec![]);
        assert_eq!(personal("电话 138****5678"), vec![]);
    }

    #[test]
    fn later_documents_cues_and_new_name_keywords() {
        assert_eq!(
            personal("my passport? sure - it's K12345678"),
            vec![(Kind::Passport, "K12345678")]
        );
        assert_eq!(
            personal("回乡证办好了，新的是 H20481234"),
            vec![(Kind::Passport, "H20481234")]
        );
        assert_eq!(personal("passport photo was 2 MB"), vec![]);
        assert_eq!(personal("全名是司马文静，"), vec![(Kind::Name, "司马文静")]);
        assert_eq!(
            personal("my neighbor Tom Wells will sign"),
            vec![(Kind::Name, "Tom Wells")]
        );
        assert_eq!(personal("我姐姐邓晓雯会去拿"), vec![(Kind::Name, "邓晓雯")]);
        assert_eq!(personal("my friend is waiting"), vec![]);
        assert_eq!(
            personal("name as on passport LI XIAOMING"),
            vec![(Kind::Name, "LI XIAOMING")]
        );
        assert_eq!(
            keep("tax ID 92440300MA5F0XYZ1K"),
            vec!["92440300MA5F0XYZ1K"]
        );
        assert_eq!(personal("tax ID 92440300MA5F0XYZ1K"), vec![]);
    }

    #[test]
    fn order_keywords_keep_their_values() {
        assert_eq!(keep("订单号：4111111111111111"), vec!["4111111111111111"]);
        assert_eq!(keep("order #A10293?"), vec!["A10293"]);
        assert_eq!(
            keep("订单号 A123456、A123457 和 A123458"),
            vec!["A123456", "A123457", "A123458"]
        );
        assert_eq!(keep("订单 2601 0112 3456 到了吗"), vec!["2601 0112 3456"]);
        assert_eq!(keep("#04-56"), Vec::<&str>::new());
        assert_eq!(keep("gift card 8899 6677 5544"), vec!["8899 6677 5544"]);
        assert_eq!(keep("coupon WELCOME off"), vec!["WELCOME"]);
        assert_eq!(keep("send the invoice to tom please"), Vec::<&str>::new());
    }

    #[test]
    fn nearest_keyword_wins() {
        let text = "订单号是多少?我电话13812345678";
        assert_eq!(personal(text), vec![(Kind::Phone, "13812345678")]);
        assert!(keep(text).is_empty());
    }
}
