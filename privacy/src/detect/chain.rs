//! Number chains: digit groups joined by single separators ("+44 20 7946
//! 0958", "(010)1234-5678", "6222 0212 3456 7890 123"), and which parts of a
//! chain are phones or bank cards.
//!
//! A group is a maximal run of digits and `*`; one holding a `*` is *dead*
//! (already masked, or starred by the shopper) and is never part of a match.
//! Matching goes left to right, at each live group trying the longest run of
//! live groups first, so a card followed by its expiry ("4111 1111 1111 1111
//! 12/26") or two phones in a row are told apart. Rules that read only the
//! groups they cover make the result idempotent: masking turns matched
//! groups dead, which can only remove matches from a later pass.
//! The weaker shapes (a 4-4 group pair, 3-3-4, trunk-0 national numbers,
//! `+` numbers) also refuse a neighbouring dead group and letters glued to
//! the chain ("SKU-2024-8888"), since product codes look like that.

use std::ops::Range;

use super::phone_cc::country_code;
use crate::checks::{date_or_time_like, luhn_ok, year_like};
use crate::span::Kind;

/// One run of digits (and `*`), as a byte range of the folded text.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub range: Range<usize>,
    /// No `*` in it.
    pub live: bool,
}

/// Groups joined by separators; `lead` is where the chain's prefix starts
/// (a `+`, `(` or `(+` right before the first group) or the first group.
#[derive(Debug, Clone)]
pub(crate) struct Chain {
    pub groups: Vec<Group>,
    pub plus: bool,
    pub lead: usize,
}

/// A personal value found in a chain: kind, byte range.
pub(crate) type Found = (Kind, Range<usize>);

fn is_group_byte(b: u8) -> bool {
    b.is_ascii_digit() || b == b'*'
}

/// A separator joining two groups: one to three of ` `, `-`, `.`, `(`, `)`,
/// each at most once (so "12.50" and "(010)1234" join, "1  2" does not).
fn joins(sep: &[u8]) -> bool {
    if sep.is_empty() || sep.len() > 3 {
        return false;
    }
    let mut seen = [false; 5];
    for &b in sep {
        let i = match b {
            b' ' => 0,
            b'-' => 1,
            b'.' => 2,
            b'(' => 3,
            b')' => 4,
            _ => return false,
        };
        if seen[i] {
            return false;
        }
        seen[i] = true;
    }
    true
}

/// Every chain of the folded text, in order.
pub(crate) fn chains(text: &str) -> Vec<Chain> {
    let b = text.as_bytes();
    let mut groups: Vec<Group> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if is_group_byte(b[i]) {
            let start = i;
            while i < b.len() && is_group_byte(b[i]) {
                i += 1;
            }
            let live = !b[start..i].contains(&b'*');
            groups.push(Group {
                range: start..i,
                live,
            });
        } else {
            i += 1;
        }
    }
    let mut out: Vec<Chain> = Vec::new();
    for mut g in groups {
        if let Some(last) = out.last_mut() {
            let prev = last.groups.last().map_or(0..0, |p| p.range.clone());
            if joins(&b[prev.end..g.range.start]) {
                // The clear tail of a masked value ("**** 1234", "+** ****
                // 0958") belongs to it: dead too.
                if b[prev].contains(&b'*') && g.range.len() <= 4 {
                    g.live = false;
                }
                last.groups.push(g);
                continue;
            }
        }
        let (plus, lead) = prefix(b, g.range.start);
        out.push(Chain {
            groups: vec![g],
            plus,
            lead,
        });
    }
    out
}

/// A `+`, `(+`, `+(`, `+ ` or `(` right before `at`.
fn prefix(b: &[u8], at: usize) -> (bool, usize) {
    let back = |n: usize| at.checked_sub(n).map(|i| b[i]);
    match (back(2), back(1)) {
        (Some(b'('), Some(b'+')) | (Some(b'+'), Some(b'(')) | (Some(b'+'), Some(b' ')) => {
            (true, at - 2)
        }
        (_, Some(b'+')) => (true, at - 1),
        (_, Some(b'(')) => (false, at - 1),
        _ => (false, at),
    }
}

/// Digits and group lengths of groups `i..j` of a chain.
struct Sub {
    digits: Vec<u8>,
    lens: Vec<usize>,
    seps_plain: bool,
}

fn sub(text: &[u8], c: &Chain, i: usize, j: usize) -> Sub {
    let mut digits = Vec::new();
    let mut lens = Vec::new();
    let mut seps_plain = true;
    for (k, g) in c.groups[i..j].iter().enumerate() {
        digits.extend_from_slice(&text[g.range.clone()]);
        lens.push(g.range.len());
        if k > 0 {
            let sep = &text[c.groups[i + k - 1].range.end..g.range.start];
            seps_plain &= sep == b" " || sep == b"-";
        }
    }
    Sub {
        digits,
        lens,
        seps_plain,
    }
}

/// 11 digits starting 1[3-9], in at most three groups.
fn mobile(s: &Sub) -> bool {
    let d = &s.digits;
    let core = if d.len() == 13 && d.starts_with(b"86") && s.lens[0] == 2 {
        &d[2..]
    } else if d.len() == 15 && d.starts_with(b"0086") && s.lens[0] == 4 {
        &d[4..]
    } else {
        &d[..]
    };
    core.len() == 11 && core[0] == b'1' && (b'3'..=b'9').contains(&core[1]) && s.lens.len() <= 4
}

/// 13–19 digits passing Luhn (spaces or dashes only), or grouped the way
/// cards are printed (4-4-4-4, 4-4-4-4-3, 4-6-5, 4-6-4) whatever the check
/// says.
fn card(s: &Sub) -> bool {
    let n = s.digits.len();
    if !(13..=19).contains(&n) || !s.seps_plain {
        return false;
    }
    if luhn_ok(&s.digits) {
        return true;
    }
    matches!(
        s.lens.as_slice(),
        [4, 4, 4, 4] | [4, 4, 4, 4, 3] | [4, 6, 5] | [4, 6, 4]
    )
}

/// `+` (or `00`) and a country code, 7–15 digits in all, stopping at the
/// code's longest national number when the chain runs on.
fn international(s: &Sub, plus: bool) -> bool {
    let mut d: &[u8] = &s.digits;
    if !plus {
        if !(d.starts_with(b"00") && d.len() > 2 && d[2] != b'0') {
            return false;
        }
        d = &d[2..];
    }
    // A bracketed trunk zero after the code ("+44 (0)20 …") is not dialled.
    let trunk = usize::from(s.lens.len() > 2 && s.lens[1] == 1 && s.digits[s.lens[0]] == b'0');
    let total = d.len() - trunk;
    if !(7..=15).contains(&total) {
        return false;
    }
    match country_code(d) {
        Some((cc, _, hi)) => total - cc <= usize::from(hi),
        None => true,
    }
}

/// Trunk-0 national numbers: mainland landlines with area codes
/// ("010-12345678", "(0755)8888 9999"), UK, Australian, Taiwanese numbers
/// ("020 7946 0958", "0412 345 678", "0912-345-678"): 9–12 digits, grouped
/// with a 2–5 digit first group, or 10–12 digits in one.
fn trunk_zero(s: &Sub) -> bool {
    let d = &s.digits;
    d.len() >= 9
        && d.len() <= 12
        && d[0] == b'0'
        && d[1] != b'0'
        && if s.lens.len() == 1 {
            d.len() >= 10
        } else {
            (2..=5).contains(&s.lens[0])
        }
}

/// North American 3-3-4 (optionally after a 1). Toll-free and service
/// numbers — mainland 400/800, North American 800/833/844/855/866/877/888 —
/// belong to businesses (a shop's hotline), not shoppers: not phones by
/// shape; after a phone keyword they are masked all the same.
fn nanp(s: &Sub) -> bool {
    let d = &s.digits;
    match s.lens.as_slice() {
        [3, 3, 4] => d[0] >= b'2' && !service_number(&d[..3]),
        [1, 3, 3, 4] => d[0] == b'1' && d[1] >= b'2' && !service_number(&d[1..4]),
        _ => false,
    }
}

/// A toll-free or mainland service prefix.
fn service_number(prefix: &[u8]) -> bool {
    matches!(
        prefix,
        b"400" | b"800" | b"833" | b"844" | b"855" | b"866" | b"877" | b"888"
    )
}

/// Hong Kong, Macao and Singapore 8-digit numbers written 4-4, unless the
/// pair reads as years, a date or opening hours ("2019-2020", "0900-1800").
fn four_four(s: &Sub) -> bool {
    let (a, b) = s.digits.split_at(4.min(s.digits.len()));
    s.lens == [4, 4]
        && s.seps_plain
        && a[0] >= b'2'
        && !(year_like(a) && (year_like(b) || date_or_time_like(b)))
        && !(date_or_time_like(a) && date_or_time_like(b))
}

/// Whether groups `i..j` touch a dead group (one masked already) at either
/// end. Masking can split a run into a dead part and a clear tail ("****
/// 1111"), so a match touching a dead group may only be a single group of
/// the strong shapes (checked by the caller), never several.
fn touches_dead(c: &Chain, i: usize, j: usize) -> bool {
    let dead = |k: usize| c.groups.get(k).is_some_and(|g| !g.live);
    (i > 0 && dead(i - 1)) || dead(j)
}

/// Whether the chain is glued to letters at group `i`'s left (when `i`
/// starts the chain) or group `j - 1`'s right ("SKU-2024-8888").
/// A placeholder's bracket counts as a letter: "[address hidden](415) …"
/// must read as "…NW1 6XE(415) …" did before masking.
fn glued(text: &[u8], c: &Chain, i: usize, j: usize) -> bool {
    let letter = |b: u8| b.is_ascii_alphabetic() || b"_[]".contains(&b);
    if i == 0 {
        let start = c.lead;
        let before = &text[..start];
        let mut it = before.iter().rev();
        match (it.next(), it.next()) {
            (Some(&x), _) if letter(x) || x.is_ascii_digit() => return true,
            (Some(b'-' | b'.' | b'/'), Some(&y)) if letter(y) => return true,
            _ => {}
        }
    }
    if j == c.groups.len() {
        let after = &text[c.groups[j - 1].range.end..];
        let mut it = after.iter();
        match (it.next(), it.next()) {
            (Some(&x), _) if letter(x) => return true,
            (Some(b'-' | b'.' | b'/'), Some(&y)) if letter(y) => return true,
            _ => {}
        }
    }
    false
}

/// The kind of groups `i..j` by shape alone, if any.
fn classify(text: &[u8], c: &Chain, i: usize, j: usize, loose: bool) -> Option<Kind> {
    let s = sub(text, c, i, j);
    let plus = i == 0 && c.plus;
    if plus && international(&s, true) {
        return Some(Kind::Phone);
    }
    if touches_dead(c, i, j) {
        // Only a whole run of a strong shape: 11-digit mobile, Luhn card.
        let d = &s.digits;
        return if j - i > 1 {
            None
        } else if d.len() == 11 && d[0] == b'1' && (b'3'..=b'9').contains(&d[1]) {
            Some(Kind::Phone)
        } else {
            ((13..=19).contains(&d.len()) && luhn_ok(d)).then_some(Kind::BankCard)
        };
    }
    if plus {
        // After a `+` that is no phone, only a card run is still masked.
        return (j - i == 1 && card(&s)).then_some(Kind::BankCard);
    }
    if mobile(&s) {
        return Some(Kind::Phone);
    }
    if card(&s) {
        return Some(Kind::BankCard);
    }
    if !loose && glued(text, c, i, j) {
        return None;
    }
    if international(&s, false) || trunk_zero(&s) || nanp(&s) || four_four(&s) {
        return Some(Kind::Phone);
    }
    None
}

/// The byte range to mask for groups `i..j`: the prefix (`+`, `(`) when the
/// match starts the chain, a closing `)` right after, a dash extension
/// ("-801" after a 7+ digit group) or a word one ("转8001", "ext. 12").
fn extent(text: &str, c: &Chain, i: usize, j: usize, kind_is_phone: bool) -> (Range<usize>, usize) {
    let b = text.as_bytes();
    let start = if i == 0 {
        c.lead
    } else {
        c.groups[i].range.start
    };
    let mut j = j;
    if let Some(next) = c.groups.get(j) {
        let sep = &b[c.groups[j - 1].range.end..next.range.start];
        if sep == b"-" && next.live && next.range.len() <= 5 && c.groups[j - 1].range.len() >= 7 {
            j += 1;
        }
    }
    let mut end = c.groups[j - 1].range.end;
    if b.get(end) == Some(&b')') && b[start] == b'(' {
        end += 1;
    }
    let end = if kind_is_phone {
        word_extension(text, end)
    } else {
        end
    };
    (start..end, j)
}

/// End of a word-marked extension right after `end`, or `end`.
pub(crate) fn word_extension(text: &str, end: usize) -> usize {
    let rest = &text[end..];
    let trimmed = rest.trim_start_matches(' ');
    let lower = trimmed
        .get(..10.min(trimmed.len()))
        .map(str::to_ascii_lowercase);
    let Some(lower) = lower.or_else(|| Some(trimmed.to_ascii_lowercase())) else {
        return end;
    };
    let marker = ["extension", "ext.", "ext", "分机", "转", "x"]
        .into_iter()
        .find(|m| lower.starts_with(m));
    let Some(marker) = marker else {
        return end;
    };
    let after = &trimmed[marker.len()..];
    let digits_at = after.len() - after.trim_start_matches([' ', ':', '.']).len();
    let digits = after[digits_at..]
        .bytes()
        .take_while(u8::is_ascii_digit)
        .count();
    let next = after[digits_at + digits..].bytes().next();
    if (1..=6).contains(&digits) && !next.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'*') {
        end + (rest.len() - after.len()) + digits_at + digits
    } else {
        end
    }
}

/// Phones and cards found by shape in every chain, plus mainland mobiles and
/// Luhn-valid card runs inside dead groups ("**13812345678**").
pub(crate) fn find_shapes(text: &str, chains: &[Chain]) -> Vec<Found> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    for c in chains {
        let mut i = 0;
        while i < c.groups.len() {
            if !c.groups[i].live {
                rescue_runs(b, &c.groups[i].range, &mut out);
                i += 1;
                continue;
            }
            let live_end = (i..c.groups.len())
                .find(|&k| !c.groups[k].live)
                .unwrap_or(c.groups.len());
            let hit = (i + 1..=live_end)
                .rev()
                .find_map(|j| classify(b, c, i, j, false).map(|k| (k, j)));
            match hit {
                Some((kind, j)) => {
                    let (range, j) = extent(text, c, i, j, kind == Kind::Phone);
                    out.push((kind, range));
                    i = j;
                }
                None => i += 1,
            }
        }
    }
    out
}

fn rescue_runs(b: &[u8], range: &Range<usize>, out: &mut Vec<Found>) {
    let mut k = range.start;
    while k < range.end {
        if !b[k].is_ascii_digit() {
            k += 1;
            continue;
        }
        let s = k;
        while k < range.end && b[k].is_ascii_digit() {
            k += 1;
        }
        let run = &b[s..k];
        if run.len() == 11 && run[0] == b'1' && (b'3'..=b'9').contains(&run[1]) {
            out.push((Kind::Phone, s..k));
        } else if (13..=19).contains(&run.len()) && luhn_ok(run) {
            out.push((Kind::BankCard, s..k));
        }
    }
}

/// The chain whose first live group starts at or right after `at` (a
/// keyword's value), with the index of that group.
pub(crate) fn chain_at(chains: &[Chain], at: usize) -> Option<(&Chain, usize)> {
    let idx = chains.partition_point(|c| c.groups.last().is_some_and(|g| g.range.end <= at));
    let c = chains.get(idx)?;
    let k = c.groups.iter().position(|g| g.range.end > at)?;
    let g = &c.groups[k];
    let lead = if k == 0 { c.lead } else { g.range.start };
    (g.live && (lead == at || g.range.start == at)).then_some((c, k))
}

/// A value after a phone or card keyword: the longest shape match from the
/// chain's group `k` if there is one, else the live groups from `k` up to
/// `max_digits` digits (at least `min_digits`). Named values are masked
/// whatever their shape.
pub(crate) fn keyword_value(
    text: &str,
    c: &Chain,
    k: usize,
    want: Kind,
    (min_digits, max_digits): (usize, usize),
) -> Option<Range<usize>> {
    let b = text.as_bytes();
    let live_end = (k..c.groups.len())
        .find(|&x| !c.groups[x].live)
        .unwrap_or(c.groups.len());
    let shaped = (k + 1..=live_end)
        .rev()
        .find(|&j| classify(b, c, k, j, true) == Some(want));
    if let Some(j) = shaped {
        return Some(extent(text, c, k, j, want == Kind::Phone).0);
    }
    let mut digits = 0;
    let mut j = k;
    while j < live_end && digits + c.groups[j].range.len() <= max_digits {
        digits += c.groups[j].range.len();
        j += 1;
    }
    if j == k && k < live_end {
        // One long run: it is still the value.
        digits = c.groups[k].range.len();
        j = k + 1;
    }
    (digits >= min_digits).then(|| extent(text, c, k, j, want == Kind::Phone).0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<(Kind, &str)> {
        find_shapes(text, &chains(text))
            .into_iter()
            .map(|(k, r)| (k, &text[r]))
            .collect()
    }

    #[test]
    fn phones_in_many_formats() {
        for (text, want) in [
            ("call me on +44 20 7946 0958", "+44 20 7946 0958"),
            ("我电话 010-12345678", "010-12345678"),
            ("+852 9123 4567", "+852 9123 4567"),
            ("+853 6612 3456", "+853 6612 3456"),
            ("+886 912 345 678", "+886 912 345 678"),
            ("+65 9123 4567", "+65 9123 4567"),
            ("+1 (415) 555-2671", "+1 (415) 555-2671"),
            ("(415) 555-2671", "(415) 555-2671"),
            ("+8613812345678", "+8613812345678"),
            ("0755-88889999-801 找我", "0755-88889999-801"),
            ("010-12345678转8001", "010-12345678转8001"),
            ("tel 9123 4567", "9123 4567"),
            ("0044 20 7946 0958", "0044 20 7946 0958"),
            ("(+86)138 1234 5678", "(+86)138 1234 5678"),
            ("+44 (0)20 7946 0958", "+44 (0)20 7946 0958"),
            ("07700 900123", "07700 900123"),
            ("1-212-555-0199", "1-212-555-0199"),
        ] {
            assert_eq!(found(text), vec![(Kind::Phone, want)], "{text}");
        }
        assert_eq!(
            found("+44 20 7946 0958 2 pcs"),
            vec![(Kind::Phone, "+44 20 7946 0958")]
        );
    }

    #[test]
    fn cards_and_neighbours() {
        assert_eq!(
            found("4111 1111 1111 1111 12/26"),
            vec![(Kind::BankCard, "4111 1111 1111 1111")]
        );
        assert_eq!(
            found("13812345678 4111111111111111"),
            vec![
                (Kind::Phone, "13812345678"),
                (Kind::BankCard, "4111111111111111")
            ]
        );
        assert_eq!(
            found("x**13812345678**"),
            vec![(Kind::Phone, "13812345678")]
        );
    }

    #[test]
    fn dates_prices_codes_stay() {
        for text in [
            "2024-03-15 到货",
            "2019-2020 款",
            "营业时间 0900-1800",
            "¥1299.00",
            "SKU-2024-8888",
            "身高170 体重65",
            "20240315",
            "**** 5678 9123",
            "客服热线 400-615-9388",
            "toll-free 866-555-0142 or (877) 555-0100",
            "***-****5678 1234",
        ] {
            assert_eq!(found(text), vec![], "{text}");
        }
    }
}
