//! Agents' verdicts on draft replies (used / edited / rejected): what the
//! insights report and the training export read back.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{Store, StoreResult};

/// An agent's verdict on a draft reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedbackRecord {
    pub id: String,
    pub conversation_id: String,
    pub turn_id: String,
    pub suggestion_text: String,
    pub verdict: String,
    pub edited_text: String,
    pub created_at_ms: i64,
}

impl Store {
    /// Stores an agent's verdict on a draft.
    pub async fn add_feedback(&self, feedback: &FeedbackRecord) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        insert_feedback(&mut tx, feedback).await?;
        tx.commit().await?;
        Ok(())
    }

    /// All feedback, oldest first, for export to training tooling.
    pub async fn all_feedback(&self) -> StoreResult<Vec<FeedbackRecord>> {
        let rows = sqlx::query(
            "SELECT id, conversation_id, turn_id, suggestion_text, verdict, edited_text, created_at FROM feedback ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(FeedbackRecord {
                    id: r.try_get(0)?,
                    conversation_id: r.try_get(1)?,
                    turn_id: r.try_get(2)?,
                    suggestion_text: r.try_get(3)?,
                    verdict: r.try_get(4)?,
                    edited_text: r.try_get(5)?,
                    created_at_ms: r.try_get(6)?,
                })
            })
            .collect()
    }
}

pub(super) async fn insert_feedback(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    feedback: &FeedbackRecord,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO feedback (id, conversation_id, turn_id, suggestion_text, verdict, edited_text, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&feedback.id)
    .bind(&feedback.conversation_id)
    .bind(&feedback.turn_id)
    .bind(&feedback.suggestion_text)
    .bind(&feedback.verdict)
    .bind(&feedback.edited_text)
    .bind(feedback.created_at_ms)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
