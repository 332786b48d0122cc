//! xiaoer's knowledge base: bilingual (zh/en) Markdown articles with TOML
//! front matter, checked for the mistakes hand-written content makes, indexed
//! for hybrid retrieval (tantivy BM25 with jieba for Chinese + dense vectors
//! from the shared sentence encoder), and served through a handle that can be
//! reloaded while searches run.
//!
//! Layout of a knowledge-base folder: `shop.toml` (the shop profile) and
//! `articles/<id>.md`, one article per file.

mod analysis;
mod article;
mod cache;
mod error;
mod eval;
mod index;
mod lang;
mod live;
mod set;
mod shop;
mod taxonomy;
mod util;

#[cfg(test)]
mod test_support;

pub use article::{parse_article_text, Article, ReviewDate, BANNED_EN, BANNED_ZH};
pub use cache::{KnownVectors, Remembering, VectorCache};
pub use error::{KbError, Problem};
pub use eval::{
    compare_configs, decision_metrics, embed_queries, evaluate, evaluate_embedded, fit_decision,
    fusion_candidates, load_negatives, load_queries, load_stackfaq, split_dev_test, ConfigTrial,
    DecisionMetrics, EvalQuery, QueryLang, RetrievalMetrics, StackFaq,
};
pub use index::{
    DecisionConfig, DenseAggregate, FieldBoosts, Fusion, Hit, KnowledgeIndex, Match,
    RetrievalConfig, RetrievalMode, SearchQuery,
};
pub use lang::{Bilingual, Language};
pub use live::{watch, KbWatcher, KnowledgeBase, ReloadOutcome};
pub use set::{check, ArticleSet, ARTICLES_DIR, SHOP_FILE};
pub use shop::{ShopProfile, REQUIRED_PROFILE_KEYS};
pub use taxonomy::{is_intent, INTENTS};
