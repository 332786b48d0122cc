//! Graceful drain of `xiaoer serve` on SIGTERM, as a Kubernetes pod is
//! stopped (issue #24): a call in flight at SIGTERM completes; for the whole
//! drain window every health entry reports NOT_SERVING and `/readyz` 503
//! while calls, on old and new connections, are still served; then watch
//! streams end with UNAVAILABLE, new connections are refused and the
//! process exits 0.

mod common;

use std::time::{Duration, Instant};

use common::{http_status, Serve};
use tonic::transport::Channel;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use xiaoer_proto::v1 as pb;
use xiaoer_proto::v1::auto_reply_client::AutoReplyClient;
use xiaoer_proto::v1::handoffs_client::HandoffsClient;

/// The drain window the server runs with in this test.
const WINDOW: Duration = Duration::from_secs(4);

const HEALTH_ENTRIES: [&str; 4] = [
    "",
    "xiaoer.v1.AutoReply",
    "xiaoer.v1.Handoffs",
    "xiaoer.v1.KnowledgeBase",
];

async fn connect(url: &str) -> Result<Channel, tonic::transport::Error> {
    Channel::from_shared(url.to_string())
        .unwrap()
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await
}

async fn statuses(channel: &Channel) -> Vec<i32> {
    let mut health = HealthClient::new(channel.clone());
    let mut out = Vec::new();
    for service in HEALTH_ENTRIES {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        out.push(status);
    }
    out
}

fn classify(text: &str) -> pb::ClassifyRequest {
    pb::ClassifyRequest {
        text: text.into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_then_stops() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Serve::start(
        dir.path(),
        "serve",
        &["--data-dir", data.to_str().unwrap(), "--drain-window", "4s"],
    );
    server.wait_ready();
    let url = server.url();
    let old = connect(&url).await.unwrap();
    assert_eq!(
        statuses(&old).await,
        [ServingStatus::Serving as i32; 4],
        "all entries serving before SIGTERM"
    );
    // A refused call is logged with the caller's request id.
    let mut bad = tonic::Request::new(classify("   "));
    bad.metadata_mut()
        .insert("x-request-id", "drain-probe-1".parse().unwrap());
    let refused = AutoReplyClient::new(old.clone())
        .classify(bad)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(
        refused.metadata().get("x-request-id").unwrap(),
        "drain-probe-1"
    );
    let mut watch = HandoffsClient::new(old.clone())
        .watch_handoffs(pb::WatchHandoffsRequest::default())
        .await
        .unwrap()
        .into_inner();

    // A Reply in flight when SIGTERM arrives completes.
    let mut shop = AutoReplyClient::new(old.clone());
    let in_flight = tokio::spawn(async move {
        shop.reply(pb::ReplyRequest {
            conversation_id: "drain-in-flight".into(),
            text: "退货要自己出运费吗".into(),
            ..Default::default()
        })
        .await
    });
    tokio::time::sleep(Duration::from_millis(5)).await;
    let signalled = Instant::now();
    server.terminate();
    let answered = in_flight.await.unwrap();
    assert!(answered.is_ok(), "in-flight call: {answered:?}");

    // The whole window: NOT_SERVING everywhere, and still serving calls.
    let mut checks = 0;
    while signalled.elapsed() < WINDOW - Duration::from_millis(800) {
        if checks > 0 || signalled.elapsed() > Duration::from_millis(300) {
            assert_eq!(
                statuses(&old).await,
                [ServingStatus::NotServing as i32; 4],
                "{:?} after SIGTERM",
                signalled.elapsed()
            );
            assert_eq!(http_status(server.probes, "/readyz"), Some(503));
            assert_eq!(http_status(server.probes, "/livez"), Some(200));
            // A new connection is still accepted and served.
            let fresh = connect(&url)
                .await
                .expect("new connections accepted in the window");
            AutoReplyClient::new(fresh)
                .classify(classify("what's your return policy"))
                .await
                .expect("served during the drain window");
            AutoReplyClient::new(old.clone())
                .classify(classify("发什么快递"))
                .await
                .expect("old connections served too");
            checks += 1;
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    assert!(checks >= 3, "checked the window {checks} times");

    // After the window: the watch ends with UNAVAILABLE (resume from the
    // cursor elsewhere), new connections are refused, the process exits 0.
    let ended = tokio::time::timeout(Duration::from_secs(30), watch.message())
        .await
        .expect("the watch stream ends after the window");
    assert_eq!(ended.unwrap_err().code(), Code::Unavailable);
    assert!(
        signalled.elapsed() >= WINDOW,
        "not before the window is over"
    );
    let status = tokio::task::spawn_blocking(move || {
        let status = server.wait_exit(Duration::from_secs(60));
        (status, server)
    })
    .await
    .unwrap();
    let (status, server) = status;
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}:\n{}",
        server.log_text()
    );
    assert!(connect(&url).await.is_err(), "refused once stopped");
    let log = server.log_text();
    assert!(log.contains("drain window over"), "{log}");
    assert!(
        log.lines()
            .any(|l| l.contains("request failed") && l.contains("\"request_id\":\"drain-probe-1\"")),
        "the refusal's log line carries its request id:\n{log}"
    );
}
