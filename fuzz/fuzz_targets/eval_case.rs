//! Eval case files (`evals/cases/*.jsonl`) through `xiaoer_evals::cases::parse_cases`.
//!
//! Case files are hand-written and `xiaoer eval cases` accepts any path, so
//! the parser must turn every text into cases or one `file:line: reason`
//! error. Checked beyond "no panic":
//! * success yields one case per non-blank line, in line order, each one
//!   passing the validation rules the runner relies on;
//! * a case written back out in the file format parses to the same case;
//! * an error is `Malformed`, points at an existing non-blank line and says why.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use xiaoer_evals::cases::{parse_cases, Action, Case, CaseError};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let file = Path::new("fuzz.jsonl");
    let non_blank: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, _)| i + 1)
        .collect();
    match parse_cases(file, &text) {
        Ok(cases) => {
            let lines: Vec<usize> = cases.iter().map(|c| c.origin.line).collect();
            assert_eq!(lines, non_blank, "one case per non-blank line, in order");
            for case in &cases {
                check_valid(case);
                let back = parse_cases(file, &to_line(case)).expect("a parsed case re-parses");
                let mut expected = case.clone();
                expected.origin.line = 1;
                assert_eq!(back, vec![expected], "write-back round trip");
            }
        }
        Err(CaseError::Malformed { origin, reason }) => {
            assert!(
                non_blank.contains(&origin.line),
                "error at line {} which is not a non-blank line of the input",
                origin.line
            );
            assert_eq!(origin.file, file);
            assert!(!reason.trim().is_empty(), "an error must say why");
        }
        Err(other) => panic!("parse_cases on text returned a file-level error: {other}"),
    }
});

/// The rules `parse_line` promises, restated independently.
fn check_valid(case: &Case) {
    assert!(!case.id.trim().is_empty());
    assert!(!case.turns.is_empty());
    assert!(case.turns.iter().all(|t| !t.trim().is_empty()));
    let e = &case.expect;
    assert_ne!(e.action, Action::Unspecified);
    assert!(!e.intent.trim().is_empty());
    assert_eq!(e.action == Action::Handoff, e.handoff_reason.is_some());
    assert!(e.action == Action::Answer || e.articles.is_empty());
    assert!(e.articles.iter().all(|a| !a.trim().is_empty()));
}

/// One case in the case-file format (the inverse of the parser).
fn to_line(case: &Case) -> String {
    let e = &case.expect;
    json!({
        "id": case.id,
        "lang": case.lang,
        "turns": case.turns,
        "expect": {
            "action": e.action,
            "intent": e.intent,
            "articles": e.articles,
            "handoff_reason": e.handoff_reason.map(|r| r.as_str()).unwrap_or(""),
        },
        "customer": case.customer,
    })
    .to_string()
}
