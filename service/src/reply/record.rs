//! Stage 5, record: the shopper's turn and the bot's answer, masked, written
//! with any new handoff in one transaction; retries with the same client
//! turn id get the first answer back.

use xiaoer_domain::{HandoffReason, TurnRole};
use xiaoer_privacy::mask_keeping;
use xiaoer_proto::v1 as pb;

use super::render::Rendered;
use super::Understanding;
use crate::conversions::sentiment_label_pb;
use crate::error::ServiceError;
use crate::policy::OrderFact;
use crate::store::TurnRecord;

/// The order and tracking numbers the storefront passed: they stay readable
/// in stored text whatever their shape (long all-digit order numbers exist).
pub fn known_numbers(orders: &[OrderFact]) -> Vec<&str> {
    orders
        .iter()
        .flat_map(|o| [o.order_id.as_str(), o.tracking_number.as_str()])
        .filter(|n| !n.is_empty())
        .collect()
}

/// The stored form of the shopper's message, masked; `known` numbers stay.
pub fn customer_turn(
    text: &str,
    known: &[&str],
    understanding: &Understanding,
    at_ms: i64,
) -> TurnRecord {
    TurnRecord {
        id: new_turn_id(),
        role: TurnRole::Customer,
        text: mask_keeping(text, known),
        intent: understanding.top_intent(),
        sentiment: sentiment_label_pb(understanding.sentiment) as i32,
        anger: understanding.anger,
        action: 0,
        articles: vec![],
        at_ms,
        agent_id: String::new(),
    }
}

/// The stored form of the bot's answer, masked (it may quote the shopper's
/// order facts); `known` numbers stay.
pub fn bot_turn(
    rendered: &Rendered,
    known: &[&str],
    understanding: &Understanding,
    at_ms: i64,
) -> TurnRecord {
    TurnRecord {
        id: new_turn_id(),
        role: TurnRole::Bot,
        text: mask_keeping(&rendered.text, known),
        intent: understanding.top_intent(),
        sentiment: 0,
        anger: 0.0,
        action: rendered.action as i32,
        articles: rendered
            .sources
            .iter()
            .map(|s| s.article_id.clone())
            .collect(),
        at_ms,
        agent_id: String::new(),
    }
}

/// A fresh id for a stored turn or feedback record.
pub fn new_turn_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A response stored for idempotent replay, decoded.
pub fn decode_response(bytes: &[u8]) -> Result<pb::ReplyResponse, ServiceError> {
    prost::Message::decode(bytes)
        .map_err(|e| ServiceError::Internal(format!("stored response unreadable: {e}")))
}

/// The `action` label of the reply metrics.
pub fn action_metric(action: pb::Action) -> &'static str {
    match action {
        pb::Action::Answer => "answer",
        pb::Action::Clarify => "clarify",
        pb::Action::Handoff => "handoff",
        pb::Action::Unspecified => "unspecified",
    }
}

/// The `reason` label of the handoff metrics.
pub fn reason_metric(reason: HandoffReason) -> &'static str {
    match reason {
        HandoffReason::CustomerRequest => "customer_request",
        HandoffReason::NegativeSentiment => "negative_sentiment",
        HandoffReason::LowConfidence => "low_confidence",
        HandoffReason::NeedsAgent => "needs_agent",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xiaoer_domain::{Intent, SentimentLabel};
    use xiaoer_models::Language;

    fn understood() -> Understanding {
        Understanding {
            text: String::new(),
            lang: Language::Zh,
            embedding: vec![],
            intents: vec![(Intent::ModifyOrder, 0.9)],
            out_of_scope: false,
            sentiment: SentimentLabel::Negative,
            anger: 0.3,
            asks_staff_action: false,
        }
    }

    #[test]
    fn both_turns_are_masked_before_they_are_stored() {
        let u = understood();
        let customer = customer_turn("改地址，电话13812345678", &[], &u, 7);
        assert!(!customer.text.contains("13812345678"), "{}", customer.text);
        assert_eq!(
            (customer.role, customer.intent, customer.at_ms),
            (TurnRole::Customer, Intent::ModifyOrder, 7)
        );
        assert_eq!(
            customer.sentiment,
            pb::SentimentLabel::SentimentNegative as i32
        );
        let rendered = Rendered {
            action: pb::Action::Answer,
            text: "已记录 13812345678".into(),
            sources: vec![],
        };
        let bot = bot_turn(&rendered, &[], &u, 7);
        assert!(!bot.text.contains("13812345678"));
        assert_eq!(bot.role, TurnRole::Bot);
        assert_ne!(bot.id, customer.id);
    }

    #[test]
    fn the_storefront_s_order_numbers_stay_readable_whatever_their_shape() {
        let orders = [OrderFact {
            order_id: "110105194912310021".into(),
            tracking_number: "SF1234567890123".into(),
            ..OrderFact::default()
        }];
        let known = known_numbers(&orders);
        let turn = customer_turn("110105194912310021 到哪了", &known, &understood(), 0);
        assert!(turn.text.contains("110105194912310021"), "{}", turn.text);
        let unknown = customer_turn("110105194912310021 到哪了", &[], &understood(), 0);
        assert!(
            !unknown.text.contains("110105194912310021"),
            "ID-shaped and unnamed: masked"
        );
    }

    #[test]
    fn a_corrupt_stored_response_is_an_internal_error() {
        assert!(matches!(
            decode_response(&[0xff, 0xff]),
            Err(ServiceError::Internal(_))
        ));
    }
}
