//! The calibrated decisions made on every served message: probabilities at
//! the fitted temperature, the top class, and the out-of-scope rule.

/// Softmax of `logits / temperature`, computed stably (max subtracted).
pub fn softmax(logits: &[f32], temperature: f32) -> Vec<f32> {
    let t = if temperature > 0.0 { temperature } else { 1.0 };
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut out: Vec<f32> = logits.iter().map(|&z| ((z - max) / t).exp()).collect();
    let sum: f32 = out.iter().sum();
    for p in &mut out {
        *p /= sum;
    }
    out
}

/// Index and value of the largest entry (first one on ties); `None` if empty.
pub fn argmax(values: &[f32]) -> Option<(usize, f32)> {
    values
        .iter()
        .copied()
        .enumerate()
        .fold(None, |best, (i, v)| match best {
            Some((_, bv)) if bv >= v => best,
            _ => Some((i, v)),
        })
}

/// The out-of-scope decision used everywhere (service, training report,
/// benchmarks): out of scope if the top class is the trained out-of-scope
/// class, or the calibrated top probability is below `threshold`.
pub fn is_out_of_scope(probs: &[f32], oos_index: Option<usize>, threshold: f32) -> bool {
    match argmax(probs) {
        None => true,
        Some((top, p)) => Some(top) == oos_index || p < threshold,
    }
}
