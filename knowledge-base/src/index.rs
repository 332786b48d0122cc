//! The searchable knowledge base: a tantivy in-RAM BM25 index over both
//! languages plus dense vectors of every title and example question (and of
//! each answer body, as an E5 passage), fused into one ranking, and a decision rule that says when the top hit is good
//! enough to answer with.

use tantivy::collector::TopDocs;
use tantivy::columnar::Column;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{Index, IndexWriter, ReloadPolicy, Searcher, TantivyDocument, Term};

use xiaoer_models::{Encoder, TextRole};

use crate::analysis::{distinct_tokens, en_analyzer, zh_analyzer, EN_TOKENIZER, ZH_TOKENIZER};
use crate::article::Article;
use crate::error::KbError;
use crate::lang::{Bilingual, Language};
use crate::set::ArticleSet;
use crate::shop::ShopProfile;

mod config;
pub use config::{DecisionConfig, DenseAggregate, FieldBoosts, Fusion, RetrievalConfig};

/// Which retrieval signal ranks the articles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetrievalMode {
    /// Lexical BM25 only: no embedding needed; score is the raw BM25 sum.
    Bm25,
    /// Dense similarity only: score is the aggregated cosine; needs an embedding.
    Dense,
    /// Both fused per [`Fusion`]: the production mode, and the one
    /// [`KnowledgeIndex::decide`]'s thresholds are calibrated for.
    Hybrid,
}

impl RetrievalMode {
    /// All modes, for reports that compare them.
    pub const ALL: [RetrievalMode; 3] = [
        RetrievalMode::Bm25,
        RetrievalMode::Dense,
        RetrievalMode::Hybrid,
    ];

    /// Lower-case name for reports and logs.
    pub fn name(self) -> &'static str {
        match self {
            RetrievalMode::Bm25 => "bm25",
            RetrievalMode::Dense => "dense",
            RetrievalMode::Hybrid => "hybrid",
        }
    }
}

/// One search request. The embedding is passed in rather than computed here so
/// the service can run the encoder once per message and share the vector
/// between intent classification and retrieval.
#[derive(Debug, Clone, Copy)]
pub struct SearchQuery<'a> {
    /// The shopper's text; may mix Chinese and English (both languages are searched).
    pub text: &'a str,
    /// The text's embedding from the same encoder the index was built with
    /// (`TextRole::Query`). Without it `Dense` returns nothing and `Hybrid`
    /// falls back to BM25 ranking and scores.
    pub embedding: Option<&'a [f32]>,
    /// The language to answer in: picks the hit title and snippet language.
    pub language: Language,
    /// Maximum number of hits.
    pub limit: usize,
    /// Which signal ranks the articles.
    pub mode: RetrievalMode,
}

/// One ranked article.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The article id, for citing and for [`KnowledgeIndex::article`].
    pub article_id: String,
    /// The article title in the query language.
    pub title: String,
    /// Mode-dependent score, higher is better (see [`RetrievalMode`]).
    pub score: f32,
    /// The body paragraph that best overlaps the query, in the query language,
    /// shortened: for previews and agent hand-off notes.
    pub snippet: String,
}

/// What the bot should do with a ranking.
#[derive(Debug, Clone, PartialEq)]
pub enum Match {
    /// One article is clearly best: answer with it.
    Confident(Hit),
    /// Two articles score about the same: ask which one the shopper means.
    Ambiguous(Hit, Hit),
    /// Nothing scores high enough: clarify or hand off, never guess.
    NoMatch,
}

/// Per-language tantivy fields.
#[derive(Debug, Clone, Copy)]
struct LangFields {
    title: Field,
    questions: Field,
    body: Field,
}

/// Raw per-article evidence for one query, before fusion. Kept separate from
/// ranking so evaluation can try many configs on one pass of the index.
#[derive(Debug, Clone)]
pub(crate) struct Evidence {
    /// BM25 score per article ordinal (0 when no term matched).
    pub bm25: Vec<f32>,
    /// Per article ordinal, its best dense similarities, descending (at most
    /// [`KEPT_SIMILARITIES`]); `None` without a usable query embedding.
    pub dense: Option<Vec<Vec<f32>>>,
    /// Per article ordinal, the best similarity to its answer bodies;
    /// `None` without a usable query embedding.
    pub passage: Option<Vec<f32>>,
}

/// How many top similarities per article [`Evidence`] keeps (enough for `TopMean(3)`).
const KEPT_SIMILARITIES: usize = 3;

/// Texts per encoder call at build time: large enough to amortise overhead,
/// small enough to keep memory flat.
const ENCODE_BATCH: usize = 32;

/// An immutable, searchable snapshot of one article set. Cheap to share behind
/// an `Arc`; a reload builds a new one instead of mutating.
pub struct KnowledgeIndex {
    set: ArticleSet,
    searcher: Searcher,
    ords: Vec<Column<u64>>,
    fields: Bilingual<LangFields>,
    analyzers: Bilingual<TextAnalyzer>,
    questions: Vectors,
    /// Answer-body embeddings; `None` unless a config that weighs them (or
    /// tuning) asked for them.
    passages: Option<Vectors>,
    dim: usize,
    encoder_name: String,
    config: RetrievalConfig,
}

impl std::fmt::Debug for KnowledgeIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnowledgeIndex")
            .field("articles", &self.set.len())
            .field("version", &self.set.version())
            .field("encoder", &self.encoder_name)
            .field("question_vectors", &self.questions.owner.len())
            .field(
                "passage_vectors",
                &self.passages.as_ref().map_or(0, |p| p.owner.len()),
            )
            .finish()
    }
}

impl KnowledgeIndex {
    /// Indexes `set` with the default [`RetrievalConfig`], embedding every
    /// title and example question with `encoder` (`TextRole::Query`, because
    /// shopper messages are matched to questions symmetrically).
    pub fn build(set: ArticleSet, encoder: &dyn Encoder) -> Result<KnowledgeIndex, KbError> {
        KnowledgeIndex::build_with_config(set, encoder, RetrievalConfig::default())
    }

    /// Like [`KnowledgeIndex::build`] with explicit tunables (evaluations,
    /// experiments). Answer bodies are embedded only if `config` weighs them.
    pub fn build_with_config(
        set: ArticleSet,
        encoder: &dyn Encoder,
        config: RetrievalConfig,
    ) -> Result<KnowledgeIndex, KbError> {
        let embed_bodies = config.fusion.weighs_answer_bodies();
        KnowledgeIndex::build_inner(set, encoder, config, embed_bodies)
    }

    /// The default config, with answer bodies embedded too, so that
    /// [`KnowledgeIndex::with_config`] and the evaluation functions can try
    /// configs that weigh them (`examples/retrieval_report.rs`).
    pub fn build_for_tuning(
        set: ArticleSet,
        encoder: &dyn Encoder,
    ) -> Result<KnowledgeIndex, KbError> {
        KnowledgeIndex::build_inner(set, encoder, RetrievalConfig::default(), true)
    }

    fn build_inner(
        set: ArticleSet,
        encoder: &dyn Encoder,
        config: RetrievalConfig,
        embed_bodies: bool,
    ) -> Result<KnowledgeIndex, KbError> {
        let zh_options = text_options(ZH_TOKENIZER);
        let en_options = text_options(EN_TOKENIZER);
        let mut schema = Schema::builder();
        let ord_field = schema.add_u64_field("ord", FAST);
        let fields = Bilingual {
            zh: LangFields {
                title: schema.add_text_field("title_zh", zh_options.clone()),
                questions: schema.add_text_field("questions_zh", zh_options.clone()),
                body: schema.add_text_field("body_zh", zh_options),
            },
            en: LangFields {
                title: schema.add_text_field("title_en", en_options.clone()),
                questions: schema.add_text_field("questions_en", en_options.clone()),
                body: schema.add_text_field("body_en", en_options),
            },
        };
        let index = Index::create_in_ram(schema.build());
        let analyzers = Bilingual {
            zh: zh_analyzer(),
            en: en_analyzer()?,
        };
        index
            .tokenizers()
            .register(ZH_TOKENIZER, analyzers.zh.clone());
        index
            .tokenizers()
            .register(EN_TOKENIZER, analyzers.en.clone());

        // One thread, one commit: a single small segment, fastest to search.
        let mut writer: IndexWriter = index.writer_with_num_threads(1, 15_000_000)?;
        for (ord, article) in set.articles().iter().enumerate() {
            let mut doc = TantivyDocument::default();
            doc.add_u64(ord_field, ord as u64);
            for lang in Language::ALL {
                let f = fields.get(lang);
                doc.add_text(f.title, article.title(lang));
                for q in article.questions(lang) {
                    doc.add_text(f.questions, q);
                }
                doc.add_text(f.body, article.answer(lang));
            }
            writer.add_document(doc)?;
        }
        writer.commit()?;
        writer.wait_merging_threads()?;
        let reader: tantivy::IndexReader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let searcher = reader.searcher();
        let ords = searcher
            .segment_readers()
            .iter()
            .map(|segment| segment.fast_fields().u64("ord"))
            .collect::<Result<Vec<_>, _>>()?;

        let questions = embed_articles(set.articles(), encoder, TextRole::Query, question_texts)?;
        let passages = if embed_bodies {
            Some(embed_articles(
                set.articles(),
                encoder,
                TextRole::Passage,
                answer_texts,
            )?)
        } else {
            None
        };
        Ok(KnowledgeIndex {
            set,
            searcher,
            ords,
            fields,
            analyzers,
            questions,
            passages,
            dim: encoder.dim(),
            encoder_name: encoder.name().to_string(),
            config,
        })
    }

    /// The same index with other tunables; they only act at query time, so
    /// nothing is rebuilt. Fails with [`KbError::NoBodyEmbeddings`] if
    /// `config` weighs answer bodies this index did not embed.
    pub fn with_config(mut self, config: RetrievalConfig) -> Result<KnowledgeIndex, KbError> {
        self.check_supports(&config)?;
        self.config = config;
        Ok(self)
    }

    /// Whether this index holds every embedding `config` reads.
    pub(crate) fn check_supports(&self, config: &RetrievalConfig) -> Result<(), KbError> {
        if config.fusion.weighs_answer_bodies() && self.passages.is_none() {
            return Err(KbError::NoBodyEmbeddings);
        }
        Ok(())
    }

    /// The tunables in force.
    pub fn config(&self) -> &RetrievalConfig {
        &self.config
    }

    /// Ranks articles for `query`, best first, at most `query.limit`.
    pub fn search(&self, query: &SearchQuery<'_>) -> Vec<Hit> {
        let evidence = self.evidence(
            query.text,
            query.embedding,
            query.mode != RetrievalMode::Bm25,
        );
        let ranked = self.rank(&evidence, query.mode, &self.config);
        let query_tokens = self.query_tokens(query.text, query.language);
        ranked
            .into_iter()
            .take(query.limit)
            .map(|(ord, score)| {
                let article = &self.set.articles()[ord];
                Hit {
                    article_id: article.id().to_string(),
                    title: article.title(query.language).to_string(),
                    score,
                    snippet: self.snippet(
                        article.answer(query.language),
                        query.language,
                        &query_tokens,
                    ),
                }
            })
            .collect()
    }

    /// Turns a hybrid ranking into an action using [`DecisionConfig`]. The
    /// thresholds are calibrated for [`RetrievalMode::Hybrid`] scores only.
    pub fn decide(&self, hits: &[Hit]) -> Match {
        decide_with(&self.config.decision, hits)
    }

    /// The article with `id`, to send its answer.
    pub fn article(&self, id: &str) -> Option<&Article> {
        self.set.get(id)
    }

    /// All indexed articles.
    pub fn articles(&self) -> &[Article] {
        self.set.articles()
    }

    /// The shop profile of this article set (greetings use its name).
    pub fn shop(&self) -> &ShopProfile {
        self.set.shop()
    }

    /// Content hash of the indexed files; changes exactly when they do.
    pub fn version(&self) -> &str {
        self.set.version()
    }

    /// Number of indexed articles.
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// Whether the index has no articles.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Every text this index embedded, by role, with its vector: a reload
    /// re-encodes only what changed (see [`crate::KnowledgeBase::reload`]).
    pub(crate) fn embedded_texts(&self) -> crate::cache::KnownVectors {
        let mut known = crate::cache::KnownVectors::new();
        let mut remember = |vectors: &Vectors, role, pick: fn(&Article, Language) -> Vec<&str>| {
            let (texts, _) = article_texts(self.set.articles(), pick);
            for (text, row) in texts
                .into_iter()
                .zip(vectors.data.chunks_exact(vectors.dim))
            {
                known.insert((role, text.to_string()), row.to_vec());
            }
        };
        remember(&self.questions, TextRole::Query, question_texts);
        if let Some(passages) = &self.passages {
            remember(passages, TextRole::Passage, answer_texts);
        }
        known
    }

    /// Name of the encoder the dense vectors came from; query embeddings must
    /// come from the same one.
    pub fn encoder_name(&self) -> &str {
        &self.encoder_name
    }

    /// Vector length the query embedding must have.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// BM25 and dense evidence for every article.
    pub(crate) fn evidence(
        &self,
        text: &str,
        embedding: Option<&[f32]>,
        want_dense: bool,
    ) -> Evidence {
        let query = if want_dense {
            embedding.and_then(|e| self.unit_query(e))
        } else {
            None
        };
        Evidence {
            bm25: self.bm25_scores(text),
            dense: query.as_ref().map(|q| {
                self.questions
                    .top_similarities(q, self.set.len(), KEPT_SIMILARITIES)
            }),
            passage: query
                .as_ref()
                .zip(self.passages.as_ref())
                .map(|(q, passages)| {
                    passages
                        .top_similarities(q, self.set.len(), 1)
                        .into_iter()
                        .map(|best| best.first().copied().unwrap_or(0.0))
                        .collect()
                }),
        }
    }

    /// Article ordinals with scores, best first (ties by ordinal), for `mode` under `config`.
    pub(crate) fn rank(
        &self,
        evidence: &Evidence,
        mode: RetrievalMode,
        config: &RetrievalConfig,
    ) -> Vec<(usize, f32)> {
        let n = self.set.len();
        let dense: Option<Vec<f32>> = evidence
            .dense
            .as_ref()
            .map(|sims| sims.iter().map(|s| aggregate(s, config.dense)).collect());
        let mut scored: Vec<(usize, f32)> = match (mode, &dense) {
            (RetrievalMode::Bm25, _) | (RetrievalMode::Hybrid, None) => (0..n)
                .filter(|&i| evidence.bm25[i] > 0.0)
                .map(|i| (i, evidence.bm25[i]))
                .collect(),
            (RetrievalMode::Dense, None) => Vec::new(),
            (RetrievalMode::Dense, Some(d)) => (0..n).map(|i| (i, d[i])).collect(),
            (RetrievalMode::Hybrid, Some(d)) => match config.fusion {
                Fusion::Weighted {
                    dense_weight,
                    passage_weight,
                    bm25_half,
                } => (0..n)
                    .map(|i| {
                        let b = evidence.bm25[i];
                        let p = evidence.passage.as_ref().map_or(0.0, |p| p[i]);
                        let lexical = 1.0 - dense_weight - passage_weight;
                        (
                            i,
                            dense_weight * d[i]
                                + passage_weight * p
                                + lexical * b / (b + bm25_half),
                        )
                    })
                    .collect(),
                Fusion::Rrf { k } => {
                    let bm25_rank = ranks(&evidence.bm25, true);
                    let dense_rank = ranks(d, false);
                    (0..n)
                        .map(|i| {
                            let s = [bm25_rank[i], dense_rank[i]]
                                .into_iter()
                                .flatten()
                                .map(|r| 1.0 / (k + r as f32))
                                .sum::<f32>();
                            (i, s)
                        })
                        .collect()
                }
            },
        };
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        scored
    }

    fn bm25_scores(&self, text: &str) -> Vec<f32> {
        let mut scores = vec![0.0; self.set.len()];
        let b = self.config.boosts;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for lang in Language::ALL {
            let f = self.fields.get(lang);
            let mut analyzer = self.analyzers.get(lang).clone();
            for token in distinct_tokens(&mut analyzer, text) {
                for (field, boost) in [
                    (f.title, b.title),
                    (f.questions, b.questions),
                    (f.body, b.body),
                ] {
                    let term = TermQuery::new(
                        Term::from_field_text(field, &token),
                        IndexRecordOption::WithFreqs,
                    );
                    clauses.push((
                        Occur::Should,
                        Box::new(BoostQuery::new(Box::new(term), boost)),
                    ));
                }
            }
        }
        if clauses.is_empty() {
            return scores;
        }
        let query = BooleanQuery::new(clauses);
        match self.searcher.search(
            &query,
            &TopDocs::with_limit(self.set.len().max(1)).order_by_score(),
        ) {
            Ok(top) => {
                for (score, addr) in top {
                    let ord = self
                        .ords
                        .get(addr.segment_ord as usize)
                        .and_then(|c| c.first(addr.doc_id));
                    if let Some(slot) = ord.and_then(|o| scores.get_mut(o as usize)) {
                        *slot = score;
                    }
                }
            }
            // In-RAM search has no I/O; an error here is a bug, not a reason to fail the reply.
            Err(e) => tracing::error!(error = %e, "BM25 search failed; using dense evidence only"),
        }
        scores
    }

    /// The query embedding scaled to unit length, or `None` (with a warning)
    /// when it cannot be compared with the index vectors.
    fn unit_query(&self, embedding: &[f32]) -> Option<Vec<f32>> {
        if embedding.len() != self.dim {
            tracing::warn!(
                got = embedding.len(),
                want = self.dim,
                "query embedding has the wrong length; ignoring it"
            );
            return None;
        }
        let norm = embedding.iter().map(|x| x * x).sum::<f32>().sqrt();
        (norm.is_finite() && norm > 0.0).then(|| embedding.iter().map(|x| x / norm).collect())
    }

    fn query_tokens(&self, text: &str, lang: Language) -> Vec<String> {
        distinct_tokens(&mut self.analyzers.get(lang).clone(), text)
    }

    /// The body paragraph sharing most query tokens (first paragraph when none
    /// do), with Markdown markers stripped, cut to `snippet_chars`.
    fn snippet(&self, body: &str, lang: Language, query_tokens: &[String]) -> String {
        let mut analyzer = self.analyzers.get(lang).clone();
        let paragraphs = body
            .split("\n\n")
            .map(|p| {
                p.lines()
                    .map(strip_markdown)
                    .filter(|l| !l.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .filter(|p| !p.is_empty());
        let mut best: Option<(usize, String)> = None;
        for p in paragraphs {
            let tokens = distinct_tokens(&mut analyzer, &p);
            let overlap = query_tokens.iter().filter(|t| tokens.contains(t)).count();
            if best.as_ref().is_none_or(|(b, _)| overlap > *b) {
                best = Some((overlap, p));
            }
        }
        let text = best.map(|(_, p)| p).unwrap_or_default();
        shorten(&text, self.config.snippet_chars)
    }
}

/// [`KnowledgeIndex::decide`] with explicit thresholds (used by threshold fitting).
pub(crate) fn decide_with(config: &DecisionConfig, hits: &[Hit]) -> Match {
    let Some(top) = hits.first() else {
        return Match::NoMatch;
    };
    if top.score < config.min_score {
        return Match::NoMatch;
    }
    match hits.get(1) {
        Some(second) if top.score - second.score < config.min_margin => {
            Match::Ambiguous(top.clone(), second.clone())
        }
        _ => Match::Confident(top.clone()),
    }
}

fn text_options(tokenizer: &str) -> TextOptions {
    TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(tokenizer)
            .set_index_option(IndexRecordOption::WithFreqs),
    )
}

/// Unit vectors of article texts, row-major, with the article ordinal of each row.
struct Vectors {
    dim: usize,
    data: Vec<f32>,
    owner: Vec<usize>,
}

impl Vectors {
    /// For each of `articles` articles, its `keep` best cosines to `query`
    /// (a unit vector), descending.
    fn top_similarities(&self, query: &[f32], articles: usize, keep: usize) -> Vec<Vec<f32>> {
        let mut per_article: Vec<Vec<f32>> = vec![Vec::new(); articles];
        for (row, &owner) in self.data.chunks_exact(self.dim).zip(&self.owner) {
            let sim = row.iter().zip(query).map(|(a, b)| a * b).sum::<f32>();
            let Some(kept) = per_article.get_mut(owner) else {
                continue;
            };
            let at = kept.partition_point(|&s| s >= sim);
            if at < keep {
                kept.insert(at, sim);
                kept.truncate(keep);
            }
        }
        per_article
    }
}

/// Embeds the texts `pick` chooses from every article in both languages with
/// `role`. Blank texts are skipped (synthetic benchmark sets lack a language).
/// What the dense index embeds as a query-like text of an article: its
/// title and example questions.
fn question_texts(article: &Article, lang: Language) -> Vec<&str> {
    std::iter::once(article.title(lang))
        .chain(article.questions(lang).iter().map(String::as_str))
        .collect()
}

/// What the dense index embeds as an article's passage: its answer.
fn answer_texts(article: &Article, lang: Language) -> Vec<&str> {
    vec![article.answer(lang)]
}

/// The non-blank texts `pick` chooses, article by article, with the index
/// of the article each belongs to: the rows of a [`Vectors`], in order.
fn article_texts<'a>(
    articles: &'a [Article],
    pick: impl Fn(&'a Article, Language) -> Vec<&'a str>,
) -> (Vec<&'a str>, Vec<usize>) {
    let mut texts: Vec<&str> = Vec::new();
    let mut owner: Vec<usize> = Vec::new();
    for (ord, article) in articles.iter().enumerate() {
        for lang in Language::ALL {
            for text in pick(article, lang) {
                if !text.trim().is_empty() {
                    texts.push(text);
                    owner.push(ord);
                }
            }
        }
    }
    (texts, owner)
}

fn embed_articles<'a>(
    articles: &'a [Article],
    encoder: &dyn Encoder,
    role: TextRole,
    pick: impl Fn(&'a Article, Language) -> Vec<&'a str>,
) -> Result<Vectors, KbError> {
    let (texts, owner) = article_texts(articles, pick);
    let dim = encoder.dim();
    let mut data = Vec::with_capacity(texts.len() * dim);
    for batch in texts.chunks(ENCODE_BATCH) {
        let encoded = encoder.encode_batch(batch, role)?;
        if encoded.len() != batch.len() {
            return Err(KbError::EncoderShape {
                encoder: encoder.name().to_string(),
                message: format!("{} vectors for {} texts", encoded.len(), batch.len()),
            });
        }
        for v in encoded {
            if v.len() != dim {
                return Err(KbError::EncoderShape {
                    encoder: encoder.name().to_string(),
                    message: format!("a vector of length {} (dim() says {dim})", v.len()),
                });
            }
            data.extend(v);
        }
    }
    Ok(Vectors { dim, data, owner })
}

fn aggregate(sims: &[f32], how: DenseAggregate) -> f32 {
    match how {
        DenseAggregate::Max => sims.first().copied().unwrap_or(0.0),
        DenseAggregate::TopMean(n) => {
            let take = n.clamp(1, sims.len().max(1)).min(sims.len());
            if take == 0 {
                0.0
            } else {
                sims[..take].iter().sum::<f32>() / take as f32
            }
        }
    }
}

/// 1-based rank of each score (descending, ties by position). With
/// `positive_only`, zero scores get no rank (BM25 non-matches).
fn ranks(scores: &[f32], positive_only: bool) -> Vec<Option<usize>> {
    let mut order: Vec<usize> = (0..scores.len())
        .filter(|&i| !positive_only || scores[i] > 0.0)
        .collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let mut out = vec![None; scores.len()];
    for (r, i) in order.into_iter().enumerate() {
        out[i] = Some(r + 1);
    }
    out
}

fn strip_markdown(line: &str) -> String {
    let t = line
        .trim()
        .trim_start_matches(['#', '>', '-', '*', '+'])
        .trim();
    t.replace("**", "").replace('`', "")
}

fn shorten(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", text[..cut].trim_end()),
        None => text.to_string(),
    }
}

#[cfg(test)]
pub(crate) mod tests;
