use super::*;
use std::collections::BTreeMap;

fn shop() -> ShopProfile {
    let mut values = BTreeMap::new();
    values.insert("name_zh".to_string(), "小店".to_string());
    values.insert("name_en".to_string(), "Little Shop".to_string());
    ShopProfile {
        id: "demo".into(),
        values,
        service_hours: xiaoer_domain::ServiceHours::always_open(),
    }
}

const GOOD: &str = r#"+++
id = "return-policy"
title = { zh = "七天无理由退货", en = "7-day no-reason returns" }
tags = ["returns"]
intents = ["return_request"]
related = ["return-howto"]
last_reviewed = "2026-11-01"

[questions]
zh = ["能七天无理由退货吗", "不想要了能退吗"]
en = ["Can I return it within 7 days?"]
+++

# zh

亲，您好！{{name_zh}}支持七天无理由退货。

# en

Hello, {{name_en}} accepts returns within 7 days.
"#;

#[test]
fn parses_a_good_article_and_resolves_placeholders() {
    let parsed = parse_article(GOOD, Some(&shop()));
    assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
    let a = parsed.article.expect("article");
    assert_eq!(a.id(), "return-policy");
    assert_eq!(a.title(Language::En), "7-day no-reason returns");
    assert_eq!(a.intents(), ["return_request"]);
    assert_eq!(a.related(), ["return-howto"]);
    assert_eq!(a.tags(), ["returns"]);
    assert_eq!(a.last_reviewed().to_string(), "2026-11-01");
    assert_eq!(a.questions(Language::Zh).len(), 2);
    assert_eq!(a.answer(Language::Zh), "亲，您好！小店支持七天无理由退货。");
    assert_eq!(
        a.answer(Language::En),
        "Hello, Little Shop accepts returns within 7 days."
    );
    assert_eq!(parsed.related, vec![("return-howto".to_string(), 6)]);
}

#[test]
fn accepts_bare_toml_date_and_crlf() {
    let text = GOOD
        .replace("\"2026-11-01\"", "2026-11-01")
        .replace('\n', "\r\n");
    let parsed = parse_article(&text, Some(&shop()));
    assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
}

fn problems(text: &str) -> Vec<LineProblem> {
    parse_article(text, Some(&shop())).problems
}

#[test]
fn syntax_error_points_at_its_line() {
    let text = GOOD.replace("tags = [\"returns\"]", "tags = [\"returns\"");
    let p = problems(&text);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(matches!(p[0].0, Some(4) | Some(5)), "{p:?}");
    assert!(p[0].1.starts_with("front matter:"));
}

#[test]
fn missing_delimiters_are_reported() {
    assert_eq!(problems("# zh\nhi")[0].0, Some(1));
    assert!(problems("+++\nid = \"x\"\n")[0].1.contains("never closed"));
}

#[test]
fn missing_fields_are_each_reported() {
    let p = problems("+++\n+++\n# zh\n你好\n# en\nhi\n");
    let text: Vec<&str> = p.iter().map(|(_, m)| m.as_str()).collect();
    for field in [
        "`id`",
        "`title`",
        "`intents`",
        "`last_reviewed`",
        "`[questions]`",
    ] {
        assert!(
            text.iter().any(|m| m.contains(field)),
            "{field} not in {text:?}"
        );
    }
}

#[test]
fn unknown_fields_and_half_titles_are_reported() {
    assert!(!problems(&GOOD.replace("tags =", "tagz =")).is_empty());
    let p = problems(&GOOD.replace(", en = \"7-day no-reason returns\"", ""));
    assert!(
        p.iter()
            .any(|(l, m)| *l == Some(3) && m.contains("title.en")),
        "{p:?}"
    );
    let p = problems(&GOOD.replace("en = [\"Can I return it within 7 days?\"]", "en = []"));
    assert!(p.iter().any(|(_, m)| m.contains("questions.en")), "{p:?}");
}

#[test]
fn a_question_listed_twice_is_reported() {
    let p = problems(&GOOD.replace(
        "en = [\"Can I return it within 7 days?\"]",
        "en = [\"Can I return it within 7 days?\", \" can i return it within 7 days? \"]",
    ));
    assert!(
        p.iter()
            .any(|(_, m)| m.contains("questions.en") && m.contains("twice")),
        "{p:?}"
    );
}

#[test]
fn bad_intent_date_and_id_are_reported_on_their_lines() {
    let text = GOOD
        .replace("[\"return_request\"]", "[\"return_request\", \"refunds\"]")
        .replace("2026-11-01", "2026-02-30")
        .replace("id = \"return-policy\"", "id = \"Return_Policy\"");
    let p = problems(&text);
    assert!(
        p.iter()
            .any(|(l, m)| *l == Some(5) && m.contains("\"refunds\"")),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|(l, m)| *l == Some(7) && m.contains("last_reviewed")),
        "{p:?}"
    );
    assert!(
        p.iter().any(|(l, m)| *l == Some(2) && m.contains("a-z")),
        "{p:?}"
    );
}

#[test]
fn empty_or_missing_bodies_are_reported() {
    let p = problems(&GOOD.replace("Hello, {{name_en}} accepts returns within 7 days.", ""));
    assert!(
        p.iter()
            .any(|(l, m)| *l == Some(18) && m.contains("`# en` body is empty")),
        "{p:?}"
    );
    let p = problems(&GOOD.replace("# zh", "## zh"));
    assert!(
        p.iter().any(|(_, m)| m.contains("missing the `# zh` body")),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|(l, m)| *l == Some(14) && m.contains("before the first")),
        "{p:?}"
    );
}

#[test]
fn unknown_and_broken_placeholders_are_reported() {
    let p = problems(
        &GOOD
            .replace("{{name_zh}}", "{{hotline}}")
            .replace("{{name_en}}", "{{name_en"),
    );
    assert!(
        p.iter()
            .any(|(l, m)| *l == Some(16) && m.contains("unknown placeholder {{hotline}}")),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|(l, m)| *l == Some(20) && m.contains("without a closing")),
        "{p:?}"
    );
    let p = problems(&GOOD.replace("{{name_zh}}", "{{ Name }}"));
    assert!(
        p.iter().any(|(_, m)| m.contains("malformed placeholder")),
        "{p:?}"
    );
}

#[test]
fn banned_phrasing_is_reported_with_line() {
    let text = GOOD
        .replace("支持七天无理由退货。", "保证七天内一定退款，但不一定包邮。")
        .replace(
            "accepts returns",
            "definitely accepts 100 % of returns, GUARANTEED",
        );
    let p = problems(&text);
    let zh: Vec<_> = p.iter().filter(|(l, _)| *l == Some(16)).collect();
    let en: Vec<_> = p.iter().filter(|(l, _)| *l == Some(20)).collect();
    assert_eq!(zh.len(), 2, "{p:?}");
    assert_eq!(en.len(), 3, "{p:?}");
}

#[test]
fn banned_phrases_skip_negated_chinese_and_word_fragments() {
    assert!(banned_phrases("不一定，也不保证").is_empty());
    assert!(banned_phrases("guarantees are in the warranty card").len() == 1);
    assert!(banned_phrases("the guaranteedness").is_empty());
    assert_eq!(banned_phrases("百分之百肯定"), vec!["百分之百", "肯定"]);
}

#[test]
fn placeholders_left_alone_without_shop() {
    let parsed = parse_article(GOOD, None);
    assert!(parsed.problems.is_empty());
    assert!(parsed
        .article
        .expect("article")
        .answer(Language::Zh)
        .contains("{{name_zh}}"));
}

#[test]
fn review_date_validates_calendar() {
    assert!(ReviewDate::new(2024, 2, 29).is_some());
    assert!(ReviewDate::new(2025, 2, 29).is_none());
    assert!(ReviewDate::new(2025, 13, 1).is_none());
    assert!(ReviewDate::parse("2025-1-01").is_none());
    assert!(ReviewDate::parse("２０２５-01-01").is_none());
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn never_panics_on_arbitrary_text(text in any::<String>()) {
            let _ = parse_article(&text, Some(&shop()));
        }

        #[test]
        fn never_panics_on_framed_text(front in any::<String>(), body in any::<String>(), heading in proptest::sample::select(vec!["# zh", "# en", "#", "+++", "{{", ""])) {
            let text = format!("+++\n{front}\n+++\n{heading}\n{body}\n# en\n{body}");
            let _ = parse_article(&text, Some(&shop()));
            let _ = parse_article(&text, None);
        }

        #[test]
        fn never_panics_on_mutated_good_article(pos in 0usize..600, insert in any::<String>()) {
            let mut text = GOOD.to_string();
            let mut at = pos.min(text.len());
            while !text.is_char_boundary(at) { at -= 1; }
            text.insert_str(at, &insert);
            let _ = parse_article(&text, Some(&shop()));
        }
    }
}
