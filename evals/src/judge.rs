//! Pass/fail judgement of one case from what the bot said on its last turn.
//!
//! Kept free of I/O so the rules (action must match; an `ANSWER` with
//! articles must cite one of them first; a `HANDOFF` must give the expected
//! reason; intent never fails a case) are tested on their own.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use xiaoer_proto::v1 as pb;

use xiaoer_domain::HandoffReason;
use xiaoer_service::conversions::handoff_reason_from_pb;

use crate::cases::{Action, Case, Expectation, Lang, Origin};

/// The parts of a `ReplyResponse` the suite scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// The decision.
    pub action: Action,
    /// The handoff reason, when a handoff came back with one.
    pub handoff_reason: Option<HandoffReason>,
    /// Predicted intent name, when the response named one.
    pub intent: Option<String>,
    /// Its confidence, clamped to `0..=1` (NaN counts as 0) so a misbehaving
    /// server cannot break the calibration maths.
    pub intent_confidence: f64,
    /// Calibrated P(angry) the server reported, so a report shows how close
    /// each case came to the anger handoff (absent in older reports).
    #[serde(default)]
    pub anger: Option<f64>,
    /// Article id of the first source, if any.
    pub top_source: Option<String>,
    /// Articles the handoff's drafts are taken from (absent in older reports).
    #[serde(default)]
    pub draft_articles: Vec<String>,
    /// The gRPC failure, when the call did not return a response.
    pub error: Option<String>,
}

impl Observation {
    /// Extracts the scored fields from a response.
    pub fn from_response(response: &pb::ReplyResponse) -> Self {
        let intent = response
            .intent
            .as_ref()
            .filter(|intent| !intent.name.is_empty());
        let confidence = intent
            .map(|intent| f64::from(intent.confidence))
            .unwrap_or(0.0);
        Observation {
            action: Action::from_proto(response.action),
            handoff_reason: response
                .handoff
                .as_ref()
                .and_then(|handoff| handoff_reason_from_pb(handoff.reason)),
            intent: intent.map(|intent| intent.name.clone()),
            intent_confidence: if confidence.is_nan() {
                0.0
            } else {
                confidence.clamp(0.0, 1.0)
            },
            anger: response
                .sentiment
                .as_ref()
                .map(|sentiment| f64::from(sentiment.score))
                .filter(|score| score.is_finite()),
            top_source: response
                .sources
                .first()
                .map(|source| source.article_id.clone()),
            draft_articles: response
                .handoff
                .iter()
                .flat_map(|handoff| &handoff.suggested_replies)
                .filter(|draft| !draft.article_id.is_empty())
                .map(|draft| draft.article_id.clone())
                .collect(),
            error: None,
        }
    }

    /// A call that failed: nothing was decided.
    pub fn from_error(status: &tonic::Status) -> Self {
        Observation {
            action: Action::Unspecified,
            handoff_reason: None,
            intent: None,
            intent_confidence: 0.0,
            anger: None,
            top_source: None,
            draft_articles: Vec::new(),
            error: Some(format!("{:?}: {}", status.code(), status.message())),
        }
    }
}

/// Everything a case produced: the last turn's observation, per-call
/// latencies and the judgement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseResult {
    /// Case id.
    pub id: String,
    /// Where the case is written.
    pub file: String,
    /// Its line.
    pub line: usize,
    /// Its language.
    pub lang: Lang,
    /// What was expected of the last turn.
    pub expected_action: Action,
    /// Expected intent.
    pub expected_intent: String,
    /// Acceptable top sources.
    pub expected_articles: Vec<String>,
    /// Expected handoff reason.
    pub expected_reason: Option<HandoffReason>,
    /// Articles the handoff's drafts should include one of.
    #[serde(default)]
    pub expected_draft_articles: Vec<String>,
    /// What the last turn produced (or the first failed call).
    pub got: Observation,
    /// Milliseconds per `Reply` call, in turn order.
    pub latencies_ms: Vec<f64>,
    /// Why the case failed; empty when it passed.
    pub problems: Vec<String>,
}

impl CaseResult {
    /// Judges `got` against the case and records everything.
    pub fn new(case: &Case, got: Observation, latencies_ms: Vec<f64>) -> Self {
        let problems = judge(&case.expect, &got);
        let Origin { file, line } = &case.origin;
        CaseResult {
            id: case.id.clone(),
            file: file.display().to_string(),
            line: *line,
            lang: case.lang,
            expected_action: case.expect.action,
            expected_intent: case.expect.intent.clone(),
            expected_articles: case.expect.articles.clone(),
            expected_reason: case.expect.handoff_reason,
            expected_draft_articles: case.expect.draft_articles.clone(),
            got,
            latencies_ms,
            problems,
        }
    }

    /// True when no rule was broken.
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }

    /// Whether the intent was right (scored separately from pass/fail).
    pub fn intent_correct(&self) -> bool {
        self.got.intent.as_deref() == Some(self.expected_intent.as_str())
    }

    /// One line for the console: what was expected and what came back.
    pub fn failure_line(&self) -> String {
        let mut line = format!(
            "FAIL {} ({}:{}): expected {}",
            self.id, self.file, self.line, self.expected_action
        );
        if let Some(reason) = self.expected_reason {
            let _ = write!(line, " reason={reason}");
        }
        if !self.expected_articles.is_empty() {
            let _ = write!(line, " articles=[{}]", self.expected_articles.join(","));
        }
        let _ = write!(line, " intent={}", self.expected_intent);
        if let Some(error) = &self.got.error {
            let _ = write!(line, "; got error {error}");
            return line;
        }
        let _ = write!(line, "; got {}", self.got.action);
        if let Some(reason) = self.got.handoff_reason {
            let _ = write!(line, " reason={reason}");
        }
        let _ = write!(
            line,
            " source={}",
            self.got.top_source.as_deref().unwrap_or("-")
        );
        let _ = write!(
            line,
            " intent={} ({:.2})",
            self.got.intent.as_deref().unwrap_or("-"),
            self.got.intent_confidence
        );
        line
    }
}

/// The rules; returns what is wrong, empty when the case passes.
pub fn judge(expect: &Expectation, got: &Observation) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(error) = &got.error {
        problems.push(format!("call failed: {error}"));
        return problems;
    }
    if got.action != expect.action {
        problems.push(format!(
            "action {} instead of {}",
            got.action, expect.action
        ));
        return problems;
    }
    match expect.action {
        Action::Answer if !expect.articles.is_empty() => {
            let cited = got.top_source.as_deref();
            if !cited.is_some_and(|article| expect.articles.iter().any(|wanted| wanted == article))
            {
                problems.push(format!(
                    "top source {} not in [{}]",
                    cited.unwrap_or("(none)"),
                    expect.articles.join(", ")
                ));
            }
        }
        Action::Handoff if got.handoff_reason != expect.handoff_reason => {
            problems.push(format!(
                "handoff reason {} instead of {}",
                got.handoff_reason.map_or("(none)", HandoffReason::as_str),
                expect
                    .handoff_reason
                    .map_or("(none)", HandoffReason::as_str),
            ));
        }
        _ => {}
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expect(action: Action, articles: &[&str], reason: Option<HandoffReason>) -> Expectation {
        Expectation {
            action,
            intent: "order_tracking".to_string(),
            articles: articles.iter().map(|a| a.to_string()).collect(),
            handoff_reason: reason,
            draft_articles: Vec::new(),
        }
    }

    fn got(
        action: Action,
        source: Option<&str>,
        reason: Option<HandoffReason>,
        intent: &str,
    ) -> Observation {
        Observation {
            action,
            handoff_reason: reason,
            intent: Some(intent.to_string()),
            intent_confidence: 0.8,
            anger: None,
            top_source: source.map(str::to_string),
            draft_articles: Vec::new(),
            error: None,
        }
    }

    #[test]
    fn answer_needs_an_acceptable_top_source() {
        let wanted = expect(
            Action::Answer,
            &["order-tracking-howto", "shipping-times"],
            None,
        );
        assert!(judge(
            &wanted,
            &got(Action::Answer, Some("shipping-times"), None, "x")
        )
        .is_empty());
        let wrong = judge(&wanted, &got(Action::Answer, Some("coupons"), None, "x"));
        assert_eq!(
            wrong,
            vec!["top source coupons not in [order-tracking-howto, shipping-times]".to_string()]
        );
        assert_eq!(
            judge(&wanted, &got(Action::Answer, None, None, "x")).len(),
            1
        );
        // No articles expected (greetings): any source or none is fine.
        let greeting = expect(Action::Answer, &[], None);
        assert!(judge(&greeting, &got(Action::Answer, Some("coupons"), None, "x")).is_empty());
    }

    #[test]
    fn handoff_needs_the_reason_and_intent_never_fails() {
        let wanted = expect(Action::Handoff, &[], Some(HandoffReason::NegativeSentiment));
        let right = got(
            Action::Handoff,
            None,
            Some(HandoffReason::NegativeSentiment),
            "complaint",
        );
        assert!(
            judge(&wanted, &right).is_empty(),
            "a wrong intent does not fail the case"
        );
        let wrong = got(
            Action::Handoff,
            None,
            Some(HandoffReason::CustomerRequest),
            "order_tracking",
        );
        assert_eq!(
            judge(&wanted, &wrong),
            vec!["handoff reason CUSTOMER_REQUEST instead of NEGATIVE_SENTIMENT".to_string()]
        );
    }

    #[test]
    fn wrong_action_and_errors_fail() {
        let wanted = expect(Action::Clarify, &[], None);
        assert_eq!(
            judge(&wanted, &got(Action::Answer, None, None, "x")),
            vec!["action ANSWER instead of CLARIFY".to_string()]
        );
        let failed = Observation::from_error(&tonic::Status::unavailable("down"));
        assert_eq!(
            judge(&wanted, &failed),
            vec!["call failed: Unavailable: down".to_string()]
        );
    }

    #[test]
    fn observation_reads_the_response() {
        let response = pb::ReplyResponse {
            action: pb::Action::Handoff as i32,
            intent: Some(pb::IntentPrediction {
                name: "human_agent".into(),
                confidence: 1.5,
            }),
            sentiment: Some(pb::Sentiment {
                score: 0.25,
                ..Default::default()
            }),
            handoff: Some(pb::Handoff {
                reason: pb::HandoffReason::CustomerRequest as i32,
                ..Default::default()
            }),
            sources: vec![pb::Source {
                article_id: "a".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let observation = Observation::from_response(&response);
        assert_eq!(observation.action, Action::Handoff);
        assert_eq!(
            observation.handoff_reason,
            Some(HandoffReason::CustomerRequest)
        );
        assert_eq!(observation.intent.as_deref(), Some("human_agent"));
        assert_eq!(observation.intent_confidence, 1.0);
        assert_eq!(observation.top_source.as_deref(), Some("a"));
        assert_eq!(observation.anger, Some(0.25));
        let empty = Observation::from_response(&pb::ReplyResponse::default());
        assert_eq!(empty.action, Action::Unspecified);
        assert_eq!(empty.intent, None);
        assert_eq!(empty.anger, None);
    }

    #[test]
    fn failure_line_shows_both_sides() {
        let case = Case {
            id: "hn-9".into(),
            lang: Lang::En,
            turns: vec!["hi".into()],
            expect: expect(Action::Answer, &["order-tracking-howto"], None),
            customer: None,
            origin: Origin {
                file: "cases/x.jsonl".into(),
                line: 7,
            },
        };
        let result = CaseResult::new(
            &case,
            got(
                Action::Handoff,
                None,
                Some(HandoffReason::NegativeSentiment),
                "complaint",
            ),
            vec![3.0],
        );
        assert!(!result.passed());
        assert_eq!(
            result.failure_line(),
            "FAIL hn-9 (cases/x.jsonl:7): expected ANSWER articles=[order-tracking-howto] intent=order_tracking; \
             got HANDOFF reason=NEGATIVE_SENTIMENT source=- intent=complaint (0.80)"
        );
    }
}
