//! Operating points chosen on validation data: the out-of-scope threshold
//! and the cut on one class's probability (angry, staff action), with the
//! precision and recall they give.

use serde::{Deserialize, Serialize};

use super::inference::{argmax, is_out_of_scope};

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

/// The cut on a calibrated class probability with the best validation
/// F-beta for that class (grid 0.10..=0.90, step 0.01; ties go to the cut
/// nearest 0.5, the uncalibrated default). `beta` < 1 weighs precision more.
pub fn choose_fbeta_threshold(scores: &[f32], gold: &[bool], beta: f32) -> f32 {
    let b2 = beta * beta;
    let mut best = (0.5f32, f32::NEG_INFINITY);
    for step in 10..=90 {
        let t = step as f32 / 100.0;
        let (p, r) = precision_recall(scores, gold, t);
        let f = if p + r > 0.0 {
            (1.0 + b2) * p * r / (b2 * p + r)
        } else {
            0.0
        };
        let better = f > best.1 + 1e-6
            || ((f - best.1).abs() <= 1e-6 && (t - 0.5).abs() < (best.0 - 0.5).abs());
        if better {
            best = (t, f);
        }
    }
    best.0
}

/// The lowest cut on the grid 0.10..=0.90 (step 0.01) whose validation
/// precision reaches `min_precision` with some recall: recall only falls as
/// the cut rises, so this is the most recall the precision floor allows.
/// `None` when no cut reaches the floor.
pub fn choose_threshold_at_precision(
    scores: &[f32],
    gold: &[bool],
    min_precision: f32,
) -> Option<f32> {
    (10..=90).map(|step| step as f32 / 100.0).find(|&t| {
        let (p, r) = precision_recall(scores, gold, t);
        p >= min_precision && r > 0.0
    })
}

/// Precision and recall of "score ≥ threshold" for one class.
pub fn precision_recall(scores: &[f32], gold: &[bool], threshold: f32) -> (f32, f32) {
    let (mut tp, mut fp, mut fne) = (0usize, 0usize, 0usize);
    for (&score, &is) in scores.iter().zip(gold) {
        let pred = score >= threshold;
        match (pred, is) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fne += 1,
            (false, false) => {}
        }
    }
    (ratio(tp, tp + fp), ratio(tp, tp + fne))
}

/// `a / b`, or 0 when nothing was counted.
fn ratio(a: usize, b: usize) -> f32 {
    if b == 0 {
        0.0
    } else {
        a as f32 / b as f32
    }
}
