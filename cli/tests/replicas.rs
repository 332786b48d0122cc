//! Three `xiaoer serve` processes on one PostgreSQL, as three pods behind a
//! Kubernetes Service (issue #24): a handoff made through one replica is
//! listed, claimed and resolved through another; a claim race across
//! replicas has one winner; a Reload sent to one replica reaches all three;
//! retention runs once for the fleet; the per-conversation rate limit holds
//! across replicas; and `kill -9` of a replica under load loses no
//! acknowledged handoff or feedback.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::Serve;
use sqlx::Row;
use tonic::transport::Channel;
use tonic::Code;
use tonic_types::StatusExt;
use xiaoer_domain::{Intent, TurnRole};
use xiaoer_proto::v1 as pb;
use xiaoer_proto::v1::auto_reply_client::AutoReplyClient;
use xiaoer_proto::v1::handoffs_client::HandoffsClient;
use xiaoer_proto::v1::knowledge_base_client::KnowledgeBaseClient;
use xiaoer_service::clock::now_ms;
use xiaoer_service::store::{ConversationMeta, Exchange, Store, TurnRecord};

/// How soon every replica must serve a reloaded knowledge base: one poll
/// (1 s) plus one reload (re-encoding the one edited article),
/// with room for a debug build sharing two cores with two other replicas.
const RELOAD_SPREAD: Duration = Duration::from_secs(30);
/// The rate limit the replicas run with: bursts of 5, then 1 a minute.
const BURST: usize = 5;

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

/// A copy of the shipped knowledge base, one per replica, as each pod
/// mounts its own ConfigMap volume.
fn copy_kb(to: &Path) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../knowledge-base");
    std::fs::create_dir_all(to.join("articles")).unwrap();
    std::fs::copy(from.join("shop.toml"), to.join("shop.toml")).unwrap();
    for entry in std::fs::read_dir(from.join("articles")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, to.join("articles").join(path.file_name().unwrap())).unwrap();
    }
}

fn turn(role: TurnRole, at_ms: i64) -> TurnRecord {
    TurnRecord {
        id: uuid::Uuid::new_v4().simple().to_string(),
        role,
        text: "运费险怎么理赔".into(),
        intent: Intent::ReturnRequest,
        sentiment: 2,
        anger: 0.0,
        action: 1,
        articles: vec![],
        at_ms,
        agent_id: String::new(),
    }
}

/// Conversations idle for 40 days, for retention to find.
async fn seed_stale(store: &Store, prefix: &str, count: usize) -> Vec<String> {
    let at = now_ms() - 40 * 86_400_000;
    let mut ids = Vec::new();
    for i in 0..count {
        let id = format!("{prefix}-{i}");
        store
            .record_exchange(&Exchange {
                conversation: ConversationMeta {
                    id: id.clone(),
                    shop_id: "demo".into(),
                    channel: "web".into(),
                    language: "zh".into(),
                },
                customer: turn(TurnRole::Customer, at),
                bot: Some(turn(TurnRole::Bot, at)),
                open_handoff: None,
                client_turn_id: None,
                response: vec![],
                handoff: None,
            })
            .await
            .unwrap();
        ids.push(id);
    }
    ids
}

async fn channel(replica: &Serve) -> Channel {
    Channel::from_shared(replica.url())
        .unwrap()
        .connect()
        .await
        .unwrap()
}

fn ask(conversation: &str, text: &str) -> pb::ReplyRequest {
    pb::ReplyRequest {
        conversation_id: conversation.into(),
        text: text.into(),
        ..Default::default()
    }
}

/// Forgets earlier retention runs on this test database (a rerun within
/// the hour would otherwise, rightly, skip its purge as done recently).
async fn forget_earlier_purges(url: &str) {
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(url)
        .await
        .unwrap();
    sqlx::query("DELETE FROM audit_log WHERE actor = 'retention'")
        .execute(&mut conn)
        .await
        .unwrap();
}

/// Retention outcomes audited since `since` (unix ms).
async fn purges_since(url: &str, since: i64) -> Vec<String> {
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(url)
        .await
        .unwrap();
    sqlx::query(
        "SELECT outcome FROM audit_log WHERE actor = 'retention' AND action = 'purge' AND at >= $1",
    )
    .bind(since)
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .iter()
    .map(|row| row.get::<String, _>(0))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_on_one_database_act_as_one_service() {
    let Some(url) = postgres_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&url).await.unwrap();
    let run = uuid::Uuid::new_v4().simple().to_string();
    let stale = seed_stale(&store, &format!("stale-{run}"), 5).await;
    forget_earlier_purges(&url).await;
    let started_ms = now_ms();

    let mut replicas: Vec<Serve> = ["a", "b", "c"]
        .iter()
        .map(|name| {
            let kb = dir.path().join(format!("kb-{name}"));
            copy_kb(&kb);
            let data = dir.path().join(format!("data-{name}"));
            Serve::start(
                dir.path(),
                name,
                &[
                    "--database-url",
                    &url,
                    "--data-dir",
                    data.to_str().unwrap(),
                    "--kb-dir",
                    kb.to_str().unwrap(),
                    // Only a Reload may change what they serve in this test.
                    "--kb-watch",
                    "false",
                    "--retention-days",
                    "30",
                    "--conversation-burst",
                    &BURST.to_string(),
                    "--conversation-rate",
                    "1",
                    "--drain-window",
                    "0s",
                ],
            )
        })
        .collect();
    for replica in &mut replicas {
        replica.wait_ready();
    }
    let channels = [
        channel(&replicas[0]).await,
        channel(&replicas[1]).await,
        channel(&replicas[2]).await,
    ];
    let shop = |i: usize| AutoReplyClient::new(channels[i].clone());
    let desk = |i: usize| HandoffsClient::new(channels[i].clone());

    // Retention: three replicas started together; the fleet purged once.
    for id in &stale {
        assert!(
            store.conversation_turns(id, 5).await.unwrap().is_empty(),
            "{id} purged"
        );
    }
    let purges = purges_since(&url, started_ms).await;
    assert_eq!(
        purges.len(),
        1,
        "one purge for the fleet, not one per replica: {purges:?}"
    );
    let deleted: u64 = purges[0].trim_end_matches(" deleted").parse().unwrap();
    assert!(deleted >= stale.len() as u64, "{purges:?}");
    println!("retention: 1 purge for 3 replicas, {deleted} conversations deleted");

    // A handoff made through A is listed, claimed and resolved through B.
    let conversation = format!("fleet-{run}");
    let made = shop(0)
        .reply(ask(&conversation, "转人工，我要找真人客服"))
        .await
        .unwrap()
        .into_inner();
    let handoff_id = made.handoff.expect("handed off").handoff_id;
    // Every page of the waiting queue (the shared test database may hold
    // other tests' handoffs).
    let mut listed = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = desk(1)
            .list_handoffs(pb::ListHandoffsRequest {
                status: pb::HandoffStatus::Waiting as i32,
                page_size: 100,
                page_token: page_token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        listed.extend(page.handoffs.into_iter().map(|h| h.handoff_id));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert!(listed.contains(&handoff_id), "B lists the handoff A made");
    desk(1)
        .claim_handoff(pb::ClaimHandoffRequest {
            handoff_id: handoff_id.clone(),
            agent_id: "amy".into(),
        })
        .await
        .unwrap();
    let resolved = desk(1)
        .resolve_handoff(pb::ResolveHandoffRequest {
            handoff_id: handoff_id.clone(),
            resolution: "answered by phone".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resolved.status, pb::HandoffStatus::Resolved as i32);
    let seen_on_c = desk(2)
        .get_handoff(pb::GetHandoffRequest {
            handoff_id: handoff_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(seen_on_c.status, pb::HandoffStatus::Resolved as i32);

    // A claim race across replicas: exactly one winner.
    let raced = shop(2)
        .reply(ask(&format!("race-{run}"), "human agent please"))
        .await
        .unwrap()
        .into_inner()
        .handoff
        .expect("handed off")
        .handoff_id;
    let claim = |i: usize, agent: &str| {
        let mut client = desk(i);
        let request = pb::ClaimHandoffRequest {
            handoff_id: raced.clone(),
            agent_id: agent.into(),
        };
        async move { client.claim_handoff(request).await }
    };
    let (b, c) = tokio::join!(claim(1, "bo"), claim(2, "cy"));
    let outcomes = [b.map(|_| ()), c.map(|_| ())];
    assert_eq!(
        outcomes.iter().filter(|o| o.is_ok()).count(),
        1,
        "{outcomes:?}"
    );
    assert!(outcomes
        .iter()
        .any(|o| matches!(o, Err(s) if s.code() == Code::FailedPrecondition)));

    // The rate limit holds across replicas: messages spread over A, B, C
    // draw on one budget, and the refusal says when to retry.
    let flood = format!("flood-{run}");
    for i in 0..BURST {
        shop(i % 3)
            .reply(ask(&flood, "运费险怎么理赔"))
            .await
            .unwrap_or_else(|s| panic!("message {i} of the burst: {s}"));
    }
    for i in 0..3 {
        let refused = shop(i)
            .reply(ask(&flood, "运费险怎么理赔"))
            .await
            .expect_err("over the shared burst");
        assert_eq!(
            refused.code(),
            Code::ResourceExhausted,
            "replica {i}: {refused:?}"
        );
        let retry = refused.get_details_retry_info().and_then(|r| r.retry_delay);
        assert!(retry.is_some_and(|d| d > Duration::ZERO), "{refused:?}");
    }

    // Reload through A reaches B and C: every pod's folder has the edit
    // (a ConfigMap update), none watches it, one Reload goes through A.
    for name in ["a", "b", "c"] {
        let path = dir
            .path()
            .join(format!("kb-{name}/articles/account-password-reset.md"));
        let text = std::fs::read_to_string(&path).unwrap();
        let edited = text.replacen(
            "en = \"Login problems and password reset\"",
            "en = \"Zebra login problems and password reset\"",
            1,
        );
        assert_ne!(text, edited, "the edit applies");
        std::fs::write(&path, edited).unwrap();
    }
    let zebra_titles = |i: usize| {
        let mut kb = KnowledgeBaseClient::new(channels[i].clone());
        async move {
            kb.search(pb::SearchRequest {
                query: "I forgot my password and cannot log in".into(),
                locale: "en".into(),
                limit: 10,
            })
            .await
            .unwrap()
            .into_inner()
            .results
            .iter()
            .any(|r| r.title.starts_with("Zebra"))
        }
    };
    assert!(
        !zebra_titles(1).await,
        "B serves the old articles before the Reload"
    );
    let reload_started = Instant::now();
    let reloaded = KnowledgeBaseClient::new(channels[0].clone())
        .reload(pb::ReloadRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(zebra_titles(0).await, "A serves the reloaded articles");
    for i in [1, 2] {
        while !zebra_titles(i).await {
            assert!(
                reload_started.elapsed() < RELOAD_SPREAD,
                "replica {i} did not follow the Reload within {RELOAD_SPREAD:?}; its log:\n{}",
                replicas[i].log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    println!(
        "reload: version {} on all three replicas {:.1} s after the Reload",
        reloaded.version,
        reload_started.elapsed().as_secs_f64()
    );

    // kill -9 of C under load: clients fail over to A and B, and every
    // handoff and feedback acknowledged to them is in the database.
    let acks = dir.path().join("acks.txt");
    let endpoints: Vec<String> = replicas.iter().map(Serve::url).collect();
    let load = Command::new(env!("CARGO_BIN_EXE_xiaoer"))
        .args(["eval", "load", "--endpoint", &endpoints.join(",")])
        .args(["--failover", "--concurrency", "6", "--duration", "20"])
        .arg("--ack-log")
        .arg(&acks)
        .arg("--out")
        .arg(dir.path().join("load-report"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(8)).await;
    replicas[2].kill_hard();
    let output = tokio::task::spawn_blocking(move || load.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let summary = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(output.status.success(), "load run failed:\n{summary}");
    let lines = std::fs::read_to_string(&acks).unwrap();
    let mut handoffs = BTreeSet::new();
    let mut feedback = BTreeSet::new();
    for line in lines.lines() {
        match line.split(' ').collect::<Vec<_>>()[..] {
            ["handoff", id] => {
                handoffs.insert(id.to_string());
            }
            ["feedback", conversation, turn] => {
                feedback.insert((conversation.to_string(), turn.to_string()));
            }
            _ => panic!("unexpected ack line {line:?}"),
        }
    }
    assert!(!handoffs.is_empty() && !feedback.is_empty(), "{summary}");
    let mut lost_handoffs = 0;
    for id in &handoffs {
        if store.handoff(id).await.is_err() {
            lost_handoffs += 1;
        }
    }
    let stored: BTreeSet<(String, String)> = store
        .all_feedback()
        .await
        .unwrap()
        .into_iter()
        .map(|f| (f.conversation_id, f.turn_id))
        .collect();
    let lost_feedback = feedback.difference(&stored).count();
    println!(
        "kill -9 under load: {} handoffs and {} feedback acknowledged, {lost_handoffs} and {lost_feedback} of them missing\n{summary}",
        handoffs.len(),
        feedback.len()
    );
    assert_eq!((lost_handoffs, lost_feedback), (0, 0));
    assert!(summary.contains("failovers:"), "{summary}");

    // The survivors still serve, and stop cleanly.
    for replica in &mut replicas[..2] {
        replica.terminate();
        let status = replica.wait_exit(Duration::from_secs(60));
        assert!(
            status.is_some_and(|s| s.success()),
            "{status:?}:\n{}",
            replica.log_text()
        );
    }
}
