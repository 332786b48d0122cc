//! What the replicas sharing one database coordinate through it: whose turn
//! it is to run retention, and knowledge-base reloads requested through any
//! one of them.

use sqlx::Row;

use super::{new_id, Store, StoreResult, CONVERSATION_TABLES};
use crate::clock::now_ms;

/// What one retention run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purge {
    /// This many conversations were deleted (and the run audited).
    Deleted(u64),
    /// Another replica is purging, or purged recently: nothing done.
    Skipped,
}

/// Advisory lock key of retention runs on PostgreSQL ("xiaoer" in ASCII).
pub const RETENTION_LOCK: i64 = 0x7869_616f_6572;

/// One helpdesk queue's waiting handoffs, for the live gauges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueStats {
    pub queue: String,
    /// Handoffs waiting to be claimed.
    pub waiting: u64,
    /// When the oldest of them was created (unix ms).
    pub oldest_created_ms: i64,
    /// How many of them are past their due time.
    pub overdue: u64,
}

/// The latest `KnowledgeBase/Reload` requested through any replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KbReloadRequest {
    /// Grows by one per request; 0 before the first.
    pub generation: i64,
    /// The version the requesting replica loaded.
    pub version: String,
}

impl Store {
    /// One retention run: deletes conversations idle since before
    /// `cutoff_ms` that have no open handoff (with their turns, feedback,
    /// resolved handoffs and events) and audits it, in one transaction.
    /// Replicas take turns: on PostgreSQL the run holds an advisory lock, and
    /// a run that finds the lock taken, or (with `unless_purged_since`) finds
    /// a purge audited since then, does nothing and says so.
    pub async fn purge_before(
        &self,
        cutoff_ms: i64,
        unless_purged_since: Option<i64>,
    ) -> StoreResult<Purge> {
        let mut tx = self.pool.begin().await?;
        if self.postgres {
            let locked: bool = sqlx::query("SELECT pg_try_advisory_xact_lock($1)")
                .bind(RETENTION_LOCK)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
            if !locked {
                return Ok(Purge::Skipped);
            }
        }
        if let Some(since) = unless_purged_since {
            let latest: Option<i64> = sqlx::query(
                "SELECT MAX(at) FROM audit_log WHERE actor = 'retention' AND action = 'purge'",
            )
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
            if latest.is_some_and(|at| at >= since) {
                return Ok(Purge::Skipped);
            }
        }
        let stale = "SELECT id FROM conversations c WHERE c.updated_at < $1 \
                     AND NOT EXISTS (SELECT 1 FROM handoffs h WHERE h.conversation_id = c.id AND h.status <> 3)";
        for table in CONVERSATION_TABLES {
            sqlx::query(&format!(
                "DELETE FROM {table} WHERE conversation_id IN ({stale})"
            ))
            .bind(cutoff_ms)
            .execute(&mut *tx)
            .await?;
        }
        let gone = sqlx::query(&format!("DELETE FROM conversations WHERE id IN ({stale})"))
            .bind(cutoff_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("INSERT INTO audit_log (id, at, actor, action, subject, outcome) VALUES ($1, $2, 'retention', 'purge', $3, $4)")
            .bind(new_id())
            .bind(now_ms())
            .bind(format!(
                "conversations idle since before {}",
                crate::clock::rfc3339(cutoff_ms)
            ))
            .bind(format!("{gone} deleted"))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Purge::Deleted(gone))
    }

    /// Records that a replica reloaded its knowledge base to `version`, so
    /// the others reload theirs; returns the new generation.
    pub async fn request_kb_reload(&self, version: &str) -> StoreResult<i64> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE kb_reloads SET generation = generation + 1, version = $1, at = $2 WHERE id = 1",
        )
        .bind(version)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        let generation = sqlx::query("SELECT generation FROM kb_reloads WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        tx.commit().await?;
        Ok(generation)
    }

    /// The latest reload request, which every replica polls.
    pub async fn kb_reload_request(&self) -> StoreResult<KbReloadRequest> {
        let row = sqlx::query("SELECT generation, version FROM kb_reloads WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        Ok(KbReloadRequest {
            generation: row.try_get(0)?,
            version: row.try_get(1)?,
        })
    }

    /// Waiting handoffs per queue at `now_ms` (queues with none are absent).
    pub async fn queue_stats(&self, now_ms: i64) -> StoreResult<Vec<QueueStats>> {
        let rows = sqlx::query(
            "SELECT queue, COUNT(*), MIN(created_at), \
             SUM(CASE WHEN due_at > 0 AND due_at < $1 THEN 1 ELSE 0 END) \
             FROM handoffs WHERE status = 1 GROUP BY queue",
        )
        .bind(now_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(QueueStats {
                    queue: row.try_get(0)?,
                    waiting: u64::try_from(row.try_get::<i64, _>(1)?).unwrap_or(0),
                    oldest_created_ms: row.try_get(2)?,
                    overdue: u64::try_from(row.try_get::<i64, _>(3)?).unwrap_or(0),
                })
            })
            .collect()
    }
}
