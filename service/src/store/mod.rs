//! Persistent state: conversations, turns, handoffs, feedback and the audit log.
//!
//! One implementation serves both backends through sqlx's `Any` driver: SQLite
//! (one embedded file, the default) and PostgreSQL (shared by stateless
//! replicas). The schema and every statement use only syntax both accept, so
//! behaviour cannot drift between them. Text handed to the store is already
//! masked by the caller; the store never sees raw personal data.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use xiaoer_domain::{HandoffReason, Intent, Queue, TurnRole};

use crate::clock::now_ms;

mod events;
mod fleet;
mod insights;
mod ratings;

pub use events::{EventHorizon, EventKind, EventRecord, NewEvent};
pub use fleet::{KbReloadRequest, Purge, QueueStats, RETENTION_LOCK};
pub use insights::{ConversationRow, InsightRows};
pub use ratings::RatingRecord;

/// Store failures, split by what the caller should do about them.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or answered with an I/O-level error:
    /// the caller should retry later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The requested record does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The record exists but is in a state that forbids the operation.
    #[error("{0}")]
    Conflict(String),
    /// The database URL or schema is wrong: a configuration problem.
    #[error("database setup failed: {0}")]
    Setup(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::RowNotFound => StoreError::NotFound("row".into()),
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                // The database's wording names tables and keys: log it, say it plainly.
                tracing::debug!(error = %db, "unique violation");
                StoreError::Conflict("a concurrent write recorded this first".into())
            }
            other => StoreError::Unavailable(other.to_string()),
        }
    }
}

/// Result alias for store operations.
pub type StoreResult<T> = Result<T, StoreError>;

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

/// One message in a conversation as stored (text already masked).
#[derive(Debug, Clone, PartialEq)]
pub struct TurnRecord {
    pub id: String,
    pub role: TurnRole,
    pub text: String,
    /// The message's top intent (the bot's turn repeats its shopper's).
    pub intent: Intent,
    /// `SentimentLabel` number from the contract.
    pub sentiment: i32,
    /// Calibrated probability of anger for customer turns, 0 for bot turns.
    pub anger: f32,
    /// `Action` number of the bot's decision (bot turns), 0 otherwise.
    pub action: i32,
    /// Knowledge-base articles cited by this turn.
    pub articles: Vec<String>,
    pub at_ms: i64,
    /// Who wrote an agent turn; empty for shopper and bot turns.
    pub agent_id: String,
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

/// Conversation identity and routing facts recorded with its first turn.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationMeta {
    pub id: String,
    pub shop_id: String,
    pub channel: String,
    pub language: String,
}

/// A customer turn and the bot's answer, written together so a conversation
/// never holds a question without its answer.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub conversation: ConversationMeta,
    pub customer: TurnRecord,
    /// None while a person has the conversation: the bot stays silent and
    /// the shopper's message goes to the open handoff.
    pub bot: Option<TurnRecord>,
    /// The open handoff the shopper's message is added to, if any.
    pub open_handoff: Option<(String, Queue)>,
    /// Client-supplied id that makes a retried request idempotent.
    pub client_turn_id: Option<String>,
    /// Encoded response replayed when the same client turn id comes again.
    pub response: Vec<u8>,
    /// A handoff to open with this exchange (see [`HandoffRecord::open`]).
    pub handoff: Option<HandoffRecord>,
}

/// What recording an exchange produced.
#[derive(Debug, Clone)]
pub enum Recorded {
    /// Stored now.
    New,
    /// The same client turn id was recorded before; carries the first response.
    Replayed { response: Vec<u8> },
}

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

/// Filter and page for listing handoffs.
#[derive(Debug, Clone, Default)]
pub struct HandoffQuery {
    pub state: Option<HandoffState>,
    pub queue: Option<Queue>,
    pub limit: u32,
    /// Resume after this (created_at, id) key; opaque to callers.
    pub after: Option<(i64, String)>,
}

/// Handle to the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    /// PostgreSQL (shared by replicas) rather than embedded SQLite.
    postgres: bool,
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

impl Store {
    /// Connects (creating the SQLite file if needed) and applies the embedded
    /// migrations, so a fresh data directory or database just works.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let is_sqlite = url.starts_with("sqlite:");
        let url = if is_sqlite && !url.contains("mode=") {
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}mode=rwc")
        } else {
            url.to_string()
        };
        // While the database is down every acquire retries until this
        // timeout; keep it short so the probe request fails fast (the
        // responder's outage gate spares all other requests the wait).
        let mut options = AnyPoolOptions::new()
            .acquire_timeout(Duration::from_secs(2))
            .max_connections(if is_sqlite { 4 } else { 16 });
        if is_sqlite {
            // WAL lets readers and one writer proceed together; foreign keys
            // and a busy timeout are per-connection settings in SQLite. With
            // WAL, synchronous=NORMAL syncs at checkpoints instead of every
            // commit: a commit survives the process dying (kill -9, a
            // panic), and only an OS crash or power cut may lose the last
            // moments — SQLite's recommended setting for WAL.
            options = options.after_connect(|conn, _| {
                Box::pin(async move {
                    for pragma in [
                        "PRAGMA journal_mode = WAL",
                        "PRAGMA synchronous = NORMAL",
                        "PRAGMA foreign_keys = ON",
                        "PRAGMA busy_timeout = 2000",
                    ] {
                        sqlx::query(pragma).execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            });
        }
        let pool = options
            .connect(&url)
            .await
            .map_err(|e| StoreError::Setup(format!("{}: {e}", crate::server::redact_url(&url))))?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Setup(format!("migrations: {e}")))?;
        Ok(Self {
            pool,
            postgres: url.starts_with("postgres"),
        })
    }

    /// Cheap liveness probe used by health reporting.
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Finds the response already given to a client turn id, for idempotent retries.
    pub async fn replayed_response(
        &self,
        conversation_id: &str,
        client_turn_id: &str,
    ) -> StoreResult<Option<Vec<u8>>> {
        let row = sqlx::query(
            "SELECT response FROM turns WHERE conversation_id = $1 AND client_turn_id = $2",
        )
        .bind(conversation_id)
        .bind(client_turn_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| decode_hex(&r.try_get::<String, _>(0)?))
            .transpose()
    }

    /// Records a customer turn, the bot's answer and an optional new handoff in
    /// one transaction: either all are stored or none is.
    pub async fn record_exchange(&self, exchange: &Exchange) -> StoreResult<Recorded> {
        if let Some(client_id) = &exchange.client_turn_id {
            if let Some(response) = self
                .replayed_response(&exchange.conversation.id, client_id)
                .await?
            {
                return Ok(Recorded::Replayed { response });
            }
        }
        let mut tx = self.pool.begin().await?;
        let now = exchange.customer.at_ms;
        let meta = &exchange.conversation;
        sqlx::query(
            "INSERT INTO conversations (id, shop_id, channel, language, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5) \
             ON CONFLICT (id) DO UPDATE SET updated_at = $5, language = $4",
        )
        .bind(&meta.id)
        .bind(&meta.shop_id)
        .bind(&meta.channel)
        .bind(&meta.language)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let next_seq: i64 =
            sqlx::query("SELECT COALESCE(MAX(seq), 0) + 1 FROM turns WHERE conversation_id = $1")
                .bind(&meta.id)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
        let response_hex = encode_hex(&exchange.response);
        insert_turn(
            &mut tx,
            &meta.id,
            next_seq,
            &exchange.customer,
            exchange.client_turn_id.as_deref(),
            Some(response_hex.as_str()),
        )
        .await?;
        if let Some(bot) = &exchange.bot {
            insert_turn(&mut tx, &meta.id, next_seq + 1, bot, None, None).await?;
        }
        if let Some(handoff) = &exchange.handoff {
            insert_handoff(&mut tx, handoff).await?;
        }
        events::append(&mut tx, &exchange_events(exchange, next_seq)).await?;
        tx.commit().await?;
        Ok(Recorded::New)
    }

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

    /// The place of turn `turn_id` in its conversation (1 is the first);
    /// an id that is not a turn of this conversation is `NotFound`.
    pub async fn turn_position(&self, conversation_id: &str, turn_id: &str) -> StoreResult<i64> {
        sqlx::query("SELECT seq FROM turns WHERE conversation_id = $1 AND id = $2")
            .bind(conversation_id)
            .bind(turn_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| {
                StoreError::NotFound(format!("turn {turn_id} in conversation {conversation_id}"))
            })?
            .try_get(0)
            .map_err(Into::into)
    }

    /// The turns of a conversation after position `after_seq` (0: all),
    /// oldest first, with their positions.
    pub async fn turns_after(
        &self,
        conversation_id: &str,
        after_seq: i64,
    ) -> StoreResult<Vec<(i64, TurnRecord)>> {
        let rows = sqlx::query(&format!(
            "SELECT {TURN_COLUMNS}, seq FROM turns WHERE conversation_id = $1 AND seq > $2 ORDER BY seq"
        ))
        .bind(conversation_id)
        .bind(after_seq)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get(10)?, turn_from_row(row)?)))
            .collect()
    }

    /// One turn by id.
    pub async fn turn(&self, turn_id: &str) -> StoreResult<TurnRecord> {
        let row = sqlx::query(&format!("SELECT {TURN_COLUMNS} FROM turns WHERE id = $1"))
            .bind(turn_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("turn {turn_id}")))?;
        turn_from_row(&row)
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

    /// The most recent `limit` turns of a conversation, oldest first: the
    /// history the policy reads and the transcript a handoff shows.
    pub async fn conversation_turns(
        &self,
        conversation_id: &str,
        limit: u32,
    ) -> StoreResult<Vec<TurnRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {TURN_COLUMNS} FROM \
             (SELECT * FROM turns WHERE conversation_id = $1 ORDER BY seq DESC LIMIT $2) recent ORDER BY seq"
        ))
        .bind(conversation_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(turn_from_row).collect()
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

    /// Whether a turn id belongs to a conversation (feedback must point at a real turn).
    pub async fn turn_exists(&self, conversation_id: &str, turn_id: &str) -> StoreResult<bool> {
        let row = sqlx::query("SELECT 1 FROM turns WHERE conversation_id = $1 AND id = $2")
            .bind(conversation_id)
            .bind(turn_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

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

    /// Appends to the audit log (who did what to which subject; never message text).
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        subject: &str,
        outcome: &str,
    ) -> StoreResult<()> {
        sqlx::query("INSERT INTO audit_log (id, at, actor, action, subject, outcome) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(new_id())
            .bind(now_ms())
            .bind(actor)
            .bind(action)
            .bind(subject)
            .bind(outcome)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Erases one conversation with its turns (agent turns too), handoffs,
    /// feedback and events (the
    /// shopper's right to be forgotten). Returns whether anything existed.
    pub async fn forget_conversation(&self, conversation_id: &str) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        for table in CONVERSATION_TABLES {
            sqlx::query(&format!("DELETE FROM {table} WHERE conversation_id = $1"))
                .bind(conversation_id)
                .execute(&mut *tx)
                .await?;
        }
        let gone = sqlx::query("DELETE FROM conversations WHERE id = $1")
            .bind(conversation_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(gone.rows_affected() > 0)
    }

    /// Counts rows of a table; used by tests and the soak check.
    pub async fn count(&self, table: StoreTable) -> StoreResult<i64> {
        let row = sqlx::query(&format!("SELECT COUNT(*) FROM {}", table.name()))
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get(0)?)
    }
}

/// Tables whose size callers may ask for.
#[derive(Debug, Clone, Copy)]
pub enum StoreTable {
    Conversations,
    Turns,
    Handoffs,
    Feedback,
    AuditLog,
}

impl StoreTable {
    fn name(self) -> &'static str {
        match self {
            Self::Conversations => "conversations",
            Self::Turns => "turns",
            Self::Handoffs => "handoffs",
            Self::Feedback => "feedback",
            Self::AuditLog => "audit_log",
        }
    }
}

const HANDOFF_SELECT: &str =
    "SELECT id, conversation_id, reason, status, queue, priority, summary, kb_articles_tried, \
     suggested_replies, entities, created_at, claimed_by, resolution, due_at, claimed_at, resolved_at FROM handoffs";

/// The columns [`turn_from_row`] reads, in its order.
const TURN_COLUMNS: &str =
    "id, role, text, intent, sentiment, anger, action, articles, at, agent_id";

/// Tables holding a conversation's data, deleted with it (children first).
const CONVERSATION_TABLES: [&str; 5] = ["events", "feedback", "ratings", "turns", "handoffs"];

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

/// The events one recorded exchange produces: the turns (as shopper
/// messages of the open handoff while a person has the conversation) and a
/// new handoff.
fn exchange_events(exchange: &Exchange, first_seq: i64) -> Vec<NewEvent> {
    let conversation_id = &exchange.conversation.id;
    let event = |kind, handoff_id: &str, queue, turn: Option<&TurnRecord>, seq| NewEvent {
        kind,
        conversation_id: conversation_id.clone(),
        handoff_id: handoff_id.to_string(),
        queue,
        turn: turn.map(|t| (t.id.clone(), seq)),
        at_ms: exchange.customer.at_ms,
    };
    let mut out = Vec::with_capacity(3);
    match &exchange.open_handoff {
        Some((id, queue)) => out.push(event(
            EventKind::CustomerMessage,
            id,
            Some(*queue),
            Some(&exchange.customer),
            first_seq,
        )),
        None => out.push(event(
            EventKind::Turn,
            "",
            None,
            Some(&exchange.customer),
            first_seq,
        )),
    }
    if let Some(bot) = &exchange.bot {
        out.push(event(EventKind::Turn, "", None, Some(bot), first_seq + 1));
    }
    if let Some(created) = &exchange.handoff {
        out.push(event(
            EventKind::HandoffCreated,
            &created.id,
            Some(created.details.queue),
            None,
            0,
        ));
    }
    out
}

async fn insert_feedback(
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

async fn insert_turn(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    conversation_id: &str,
    seq: i64,
    turn: &TurnRecord,
    client_turn_id: Option<&str>,
    response: Option<&str>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO turns (id, conversation_id, seq, role, text, intent, sentiment, anger, action, articles, client_turn_id, response, at, agent_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(&turn.id)
    .bind(conversation_id)
    .bind(seq)
    .bind(turn.role.as_str())
    .bind(&turn.text)
    .bind(turn.intent.as_str())
    .bind(i64::from(turn.sentiment))
    .bind(f64::from(turn.anger))
    .bind(i64::from(turn.action))
    .bind(to_json(&turn.articles))
    .bind(client_turn_id)
    .bind(response)
    .bind(turn.at_ms)
    .bind(&turn.agent_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn insert_handoff(
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

fn turn_from_row(row: &AnyRow) -> StoreResult<TurnRecord> {
    Ok(TurnRecord {
        id: row.try_get(0)?,
        role: parse_column(row, 1)?,
        text: row.try_get(2)?,
        intent: parse_column(row, 3)?,
        sentiment: row.try_get::<i64, _>(4)? as i32,
        anger: row.try_get::<f64, _>(5)? as f32,
        action: row.try_get::<i64, _>(6)? as i32,
        articles: from_json(&row.try_get::<String, _>(7)?)?,
        at_ms: row.try_get(8)?,
        agent_id: row.try_get(9)?,
    })
}

fn handoff_from_row(row: &AnyRow) -> StoreResult<HandoffRecord> {
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

/// A domain word stored as its name; an unknown name means the database was
/// written by something else, a setup problem rather than bad input.
fn parse_column<T>(row: &AnyRow, index: usize) -> StoreResult<T>
where
    T: FromStr<Err = xiaoer_domain::UnknownName>,
{
    row.try_get::<String, _>(index)?
        .parse()
        .map_err(|e| StoreError::Setup(format!("{e} in database")))
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

fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

fn from_json<T: for<'de> Deserialize<'de>>(text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Setup(format!("corrupt JSON column: {e}")))
}

fn encode_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_hex(text: &str) -> StoreResult<Vec<u8>> {
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| StoreError::Setup("corrupt stored response".into()))
        })
        .collect()
}

/// The default embedded database inside a data directory.
pub fn sqlite_url(data_dir: &std::path::Path) -> String {
    format!("sqlite://{}", data_dir.join("xiaoer.db").display())
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
