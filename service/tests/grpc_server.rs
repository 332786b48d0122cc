//! End-to-end: the real server (real model, real knowledge base, SQLite) on
//! an ephemeral port, called through the generated clients, as the
//! storefront and the helpdesk call it.

mod common;

use std::sync::OnceLock;

use common::{reply, TestServer};
use tonic::transport::Channel;
use tonic::Code;
use xiaoer_proto::v1 as pb;
use xiaoer_proto::v1::auto_reply_client::AutoReplyClient;
use xiaoer_proto::v1::handoffs_client::HandoffsClient;
use xiaoer_proto::v1::knowledge_base_client::KnowledgeBaseClient;
use xiaoer_service::config::ServeArgs;

/// One server for the whole file.
fn server() -> &'static TestServer {
    static SERVER: OnceLock<TestServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        TestServer::start(ServeArgs {
            max_concurrent: Some(256),
            ..ServeArgs::default()
        })
    })
}

async fn channel() -> Channel {
    server().plaintext_channel().await.unwrap()
}

async fn auto_reply() -> AutoReplyClient<Channel> {
    AutoReplyClient::new(channel().await)
}

async fn handoffs() -> HandoffsClient<Channel> {
    HandoffsClient::new(channel().await)
}

fn conversation() -> String {
    format!("it-{}", uuid::Uuid::new_v4().simple())
}

#[tokio::test]
async fn health_reports_serving() {
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel().await);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    let named = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "xiaoer.v1.AutoReply".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(
        named,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
}

#[tokio::test]
async fn reflection_lists_the_three_services_in_v1_and_v1alpha() {
    use tonic_reflection::pb::v1 as r1;
    use tonic_reflection::pb::v1alpha as r0;
    let request = r1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(r1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut v1 = r1::server_reflection_client::ServerReflectionClient::new(channel().await);
    let mut stream = v1
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let response = stream.message().await.unwrap().unwrap();
    let Some(r1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        response.message_response
    else {
        panic!("no list")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for service in [
        "xiaoer.v1.AutoReply",
        "xiaoer.v1.Handoffs",
        "xiaoer.v1.KnowledgeBase",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.contains(&service.to_string()),
            "{service} missing from {names:?}"
        );
    }
    let request = r0::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(r0::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut v0 = r0::server_reflection_client::ServerReflectionClient::new(channel().await);
    let mut stream = v0
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    assert!(stream.message().await.unwrap().is_some());
}

#[tokio::test]
async fn classify_returns_intent_sentiment_and_language() {
    let mut client = auto_reply().await;
    let zh = client
        .classify(pb::ClassifyRequest {
            text: "亲，我的快递到哪了？三天没动了".into(),
            locale: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(zh.language, "zh");
    assert_eq!(zh.intent.unwrap().name, "order_tracking");
    assert!(!zh.out_of_scope);
    let en = client
        .classify(pb::ClassifyRequest {
            text: "can i get a VAT invoice for my company?".into(),
            locale: "en-US".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(en.language, "en");
    assert_eq!(en.intent.unwrap().name, "invoice_request");
    assert!(en.alternatives.len() >= 2);
}

/// A greeting opens a conversation; it must never read as anger. The heads
/// committed in def8404 scored a bare "hello" P(angry) 0.62 and handed the
/// shopper to a person before they had asked anything.
#[tokio::test]
async fn plain_greetings_are_answered_not_handed_off() {
    let mut client = auto_reply().await;
    for text in ["hello", "hi", "good morning", "你好", "在吗", "亲 在不在"] {
        let r = reply(&mut client, &conversation(), text).await;
        assert_eq!(r.action, pb::Action::Answer as i32, "{text}: {r:?}");
    }
}

#[tokio::test]
async fn faq_question_is_answered_with_a_cited_article() {
    let mut client = auto_reply().await;
    let r = reply(
        &mut client,
        &conversation(),
        "买的衣服不喜欢，可以七天无理由退货吗",
    )
    .await;
    assert_eq!(r.action, pb::Action::Answer as i32, "{r:?}");
    assert!(
        r.sources.iter().any(|s| s.article_id.starts_with("return")),
        "{:?}",
        r.sources
    );
    assert!(!r.turn_id.is_empty());
    assert_eq!(r.language, "zh");
}

#[tokio::test]
async fn explicit_request_hands_off_with_a_masked_package() {
    let mut client = auto_reply().await;
    let conv = conversation();
    reply(
        &mut client,
        &conv,
        "我的订单号 TB20261101889 还没发货，电话13812345678",
    )
    .await;
    let r = reply(&mut client, &conv, "转人工").await;
    assert_eq!(r.action, pb::Action::Handoff as i32, "{r:?}");
    let handoff = r.handoff.expect("handoff in response");
    assert_eq!(handoff.reason, pb::HandoffReason::CustomerRequest as i32);
    assert_eq!(handoff.status, pb::HandoffStatus::Waiting as i32);
    assert_eq!(
        handoff.entities.get("order_id").map(String::as_str),
        Some("TB20261101889")
    );
    assert!(handoff.transcript.len() >= 3, "{:?}", handoff.transcript);
    for turn in &handoff.transcript {
        assert!(
            !turn.text.contains("13812345678"),
            "unmasked phone in transcript: {}",
            turn.text
        );
    }
    assert!(
        handoff.summary.contains("TB20261101889"),
        "{}",
        handoff.summary
    );

    // While handed off, the bot records turns and does not auto-answer.
    let later = reply(&mut client, &conv, "发货时间是多久").await;
    assert_eq!(later.action, pb::Action::Handoff as i32);
    assert_eq!(
        later.handoff.as_ref().map(|h| h.handoff_id.clone()),
        Some(handoff.handoff_id.clone())
    );

    // The helpdesk sees it, claims it once, resolves it.
    let mut helpdesk = handoffs().await;
    let got = helpdesk
        .get_handoff(pb::GetHandoffRequest {
            handoff_id: handoff.handoff_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        got.transcript.len() >= 5,
        "turns after the handoff are on it too"
    );
    let claimed = helpdesk
        .claim_handoff(pb::ClaimHandoffRequest {
            handoff_id: handoff.handoff_id.clone(),
            agent_id: "agent-7".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (claimed.status, claimed.claimed_by.as_str()),
        (pb::HandoffStatus::Claimed as i32, "agent-7")
    );
    let again = helpdesk
        .claim_handoff(pb::ClaimHandoffRequest {
            handoff_id: handoff.handoff_id.clone(),
            agent_id: "agent-8".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    let resolved = helpdesk
        .resolve_handoff(pb::ResolveHandoffRequest {
            handoff_id: handoff.handoff_id.clone(),
            resolution: "已加急发货".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resolved.status, pb::HandoffStatus::Resolved as i32);
    let twice = helpdesk
        .resolve_handoff(pb::ResolveHandoffRequest {
            handoff_id: handoff.handoff_id,
            resolution: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(twice.code(), Code::FailedPrecondition);
}

/// Issue #21: every value that once reached the stored transcript in clear,
/// sent through Reply, is masked in what GetHandoff returns — transcript,
/// summary, drafts and entities alike — while the storefront's order number
/// stays readable even though it has the shape of a resident ID.
#[tokio::test]
async fn personal_data_is_masked_in_what_get_handoff_returns() {
    const PERSONAL: [&str; 8] = [
        "+44 20 7946 0958",
        "010-12345678",
        "110105194912310021",
        "6222 0212 3456 7890 123",
        "wxid_abc123456",
        "E12345678",
        "221B Baker Street",
        "NW1 6XE",
    ];
    let order_id = "110105195001010017";
    let mut client = auto_reply().await;
    let conv = conversation();
    let messages = [
        "call me on +44 20 7946 0958",
        "我电话 010-12345678",
        "身份证110105194912310021",
        "卡号 6222 0212 3456 7890 123",
        "微信号 wxid_abc123456，护照 E12345678",
        "I live at 221B Baker Street, London NW1 6XE",
        "110105195001010017 这个订单到哪了",
        "转人工",
    ];
    let mut last = None;
    for text in messages {
        let response = client
            .reply(pb::ReplyRequest {
                conversation_id: conv.clone(),
                text: text.into(),
                customer: Some(pb::CustomerContext {
                    orders: vec![pb::OrderSummary {
                        order_id: order_id.into(),
                        status: "paid".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|s| panic!("reply to {text:?}: {s}"))
            .into_inner();
        last = Some(response);
    }
    let handoff = last.and_then(|r| r.handoff).expect("handed off");
    let got = handoffs()
        .await
        .get_handoff(pb::GetHandoffRequest {
            handoff_id: handoff.handoff_id,
        })
        .await
        .unwrap()
        .into_inner();
    let shown = format!("{got:?}");
    for value in PERSONAL {
        assert!(!shown.contains(value), "{value:?} in clear: {shown}");
    }
    assert!(
        got.transcript.iter().any(|t| t.text.contains(order_id)),
        "the storefront's order number stays readable: {:?}",
        got.transcript
    );
}

#[tokio::test]
async fn angry_shopper_gets_empathy_and_a_priority_handoff() {
    let mut client = auto_reply().await;
    let r = reply(
        &mut client,
        &conversation(),
        "你们什么垃圾店！！！快递十天了还没到，再不处理我就去12315投诉你们！",
    )
    .await;
    assert_eq!(r.action, pb::Action::Handoff as i32, "{r:?}");
    let handoff = r.handoff.unwrap();
    assert_eq!(handoff.reason, pb::HandoffReason::NegativeSentiment as i32);
    assert_eq!(handoff.priority, 1);
    assert!(r.text.contains("抱歉"), "{}", r.text);
    assert!(r.sources.is_empty(), "no FAQ answer to an angry shopper");
    assert_eq!(
        r.sentiment.unwrap().label,
        pb::SentimentLabel::SentimentAngry as i32
    );
}

#[tokio::test]
async fn listing_handoffs_pages_and_validates() {
    let mut client = auto_reply().await;
    for _ in 0..3 {
        reply(
            &mut client,
            &conversation(),
            "agent please, I need a real person",
        )
        .await;
    }
    let mut helpdesk = handoffs().await;
    let first = helpdesk
        .list_handoffs(pb::ListHandoffsRequest {
            status: pb::HandoffStatus::Waiting as i32,
            page_size: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.handoffs.len(), 2);
    assert!(!first.next_page_token.is_empty());
    let second = helpdesk
        .list_handoffs(pb::ListHandoffsRequest {
            status: pb::HandoffStatus::Waiting as i32,
            page_size: 2,
            page_token: first.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!second.handoffs.is_empty());
    assert!(second
        .handoffs
        .iter()
        .all(|h| !first.handoffs.iter().any(|f| f.handoff_id == h.handoff_id)));
    for bad in [
        pb::ListHandoffsRequest {
            page_size: 1000,
            ..Default::default()
        },
        pb::ListHandoffsRequest {
            page_token: "garbage".into(),
            ..Default::default()
        },
        pb::ListHandoffsRequest {
            queue: "nowhere".into(),
            ..Default::default()
        },
    ] {
        assert_eq!(
            helpdesk.list_handoffs(bad).await.unwrap_err().code(),
            Code::InvalidArgument
        );
    }
}

#[tokio::test]
async fn suggestions_and_feedback_round_trip() {
    let mut client = auto_reply().await;
    let conv = conversation();
    let r = reply(
        &mut client,
        &conv,
        "how long does a refund take to reach my credit card?",
    )
    .await;
    let suggestions = client
        .suggest_replies(pb::SuggestRepliesRequest {
            conversation_id: conv.clone(),
            text: "how long does a refund take?".into(),
            locale: "en".into(),
            max_suggestions: 2,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!suggestions.suggestions.is_empty() && suggestions.suggestions.len() <= 2);
    assert!(
        suggestions
            .suggestions
            .iter()
            .any(|s| s.article_id.starts_with("refund")),
        "{:?}",
        suggestions.suggestions
    );
    let draft = suggestions.suggestions[0].text.clone();
    client
        .feedback(pb::FeedbackRequest {
            conversation_id: conv.clone(),
            turn_id: r.turn_id.clone(),
            suggestion_text: draft.clone(),
            verdict: "edited".into(),
            edited_text: "Refunds take 1-3 days.".into(),
        })
        .await
        .unwrap();
    let bad_verdict = client
        .feedback(pb::FeedbackRequest {
            conversation_id: conv.clone(),
            turn_id: r.turn_id.clone(),
            suggestion_text: draft.clone(),
            verdict: "meh".into(),
            edited_text: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad_verdict.code(), Code::InvalidArgument);
    let edited_without_text = client
        .feedback(pb::FeedbackRequest {
            conversation_id: conv.clone(),
            turn_id: r.turn_id.clone(),
            suggestion_text: draft.clone(),
            verdict: "edited".into(),
            edited_text: " ".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(edited_without_text.code(), Code::InvalidArgument);
    let unknown_turn = client
        .feedback(pb::FeedbackRequest {
            conversation_id: conv,
            turn_id: "nope".into(),
            suggestion_text: draft,
            verdict: "used".into(),
            edited_text: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown_turn.code(), Code::NotFound);
}

/// A shopper rates a bot answer; a second rating replaces the first; the
/// comment is masked; bad ratings, unknown turns and shopper turns are
/// refused and store nothing.
#[tokio::test]
async fn ratings_of_bot_answers_replace_and_mask() {
    let mut client = auto_reply().await;
    let conv = conversation();
    let answered = reply(&mut client, &conv, "退货运费谁出？").await;
    let rate = |rating: i32, comment: &str, turn: &str| pb::RateReplyRequest {
        conversation_id: conv.clone(),
        turn_id: turn.into(),
        rating,
        comment: comment.into(),
    };
    client
        .rate_reply(rate(2, "", &answered.turn_id))
        .await
        .unwrap();
    client
        .rate_reply(rate(
            5,
            "很清楚，谢谢！有问题打我电话13812345678",
            &answered.turn_id,
        ))
        .await
        .unwrap();
    for (bad, code) in [
        (rate(0, "", &answered.turn_id), Code::InvalidArgument),
        (rate(6, "", &answered.turn_id), Code::InvalidArgument),
        (rate(3, "", "no-such-turn"), Code::NotFound),
        (
            rate(3, &"长".repeat(2001), &answered.turn_id),
            Code::InvalidArgument,
        ),
    ] {
        assert_eq!(client.rate_reply(bad).await.unwrap_err().code(), code);
    }
    let store = server().store().await;
    let turns = store.conversation_turns(&conv, 10).await.unwrap();
    let shopper_turn = turns
        .iter()
        .find(|t| t.role == xiaoer_domain::TurnRole::Customer)
        .unwrap();
    assert_eq!(
        client
            .rate_reply(rate(1, "", &shopper_turn.id))
            .await
            .unwrap_err()
            .code(),
        Code::NotFound,
        "only bot answers are rated"
    );
    let ratings: Vec<_> = store
        .ratings_between(0, i64::MAX)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.conversation_id == conv)
        .collect();
    assert_eq!(ratings.len(), 1, "the second rating replaced the first");
    assert_eq!(ratings[0].rating, 5);
    assert!(
        !ratings[0].comment.contains("13812345678"),
        "{}",
        ratings[0].comment
    );
    assert!(ratings[0].comment.starts_with("很清楚"));
    // Forgetting the conversation forgets its ratings.
    assert!(store.forget_conversation(&conv).await.unwrap());
    assert!(store
        .ratings_between(0, i64::MAX)
        .await
        .unwrap()
        .iter()
        .all(|r| r.conversation_id != conv));
}

#[tokio::test]
async fn knowledge_base_search_and_reload() {
    let mut kb = KnowledgeBaseClient::new(channel().await);
    let results = kb
        .search(pb::SearchRequest {
            query: "退货运费谁出".into(),
            locale: String::new(),
            limit: 3,
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    assert!(!results.is_empty() && results.len() <= 3);
    assert!(results
        .iter()
        .all(|r| !r.title.is_empty() && !r.snippet.is_empty()));
    let reloaded = kb.reload(pb::ReloadRequest {}).await.unwrap().into_inner();
    assert!(reloaded.articles >= 28);
    assert!(!reloaded.version.is_empty());
    assert_eq!(
        kb.search(pb::SearchRequest {
            query: " ".into(),
            locale: String::new(),
            limit: 3
        })
        .await
        .unwrap_err()
        .code(),
        Code::InvalidArgument
    );
    assert_eq!(
        kb.search(pb::SearchRequest {
            query: "x".into(),
            locale: String::new(),
            limit: 99
        })
        .await
        .unwrap_err()
        .code(),
        Code::InvalidArgument
    );
}

#[tokio::test]
async fn bad_input_gets_a_clear_status_and_stores_nothing() {
    let mut client = auto_reply().await;
    let conv = conversation();
    let cases = [
        (
            pb::ReplyRequest {
                conversation_id: conv.clone(),
                text: "   \n".into(),
                ..Default::default()
            },
            "text",
        ),
        (
            pb::ReplyRequest {
                conversation_id: conv.clone(),
                text: "好".repeat(2001),
                ..Default::default()
            },
            "text",
        ),
        (
            pb::ReplyRequest {
                conversation_id: String::new(),
                text: "hello".into(),
                ..Default::default()
            },
            "conversation_id",
        ),
        (
            pb::ReplyRequest {
                conversation_id: "x".repeat(200),
                text: "hello".into(),
                ..Default::default()
            },
            "conversation_id",
        ),
    ];
    for (request, field) in cases {
        let status = client.reply(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().starts_with(field), "{}", status.message());
    }
    assert_eq!(
        client
            .classify(pb::ClassifyRequest {
                text: String::new(),
                locale: String::new()
            })
            .await
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );
    let mut helpdesk = handoffs().await;
    assert_eq!(
        helpdesk
            .get_handoff(pb::GetHandoffRequest {
                handoff_id: "no-such-handoff".into()
            })
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    assert_eq!(
        helpdesk
            .claim_handoff(pb::ClaimHandoffRequest {
                handoff_id: "no-such".into(),
                agent_id: "a".into()
            })
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    assert_eq!(
        helpdesk
            .claim_handoff(pb::ClaimHandoffRequest {
                handoff_id: "x".into(),
                agent_id: String::new()
            })
            .await
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );

    // Nothing about the rejected conversation was stored, and the server still serves.
    let store = server().store().await;
    assert!(store
        .conversation_turns(&conv, 10)
        .await
        .unwrap()
        .is_empty());
    let ok = reply(&mut client, &conv, "你好").await;
    assert_eq!(ok.action, pb::Action::Answer as i32);
}

#[tokio::test]
async fn retried_reply_with_the_same_client_turn_id_is_not_duplicated() {
    let mut client = auto_reply().await;
    let conv = conversation();
    let request = pb::ReplyRequest {
        conversation_id: conv.clone(),
        text: "转人工，谢谢".into(),
        client_turn_id: "turn-1".into(),
        ..Default::default()
    };
    let first = client.reply(request.clone()).await.unwrap().into_inner();
    let second = client.reply(request).await.unwrap().into_inner();
    assert_eq!(first.turn_id, second.turn_id);
    assert_eq!(
        first.handoff.map(|h| h.handoff_id),
        second.handoff.map(|h| h.handoff_id)
    );
    let store = server().store().await;
    assert_eq!(store.conversation_turns(&conv, 10).await.unwrap().len(), 2);
}
