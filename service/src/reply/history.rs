//! What a conversation's stored turns tell the policy: whether the bot just
//! asked a clarifying question, how angry the shopper has been, and the
//! topic they came about.

use xiaoer_domain::TurnRole;
use xiaoer_proto::v1 as pb;

use crate::policy::{History, NON_TOPIC_INTENTS};
use crate::store::TurnRecord;

/// Summarises earlier turns (oldest first) for the policy.
pub fn summarise(turns: &[TurnRecord], handed_off: bool) -> History {
    let customer_turns = || turns.iter().filter(|t| t.role == TurnRole::Customer);
    let last_bot_clarified = turns
        .iter()
        .rev()
        .find(|t| t.role == TurnRole::Bot)
        .is_some_and(|t| t.action == pb::Action::Clarify as i32);
    History {
        handed_off,
        last_bot_clarified,
        earlier_anger: customer_turns().map(|t| t.anger).collect(),
        last_topic_intent: customer_turns()
            .rev()
            .map(|t| t.intent)
            .find(|i| !NON_TOPIC_INTENTS.contains(i)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xiaoer_domain::Intent;

    fn turn(role: TurnRole, intent: Intent, action: pb::Action, anger: f32) -> TurnRecord {
        TurnRecord {
            id: "t".into(),
            role,
            text: String::new(),
            intent,
            sentiment: 0,
            anger,
            action: action as i32,
            articles: vec![],
            at_ms: 0,
            agent_id: String::new(),
        }
    }

    #[test]
    fn history_reads_clarify_streak_anger_and_topic() {
        use TurnRole::{Bot, Customer};
        let turns = vec![
            turn(Customer, Intent::RefundStatus, pb::Action::Unspecified, 0.1),
            turn(Bot, Intent::RefundStatus, pb::Action::Answer, 0.0),
            turn(Customer, Intent::OutOfScope, pb::Action::Unspecified, 0.2),
            turn(Bot, Intent::OutOfScope, pb::Action::Clarify, 0.0),
        ];
        let h = summarise(&turns, false);
        assert!(h.last_bot_clarified);
        assert_eq!(h.earlier_anger, vec![0.1, 0.2]);
        assert_eq!(h.last_topic_intent, Some(Intent::RefundStatus));
    }

    #[test]
    fn an_empty_conversation_has_no_topic_and_no_streak() {
        let h = summarise(&[], true);
        assert!(h.handed_off && !h.last_bot_clarified);
        assert_eq!(h.last_topic_intent, None);
    }
}
