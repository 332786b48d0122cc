//! Contract ⇄ domain conversions, in one place: the proto types stop at the
//! gRPC edge and everything inside speaks the domain's enums and records.

use xiaoer_domain::{HandoffReason, Intent, SentimentLabel};
use xiaoer_kb::Hit;
use xiaoer_proto::v1 as pb;

use crate::clock::rfc3339;
use crate::error::ServiceError;
use crate::policy::OrderFact;
use crate::store::{DraftReply, HandoffRecord, HandoffState, TurnRecord};

/// The contract's sentiment label for a domain one.
pub fn sentiment_label_pb(label: SentimentLabel) -> pb::SentimentLabel {
    match label {
        SentimentLabel::Positive => pb::SentimentLabel::SentimentPositive,
        SentimentLabel::Neutral => pb::SentimentLabel::SentimentNeutral,
        SentimentLabel::Negative => pb::SentimentLabel::SentimentNegative,
        SentimentLabel::Angry => pb::SentimentLabel::SentimentAngry,
    }
}

/// The contract's handoff reason for a domain one.
pub fn handoff_reason_pb(reason: HandoffReason) -> pb::HandoffReason {
    match reason {
        HandoffReason::CustomerRequest => pb::HandoffReason::CustomerRequest,
        HandoffReason::NegativeSentiment => pb::HandoffReason::NegativeSentiment,
        HandoffReason::LowConfidence => pb::HandoffReason::LowConfidence,
        HandoffReason::NeedsAgent => pb::HandoffReason::NeedsAgent,
    }
}

/// The domain reason of a contract value; unspecified or unknown values
/// mean "no reason".
pub fn handoff_reason_from_pb(value: i32) -> Option<HandoffReason> {
    match pb::HandoffReason::try_from(value) {
        Ok(pb::HandoffReason::CustomerRequest) => Some(HandoffReason::CustomerRequest),
        Ok(pb::HandoffReason::NegativeSentiment) => Some(HandoffReason::NegativeSentiment),
        Ok(pb::HandoffReason::LowConfidence) => Some(HandoffReason::LowConfidence),
        Ok(pb::HandoffReason::NeedsAgent) => Some(HandoffReason::NeedsAgent),
        Ok(pb::HandoffReason::Unspecified) | Err(_) => None,
    }
}

/// The contract's handoff status for a stored state.
pub fn handoff_status_pb(state: HandoffState) -> pb::HandoffStatus {
    match state {
        HandoffState::Waiting => pb::HandoffStatus::Waiting,
        HandoffState::Claimed => pb::HandoffStatus::Claimed,
        HandoffState::Resolved => pb::HandoffStatus::Resolved,
    }
}

/// A `ListHandoffs` status filter: unspecified means any state.
pub fn handoff_state_filter(status: i32) -> Result<Option<HandoffState>, ServiceError> {
    match pb::HandoffStatus::try_from(status) {
        Ok(pb::HandoffStatus::Unspecified) => Ok(None),
        Ok(pb::HandoffStatus::Waiting) => Ok(Some(HandoffState::Waiting)),
        Ok(pb::HandoffStatus::Claimed) => Ok(Some(HandoffState::Claimed)),
        Ok(pb::HandoffStatus::Resolved) => Ok(Some(HandoffState::Resolved)),
        Err(_) => Err(ServiceError::invalid(
            "status",
            format!("unknown handoff status {status}"),
        )),
    }
}

/// One ranked intent as the contract shows it.
fn intent_prediction_pb((intent, confidence): &(Intent, f32)) -> pb::IntentPrediction {
    pb::IntentPrediction {
        name: intent.to_string(),
        confidence: *confidence,
    }
}

/// The top intent for a response.
pub fn intent_pb(ranked: &[(Intent, f32)]) -> Option<pb::IntentPrediction> {
    ranked.first().map(intent_prediction_pb)
}

/// The runners-up (at most three) for a response.
pub fn alternatives_pb(ranked: &[(Intent, f32)]) -> Vec<pb::IntentPrediction> {
    ranked
        .iter()
        .skip(1)
        .take(3)
        .map(intent_prediction_pb)
        .collect()
}

/// Sentiment label and calibrated P(angry) for a response.
pub fn sentiment_pb(label: SentimentLabel, anger: f32) -> pb::Sentiment {
    pb::Sentiment {
        label: sentiment_label_pb(label) as i32,
        score: anger,
    }
}

/// A search hit as a cited source.
pub fn source_pb(hit: Hit) -> pb::Source {
    pb::Source {
        article_id: hit.article_id,
        title: hit.title,
        score: hit.score,
        snippet: hit.snippet,
    }
}

/// A stored or fresh draft as the contract's suggested reply.
pub fn suggested_reply_pb(draft: &DraftReply) -> pb::SuggestedReply {
    pb::SuggestedReply {
        text: draft.text.clone(),
        article_id: draft.article_id.clone(),
        score: draft.score,
        origin: if draft.article_id.is_empty() {
            "template"
        } else {
            "article"
        }
        .into(),
    }
}

/// The storefront's order facts as the policy reads them.
pub fn order_facts(customer: Option<&pb::CustomerContext>) -> Vec<OrderFact> {
    customer
        .map(|c| {
            c.orders
                .iter()
                .map(|o| OrderFact {
                    order_id: o.order_id.clone(),
                    status: o.status.clone(),
                    carrier: o.carrier.clone(),
                    tracking_number: o.tracking_number.clone(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Contract form of a stored handoff with its transcript.
pub fn handoff_pb(record: &HandoffRecord, transcript: &[TurnRecord]) -> pb::Handoff {
    pb::Handoff {
        handoff_id: record.id.clone(),
        conversation_id: record.conversation_id.clone(),
        reason: handoff_reason_pb(record.details.reason) as i32,
        status: handoff_status_pb(record.state) as i32,
        queue: record.details.queue.to_string(),
        priority: record.details.priority,
        summary: record.details.summary.clone(),
        transcript: transcript.iter().map(turn_pb).collect(),
        kb_articles_tried: record.details.kb_articles_tried.clone(),
        suggested_replies: record
            .details
            .suggested_replies
            .iter()
            .map(suggested_reply_pb)
            .collect(),
        entities: record.details.entities.clone().into_iter().collect(),
        created_at: rfc3339(record.created_at_ms),
        claimed_by: record.claimed_by.clone(),
        resolution: record.resolution.clone(),
        // 0: made before due times existed; i64::MAX: the shop is never
        // open again (no hours left in shop.toml), so nothing is due.
        due_at: optional_time(Some(record.due_at_ms).filter(|ms| (1..i64::MAX).contains(ms))),
        claimed_at: optional_time(record.claimed_at_ms),
        resolved_at: optional_time(record.resolved_at_ms),
    }
}

/// RFC 3339 for a time that may not have happened yet; empty when not.
fn optional_time(ms: Option<i64>) -> String {
    ms.map(rfc3339).unwrap_or_default()
}

/// Contract form of a stored turn.
pub fn turn_pb(turn: &TurnRecord) -> pb::Turn {
    pb::Turn {
        turn_id: turn.id.clone(),
        agent_id: turn.agent_id.clone(),
        role: turn.role.to_string(),
        text: turn.text.clone(),
        intent: turn.intent.to_string(),
        sentiment: Some(pb::Sentiment {
            label: turn.sentiment,
            score: turn.anger,
        }),
        at: rfc3339(turn.at_ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_domain_reason_round_trips_through_the_contract() {
        let numbers: Vec<i32> = HandoffReason::ALL
            .iter()
            .map(|r| handoff_reason_pb(*r) as i32)
            .collect();
        assert_eq!(
            numbers,
            vec![1, 2, 3, 4],
            "numbers follow the contract order"
        );
        for reason in HandoffReason::ALL {
            assert_eq!(
                handoff_reason_from_pb(handoff_reason_pb(*reason) as i32),
                Some(*reason)
            );
        }
        assert_eq!(handoff_reason_from_pb(0), None);
        assert_eq!(handoff_reason_from_pb(99), None);
    }

    #[test]
    fn unknown_status_filter_is_invalid_argument() {
        assert!(matches!(handoff_state_filter(0), Ok(None)));
        assert!(matches!(
            handoff_state_filter(2),
            Ok(Some(HandoffState::Claimed))
        ));
        assert!(handoff_state_filter(9).is_err());
    }
}
