//! Retrieval evaluation: hit@k and MRR on labelled queries, fitting of the
//! fusion and decision tunables on a dev split, and the StackFAQ public
//! benchmark. Lives in this crate (not in `evals`) because it needs the
//! index's raw evidence to try many configurations on one pass.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde::Deserialize;
use xiaoer_models::{Encoder, TextRole};

use crate::article::{Article, ReviewDate};
use crate::error::KbError;
use crate::index::{
    decide_with, DecisionConfig, DenseAggregate, Fusion, Hit, KnowledgeIndex, Match,
    RetrievalConfig, RetrievalMode,
};
use crate::lang::{Bilingual, Language};
use crate::set::ArticleSet;
use crate::shop::ShopProfile;
use crate::util::Fnv64;

/// The language label of an evaluation query. Shoppers mix languages, so
/// `mixed` is a label of its own for per-language reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueryLang {
    /// Chinese.
    Zh,
    /// English.
    En,
    /// Both in one message (mostly Chinese with English words).
    Mixed,
}

impl QueryLang {
    /// All labels, for per-language breakdowns.
    pub const ALL: [QueryLang; 3] = [QueryLang::Zh, QueryLang::En, QueryLang::Mixed];

    /// The label as written in query files.
    pub fn code(self) -> &'static str {
        match self {
            QueryLang::Zh => "zh",
            QueryLang::En => "en",
            QueryLang::Mixed => "mixed",
        }
    }

    /// The language to answer in: mixed messages are mostly Chinese with
    /// English words, so they get Chinese answers.
    pub fn answer_language(self) -> Language {
        match self {
            QueryLang::En => Language::En,
            QueryLang::Zh | QueryLang::Mixed => Language::Zh,
        }
    }

    fn parse(s: &str) -> Result<QueryLang, String> {
        match s {
            "zh" => Ok(QueryLang::Zh),
            "en" => Ok(QueryLang::En),
            "mixed" => Ok(QueryLang::Mixed),
            other => Err(format!(
                "unknown lang {other:?} (expected \"zh\", \"en\" or \"mixed\")"
            )),
        }
    }
}

impl From<Language> for QueryLang {
    fn from(lang: Language) -> Self {
        match lang {
            Language::Zh => QueryLang::Zh,
            Language::En => QueryLang::En,
        }
    }
}

/// One labelled query. An empty `articles` list marks a query no article
/// should answer (out of scope): it is skipped by ranking metrics and used as
/// a negative when fitting decision thresholds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalQuery {
    /// Stable id (also decides the dev/test split).
    pub id: String,
    /// The query's language label (ranking searches both languages anyway;
    /// the label drives per-language reports and the answer language).
    pub lang: QueryLang,
    /// The shopper text.
    pub query: String,
    /// Ids of the articles that answer it; any of them counts as a hit.
    pub articles: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryLine {
    id: String,
    lang: String,
    query: String,
    articles: Vec<String>,
}

/// Reads a JSONL query file (`{"id","lang","query","articles":[...]}` per
/// line; blank lines allowed). A malformed line or a duplicate id fails with
/// its `file:line`.
pub fn load_queries(path: impl AsRef<Path>) -> Result<Vec<EvalQuery>, KbError> {
    let path = path.as_ref();
    let text = read_text(path)?;
    let mut out: Vec<EvalQuery> = Vec::new();
    let mut ids = std::collections::HashSet::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |message: String| KbError::Malformed {
            path: path.to_path_buf(),
            line: i + 1,
            message,
        };
        let q: QueryLine = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        let lang = QueryLang::parse(&q.lang).map_err(bad)?;
        if q.query.trim().is_empty() {
            return Err(bad("empty query".into()));
        }
        if !ids.insert(q.id.clone()) {
            return Err(bad(format!("duplicate id {:?}", q.id)));
        }
        out.push(EvalQuery {
            id: q.id,
            lang,
            query: q.query,
            articles: q.articles,
        });
    }
    Ok(out)
}

/// Ranking quality over the queries that have at least one gold article.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetrievalMetrics {
    /// Share of queries whose top hit is a gold article.
    pub hit_at_1: f64,
    /// Share of queries with a gold article in the top 3.
    pub hit_at_3: f64,
    /// Mean reciprocal rank of the first gold article (0 when absent).
    pub mrr: f64,
    /// Number of queries scored.
    pub n: usize,
}

/// Embeds query texts with `TextRole::Query`, as the service does, so one
/// embedding pass can serve many evaluations.
pub fn embed_queries(
    encoder: &dyn Encoder,
    queries: &[EvalQuery],
) -> Result<Vec<Vec<f32>>, KbError> {
    let mut out = Vec::with_capacity(queries.len());
    for chunk in queries.chunks(32) {
        let texts: Vec<&str> = chunk.iter().map(|q| q.query.as_str()).collect();
        let vectors = encoder.encode_batch(&texts, TextRole::Query)?;
        if vectors.len() != texts.len() {
            return Err(KbError::EncoderShape {
                encoder: encoder.name().to_string(),
                message: format!("{} vectors for {} texts", vectors.len(), texts.len()),
            });
        }
        out.extend(vectors);
    }
    Ok(out)
}

/// hit@1, hit@3 and MRR of `mode` on `queries`, embedding them with `encoder`
/// when the mode needs it. Fails if a query names an article the index lacks,
/// so a renamed article cannot silently lower the numbers.
pub fn evaluate(
    index: &KnowledgeIndex,
    queries: &[EvalQuery],
    encoder: &dyn Encoder,
    mode: RetrievalMode,
) -> Result<RetrievalMetrics, KbError> {
    let embeddings = if mode == RetrievalMode::Bm25 {
        None
    } else {
        Some(embed_queries(encoder, queries)?)
    };
    evaluate_embedded(index, queries, embeddings.as_deref(), mode, index.config())
}

/// [`evaluate`] with precomputed embeddings (aligned with `queries`) and an
/// explicit config, for comparing configurations without re-embedding.
pub fn evaluate_embedded(
    index: &KnowledgeIndex,
    queries: &[EvalQuery],
    embeddings: Option<&[Vec<f32>]>,
    mode: RetrievalMode,
    config: &RetrievalConfig,
) -> Result<RetrievalMetrics, KbError> {
    check_gold(index, queries)?;
    index.check_supports(config)?;
    let mut sums = (0.0, 0.0, 0.0);
    let mut n = 0usize;
    for (i, q) in queries.iter().enumerate() {
        if q.articles.is_empty() {
            continue;
        }
        let embedding = embeddings.and_then(|e| e.get(i)).map(Vec::as_slice);
        let evidence = index.evidence(&q.query, embedding, mode != RetrievalMode::Bm25);
        let ranked = index.rank(&evidence, mode, config);
        let first_gold = ranked
            .iter()
            .position(|(ord, _)| q.articles.iter().any(|a| a == index.articles()[*ord].id()));
        n += 1;
        if let Some(rank) = first_gold {
            sums.0 += f64::from(u8::from(rank == 0));
            sums.1 += f64::from(u8::from(rank < 3));
            sums.2 += 1.0 / (rank as f64 + 1.0);
        }
    }
    let share = |x: f64| if n == 0 { 0.0 } else { x / n as f64 };
    Ok(RetrievalMetrics {
        hit_at_1: share(sums.0),
        hit_at_3: share(sums.1),
        mrr: share(sums.2),
        n,
    })
}

fn check_gold(index: &KnowledgeIndex, queries: &[EvalQuery]) -> Result<(), KbError> {
    for q in queries {
        if let Some(missing) = q.articles.iter().find(|a| index.article(a).is_none()) {
            return Err(KbError::UnknownArticle {
                query: q.id.clone(),
                article: missing.clone(),
            });
        }
    }
    Ok(())
}

/// Splits queries into a fixed dev half and test half by a stable hash of the
/// id, so tuning never sees test queries and adding queries does not reshuffle.
pub fn split_dev_test(queries: &[EvalQuery]) -> (Vec<EvalQuery>, Vec<EvalQuery>) {
    queries.iter().cloned().partition(|q| {
        let mut h = Fnv64::new();
        h.write(q.id.as_bytes());
        h.finish() & 1 == 0
    })
}

/// The hybrid configurations tried when fitting: RRF (BM25 + question
/// vectors) with a few `k`, and the weighted fusion over a grid of question,
/// body and BM25 weights and BM25 half-points, each with max and top-2-mean
/// dense aggregation. Boosts, decision and snippet length come from `base`.
pub fn fusion_candidates(base: &RetrievalConfig) -> Vec<RetrievalConfig> {
    let mut out = Vec::new();
    for dense in [DenseAggregate::Max, DenseAggregate::TopMean(2)] {
        for k in [5.0, 20.0, 60.0] {
            out.push(RetrievalConfig {
                dense,
                fusion: Fusion::Rrf { k },
                ..*base
            });
        }
        for question_tenths in 1..=9u8 {
            for passage_tenths in 0..=(9 - question_tenths) {
                for bm25_half in [5.0, 10.0, 20.0, 40.0] {
                    let fusion = Fusion::Weighted {
                        dense_weight: f32::from(question_tenths) / 10.0,
                        passage_weight: f32::from(passage_tenths) / 10.0,
                        bm25_half,
                    };
                    out.push(RetrievalConfig {
                        dense,
                        fusion,
                        ..*base
                    });
                }
            }
        }
    }
    out
}

/// One configuration's hybrid metrics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConfigTrial {
    /// The configuration tried.
    pub config: RetrievalConfig,
    /// Its hybrid metrics on the queries it was tried on.
    pub metrics: RetrievalMetrics,
}

/// Hybrid metrics of every candidate on `queries`, best first (MRR, then
/// hit@1; ties keep candidate order, so simpler settings listed first win).
pub fn compare_configs(
    index: &KnowledgeIndex,
    queries: &[EvalQuery],
    embeddings: &[Vec<f32>],
    candidates: &[RetrievalConfig],
) -> Result<Vec<ConfigTrial>, KbError> {
    let mut trials = candidates
        .iter()
        .map(|c| {
            evaluate_embedded(index, queries, Some(embeddings), RetrievalMode::Hybrid, c).map(
                |metrics| ConfigTrial {
                    config: *c,
                    metrics,
                },
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    trials.sort_by(|a, b| {
        b.metrics
            .mrr
            .total_cmp(&a.metrics.mrr)
            .then(b.metrics.hit_at_1.total_cmp(&a.metrics.hit_at_1))
    });
    Ok(trials)
}

/// How [`KnowledgeIndex::decide`] behaves on a query set.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DecisionMetrics {
    /// Answerable queries (with a gold article).
    pub positives: usize,
    /// Queries no article answers.
    pub negatives: usize,
    /// Answerable queries answered confidently with a gold article.
    pub confident_correct: usize,
    /// Answerable queries answered confidently with a wrong article.
    pub confident_wrong: usize,
    /// Unanswerable queries answered confidently anyway.
    pub negative_confident: usize,
    /// Queries (any kind) judged ambiguous.
    pub ambiguous: usize,
    /// Queries (any kind) with no match.
    pub no_match: usize,
}

impl DecisionMetrics {
    /// Share of confident answers that cite a gold article (negatives count as wrong).
    pub fn precision(&self) -> f64 {
        let confident = self.confident_correct + self.confident_wrong + self.negative_confident;
        if confident == 0 {
            1.0
        } else {
            self.confident_correct as f64 / confident as f64
        }
    }

    /// Share of answerable queries answered confidently and correctly.
    pub fn coverage(&self) -> f64 {
        if self.positives == 0 {
            0.0
        } else {
            self.confident_correct as f64 / self.positives as f64
        }
    }
}

/// Top-2 hybrid hits per query, computed once so thresholds can be swept.
struct Scored {
    gold: Vec<String>,
    hits: Vec<Hit>,
}

fn score_top2(
    index: &KnowledgeIndex,
    queries: &[EvalQuery],
    embeddings: &[Vec<f32>],
    config: &RetrievalConfig,
) -> Vec<Scored> {
    queries
        .iter()
        .zip(embeddings)
        .map(|(q, e)| {
            let evidence = index.evidence(&q.query, Some(e), true);
            let hits = index
                .rank(&evidence, RetrievalMode::Hybrid, config)
                .into_iter()
                .take(2)
                .map(|(ord, score)| Hit {
                    article_id: index.articles()[ord].id().to_string(),
                    title: String::new(),
                    score,
                    snippet: String::new(),
                })
                .collect();
            Scored {
                gold: q.articles.clone(),
                hits,
            }
        })
        .collect()
}

fn tally(scored: &[Scored], decision: &DecisionConfig) -> DecisionMetrics {
    let mut m = DecisionMetrics::default();
    for s in scored {
        let positive = !s.gold.is_empty();
        if positive {
            m.positives += 1;
        } else {
            m.negatives += 1;
        }
        match decide_with(decision, &s.hits) {
            Match::Confident(_) if !positive => m.negative_confident += 1,
            Match::Confident(hit) if s.gold.contains(&hit.article_id) => m.confident_correct += 1,
            Match::Confident(_) => m.confident_wrong += 1,
            Match::Ambiguous(..) => m.ambiguous += 1,
            Match::NoMatch => m.no_match += 1,
        }
    }
    m
}

/// How `decision` (with the index's fusion settings) performs on labelled
/// queries; `embeddings` align with `queries`.
pub fn decision_metrics(
    index: &KnowledgeIndex,
    queries: &[EvalQuery],
    embeddings: &[Vec<f32>],
    decision: &DecisionConfig,
) -> DecisionMetrics {
    tally(
        &score_top2(index, queries, embeddings, index.config()),
        decision,
    )
}

/// Fits [`DecisionConfig`] on dev queries (answerable ones plus negatives):
/// the thresholds with the most correct confident answers whose confident
/// precision is at least `min_precision`. Ties go to the larger margin, then
/// the larger score floor (the safer setting).
pub fn fit_decision(
    index: &KnowledgeIndex,
    queries: &[EvalQuery],
    embeddings: &[Vec<f32>],
    min_precision: f64,
) -> (DecisionConfig, DecisionMetrics) {
    let scored = score_top2(index, queries, embeddings, index.config());
    let mut floors: Vec<f32> = scored
        .iter()
        .filter_map(|s| s.hits.first().map(|h| h.score))
        .collect();
    floors.sort_by(f32::total_cmp);
    floors.dedup();
    let margins: Vec<f32> = (0..=30).map(|i| i as f32 * 0.005).collect();
    let mut best: Option<(DecisionConfig, DecisionMetrics)> = None;
    for &min_score in &floors {
        for &min_margin in &margins {
            let config = DecisionConfig {
                min_score,
                min_margin,
            };
            let m = tally(&scored, &config);
            if m.precision() < min_precision {
                continue;
            }
            let better = match &best {
                None => true,
                Some((c, b)) => {
                    (m.confident_correct, min_margin, min_score)
                        > (b.confident_correct, c.min_margin, c.min_score)
                }
            };
            if better {
                best = Some((config, m));
            }
        }
    }
    // No setting reaches the precision: answer nothing rather than guess.
    best.unwrap_or_else(|| {
        let config = DecisionConfig {
            min_score: f32::INFINITY,
            min_margin: 0.0,
        };
        (config, tally(&scored, &config))
    })
}

/// Reads out-of-scope texts from a JSONL file whose lines have a `"text"`
/// field (the shared datasets' classification format) as negative queries in
/// `lang`, at most `limit` of them, in file order.
pub fn load_negatives(
    path: impl AsRef<Path>,
    lang: Language,
    limit: usize,
) -> Result<Vec<EvalQuery>, KbError> {
    #[derive(Deserialize)]
    struct TextLine {
        text: String,
    }
    let path = path.as_ref();
    let text = read_text(path)?;
    let mut out = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        if out.len() >= limit {
            break;
        }
        let t: TextLine = serde_json::from_str(line).map_err(|e| KbError::Malformed {
            path: path.to_path_buf(),
            line: i + 1,
            message: e.to_string(),
        })?;
        out.push(EvalQuery {
            id: format!("neg-{lang}-{}", i + 1),
            lang: lang.into(),
            query: t.text,
            articles: Vec::new(),
        });
    }
    Ok(out)
}

/// The StackFAQ benchmark as an article set plus labelled queries.
#[derive(Debug, Clone)]
pub struct StackFaq {
    /// One English article per FAQ: title = the StackExchange question, body = its answers.
    pub set: ArticleSet,
    /// Every user paraphrase, labelled with its FAQ's article.
    pub queries: Vec<EvalQuery>,
}

/// Loads StackFAQ from `dir` (`faqs.jsonl`: `{"faq_id","question","answers"}`;
/// `queries.jsonl`: `{"query","faq_id"}`). The FAQ question is the only
/// "example question", so dense matching sees exactly what a shop article
/// with one question would give it. Malformed lines fail with `file:line`.
pub fn load_stackfaq(dir: impl AsRef<Path>) -> Result<StackFaq, KbError> {
    #[derive(Deserialize)]
    struct Faq {
        faq_id: u64,
        question: String,
        answers: Vec<String>,
    }
    #[derive(Deserialize)]
    struct Query {
        query: String,
        faq_id: u64,
    }
    let dir = dir.as_ref();
    let faq_path = dir.join("faqs.jsonl");
    let mut articles: BTreeMap<u64, Article> = BTreeMap::new();
    for (line, faq) in jsonl::<Faq>(&faq_path)? {
        let id = format!("faq-{}", faq.faq_id);
        let article = Article {
            id: id.clone(),
            title: Bilingual {
                zh: String::new(),
                en: faq.question,
            },
            tags: Vec::new(),
            intents: Vec::new(),
            related: Vec::new(),
            last_reviewed: ReviewDate {
                year: 2018,
                month: 1,
                day: 1,
            },
            questions: Bilingual::default(),
            body: Bilingual {
                zh: String::new(),
                en: faq.answers.join("\n\n"),
            },
        };
        if articles.insert(faq.faq_id, article).is_some() {
            return Err(KbError::Malformed {
                path: faq_path,
                line,
                message: format!("duplicate faq_id {}", faq.faq_id),
            });
        }
    }
    let query_path = dir.join("queries.jsonl");
    let mut queries = Vec::new();
    for (line, q) in jsonl::<Query>(&query_path)? {
        if !articles.contains_key(&q.faq_id) {
            return Err(KbError::Malformed {
                path: query_path,
                line,
                message: format!("faq_id {} is not in faqs.jsonl", q.faq_id),
            });
        }
        queries.push(EvalQuery {
            id: format!("sf-{line}"),
            lang: QueryLang::En,
            query: q.query,
            articles: vec![format!("faq-{}", q.faq_id)],
        });
    }
    let shop = ShopProfile {
        id: "stackfaq".into(),
        values: BTreeMap::new(),
        service_hours: xiaoer_domain::ServiceHours::always_open(),
    };
    Ok(StackFaq {
        set: ArticleSet::from_articles(articles.into_values().collect(), shop),
        queries,
    })
}

fn read_text(path: &Path) -> Result<String, KbError> {
    fs::read_to_string(path).map_err(|source| KbError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Parses every non-blank line of a JSONL file, with its 1-based line number.
fn jsonl<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<(usize, T)>, KbError> {
    let text = read_text(path)?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map(|v| (i + 1, v))
                .map_err(|e| KbError::Malformed {
                    path: path.to_path_buf(),
                    line: i + 1,
                    message: e.to_string(),
                })
        })
        .collect()
}

#[cfg(test)]
mod tests;
