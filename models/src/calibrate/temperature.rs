//! Temperature scaling and how well it worked: one scalar fitted on
//! validation logits, and the expected calibration error to report.

use super::inference::argmax;

/// Number of equal-width confidence bins for [`expected_calibration_error`]
/// (15 as in Guo et al., so numbers are comparable with the literature).
pub const ECE_BINS: usize = 15;

/// Search range for the temperature. Outside it the head is broken, not
/// miscalibrated, and clamping keeps one bad fit from producing absurd scores.
const T_MIN: f64 = 0.05;
const T_MAX: f64 = 20.0;

/// Mean negative log-likelihood of `labels` under `softmax(logits / t)`,
/// in f64 because the temperature search compares close values.
pub fn mean_nll(logits: &[Vec<f32>], labels: &[usize], temperature: f64) -> f64 {
    if logits.is_empty() {
        return 0.0;
    }
    let mut total = 0.0f64;
    for (z, &y) in logits.iter().zip(labels) {
        let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let lse = z
            .iter()
            .map(|&v| ((v as f64 - max) / temperature).exp())
            .sum::<f64>()
            .ln();
        total += lse - (z[y] as f64 - max) / temperature;
    }
    total / logits.len() as f64
}

/// Fits the temperature minimising validation NLL. NLL is convex in 1/T, so
/// a golden-section search over log T finds the optimum in ~60 evaluations
/// with no gradient code. Returns 1.0 for empty input.
pub fn fit_temperature(logits: &[Vec<f32>], labels: &[usize]) -> f32 {
    if logits.is_empty() {
        return 1.0;
    }
    let f = |log_t: f64| mean_nll(logits, labels, log_t.exp());
    let golden = (5f64.sqrt() - 1.0) / 2.0;
    let (mut a, mut b) = (T_MIN.ln(), T_MAX.ln());
    let mut c = b - golden * (b - a);
    let mut d = a + golden * (b - a);
    let (mut fc, mut fd) = (f(c), f(d));
    for _ in 0..60 {
        if fc < fd {
            b = d;
            d = c;
            fd = fc;
            c = b - golden * (b - a);
            fc = f(c);
        } else {
            a = c;
            c = d;
            fc = fd;
            d = a + golden * (b - a);
            fd = f(d);
        }
    }
    ((a + b) / 2.0).exp() as f32
}

/// Expected calibration error of the top-1 prediction: the bin-weighted gap
/// between confidence and accuracy over [`ECE_BINS`] equal-width bins.
/// 0 is perfect; returns 0 for empty input.
pub fn expected_calibration_error(probs: &[Vec<f32>], labels: &[usize]) -> f32 {
    if probs.is_empty() {
        return 0.0;
    }
    let mut count = [0usize; ECE_BINS];
    let mut conf = [0f64; ECE_BINS];
    let mut correct = [0f64; ECE_BINS];
    for (p, &y) in probs.iter().zip(labels) {
        let Some((pred, top)) = argmax(p) else {
            continue;
        };
        let bin = ((top * ECE_BINS as f32) as usize).min(ECE_BINS - 1);
        count[bin] += 1;
        conf[bin] += top as f64;
        if pred == y {
            correct[bin] += 1.0;
        }
    }
    let n = probs.len() as f64;
    let ece: f64 = (0..ECE_BINS)
        .filter(|&b| count[b] > 0)
        .map(|b| (count[b] as f64 / n) * ((correct[b] - conf[b]) / count[b] as f64).abs())
        .sum();
    ece as f32
}
