//! The human half end to end (issue #22), through the real server: the
//! helpdesk watches handoffs live, the claiming agent replies through
//! xiaoer, the storefront's conversation watch delivers that reply, the
//! shopper's follow-ups reach the agent and the bot resumes after resolve.

mod common;

use std::sync::OnceLock;
use std::time::Duration;

use common::{reply, TestServer};
use tokio_stream::StreamExt;
use tonic::transport::Channel;
use tonic::{Code, Streaming};
use xiaoer_proto::v1 as pb;
use xiaoer_proto::v1::auto_reply_client::AutoReplyClient;
use xiaoer_proto::v1::handoffs_client::HandoffsClient;
use xiaoer_service::config::ServeArgs;

/// How long an event may take to reach a watcher (the contract says 1 s;
/// the test allows for a loaded CI machine).
const EVENT_WAIT: Duration = Duration::from_secs(5);

fn server() -> &'static TestServer {
    static SERVER: OnceLock<TestServer> = OnceLock::new();
    SERVER.get_or_init(|| TestServer::start(ServeArgs::default()))
}

async fn clients() -> (AutoReplyClient<Channel>, HandoffsClient<Channel>) {
    let channel = server().plaintext_channel().await.unwrap();
    (
        AutoReplyClient::new(channel.clone()),
        HandoffsClient::new(channel),
    )
}

fn conversation() -> String {
    format!("live-{}", uuid::Uuid::new_v4().simple())
}

async fn watch_all(
    helpdesk: &mut HandoffsClient<Channel>,
    after: &str,
) -> Streaming<pb::HandoffEvent> {
    helpdesk
        .watch_handoffs(pb::WatchHandoffsRequest {
            queues: vec![],
            after_cursor: after.into(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// The next event of `handoff_id` (other tests' handoffs share the server).
async fn next_event_of(
    stream: &mut Streaming<pb::HandoffEvent>,
    handoff_id: &str,
) -> pb::HandoffEvent {
    loop {
        let event = tokio::time::timeout(EVENT_WAIT, stream.next())
            .await
            .unwrap_or_else(|_| panic!("no event for {handoff_id} within {EVENT_WAIT:?}"))
            .expect("stream open")
            .expect("event");
        if event.handoff.as_ref().map(|h| h.handoff_id.as_str()) == Some(handoff_id) {
            return event;
        }
    }
}

async fn next_turn(stream: &mut Streaming<pb::Turn>) -> pb::Turn {
    tokio::time::timeout(EVENT_WAIT, stream.next())
        .await
        .expect("a turn within the wait")
        .expect("stream open")
        .expect("turn")
}

/// Hands a fresh conversation off with an explicit request.
async fn hand_off(shop: &mut AutoReplyClient<Channel>, conv: &str) -> pb::Handoff {
    reply(shop, conv, "我买的大衣袖子上有个洞，订单号 TB20261203555").await;
    let r = reply(shop, conv, "你们到底有没有人管？转人工！").await;
    assert_eq!(r.action, pb::Action::Handoff as i32, "{r:?}");
    r.handoff.expect("handoff")
}

async fn claim(helpdesk: &mut HandoffsClient<Channel>, id: &str, agent: &str) -> pb::Handoff {
    helpdesk
        .claim_handoff(pb::ClaimHandoffRequest {
            handoff_id: id.into(),
            agent_id: agent.into(),
        })
        .await
        .unwrap()
        .into_inner()
}

fn post(id: &str, agent: &str, text: &str) -> pb::PostAgentMessageRequest {
    pb::PostAgentMessageRequest {
        handoff_id: id.into(),
        agent_id: agent.into(),
        text: text.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_handoff_lives_through_watch_claim_reply_and_resolve() {
    let (mut shop, mut helpdesk) = clients().await;
    let mut queue = watch_all(&mut helpdesk, "").await;
    let conv = conversation();
    let handoff = hand_off(&mut shop, &conv).await;
    let id = handoff.handoff_id.clone();
    assert!(!handoff.due_at.is_empty(), "a due time: {handoff:?}");
    // The drafts answer the conversation's problem (the torn coat), not only
    // the angry last message.
    assert!(
        handoff
            .suggested_replies
            .iter()
            .any(|d| d.article_id == "damaged-item"),
        "{:?}",
        handoff.suggested_replies
    );
    assert!(handoff.due_at > handoff.created_at);

    let created = next_event_of(&mut queue, &id).await;
    assert_eq!(created.kind, pb::HandoffEventKind::Created as i32);
    assert!(created.cursor.starts_with("ev-"), "{}", created.cursor);

    // The storefront watches the conversation: the history first.
    let mut delivery = shop
        .watch_conversation(pb::WatchConversationRequest {
            conversation_id: conv.clone(),
            after_turn_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let roles: Vec<String> = [
        next_turn(&mut delivery).await,
        next_turn(&mut delivery).await,
        next_turn(&mut delivery).await,
        next_turn(&mut delivery).await,
    ]
    .into_iter()
    .map(|t| t.role)
    .collect();
    assert_eq!(roles, ["customer", "bot", "customer", "bot"]);

    let claimed = claim(&mut helpdesk, &id, "agent-li").await;
    assert!(!claimed.claimed_at.is_empty());
    assert_eq!(
        next_event_of(&mut queue, &id).await.kind,
        pb::HandoffEventKind::Claimed as i32
    );

    // The agent starts from a suggested reply, edits it and sends.
    let draft = claimed
        .suggested_replies
        .first()
        .map(|d| d.text.clone())
        .expect("drafts on the handoff");
    let sent = format!("{draft} 我们会为您补发一件新的大衣。");
    let turn = helpdesk
        .post_agent_message(pb::PostAgentMessageRequest {
            suggestion_text: draft.clone(),
            client_message_id: "m-1".into(),
            ..post(&id, "agent-li", &sent)
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (turn.role.as_str(), turn.agent_id.as_str()),
        ("agent", "agent-li")
    );
    assert!(!turn.turn_id.is_empty());
    let event = next_event_of(&mut queue, &id).await;
    assert_eq!(event.kind, pb::HandoffEventKind::AgentMessage as i32);
    let delivered = next_turn(&mut delivery).await;
    assert_eq!(
        delivered.turn_id, turn.turn_id,
        "the storefront gets the agent's turn"
    );
    assert_eq!(delivered.text, sent);

    // A retry of the same message stores nothing twice.
    let retried = helpdesk
        .post_agent_message(pb::PostAgentMessageRequest {
            suggestion_text: draft.clone(),
            client_message_id: "m-1".into(),
            ..post(&id, "agent-li", &sent)
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retried.turn_id, turn.turn_id);
    let store = server().store().await;
    let verdicts: Vec<String> = store
        .all_feedback()
        .await
        .unwrap()
        .into_iter()
        .filter(|f| f.turn_id == turn.turn_id)
        .map(|f| f.verdict)
        .collect();
    assert_eq!(verdicts, ["edited"], "the draft verdict, recorded once");

    // The shopper writes again: it reaches the agent, not the bot.
    let follow_up = reply(&mut shop, &conv, "好的，那大概什么时候能发出？").await;
    assert_eq!(follow_up.action, pb::Action::Handoff as i32);
    let event = next_event_of(&mut queue, &id).await;
    assert_eq!(event.kind, pb::HandoffEventKind::CustomerMessage as i32);
    let transcript = &event.handoff.as_ref().unwrap().transcript;
    assert_eq!(transcript.last().map(|t| t.role.as_str()), Some("customer"));
    assert_eq!(next_turn(&mut delivery).await.role, "customer");

    let resolved = helpdesk
        .resolve_handoff(pb::ResolveHandoffRequest {
            handoff_id: id.clone(),
            resolution: "已安排补发".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!resolved.resolved_at.is_empty());
    assert_eq!(
        next_event_of(&mut queue, &id).await.kind,
        pb::HandoffEventKind::Resolved as i32
    );

    // The bot has the conversation again, and says so.
    let back = reply(&mut shop, &conv, "请问你们支持七天无理由退货吗？").await;
    assert_eq!(back.action, pb::Action::Answer as i32, "{back:?}");
    assert!(back.text.contains("人工客服已处理完"), "{}", back.text);
    let next = reply(&mut shop, &conv, "退货运费谁出？").await;
    assert!(
        !next.text.contains("人工客服已处理完"),
        "said once: {}",
        next.text
    );
}

#[tokio::test]
async fn a_watcher_resuming_from_its_cursor_misses_nothing_and_repeats_nothing() {
    let (mut shop, mut helpdesk) = clients().await;
    let mut first = watch_all(&mut helpdesk, "").await;
    let conv = conversation();
    let id = hand_off(&mut shop, &conv).await.handoff_id;
    let created = next_event_of(&mut first, &id).await;
    drop(first);

    // Things happen while nobody watches.
    claim(&mut helpdesk, &id, "agent-wu").await;
    helpdesk
        .post_agent_message(post(&id, "agent-wu", "您好，我来帮您处理。"))
        .await
        .unwrap();

    let mut resumed = watch_all(&mut helpdesk, &created.cursor).await;
    let kinds = [
        next_event_of(&mut resumed, &id).await.kind,
        next_event_of(&mut resumed, &id).await.kind,
    ];
    assert_eq!(
        kinds,
        [
            pb::HandoffEventKind::Claimed as i32,
            pb::HandoffEventKind::AgentMessage as i32
        ],
        "the created event is not repeated; nothing is missed"
    );
}

#[tokio::test]
async fn bad_helpdesk_input_is_refused_and_nothing_is_stored() {
    let (mut shop, mut helpdesk) = clients().await;
    let conv = conversation();
    let id = hand_off(&mut shop, &conv).await.handoff_id;
    let store = server().store().await;
    let turns_before = store.turns_after(&conv, 0).await.unwrap().len();

    let code = |r: Result<tonic::Response<pb::Turn>, tonic::Status>| r.unwrap_err().code();
    assert_eq!(
        code(
            helpdesk
                .post_agent_message(post("no-such-handoff", "a", "hi"))
                .await
        ),
        Code::NotFound
    );
    assert_eq!(
        code(
            helpdesk
                .post_agent_message(post(&id, "agent-a", "您好"))
                .await
        ),
        Code::FailedPrecondition,
        "not claimed yet"
    );
    claim(&mut helpdesk, &id, "agent-a").await;
    let long = "好".repeat(2001);
    for (agent, text, expected, why) in [
        (
            "agent-b",
            "您好",
            Code::FailedPrecondition,
            "claimed by someone else",
        ),
        ("agent-a", "   ", Code::InvalidArgument, "blank text"),
        (
            "agent-a",
            long.as_str(),
            Code::InvalidArgument,
            "text too long",
        ),
        ("", "您好", Code::InvalidArgument, "no agent"),
    ] {
        let refused = helpdesk.post_agent_message(post(&id, agent, text)).await;
        assert_eq!(code(refused), expected, "{why}");
    }
    helpdesk
        .resolve_handoff(pb::ResolveHandoffRequest {
            handoff_id: id.clone(),
            resolution: "done".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        code(
            helpdesk
                .post_agent_message(post(&id, "agent-a", "还有问题吗"))
                .await
        ),
        Code::FailedPrecondition,
        "resolved"
    );
    assert_eq!(
        store.turns_after(&conv, 0).await.unwrap().len(),
        turns_before,
        "no refused post left a turn"
    );

    for (cursor, expected) in [
        ("garbage", Code::InvalidArgument),
        ("ev-999999999", Code::InvalidArgument),
    ] {
        let status = helpdesk
            .watch_handoffs(pb::WatchHandoffsRequest {
                queues: vec![],
                after_cursor: cursor.into(),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), expected, "{cursor}");
    }
    let status = helpdesk
        .watch_handoffs(pb::WatchHandoffsRequest {
            queues: vec!["nowhere".into()],
            after_cursor: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let status = shop
        .watch_conversation(pb::WatchConversationRequest {
            conversation_id: conv.clone(),
            after_turn_id: "no-such-turn".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    // Still serving.
    assert_eq!(
        reply(&mut shop, &conversation(), "你好").await.action,
        pb::Action::Answer as i32
    );
}

#[tokio::test]
async fn a_conversation_watch_before_the_first_turn_waits_for_it() {
    let (mut shop, _) = clients().await;
    let conv = conversation();
    let mut delivery = shop
        .watch_conversation(pb::WatchConversationRequest {
            conversation_id: conv.clone(),
            after_turn_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let answer = reply(&mut shop, &conv, "你好").await;
    let first = next_turn(&mut delivery).await;
    assert_eq!(first.role, "customer");
    let second = next_turn(&mut delivery).await;
    assert_eq!(second.turn_id, answer.turn_id);
}
