//! `xiaoer insights` end to end: a store seeded through the real server
//! (Reply, a handoff claimed and answered by an agent, ratings, a load-test
//! conversation), then the command run as a process; every figure of its
//! report.json is checked against counts written out by hand here. Bad
//! input gets a clear message and a non-zero exit; an empty store is a valid,
//! empty report.

use std::path::Path;
use std::process::{Command, Output};

use tonic::transport::Channel;
use xiaoer_proto::v1 as pb;
use xiaoer_proto::v1::auto_reply_client::AutoReplyClient;
use xiaoer_proto::v1::handoffs_client::HandoffsClient;
use xiaoer_service::config::ServeArgs;
use xiaoer_service::embedded::EmbeddedServer;

fn insights(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xiaoer"))
        .arg("insights")
        .args(args)
        .env_remove("XIAOER_DATABASE_URL")
        .output()
        .unwrap()
}

fn report(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap()
}

async fn say(
    shop: &mut AutoReplyClient<Channel>,
    conversation: &str,
    text: &str,
    channel: &str,
) -> pb::ReplyResponse {
    shop.reply(pb::ReplyRequest {
        conversation_id: conversation.into(),
        text: text.into(),
        channel: channel.into(),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_counts_what_the_server_recorded() {
    let data = tempfile::tempdir().unwrap();
    let server = EmbeddedServer::start(ServeArgs {
        data_dir: Some(data.path().to_path_buf()),
        ..ServeArgs::default()
    })
    .unwrap();
    let channel = Channel::from_shared(server.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut shop = AutoReplyClient::new(channel.clone());
    let mut desk = HandoffsClient::new(channel);
    let answer = pb::Action::Answer as i32;
    let handoff = pb::Action::Handoff as i32;

    // Two answered conversations, both rated.
    let a = say(&mut shop, "conv-a", "退货的话运费是谁出？", "web").await;
    let b = say(
        &mut shop,
        "conv-b",
        "how many days until a refund reaches my card?",
        "web",
    )
    .await;
    assert_eq!((a.action, b.action), (answer, answer), "{a:?}\n{b:?}");
    for (conversation, turn, rating, comment) in [
        ("conv-a", &a.turn_id, 5, ""),
        ("conv-b", &b.turn_id, 2, "too vague"),
    ] {
        shop.rate_reply(pb::RateReplyRequest {
            conversation_id: conversation.into(),
            turn_id: turn.clone(),
            rating,
            comment: comment.into(),
        })
        .await
        .unwrap();
    }
    // A handoff an agent claims, answers from a draft and resolves.
    let c = say(&mut shop, "conv-c", "转人工", "app").await;
    assert_eq!(c.action, handoff, "{c:?}");
    let c_handoff = c.handoff.unwrap();
    desk.claim_handoff(pb::ClaimHandoffRequest {
        handoff_id: c_handoff.handoff_id.clone(),
        agent_id: "amy".into(),
    })
    .await
    .unwrap();
    let draft = c_handoff.suggested_replies[0].text.clone();
    desk.post_agent_message(pb::PostAgentMessageRequest {
        handoff_id: c_handoff.handoff_id.clone(),
        agent_id: "amy".into(),
        text: draft.clone(),
        suggestion_text: draft,
        ..Default::default()
    })
    .await
    .unwrap();
    desk.resolve_handoff(pb::ResolveHandoffRequest {
        handoff_id: c_handoff.handoff_id.clone(),
        resolution: "answered".into(),
    })
    .await
    .unwrap();
    // A handoff still waiting, and load-test traffic that must be left out.
    let d = say(
        &mut shop,
        "conv-d",
        "I want to talk to a real person please",
        "web",
    )
    .await;
    assert_eq!(d.action, handoff, "{d:?}");
    say(&mut shop, "conv-load", "hello", "loadtest").await;

    let out = data.path().join("report");
    let run = insights(&[
        "--data-dir",
        data.path().to_str().unwrap(),
        "--since",
        "1d",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        stdout.contains("4 conversations, 4 shopper messages"),
        "{stdout}"
    );
    let r = report(&out);
    // Worked out by hand from the calls above.
    assert_eq!(r["load_test_conversations_excluded"], 1);
    assert_eq!(r["conversations"], 4);
    assert_eq!(r["messages"], 4);
    let days = r["per_day"].as_array().unwrap();
    let day_sum: u64 = days
        .iter()
        .map(|d| d["conversations"].as_u64().unwrap())
        .sum();
    assert_eq!(day_sum, 4);
    let res = &r["resolution"];
    assert_eq!(res["conversations"], 4);
    assert_eq!(res["contained"], 2, "a and b never reached a person");
    assert_eq!(res["pending"], 2, "their answers are younger than 24 h");
    assert_eq!(res["verified"], 0);
    assert_eq!(res["containment_rate"], 0.5);
    assert_eq!(r["resolution_per_language"]["zh"]["conversations"], 2);
    assert_eq!(r["resolution_per_language"]["en"]["conversations"], 2);
    let h = &r["handoffs"];
    assert_eq!(h["total"], 2);
    assert_eq!(h["by_reason"]["CUSTOMER_REQUEST"], 2);
    let queued: u64 = h["by_queue"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(queued, 2);
    assert_eq!(h["time_to_claim"]["count"], 1);
    assert_eq!(h["time_to_resolve"]["count"], 1);
    assert_eq!(h["with_due_time"], 2);
    assert_eq!(
        h["sla_breached"], 0,
        "claimed at once; the other is due later"
    );
    assert_eq!(
        r["clarify"]["of"], 4,
        "four bot turns, the handoff notices included"
    );
    assert_eq!(r["clarify"]["count"], 0);
    assert_eq!(
        r["gap_candidates"], 1,
        "only conv-b's message: its answer was rated 2"
    );
    assert!(r["gaps"].is_null(), "one message makes no group");
    assert_eq!(r["drafts"]["total"], 1);
    assert_eq!(r["drafts"]["used"], 1);
    let s = &r["satisfaction"];
    assert_eq!(s["overall"]["count"], 2);
    assert_eq!(s["overall"]["average"], 3.5);
    assert_eq!(s["overall"]["csat"], 0.5);
    assert_eq!(s["distribution"]["2"], 1);
    assert_eq!(s["lowest"].as_array().unwrap().len(), 1);
    assert_eq!(s["lowest"][0]["comment"], "too vague");
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("Contained (no person needed): **50.0%** (2/4)"),
        "{md}"
    );
    assert!(
        md.contains("Shopper messages the bot could not answer: 1"),
        "{md}"
    );
    for chart in [
        "volume.png",
        "containment.png",
        "handoffs.png",
        "ratings.png",
    ] {
        let size = std::fs::metadata(out.join(chart)).unwrap().len();
        assert!(size > 2_000, "{chart}: {size} bytes");
    }

    // A window before any of it: a valid, empty report.
    let empty = data.path().join("empty");
    let run = insights(&[
        "--data-dir",
        data.path().to_str().unwrap(),
        "--since",
        "2001-01-01",
        "--until",
        "2001-01-02",
        "--out",
        empty.to_str().unwrap(),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(report(&empty)["conversations"], 0);
    drop(server);
}

#[test]
fn bad_input_is_refused_with_a_clear_message() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap();
    for (args, says) in [
        (
            vec!["--since", "1d", "--until", "2d"],
            "must be before --until",
        ),
        (vec!["--since", "yesterday"], "or a date like 2026-12-01"),
        (vec!["--resolution-window", "24"], "no unit"),
        (vec!["--colour", "blue"], "unexpected argument"),
        (vec![], "no database at"),
    ] {
        let mut all = vec!["--data-dir", dir];
        all.extend(args.iter().copied());
        let run = insights(&all);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(!run.status.success(), "{args:?} accepted");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
