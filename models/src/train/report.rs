//! What `train_shipped` reports (`train_report.json` and the printed
//! summary): per head, training and calibration figures and held-out
//! accuracy of the decisions the service makes.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use xiaoer_domain::Intent;

use super::adapter::AdapterReport;
use super::data::Example;
use crate::calibrate::{argmax, OosOperatingPoint};
use crate::heads::SourceFile;
use crate::Language;

/// Summary of one trained head.
#[derive(Debug, Clone, Serialize)]
pub struct HeadSummary {
    /// Own (minus validation) plus public examples.
    pub train_examples: usize,
    /// Own examples held back for early stopping and calibration.
    pub val_examples: usize,
    /// Examples of the held-out files.
    pub heldout_examples: usize,
    /// Ensemble members.
    pub members: usize,
    /// Per member: epoch whose weights were kept.
    pub best_epochs: Vec<usize>,
    /// Per member: epochs trained before early stopping.
    pub epochs_run: Vec<usize>,
    /// Validation accuracy (optimistic: early stopping looked at it).
    pub val_accuracy: f32,
    /// Fitted on validation.
    pub temperature: f32,
    /// Held-out expected calibration error at temperature 1.
    pub ece_before: f32,
    /// Held-out expected calibration error at the fitted temperature.
    pub ece_after: f32,
}

/// Held-out accuracy for one language (or `all`).
#[derive(Debug, Clone, Serialize)]
pub struct LangAccuracy {
    /// Held-out examples in this group.
    pub examples: usize,
    /// Accuracy of the decision the service makes (for intents: OOS rule
    /// applied; for sentiment: angry threshold applied).
    pub accuracy: f32,
    /// Plain argmax accuracy, for comparison.
    pub top1_accuracy: f32,
}

/// A frequent held-out mistake, to guide data writing.
#[derive(Debug, Clone, Serialize)]
pub struct Confusion {
    /// Label in the held-out file.
    pub gold: Intent,
    /// What the service would have decided.
    pub predicted: Intent,
    /// How often.
    pub count: usize,
}

/// Intent head results.
#[derive(Debug, Clone, Serialize)]
pub struct IntentReport {
    /// Training summary and calibration.
    pub head: HeadSummary,
    /// Keys `zh`, `en`, `all`.
    pub accuracy: BTreeMap<String, LangAccuracy>,
    /// Operating point chosen on validation data.
    pub oos_val: OosOperatingPoint,
    /// The same threshold applied to held-out data.
    pub oos_heldout: OosOperatingPoint,
    /// Held-out examples labelled `out_of_scope`.
    pub heldout_oos_examples: usize,
    /// Most frequent held-out confusions (after the OOS rule).
    pub confusions: Vec<Confusion>,
}

/// Sentiment head results.
#[derive(Debug, Clone, Serialize)]
pub struct SentimentReport {
    /// Training summary and calibration.
    pub head: HeadSummary,
    /// Keys `zh`, `en`, `all`.
    pub accuracy: BTreeMap<String, LangAccuracy>,
    /// `p_angry` cut chosen on validation data (best angry F1).
    pub angry_threshold: f32,
    /// Held-out: share of messages decided `Angry` that are angry.
    pub angry_precision: f32,
    /// Held-out: share of angry messages decided `Angry` (missed ones are
    /// angry shoppers not handed off).
    pub angry_recall: f32,
    /// Held-out examples labelled `angry`.
    pub heldout_angry_examples: usize,
}

/// Request head results.
#[derive(Debug, Clone, Serialize)]
pub struct RequestReport {
    /// Training summary and calibration.
    pub head: HeadSummary,
    /// Keys `zh`, `en`, `all`.
    pub accuracy: BTreeMap<String, LangAccuracy>,
    /// P(staff_action) cut chosen on validation data (best F1).
    pub staff_action_threshold: f32,
    /// Held-out: share of messages decided `staff_action` that are.
    pub staff_action_precision: f32,
    /// Held-out: share of `staff_action` messages caught (missed ones get
    /// an FAQ answer instead of a person).
    pub staff_action_recall: f32,
    /// Held-out examples labelled `staff_action`.
    pub heldout_staff_action_examples: usize,
}

/// What `train_shipped` did and how well the heads do on held-out data.
#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    /// [`crate::Encoder::name`] of the encoder used.
    pub encoder: String,
    /// [`crate::Encoder::feature_layers`] the heads read (empty: the final embedding).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub feature_layers: Vec<usize>,
    /// Seed of the run.
    pub seed: u64,
    /// Time spent reading and splitting the data sets and hashing the
    /// encoder files for provenance.
    pub load_seconds: f32,
    /// Time spent embedding (near zero when the cache is warm).
    pub embed_seconds: f32,
    /// Time spent fitting and calibrating both heads.
    pub train_seconds: f32,
    /// Intent head results.
    pub intent: IntentReport,
    /// Sentiment head results.
    pub sentiment: SentimentReport,
    /// Request head results.
    pub request: RequestReport,
    /// Adapter training, when the top blocks were adapted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapter: Option<AdapterReport>,
    /// Every file read, with hashes (same list as the classifier provenance).
    pub data: Vec<SourceFile>,
}

impl fmt::Display for TrainReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = |v: f32| format!("{:.1}%", v * 100.0);
        writeln!(
            f,
            "encoder {} (feature layers {:?}) | seed {} | load {:.1}s | embed {:.1}s | train {:.1}s",
            self.encoder,
            self.feature_layers,
            self.seed,
            self.load_seconds,
            self.embed_seconds,
            self.train_seconds
        )?;
        for (name, head, acc) in [
            ("intent", &self.intent.head, &self.intent.accuracy),
            ("sentiment", &self.sentiment.head, &self.sentiment.accuracy),
            ("request", &self.request.head, &self.request.accuracy),
        ] {
            writeln!(
                f,
                "{name}: train {} / val {} / held-out {} | {} member(s), best epochs {:?} | T {:.2} | ECE {:.3} -> {:.3}",
                head.train_examples,
                head.val_examples,
                head.heldout_examples,
                head.members,
                head.best_epochs,
                head.temperature,
                head.ece_before,
                head.ece_after
            )?;
            for (lang, a) in acc {
                writeln!(
                    f,
                    "  {lang}: {} (top-1 {}) on {}",
                    pct(a.accuracy),
                    pct(a.top1_accuracy),
                    a.examples
                )?;
            }
        }
        let o = &self.intent.oos_heldout;
        writeln!(
            f,
            "out of scope: threshold {:.2} | held-out recall {} on {} | false rejects {}",
            o.threshold,
            pct(o.oos_recall),
            self.intent.heldout_oos_examples,
            pct(o.false_reject_rate)
        )?;
        let s = &self.sentiment;
        writeln!(
            f,
            "angry: threshold {:.2} | precision {} recall {} on {}",
            s.angry_threshold,
            pct(s.angry_precision),
            pct(s.angry_recall),
            s.heldout_angry_examples
        )?;
        let r = &self.request;
        writeln!(
            f,
            "staff action: threshold {:.2} | precision {} recall {} on {}",
            r.staff_action_threshold,
            pct(r.staff_action_precision),
            pct(r.staff_action_recall),
            r.heldout_staff_action_examples
        )?;
        for c in &self.intent.confusions {
            writeln!(f, "  confused: {} -> {} x{}", c.gold, c.predicted, c.count)?;
        }
        Ok(())
    }
}

/// Per-language accuracy of `decide` (the service decision) and argmax.
pub(crate) fn lang_accuracy(
    examples: &[Example],
    gold: &[usize],
    probs: &[Vec<f32>],
    decide: impl Fn(&[f32]) -> usize,
) -> BTreeMap<String, LangAccuracy> {
    let mut out = BTreeMap::new();
    let groups: [(&str, Option<Language>); 3] = [
        ("zh", Some(Language::Zh)),
        ("en", Some(Language::En)),
        ("all", None),
    ];
    for (name, lang) in groups {
        let (mut n, mut ok, mut top1) = (0usize, 0usize, 0usize);
        for ((e, &y), p) in examples.iter().zip(gold).zip(probs) {
            if lang.is_some_and(|l| l != e.lang) {
                continue;
            }
            n += 1;
            ok += usize::from(decide(p) == y);
            top1 += usize::from(argmax(p).map(|(i, _)| i) == Some(y));
        }
        if n > 0 {
            out.insert(
                name.to_string(),
                LangAccuracy {
                    examples: n,
                    accuracy: ok as f32 / n as f32,
                    top1_accuracy: top1 as f32 / n as f32,
                },
            );
        }
    }
    out
}
