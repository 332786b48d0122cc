use super::*;
use crate::cases::Action;
use crate::test_server::{spawn, Reply};
use xiaoer_domain::HandoffReason;

fn case_line(
    id: &str,
    turns: &[&str],
    action: &str,
    intent: &str,
    articles: &[&str],
    reason: &str,
) -> String {
    serde_json::json!({
        "id": id, "lang": "en", "turns": turns,
        "expect": {"action": action, "intent": intent, "articles": articles, "handoff_reason": reason}
    })
    .to_string()
}

fn args(files: Vec<PathBuf>, out: PathBuf, baseline: Option<PathBuf>) -> CasesArgs {
    CasesArgs {
        files,
        endpoint: None,
        out: Some(out),
        baseline,
        tolerance: 2.0,
        concurrency: 2,
        model_version: Some("test-model".into()),
        auth: Default::default(),
    }
}

fn bot() -> Vec<(&'static str, Reply)> {
    vec![
        (
            "where is my parcel",
            Reply::answer("order_tracking", 0.9, "order-tracking-howto"),
        ),
        (
            "coupon?",
            Reply::answer("price_and_promotions", 0.6, "price-protection"),
        ),
        (
            "agent please",
            Reply::handoff("human_agent", 0.95, HandoffReason::CustomerRequest),
        ),
        ("tell me a joke", Reply::clarify("out_of_scope", 0.4)),
    ]
}

#[tokio::test]
async fn runs_cases_end_to_end_and_writes_the_report() {
    let server = spawn(bot()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = dir.path().join("c.jsonl");
    let lines = [
        case_line(
            "pass-1",
            &["hello", "where is my parcel"],
            "ANSWER",
            "order_tracking",
            &["order-tracking-howto"],
            "",
        ),
        case_line(
            "fail-src",
            &["coupon?"],
            "ANSWER",
            "price_and_promotions",
            &["coupons"],
            "",
        ),
        case_line(
            "pass-2",
            &["agent please"],
            "HANDOFF",
            "human_agent",
            &[],
            "CUSTOMER_REQUEST",
        ),
        case_line(
            "fail-act",
            &["tell me a joke"],
            "HANDOFF",
            "out_of_scope",
            &[],
            "NEGATIVE_SENTIMENT",
        ),
    ];
    std::fs::write(&cases, lines.join("\n")).expect("write");
    let out = dir.path().join("report");
    let outcome = run_cases(&args(vec![cases.clone()], out.clone(), None), &server.url)
        .await
        .expect("runs");
    assert_eq!((outcome.passed, outcome.failed), (2, 2));
    assert!(!outcome.regressed);
    assert_eq!(outcome.headline.handoff_recall, Some(0.5));
    // Multi-turn: both turns went to one conversation, in order.
    let conversations = server.conversations();
    let multi = conversations
        .iter()
        .find(|(_, texts)| texts.len() == 2)
        .expect("a two-turn conversation");
    assert_eq!(
        multi.1,
        vec!["hello".to_string(), "where is my parcel".to_string()]
    );
    assert_eq!(conversations.len(), 4, "each case in a fresh conversation");

    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("report.json")).expect("report.json"),
    )
    .expect("json");
    assert_eq!(report["passed"], 2);
    assert_eq!(report["model_version"], "test-model");
    assert_eq!(report["data"]["case_count"], 4);
    assert_eq!(
        report["data"]["cases_sha256"].as_str().map(str::len),
        Some(64)
    );
    assert_eq!(report["metrics"]["headline"]["action_accuracy"], 0.75);
    assert_eq!(report["failed_cases"].as_array().map(Vec::len), Some(2));
    let md = std::fs::read_to_string(out.join("report.md")).expect("report.md");
    assert!(md.contains("2 passed, 2 failed"));
    assert!(md.contains("fail-src"));
    for png in [
        "confusion.png",
        "reliability.png",
        "coverage.png",
        "latency.png",
    ] {
        assert!(
            std::fs::metadata(out.join(png))
                .map(|m| m.len() > 1000)
                .unwrap_or(false),
            "{png}"
        );
    }

    // The same run as its own baseline: no regression. A baseline that
    // was much better: regression.
    let again = run_cases(
        &args(
            vec![cases.clone()],
            dir.path().join("r2"),
            Some(out.join("report.json")),
        ),
        &server.url,
    )
    .await
    .expect("runs");
    assert!(!again.regressed);
    assert_eq!(
        again.comparison.as_ref().and_then(|c| c.same_cases),
        Some(true)
    );
    let mut better = report.clone();
    better["metrics"]["headline"]["action_accuracy"] = serde_json::json!(0.9);
    let better_path = dir.path().join("better.json");
    std::fs::write(&better_path, better.to_string()).expect("write");
    let gated = run_cases(
        &args(vec![cases], dir.path().join("r3"), Some(better_path)),
        &server.url,
    )
    .await
    .expect("runs");
    assert!(gated.regressed);
}

#[tokio::test]
async fn malformed_cases_fail_before_any_request() {
    let server = spawn(bot()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = dir.path().join("bad.jsonl");
    let good = case_line(
        "ok",
        &["where is my parcel"],
        "ANSWER",
        "order_tracking",
        &[],
        "",
    );
    std::fs::write(&cases, format!("{good}\n{{\"id\": \"x\"}}\n")).expect("write");
    let err = run_cases(
        &args(vec![cases.clone()], dir.path().join("o"), None),
        &server.url,
    )
    .await
    .expect_err("malformed");
    assert!(
        err.to_string()
            .starts_with(&format!("{}:2: ", cases.display())),
        "{err}"
    );
    assert!(server.conversations().is_empty(), "nothing was sent");
    assert!(
        !dir.path().join("o").exists(),
        "no report folder for a run that never started"
    );
}

#[tokio::test]
async fn failed_calls_fail_their_case() {
    let server = spawn(bot()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = dir.path().join("c.jsonl");
    std::fs::write(
        &cases,
        case_line("boom", &["__fail__"], "ANSWER", "greeting", &[], ""),
    )
    .expect("write");
    let outcome = run_cases(&args(vec![cases], dir.path().join("o"), None), &server.url)
        .await
        .expect("runs");
    assert_eq!((outcome.passed, outcome.failed), (0, 1));
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("o/report.json")).expect("read"),
    )
    .expect("json");
    let line = report["failed_cases"][0].as_str().unwrap_or_default();
    assert!(line.contains("got error Internal"), "{line}");
    assert_eq!(
        report["results"][0]["got"]["action"],
        Action::Unspecified.as_str()
    );
}
