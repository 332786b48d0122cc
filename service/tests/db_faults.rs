//! Database faults under traffic, on a real PostgreSQL: the real server keeps
//! answering FAQ questions while PostgreSQL is stopped, refuses with
//! UNAVAILABLE every call that would have to record a handoff (never OK and
//! then lost), recovers without a restart once PostgreSQL is back, and every
//! handoff acknowledged to a client is in the database afterwards.
//!
//! Needs `XIAOER_TEST_POSTGRES_URL` and `XIAOER_TEST_POSTGRES_DIR` (the
//! cluster folder of scripts/pg-test-cluster.sh, which this test stops and
//! starts); scripts/test.sh sets both. Without them the test is skipped with
//! a message, except under CI, where that is a failure.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tonic::transport::Channel;
use tonic::Code;
use xiaoer_proto::v1 as pb;
use xiaoer_proto::v1::auto_reply_client::AutoReplyClient;
use xiaoer_service::config::ServeArgs;
use xiaoer_service::server::{serve, App};
use xiaoer_service::store::Store;

const FAQ: &[&str] = &[
    "退货运费谁出",
    "how long does a refund take to reach my card",
];
const HANDOFF: &[&str] = &["转人工", "I want a real person"];

/// Phases of the run, as seen when a call starts and when it ends.
const UP: u8 = 0;
const STOPPING: u8 = 1;
const DOWN: u8 = 2;
const STARTING: u8 = 3;
const RECOVERED: u8 = 4;

/// The test cluster; started again on drop if the test stopped it and then
/// failed, so later tests still find their database.
struct Cluster {
    dir: PathBuf,
    port: String,
    stopped: AtomicBool,
}

impl Cluster {
    fn from_env() -> Option<(String, Cluster)> {
        match (
            std::env::var("XIAOER_TEST_POSTGRES_URL"),
            std::env::var("XIAOER_TEST_POSTGRES_DIR"),
        ) {
            (Ok(url), Ok(dir)) => {
                let port = url
                    .rsplit_once(':')
                    .and_then(|(_, rest)| rest.split('/').next())
                    .filter(|p| p.parse::<u16>().is_ok())
                    .unwrap_or_else(|| panic!("no port in XIAOER_TEST_POSTGRES_URL {url}"))
                    .to_string();
                Some((
                    url,
                    Cluster {
                        dir: PathBuf::from(dir),
                        port,
                        stopped: AtomicBool::new(false),
                    },
                ))
            }
            _ if std::env::var("CI").is_ok() => panic!(
                "CI must run the database fault test: set XIAOER_TEST_POSTGRES_URL and XIAOER_TEST_POSTGRES_DIR (scripts/test.sh does)"
            ),
            _ => None,
        }
    }

    fn script(&self, args: &[&str]) {
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/pg-test-cluster.sh");
        let out = std::process::Command::new(script)
            .args(args)
            .output()
            .expect("run scripts/pg-test-cluster.sh");
        assert!(
            out.status.success(),
            "pg-test-cluster.sh {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.script(&["stop", self.dir.to_str().unwrap()]);
    }

    fn start(&self) {
        self.script(&["start", self.dir.to_str().unwrap(), &self.port]);
        self.stopped.store(false, Ordering::SeqCst);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.stopped.load(Ordering::SeqCst) {
            self.start();
        }
    }
}

#[derive(Debug, Clone)]
struct Call {
    handoff_expected: bool,
    sent_in: u8,
    done_in: u8,
    outcome: Result<Option<String>, Code>,
    took: Duration,
}

/// Sends Reply traffic, one new conversation per call, alternating FAQ and
/// handoff messages, until `stop` is set.
async fn traffic(
    mut client: AutoReplyClient<Channel>,
    worker: usize,
    phase: Arc<AtomicU8>,
    stop: Arc<AtomicBool>,
    calls: Arc<Mutex<Vec<Call>>>,
) {
    let mut n = 0usize;
    while !stop.load(Ordering::SeqCst) {
        let handoff_expected = (n + worker) % 2 == 1;
        let texts = if handoff_expected { HANDOFF } else { FAQ };
        let request = pb::ReplyRequest {
            conversation_id: format!("fault-{worker}-{n}-{}", uuid::Uuid::new_v4().simple()),
            text: texts[n % texts.len()].to_string(),
            channel: "fault-test".into(),
            ..Default::default()
        };
        n += 1;
        let sent_in = phase.load(Ordering::SeqCst);
        let started = Instant::now();
        let outcome = client
            .reply(request)
            .await
            .map(|r| r.into_inner().handoff.map(|h| h.handoff_id))
            .map_err(|s| s.code());
        calls.lock().unwrap().push(Call {
            handoff_expected,
            sent_in,
            done_in: phase.load(Ordering::SeqCst),
            outcome,
            took: started.elapsed(),
        });
    }
}

fn within(calls: &[Call], phase: u8) -> Vec<&Call> {
    calls
        .iter()
        .filter(|c| c.sent_in == phase && c.done_in == phase)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_stopped_under_traffic_loses_no_acknowledged_handoff() {
    let Some((url, cluster)) = Cluster::from_env() else {
        eprintln!("XIAOER_TEST_POSTGRES_URL / XIAOER_TEST_POSTGRES_DIR not set: database fault test skipped (run scripts/test.sh)");
        return;
    };
    let cluster = Arc::new(cluster);
    let data_dir = tempfile::tempdir().unwrap();
    let args = ServeArgs {
        data_dir: Some(data_dir.path().to_path_buf()),
        database_url: Some(url.clone()),
        ..ServeArgs::default()
    };
    let app = App::load(args.resolve().unwrap())
        .await
        .expect("server loads (weights fetched? run scripts/fetch-weights.sh)");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(app, listener, async {
        let _ = server_stopped.await;
    }));
    let channel = Channel::from_shared(endpoint)
        .unwrap()
        .connect()
        .await
        .unwrap();

    let phase = Arc::new(AtomicU8::new(UP));
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..4)
        .map(|worker| {
            tokio::spawn(traffic(
                AutoReplyClient::new(channel.clone()),
                worker,
                Arc::clone(&phase),
                Arc::clone(&stop),
                Arc::clone(&calls),
            ))
        })
        .collect();
    let count_ok_handoffs = || {
        calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| matches!(c.outcome, Ok(Some(_))))
            .count()
    };

    tokio::time::sleep(Duration::from_secs(3)).await;
    phase.store(STOPPING, Ordering::SeqCst);
    let c = Arc::clone(&cluster);
    tokio::task::spawn_blocking(move || c.stop()).await.unwrap();
    phase.store(DOWN, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(5)).await;
    phase.store(STARTING, Ordering::SeqCst);
    let c = Arc::clone(&cluster);
    tokio::task::spawn_blocking(move || c.start())
        .await
        .unwrap();
    // Recovered once a handoff is recorded again, without restarting the server.
    let acked_before = count_ok_handoffs();
    let deadline = Instant::now() + Duration::from_secs(30);
    while count_ok_handoffs() == acked_before {
        assert!(
            Instant::now() < deadline,
            "no handoff recorded within 30 s of PostgreSQL coming back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    phase.store(RECOVERED, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::SeqCst);
    for worker in workers {
        worker.await.unwrap();
    }
    let calls = calls.lock().unwrap().clone();

    // Every call: FAQ answered; handoff either acknowledged with an id or UNAVAILABLE.
    for call in &calls {
        match (&call.outcome, call.handoff_expected) {
            (Ok(None), false) => {}
            (Ok(Some(_)), true) | (Err(Code::Unavailable), true) => {}
            _ => panic!("unexpected outcome {call:?}"),
        }
    }
    let up = within(&calls, UP);
    let down = within(&calls, DOWN);
    let recovered = within(&calls, RECOVERED);
    for (name, window) in [("up", &up), ("down", &down), ("recovered", &recovered)] {
        assert!(
            window.iter().any(|c| c.handoff_expected) && window.iter().any(|c| !c.handoff_expected),
            "{name}: too little traffic to judge ({} calls)",
            window.len()
        );
    }
    assert!(
        up.iter().chain(&recovered).all(|c| c.outcome.is_ok()),
        "with the database up every call succeeds"
    );
    assert!(
        down.iter()
            .filter(|c| c.handoff_expected)
            .all(|c| c.outcome == Err(Code::Unavailable)),
        "with the database down no handoff is acknowledged"
    );
    let slowest_faq_down = down
        .iter()
        .filter(|c| !c.handoff_expected)
        .map(|c| c.took)
        .max()
        .unwrap();
    assert!(
        slowest_faq_down < Duration::from_secs(5),
        "FAQ replies kept answering without hanging on the database (slowest {slowest_faq_down:?})"
    );
    eprintln!(
        "{} calls: {} up, {} down (slowest FAQ {:?}), {} recovered",
        calls.len(),
        up.len(),
        down.len(),
        slowest_faq_down,
        recovered.len()
    );

    // Nothing acknowledged was lost.
    let store = Store::connect(&url).await.unwrap();
    let acknowledged: Vec<&String> = calls
        .iter()
        .filter_map(|c| c.outcome.as_ref().ok().and_then(|h| h.as_ref()))
        .collect();
    assert!(!acknowledged.is_empty());
    for id in &acknowledged {
        store
            .handoff(id)
            .await
            .unwrap_or_else(|e| panic!("acknowledged handoff {id} is not in the database: {e}"));
    }

    drop(stop_server);
    tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .expect("server stops")
        .unwrap()
        .unwrap();
}
