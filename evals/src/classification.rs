//! Metrics for any single-label classifier: accuracy, per-label
//! precision/recall/F1, the confusion matrix, calibration (ECE) and the
//! accuracy-vs-coverage trade-off of a confidence threshold.
//!
//! The case suite scores the bot's intents with it, and public benchmarks run
//! by the service score the model heads with it, so both report the same
//! figures computed the same way.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Label used when a prediction has no label at all (e.g. a failed call).
pub const NO_LABEL: &str = "(none)";

/// Number of equal-width confidence bins of the reliability diagram and ECE.
pub const CALIBRATION_BINS: usize = 10;

/// Thresholds reported for the accuracy-vs-coverage curve (0.00, 0.05 … 1.00).
pub fn coverage_thresholds() -> Vec<f64> {
    (0..=20).map(|step| f64::from(step) * 0.05).collect()
}

/// The raw material: one gold label, one predicted label and the predicted
/// label's confidence per example.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Predictions {
    /// Preferred label order for tables and plot axes; labels that occur in
    /// `gold` or `predicted` but not here are appended in sorted order.
    pub labels: Vec<String>,
    /// Gold label per example.
    pub gold: Vec<String>,
    /// Predicted label per example.
    pub predicted: Vec<String>,
    /// Confidence of the predicted label per example, in `0..=1`.
    pub confidences: Vec<f64>,
}

/// Inputs that cannot be scored.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricsError {
    /// `gold`, `predicted` and `confidences` differ in length.
    #[error("gold ({gold}), predicted ({predicted}) and confidences ({confidences}) must have the same length")]
    LengthMismatch {
        /// Gold labels given.
        gold: usize,
        /// Predicted labels given.
        predicted: usize,
        /// Confidences given.
        confidences: usize,
    },
    /// A confidence that is NaN or outside `0..=1`.
    #[error("confidence #{index} is {value}, expected a probability in 0..=1")]
    BadConfidence {
        /// Example index.
        index: usize,
        /// The offending value.
        value: f64,
    },
}

/// A share with its counts, so reports can show "45/50" next to "90.0%".
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Ratio {
    /// Examples that met the criterion.
    pub hits: usize,
    /// Examples the criterion applies to.
    pub total: usize,
    /// `hits / total`; `None` when nothing applies (not 0 and not 100%).
    pub value: Option<f64>,
}

impl Ratio {
    /// Builds the ratio; `total == 0` yields `value: None`.
    pub fn new(hits: usize, total: usize) -> Self {
        let value = (total > 0).then(|| hits as f64 / total as f64);
        Ratio { hits, total, value }
    }

    /// "90.0% (45/50)" or "n/a (0/0)".
    pub fn display(&self) -> String {
        format!("{} ({}/{})", percent(self.value), self.hits, self.total)
    }
}

/// Formats a share as a percentage with one decimal, or "n/a".
pub fn percent(value: Option<f64>) -> String {
    match value {
        Some(value) => format!("{:.1}%", value * 100.0),
        None => "n/a".to_string(),
    }
}

/// Per-label scores. Undefined values (no support, never predicted) are
/// `None` rather than a misleading 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelScores {
    /// The label.
    pub label: String,
    /// Examples whose gold label it is.
    pub support: usize,
    /// Examples predicted as it.
    pub predicted: usize,
    /// Correct predictions of it.
    pub true_positives: usize,
    /// `tp / predicted`.
    pub precision: Option<f64>,
    /// `tp / support`.
    pub recall: Option<f64>,
    /// Harmonic mean of precision and recall (0 when both are 0).
    pub f1: Option<f64>,
}

/// One off-diagonal cell of the confusion matrix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfusionPair {
    /// What it should have been.
    pub gold: String,
    /// What was predicted instead.
    pub predicted: String,
    /// How often.
    pub count: usize,
}

/// One confidence bin of the reliability diagram.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReliabilityBin {
    /// Inclusive lower edge.
    pub lower: f64,
    /// Upper edge (exclusive, except 1.0 for the last bin).
    pub upper: f64,
    /// Examples in the bin.
    pub count: usize,
    /// Mean confidence in the bin (`None` when empty).
    pub mean_confidence: Option<f64>,
    /// Share correct in the bin (`None` when empty).
    pub accuracy: Option<f64>,
}

/// Calibration: do confidences mean what they say?
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Equal-width bins over `0..=1`.
    pub bins: Vec<ReliabilityBin>,
    /// Expected calibration error: the count-weighted mean gap between
    /// confidence and accuracy over the bins (`None` with no examples).
    pub ece: Option<f64>,
}

/// One point of the accuracy-vs-coverage curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoveragePoint {
    /// Predictions with confidence ≥ this are kept.
    pub threshold: f64,
    /// Share of examples kept.
    pub coverage: f64,
    /// Accuracy on the kept examples (`None` when none are kept).
    pub accuracy: Option<f64>,
}

/// Everything computed from a [`Predictions`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassificationMetrics {
    /// Axis order of `confusion` and `per_label`.
    pub labels: Vec<String>,
    /// Examples scored.
    pub examples: usize,
    /// Share predicted exactly right.
    pub accuracy: Ratio,
    /// Mean F1 over labels with support (undefined F1 counted as 0).
    pub macro_f1: Option<f64>,
    /// Scores per label, in `labels` order.
    pub per_label: Vec<LabelScores>,
    /// `confusion[gold][predicted]` counts, in `labels` order.
    pub confusion: Vec<Vec<usize>>,
    /// Most frequent mistakes, largest first (at most 10).
    pub top_confusions: Vec<ConfusionPair>,
    /// Reliability bins and ECE.
    pub calibration: Calibration,
    /// Accuracy-vs-coverage at [`coverage_thresholds`].
    pub coverage: Vec<CoveragePoint>,
}

impl ClassificationMetrics {
    /// Scores the predictions; fails only on inconsistent input.
    pub fn compute(predictions: &Predictions) -> Result<Self, MetricsError> {
        let Predictions {
            gold,
            predicted,
            confidences,
            ..
        } = predictions;
        if gold.len() != predicted.len() || gold.len() != confidences.len() {
            return Err(MetricsError::LengthMismatch {
                gold: gold.len(),
                predicted: predicted.len(),
                confidences: confidences.len(),
            });
        }
        if let Some((index, &value)) = confidences
            .iter()
            .enumerate()
            .find(|(_, value)| !(0.0..=1.0).contains(*value))
        {
            return Err(MetricsError::BadConfidence { index, value });
        }
        let labels = label_order(predictions);
        let position: BTreeMap<&str, usize> = labels
            .iter()
            .enumerate()
            .map(|(index, label)| (label.as_str(), index))
            .collect();
        let mut confusion = vec![vec![0usize; labels.len()]; labels.len()];
        for (g, p) in gold.iter().zip(predicted) {
            // Both are in `labels` by construction of `label_order`.
            if let (Some(&row), Some(&col)) = (position.get(g.as_str()), position.get(p.as_str())) {
                confusion[row][col] += 1;
            }
        }
        let correct: Vec<bool> = gold.iter().zip(predicted).map(|(g, p)| g == p).collect();
        let per_label = per_label_scores(&labels, &confusion);
        let with_support: Vec<f64> = per_label
            .iter()
            .filter(|scores| scores.support > 0)
            .map(|scores| scores.f1.unwrap_or(0.0))
            .collect();
        let macro_f1 = (!with_support.is_empty())
            .then(|| with_support.iter().sum::<f64>() / with_support.len() as f64);
        Ok(ClassificationMetrics {
            examples: gold.len(),
            accuracy: Ratio::new(correct.iter().filter(|&&ok| ok).count(), gold.len()),
            macro_f1,
            top_confusions: top_confusions(&labels, &confusion, 10),
            calibration: calibration(confidences, &correct, CALIBRATION_BINS),
            coverage: coverage_curve(confidences, &correct, &coverage_thresholds()),
            per_label,
            confusion,
            labels,
        })
    }
}

fn label_order(predictions: &Predictions) -> Vec<String> {
    let mut labels: Vec<String> = Vec::new();
    for label in &predictions.labels {
        if !labels.contains(label) {
            labels.push(label.clone());
        }
    }
    let mut extra: Vec<&String> = predictions
        .gold
        .iter()
        .chain(&predictions.predicted)
        .filter(|label| !predictions.labels.contains(label))
        .collect();
    extra.sort();
    extra.dedup();
    labels.extend(extra.into_iter().cloned());
    labels
}

fn per_label_scores(labels: &[String], confusion: &[Vec<usize>]) -> Vec<LabelScores> {
    labels
        .iter()
        .enumerate()
        .map(|(index, label)| {
            let true_positives = confusion[index][index];
            let support: usize = confusion[index].iter().sum();
            let predicted: usize = confusion.iter().map(|row| row[index]).sum();
            let precision = (predicted > 0).then(|| true_positives as f64 / predicted as f64);
            let recall = (support > 0).then(|| true_positives as f64 / support as f64);
            let f1 = match (precision, recall) {
                (Some(p), Some(r)) if p + r > 0.0 => Some(2.0 * p * r / (p + r)),
                (Some(_), Some(_)) => Some(0.0),
                _ => None,
            };
            LabelScores {
                label: label.clone(),
                support,
                predicted,
                true_positives,
                precision,
                recall,
                f1,
            }
        })
        .collect()
}

fn top_confusions(labels: &[String], confusion: &[Vec<usize>], limit: usize) -> Vec<ConfusionPair> {
    let mut pairs: Vec<ConfusionPair> = Vec::new();
    for (row, counts) in confusion.iter().enumerate() {
        for (col, &count) in counts.iter().enumerate() {
            if row != col && count > 0 {
                pairs.push(ConfusionPair {
                    gold: labels[row].clone(),
                    predicted: labels[col].clone(),
                    count,
                });
            }
        }
    }
    // Largest first; ties in a stable, readable order.
    pairs.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| (&a.gold, &a.predicted).cmp(&(&b.gold, &b.predicted)))
    });
    pairs.truncate(limit);
    pairs
}

/// Reliability bins and ECE for confidences in `0..=1` and correctness flags.
pub fn calibration(confidences: &[f64], correct: &[bool], bins: usize) -> Calibration {
    let bins = bins.max(1);
    let mut count = vec![0usize; bins];
    let mut confidence_sum = vec![0.0f64; bins];
    let mut correct_count = vec![0usize; bins];
    for (&confidence, &ok) in confidences.iter().zip(correct) {
        // The last bin is closed so that a confidence of exactly 1.0 lands in it.
        let bin = ((confidence * bins as f64).floor() as usize).min(bins - 1);
        count[bin] += 1;
        confidence_sum[bin] += confidence;
        correct_count[bin] += usize::from(ok);
    }
    let total: usize = count.iter().sum();
    let mut ece = 0.0;
    let bins: Vec<ReliabilityBin> = (0..bins)
        .map(|bin| {
            let n = count[bin];
            let mean_confidence = (n > 0).then(|| confidence_sum[bin] / n as f64);
            let accuracy = (n > 0).then(|| correct_count[bin] as f64 / n as f64);
            if let (Some(conf), Some(acc)) = (mean_confidence, accuracy) {
                ece += n as f64 / total as f64 * (acc - conf).abs();
            }
            ReliabilityBin {
                lower: bin as f64 / bins as f64,
                upper: (bin + 1) as f64 / bins as f64,
                count: n,
                mean_confidence,
                accuracy,
            }
        })
        .collect();
    Calibration {
        bins,
        ece: (total > 0).then_some(ece),
    }
}

/// Accuracy-vs-coverage: for each threshold, keep predictions with
/// confidence ≥ threshold and report how many are kept and how many of
/// those are right. This is what a "only answer above t" policy would buy.
pub fn coverage_curve(
    confidences: &[f64],
    correct: &[bool],
    thresholds: &[f64],
) -> Vec<CoveragePoint> {
    let total = confidences.len();
    thresholds
        .iter()
        .map(|&threshold| {
            let kept: Vec<bool> = confidences
                .iter()
                .zip(correct)
                .filter(|(&confidence, _)| confidence >= threshold)
                .map(|(_, &ok)| ok)
                .collect();
            let coverage = if total == 0 {
                0.0
            } else {
                kept.len() as f64 / total as f64
            };
            let accuracy = Ratio::new(kept.iter().filter(|&&ok| ok).count(), kept.len()).value;
            CoveragePoint {
                threshold,
                coverage,
                accuracy,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| item.to_string()).collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn hand_computed_scores() {
        // gold:      a a a b b c
        // predicted: a a b b a c
        let predictions = Predictions {
            labels: strings(&["a", "b", "c"]),
            gold: strings(&["a", "a", "a", "b", "b", "c"]),
            predicted: strings(&["a", "a", "b", "b", "a", "c"]),
            confidences: vec![0.9, 0.8, 0.6, 0.7, 0.95, 0.5],
        };
        let metrics = ClassificationMetrics::compute(&predictions).expect("valid");
        assert_eq!(metrics.accuracy.hits, 4);
        assert!(close(metrics.accuracy.value.expect("some"), 4.0 / 6.0));
        assert_eq!(
            metrics.confusion,
            vec![vec![2, 1, 0], vec![1, 1, 0], vec![0, 0, 1]]
        );
        let a = &metrics.per_label[0];
        // a: tp 2, predicted 3, support 3.
        assert!(close(a.precision.expect("p"), 2.0 / 3.0));
        assert!(close(a.recall.expect("r"), 2.0 / 3.0));
        assert!(close(a.f1.expect("f1"), 2.0 / 3.0));
        let b = &metrics.per_label[1];
        // b: tp 1, predicted 2, support 2 → 0.5 / 0.5 / 0.5.
        assert!(close(b.f1.expect("f1"), 0.5));
        assert!(close(metrics.per_label[2].f1.expect("f1"), 1.0));
        assert!(close(
            metrics.macro_f1.expect("macro"),
            (2.0 / 3.0 + 0.5 + 1.0) / 3.0
        ));
        assert_eq!(
            metrics.top_confusions,
            vec![
                ConfusionPair {
                    gold: "a".into(),
                    predicted: "b".into(),
                    count: 1
                },
                ConfusionPair {
                    gold: "b".into(),
                    predicted: "a".into(),
                    count: 1
                },
            ]
        );
    }

    #[test]
    fn unseen_labels_are_appended_and_undefined_scores_stay_none() {
        let predictions = Predictions {
            labels: strings(&["x"]),
            gold: strings(&["x", "y"]),
            predicted: strings(&["x", NO_LABEL]),
            confidences: vec![1.0, 0.0],
        };
        let metrics = ClassificationMetrics::compute(&predictions).expect("valid");
        assert_eq!(metrics.labels, strings(&["x", NO_LABEL, "y"]));
        let none = &metrics.per_label[1];
        assert_eq!(none.support, 0);
        assert_eq!(none.recall, None);
        assert_eq!(none.f1, None);
        // y: support 1, never predicted → precision undefined, recall 0.
        let y = &metrics.per_label[2];
        assert_eq!(y.precision, None);
        assert_eq!(y.recall, Some(0.0));
        // Macro-F1 over labels with support: x = 1, y = 0.
        assert!(close(metrics.macro_f1.expect("macro"), 0.5));
    }

    #[test]
    fn ece_on_a_small_example() {
        // Bin [0.9, 1.0]: confidences 0.9 and 1.0, one right → gap |0.5 - 0.95| = 0.45.
        // Bin [0.6, 0.7): confidence 0.6, right → gap 0.4.
        let calibration = calibration(&[0.9, 1.0, 0.6], &[true, false, true], 10);
        assert_eq!(calibration.bins[9].count, 2);
        assert_eq!(calibration.bins[6].count, 1);
        let expected = 2.0 / 3.0 * 0.45 + 1.0 / 3.0 * 0.4;
        assert!(close(calibration.ece.expect("ece"), expected));
        assert_eq!(calibration.bins[0].accuracy, None);
        assert_eq!(super::calibration(&[], &[], 10).ece, None);
    }

    #[test]
    fn coverage_sweeps_thresholds() {
        let points = coverage_curve(
            &[0.9, 0.8, 0.3, 0.2],
            &[true, true, false, true],
            &[0.0, 0.5, 0.95],
        );
        assert!(close(points[0].coverage, 1.0));
        assert!(close(points[0].accuracy.expect("acc"), 0.75));
        assert!(close(points[1].coverage, 0.5));
        assert!(close(points[1].accuracy.expect("acc"), 1.0));
        assert!(close(points[2].coverage, 0.0));
        assert_eq!(points[2].accuracy, None);
    }

    #[test]
    fn rejects_inconsistent_input() {
        let mismatch = Predictions {
            gold: strings(&["a"]),
            ..Default::default()
        };
        assert!(matches!(
            ClassificationMetrics::compute(&mismatch),
            Err(MetricsError::LengthMismatch { .. })
        ));
        let bad = Predictions {
            gold: strings(&["a"]),
            predicted: strings(&["a"]),
            confidences: vec![f64::NAN],
            ..Default::default()
        };
        assert!(matches!(
            ClassificationMetrics::compute(&bad),
            Err(MetricsError::BadConfidence { index: 0, .. })
        ));
    }
}
