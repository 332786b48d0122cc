//! Handoffs: opening, listing, claiming and resolving them, and the agent's
//! replies posted through them.

use std::collections::BTreeMap;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;
use xiaoer_domain::{HandoffReason, Queue};

use super::events::{self, EventKind, NewEvent};
use super::{
    encode_hex, from_json, insert_feedback, insert_turn, new_id, parse_column, to_json,
    FeedbackRecord, Recorded, Store, StoreError, StoreResult, TurnRecord,
};
use crate::clock::now_ms;

/// Lifecycle of a handoff; the numbers match the contract's `HandoffStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HandoffState {
    Waiting = 1,
    Claimed = 2,
    Resolved = 3,
}

impl HandoffState {
    fn from_db(v: i64) -> StoreResult<Self> {
        match v {
            1 => Ok(Self::Waiting),
            2 => Ok(Self::Claimed),
            3 => Ok(Self::Resolved),
            other => Err(StoreError::Setup(format!(
                "unknown handoff status {other} in database"
            ))),
        }
    }
}
/// A draft reply stored with a handoff for the agent who picks it up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DraftReply {
    pub text: String,
    pub article_id: String,
    pub score: f32,
}

/// Everything needed to create a handoff; the store adds id, status and time.
#[derive(Debug, Clone, PartialEq)]
pub struct NewHandoff {
    pub reason: HandoffReason,
    pub queue: Queue,
    pub priority: i32,
    pub summary: String,
    pub kb_articles_tried: Vec<String>,
    pub suggested_replies: Vec<DraftReply>,
    pub entities: BTreeMap<String, String>,
}

/// A stored handoff with its current state.
#[derive(Debug, Clone, PartialEq)]
pub struct HandoffRecord {
    pub id: String,
    pub conversation_id: String,
    pub details: NewHandoff,
    pub state: HandoffState,
    pub created_at_ms: i64,
    /// When an agent should have answered (see `crate::sla`); 0 if unknown.
    pub due_at_ms: i64,
    pub claimed_at_ms: Option<i64>,
    pub resolved_at_ms: Option<i64>,
    pub claimed_by: String,
    pub resolution: String,
}

impl HandoffRecord {
    /// A new waiting handoff. The id is chosen before the write so the reply
    /// that announces the handoff (and its idempotent replay) can name it.
    pub fn open(
        conversation_id: &str,
        details: NewHandoff,
        created_at_ms: i64,
        due_at_ms: i64,
    ) -> Self {
        Self {
            id: new_id(),
            conversation_id: conversation_id.to_string(),
            details,
            state: HandoffState::Waiting,
            created_at_ms,
            due_at_ms,
            claimed_at_ms: None,
            resolved_at_ms: None,
            claimed_by: String::new(),
            resolution: String::new(),
        }
    }
}
/// Filter and page for listing handoffs.
#[derive(Debug, Clone, Default)]
pub struct HandoffQuery {
    pub state: Option<HandoffState>,
    pub queue: Option<Queue>,
    pub limit: u32,
    /// Resume after this (created_at, id) key; opaque to callers.
    pub after: Option<(i64, String)>,
}

impl Store {
    /// Records an agent's reply to the handoff `handoff_id`, which must be
    /// claimed by `turn.agent_id`; a retried `client_message_id` returns the
    /// first turn's stored response. `feedback` (the draft verdict) is
    /// written in the same transaction.
    pub async fn record_agent_turn(
        &self,
        handoff_id: &str,
        turn: &TurnRecord,
        client_message_id: Option<&str>,
        response: &[u8],
        feedback: Option<&FeedbackRecord>,
    ) -> StoreResult<Recorded> {
        let handoff = self.handoff(handoff_id).await?;
        if let Some(client_id) = client_message_id {
            if let Some(response) = self
                .replayed_response(&handoff.conversation_id, client_id)
                .await?
            {
                return Ok(Recorded::Replayed { response });
            }
        }
        let mut tx = self.pool.begin().await?;
        // Re-read under the transaction: a resolve or a re-claim racing this
        // post must win or lose as a whole.
        let still_ours = sqlx::query(
            "UPDATE handoffs SET claimed_by = claimed_by WHERE id = $1 AND status = 2 AND claimed_by = $2",
        )
        .bind(handoff_id)
        .bind(&turn.agent_id)
        .execute(&mut *tx)
        .await?;
        if still_ours.rows_affected() != 1 {
            return Err(StoreError::Conflict(posting_refusal(
                &handoff,
                &turn.agent_id,
            )));
        }
        let next_seq: i64 =
            sqlx::query("SELECT COALESCE(MAX(seq), 0) + 1 FROM turns WHERE conversation_id = $1")
                .bind(&handoff.conversation_id)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
        insert_turn(
            &mut tx,
            &handoff.conversation_id,
            next_seq,
            turn,
            client_message_id,
            Some(&encode_hex(response)),
        )
        .await?;
        sqlx::query("UPDATE conversations SET updated_at = $1 WHERE id = $2")
            .bind(turn.at_ms)
            .bind(&handoff.conversation_id)
            .execute(&mut *tx)
            .await?;
        if let Some(feedback) = feedback {
            insert_feedback(&mut tx, feedback).await?;
        }
        let event = NewEvent {
            kind: EventKind::AgentMessage,
            conversation_id: handoff.conversation_id.clone(),
            handoff_id: handoff.id.clone(),
            queue: Some(handoff.details.queue),
            turn: Some((turn.id.clone(), next_seq)),
            at_ms: turn.at_ms,
        };
        events::append(&mut tx, &[event]).await?;
        tx.commit().await?;
        Ok(Recorded::New)
    }
    /// The conversation's most recent handoff in any state: after it is
    /// resolved the bot tells the shopper it is back.
    pub async fn latest_handoff(
        &self,
        conversation_id: &str,
    ) -> StoreResult<Option<HandoffRecord>> {
        let row = sqlx::query(&format!(
            "{HANDOFF_SELECT} WHERE conversation_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1"
        ))
        .bind(conversation_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(handoff_from_row).transpose()
    }
    /// The open (waiting or claimed) handoff of a conversation, if any.
    pub async fn open_handoff(&self, conversation_id: &str) -> StoreResult<Option<HandoffRecord>> {
        let row = sqlx::query(&format!(
            "{HANDOFF_SELECT} WHERE conversation_id = $1 AND status <> 3"
        ))
        .bind(conversation_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(handoff_from_row).transpose()
    }

    /// One handoff by id.
    pub async fn handoff(&self, id: &str) -> StoreResult<HandoffRecord> {
        let row = sqlx::query(&format!("{HANDOFF_SELECT} WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("handoff {id}")))?;
        handoff_from_row(&row)
    }

    /// Handoffs in queue order (oldest first), filtered and paged by keyset so
    /// pages stay stable while new handoffs arrive.
    pub async fn list_handoffs(&self, query: &HandoffQuery) -> StoreResult<Vec<HandoffRecord>> {
        let (after_at, after_id) = query.after.clone().unwrap_or((i64::MIN, String::new()));
        let rows = sqlx::query(&format!(
            "{HANDOFF_SELECT} WHERE ($1 = 0 OR status = $1) AND ($2 = '' OR queue = $2) \
             AND (created_at > $3 OR (created_at = $3 AND id > $4)) ORDER BY created_at, id LIMIT $5"
        ))
        .bind(query.state.map(|s| s as i64).unwrap_or(0))
        .bind(query.queue.map(Queue::as_str).unwrap_or_default())
        .bind(after_at)
        .bind(after_id)
        .bind(i64::from(query.limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(handoff_from_row).collect()
    }

    /// Claims a waiting handoff for an agent. The conditional update makes the
    /// race atomic on both backends: exactly one of several agents wins.
    pub async fn claim_handoff(&self, id: &str, agent_id: &str) -> StoreResult<HandoffRecord> {
        self.transition_handoff(
            id,
            "UPDATE handoffs SET status = 2, claimed_by = $1, claimed_at = $2 WHERE id = $3 AND status = 1",
            EventKind::Claimed,
            agent_id,
            |current| match current.state {
                HandoffState::Claimed => {
                    format!("handoff {id} is already claimed by {}", current.claimed_by)
                }
                _ => format!("handoff {id} is resolved and cannot be claimed"),
            },
        )
        .await
    }

    /// Resolves a claimed handoff with the agent's note.
    pub async fn resolve_handoff(&self, id: &str, resolution: &str) -> StoreResult<HandoffRecord> {
        self.transition_handoff(
            id,
            "UPDATE handoffs SET status = 3, resolution = $1, resolved_at = $2 WHERE id = $3 AND status = 2",
            EventKind::Resolved,
            resolution,
            |current| match current.state {
                HandoffState::Waiting => format!("handoff {id} must be claimed before it is resolved"),
                _ => format!("handoff {id} is already resolved"),
            },
        )
        .await
    }

    /// One state transition as a single conditional `update` (binds: `value`,
    /// now, `id`; its WHERE names the state it leaves) and its `event`, in
    /// one transaction. If no row changed, the handoff was in another state
    /// and `conflict` explains which.
    async fn transition_handoff(
        &self,
        id: &str,
        update: &'static str,
        event: EventKind,
        value: &str,
        conflict: impl FnOnce(&HandoffRecord) -> String,
    ) -> StoreResult<HandoffRecord> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(update)
            .bind(value)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 1 {
            let row = sqlx::query(&format!("{HANDOFF_SELECT} WHERE id = $1"))
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            let current = handoff_from_row(&row)?;
            let happened = NewEvent {
                kind: event,
                conversation_id: current.conversation_id.clone(),
                handoff_id: current.id.clone(),
                queue: Some(current.details.queue),
                turn: None,
                at_ms: now,
            };
            events::append(&mut tx, &[happened]).await?;
            tx.commit().await?;
            return Ok(current);
        }
        drop(tx);
        let current = self.handoff(id).await?;
        Err(StoreError::Conflict(conflict(&current)))
    }
}

pub(super) const HANDOFF_SELECT: &str =
    "SELECT id, conversation_id, reason, status, queue, priority, summary, kb_articles_tried, \
     suggested_replies, entities, created_at, claimed_by, resolution, due_at, claimed_at, resolved_at FROM handoffs";
/// Why an agent may not post to a handoff in its current state.
fn posting_refusal(handoff: &HandoffRecord, agent_id: &str) -> String {
    let id = &handoff.id;
    match handoff.state {
        HandoffState::Waiting => format!("handoff {id} must be claimed before an agent replies"),
        HandoffState::Resolved => {
            format!("handoff {id} is resolved; the bot has the conversation again")
        }
        HandoffState::Claimed => format!(
            "handoff {id} is claimed by {}, not {agent_id}",
            handoff.claimed_by
        ),
    }
}
pub(super) async fn insert_handoff(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    record: &HandoffRecord,
) -> StoreResult<()> {
    let new = &record.details;
    sqlx::query(
        "INSERT INTO handoffs (id, conversation_id, reason, status, queue, priority, summary, kb_articles_tried, \
         suggested_replies, entities, created_at, claimed_by, resolution, due_at) VALUES ($1, $2, $3, 1, $4, $5, $6, $7, $8, $9, $10, '', '', $11)",
    )
    .bind(&record.id)
    .bind(&record.conversation_id)
    .bind(reason_code(new.reason))
    .bind(new.queue.as_str())
    .bind(i64::from(new.priority))
    .bind(&new.summary)
    .bind(to_json(&new.kb_articles_tried))
    .bind(to_json(&new.suggested_replies))
    .bind(to_json(&new.entities))
    .bind(record.created_at_ms)
    .bind(record.due_at_ms)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
pub(super) fn handoff_from_row(row: &AnyRow) -> StoreResult<HandoffRecord> {
    Ok(HandoffRecord {
        id: row.try_get(0)?,
        conversation_id: row.try_get(1)?,
        details: NewHandoff {
            reason: reason_from_code(row.try_get(2)?)?,
            queue: parse_column(row, 4)?,
            priority: row.try_get::<i64, _>(5)? as i32,
            summary: row.try_get(6)?,
            kb_articles_tried: from_json(&row.try_get::<String, _>(7)?)?,
            suggested_replies: from_json(&row.try_get::<String, _>(8)?)?,
            entities: from_json(&row.try_get::<String, _>(9)?)?,
        },
        state: HandoffState::from_db(row.try_get(3)?)?,
        created_at_ms: row.try_get(10)?,
        claimed_by: row.try_get(11)?,
        resolution: row.try_get(12)?,
        due_at_ms: row.try_get(13)?,
        claimed_at_ms: row.try_get(14)?,
        resolved_at_ms: row.try_get(15)?,
    })
}
/// Handoff reasons are stored as the contract's `HandoffReason` numbers
/// (1-based, in [`HandoffReason::ALL`] order), as they always were.
fn reason_code(reason: HandoffReason) -> i64 {
    HandoffReason::ALL
        .iter()
        .position(|r| *r == reason)
        .map_or(0, |i| i as i64 + 1)
}

fn reason_from_code(code: i64) -> StoreResult<HandoffReason> {
    usize::try_from(code - 1)
        .ok()
        .and_then(|i| HandoffReason::ALL.get(i).copied())
        .ok_or_else(|| StoreError::Setup(format!("unknown handoff reason {code} in database")))
}
/// Parses a page token produced by [`page_token`].
pub fn parse_page_token(token: &str) -> Option<(i64, String)> {
    let (at, id) = token.split_once(':')?;
    Some((i64::from_str(at).ok()?, id.to_string()))
}

/// Opaque keyset token for the handoff after which the next page starts.
pub fn page_token(record: &HandoffRecord) -> String {
    format!("{}:{}", record.created_at_ms, record.id)
}
