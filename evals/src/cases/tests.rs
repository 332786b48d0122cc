use super::*;

const GOOD: &str = r#"{"id": "a-1", "lang": "zh", "turns": ["在吗"], "expect": {"action": "ANSWER", "intent": "greeting", "articles": [], "handoff_reason": ""}}"#;

fn malformed(text: &str) -> String {
    match parse_cases(Path::new("suite.jsonl"), text) {
        Err(err) => err.to_string(),
        Ok(cases) => panic!("expected an error, parsed {cases:?}"),
    }
}

#[test]
fn parses_a_valid_case() {
    let cases = parse_cases(Path::new("s.jsonl"), &format!("\n{GOOD}\n")).expect("valid");
    assert_eq!(cases.len(), 1);
    let case = &cases[0];
    assert_eq!(case.id, "a-1");
    assert_eq!(case.lang, Lang::Zh);
    assert_eq!(case.expect.action, Action::Answer);
    assert_eq!(case.expect.handoff_reason, None);
    assert_eq!(
        case.origin.line, 2,
        "blank lines still count for line numbers"
    );
}

#[test]
fn parses_customer_context() {
    let line = r#"{"id": "o-1", "lang": "en", "turns": ["where is it"], "expect": {"action": "HANDOFF", "intent": "modify_order", "handoff_reason": "NEEDS_AGENT"}, "customer": {"customer_id": "c9", "orders": [{"order_id": "A1", "status": "shipped", "items": ["jacket"]}]}}"#;
    let cases = parse_cases(Path::new("o.jsonl"), line).expect("valid");
    let customer = cases[0].customer.as_ref().expect("customer parsed");
    let wire = pb::CustomerContext::from(customer);
    assert_eq!(wire.customer_id, "c9");
    assert_eq!(wire.orders[0].status, "shipped");
    assert_eq!(wire.orders[0].items, vec!["jacket".to_string()]);
    assert_eq!(
        cases[0].expect.handoff_reason,
        Some(HandoffReason::NeedsAgent)
    );
}

#[test]
fn errors_name_file_and_line() {
    let text = format!("{GOOD}\n{{not json\n");
    let message = malformed(&text);
    assert!(
        message.starts_with("suite.jsonl:2: invalid case JSON"),
        "{message}"
    );
    assert!(message.contains("column"), "{message}");
}

#[test]
fn rejects_semantic_mistakes() {
    let cases = [
        (
            r#"{"id": "", "lang": "zh", "turns": ["x"], "expect": {"action": "ANSWER", "intent": "greeting"}}"#,
            "empty id",
        ),
        (
            r#"{"id": "b", "lang": "zh", "turns": [], "expect": {"action": "ANSWER", "intent": "greeting"}}"#,
            "no turns",
        ),
        (
            r#"{"id": "b", "lang": "zh", "turns": ["x", " "], "expect": {"action": "ANSWER", "intent": "greeting"}}"#,
            "turn 2 is empty",
        ),
        (
            r#"{"id": "b", "lang": "fr", "turns": ["x"], "expect": {"action": "ANSWER", "intent": "greeting"}}"#,
            "unknown variant `fr`",
        ),
        (
            r#"{"id": "b", "lang": "zh", "turns": ["x"], "expect": {"action": "REFUSE", "intent": "greeting"}}"#,
            "unknown variant `REFUSE`",
        ),
        (
            r#"{"id": "b", "lang": "zh", "turns": ["x"], "expect": {"action": "HANDOFF", "intent": "complaint"}}"#,
            "HANDOFF needs a handoff_reason",
        ),
        (
            r#"{"id": "b", "lang": "zh", "turns": ["x"], "expect": {"action": "ANSWER", "intent": "greeting", "handoff_reason": "NEEDS_AGENT"}}"#,
            "only HANDOFF has one",
        ),
        (
            r#"{"id": "b", "lang": "zh", "turns": ["x"], "expect": {"action": "HANDOFF", "intent": "complaint", "handoff_reason": "BORED"}}"#,
            "unknown handoff_reason \"BORED\"",
        ),
        (
            r#"{"id": "b", "lang": "zh", "turns": ["x"], "expect": {"action": "CLARIFY", "intent": "out_of_scope", "articles": ["coupons"]}}"#,
            "only ANSWER cites articles",
        ),
        (
            r#"{"id": "b", "lang": "zh", "turns": ["x"], "expect": {"action": "ANSWER", "intent": ""}}"#,
            "expect.intent is empty",
        ),
        (
            r#"{"id": "b", "lang": "zh", "turns": ["x"], "expect": {"action": "ANSWER", "intent": "greeting", "artciles": []}}"#,
            "unknown field `artciles`",
        ),
        (
            r#"{"id": "b", "lang": "zh", "turns": ["x"], "expect": {"action": "UNSPECIFIED", "intent": "greeting"}}"#,
            "must be ANSWER, CLARIFY or HANDOFF",
        ),
    ];
    for (line, wanted) in cases {
        let message = malformed(line);
        assert!(message.starts_with("suite.jsonl:1: "), "{message}");
        assert!(
            message.contains(wanted),
            "{message} should mention {wanted}"
        );
    }
}

#[test]
fn duplicate_ids_across_files_point_at_both() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = dir.path().join("a.jsonl");
    let second = dir.path().join("b.jsonl");
    std::fs::write(&first, GOOD).expect("write");
    std::fs::write(&second, format!("\n{GOOD}\n")).expect("write");
    let err = load_suite(&[first.clone(), second.clone()]).expect_err("duplicate");
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("{}:2: duplicate id", second.display())),
        "{message}"
    );
    assert!(
        message.contains(&format!("{}:1", first.display())),
        "{message}"
    );
}

#[test]
fn suite_hash_tracks_content() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("a.jsonl");
    std::fs::write(&file, GOOD).expect("write");
    let before = load_suite(std::slice::from_ref(&file)).expect("load");
    assert_eq!(before.files[0].cases, 1);
    assert_eq!(before.sha256.len(), 64);
    std::fs::write(&file, GOOD.replace("在吗", "在不在")).expect("write");
    let after = load_suite(std::slice::from_ref(&file)).expect("load");
    assert_ne!(before.sha256, after.sha256);
}

#[test]
fn empty_file_and_empty_folder_are_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(matches!(
        resolve_case_files(&[dir.path().to_path_buf()]),
        Err(CaseError::NoFiles { .. })
    ));
    let file = dir.path().join("x.jsonl");
    std::fs::write(&file, "\n\n").expect("write");
    assert!(matches!(load_suite(&[file]), Err(CaseError::Empty { .. })));
    assert!(matches!(
        resolve_case_files(&[PathBuf::from("no/such/file.jsonl")]),
        Err(CaseError::NotFound { .. })
    ));
}

#[test]
fn shipped_suite_loads() {
    let files = resolve_case_files(&[]).expect("default case folder");
    let suite = load_suite(&files).expect("the shipped cases are valid");
    assert!(suite.cases.len() >= 400, "{} cases", suite.cases.len());
}
