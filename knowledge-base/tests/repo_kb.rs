//! Checks the shop's real knowledge base and retrieval queries in this repo:
//! every article passes `check`, the articles the dialogue policy cites
//! exist, and the query file only names existing articles.

use std::path::{Path, PathBuf};

use xiaoer_kb::{check, evaluate, load_queries, ArticleSet, KnowledgeIndex, RetrievalMode};
use xiaoer_models::{Encoder, ModelError, TextRole};

/// Article ids the service's intent → article mapping relies on.
const REQUIRED_ARTICLES: [&str; 28] = [
    "shipping-times",
    "shipping-fees",
    "shipping-carriers",
    "order-tracking-howto",
    "change-address",
    "cancel-order",
    "payment-methods",
    "payment-failed",
    "cod",
    "invoice",
    "return-policy",
    "return-howto",
    "return-shipping-fee",
    "exchange-policy",
    "refund-timeline",
    "refund-methods",
    "damaged-item",
    "wrong-item",
    "missing-item",
    "warranty",
    "size-guide",
    "restock",
    "coupons",
    "price-protection",
    "membership-points",
    "account-password-reset",
    "service-hours",
    "product-authenticity",
];

fn kb_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn queries_file() -> PathBuf {
    kb_dir().join("../evals/retrieval/queries.jsonl")
}

/// BM25 needs no embeddings; a constant one-dimensional vector keeps this
/// test free of model weights.
struct Constant;

impl Encoder for Constant {
    fn dim(&self) -> usize {
        1
    }
    fn name(&self) -> &str {
        "constant"
    }
    fn encode_batch(&self, texts: &[&str], _role: TextRole) -> Result<Vec<Vec<f32>>, ModelError> {
        Ok(texts.iter().map(|_| vec![1.0]).collect())
    }
}

#[test]
fn repo_knowledge_base_has_no_problems() {
    let problems = check(kb_dir());
    let listed: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert!(problems.is_empty(), "{}", listed.join("\n"));
}

#[test]
fn required_articles_exist() {
    let set = ArticleSet::load(kb_dir()).expect("knowledge base loads");
    let missing: Vec<&str> = REQUIRED_ARTICLES
        .iter()
        .copied()
        .filter(|id| set.get(id).is_none())
        .collect();
    assert!(missing.is_empty(), "missing articles: {missing:?}");
}

#[test]
fn retrieval_queries_name_existing_articles_and_bm25_is_sane() {
    let path: &Path = &queries_file();
    let queries = load_queries(path).expect("queries load");
    let index =
        KnowledgeIndex::build(ArticleSet::load(kb_dir()).expect("load"), &Constant).expect("index");
    // Fails with UnknownArticle if a query names a missing article.
    let m = evaluate(&index, &queries, &Constant, RetrievalMode::Bm25).expect("evaluate");
    assert!(m.n >= 200, "{m:?}");
    assert!(m.hit_at_3 >= 0.80, "BM25 regressed: {m:?}");
}
