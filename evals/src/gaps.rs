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
    /// When the shopper wrote it (unix ms).
    pub at_ms: i64,
    /// What agents replied in that conversation after it, masked.
    pub agent_replies: Vec<String>,
}

/// Ratings at or below this mark an answer the shopper found wanting.
pub const LOW_RATING: i64 = 2;
/// Most messages grouped at once (memory and time grow with the square);
/// beyond it the most recent are kept.
pub const MAX_MESSAGES: usize = 3000;
/// Most clusters a report or `kb suggest` lists.
pub const TOP_CLUSTERS: usize = 10;
/// Examples quoted per cluster.
const EXAMPLES: usize = 5;

/// The gap candidates in what the insights report reads, oldest first: one
/// per shopper turn, with the agents' replies that followed it in its
/// conversation. Load-test traffic is left out.
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
    let load_test: BTreeSet<&str> = rows
        .conversations
        .iter()
        .filter(|c| c.channel == crate::load::LOAD_CHANNEL)
        .map(|c| c.id.as_str())
        .collect();
    let mut out = Vec::new();
    for (conversation, turns) in by_conversation {
        if load_test.contains(conversation) {
            continue;
        }
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
                at_ms: turn.at_ms,
                agent_replies: later_agents.iter().map(|t| t.text.clone()).collect(),
            });
        }
    }
    out.sort_by(|a, b| a.at_ms.cmp(&b.at_ms).then(a.turn_id.cmp(&b.turn_id)));
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

/// The report section: each group with its size, the nearest article and
/// how close it is, examples and what agents answered.
pub fn markdown(gaps: Option<&Gaps>, candidates: u64) -> String {
    use std::fmt::Write as _;
    let mut md = String::from("\n## Knowledge-base gaps\n\n");
    let _ = write!(
        md,
        "Shopper messages the bot could not answer: {candidates} (a clarifying question, a \
         low-confidence handoff, a rating of {LOW_RATING} or less, or an agent reply citing no article)."
    );
    let Some(gaps) = gaps.filter(|g| !g.clusters.is_empty()) else {
        md.push_str(" No group of two or more similar messages.\n");
        return md;
    };
    let _ = writeln!(
        md,
        " Grouped by meaning (whitened cosine >= {:.3}, calibrated on the articles' own questions); \
         the largest groups:\n",
        gaps.threshold
    );
    for (rank, cluster) in gaps.clusters.iter().take(TOP_CLUSTERS).enumerate() {
        let nearest = cluster
            .nearest_article
            .as_ref()
            .map_or("none".to_string(), |(id, score)| {
                format!("`{id}` (cosine {score:.3})")
            });
        let _ = writeln!(
            md,
            "### {}. {} messages — nearest article {nearest}\n",
            rank + 1,
            cluster.size
        );
        for example in &cluster.examples {
            let _ = writeln!(md, "- {}", example.replace('\n', " "));
        }
        for reply in cluster.agent_replies.iter().take(3) {
            let _ = writeln!(md, "- agent replied: {}", reply.replace('\n', " "));
        }
        md.push('\n');
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use xiaoer_domain::{Intent, Queue};
    use xiaoer_service::store::{
        ConversationRow, HandoffRecord, NewHandoff, RatingRecord, TurnRecord,
    };

    fn turn(id: &str, role: TurnRole, text: &str, action: pb::Action, at_ms: i64) -> TurnRecord {
        TurnRecord {
            id: id.into(),
            role,
            text: text.into(),
            intent: Intent::OutOfScope,
            sentiment: 0,
            anger: 0.0,
            action: if role == TurnRole::Bot {
                action as i32
            } else {
                0
            },
            articles: Vec::new(),
            at_ms,
            agent_id: String::new(),
        }
    }

    fn conversation(id: &str, channel: &str) -> ConversationRow {
        ConversationRow {
            id: id.into(),
            language: "en".into(),
            channel: channel.into(),
            created_at_ms: 0,
        }
    }

    /// Each signal is found once, answered and load-test messages are not.
    #[test]
    fn candidates_are_the_messages_the_bot_could_not_answer() {
        use pb::Action::{Answer, Clarify, Handoff, Unspecified};
        let mut rows = InsightRows::default();
        let mut add = |conversation: &str, turns: Vec<TurnRecord>| {
            for t in turns {
                rows.turns.push((conversation.to_string(), t));
            }
        };
        add(
            "c1",
            vec![
                turn(
                    "c1-1",
                    TurnRole::Customer,
                    "do you rent drills?",
                    Unspecified,
                    10,
                ),
                turn("c1-2", TurnRole::Bot, "could you say more?", Clarify, 11),
                turn(
                    "c1-3",
                    TurnRole::Customer,
                    "rent, like for a weekend",
                    Unspecified,
                    20,
                ),
                turn("c1-4", TurnRole::Bot, "connecting you", Handoff, 21),
                turn(
                    "c1-5",
                    TurnRole::Agent,
                    "we do not rent tools, sorry",
                    Unspecified,
                    30,
                ),
            ],
        );
        add(
            "c2",
            vec![
                turn(
                    "c2-1",
                    TurnRole::Customer,
                    "where is my parcel",
                    Unspecified,
                    40,
                ),
                turn("c2-2", TurnRole::Bot, "it is on its way", Answer, 41),
            ],
        );
        add(
            "c3",
            vec![
                turn(
                    "c3-1",
                    TurnRole::Customer,
                    "refund to card?",
                    Unspecified,
                    50,
                ),
                turn("c3-2", TurnRole::Bot, "refunds go back to…", Answer, 51),
            ],
        );
        add(
            "load",
            vec![
                turn("l-1", TurnRole::Customer, "??", Unspecified, 60),
                turn("l-2", TurnRole::Bot, "could you say more?", Clarify, 61),
            ],
        );
        let mut handoff = HandoffRecord::open(
            "c1",
            NewHandoff {
                reason: HandoffReason::LowConfidence,
                queue: Queue::General,
                priority: 0,
                summary: String::new(),
                kb_articles_tried: Vec::new(),
                suggested_replies: Vec::new(),
                entities: Default::default(),
            },
            21,
            0,
        );
        handoff.claimed_by = "amy".into();
        rows.handoffs.push(handoff);
        rows.ratings.push(RatingRecord {
            conversation_id: "c3".into(),
            turn_id: "c3-2".into(),
            rating: 1,
            comment: String::new(),
            at_ms: 52,
        });
        rows.conversations = vec![
            conversation("c1", "web"),
            conversation("c2", "web"),
            conversation("c3", "app"),
            conversation("load", crate::load::LOAD_CHANNEL),
        ];
        let found = candidates(&rows);
        let got: Vec<(&str, Signal)> = found
            .iter()
            .map(|c| (c.turn_id.as_str(), c.signal))
            .collect();
        assert_eq!(
            got,
            vec![
                ("c1-1", Signal::Clarify),
                ("c1-3", Signal::LowConfidence),
                ("c3-1", Signal::LowRating),
            ]
        );
        assert_eq!(
            found[0].agent_replies,
            vec!["we do not rent tools, sorry".to_string()]
        );
    }

    #[test]
    fn an_agent_reply_citing_no_article_makes_a_candidate() {
        let mut rows = InsightRows::default();
        let mut agent = turn(
            "a-2",
            TurnRole::Agent,
            "we ship pallets on request",
            pb::Action::Unspecified,
            2,
        );
        rows.turns.push((
            "a".into(),
            turn(
                "a-1",
                TurnRole::Customer,
                "pallet delivery?",
                pb::Action::Unspecified,
                1,
            ),
        ));
        rows.turns.push(("a".into(), agent.clone()));
        assert_eq!(candidates(&rows)[0].signal, Signal::UncitedAgentReply);
        agent.articles = vec!["shipping-carriers".into()];
        rows.turns[1].1 = agent;
        assert!(candidates(&rows).is_empty(), "a cited reply is an answer");
    }

    #[test]
    fn the_report_section_says_when_nothing_groups() {
        assert!(markdown(None, 1).contains("No group of two or more"));
        let gaps = Gaps {
            candidates: 3,
            threshold: 0.04,
            clusters: vec![GapCluster {
                size: 2,
                members: vec![0, 1],
                examples: vec!["rent a drill?".into(), "drill hire".into()],
                nearest_article: Some(("warranty".into(), 0.81)),
                agent_replies: vec!["we do not rent tools".into()],
            }],
        };
        let md = markdown(Some(&gaps), 3);
        assert!(
            md.contains("### 1. 2 messages — nearest article `warranty` (cosine 0.810)"),
            "{md}"
        );
        assert!(md.contains("- agent replied: we do not rent tools"), "{md}");
    }
}
