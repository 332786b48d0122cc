use super::*;
use crate::set::tests::{article_text, write_kb};
use crate::test_support::HashEncoder;
use xiaoer_models::ModelError;

/// Four small articles: returns, tracking, shipping, invoice.
pub(crate) fn fixture_set() -> ArticleSet {
    let dir = tempfile::tempdir().expect("tempdir");
    write_kb(
        dir.path(),
        &[
            (
                "returns",
                article_text(
                    "returns",
                    "七天无理由退货",
                    "Returns and refunds",
                    &["能七天无理由退货吗", "不喜欢可以退吗"],
                    &["can i return it", "how do returns work"],
                    "亲，签收后七天内可以申请退货。\n\n退款会原路返回。",
                    "You can return items within 7 days.\n\nRefunds go back to the original payment method.",
                ),
            ),
            (
                "tracking",
                article_text(
                    "tracking",
                    "查询物流",
                    "Tracking your order",
                    &["我的快递到哪了", "物流怎么不更新"],
                    &["where is my order", "tracking number please"],
                    "在「我的订单」里点查看物流即可。",
                    "Open My Orders and tap Track to see where your parcel is.",
                ),
            ),
            (
                "shipping",
                article_text(
                    "shipping",
                    "发货时间",
                    "Shipping times",
                    &["什么时候发货", "几天能到"],
                    &["when will it ship", "how long is delivery"],
                    "一般48小时内发货，两到四天送达。",
                    "We usually ship within 48 hours; delivery takes 2-4 days.",
                ),
            ),
            (
                "invoice",
                article_text(
                    "invoice",
                    "开发票",
                    "Invoices",
                    &["可以开发票吗", "能开专票吗"],
                    &["can i get an invoice", "vat invoice for my company"],
                    "下单后可在订单详情申请电子发票。",
                    "Request an e-invoice from the order details page; it also works for returns paperwork.",
                ),
            ),
        ],
    );
    ArticleSet::load(dir.path()).expect("fixture loads")
}

/// The fixture articles indexed for tuning (answer bodies embedded), so
/// tests can try every config.
pub(crate) fn fixture_index(enc: &HashEncoder) -> KnowledgeIndex {
    KnowledgeIndex::build_for_tuning(fixture_set(), enc).expect("fixture index")
}

/// A config that weighs answer bodies: needs `build_for_tuning`.
pub(crate) fn body_weighing_config() -> RetrievalConfig {
    RetrievalConfig {
        fusion: Fusion::Weighted {
            dense_weight: 0.5,
            passage_weight: 0.3,
            bm25_half: 5.0,
        },
        ..RetrievalConfig::default()
    }
}

fn ids(hits: &[Hit]) -> Vec<&str> {
    hits.iter().map(|h| h.article_id.as_str()).collect()
}

fn query<'a>(
    text: &'a str,
    embedding: Option<&'a [f32]>,
    language: Language,
    mode: RetrievalMode,
) -> SearchQuery<'a> {
    SearchQuery {
        text,
        embedding,
        language,
        limit: 10,
        mode,
    }
}

#[test]
fn bm25_finds_unspaced_chinese() {
    let index = fixture_index(&HashEncoder::new());
    let hits = index.search(&query(
        "亲，我想退货可以吗？",
        None,
        Language::Zh,
        RetrievalMode::Bm25,
    ));
    assert_eq!(
        hits.first().map(|h| h.article_id.as_str()),
        Some("returns"),
        "{hits:?}"
    );
    assert_eq!(hits[0].title, "七天无理由退货");
    assert!(hits[0].snippet.contains("退货"), "{hits:?}");
}

#[test]
fn bm25_stems_english_and_handles_mixed_text() {
    let index = fixture_index(&HashEncoder::new());
    let hits = index.search(&query(
        "Invoicing for COMPANIES?",
        None,
        Language::En,
        RetrievalMode::Bm25,
    ));
    assert_eq!(ids(&hits).first(), Some(&"invoice"), "{hits:?}");
    let hits = index.search(&query(
        "我的order到哪了",
        None,
        Language::Zh,
        RetrievalMode::Bm25,
    ));
    assert_eq!(ids(&hits).first(), Some(&"tracking"), "{hits:?}");
    assert_eq!(hits[0].title, "查询物流");
    assert!(index
        .search(&query("？？ 😊", None, Language::Zh, RetrievalMode::Bm25))
        .is_empty());
}

#[test]
fn field_boosts_rank_question_matches_above_body_matches() {
    // "work" is in a returns question and in the invoice body ("works").
    let index = fixture_index(&HashEncoder::new());
    let hits = index.search(&query("work", None, Language::En, RetrievalMode::Bm25));
    assert_eq!(ids(&hits), vec!["returns", "invoice"]);
    let body_first = index
        .with_config(RetrievalConfig {
            boosts: FieldBoosts {
                title: 1.0,
                questions: 0.1,
                body: 5.0,
            },
            ..RetrievalConfig::default()
        })
        .expect("config");
    let hits = body_first.search(&query("work", None, Language::En, RetrievalMode::Bm25));
    assert_eq!(ids(&hits), vec!["invoice", "returns"]);
}

#[test]
fn dense_and_hybrid_use_the_embedding() {
    let enc = HashEncoder::new();
    let index = fixture_index(&enc)
        .with_config(RetrievalConfig {
            dense: DenseAggregate::Max,
            ..RetrievalConfig::default()
        })
        .expect("config");
    let text = "when will it ship";
    let e = enc.embed(text);
    let dense = index.search(&query(text, Some(&e), Language::En, RetrievalMode::Dense));
    assert_eq!(ids(&dense).first(), Some(&"shipping"));
    assert_eq!(dense.len(), 4);
    assert!(
        (dense[0].score - 1.0).abs() < 1e-4,
        "exact question match has cosine 1: {dense:?}"
    );
    let hybrid = index.search(&query(text, Some(&e), Language::En, RetrievalMode::Hybrid));
    assert_eq!(ids(&hybrid).first(), Some(&"shipping"));
    assert!(index
        .search(&query(text, None, Language::En, RetrievalMode::Dense))
        .is_empty());
    let fallback = index.search(&query(text, None, Language::En, RetrievalMode::Hybrid));
    let bm25 = index.search(&query(text, None, Language::En, RetrievalMode::Bm25));
    assert_eq!(fallback, bm25);
    let wrong_dim = vec![0.1f32; 3];
    assert!(index
        .search(&query(
            text,
            Some(&wrong_dim),
            Language::En,
            RetrievalMode::Dense
        ))
        .is_empty());
    let limited = index.search(&SearchQuery {
        limit: 2,
        ..query(text, Some(&e), Language::En, RetrievalMode::Hybrid)
    });
    assert_eq!(limited.len(), 2);
}

#[test]
fn passage_weight_scores_the_answer_body() {
    let enc = HashEncoder::new();
    let body_only = Fusion::Weighted {
        dense_weight: 0.0,
        passage_weight: 1.0,
        bm25_half: 1.0,
    };
    let index = fixture_index(&enc)
        .with_config(RetrievalConfig {
            fusion: body_only,
            ..RetrievalConfig::default()
        })
        .expect("config");
    let text =
        "Request an e-invoice from the order details page; it also works for returns paperwork.";
    let e = enc.embed(text);
    let hits = index.search(&query(text, Some(&e), Language::En, RetrievalMode::Hybrid));
    assert_eq!(hits[0].article_id, "invoice");
    assert!((hits[0].score - 1.0).abs() < 1e-4, "{hits:?}");
}

#[test]
fn answer_bodies_are_embedded_only_when_a_config_weighs_them() {
    let enc = HashEncoder::new();
    let shipped = KnowledgeIndex::build(fixture_set(), &enc).expect("index");
    assert!(shipped.passages.is_none());
    let body = body_weighing_config();
    assert!(matches!(
        shipped.with_config(body),
        Err(KbError::NoBodyEmbeddings)
    ));
    let weighing = KnowledgeIndex::build_with_config(fixture_set(), &enc, body).expect("index");
    assert!(weighing.passages.is_some());
    assert!(fixture_index(&enc).with_config(body).is_ok());
}

#[test]
fn rrf_fusion_and_top_mean_rank_sensibly() {
    let enc = HashEncoder::new();
    let index = fixture_index(&enc)
        .with_config(RetrievalConfig {
            fusion: Fusion::Rrf { k: 60.0 },
            dense: DenseAggregate::TopMean(2),
            ..RetrievalConfig::default()
        })
        .expect("config");
    let e = enc.embed("where is my order");
    let hits = index.search(&query(
        "where is my order",
        Some(&e),
        Language::En,
        RetrievalMode::Hybrid,
    ));
    assert_eq!(ids(&hits).first(), Some(&"tracking"));
    assert!(
        (hits[0].score - 2.0 / 61.0).abs() < 1e-6,
        "rank 1 in both lists: {hits:?}"
    );
}

#[test]
fn aggregate_and_ranks_helpers() {
    assert_eq!(aggregate(&[0.9, 0.5, 0.1], DenseAggregate::Max), 0.9);
    assert!((aggregate(&[0.9, 0.5, 0.1], DenseAggregate::TopMean(2)) - 0.7).abs() < 1e-6);
    assert_eq!(aggregate(&[0.4], DenseAggregate::TopMean(3)), 0.4);
    assert_eq!(aggregate(&[], DenseAggregate::TopMean(2)), 0.0);
    assert_eq!(ranks(&[0.0, 2.0, 1.0], true), vec![None, Some(1), Some(2)]);
    assert_eq!(
        ranks(&[0.0, 2.0, 2.0], false),
        vec![Some(3), Some(1), Some(2)]
    );
}

#[test]
fn snippet_picks_best_paragraph_and_shortens() {
    let index = fixture_index(&HashEncoder::new());
    let hits = index.search(&query(
        "refund to original payment",
        None,
        Language::En,
        RetrievalMode::Bm25,
    ));
    let returns = hits
        .iter()
        .find(|h| h.article_id == "returns")
        .expect("returns hit");
    assert!(
        returns.snippet.starts_with("Refunds go back"),
        "{returns:?}"
    );
    assert_eq!(shorten("abcdef", 3), "abc…");
    assert_eq!(shorten("退货退款", 10), "退货退款");
    assert_eq!(strip_markdown("## **Note** `x`"), "Note x");
}

fn hit(id: &str, score: f32) -> Hit {
    Hit {
        article_id: id.into(),
        title: id.into(),
        score,
        snippet: String::new(),
    }
}

#[test]
fn decide_applies_floor_and_margin() {
    let c = DecisionConfig {
        min_score: 0.5,
        min_margin: 0.1,
    };
    assert_eq!(decide_with(&c, &[]), Match::NoMatch);
    assert_eq!(decide_with(&c, &[hit("a", 0.4)]), Match::NoMatch);
    assert_eq!(
        decide_with(&c, &[hit("a", 0.6)]),
        Match::Confident(hit("a", 0.6))
    );
    assert_eq!(
        decide_with(&c, &[hit("a", 0.9), hit("b", 0.7)]),
        Match::Confident(hit("a", 0.9))
    );
    assert_eq!(
        decide_with(&c, &[hit("a", 0.9), hit("b", 0.85)]),
        Match::Ambiguous(hit("a", 0.9), hit("b", 0.85))
    );
    let index = fixture_index(&HashEncoder::new());
    assert_eq!(index.decide(&[]), Match::NoMatch);
}

#[test]
fn accessors_describe_the_snapshot() {
    let index = fixture_index(&HashEncoder::new());
    assert_eq!(index.len(), 4);
    assert!(!index.is_empty());
    assert_eq!(index.version().len(), 16);
    assert_eq!(index.encoder_name(), "hash-test-encoder");
    assert_eq!(index.dim(), 256);
    assert_eq!(index.shop().name(Language::Zh), "小店");
    assert_eq!(
        index.article("invoice").map(|a| a.title(Language::En)),
        Some("Invoices")
    );
    assert!(index.article("nope").is_none());
    assert_eq!(index.articles().len(), 4);
    assert!(format!("{index:?}").contains("articles: 4"));
}

struct BrokenEncoder(usize);

impl Encoder for BrokenEncoder {
    fn dim(&self) -> usize {
        4
    }
    fn name(&self) -> &str {
        "broken"
    }
    fn encode_batch(&self, texts: &[&str], _role: TextRole) -> Result<Vec<Vec<f32>>, ModelError> {
        Ok(texts
            .iter()
            .skip(self.0)
            .map(|_| vec![0.5; 4 + self.0])
            .collect())
    }
}

#[test]
fn encoder_shape_errors_are_reported() {
    // BrokenEncoder(0) returns the right count and length; (1) one vector too few, too long.
    assert!(KnowledgeIndex::build(fixture_set(), &BrokenEncoder(0)).is_ok());
    assert!(matches!(
        KnowledgeIndex::build(fixture_set(), &BrokenEncoder(1)),
        Err(KbError::EncoderShape { .. })
    ));
}
