//! Knowledge-base articles (`knowledge-base/articles/*.md`) through
//! `xiaoer_kb::parse_article_text`, resolved against the shipped shop profile.
//!
//! Articles are edited by shop staff and reloaded into a live server, so the
//! parser must answer every text with an article or a list of problems a
//! person can act on. Checked beyond "no panic":
//! * an error lists at least one problem, each on an existing line of the file;
//! * an article has what the service relies on: a well-formed id, known
//!   intents, non-empty titles, questions and answers in both languages, and
//!   answers with every `{{placeholder}}` resolved;
//! * parsing is deterministic, and without a shop profile it finds no
//!   problem that it did not find with one (the profile only adds checks).
#![no_main]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use xiaoer_kb::{is_intent, parse_article_text, Article, Language, ShopProfile};

/// The shop profile the shipped articles are written against.
static SHOP: LazyLock<ShopProfile> = LazyLock::new(|| {
    let text = include_str!("../../knowledge-base/shop.toml");
    let file: toml::Table = toml::from_str(text).expect("shop.toml is valid TOML");
    let values: BTreeMap<String, String> = file["profile"]
        .as_table()
        .expect("shop.toml has a [profile] table")
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str().expect("profile values are strings").to_owned(),
            )
        })
        .collect();
    ShopProfile {
        id: file["id"].as_str().expect("shop id").to_owned(),
        values,
        service_hours: xiaoer_domain::ServiceHours::always_open(),
    }
});

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let file = Path::new("articles/fuzz.md");
    let parsed = parse_article_text(file, &text, Some(&SHOP));
    assert_eq!(
        parsed,
        parse_article_text(file, &text, Some(&SHOP)),
        "deterministic"
    );
    let line_count = text
        .strip_prefix('\u{feff}')
        .unwrap_or(&text)
        .split('\n')
        .count();
    match &parsed {
        Ok(article) => check_article(article),
        Err(problems) => {
            assert!(!problems.is_empty(), "an error must list a problem");
            for p in problems {
                assert_eq!(p.file, file);
                assert!(!p.message.trim().is_empty(), "{p}");
                if let Some(line) = p.line {
                    assert!(
                        (1..=line_count).contains(&line),
                        "{p}: line outside the {line_count}-line file"
                    );
                }
            }
        }
    }
    // Without a profile, placeholders go unchecked: never more problems.
    if parsed.is_ok() {
        assert!(
            parse_article_text(file, &text, None).is_ok(),
            "valid with the profile but not without it"
        );
    }
});

fn check_article(a: &Article) {
    assert!(!a.id().is_empty());
    assert!(
        a.id()
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
        "id {:?}",
        a.id()
    );
    assert!(!a.intents().is_empty());
    assert!(
        a.intents().iter().all(|i| is_intent(i)),
        "{:?}",
        a.intents()
    );
    for lang in Language::ALL {
        assert!(!a.title(lang).trim().is_empty());
        assert!(!a.questions(lang).is_empty());
        assert!(a.questions(lang).iter().all(|q| !q.trim().is_empty()));
        let answer = a.answer(lang);
        assert!(!answer.trim().is_empty());
        assert!(
            !answer.contains("{{"),
            "unresolved placeholder in the {lang} answer: {answer:?}"
        );
    }
}
