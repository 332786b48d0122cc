use super::*;
use proptest::prelude::*;
use tokenizers::models::unigram::Unigram;

fn vocab() -> Vec<(String, f64)> {
    [
        ("<unk>", 0.0),
        ("a", -1.0),
        ("b", -1.5),
        ("c", -1.2),
        ("d", -2.0),
        ("cd", -1.0),
        ("ab", -1.8),
        ("abc", -2.5),
        ("abcd", -2.6),
        ("▁", -0.5),
        ("▁a", -1.1),
        ("好", -1.0),
        ("你好", -1.4),
        ("xx", -30.0),
        ("é", -3.0),
        ("ab", -0.7),
        ("c", -2.0),
    ]
    .iter()
    .map(|(p, s)| (p.to_string(), *s))
    .collect()
}

fn ids(tokens: &[Token]) -> Vec<(u32, String, (usize, usize))> {
    tokens
        .iter()
        .map(|t| (t.id, t.value.clone(), t.offsets))
        .collect()
}

#[test]
fn matches_tokenizers_unigram_on_examples() {
    let ours = CompactUnigram::new(vocab(), Some(0)).expect("ours");
    let theirs = Unigram::from(vocab(), Some(0), false).expect("theirs");
    for text in [
        "abcdacdxx",
        "▁abcd▁a",
        "你好好",
        "qqq你好zz",
        "éab",
        "",
        "x",
        "cdcdab",
    ] {
        let a = ours.tokenize(text).expect("ours");
        let b = theirs.tokenize(text).expect("theirs");
        assert_eq!(ids(&a), ids(&b), "{text}");
    }
    assert_eq!(
        ours.token_to_id("ab"),
        Some(15),
        "duplicates resolve to the later id"
    );
    assert_eq!(ours.id_to_token(12).as_deref(), Some("你好"));
    assert_eq!(ours.id_to_token(99), None);
    assert_eq!(ours.get_vocab_size(), 17);
}

#[test]
fn rejects_bad_vocabularies() {
    assert!(CompactUnigram::new(vec![], Some(0)).is_err());
    assert!(CompactUnigram::new(vocab(), None).is_err());
    assert!(CompactUnigram::new(vocab(), Some(17)).is_err());
    let json = r#"{"type": "BPE", "unk_id": 0, "vocab": [["<unk>", 0.0]]}"#;
    assert!(serde_json::from_str::<CompactUnigram>(json).is_err());
    let json =
        r#"{"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0.0]], "byte_fallback": true}"#;
    assert!(serde_json::from_str::<CompactUnigram>(json).is_err());
}

#[test]
fn save_round_trips() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ours = CompactUnigram::new(vocab(), Some(0)).expect("ours");
    let files = ours.save(dir.path(), Some("t")).expect("save");
    let text = std::fs::read_to_string(&files[0]).expect("read");
    let back: CompactUnigram = serde_json::from_str(&text).expect("load");
    assert_eq!(
        ids(&back.tokenize("abcdé你好").expect("a")),
        ids(&ours.tokenize("abcdé你好").expect("b"))
    );
}

proptest! {
    #[test]
    fn agrees_with_tokenizers_unigram(text in "[abcdxé好你▁ ]{0,24}") {
        let ours = CompactUnigram::new(vocab(), Some(0)).expect("ours");
        let theirs = Unigram::from(vocab(), Some(0), false).expect("theirs");
        let a = ours.tokenize(&text).expect("ours");
        let b = theirs.tokenize(&text).expect("theirs");
        prop_assert_eq!(ids(&a), ids(&b));
    }
}
