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
    let apology = angry.then(|| DraftReply {
        text: phrasing::agent_apology_draft(lang).to_string(),
        article_id: String::new(),
        score: 1.0,
    });
    let answers = hits.iter().filter_map(|hit| {
        index.article(&hit.article_id).map(|article| DraftReply {
            text: article.answer(lang).to_string(),
            article_id: hit.article_id.clone(),
            score: hit.score,
        })
    });
    apology.into_iter().chain(answers).take(max).collect()
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
    fn waits_follow_priority_and_clamp() {
        assert_eq!(wait_minutes(1), 3);
        assert_eq!(wait_minutes(4), 15);
        assert_eq!(wait_minutes(0), 3);
        assert_eq!(wait_minutes(99), 15);
    }
}
