use super::*;
use crate::test_server::{spawn_with_delay, BUSY_TEXT, FAIL_TEXT};

fn args(url: &str, out: PathBuf, duration: f64, max_requests: Option<u64>) -> LoadArgs {
    LoadArgs {
        endpoint: vec![url.to_string()],
        failover: false,
        concurrency: 4,
        duration,
        max_requests,
        out: Some(out),
        seed: 1,
        allow_remote: false,
        ack_log: None,
        malformed_every: None,
        auth: Default::default(),
    }
}

#[tokio::test]
async fn stops_at_max_requests() {
    let server = spawn_with_delay(Vec::new(), Duration::from_millis(2)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let outcome = run_load(&args(&server.url, dir.path().join("o"), 30.0, Some(37)))
        .await
        .expect("runs");
    assert_eq!(outcome.requests_sent, 37);
    assert_eq!(server.calls(), 37, "the server saw exactly the budget");
    assert_eq!(outcome.ok, 37);
    assert!(outcome.elapsed_s < 10.0);
    assert_eq!(outcome.latency.count, 37);
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("o/report.json")).expect("read"),
    )
    .expect("json");
    assert_eq!(report["requests_sent"], 37);
    assert_eq!(report["kind"], "load");
    assert!(std::fs::metadata(dir.path().join("o/latency.png"))
        .map(|m| m.len() > 1000)
        .unwrap_or(false));
    assert!(std::fs::read_to_string(dir.path().join("o/report.md"))
        .expect("md")
        .contains("| 37 | 37 | 0 |"));
    // Multi-turn conversations keep their turns in order in one conversation.
    for (_, texts) in server.conversations() {
        if let Some(script) = CONVERSATIONS.iter().find(|turns| turns[0] == texts[0]) {
            assert_eq!(&texts[..], &script[..texts.len()]);
        }
    }
}

#[tokio::test]
async fn acknowledged_handoffs_are_logged_once_each() {
    const HANDOFF_TEXT: &str = "I've messaged FOUR times about my order and still zero reply!!!";
    let script = vec![(
        HANDOFF_TEXT,
        crate::test_server::Reply::handoff(
            "human_agent",
            0.9,
            xiaoer_domain::HandoffReason::CustomerRequest,
        ),
    )];
    let server = spawn_with_delay(script, Duration::from_millis(1)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ack_log = dir.path().join("acks.txt");
    let mut load = args(&server.url, dir.path().join("o"), 30.0, Some(200));
    load.ack_log = Some(ack_log.clone());
    let outcome = run_load(&load).await.expect("runs");
    let logged: Vec<String> = std::fs::read_to_string(&ack_log)
        .expect("ack log written")
        .lines()
        .map(str::to_string)
        .collect();
    let handed_off: BTreeSet<String> = server
        .conversations()
        .into_iter()
        .filter(|(_, texts)| texts.iter().any(|t| t == HANDOFF_TEXT))
        .map(|(id, _)| format!("handoff handoff-{id}"))
        .collect();
    assert!(!handed_off.is_empty(), "the mix reached the handoff turn");
    let (handoff_lines, feedback_lines): (Vec<String>, Vec<String>) =
        logged.into_iter().partition(|l| l.starts_with("handoff "));
    assert_eq!(
        handoff_lines.iter().cloned().collect::<BTreeSet<_>>(),
        handed_off
    );
    assert_eq!(handoff_lines.len(), handed_off.len(), "each id once");
    assert_eq!(outcome.handoffs_acknowledged, handoff_lines.len() as u64);
    // Every 4th answer of each of the 4 workers was rated, and each
    // acknowledged rating is logged.
    assert!(outcome.feedback_acknowledged <= outcome.ok / 4);
    assert!(outcome.feedback_acknowledged + 4 > outcome.ok / 4);
    assert_eq!(feedback_lines.len() as u64, outcome.feedback_acknowledged);
    assert!(feedback_lines
        .iter()
        .all(|l| l.starts_with("feedback load-") && l.split(' ').count() == 3));
}

#[tokio::test]
async fn malformed_requests_take_their_slots_and_wrong_answers_are_flagged() {
    // The fake server validates nothing: it answers OK to every malformed
    // request (flagged as unexpected) except the 5 MB one, which gRPC
    // itself refuses before the handler.
    let server = spawn_with_delay(Vec::new(), Duration::ZERO).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut load = args(&server.url, dir.path().join("o"), 30.0, Some(30));
    load.malformed_every = Some(3);
    let outcome = run_load(&load).await.expect("runs");
    assert_eq!(
        outcome.requests_sent, 30,
        "malformed requests count against the budget"
    );
    assert_eq!(outcome.ok, 20);
    assert_eq!(
        outcome.malformed_by_code,
        BTreeMap::from([("Ok".to_string(), 9), ("OutOfRange".to_string(), 1)])
    );
    assert_eq!(outcome.malformed_unexpected.values().sum::<u64>(), 9);
    assert!(outcome.malformed_unexpected.contains_key("empty text: Ok"));
    assert!(!outcome
        .malformed_unexpected
        .keys()
        .any(|k| k.starts_with("5 MB")));
    assert_eq!(
        server.calls(),
        29,
        "the 5 MB message never reached the handler"
    );
    assert!(std::fs::read_to_string(dir.path().join("o/report.md"))
        .expect("md")
        .contains("Not refused as expected: 9."));
}

#[tokio::test]
async fn stops_at_the_deadline() {
    // Each call takes 150 ms, so the deadline lands mid-call.
    let server = spawn_with_delay(Vec::new(), Duration::from_millis(150)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let outcome = run_load(&args(&server.url, dir.path().join("o"), 0.5, None))
        .await
        .expect("runs");
    let wall = started.elapsed().as_secs_f64();
    assert!(outcome.elapsed_s < 0.5 + 0.2, "ran {} s", outcome.elapsed_s);
    assert!(wall < 3.0, "whole command took {wall} s");
    assert!(outcome.ok >= 4, "{} ok", outcome.ok);
    assert!(
        outcome.cut_at_deadline >= 1,
        "calls in flight at the deadline are cut"
    );
    assert_eq!(outcome.requests_sent, outcome.ok + outcome.cut_at_deadline);
}

#[tokio::test]
async fn errors_are_counted_by_code() {
    let server = spawn_with_delay(Vec::new(), Duration::ZERO).await;
    let client = connect(&server.url, &Default::default())
        .await
        .expect("connects");
    let limits = Arc::new(Limits {
        deadline: tokio::time::Instant::now() + Duration::from_secs(5),
        max_requests: Some(3),
        sent: AtomicU64::new(0),
    });
    const FAILING: &[&[&str]] = &[&[FAIL_TEXT, BUSY_TEXT]];
    let targets = Targets {
        clients: vec![client],
        current: 0,
        failover: true,
    };
    let mix = Mix {
        conversations: FAILING,
        prefix: "t".into(),
        malformed_every: None,
        feedback: false,
    };
    let stats = run_worker(
        targets,
        Arc::clone(&limits),
        StdRng::seed_from_u64(3),
        mix,
        indicatif::ProgressBar::hidden(),
    )
    .await;
    assert_eq!(stats.ok, 0);
    assert_eq!(stats.errors.get("Internal"), Some(&2));
    assert_eq!(stats.errors.get("ResourceExhausted"), Some(&1));
    assert_eq!(
        stats.failovers, 0,
        "only UNAVAILABLE moves to another endpoint"
    );
    assert_eq!(
        stats.refused_latencies_ms.len(),
        1,
        "only overload refusals are timed as refusals"
    );
    assert_eq!(
        stats.conversations, 2,
        "the third request opened a second conversation"
    );
    assert_eq!(limits.sent.load(Ordering::SeqCst), 3);
    assert_eq!(server.calls(), 3);
}

#[test]
fn only_loopback_unless_allowed() {
    assert!(check_target("http://127.0.0.1:50051", false).is_ok());
    assert!(check_target("http://localhost:1", false).is_ok());
    assert!(check_target("http://[::1]:1", false).is_ok());
    assert!(check_target("127.0.0.9:5", false).is_ok());
    let refused = check_target("http://192.168.1.20:50051", false).expect_err("remote");
    assert!(refused.to_string().contains("--allow-remote"));
    assert!(check_target("http://192.168.1.20:50051", true).is_ok());
}

#[test]
fn mix_is_varied_and_not_taken_from_the_case_suite() {
    let messages: Vec<&str> = CONVERSATIONS
        .iter()
        .flat_map(|turns| turns.iter().copied())
        .collect();
    assert!(
        (38..=50).contains(&messages.len()),
        "{} messages",
        messages.len()
    );
    assert!(
        CONVERSATIONS.iter().any(|turns| turns.len() > 1)
            && CONVERSATIONS.iter().any(|turns| turns.len() == 1)
    );
    let files = crate::cases::resolve_case_files(&[]).expect("case folder");
    let suite = crate::cases::load_suite(&files).expect("suite");
    for case in &suite.cases {
        for turn in &case.turns {
            assert!(
                !messages.contains(&turn.as_str()),
                "{turn:?} is an eval case text ({})",
                case.id
            );
        }
    }
}
