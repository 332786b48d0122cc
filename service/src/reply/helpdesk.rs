//! The helpdesk side of the pipeline: drafts for an agent, the agent's
//! verdict on them, and a stored handoff with its transcript.

use xiaoer_domain::SentimentLabel;
use xiaoer_privacy::mask;
use xiaoer_proto::v1 as pb;

use super::{record, render, retrieve, Responder, HISTORY_TURNS};
use crate::clock::now_ms;
use crate::conversions::{handoff_pb, intent_pb, sentiment_pb, suggested_reply_pb};
use crate::error::{bounded, require_id, require_text, ServiceError};
use crate::store::{FeedbackRecord, HandoffRecord, RatingRecord};
use crate::telemetry;
use xiaoer_domain::TurnRole;

/// The verdicts an agent may give a draft, as the contract spells them.
const VERDICTS: [&str; 3] = ["used", "edited", "rejected"];

impl Responder {
    /// `AutoReply/SuggestReplies`: drafts for an agent, never changes state.
    pub async fn suggest(
        &self,
        req: pb::SuggestRepliesRequest,
    ) -> Result<pb::SuggestRepliesResponse, ServiceError> {
        require_id("conversation_id", &req.conversation_id)?;
        let text = require_text("text", &req.text)?;
        let max = bounded("max_suggestions", req.max_suggestions, 3, 10)?;
        let u = self.understand(text, &req.locale).await?;
        let index = self.kb.current();
        let hits = retrieve::search(&index, &u, max);
        let angry = u.anger >= self.policy.anger_cut() || u.sentiment == SentimentLabel::Angry;
        let suggestions = render::drafts(&index, &hits, u.lang, angry, max)
            .iter()
            .map(suggested_reply_pb)
            .collect();
        Ok(pb::SuggestRepliesResponse {
            suggestions,
            intent: intent_pb(&u.intents),
            sentiment: Some(sentiment_pb(u.sentiment, u.anger)),
        })
    }

    /// `AutoReply/RateReply`: the shopper's 1–5 rating of a bot answer; a
    /// second rating of the same turn replaces the first; the comment is masked.
    pub async fn rate_reply(&self, req: pb::RateReplyRequest) -> Result<(), ServiceError> {
        let conversation_id = require_id("conversation_id", &req.conversation_id)?;
        let turn_id = require_id("turn_id", &req.turn_id)?;
        if !(1..=5).contains(&req.rating) {
            return Err(ServiceError::invalid(
                "rating",
                format!("must be 1 to 5, got {}", req.rating),
            ));
        }
        let comment = match req.comment.trim() {
            "" => "",
            _ => require_text("comment", &req.comment)?,
        };
        let turn = match self.store.turn(turn_id).await {
            Ok(turn) => turn,
            Err(crate::store::StoreError::NotFound(_)) => {
                return Err(ServiceError::NotFound(format!(
                    "turn {turn_id} in conversation {conversation_id}"
                )))
            }
            Err(e) => return Err(e.into()),
        };
        if turn.role != TurnRole::Bot || !self.store.turn_exists(conversation_id, turn_id).await? {
            return Err(ServiceError::NotFound(format!(
                "bot turn {turn_id} in conversation {conversation_id}"
            )));
        }
        self.store
            .rate_turn(&RatingRecord {
                conversation_id: conversation_id.to_string(),
                turn_id: turn_id.to_string(),
                rating: i64::from(req.rating),
                comment: mask(comment),
                at_ms: now_ms(),
            })
            .await?;
        telemetry::record_rating(req.rating);
        Ok(())
    }

    /// `AutoReply/Feedback`: stores an agent's verdict on a draft, masked.
    pub async fn feedback(&self, req: pb::FeedbackRequest) -> Result<(), ServiceError> {
        let conversation_id = require_id("conversation_id", &req.conversation_id)?;
        let turn_id = require_id("turn_id", &req.turn_id)?;
        let suggestion = require_text("suggestion_text", &req.suggestion_text)?;
        let verdict = req.verdict.trim().to_lowercase();
        if !VERDICTS.contains(&verdict.as_str()) {
            return Err(ServiceError::invalid(
                "verdict",
                format!("must be used, edited or rejected, got {:?}", req.verdict),
            ));
        }
        let edited = if verdict == "edited" {
            require_text("edited_text", &req.edited_text)?
        } else {
            ""
        };
        if !self.store.turn_exists(conversation_id, turn_id).await? {
            return Err(ServiceError::NotFound(format!(
                "turn {turn_id} in conversation {conversation_id}"
            )));
        }
        self.store
            .add_feedback(&FeedbackRecord {
                id: record::new_turn_id(),
                conversation_id: conversation_id.to_string(),
                turn_id: turn_id.to_string(),
                suggestion_text: mask(suggestion),
                verdict,
                edited_text: mask(edited),
                created_at_ms: now_ms(),
            })
            .await?;
        Ok(())
    }

    /// Contract form of a stored handoff, with its transcript read from the store.
    pub async fn handoff_with_transcript(
        &self,
        record: &HandoffRecord,
    ) -> Result<pb::Handoff, ServiceError> {
        let turns = self
            .store
            .conversation_turns(&record.conversation_id, HISTORY_TURNS)
            .await?;
        Ok(handoff_pb(record, &turns))
    }
}
