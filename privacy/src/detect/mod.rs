//! Detectors: each proposes spans over the folded text, none masks. The
//! whole text is read once by each, and the proposals are settled together
//! in [`crate::span::resolve`].

mod address_en;
mod address_zh;
pub(crate) mod chain;
mod email;
mod ident;
pub(crate) mod keyword;
pub(crate) mod keyword_lists;
mod name;
mod phone_cc;

use std::ops::Range;

use crate::span::{Basis, Candidate, Kind};

/// Whether `at` follows a masked value: a `*`, a `*` and one space (as in
/// "**** 1234"), or a placeholder's `]`. Shape detectors that work on words and numbers refuse such
/// starts, since masking made them: "12345678221B Baker St" holds no house
/// number, its masked "**** 8221B Baker St" must not grow one.
pub(crate) fn after_mask(text: &str, at: usize) -> bool {
    let before = &text[..at];
    before.ends_with(['*', ']']) || before.ends_with("* ")
}

/// Everything proposed for one text.
pub(crate) struct Proposals {
    pub personal: Vec<Candidate>,
    pub keep: Vec<Range<usize>>,
}

/// Runs every detector over `text` (folded) with the storefront's order and
/// tracking numbers `known`.
pub(crate) fn propose(text: &str, known: &[&str]) -> Proposals {
    let chains = chain::chains(text);
    let kw = keyword::find(text, &chains);
    let mut personal = kw.personal;
    let mut keep = kw.keep;
    let shape = |kind: Kind| {
        move |range: Range<usize>| Candidate {
            kind,
            range,
            basis: Basis::Shape,
        }
    };
    personal.extend(
        chain::find_shapes(text, &chains)
            .into_iter()
            .map(|(kind, range)| Candidate {
                kind,
                range,
                basis: Basis::Shape,
            }),
    );
    personal.extend(
        ident::resident_ids(text)
            .into_iter()
            .map(shape(Kind::IdCard)),
    );
    personal.extend(
        ident::wechat_ids(text)
            .into_iter()
            .map(shape(Kind::Account)),
    );
    personal.extend(email::find(text).into_iter().map(shape(Kind::Email)));
    personal.extend(
        email::find_spelled(text)
            .into_iter()
            .map(shape(Kind::Email)),
    );
    personal.extend(address_zh::find(text).into_iter().map(shape(Kind::Address)));
    personal.extend(address_en::find(text).into_iter().map(shape(Kind::Address)));
    let values: Vec<Range<usize>> = personal
        .iter()
        .filter(|c| c.kind != Kind::Name)
        .map(|c| c.range.clone())
        .collect();
    personal.extend(
        name::beside_values(text, &values)
            .into_iter()
            .map(shape(Kind::Name)),
    );
    personal.extend(name::sign_offs(text).into_iter().map(shape(Kind::Name)));
    keep.extend(ident::tracking_numbers(text));
    keep.extend(known_refs(text, known));
    Proposals { personal, keep }
}

/// Every standalone occurrence of a storefront order or tracking number
/// (not inside a longer run of letters and digits).
fn known_refs(text: &str, known: &[&str]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    for k in known.iter().map(|k| k.trim()).filter(|k| k.len() >= 3) {
        let folded = crate::norm::Folded::new(k);
        let k: &str = &folded.text;
        for (at, _) in text.match_indices(k) {
            let end = at + k.len();
            let edge = |c: Option<char>, inner: Option<char>| {
                let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
                !(alnum(c) && alnum(inner))
            };
            if edge(text[..at].chars().next_back(), k.chars().next())
                && edge(text[end..].chars().next(), k.chars().next_back())
            {
                out.push(at..end);
            }
        }
    }
    out
}
