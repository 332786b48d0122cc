//! Shoppers' ratings of bot answers (`AutoReply/RateReply`).

use sqlx::Row;

use super::{Store, StoreResult};

/// One rating as stored (comment already masked).
#[derive(Debug, Clone, PartialEq)]
pub struct RatingRecord {
    pub conversation_id: String,
    /// The bot turn rated.
    pub turn_id: String,
    /// 1 (poor) to 5 (excellent).
    pub rating: i64,
    pub comment: String,
    pub at_ms: i64,
}

impl Store {
    /// Stores a rating; a second rating of the same turn replaces the first.
    pub async fn rate_turn(&self, rating: &RatingRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO ratings (conversation_id, turn_id, rating, comment, at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (conversation_id, turn_id) DO UPDATE SET rating = $3, comment = $4, at = $5",
        )
        .bind(&rating.conversation_id)
        .bind(&rating.turn_id)
        .bind(rating.rating)
        .bind(&rating.comment)
        .bind(rating.at_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Ratings given from `from_ms` (inclusive) to `to_ms` (exclusive).
    pub async fn ratings_between(
        &self,
        from_ms: i64,
        to_ms: i64,
    ) -> StoreResult<Vec<RatingRecord>> {
        let rows = sqlx::query(
            "SELECT conversation_id, turn_id, rating, comment, at FROM ratings WHERE at >= $1 AND at < $2 ORDER BY at",
        )
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rating_from_row).collect()
    }
}

/// Reads the columns `conversation_id, turn_id, rating, comment, at`.
pub(super) fn rating_from_row(row: &sqlx::any::AnyRow) -> StoreResult<RatingRecord> {
    Ok(RatingRecord {
        conversation_id: row.try_get(0)?,
        turn_id: row.try_get(1)?,
        rating: row.try_get(2)?,
        comment: row.try_get(3)?,
        at_ms: row.try_get(4)?,
    })
}
