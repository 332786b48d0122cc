//! Candidate spans and how overlaps between them are settled.
//!
//! Detectors only propose: a personal span (what it is, where, and whether a
//! keyword named it) or a keep span (a value agents need readable). This
//! module decides, once, over spans found in the original text:
//! 1. a personal span named by a keyword ("身份证", "card", "电话") is masked
//!    whatever it overlaps;
//! 2. otherwise keep spans (storefront orders, values after an order or
//!    tracking keyword, tracking-number shapes) win: a digit-shaped personal
//!    span touching one is dropped, a text span (address, name) loses only
//!    the overlapping part;
//! 3. overlapping personal spans are merged into one, so a value is masked
//!    whole or not at all — never half.

use std::ops::Range;

/// What a masked span held. Public so callers (and the corpus test) can count
/// what was found per kind without parsing the masked text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A phone number, mainland mobile or landline, international or national, with extension.
    Phone,
    /// An e-mail address.
    Email,
    /// A mainland resident ID number (15 or 18 characters) or a value after an ID keyword.
    IdCard,
    /// A bank card number.
    BankCard,
    /// A passport or Hong Kong/Macao/Taiwan travel-permit number after its keyword.
    Passport,
    /// A WeChat, QQ, Alipay or similar account id after its keyword.
    Account,
    /// A street address, Chinese or English, or a postcode.
    Address,
    /// A person's name after "收件人", "联系人", "my name is" and the like.
    Name,
}

impl Kind {
    /// Merge precedence when two different kinds overlap: the surviving
    /// span takes the kind that reveals least once rendered.
    fn rank(self) -> u8 {
        match self {
            Kind::Address => 7,
            Kind::Name => 6,
            Kind::IdCard => 5,
            Kind::BankCard => 4,
            Kind::Passport => 3,
            Kind::Email => 2,
            Kind::Phone => 1,
            Kind::Account => 0,
        }
    }

    /// Digit-shaped kinds are dropped whole when a keep span touches them;
    /// text kinds (addresses, names) are trimmed instead.
    fn is_text(self) -> bool {
        matches!(self, Kind::Address | Kind::Name)
    }
}

/// Whether a personal span was named by a keyword or only has the shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Basis {
    /// Right after a personal keyword: masked whatever it overlaps.
    Keyword,
    /// Shape only: yields to keep spans.
    Shape,
}

/// A personal value proposed by a detector (byte range in the folded text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub kind: Kind,
    pub range: Range<usize>,
    pub basis: Basis,
}

/// Settles overlaps (module docs) and returns disjoint spans sorted by start.
pub(crate) fn resolve(
    mut personal: Vec<Candidate>,
    keep: &[Range<usize>],
) -> Vec<(Kind, Range<usize>)> {
    let overlaps = |a: &Range<usize>, b: &Range<usize>| a.start < b.end && b.start < a.end;
    // A keep span cut by a keyword-named value protects nothing: once that
    // value is masked, its remains would no longer follow their keyword.
    let keep: Vec<&Range<usize>> = keep
        .iter()
        .filter(|k| {
            !personal
                .iter()
                .any(|c| c.basis == Basis::Keyword && overlaps(k, &c.range))
        })
        .collect();
    let mut kept: Vec<Candidate> = Vec::with_capacity(personal.len());
    for c in personal.drain(..) {
        if c.basis == Basis::Keyword || !keep.iter().any(|k| overlaps(k, &c.range)) {
            kept.push(c);
            continue;
        }
        if !c.kind.is_text() {
            continue;
        }
        // Trim a text span around the keep spans inside it; keep the pieces.
        let mut pieces = vec![c.range.clone()];
        for k in keep.iter().filter(|k| overlaps(k, &c.range)) {
            pieces = pieces
                .into_iter()
                .flat_map(|p| [p.start..p.end.min(k.start), p.start.max(k.end)..p.end])
                .filter(|p| p.start < p.end)
                .collect();
        }
        kept.extend(
            pieces
                .into_iter()
                .map(|range| Candidate { range, ..c.clone() }),
        );
    }
    kept.sort_by_key(|c| (c.range.start, std::cmp::Reverse(c.range.end)));
    let mut out: Vec<(Kind, Range<usize>, usize)> = Vec::with_capacity(kept.len());
    for c in kept {
        let len = c.range.len();
        match out.last_mut() {
            Some((kind, range, best)) if c.range.start < range.end => {
                if len > *best || (len == *best && c.kind.rank() > kind.rank()) {
                    *kind = c.kind;
                    *best = len;
                }
                range.end = range.end.max(c.range.end);
            }
            _ => out.push((c.kind, c.range, len)),
        }
    }
    out.into_iter().map(|(k, r, _)| (k, r)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(kind: Kind, range: Range<usize>, basis: Basis) -> Candidate {
        Candidate { kind, range, basis }
    }

    #[test]
    fn keep_beats_shape_but_not_keyword() {
        let spans = resolve(
            vec![
                cand(Kind::BankCard, 0..16, Basis::Shape),
                cand(Kind::Phone, 20..31, Basis::Keyword),
            ],
            &[0..16, 20..31],
        );
        assert_eq!(spans, vec![(Kind::Phone, 20..31)]);
    }

    #[test]
    fn overlapping_spans_merge_into_the_longer_kind() {
        let spans = resolve(
            vec![
                cand(Kind::IdCard, 0..18, Basis::Shape),
                cand(Kind::BankCard, 0..17, Basis::Shape),
                cand(Kind::BankCard, 17..31, Basis::Shape),
            ],
            &[],
        );
        assert_eq!(spans, vec![(Kind::IdCard, 0..31)]);
    }

    #[test]
    fn text_spans_are_trimmed_around_keep_spans() {
        let keep = std::slice::from_ref(&(5..10));
        let spans = resolve(vec![cand(Kind::Address, 0..20, Basis::Shape)], keep);
        assert_eq!(spans, vec![(Kind::Address, 0..5), (Kind::Address, 10..20)]);
    }
}
