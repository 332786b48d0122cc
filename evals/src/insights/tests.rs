use super::*;
use xiaoer_domain::{HandoffReason, Queue};
use xiaoer_service::store::{
    ConversationRow, FeedbackRecord, HandoffState, NewHandoff, RatingRecord,
};

const H: i64 = 3_600_000;
const D: i64 = 24 * H;

fn conversation(id: &str, language: &str, channel: &str, at: i64) -> ConversationRow {
    ConversationRow {
        id: id.into(),
        language: language.into(),
        channel: channel.into(),
        created_at_ms: at,
    }
}

fn turn(
    id: &str,
    role: TurnRole,
    intent: Intent,
    action: i32,
    at: i64,
    article: &str,
) -> TurnRecord {
    TurnRecord {
        id: id.into(),
        role,
        text: format!("text of {id}"),
        intent,
        sentiment: 0,
        anger: 0.0,
        action,
        articles: if article.is_empty() {
            vec![]
        } else {
            vec![article.into()]
        },
        at_ms: at,
        agent_id: String::new(),
    }
}

fn feedback(conversation: &str, turn: &str, verdict: &str) -> FeedbackRecord {
    FeedbackRecord {
        id: format!("f-{turn}"),
        conversation_id: conversation.into(),
        turn_id: turn.into(),
        suggestion_text: "draft".into(),
        verdict: verdict.into(),
        edited_text: String::new(),
        created_at_ms: 0,
    }
}

fn rating(conversation: &str, turn: &str, stars: i64, comment: &str) -> RatingRecord {
    RatingRecord {
        conversation_id: conversation.into(),
        turn_id: turn.into(),
        rating: stars,
        comment: comment.into(),
        at_ms: 0,
    }
}

/// Five conversations whose every figure is worked out by hand below.
fn rows() -> InsightRows {
    use Intent::*;
    use TurnRole::*;
    let (answer, clarify) = (pb::Action::Answer as i32, pb::Action::Clarify as i32);
    let c3_at = D + 5 * H;
    InsightRows {
        conversations: vec![
            conversation("c1", "zh", "web", D + H),
            conversation("c2", "en", "web", D + 2 * H),
            conversation("c3", "zh", "app", c3_at),
            conversation("c4", "en", LOAD_CHANNEL, 2 * D),
            conversation("c5", "mixed", "web", 3 * D),
        ],
        turns: vec![
            // c1: answered, never came back: verified.
            (
                "c1".into(),
                turn("c1-1", Customer, ShippingOptions, 0, D + H, ""),
            ),
            (
                "c1".into(),
                turn(
                    "c1-2",
                    Bot,
                    ShippingOptions,
                    answer,
                    D + H,
                    "shipping-times",
                ),
            ),
            // c2: a clarifying question, back two hours later: contained, not verified.
            (
                "c2".into(),
                turn("c2-1", Customer, ReturnRequest, 0, D + 2 * H, ""),
            ),
            (
                "c2".into(),
                turn("c2-2", Bot, ReturnRequest, clarify, D + 2 * H, ""),
            ),
            (
                "c2".into(),
                turn("c2-3", Customer, ReturnRequest, 0, D + 4 * H, ""),
            ),
            (
                "c2".into(),
                turn(
                    "c2-4",
                    Bot,
                    ReturnRequest,
                    answer,
                    D + 4 * H,
                    "return-policy",
                ),
            ),
            // c3: handed off, an agent answers.
            (
                "c3".into(),
                turn("c3-1", Customer, HumanAgent, 0, c3_at, ""),
            ),
            (
                "c3".into(),
                turn("c3-2", Agent, HumanAgent, 0, c3_at + H, ""),
            ),
            // c4: load test, left out.
            (
                "c4".into(),
                turn("c4-1", Customer, ProductInfo, 0, 2 * D, ""),
            ),
            // c5: out of scope, answered an hour before the report: pending.
            (
                "c5".into(),
                turn("c5-1", Customer, OutOfScope, 0, 3 * D, ""),
            ),
            (
                "c5".into(),
                turn("c5-2", Bot, OutOfScope, answer, 3 * D + H, ""),
            ),
        ],
        handoffs: vec![HandoffRecord {
            id: "h3".into(),
            conversation_id: "c3".into(),
            details: NewHandoff {
                reason: HandoffReason::CustomerRequest,
                queue: Queue::General,
                priority: 2,
                summary: String::new(),
                kb_articles_tried: vec![],
                suggested_replies: vec![],
                entities: Default::default(),
            },
            state: HandoffState::Resolved,
            created_at_ms: c3_at,
            due_at_ms: c3_at + 5 * 60_000,
            claimed_at_ms: Some(c3_at + 10 * 60_000),
            resolved_at_ms: Some(c3_at + H),
            claimed_by: "amy".into(),
            resolution: "done".into(),
        }],
        feedback: vec![
            feedback("c1", "c1-2", "used"),
            feedback("c3", "c3-2", "edited"),
            feedback("c4", "c4-1", "rejected"),
        ],
        ratings: vec![rating("c1", "c1-2", 5, ""), rating("c2", "c2-2", 1, "没用")],
    }
}

fn window() -> Window {
    Window {
        from_ms: 0,
        to_ms: 10 * D,
        resolution_ms: 24 * H,
        now_ms: 3 * D + 2 * H,
    }
}

#[test]
fn every_figure_matches_the_hand_count() {
    let report = compute(&rows(), &window());
    assert_eq!(report.load_test_conversations_excluded, 1);
    assert_eq!((report.conversations, report.messages), (4, 5));
    assert_eq!(
        report.per_day,
        vec![
            Day {
                date: "1970-01-02".into(),
                conversations: 3,
                messages: 4
            },
            Day {
                date: "1970-01-04".into(),
                conversations: 1,
                messages: 1
            },
        ]
    );
    let r = &report.resolution;
    assert_eq!(
        (r.conversations, r.contained, r.verified, r.pending),
        (4, 3, 1, 1)
    );
    assert_eq!(r.containment_rate, Some(0.75));
    assert_eq!(r.verified_rate, Some(1.0 / 3.0));
    let zh = &report.resolution_per_language["zh"];
    assert_eq!((zh.conversations, zh.contained, zh.verified), (2, 1, 1));
    let en = &report.resolution_per_language["en"];
    assert_eq!((en.conversations, en.contained, en.verified), (1, 1, 0));
    assert_eq!(report.resolution_per_language["mixed"].pending, 1);
    assert_eq!(
        report.resolution_per_language["mixed"].verified_rate, None,
        "its only contained conversation is pending: unknown, not 0%"
    );
    assert_eq!(report.resolution_per_intent["human_agent"].contained, 0);
    assert_eq!(report.messages_per_intent["return_request"], 2);
    let h = &report.handoffs;
    assert_eq!(h.total, 1);
    assert_eq!(h.by_reason["CUSTOMER_REQUEST"], 1);
    assert_eq!(h.by_queue["general"], 1);
    assert_eq!(h.time_to_claim.p50_s, Some(600.0));
    assert_eq!(h.time_to_resolve.p90_s, Some(3600.0));
    assert_eq!((h.with_due_time, h.sla_breached), (1, 1));
    assert_eq!((report.clarify.count, report.clarify.of), (1, 4));
    assert_eq!((report.out_of_scope.count, report.out_of_scope.of), (1, 5));
    assert_eq!(
        (
            report.drafts.total,
            report.drafts.used,
            report.drafts.edited,
            report.drafts.rejected
        ),
        (2, 1, 1, 0),
        "the load test's verdict is left out"
    );
    assert_eq!(report.drafts_per_intent["shipping_options"].used, 1);
    assert_eq!(report.drafts_per_intent["human_agent"].edited, 1);
    let s = &report.satisfaction;
    assert_eq!(
        (s.overall.count, s.overall.average, s.overall.csat),
        (2, Some(3.0), Some(0.5))
    );
    assert_eq!(s.per_article["shipping-times"].average, Some(5.0));
    assert_eq!(s.per_article[""].csat, Some(0.0));
    assert_eq!(s.lowest.len(), 1);
    assert_eq!(
        (s.lowest[0].turn_id.as_str(), s.lowest[0].comment.as_str()),
        ("c2-2", "没用")
    );
}

#[test]
fn an_empty_store_is_a_valid_empty_report() {
    let report = compute(&InsightRows::default(), &window());
    assert_eq!(report.conversations, 0);
    assert_eq!(report.resolution.containment_rate, None);
    assert!(markdown(&report).contains("No conversations in this window"));
    let dir = tempfile::tempdir().unwrap();
    write(&report, dir.path()).unwrap();
    for file in [
        "report.json",
        "report.md",
        "volume.png",
        "containment.png",
        "handoffs.png",
        "ratings.png",
    ] {
        assert!(dir.path().join(file).is_file(), "{file}");
    }
}

#[test]
fn a_shopper_coming_back_after_the_window_is_a_new_conversation_not_a_failure() {
    let mut rows = rows();
    // c2's second message two days after the clarifying question.
    for (_, turn) in &mut rows.turns {
        if turn.id == "c2-3" || turn.id == "c2-4" {
            turn.at_ms += 2 * D;
        }
    }
    let mut w = window();
    w.now_ms = 10 * D;
    let report = compute(&rows, &w);
    assert_eq!(report.resolution_per_language["en"].verified, 1);
}
