//! The event log behind `WatchHandoffs` and `WatchConversation`: one row per
//! turn recorded and per handoff created, claimed or resolved, numbered by a
//! single counter row that every writer bumps as the last statement of its
//! own transaction (see migrations/0002). Holding that row's lock until
//! commit makes commit order equal number order on PostgreSQL as on SQLite,
//! so a reader that has seen event N can never later find an N-1 appear:
//! cursors resume without gaps or repeats, on every replica.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{parse_column, Store, StoreError, StoreResult};
use xiaoer_domain::Queue;

/// What happened; the first five numbers are the contract's `HandoffEventKind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A handoff was opened (its conversation's turns come as `Turn` events).
    HandoffCreated = 1,
    /// The shopper wrote while a handoff was open; carries the turn.
    CustomerMessage = 2,
    /// An agent claimed the handoff.
    Claimed = 3,
    /// An agent resolved it; the bot answers the next message.
    Resolved = 4,
    /// An agent replied; carries the turn.
    AgentMessage = 5,
    /// Any other turn (shopper or bot while the bot has the conversation).
    Turn = 6,
}

impl EventKind {
    fn from_db(value: i64) -> StoreResult<Self> {
        Ok(match value {
            1 => Self::HandoffCreated,
            2 => Self::CustomerMessage,
            3 => Self::Claimed,
            4 => Self::Resolved,
            5 => Self::AgentMessage,
            6 => Self::Turn,
            other => {
                return Err(StoreError::Setup(format!(
                    "unknown event kind {other} in database"
                )))
            }
        })
    }

    /// Whether helpdesk watchers hear about it (a plain bot-mode turn is
    /// only the storefront's business).
    pub fn concerns_helpdesk(self) -> bool {
        self != Self::Turn
    }
}

/// An event about to be written; the log numbers it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub kind: EventKind,
    pub conversation_id: String,
    /// Empty for turns of a conversation with no handoff.
    pub handoff_id: String,
    /// The handoff's queue, so watchers filter without reading the handoff.
    pub queue: Option<Queue>,
    /// The turn it carries, if any, and that turn's place in its conversation.
    pub turn: Option<(String, i64)>,
    pub at_ms: i64,
}

/// A numbered event as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    pub seq: i64,
    pub event: NewEvent,
}

/// The log's extent: `pruned_through < seq <= last_seq` may still be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventHorizon {
    pub last_seq: i64,
    pub pruned_through: i64,
}

/// Writes `events` at the end of a transaction, numbered in order. Call it
/// last, right before commit: the counter row stays locked until then.
pub(super) async fn append(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    events: &[NewEvent],
) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let count = events.len() as i64;
    let last: i64 = sqlx::query(
        "UPDATE event_clock SET last_seq = last_seq + $1 WHERE id = 1 RETURNING last_seq",
    )
    .bind(count)
    .fetch_one(&mut **tx)
    .await?
    .try_get(0)?;
    for (offset, event) in events.iter().enumerate() {
        let (turn_id, turn_seq) = event.turn.clone().unwrap_or_default();
        sqlx::query(
            "INSERT INTO events (seq, kind, conversation_id, handoff_id, queue, turn_id, turn_seq, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(last - count + 1 + offset as i64)
        .bind(event.kind as i64)
        .bind(&event.conversation_id)
        .bind(&event.handoff_id)
        .bind(event.queue.map(Queue::as_str).unwrap_or_default())
        .bind(turn_id)
        .bind(turn_seq)
        .bind(event.at_ms)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

impl Store {
    /// Where the log stands now.
    pub async fn event_horizon(&self) -> StoreResult<EventHorizon> {
        let row = sqlx::query("SELECT last_seq, pruned_through FROM event_clock WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        Ok(EventHorizon {
            last_seq: row.try_get(0)?,
            pruned_through: row.try_get(1)?,
        })
    }

    /// Up to `limit` events after `after`, oldest first.
    pub async fn events_after(&self, after: i64, limit: u32) -> StoreResult<Vec<EventRecord>> {
        let rows = sqlx::query(
            "SELECT seq, kind, conversation_id, handoff_id, queue, turn_id, turn_seq, at \
             FROM events WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event_from_row).collect()
    }

    /// Drops events recorded before `cutoff_ms` and moves the horizon, so
    /// cursors into the dropped part are refused instead of silently
    /// skipping what was there. Returns how many went.
    pub async fn prune_events_before(&self, cutoff_ms: i64) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await?;
        let newest_old: Option<i64> = sqlx::query("SELECT MAX(seq) FROM events WHERE at < $1")
            .bind(cutoff_ms)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let Some(through) = newest_old else {
            return Ok(0);
        };
        let gone = sqlx::query("DELETE FROM events WHERE seq <= $1")
            .bind(through)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE event_clock SET pruned_through = $1 WHERE id = 1 AND pruned_through < $1",
        )
        .bind(through)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(gone.rows_affected())
    }
}

fn event_from_row(row: &AnyRow) -> StoreResult<EventRecord> {
    let turn_id: String = row.try_get(5)?;
    let queue: String = row.try_get(4)?;
    Ok(EventRecord {
        seq: row.try_get(0)?,
        event: NewEvent {
            kind: EventKind::from_db(row.try_get(1)?)?,
            conversation_id: row.try_get(2)?,
            handoff_id: row.try_get(3)?,
            queue: if queue.is_empty() {
                None
            } else {
                Some(parse_column(row, 4)?)
            },
            turn: (!turn_id.is_empty()).then(|| (turn_id, row.try_get(6).unwrap_or_default())),
            at_ms: row.try_get(7)?,
        },
    })
}
