//! Stage 4, render: the policy's decision as the words the shopper reads,
//! in their language, citing the articles used; and the drafts offered to
//! an agent.

use xiaoer_kb::{Hit, KnowledgeIndex};
use xiaoer_models::Language;
use xiaoer_proto::v1 as pb;

use crate::phrasing;
use crate::policy::{Answer, ClarifyOption, Decision};
use crate::store::DraftReply;

/// Rough wait quoted to shoppers handed to a person, by priority 1..4.
const WAIT_MINUTES: [u32; 4] = [3, 5, 10, 15];
/// Characters of an answer shown as a source's snippet.
const SNIPPET_CHARS: usize = 80;

/// A reply ready to send: the action, the text and the sources cited.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// What the bot did.
    pub action: pb::Action,
    /// What the shopper reads.
    pub text: String,
    /// Articles the text is taken from.
    pub sources: Vec<pb::Source>,
}

impl Rendered {
    fn new(action: pb::Action, text: String) -> Self {
        Self {
            action,
            text,
            sources: vec![],
        }
    }
}

/// Renders `decision` in `lang`, taking answers and titles from `index`;
/// `hits` give the scores shown with citations.
pub fn render(
    index: &KnowledgeIndex,
    decision: &Decision,
    lang: Language,
    hits: &[Hit],
) -> Rendered {
    let shop = index.shop().name(lang).to_string();
    let cite = |article_id: &str| -> Option<pb::Source> {
        let article = index.article(article_id)?;
        let score = hits
            .iter()
            .find(|h| h.article_id == article_id)
            .map(|h| h.score)
            .unwrap_or(0.0);
        Some(pb::Source {
            article_id: article_id.to_string(),
            title: article.title(lang).to_string(),
            score,
            snippet: snippet(article.answer(lang)),
        })
    };
    let answer_of = |article_id: &str| {
        index
            .article(article_id)
            .map(|a| a.answer(lang).to_string())
            .unwrap_or_default()
    };
    match decision {
        Decision::Answer(Answer::Greeting) => {
            Rendered::new(pb::Action::Answer, phrasing::greeting(&shop, lang))
        }
        Decision::Answer(Answer::Farewell) => {
            Rendered::new(pb::Action::Answer, phrasing::farewell(&shop, lang))
        }
        Decision::Answer(Answer::Article { article_id }) => Rendered {
            action: pb::Action::Answer,
            text: answer_of(article_id),
            sources: cite(article_id).into_iter().collect(),
        },
        Decision::Answer(Answer::ArticleAskOrderNumber { article_id }) => Rendered {
            action: pb::Action::Answer,
            text: format!(
                "{}\n{}",
                answer_of(article_id),
                phrasing::ask_order_number(lang)
            ),
            sources: cite(article_id).into_iter().collect(),
        },
        Decision::Answer(Answer::OrderStatus { order, article_id }) => Rendered {
            action: pb::Action::Answer,
            text: phrasing::order_status(order, lang),
            sources: article_id.as_deref().and_then(cite).into_iter().collect(),
        },
        Decision::Clarify { options } => {
            let labels: Vec<String> = options
                .iter()
                .map(|o| match o {
                    ClarifyOption::Article(id) => index
                        .article(id)
                        .map(|a| a.title(lang).to_string())
                        .unwrap_or_else(|| id.clone()),
                    ClarifyOption::Intent(intent) => {
                        phrasing::topic_label(*intent, lang).to_string()
                    }
                })
                .collect();
            Rendered::new(pb::Action::Clarify, phrasing::clarify(&labels, lang))
        }
        Decision::Handoff {
            cause, priority, ..
        } => Rendered::new(
            pb::Action::Handoff,
            phrasing::handoff_holding(*cause, wait_minutes(*priority), lang),
        ),
        Decision::WithAgent => Rendered::new(pb::Action::Handoff, phrasing::with_agent(lang)),
        Decision::OutOfScope => Rendered::new(pb::Action::Clarify, phrasing::out_of_scope(lang)),
    }
}

/// The wait quoted for a handoff priority (out-of-range priorities clamp).
fn wait_minutes(priority: i32) -> u32 {
    WAIT_MINUTES[priority.clamp(1, 4) as usize - 1]
}

/// The start of an answer, for a source preview.
fn snippet(answer: &str) -> String {
    let mut s: String = answer.chars().take(SNIPPET_CHARS).collect();
    if answer.chars().count() > SNIPPET_CHARS {
        s.push('…');
    }
    s
}

/// Draft replies for an agent: an apology first for an angry shopper, then
/// the best matching articles' answers, at most `max` in all.
pub fn drafts(
    index: &KnowledgeIndex,
    hits: &[Hit],
    lang: Language,
    angry: bool,
    max: usize,
) -> Vec<DraftReply> {
    topic_drafts(index, &[], hits, lang, angry, max)
}

/// Drafts for a handoff: they answer the conversation's problem, not only
/// its last message ("nobody answers!!" is about the torn coat it followed).
/// After the apology for an angry shopper come the articles the bot cited
/// earlier in the conversation (newest first), then this message's hits,
/// each article once.
pub fn topic_drafts(
    index: &KnowledgeIndex,
    earlier_articles: &[String],
    hits: &[Hit],
    lang: Language,
    angry: bool,
    max: usize,
) -> Vec<DraftReply> {
    let apology = angry.then(|| DraftReply {
        text: phrasing::agent_apology_draft(lang).to_string(),
        article_id: String::new(),
        score: 1.0,
    });
    // An article the conversation was already about counts as a sure match.
    let cited = earlier_articles.iter().map(|id| (id.as_str(), 1.0));
    let found = hits.iter().map(|hit| (hit.article_id.as_str(), hit.score));
    let mut seen = Vec::new();
    let answers = cited.chain(found).filter_map(|(id, score)| {
        if seen.contains(&id) {
            return None;
        }
        seen.push(id);
        index.article(id).map(|article| DraftReply {
            text: article.answer(lang).to_string(),
            article_id: id.to_string(),
            score,
        })
    });
    apology.into_iter().chain(answers).take(max).collect()
}

/// Articles the bot's earlier turns cited, newest first, each once.
pub fn cited_articles(turns: &[crate::store::TurnRecord]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for turn in turns
        .iter()
        .rev()
        .filter(|t| t.role == xiaoer_domain::TurnRole::Bot)
    {
        for article in &turn.articles {
            if !out.contains(article) {
                out.push(article.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippets_are_cut_at_a_character_boundary_with_an_ellipsis() {
        assert_eq!(snippet("短答案"), "短答案");
        let long: String = "退".repeat(SNIPPET_CHARS + 5);
        let cut = snippet(&long);
        assert_eq!(cut.chars().count(), SNIPPET_CHARS + 1);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn cited_articles_are_the_bots_newest_first_once_each() {
        use crate::store::TurnRecord;
        use xiaoer_domain::{Intent, TurnRole};
        let turn = |role, articles: &[&str]| TurnRecord {
            id: "t".into(),
            role,
            text: String::new(),
            intent: Intent::ProductInfo,
            sentiment: 0,
            anger: 0.0,
            action: 0,
            articles: articles.iter().map(|a| a.to_string()).collect(),
            at_ms: 0,
            agent_id: String::new(),
        };
        let turns = [
            turn(TurnRole::Bot, &["damaged-item", "return-policy"]),
            turn(TurnRole::Customer, &["not-a-citation"]),
            turn(TurnRole::Bot, &["return-policy"]),
        ];
        assert_eq!(cited_articles(&turns), ["return-policy", "damaged-item"]);
        assert!(cited_articles(&[]).is_empty());
    }

    #[test]
    fn waits_follow_priority_and_clamp() {
        assert_eq!(wait_minutes(1), 3);
        assert_eq!(wait_minutes(4), 15);
        assert_eq!(wait_minutes(0), 3);
        assert_eq!(wait_minutes(99), 15);
    }
}
