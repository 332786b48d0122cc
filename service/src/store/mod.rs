//! Persistent state: conversations, turns, handoffs, feedback and the audit log.
//!
//! One implementation serves both backends through sqlx's `Any` driver: SQLite
//! (one embedded file, the default) and PostgreSQL (shared by stateless
//! replicas). The schema and every statement use only syntax both accept, so
//! behaviour cannot drift between them. Text handed to the store is already
//! masked by the caller; the store never sees raw personal data.

use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use xiaoer_domain::{Intent, Queue, TurnRole};

use crate::clock::now_ms;

mod events;
mod feedback;
mod fleet;
mod handoffs;
mod insights;
mod ratings;

pub use events::{EventHorizon, EventKind, EventRecord, NewEvent};
use feedback::insert_feedback;
pub use feedback::FeedbackRecord;
pub use fleet::{KbReloadRequest, Purge, QueueStats, RETENTION_LOCK};
use handoffs::insert_handoff;
pub use handoffs::{
    page_token, parse_page_token, DraftReply, HandoffQuery, HandoffRecord, HandoffState, NewHandoff,
};
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
            .map_err(|e| StoreError::Setup(format!("{}: {e}", redact_url(&url))))?;
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

    /// Whether a turn id belongs to a conversation (feedback must point at a real turn).
    pub async fn turn_exists(&self, conversation_id: &str, turn_id: &str) -> StoreResult<bool> {
        let row = sqlx::query("SELECT 1 FROM turns WHERE conversation_id = $1 AND id = $2")
            .bind(conversation_id)
            .bind(turn_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
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

/// The columns [`turn_from_row`] reads, in its order.
const TURN_COLUMNS: &str =
    "id, role, text, intent, sentiment, anger, action, articles, at, agent_id";

/// Tables holding a conversation's data, deleted with it (children first).
const CONVERSATION_TABLES: [&str; 5] = ["events", "feedback", "ratings", "turns", "handoffs"];

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

/// A database URL without its password, for logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let creds = &url[scheme_end + 3..at];
            let user = creds.split(':').next().unwrap_or_default();
            format!("{}{}:***{}", &url[..scheme_end + 3], user, &url[at..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_logs() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/xiaoer"),
            "postgres://app:***@db:5432/xiaoer"
        );
        assert_eq!(
            redact_url("sqlite://data/xiaoer.db"),
            "sqlite://data/xiaoer.db"
        );
    }
}
