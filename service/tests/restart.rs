//! Nothing about a conversation is lost across a server restart: a handoff,
//! its masked transcript and entities, the "handed off" state and the
//! clarifying-question streak all live in the database, not in memory.

mod common;

use common::TestServer;
use xiaoer_proto::v1 as pb;
use xiaoer_proto::v1::auto_reply_client::AutoReplyClient;
use xiaoer_proto::v1::handoffs_client::HandoffsClient;
use xiaoer_service::config::ServeArgs;

async fn reply(server: &TestServer, conversation: &str, text: &str) -> pb::ReplyResponse {
    let mut client = AutoReplyClient::new(server.plaintext_channel().await.unwrap());
    common::reply(&mut client, conversation, text).await
}

async fn handoff(server: &TestServer, id: &str) -> pb::Handoff {
    let mut helpdesk = HandoffsClient::new(server.plaintext_channel().await.unwrap());
    helpdesk
        .get_handoff(pb::GetHandoffRequest {
            handoff_id: id.into(),
        })
        .await
        .unwrap()
        .into_inner()
}

#[test]
fn conversations_survive_a_restart() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let first = TestServer::start(ServeArgs::default());
    let (handoff_id, before) = runtime.block_on(async {
        reply(
            &first,
            "restart-handoff",
            "我的订单号 TB20261101889 还没发货，电话13812345678",
        )
        .await;
        let r = reply(&first, "restart-handoff", "转人工").await;
        assert_eq!(r.action, pb::Action::Handoff as i32, "{r:?}");
        let id = r.handoff.expect("handoff").handoff_id;

        let r = reply(&first, "restart-clarify", "今天天气怎么样").await;
        assert_eq!(r.action, pb::Action::Clarify as i32, "{r:?}");
        (id.clone(), handoff(&first, &id).await)
    });
    let data_dir = first.stop();

    let second = TestServer::start(ServeArgs {
        data_dir: Some(data_dir),
        ..ServeArgs::default()
    });
    runtime.block_on(async {
        let after = handoff(&second, &handoff_id).await;
        assert_eq!(
            after.transcript, before.transcript,
            "transcript kept as stored"
        );
        assert_eq!(after.entities, before.entities);
        assert_eq!(after.summary, before.summary);
        assert_eq!(after.status, pb::HandoffStatus::Waiting as i32);
        assert_eq!(
            after.entities.get("order_id").map(String::as_str),
            Some("TB20261101889")
        );
        assert!(
            after
                .transcript
                .iter()
                .all(|t| !t.text.contains("13812345678")),
            "still masked"
        );

        // Still handed off: the new turn goes onto the same handoff, no auto-answer.
        let r = reply(&second, "restart-handoff", "发货大概要多久").await;
        assert_eq!(r.action, pb::Action::Handoff as i32, "{r:?}");
        assert_eq!(r.handoff.map(|h| h.handoff_id), Some(handoff_id.clone()));
        let grown = handoff(&second, &handoff_id).await;
        assert!(grown.transcript.len() > before.transcript.len());

        // The clarifying question asked before the restart counts: a second
        // one in a row becomes a handoff instead.
        let r = reply(&second, "restart-clarify", "那你给我讲个笑话吧").await;
        assert_eq!(r.action, pb::Action::Handoff as i32, "{r:?}");
        assert_eq!(
            r.handoff.expect("handoff").reason,
            pb::HandoffReason::LowConfidence as i32
        );
    });
    second.stop();
}
