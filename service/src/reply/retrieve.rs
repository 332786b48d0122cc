//! Stage 2, retrieve and reconcile: hybrid search over the live knowledge
//! base with the message's embedding, then the ranking reconciled with the
//! predicted intent into the one [`KbMatch`] the policy reads.

use xiaoer_kb::{Hit, KnowledgeIndex, Match, RetrievalMode, SearchQuery};

use super::Understanding;
use crate::policy::KbMatch;

/// Intent confidence at which the classifier's topic may settle a close or
/// weak retrieval result on its own.
const SURE_INTENT: f32 = 0.8;
/// How close (as a share of the top score) an article written for the
/// predicted intent must come to be preferred over the top hit.
const PREFER_WITHIN: f32 = 0.8;

/// The best `limit` articles for the message as understood, BM25 and
/// dense fused.
pub fn search(index: &KnowledgeIndex, understanding: &Understanding, limit: usize) -> Vec<Hit> {
    index.search(&SearchQuery {
        text: &understanding.text,
        embedding: Some(&understanding.embedding),
        language: understanding.lang,
        limit,
        mode: RetrievalMode::Hybrid,
    })
}

/// Reconciles retrieval with the intent: among close hits an article written
/// for the predicted intent is preferred, and when the classifier is sure of
/// the intent, its best-ranked article answers even if retrieval alone would
/// call it a close call or too weak (two independent signals agree).
pub fn reconcile(index: &KnowledgeIndex, hits: &[Hit], understanding: &Understanding) -> KbMatch {
    let intent = understanding.top_intent();
    let serves_intent = |hit: &Hit| {
        index
            .article(&hit.article_id)
            .is_some_and(|a| a.intents().iter().any(|i| i == intent.as_str()))
    };
    reconcile_with(
        hits,
        understanding.top_confidence(),
        serves_intent,
        |ranked| index.decide(ranked),
    )
}

/// [`reconcile`] with the index's two questions passed in, so the rule is
/// tested without building an index.
fn reconcile_with(
    hits: &[Hit],
    intent_confidence: f32,
    serves_intent: impl Fn(&Hit) -> bool,
    decide: impl FnOnce(&[Hit]) -> Match,
) -> KbMatch {
    let Some(top) = hits.first() else {
        return KbMatch::None;
    };
    let mut ordered: Vec<Hit> = hits.to_vec();
    if !serves_intent(top) {
        if let Some(pos) = hits
            .iter()
            .position(|h| serves_intent(h) && h.score >= top.score * PREFER_WITHIN)
        {
            let preferred = ordered.remove(pos);
            ordered.insert(0, preferred);
        }
    }
    let sure = intent_confidence >= SURE_INTENT;
    let best_for_intent = || {
        hits.iter()
            .find(|h| serves_intent(h))
            .map(|h| KbMatch::Confident {
                article_id: h.article_id.clone(),
                score: h.score,
            })
    };
    match decide(&ordered) {
        Match::Confident(hit) => KbMatch::Confident {
            article_id: hit.article_id,
            score: hit.score,
        },
        Match::Ambiguous(a, b) => match best_for_intent() {
            Some(found) if sure => found,
            _ => KbMatch::Ambiguous {
                first: a.article_id,
                second: b.article_id,
            },
        },
        Match::NoMatch => best_for_intent().filter(|_| sure).unwrap_or(KbMatch::None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(id: &str, score: f32) -> Hit {
        Hit {
            article_id: id.into(),
            title: id.into(),
            score,
            snippet: String::new(),
        }
    }

    fn serves_returns(hit: &Hit) -> bool {
        hit.article_id.starts_with("return")
    }

    #[test]
    fn no_hits_is_no_match() {
        let found = reconcile_with(&[], 0.99, serves_returns, |_| unreachable!());
        assert_eq!(found, KbMatch::None);
    }

    #[test]
    fn a_close_article_for_the_intent_moves_to_the_top() {
        let hits = [hit("exchange-policy", 0.9), hit("return-policy", 0.8)];
        let found = reconcile_with(&hits, 0.5, serves_returns, |ranked| {
            assert_eq!(ranked[0].article_id, "return-policy");
            Match::Confident(ranked[0].clone())
        });
        assert!(
            matches!(found, KbMatch::Confident { article_id, .. } if article_id == "return-policy")
        );
    }

    #[test]
    fn a_far_article_for_the_intent_stays_where_it_is() {
        let hits = [hit("exchange-policy", 0.9), hit("return-policy", 0.5)];
        reconcile_with(&hits, 0.5, serves_returns, |ranked| {
            assert_eq!(ranked[0].article_id, "exchange-policy");
            Match::NoMatch
        });
    }

    #[test]
    fn a_sure_intent_settles_a_close_call_and_an_unsure_one_does_not() {
        let hits = [hit("exchange-policy", 0.9), hit("return-policy", 0.85)];
        let ambiguous = |ranked: &[Hit]| Match::Ambiguous(ranked[1].clone(), ranked[0].clone());
        let sure = reconcile_with(&hits, 0.9, serves_returns, ambiguous);
        assert!(
            matches!(sure, KbMatch::Confident { article_id, .. } if article_id == "return-policy")
        );
        let unsure = reconcile_with(&hits, 0.6, serves_returns, ambiguous);
        assert!(matches!(unsure, KbMatch::Ambiguous { .. }));
    }

    #[test]
    fn a_weak_ranking_answers_only_when_the_intent_is_sure() {
        let hits = [hit("return-policy", 0.2)];
        let sure = reconcile_with(&hits, 0.95, serves_returns, |_| Match::NoMatch);
        assert!(matches!(sure, KbMatch::Confident { .. }));
        let unsure = reconcile_with(&hits, 0.5, serves_returns, |_| Match::NoMatch);
        assert_eq!(unsure, KbMatch::None);
    }
}
