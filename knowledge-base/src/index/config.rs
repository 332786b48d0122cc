//! How retrieval weighs its evidence: BM25 field boosts, dense aggregation,
//! the fusion of the two, and the thresholds that turn a ranking into an
//! answer, a clarifying question or nothing. Kept apart from the index so the
//! tuning surface (`retrieval_report`) reads in one place.

/// Per-field BM25 boosts: a match in an example question or the title is
/// stronger evidence than a word somewhere in a long answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FieldBoosts {
    /// Boost of the title fields.
    pub title: f32,
    /// Boost of the example-question fields.
    pub questions: f32,
    /// Boost of the body fields.
    pub body: f32,
}

/// How an article's dense score is made from the similarities of its titles
/// and example questions to the query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DenseAggregate {
    /// The best single similarity.
    Max,
    /// Mean of the best `n` similarities: rewards articles with several close
    /// questions, damping one lucky paraphrase.
    TopMean(usize),
}

/// How BM25 and dense scores are fused in [`RetrievalMode::Hybrid`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fusion {
    /// Reciprocal-rank fusion: `Σ 1/(k + rank)`. Scale-free, but its scores say
    /// nothing about absolute relevance, so thresholds cannot tell a weak query.
    Rrf {
        /// The usual smoothing constant (60 in the original paper).
        k: f32,
    },
    /// `w_q·cos_questions + w_p·cos_body + (1−w_q−w_p)·bm25/(bm25 + half)`:
    /// absolute, so a threshold on it separates answerable from unanswerable
    /// queries. `cos_body` is the query's similarity to the answer body
    /// embedded as an E5 passage (query→passage is what E5 is trained for).
    Weighted {
        /// Weight `w_q` of the question/title cosine ([`DenseAggregate`]).
        dense_weight: f32,
        /// Weight `w_p` of the best answer-body cosine.
        passage_weight: f32,
        /// BM25 score that maps to 0.5 in the saturating normalisation.
        bm25_half: f32,
    },
}

impl Fusion {
    /// Whether this fusion reads the answer-body similarity: only then does
    /// an index need the answer bodies embedded (a third of the build's
    /// encoder work, since bodies are long).
    pub fn weighs_answer_bodies(&self) -> bool {
        matches!(self, Fusion::Weighted { passage_weight, .. } if *passage_weight > 0.0)
    }
}

/// Thresholds of [`KnowledgeIndex::decide`] on hybrid scores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecisionConfig {
    /// Below this the top hit is not an answer (`NoMatch`).
    pub min_score: f32,
    /// The top hit must beat the second by this much to be `Confident`;
    /// otherwise the result is `Ambiguous`.
    pub min_margin: f32,
}

/// Every tunable of retrieval, in one place so reports can print exactly
/// which values produced their numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetrievalConfig {
    /// BM25 field boosts.
    pub boosts: FieldBoosts,
    /// Dense score per article.
    pub dense: DenseAggregate,
    /// Hybrid fusion.
    pub fusion: Fusion,
    /// Answer / ambiguous / no-match thresholds.
    pub decision: DecisionConfig,
    /// Maximum snippet length in characters.
    pub snippet_chars: usize,
}

impl Default for RetrievalConfig {
    /// Chosen by `examples/retrieval_report.rs` on the dev half of
    /// `evals/retrieval/queries.jsonl` (fusion: best dev MRR among 366
    /// candidates, RRF included) plus out-of-scope dev negatives from
    /// CLINC150 and SMP2017 (decision: most correct confident answers at
    /// ≥ 95 % confident precision). BM25 boosts are the untuned prior. The
    /// README records the numbers and how the choice moved as articles
    /// gained example questions; re-run the example after large article
    /// changes.
    fn default() -> Self {
        RetrievalConfig {
            boosts: FieldBoosts {
                title: 1.5,
                questions: 2.0,
                body: 1.0,
            },
            dense: DenseAggregate::TopMean(2),
            fusion: Fusion::Weighted {
                dense_weight: 0.9,
                passage_weight: 0.0,
                bm25_half: 40.0,
            },
            decision: DecisionConfig {
                min_score: 0.8405,
                min_margin: 0.01,
            },
            snippet_chars: 120,
        }
    }
}
