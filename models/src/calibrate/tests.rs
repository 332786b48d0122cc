use super::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha12Rng;

/// Three-class toy where the true class probability is known: true logits
/// are drawn at random, labels are sampled from their softmax, and the
/// "model" reports the logits times 4 (badly over-confident).
fn overconfident_toy(n: usize) -> (Vec<Vec<f32>>, Vec<usize>) {
    let mut rng = ChaCha12Rng::seed_from_u64(11);
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

#[test]
fn lower_beta_moves_the_cut_towards_precision() {
    // Positives spread down to 0.38, negatives up to 0.66: F1 keeps
    // every positive at some false alarms, F0.5 cuts them.
    let scores = [
        0.9, 0.8, 0.7, 0.62, 0.5, 0.42, 0.38, 0.66, 0.45, 0.4, 0.35, 0.3, 0.1,
    ];
    let gold = [
        true, true, true, true, true, true, true, false, false, false, false, false, false,
    ];
    let f1_cut = choose_fbeta_threshold(&scores, &gold, 1.0);
    let f05_cut = choose_fbeta_threshold(&scores, &gold, 0.5);
    assert!(f05_cut > f1_cut, "F0.5 cut {f05_cut} vs F1 cut {f1_cut}");
    let (p1, _) = precision_recall(&scores, &gold, f1_cut);
    let (p05, _) = precision_recall(&scores, &gold, f05_cut);
    assert!(p05 > p1, "precision {p05} vs {p1}");
}

#[test]
fn precision_floor_takes_the_lowest_cut_that_keeps_it() {
    // Cuts above 0.66 raise only true alarms; from 0.66 down the false
    // alarm at 0.66 joins them (precision 0.75, then 0.8 from 0.62).
    let scores = [0.9, 0.8, 0.7, 0.62, 0.66, 0.3];
    let gold = [true, true, true, true, false, false];
    assert_eq!(
        choose_threshold_at_precision(&scores, &gold, 0.95),
        Some(0.67)
    );
    assert_eq!(
        choose_threshold_at_precision(&scores, &gold, 0.8),
        Some(0.31)
    );
    // No cut is precise enough when the top score is a false alarm.
    let gold = [false, true, true, true, true, false];
    assert_eq!(choose_threshold_at_precision(&scores, &gold, 0.95), None);
}
