//! Case-suite figures: the headline numbers the product is steered by,
//! broken down per language and per expected intent, with their goals.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use xiaoer_domain::HandoffReason;

use crate::cases::Action;
use crate::classification::{ClassificationMetrics, MetricsError, Predictions, Ratio, NO_LABEL};
use crate::judge::CaseResult;
use crate::latency::LatencySummary;

/// The figures of one group of cases (all, one language, one intent).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupMetrics {
    /// Cases in the group.
    pub cases: usize,
    /// Cases that passed every rule.
    pub passed: usize,
    /// The decision (ANSWER/CLARIFY/HANDOFF) was right.
    pub action_accuracy: Ratio,
    /// Angry and explicit-request cases that reached a person, whatever the
    /// reason given: missing these is what hurts shoppers most.
    pub handoff_recall: Ratio,
    /// The same for angry cases (expected `NEGATIVE_SENTIMENT`) alone.
    pub handoff_recall_angry: Ratio,
    /// The same for explicit requests (expected `CUSTOMER_REQUEST`) alone.
    pub handoff_recall_request: Ratio,
    /// Handoffs where none was expected, over all non-handoff cases: each
    /// one costs an agent's time.
    pub unnecessary_handoffs: Ratio,
    /// `ANSWER` cases with articles whose top source is acceptable.
    pub source_accuracy: Ratio,
    /// Intent named exactly right.
    pub intent_accuracy: Ratio,
    /// Handoff cases with `draft_articles` whose handoff came with a draft
    /// from one of them: the agent's first reply answers the actual problem.
    #[serde(default)]
    pub drafts_on_topic: Ratio,
}

impl GroupMetrics {
    /// Computes the group's figures.
    pub fn compute<'a>(results: impl IntoIterator<Item = &'a CaseResult>) -> Self {
        let mut counts = Counts::default();
        for result in results {
            counts.add(result);
        }
        counts.finish()
    }
}

#[derive(Default)]
struct Counts {
    cases: usize,
    passed: usize,
    action_right: usize,
    angry: (usize, usize),
    request: (usize, usize),
    non_handoff: (usize, usize),
    sourced: (usize, usize),
    drafted: (usize, usize),
    intent_right: usize,
}

impl Counts {
    fn add(&mut self, result: &CaseResult) {
        let handed_off = result.got.action == Action::Handoff;
        self.cases += 1;
        self.passed += usize::from(result.passed());
        self.action_right += usize::from(result.got.action == result.expected_action);
        self.intent_right += usize::from(result.intent_correct());
        match (result.expected_action, result.expected_reason) {
            (Action::Handoff, Some(HandoffReason::NegativeSentiment)) => {
                self.angry.0 += usize::from(handed_off);
                self.angry.1 += 1;
            }
            (Action::Handoff, Some(HandoffReason::CustomerRequest)) => {
                self.request.0 += usize::from(handed_off);
                self.request.1 += 1;
            }
            (Action::Handoff, _) => {}
            _ => {
                self.non_handoff.0 += usize::from(handed_off);
                self.non_handoff.1 += 1;
            }
        }
        if result.expected_action == Action::Answer && !result.expected_articles.is_empty() {
            let cited = result.got.top_source.as_ref();
            self.sourced.0 +=
                usize::from(cited.is_some_and(|source| result.expected_articles.contains(source)));
            self.sourced.1 += 1;
        }
        if !result.expected_draft_articles.is_empty() {
            let on_topic = handed_off
                && result
                    .got
                    .draft_articles
                    .iter()
                    .any(|article| result.expected_draft_articles.contains(article));
            self.drafted.0 += usize::from(on_topic);
            self.drafted.1 += 1;
        }
    }

    fn finish(self) -> GroupMetrics {
        GroupMetrics {
            cases: self.cases,
            passed: self.passed,
            action_accuracy: Ratio::new(self.action_right, self.cases),
            handoff_recall: Ratio::new(
                self.angry.0 + self.request.0,
                self.angry.1 + self.request.1,
            ),
            handoff_recall_angry: Ratio::new(self.angry.0, self.angry.1),
            handoff_recall_request: Ratio::new(self.request.0, self.request.1),
            unnecessary_handoffs: Ratio::new(self.non_handoff.0, self.non_handoff.1),
            source_accuracy: Ratio::new(self.sourced.0, self.sourced.1),
            intent_accuracy: Ratio::new(self.intent_right, self.cases),
            drafts_on_topic: Ratio::new(self.drafted.0, self.drafted.1),
        }
    }
}

/// The five figures compared against a baseline and printed with goals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Headline {
    /// Share of cases with the right action.
    pub action_accuracy: Option<f64>,
    /// Share of angry and explicit-request cases handed off.
    pub handoff_recall: Option<f64>,
    /// Share of non-handoff cases handed off anyway (lower is better).
    pub unnecessary_handoff_rate: Option<f64>,
    /// Share of sourced `ANSWER` cases citing an acceptable article first.
    pub source_accuracy: Option<f64>,
    /// Share of cases with the right intent.
    pub intent_accuracy: Option<f64>,
}

impl Headline {
    /// The headline of a group's figures.
    pub fn from_group(group: &GroupMetrics) -> Self {
        Headline {
            action_accuracy: group.action_accuracy.value,
            handoff_recall: group.handoff_recall.value,
            unnecessary_handoff_rate: group.unnecessary_handoffs.value,
            source_accuracy: group.source_accuracy.value,
            intent_accuracy: group.intent_accuracy.value,
        }
    }

    /// `(metric, value)` pairs in a fixed order, for tables and comparisons.
    pub fn entries(&self) -> [(Metric, Option<f64>); 5] {
        [
            (Metric::ActionAccuracy, self.action_accuracy),
            (Metric::HandoffRecall, self.handoff_recall),
            (
                Metric::UnnecessaryHandoffRate,
                self.unnecessary_handoff_rate,
            ),
            (Metric::SourceAccuracy, self.source_accuracy),
            (Metric::IntentAccuracy, self.intent_accuracy),
        ]
    }
}

/// A headline metric; knows its name and which direction is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// See [`Headline::action_accuracy`].
    ActionAccuracy,
    /// See [`Headline::handoff_recall`].
    HandoffRecall,
    /// See [`Headline::unnecessary_handoff_rate`].
    UnnecessaryHandoffRate,
    /// See [`Headline::source_accuracy`].
    SourceAccuracy,
    /// See [`Headline::intent_accuracy`].
    IntentAccuracy,
}

impl Metric {
    /// Human name for tables.
    pub fn label(self) -> &'static str {
        match self {
            Metric::ActionAccuracy => "action accuracy",
            Metric::HandoffRecall => "handoff recall (angry + requests)",
            Metric::UnnecessaryHandoffRate => "unnecessary handoffs",
            Metric::SourceAccuracy => "top source acceptable",
            Metric::IntentAccuracy => "intent accuracy",
        }
    }

    /// False only for the unnecessary-handoff rate.
    pub fn higher_is_better(self) -> bool {
        self != Metric::UnnecessaryHandoffRate
    }

    /// The product goal, where one is set (intent accuracy has none: it
    /// is diagnostic and does not fail cases).
    pub fn goal(self) -> Option<f64> {
        match self {
            Metric::ActionAccuracy => Some(0.95),
            Metric::HandoffRecall => Some(0.97),
            Metric::UnnecessaryHandoffRate => Some(0.03),
            Metric::SourceAccuracy => Some(0.92),
            Metric::IntentAccuracy => None,
        }
    }

    /// "≥ 95%" / "≤ 3%" / "—".
    pub fn goal_text(self) -> String {
        match self.goal() {
            Some(goal) if self.higher_is_better() => format!("≥ {:.0}%", goal * 100.0),
            Some(goal) => format!("≤ {:.0}%", goal * 100.0),
            None => "—".to_string(),
        }
    }

    /// "met", "MISSED", or "" when there is no goal or no value.
    pub fn goal_status(self, value: Option<f64>) -> &'static str {
        match (self.goal(), value) {
            (Some(goal), Some(value)) => {
                let met = if self.higher_is_better() {
                    value >= goal
                } else {
                    value <= goal
                };
                if met {
                    "met"
                } else {
                    "MISSED"
                }
            }
            _ => "",
        }
    }
}

/// Everything the case suite measures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseMetrics {
    /// All cases.
    pub overall: GroupMetrics,
    /// The figures compared with baselines.
    pub headline: Headline,
    /// Per case language.
    pub by_language: BTreeMap<String, GroupMetrics>,
    /// Per expected intent.
    pub by_intent: BTreeMap<String, GroupMetrics>,
    /// Intent classification: per-intent P/R/F1, confusions, calibration, coverage.
    pub intents: ClassificationMetrics,
    /// Every `Reply` call of the run.
    pub latency: LatencySummary,
}

impl CaseMetrics {
    /// Computes all figures from the judged cases.
    pub fn compute(results: &[CaseResult]) -> Result<Self, MetricsError> {
        let overall = GroupMetrics::compute(results);
        let mut languages: BTreeMap<String, Vec<&CaseResult>> = BTreeMap::new();
        let mut intents: BTreeMap<String, Vec<&CaseResult>> = BTreeMap::new();
        for result in results {
            languages
                .entry(result.lang.as_str().to_string())
                .or_default()
                .push(result);
            intents
                .entry(result.expected_intent.clone())
                .or_default()
                .push(result);
        }
        let latencies: Vec<f64> = results
            .iter()
            .flat_map(|result| result.latencies_ms.iter().copied())
            .collect();
        Ok(CaseMetrics {
            headline: Headline::from_group(&overall),
            overall,
            by_language: languages
                .into_iter()
                .map(|(lang, group)| (lang, GroupMetrics::compute(group)))
                .collect(),
            intents: ClassificationMetrics::compute(&intent_predictions(
                results,
                intents.keys().cloned().collect(),
            ))?,
            by_intent: intents
                .into_iter()
                .map(|(intent, group)| (intent, GroupMetrics::compute(group)))
                .collect(),
            latency: LatencySummary::from_samples(&latencies),
        })
    }
}

/// The intent half of the results, as a generic classification problem.
pub fn intent_predictions(results: &[CaseResult], labels: Vec<String>) -> Predictions {
    Predictions {
        labels,
        gold: results
            .iter()
            .map(|result| result.expected_intent.clone())
            .collect(),
        predicted: results
            .iter()
            .map(|result| {
                result
                    .got
                    .intent
                    .clone()
                    .unwrap_or_else(|| NO_LABEL.to_string())
            })
            .collect(),
        confidences: results
            .iter()
            .map(|result| result.got.intent_confidence)
            .collect(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cases::Lang;
    use crate::judge::Observation;

    /// A judged result built by hand, for metric tests.
    pub(crate) fn result(
        lang: Lang,
        expected: (Action, Option<HandoffReason>, &[&str], &str),
        got: (Action, Option<HandoffReason>, Option<&str>, &str, f64),
    ) -> CaseResult {
        let (expected_action, expected_reason, articles, intent) = expected;
        let (action, handoff_reason, source, got_intent, confidence) = got;
        let observation = Observation {
            action,
            handoff_reason,
            intent: Some(got_intent.to_string()),
            intent_confidence: confidence,
            anger: None,
            top_source: source.map(str::to_string),
            draft_articles: Vec::new(),
            error: None,
        };
        let expect = crate::cases::Expectation {
            action: expected_action,
            intent: intent.to_string(),
            articles: articles.iter().map(|a| a.to_string()).collect(),
            handoff_reason: expected_reason,
            draft_articles: Vec::new(),
        };
        CaseResult {
            id: format!("{intent}-{confidence}"),
            file: "t.jsonl".into(),
            line: 1,
            lang,
            problems: crate::judge::judge(&expect, &observation),
            expected_action,
            expected_intent: expect.intent,
            expected_articles: expect.articles,
            expected_reason,
            expected_draft_articles: expect.draft_articles,
            got: observation,
            latencies_ms: vec![10.0],
        }
    }

    use Action::{Answer, Clarify, Handoff};
    use HandoffReason::{CustomerRequest, NeedsAgent, NegativeSentiment};

    pub(crate) fn sample() -> Vec<CaseResult> {
        vec![
            // 1 zh: answer, right source → pass.
            result(
                Lang::Zh,
                (Answer, None, &["refund-timeline"], "refund_status"),
                (Answer, None, Some("refund-timeline"), "refund_status", 0.9),
            ),
            // 2 zh: answer, wrong source → fail, action right.
            result(
                Lang::Zh,
                (Answer, None, &["coupons"], "price_and_promotions"),
                (
                    Answer,
                    None,
                    Some("price-protection"),
                    "price_and_promotions",
                    0.7,
                ),
            ),
            // 3 en: answer expected, needless handoff → fail, unnecessary.
            result(
                Lang::En,
                (Answer, None, &["invoice"], "invoice_request"),
                (Handoff, Some(NeedsAgent), None, "complaint", 0.6),
            ),
            // 4 en: angry, handed off with the wrong reason → fail, still recalled.
            result(
                Lang::En,
                (Handoff, Some(NegativeSentiment), &[], "order_tracking"),
                (Handoff, Some(CustomerRequest), None, "order_tracking", 0.8),
            ),
            // 5 en: angry, answered → fail, missed.
            result(
                Lang::En,
                (Handoff, Some(NegativeSentiment), &[], "order_tracking"),
                (
                    Answer,
                    None,
                    Some("order-tracking-howto"),
                    "order_tracking",
                    0.95,
                ),
            ),
            // 6 mixed: explicit request → pass.
            result(
                Lang::Mixed,
                (Handoff, Some(CustomerRequest), &[], "human_agent"),
                (Handoff, Some(CustomerRequest), None, "human_agent", 0.99),
            ),
            // 7 mixed: clarify → pass, wrong intent.
            result(
                Lang::Mixed,
                (Clarify, None, &[], "out_of_scope"),
                (Clarify, None, None, "greeting", 0.3),
            ),
            // 8 zh: complaint handoff → pass (not part of recall figures).
            result(
                Lang::Zh,
                (Handoff, Some(NeedsAgent), &[], "complaint"),
                (Handoff, Some(NeedsAgent), None, "complaint", 0.85),
            ),
        ]
    }

    #[test]
    fn headline_figures_by_hand() {
        let metrics = CaseMetrics::compute(&sample()).expect("valid");
        let overall = &metrics.overall;
        assert_eq!((overall.cases, overall.passed), (8, 4));
        // Action right: 1, 2, 4, 6, 7, 8.
        assert_eq!(overall.action_accuracy, Ratio::new(6, 8));
        // Recall: angry 4 (yes), 5 (no); request 6 (yes).
        assert_eq!(overall.handoff_recall_angry, Ratio::new(1, 2));
        assert_eq!(overall.handoff_recall_request, Ratio::new(1, 1));
        assert_eq!(overall.handoff_recall, Ratio::new(2, 3));
        // Non-handoff expected: 1, 2, 3, 7 → one handed off.
        assert_eq!(overall.unnecessary_handoffs, Ratio::new(1, 4));
        // Sourced answers: 1 (ok), 2 (wrong), 3 (handed off, no source).
        assert_eq!(overall.source_accuracy, Ratio::new(1, 3));
        // Intent wrong only in 3 and 7.
        assert_eq!(overall.intent_accuracy, Ratio::new(6, 8));
        assert_eq!(metrics.headline.unnecessary_handoff_rate, Some(0.25));
        assert_eq!(metrics.latency.count, 8);
    }

    #[test]
    fn drafts_on_topic_count_only_annotated_handoffs() {
        let with_drafts = |expected: &[&str], got: &[&str], action| {
            let mut r = result(
                Lang::Zh,
                (Handoff, Some(CustomerRequest), &[], "human_agent"),
                (action, Some(CustomerRequest), None, "human_agent", 0.9),
            );
            r.expected_draft_articles = expected.iter().map(|a| a.to_string()).collect();
            r.got.draft_articles = got.iter().map(|a| a.to_string()).collect();
            r
        };
        let results = [
            with_drafts(
                &["damaged-item"],
                &["service-hours", "damaged-item"],
                Handoff,
            ),
            with_drafts(&["damaged-item", "wrong-item"], &["coupons"], Handoff),
            // Drafts are only shown with a handoff.
            with_drafts(&["refund-timeline"], &["refund-timeline"], Answer),
            // Not annotated: not counted.
            with_drafts(&[], &["coupons"], Handoff),
        ];
        let group = GroupMetrics::compute(&results);
        assert_eq!(group.drafts_on_topic, Ratio::new(1, 3));
        assert_eq!(
            GroupMetrics::compute(&sample()).drafts_on_topic,
            Ratio::new(0, 0)
        );
    }

    #[test]
    fn breakdowns_by_language_and_intent() {
        let metrics = CaseMetrics::compute(&sample()).expect("valid");
        assert_eq!(
            metrics.by_language.keys().collect::<Vec<_>>(),
            vec!["en", "mixed", "zh"]
        );
        let en = &metrics.by_language["en"];
        assert_eq!(en.cases, 3);
        assert_eq!(en.passed, 0);
        assert_eq!(en.action_accuracy, Ratio::new(1, 3));
        let tracking = &metrics.by_intent["order_tracking"];
        assert_eq!(tracking.handoff_recall_angry, Ratio::new(1, 2));
        assert_eq!(
            tracking.source_accuracy.value, None,
            "no sourced answer expected"
        );
        // Intent confusion: invoice_request→complaint, out_of_scope→greeting.
        assert_eq!(metrics.intents.top_confusions.len(), 2);
        assert!(
            metrics.intents.labels.contains(&"greeting".to_string()),
            "predicted-only labels get an axis"
        );
    }

    #[test]
    fn goals_and_directions() {
        assert_eq!(Metric::ActionAccuracy.goal_status(Some(0.95)), "met");
        assert_eq!(Metric::ActionAccuracy.goal_status(Some(0.949)), "MISSED");
        assert_eq!(
            Metric::UnnecessaryHandoffRate.goal_status(Some(0.02)),
            "met"
        );
        assert_eq!(
            Metric::UnnecessaryHandoffRate.goal_status(Some(0.05)),
            "MISSED"
        );
        assert_eq!(Metric::IntentAccuracy.goal_status(Some(0.1)), "");
        assert_eq!(Metric::HandoffRecall.goal_text(), "≥ 97%");
        assert_eq!(Metric::UnnecessaryHandoffRate.goal_text(), "≤ 3%");
    }
}
