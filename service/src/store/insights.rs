//! What the daily insights report reads: every conversation started in a
//! window, with all its turns, handoffs, draft verdicts and ratings.

use sqlx::Row;

use super::handoffs::{handoff_from_row, HANDOFF_SELECT};
use super::ratings::rating_from_row;
use super::{
    turn_from_row, FeedbackRecord, HandoffRecord, Store, StoreResult, TurnRecord, TURN_COLUMNS,
};

/// A conversation as the report counts it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationRow {
    pub id: String,
    /// Language of its first message ("zh", "en", "mixed").
    pub language: String,
    /// Channel the storefront named ("web", "app", "loadtest", ...).
    pub channel: String,
    pub created_at_ms: i64,
}

/// Conversations started in a window and everything recorded about them.
#[derive(Debug, Clone, Default)]
pub struct InsightRows {
    pub conversations: Vec<ConversationRow>,
    /// (conversation id, turn), oldest first within each conversation.
    pub turns: Vec<(String, TurnRecord)>,
    pub handoffs: Vec<HandoffRecord>,
    pub feedback: Vec<FeedbackRecord>,
    pub ratings: Vec<super::RatingRecord>,
}

/// The conversations of the window, as a subquery binding $1 and $2.
const IN_WINDOW: &str =
    "conversation_id IN (SELECT id FROM conversations WHERE created_at >= $1 AND created_at < $2)";

impl Store {
    /// Reads conversations created from `from_ms` (inclusive) to `to_ms`
    /// (exclusive) with their turns, handoffs, feedback and ratings.
    pub async fn insight_rows(&self, from_ms: i64, to_ms: i64) -> StoreResult<InsightRows> {
        let conversations = sqlx::query(
            "SELECT id, language, channel, created_at FROM conversations \
             WHERE created_at >= $1 AND created_at < $2 ORDER BY created_at",
        )
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            Ok(ConversationRow {
                id: row.try_get(0)?,
                language: row.try_get(1)?,
                channel: row.try_get(2)?,
                created_at_ms: row.try_get(3)?,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
        let turns = sqlx::query(&format!(
            "SELECT {TURN_COLUMNS}, conversation_id FROM turns WHERE {IN_WINDOW} ORDER BY conversation_id, seq"
        ))
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| Ok((row.try_get(10)?, turn_from_row(row)?)))
        .collect::<StoreResult<Vec<_>>>()?;
        let handoffs = sqlx::query(&format!(
            "{HANDOFF_SELECT} WHERE {IN_WINDOW} ORDER BY created_at"
        ))
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(handoff_from_row)
        .collect::<StoreResult<Vec<_>>>()?;
        let feedback = self
            .all_feedback()
            .await?
            .into_iter()
            .filter(|f| conversations.iter().any(|c| c.id == f.conversation_id))
            .collect();
        let ratings = sqlx::query(&format!(
            "SELECT conversation_id, turn_id, rating, comment, at FROM ratings WHERE {IN_WINDOW} ORDER BY at"
        ))
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(rating_from_row)
        .collect::<StoreResult<Vec<_>>>()?;
        Ok(InsightRows {
            conversations,
            turns,
            handoffs,
            feedback,
            ratings,
        })
    }
}
