//! Two replicas sharing one PostgreSQL database, as on Kubernetes (issue
//! #22): a handoff created through A reaches a watcher on B within a
//! second; a watcher resuming from its cursor on the other replica misses
//! nothing and gets nothing twice, also while both replicas write at once;
//! only the claiming agent may post, whichever replica they call.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{reply, stop_all, TestServer};
use tokio_stream::StreamExt;
use tonic::transport::Channel;
use tonic::{Code, Streaming};
use xiaoer_proto::v1 as pb;
use xiaoer_proto::v1::auto_reply_client::AutoReplyClient;
use xiaoer_proto::v1::handoffs_client::HandoffsClient;
use xiaoer_service::config::ServeArgs;

/// The shared database, or None (test skipped) outside CI without one.
fn postgres_url() -> Option<String> {
    match std::env::var("XIAOER_TEST_POSTGRES_URL") {
        Ok(url) => Some(url),
        Err(_) if std::env::var("CI").is_ok() => {
            panic!("CI must run the replica tests on PostgreSQL: set XIAOER_TEST_POSTGRES_URL (scripts/test.sh does)")
        }
        Err(_) => {
            eprintln!("skipped: set XIAOER_TEST_POSTGRES_URL to run the replica tests");
            None
        }
    }
}

fn replica(url: &str) -> TestServer {
    TestServer::start(ServeArgs {
        database_url: Some(url.to_string()),
        ..ServeArgs::default()
    })
}

struct Clients {
    shop: AutoReplyClient<Channel>,
    desk: HandoffsClient<Channel>,
}

async fn clients(server: &TestServer) -> Clients {
    let channel = server.plaintext_channel().await.unwrap();
    Clients {
        shop: AutoReplyClient::new(channel.clone()),
        desk: HandoffsClient::new(channel),
    }
}

async fn watch(desk: &mut HandoffsClient<Channel>, after: &str) -> Streaming<pb::HandoffEvent> {
    desk.watch_handoffs(pb::WatchHandoffsRequest {
        queues: vec![],
        after_cursor: after.into(),
    })
    .await
    .unwrap()
    .into_inner()
}

/// The next event within `wait`, or None.
async fn next_event(
    stream: &mut Streaming<pb::HandoffEvent>,
    wait: Duration,
) -> Option<pb::HandoffEvent> {
    tokio::time::timeout(wait, stream.next())
        .await
        .ok()
        .map(|item| item.expect("stream open").expect("event"))
}

fn cursor_seq(event: &pb::HandoffEvent) -> i64 {
    event.cursor.trim_start_matches("ev-").parse().unwrap()
}

fn handoff_id(event: &pb::HandoffEvent) -> String {
    event.handoff.as_ref().unwrap().handoff_id.clone()
}

#[tokio::test]
async fn replicas_share_handoff_events_through_the_database() {
    let Some(url) = postgres_url() else { return };
    let a = replica(&url);
    let b = replica(&url);
    let mut on_a = clients(&a).await;
    let mut on_b = clients(&b).await;

    // A handoff created through A is pushed to a watcher on B within 1 s.
    let mut watcher = watch(&mut on_b.desk, "").await;
    let conv = format!("replica-{}", uuid::Uuid::new_v4().simple());
    let handed = reply(&mut on_a.shop, &conv, "转人工，我要投诉").await;
    let sent = Instant::now();
    let id = handed.handoff.expect("handed off").handoff_id;
    let created = loop {
        let event = next_event(&mut watcher, Duration::from_secs(5))
            .await
            .expect("B hears about A's handoff");
        if handoff_id(&event) == id {
            break event;
        }
    };
    let latency = sent.elapsed();
    assert_eq!(created.kind, pb::HandoffEventKind::Created as i32);
    assert!(latency < Duration::from_secs(1), "took {latency:?}");
    drop(watcher);

    // Claimed and answered through A while nobody watches; B resumes.
    on_a.desk
        .claim_handoff(pb::ClaimHandoffRequest {
            handoff_id: id.clone(),
            agent_id: "agent-zhao".into(),
        })
        .await
        .unwrap();
    let post = |agent: &str| pb::PostAgentMessageRequest {
        handoff_id: id.clone(),
        agent_id: agent.into(),
        text: "您好，我是客服小赵，马上为您处理。".into(),
        ..Default::default()
    };
    let refused = on_b
        .desk
        .post_agent_message(post("agent-qian"))
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        Code::FailedPrecondition,
        "only the claiming agent posts"
    );
    on_b.desk
        .post_agent_message(post("agent-zhao"))
        .await
        .unwrap();

    let mut resumed = watch(&mut on_b.desk, &created.cursor).await;
    let mut mine = Vec::new();
    while let Some(event) = next_event(&mut resumed, Duration::from_millis(1500)).await {
        if handoff_id(&event) == id {
            mine.push(event.kind);
        }
    }
    assert_eq!(
        mine,
        [
            pb::HandoffEventKind::Claimed as i32,
            pb::HandoffEventKind::AgentMessage as i32
        ],
        "after the cursor: everything, once"
    );
    drop((resumed, on_a, on_b));
    stop_all(vec![a, b]).await;
}

#[tokio::test]
async fn concurrent_writers_on_both_replicas_never_reorder_the_log() {
    let Some(url) = postgres_url() else { return };
    let a = replica(&url);
    let b = replica(&url);
    let mut watcher_desk = clients(&b).await.desk;
    let mut watcher = watch(&mut watcher_desk, "").await;

    // Twelve shoppers ask for a person at once, half through each replica.
    let mut tasks = Vec::new();
    let run = uuid::Uuid::new_v4().simple().to_string();
    for n in 0..12 {
        let server_channel = if n % 2 == 0 {
            a.plaintext_channel().await.unwrap()
        } else {
            b.plaintext_channel().await.unwrap()
        };
        let conv = format!("burst-{run}-{n}");
        tasks.push(tokio::spawn(async move {
            let mut shop = AutoReplyClient::new(server_channel);
            reply(&mut shop, &conv, "转人工")
                .await
                .handoff
                .unwrap()
                .handoff_id
        }));
    }
    let mut expected = Vec::new();
    for task in tasks {
        expected.push(task.await.unwrap());
    }

    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut last_seq = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.len() < expected.len() && Instant::now() < deadline {
        let Some(event) = next_event(&mut watcher, Duration::from_secs(2)).await else {
            continue;
        };
        let seq = cursor_seq(&event);
        assert!(seq > last_seq, "cursor went back: {seq} after {last_seq}");
        last_seq = seq;
        let id = handoff_id(&event);
        if expected.contains(&id) && event.kind == pb::HandoffEventKind::Created as i32 {
            *seen.entry(id).or_default() += 1;
        }
    }
    assert_eq!(seen.len(), expected.len(), "every handoff seen");
    assert!(seen.values().all(|n| *n == 1), "each once: {seen:?}");
    drop((watcher, watcher_desk));
    stop_all(vec![a, b]).await;
}
