//! What watch streams cost the server and how an old cursor is refused
//! (issue #22). Its own server: it counts every watcher and prunes the
//! event log, which would disturb other tests.

mod common;

use std::time::Duration;

use common::{reply, TestServer};
use tonic::transport::Channel;
use tonic::Code;
use xiaoer_proto::v1 as pb;
use xiaoer_proto::v1::auto_reply_client::AutoReplyClient;
use xiaoer_proto::v1::handoffs_client::HandoffsClient;
use xiaoer_service::clock::now_ms;
use xiaoer_service::config::ServeArgs;

fn watch_request(after: &str) -> pb::WatchHandoffsRequest {
    pb::WatchHandoffsRequest {
        queues: vec![],
        after_cursor: after.into(),
    }
}

#[tokio::test]
async fn watchers_that_leave_cost_nothing_and_old_cursors_are_out_of_range() {
    let server = TestServer::start(ServeArgs::default());
    let channel: Channel = server.plaintext_channel().await.unwrap();
    let mut shop = AutoReplyClient::new(channel.clone());
    let mut helpdesk = HandoffsClient::new(channel);
    assert_eq!(server.events.watchers(), 0);

    let mut handoff_streams = Vec::new();
    let mut conversation_streams = Vec::new();
    for n in 0..5 {
        handoff_streams.push(
            helpdesk
                .watch_handoffs(watch_request(""))
                .await
                .unwrap()
                .into_inner(),
        );
        conversation_streams.push(
            shop.watch_conversation(pb::WatchConversationRequest {
                conversation_id: format!("lifecycle-{n}"),
                after_turn_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner(),
        );
    }
    assert_eq!(server.events.watchers(), 10);
    drop(handoff_streams);
    drop(conversation_streams);
    // The server sees the closed HTTP/2 streams and drops their feeds: no
    // task, buffer or count is left behind.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while server.events.watchers() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(server.events.watchers(), 0, "watchers left behind");

    // A cursor into events retention dropped is OUT_OF_RANGE: the client
    // resyncs with ListHandoffs instead of silently missing events.
    let mut stream = helpdesk
        .watch_handoffs(watch_request(""))
        .await
        .unwrap()
        .into_inner();
    reply(&mut shop, "lifecycle-old", "转人工").await;
    let event = tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .expect("event in time")
        .unwrap()
        .expect("event");
    drop(stream);
    reply(&mut shop, "lifecycle-new", "转人工").await;
    let store = server.store().await;
    assert!(store.prune_events_before(now_ms() + 1).await.unwrap() > 0);
    let status = helpdesk
        .watch_handoffs(watch_request(&event.cursor))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(
        status.message().contains("ListHandoffs"),
        "{}",
        status.message()
    );
    // Watching from now on still works, until the server drains: then the
    // open watch ends with UNAVAILABLE (reconnect with the last cursor)
    // instead of holding the shutdown forever.
    let mut open = helpdesk
        .watch_handoffs(watch_request(""))
        .await
        .unwrap()
        .into_inner();
    let stopping = std::thread::spawn(move || server.stop());
    let end = tokio::time::timeout(Duration::from_secs(10), open.message())
        .await
        .expect("the watch ends when the server drains");
    assert_eq!(end.unwrap_err().code(), Code::Unavailable);
    drop(open);
    drop(helpdesk);
    drop(shop);
    tokio::task::spawn_blocking(move || stopping.join().unwrap())
        .await
        .unwrap();
}
