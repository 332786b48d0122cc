//! The masker's invariants as checks, shared by the property tests and the
//! `text_pipeline` fuzz target (feature `invariants`), so both hold the
//! masker to the same promises.

/// Checks what [`crate::mask`] promises on any text: masking is idempotent,
/// and no mainland mobile number, Luhn-valid card number or valid resident
/// ID survives in plain digits — unless the text has a keep keyword (order,
/// tracking, invoice, coupon, model … numbers may have any of those shapes
/// and stay readable).
pub fn check(text: &str) -> Result<(), String> {
    let masked = crate::mask(text);
    if crate::mask(&masked) != masked {
        return Err(format!("not idempotent on {text:?}"));
    }
    let lower = text.to_lowercase();
    let keeps = |w: &&str| lower.contains(*w);
    if ["快递", "#"].iter().any(keeps) || crate::detect::keyword_lists::KEEP.iter().any(keeps) {
        return Ok(());
    }
    for run in masked
        .split(|c: char| !c.is_ascii_digit())
        .filter(|r| !r.is_empty())
    {
        let d = run.as_bytes();
        if d.len() == 11 && d[0] == b'1' && (b'3'..=b'9').contains(&d[1]) {
            return Err(format!("mobile {run} in {masked:?}"));
        }
        if (13..=19).contains(&d.len()) && crate::checks::luhn_ok(d) && !tracking_context(text, run)
        {
            return Err(format!("card {run} in {masked:?}"));
        }
    }
    for run in masked
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|r| !r.is_empty())
    {
        let b = run.as_bytes();
        if crate::checks::id_checksum_ok(b) && b[0] != b'0' && crate::checks::id_shape(b) {
            return Err(format!("ID {run} in {masked:?}"));
        }
    }
    Ok(())
}

/// A run inside a carrier tracking number (SF…, JD…) is kept on purpose.
fn tracking_context(text: &str, run: &str) -> bool {
    text.match_indices(run)
        .any(|(at, _)| text[..at].ends_with(|c: char| c.is_ascii_uppercase()))
}

/// Checks that none of `personal` — the spans a corpus marks as personal
/// data in `text` — survives verbatim in the masked output, with `known_orders`
/// kept as the storefront would pass them.
pub fn check_spans(text: &str, personal: &[&str], known_orders: &[&str]) -> Result<(), String> {
    let masked = crate::mask_keeping(text, known_orders);
    match personal.iter().find(|span| masked.contains(**span)) {
        Some(span) => Err(format!("{span:?} survives in {masked:?}")),
        None => Ok(()),
    }
}
