//! Knowledge-base gap mining: the shopper questions the bot could not
//! answer, grouped by meaning and ranked by how often they come, so the
//! service team knows which article to write next.
//!
//! Candidates are the shopper messages that ended in a clarifying
//! question, a low-confidence handoff, a low rating, or that a person
//! answered without citing any article ([`candidates`]). They are embedded
//! with the same multilingual encoder that answers (so a Chinese and an
//! English paraphrase land together), whitened on the knowledge base's
//! example questions plus the candidates ([`whiten`]), and clustered by
//! average linkage ([`cluster`]) at the threshold that best regroups the
//! knowledge base's own example questions by article: the cut is calibrated
//! on the articles, never on the messages being mined.

pub mod cluster;
pub mod whiten;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use xiaoer_domain::{HandoffReason, TurnRole};
use xiaoer_kb::{Article, Language};
use xiaoer_models::{Encoder, ModelError, TextRole};
use xiaoer_proto::v1 as pb;
use xiaoer_service::store::InsightRows;

use cluster::dot;
use whiten::Whitening;

/// Why a message is a gap candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// The bot asked a clarifying question.
    Clarify,
    /// The bot handed off because it did not understand twice.
    LowConfidence,
    /// The shopper rated the answer 1 or 2.
    LowRating,
    /// A person answered it without citing an article.
    UncitedAgentReply,
}

/// A shopper message the bot could not answer (text masked, as stored).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    /// The conversation it came from.
    pub conversation_id: String,
    /// The shopper's turn.
    pub turn_id: String,
    /// The message, masked.
    pub text: String,
    /// Why it is a candidate (the first signal found).
    pub signal: Signal,
    /// What agents replied in that conversation after it, masked.
    pub agent_replies: Vec<String>,
}

/// Ratings at or below this mark an answer the shopper found wanting.
pub const LOW_RATING: i64 = 2;
/// Most clusters a report or `kb suggest` lists.
pub const TOP_CLUSTERS: usize = 10;
/// Examples quoted per cluster.
const EXAMPLES: usize = 5;

/// The gap candidates in what the insights report reads: one per shopper
/// turn, with the agents' replies that followed it in its conversation.
pub fn candidates(rows: &InsightRows) -> Vec<Candidate> {
    let mut by_conversation: BTreeMap<&str, Vec<&xiaoer_service::store::TurnRecord>> =
        BTreeMap::new();
    for (conversation, turn) in &rows.turns {
        by_conversation.entry(conversation).or_default().push(turn);
    }
    let low_rated: BTreeSet<(&str, &str)> = rows
        .ratings
        .iter()
        .filter(|r| r.rating <= LOW_RATING)
        .map(|r| (r.conversation_id.as_str(), r.turn_id.as_str()))
        .collect();
    let mut out = Vec::new();
    for (conversation, turns) in by_conversation {
        let low_confidence_at: Vec<i64> = rows
            .handoffs
            .iter()
            .filter(|h| h.conversation_id == conversation)
            .filter(|h| h.details.reason == HandoffReason::LowConfidence)
            .map(|h| h.created_at_ms)
            .collect();
        for (i, turn) in turns.iter().enumerate() {
            if turn.role != TurnRole::Customer {
                continue;
            }
            let answer = turns[i + 1..].iter().find(|t| t.role != TurnRole::Customer);
            let later_agents: Vec<_> = turns[i + 1..]
                .iter()
                .filter(|t| t.role == TurnRole::Agent)
                .collect();
            let signal = match answer {
                Some(bot)
                    if bot.role == TurnRole::Bot && bot.action == pb::Action::Clarify as i32 =>
                {
                    Some(Signal::Clarify)
                }
                Some(bot)
                    if bot.role == TurnRole::Bot
                        && bot.action == pb::Action::Handoff as i32
                        && low_confidence_at
                            .iter()
                            .any(|&at| at >= turn.at_ms && at <= bot.at_ms + 1000) =>
                {
                    Some(Signal::LowConfidence)
                }
                Some(bot) if low_rated.contains(&(conversation, bot.id.as_str())) => {
                    Some(Signal::LowRating)
                }
                Some(agent) if agent.role == TurnRole::Agent && agent.articles.is_empty() => {
                    Some(Signal::UncitedAgentReply)
                }
                _ => None,
            };
            let Some(signal) = signal else { continue };
            out.push(Candidate {
                conversation_id: conversation.to_string(),
                turn_id: turn.id.clone(),
                text: turn.text.clone(),
                signal,
                agent_replies: later_agents.iter().map(|t| t.text.clone()).collect(),
            });
        }
    }
    out
}

/// One group of similar unanswered questions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GapCluster {
    /// Messages in the group.
    pub size: usize,
    /// Indices into the candidates passed to [`mine`], most central first.
    pub members: Vec<usize>,
    /// Up to five messages, most central first (masked).
    pub examples: Vec<String>,
    /// The closest article and the cosine of the group's centroid to its
    /// nearest example question: high means a retrieval miss on a covered
    /// topic, low a question no article covers.
    pub nearest_article: Option<(String, f32)>,
    /// Distinct agent replies given to members of the group, most used first.
    pub agent_replies: Vec<String>,
}

/// The mined groups, largest first, with the cut used.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gaps {
    /// Candidate messages read.
    pub candidates: usize,
    /// Clustering threshold on whitened cosine, calibrated on the articles.
    pub threshold: f32,
    /// Groups of two or more messages, largest first.
    pub clusters: Vec<GapCluster>,
}

/// The articles' example questions in both languages, with the index of
/// the article each belongs to.
pub fn example_questions(articles: &[Article]) -> Vec<(usize, String)> {
    articles
        .iter()
        .enumerate()
        .flat_map(|(i, article)| {
            [Language::Zh, Language::En]
                .into_iter()
                .flat_map(move |lang| article.questions(lang).iter().map(move |q| (i, q.clone())))
        })
        .collect()
}

/// Embeds `texts` as shopper queries in batches.
pub fn embed(encoder: &dyn Encoder, texts: &[&str]) -> Result<Vec<Vec<f32>>, ModelError> {
    let mut out = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(32) {
        out.extend(encoder.encode_batch(chunk, TextRole::Query)?);
    }
    Ok(out)
}

/// Clusters `messages` (their texts, in candidate order) against the
/// knowledge base `articles`.
pub fn mine(
    encoder: &dyn Encoder,
    articles: &[Article],
    messages: &[&str],
    agent_replies: &[Vec<String>],
) -> Result<Gaps, ModelError> {
    let questions = example_questions(articles);
    let question_texts: Vec<&str> = questions.iter().map(|q| q.1.as_str()).collect();
    let question_vectors = embed(encoder, &question_texts)?;
    let message_vectors = embed(encoder, messages)?;
    Ok(mine_vectors(
        articles,
        &questions,
        &question_vectors,
        &message_vectors,
        messages,
        agent_replies,
    ))
}

/// [`mine`] on vectors already computed (the encoder's unit vectors).
pub fn mine_vectors(
    articles: &[Article],
    questions: &[(usize, String)],
    question_vectors: &[Vec<f32>],
    message_vectors: &[Vec<f32>],
    messages: &[&str],
    agent_replies: &[Vec<String>],
) -> Gaps {
    let fit_on: Vec<Vec<f32>> = question_vectors
        .iter()
        .chain(message_vectors)
        .cloned()
        .collect();
    if message_vectors.len() < 2 || question_vectors.len() < 2 {
        return Gaps {
            candidates: messages.len(),
            threshold: f32::NAN,
            clusters: Vec::new(),
        };
    }
    let whitening = Whitening::fit(&fit_on);
    let white_questions: Vec<Vec<f32>> = question_vectors
        .iter()
        .map(|v| whitening.apply(v))
        .collect();
    let labels: Vec<usize> = questions.iter().map(|q| q.0).collect();
    let threshold = cluster::calibrate(&white_questions, &labels);
    let white_messages: Vec<Vec<f32>> =
        message_vectors.iter().map(|v| whitening.apply(v)).collect();
    let groups = cluster::cut(
        white_messages.len(),
        &cluster::dendrogram(&white_messages),
        threshold,
    );
    let clusters = groups
        .into_iter()
        .filter(|g| g.len() >= 2)
        .map(|group| {
            describe(
                group,
                &white_messages,
                message_vectors,
                messages,
                agent_replies,
                articles,
                questions,
                question_vectors,
            )
        })
        .collect();
    Gaps {
        candidates: messages.len(),
        threshold,
        clusters,
    }
}

#[allow(clippy::too_many_arguments)]
fn describe(
    mut group: Vec<usize>,
    white: &[Vec<f32>],
    raw: &[Vec<f32>],
    messages: &[&str],
    agent_replies: &[Vec<String>],
    articles: &[Article],
    questions: &[(usize, String)],
    question_vectors: &[Vec<f32>],
) -> GapCluster {
    let centrality = |i: usize| -> f32 { group_sum(&group, white, i) };
    let mut scored: Vec<(usize, f32)> = group.iter().map(|&i| (i, centrality(i))).collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    group = scored.into_iter().map(|(i, _)| i).collect();
    let centroid = unit_mean(group.iter().map(|&i| raw[i].as_slice()));
    let nearest_article = question_vectors
        .iter()
        .zip(questions)
        .map(|(q, (article, _))| (*article, dot(&centroid, q)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(article, score)| (articles[article].id().to_string(), score));
    let mut replies: BTreeMap<&str, usize> = BTreeMap::new();
    for &i in &group {
        for reply in agent_replies.get(i).into_iter().flatten() {
            *replies.entry(reply.as_str()).or_default() += 1;
        }
    }
    let mut replies: Vec<(&str, usize)> = replies.into_iter().collect();
    replies.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    GapCluster {
        size: group.len(),
        examples: group
            .iter()
            .take(EXAMPLES)
            .map(|&i| messages[i].to_string())
            .collect(),
        members: group,
        nearest_article,
        agent_replies: replies.into_iter().map(|(r, _)| r.to_string()).collect(),
    }
}

fn group_sum(group: &[usize], vectors: &[Vec<f32>], i: usize) -> f32 {
    group.iter().map(|&j| dot(&vectors[i], &vectors[j])).sum()
}

fn unit_mean<'a>(vectors: impl Iterator<Item = &'a [f32]>) -> Vec<f32> {
    let mut sum: Vec<f32> = Vec::new();
    for v in vectors {
        if sum.is_empty() {
            sum = vec![0.0; v.len()];
        }
        for (s, x) in sum.iter_mut().zip(v) {
            *s += x;
        }
    }
    let norm = dot(&sum, &sum).sqrt().max(f32::EPSILON);
    sum.iter().map(|x| x / norm).collect()
}
