//! Masking of shoppers' personal data before anything is stored, logged or
//! shown to an agent.
//!
//! Shop service teams' rule is "mask, then keep": phone numbers, e-mail
//! addresses, resident ID, bank card, passport and travel-permit numbers,
//! WeChat/QQ/Alipay accounts, street addresses and names are replaced before
//! a transcript reaches the database, a log line or an agent's screen.
//! Order and tracking numbers, prices, sizes, dates and coupon codes stay
//! readable, because agents need them and they identify a purchase, not a
//! person. docs/privacy.md lists every form and rule.
//!
//! Design: every detector reads the original text once (full-width
//! characters folded to ASCII for detection only) and proposes spans; the
//! spans are settled together (keyword-named personal values beat order
//! numbers, which beat shape-only matches; overlaps merge) and rendered in
//! one pass, so a value is masked whole or not at all. Masked forms never
//! match a detector, but hiding a value changes its neighbours' context (a
//! masked address leaves the name before it standing alone; a keyword
//! swallowed into a masked name no longer shields the number after it), so
//! the output is read once more and masked again while that finds
//! something, at most [`MAX_PASSES`] times. Text without personal data costs
//! one pass; the cost is measured by `benches/mask.rs`. The fuzz target and
//! property tests hold masking idempotent.
//!
//! Modules, one job each: `norm` (half-width folding), `detect` (the
//! detectors), `span` (settling overlaps), `render` (masked forms),
//! `checks` (Luhn, ID checksum and dates).

mod checks;
mod detect;
#[cfg(any(test, feature = "invariants"))]
pub mod invariants;
mod norm;
mod render;
mod span;

use std::ops::Range;

pub use render::{ADDRESS_EN, ADDRESS_ZH, NAME_EN, NAME_ZH};
pub use span::Kind;

/// Returns `text` with personal data replaced by masked forms that keep just
/// enough (last four digits, first letter of an e-mail) for an agent to match
/// what the shopper says without exposing the whole value.
///
/// The same as [`mask_keeping`] with no storefront orders: numbers written
/// right after an order or tracking keyword still stay readable.
pub fn mask(text: &str) -> String {
    mask_keeping(text, &[])
}

/// [`mask`], keeping readable every standalone occurrence of `known_orders`
/// — the order ids and tracking numbers the storefront passed in
/// `customer.orders` — even where one has the shape of an ID or a card
/// number (long all-digit order numbers exist). A number right after a
/// personal keyword ("身份证", "卡号", "phone") is masked all the same.
pub fn mask_keeping(text: &str, known_orders: &[&str]) -> String {
    let mut masked = mask_once(text, known_orders);
    // The first pass changed nothing: there is no new context to re-read.
    if masked == text {
        return masked;
    }
    for _ in 1..MAX_PASSES {
        let again = mask_once(&masked, known_orders);
        if again == masked {
            break;
        }
        masked = again;
    }
    masked
}

/// Most passes [`mask_keeping`] makes. Masking only ever hides more text, so
/// the passes settle quickly (2 million random keyword-and-digit strings all
/// settled within this bound; the fuzz target checks it on every run).
pub const MAX_PASSES: usize = 4;

/// One detection-and-render pass over `text`.
fn mask_once(text: &str, known_orders: &[&str]) -> String {
    let found = find(text, known_orders);
    if found.is_empty() {
        return text.to_owned();
    }
    let folded = norm::Folded::new(text);
    let mut out = String::with_capacity(text.len() + 16);
    let mut copied = 0;
    for f in &found {
        out.push_str(&text[copied..f.range.start]);
        out.push_str(&render::render(f.kind, &folded.text[f.folded.clone()]));
        copied = f.range.end;
    }
    out.push_str(&text[copied..]);
    out
}

/// One personal value [`find`] located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// What it is.
    pub kind: Kind,
    /// Byte range in the text given to [`find`].
    pub range: Range<usize>,
    folded: Range<usize>,
}

/// The personal values [`mask_keeping`] would mask, in order and disjoint,
/// with their kinds: for callers that count or report what was hidden
/// (metrics, tests) without parsing masked text.
pub fn find(text: &str, known_orders: &[&str]) -> Vec<Found> {
    let folded = norm::Folded::new(text);
    let proposals = detect::propose(&folded.text, known_orders);
    span::resolve(proposals.personal, &proposals.keep)
        .into_iter()
        .map(|(kind, r)| Found {
            kind,
            range: folded.original(r.start)..folded.original(r.end),
            folded: r,
        })
        .collect()
}

#[cfg(test)]
mod tests;
