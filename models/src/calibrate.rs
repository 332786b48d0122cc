//! Calibration and out-of-scope detection.
//!
//! The policy turns probabilities into actions (answer, clarify, hand off), so
//! a 0.9 must mean "right about 90% of the time". Neural heads are usually
//! over-confident; temperature scaling (Guo et al., 2017) fixes that with one
//! scalar fitted on validation data, never on the test/held-out set.
//! Out-of-scope detection combines a trained `out_of_scope` class with a
//! threshold on the calibrated top probability, also chosen on validation data.

use serde::{Deserialize, Serialize};

/// Number of equal-width confidence bins for [`expected_calibration_error`]
/// (15 as in Guo et al., so numbers are comparable with the literature).
pub const ECE_BINS: usize = 15;

/// Search range for the temperature. Outside it the head is broken, not
/// miscalibrated, and clamping keeps one bad fit from producing absurd scores.
const T_MIN: f64 = 0.05;
const T_MAX: f64 = 20.0;

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

/// The out-of-scope decision used everywhere (service, training report,
/// benchmarks): out of scope if the top class is the trained out-of-scope
/// class, or the calibrated top probability is below `threshold`.
pub fn is_out_of_scope(probs: &[f32], oos_index: Option<usize>, threshold: f32) -> bool {
    match argmax(probs) {
        None => true,
        Some((top, p)) => Some(top) == oos_index || p < threshold,
    }
}

/// How an out-of-scope rule performs on labelled data.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OosOperatingPoint {
    /// Calibrated max-probability below which a message is out of scope.
    pub threshold: f32,
    /// In-scope examples classified correctly and not rejected (Larson et al.).
    pub in_scope_accuracy: f32,
    /// Out-of-scope examples flagged as out of scope.
    pub oos_recall: f32,
    /// In-scope examples wrongly flagged as out of scope.
    pub false_reject_rate: f32,
}

/// Scores the rule [`is_out_of_scope`] at `threshold`. `gold[i]` is the
/// in-scope class index or `None` for an out-of-scope example; with a
/// trained out-of-scope class, map its gold label to `None` too.
pub fn evaluate_oos(
    probs: &[Vec<f32>],
    gold: &[Option<usize>],
    oos_index: Option<usize>,
    threshold: f32,
) -> OosOperatingPoint {
    let (mut n_in, mut in_ok, mut rejected, mut n_oos, mut oos_ok) =
        (0usize, 0usize, 0usize, 0usize, 0usize);
    for (p, g) in probs.iter().zip(gold) {
        let flagged = is_out_of_scope(p, oos_index, threshold);
        match g {
            Some(c) => {
                n_in += 1;
                if flagged {
                    rejected += 1;
                } else if argmax(p).map(|(i, _)| i) == Some(*c) {
                    in_ok += 1;
                }
            }
            None => {
                n_oos += 1;
                if flagged {
                    oos_ok += 1;
                }
            }
        }
    }
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f32 / b as f32 };
    OosOperatingPoint {
        threshold,
        in_scope_accuracy: ratio(in_ok, n_in),
        oos_recall: ratio(oos_ok, n_oos),
        false_reject_rate: ratio(rejected, n_in),
    }
}

/// Chooses the threshold on validation data: the value in 0.00..=0.99 (step
/// 0.01) maximising in-scope accuracy + out-of-scope recall among those that
/// reject at most `max_false_reject` of the in-scope examples; the smallest
/// such value on ties (fewest needless clarifications). Without the cap the
/// few out-of-scope examples (often 1 in 20 or fewer) would each outweigh
/// dozens of in-scope ones and the threshold would reject far too much.
/// Threshold 0 (trained class only) is always allowed. A coarse grid is
/// deliberate: finer steps only fit noise of a few hundred validation rows.
/// Without out-of-scope validation examples there is nothing to trade off,
/// so the threshold is 0.
pub fn choose_oos_threshold(
    probs: &[Vec<f32>],
    gold: &[Option<usize>],
    oos_index: Option<usize>,
    max_false_reject: f32,
) -> OosOperatingPoint {
    let mut best = evaluate_oos(probs, gold, oos_index, 0.0);
    if !gold.iter().any(Option::is_none) {
        return best;
    }
    for step in 1..100 {
        let point = evaluate_oos(probs, gold, oos_index, step as f32 / 100.0);
        if point.false_reject_rate <= max_false_reject
            && point.in_scope_accuracy + point.oos_recall
                > best.in_scope_accuracy + best.oos_recall + 1e-6
        {
            best = point;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// Three-class toy where the true class probability is known: true logits
    /// are drawn at random, labels are sampled from their softmax, and the
    /// "model" reports the logits times 4 (badly over-confident).
    fn overconfident_toy(n: usize) -> (Vec<Vec<f32>>, Vec<usize>) {
        let mut rng = StdRng::seed_from_u64(11);
        let mut logits = Vec::new();
        let mut labels = Vec::new();
        for _ in 0..n {
            let z: Vec<f32> = (0..3).map(|_| rng.random::<f32>() * 2.0).collect();
            let p = softmax(&z, 1.0);
            let u: f32 = rng.random();
            let y = if u < p[0] {
                0
            } else if u < p[0] + p[1] {
                1
            } else {
                2
            };
            logits.push(z.iter().map(|v| v * 4.0).collect());
            labels.push(y);
        }
        (logits, labels)
    }

    #[test]
    fn softmax_sums_to_one_and_temperature_flattens() {
        let p = softmax(&[2.0, 1.0, 0.0], 1.0);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        let flat = softmax(&[2.0, 1.0, 0.0], 4.0);
        assert!(flat[0] < p[0]);
    }

    #[test]
    fn temperature_scaling_reduces_ece_on_overconfident_toy() {
        let (fit_logits, fit_labels) = overconfident_toy(4000);
        let t = fit_temperature(&fit_logits, &fit_labels);
        assert!(
            (3.0..5.5).contains(&t),
            "temperature {t} should undo the x4"
        );
        // Evaluate on fresh data from the same process.
        let (logits, labels) = {
            let (l, y) = overconfident_toy(8000);
            (l[4000..].to_vec(), y[4000..].to_vec())
        };
        let before: Vec<Vec<f32>> = logits.iter().map(|z| softmax(z, 1.0)).collect();
        let after: Vec<Vec<f32>> = logits.iter().map(|z| softmax(z, t)).collect();
        let ece_before = expected_calibration_error(&before, &labels);
        let ece_after = expected_calibration_error(&after, &labels);
        assert!(
            ece_before > 0.15,
            "toy should be miscalibrated, ECE {ece_before}"
        );
        assert!(
            ece_after < ece_before / 3.0,
            "ECE {ece_before} -> {ece_after}"
        );
        assert!(mean_nll(&logits, &labels, t as f64) < mean_nll(&logits, &labels, 1.0));
    }

    #[test]
    fn ece_is_zero_when_confidence_matches_accuracy() {
        // Confidence 1.0 and always right.
        let probs = vec![vec![1.0, 0.0]; 10];
        assert_eq!(expected_calibration_error(&probs, &[0; 10]), 0.0);
        // Confidence 0.75 and right 3 times out of 4.
        let probs = vec![vec![0.75, 0.25]; 4];
        assert!(expected_calibration_error(&probs, &[0, 0, 0, 1]).abs() < 1e-6);
    }

    #[test]
    fn oos_rule_uses_class_and_threshold() {
        // Trained OOS class wins → out of scope regardless of threshold.
        assert!(is_out_of_scope(&[0.1, 0.2, 0.7], Some(2), 0.0));
        // Confident in-scope → in scope.
        assert!(!is_out_of_scope(&[0.8, 0.1, 0.1], Some(2), 0.5));
        // Low top probability → out of scope.
        assert!(is_out_of_scope(&[0.4, 0.35, 0.25], Some(2), 0.5));
        // No OOS class: threshold only.
        assert!(!is_out_of_scope(&[0.4, 0.35, 0.25], None, 0.3));
    }

    #[test]
    fn threshold_choice_separates_confident_from_unsure() {
        // In-scope examples are confident (0.9), OOS ones are flat (0.4).
        let mut probs = Vec::new();
        let mut gold = Vec::new();
        for i in 0..20 {
            probs.push(if i % 2 == 0 {
                vec![0.9, 0.05, 0.05]
            } else {
                vec![0.05, 0.9, 0.05]
            });
            gold.push(Some(i % 2));
        }
        for _ in 0..10 {
            probs.push(vec![0.4, 0.35, 0.25]);
            gold.push(None);
        }
        let point = choose_oos_threshold(&probs, &gold, None, 0.05);
        assert!(point.threshold > 0.4 && point.threshold <= 0.9, "{point:?}");
        assert_eq!(point.in_scope_accuracy, 1.0);
        assert_eq!(point.oos_recall, 1.0);
        assert_eq!(point.false_reject_rate, 0.0);
        // The smallest perfect threshold is chosen.
        assert!((point.threshold - 0.41).abs() < 1e-6, "{point:?}");
        // Without OOS examples nothing is rejected.
        let point = choose_oos_threshold(&probs[..20], &gold[..20], None, 0.05);
        assert_eq!(point.threshold, 0.0);
        // The false-reject cap wins over OOS recall: make 3 of the 20
        // in-scope examples unsure; catching the OOS ones would reject 15%.
        for p in probs.iter_mut().take(6).step_by(2) {
            *p = vec![0.38, 0.32, 0.30];
        }
        let capped = choose_oos_threshold(&probs, &gold, None, 0.10);
        assert!(capped.false_reject_rate <= 0.10, "{capped:?}");
        assert!(capped.threshold <= 0.38, "{capped:?}");
        let uncapped = choose_oos_threshold(&probs, &gold, None, 1.0);
        assert_eq!(uncapped.oos_recall, 1.0);
        assert!(
            (uncapped.false_reject_rate - 0.15).abs() < 1e-6,
            "{uncapped:?}"
        );
    }
}
