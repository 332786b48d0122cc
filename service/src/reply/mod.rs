//! The reply pipeline. One shopper message goes through five stages, each
//! its own module: [`understand`] (one encoder pass feeds the heads and
//! dense retrieval) → [`retrieve`] (hybrid search reconciled with the
//! intent) → decide ([`crate::policy`], pure) → [`render`] (the words and
//! citations) → [`record`] (masked, with any handoff, in one transaction).
//!
//! Handlers in `grpc` only translate; this is where requests are validated,
//! where I/O happens and where failures become [`ServiceError`]s.

pub mod agent;
pub mod helpdesk;
pub mod history;
pub mod record;
pub mod render;
pub mod retrieve;
pub mod understand;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::{info, warn};
use xiaoer_domain::Intent;
use xiaoer_kb::KnowledgeBase;
use xiaoer_models::{Classifier, Encoder, InferencePool};
use xiaoer_proto::v1 as pb;

pub use understand::Understanding;

use crate::clock::now_ms;
use crate::conversions::{
    alternatives_pb, handoff_pb, intent_pb, order_facts, sentiment_pb, source_pb,
};
use crate::error::{bounded, require_id, require_text, ServiceError};
use crate::events::EventHub;
use crate::handoff::{build_package, PackageInput};
use crate::outage::OutageGate;
use crate::policy::{self, Decision, History, PolicyConfig, PolicyInput};
use crate::ratelimit::{ConversationLimiter, RateLimit, DEFAULT_MAX_TRACKED};

use crate::sla::DueClock;
use crate::store::{
    ConversationMeta, Exchange, HandoffRecord, HandoffState, Recorded, Store, StoreError,
    TurnRecord,
};
use crate::{cues, phrasing, telemetry};

/// How many earlier turns the policy and the handoff transcript read.
const HISTORY_TURNS: u32 = 40;
/// After a database failure, how long requests skip the store before one probes it.
const OUTAGE_PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// Drafts stored with a new handoff for the agent who picks it up.
const HANDOFF_DRAFTS: usize = 3;
/// Articles retrieved for one Reply: enough for a close call to show.
const REPLY_HITS: usize = 3;

/// Everything the pipeline needs, shared by all handlers.
pub struct Responder {
    encoder: Arc<dyn Encoder>,
    pool: InferencePool,
    classifier: Arc<Classifier>,
    kb: Arc<KnowledgeBase>,
    store: Store,
    policy: PolicyConfig,
    /// Bounds requests in flight; past it callers get RESOURCE_EXHAUSTED at once.
    admission: Arc<Semaphore>,
    /// Per-conversation flood limit on Reply, this replica's view.
    limiter: Mutex<ConversationLimiter>,
    /// The same limit, checked against the turns every replica stored.
    conversation_limit: RateLimit,
    /// Skips the store while the database is down, so replies stay fast.
    db_gate: OutageGate,
    /// Live events for watchers of handoffs and conversations.
    events: Arc<EventHub>,
    /// Due times of new handoffs.
    due: DueClock,
}

/// How much one server takes on, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Requests in flight before RESOURCE_EXHAUSTED.
    pub max_concurrent: usize,
    /// Per-conversation flood limit on Reply.
    pub conversation: RateLimit,
    /// Longest life of one watch stream before it ends with UNAVAILABLE
    /// and the client resumes from its cursor (see [`EventHub::new`]).
    pub stream_life: Duration,
}

/// The loaded models a responder answers with, checked against each other
/// at start-up (the heads fit the encoder, the index was built with it).
pub struct Models {
    /// The encoder the inference pool runs and the index was embedded with.
    pub encoder: Arc<dyn Encoder>,
    /// Intent, sentiment and request heads.
    pub classifier: Arc<Classifier>,
    /// The live knowledge base (reloadable).
    pub kb: Arc<KnowledgeBase>,
}

/// The conversation as stored before this message.
struct Earlier {
    turns: Vec<TurnRecord>,
    /// The conversation's most recent handoff, open or resolved.
    latest_handoff: Option<HandoffRecord>,
    /// False when the store could not be read: the reply goes out, but
    /// nothing that must be recorded (a handoff) may be promised.
    store_up: bool,
}

impl Responder {
    /// Wires the parts; the pool must run `models.encoder`.
    pub fn new(
        models: Models,
        pool: InferencePool,
        store: Store,
        policy: PolicyConfig,
        limits: Limits,
        due: DueClock,
    ) -> Self {
        let Limits {
            max_concurrent,
            conversation: conversation_limit,
            stream_life,
        } = limits;
        let Models {
            encoder,
            classifier,
            kb,
        } = models;
        let policy = policy.with_model_anger_cut(classifier.thresholds().angry);
        let events = EventHub::new(store.clone(), stream_life);
        Self {
            encoder,
            pool,
            classifier,
            kb,
            store,
            policy,
            admission: Arc::new(Semaphore::new(max_concurrent)),
            limiter: Mutex::new(ConversationLimiter::new(
                conversation_limit,
                DEFAULT_MAX_TRACKED,
            )),
            conversation_limit,
            db_gate: OutageGate::new(OUTAGE_PROBE_INTERVAL),
            events,
            due,
        }
    }

    /// The live event hub (its poller is started by the server).
    pub fn events(&self) -> &Arc<EventHub> {
        &self.events
    }

    /// Admits one request or refuses at once when the server is saturated,
    /// so a traffic spike is answered quickly instead of queued without bound.
    pub fn admit(&self) -> Result<OwnedSemaphorePermit, ServiceError> {
        Arc::clone(&self.admission)
            .try_acquire_owned()
            .map_err(|_| {
                ServiceError::overloaded("server is at its concurrency limit, please retry")
            })
    }

    /// Takes one message from a conversation's rate budget, refusing floods
    /// before any inference or database work is spent on them.
    fn check_rate(&self, conversation_id: &str) -> Result<(), ServiceError> {
        let mut limiter = self.limiter.lock().unwrap_or_else(|e| e.into_inner());
        Ok(limiter.check(conversation_id, Instant::now())?)
    }

    /// Runs a store call unless the database is known to be down, and notes
    /// the outcome, so during an outage only one probe per interval waits on
    /// the pool while every other request fails over at once.
    async fn with_store<T>(
        &self,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        if !self.db_gate.should_try(Instant::now()) {
            return Err(StoreError::Unavailable(
                "skipped: the database failed moments ago".into(),
            ));
        }
        let result = call.await;
        self.db_gate.record(&result, Instant::now());
        result
    }

    /// The encoder, for rebuilding the knowledge-base index.
    pub fn encoder(&self) -> &Arc<dyn Encoder> {
        &self.encoder
    }

    /// The live knowledge base, for reloads triggered by folder changes.
    pub fn knowledge_base(&self) -> &Arc<KnowledgeBase> {
        &self.kb
    }

    /// The store, for the helpdesk handlers.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Stage 1 for every RPC that reads a message.
    pub async fn understand(
        &self,
        text: &str,
        locale: &str,
    ) -> Result<Understanding, ServiceError> {
        understand::understand(&self.pool, &self.classifier, text, locale).await
    }

    /// `AutoReply/Classify`: stores nothing.
    pub async fn classify(
        &self,
        req: pb::ClassifyRequest,
    ) -> Result<pb::ClassifyResponse, ServiceError> {
        let text = require_text("text", &req.text)?;
        let u = self.understand(text, &req.locale).await?;
        Ok(pb::ClassifyResponse {
            intent: intent_pb(&u.intents),
            alternatives: alternatives_pb(&u.intents),
            sentiment: Some(sentiment_pb(u.sentiment, u.anger)),
            out_of_scope: u.out_of_scope,
            language: u.lang.code().to_string(),
        })
    }

    /// `KnowledgeBase/Search`.
    pub async fn search(&self, req: pb::SearchRequest) -> Result<pb::SearchResponse, ServiceError> {
        let text = require_text("query", &req.query)?;
        let limit = bounded("limit", req.limit, 5, 50)?;
        let u = self.understand(text, &req.locale).await?;
        let results = retrieve::search(&self.kb.current(), &u, limit)
            .into_iter()
            .map(source_pb)
            .collect();
        Ok(pb::SearchResponse { results })
    }

    /// `KnowledgeBase/Reload`: reloads this replica's folder (a broken
    /// article set leaves the live index alone), then asks every other
    /// replica to reload theirs through the database (see `kb_sync`).
    pub async fn reload(&self) -> Result<pb::ReloadResponse, ServiceError> {
        let outcome = self.reload_local().await?;
        if let Err(e) = self.store.request_kb_reload(&outcome.version).await {
            warn!(error = %e, "reloaded here, but other replicas could not be told: they reload on their folder watch or the next Reload");
        }
        Ok(pb::ReloadResponse {
            articles: outcome.articles as i32,
            version: outcome.version,
        })
    }

    /// Reloads this replica's knowledge-base folder off the async threads.
    pub async fn reload_local(&self) -> Result<xiaoer_kb::ReloadOutcome, ServiceError> {
        let kb = Arc::clone(&self.kb);
        let encoder = Arc::clone(&self.encoder);
        let outcome = tokio::task::spawn_blocking(move || kb.reload(encoder.as_ref()))
            .await
            .map_err(|e| ServiceError::Internal(format!("reload task: {e}")))?
            .map_err(|e| {
                ServiceError::FailedPrecondition(format!(
                    "knowledge base not reloaded, previous version stays live: {e}"
                ))
            })?;
        info!(articles = outcome.articles, version = %outcome.version, changed = outcome.changed, "knowledge base reloaded");
        Ok(outcome)
    }

    /// `AutoReply/Reply`: one decision per shopper message, through the five
    /// stages; a retry with the same client turn id gets the first answer.
    pub async fn reply(&self, req: pb::ReplyRequest) -> Result<pb::ReplyResponse, ServiceError> {
        let conversation_id = require_id("conversation_id", &req.conversation_id)?.to_string();
        let text = require_text("text", &req.text)?;
        let client_turn_id = match req.client_turn_id.trim() {
            "" => None,
            id => Some(require_id("client_turn_id", id)?.to_string()),
        };
        self.check_rate(&conversation_id)?;
        if let Some(client_id) = &client_turn_id {
            if let Ok(Some(bytes)) = self
                .with_store(self.store.replayed_response(&conversation_id, client_id))
                .await
            {
                return record::decode_response(&bytes);
            }
        }

        let earlier = self.earlier(&conversation_id).await;
        // The per-replica bucket above refused a flood aimed at this replica
        // at no cost; the stored turns hold the limit across replicas.
        self.conversation_limit
            .check_history(&earlier.customer_times(), now_ms())?;
        let u = self.understand(text, &req.locale).await?;
        let index = self.kb.current();
        let hits = retrieve::search(&index, &u, REPLY_HITS);
        let open_handoff = earlier.open_handoff();
        // After an agent resolved a handoff, the bot starts afresh: what was
        // said before (and how angry it was) went to the agent.
        let since_resolution = earlier.turns_since_resolution();
        let resumed = earlier.bot_resumes();
        let orders = order_facts(req.customer.as_ref());
        let input = PolicyInput {
            lang: u.lang,
            intents: u.intents.clone(),
            out_of_scope: u.out_of_scope,
            anger: u.anger,
            cues: cues::detect(text).with_staff_action(u.asks_staff_action),
            kb: retrieve::reconcile(&index, &hits, &u),
            history: history::summarise(since_resolution, open_handoff.is_some()),
            orders,
        };
        let decision = policy::decide(&input, &self.policy);
        let mut rendered = render::render(&index, &decision, u.lang, &hits);
        if resumed {
            rendered.text = format!("{} {}", phrasing::bot_back(u.lang), rendered.text);
        }
        let with_agent = decision == Decision::WithAgent;

        let now = now_ms();
        let known = record::known_numbers(&input.orders);
        let customer_turn = record::customer_turn(text, &known, &u, now);
        let bot_turn = record::bot_turn(&rendered, &known, &u, now);
        let mut transcript = earlier.turns.clone();
        transcript.push(customer_turn.clone());
        let new_handoff = match &decision {
            Decision::Handoff {
                cause,
                queue,
                priority,
            } => {
                let details = build_package(PackageInput {
                    lang: u.lang,
                    cause: *cause,
                    queue: *queue,
                    priority: *priority,
                    topic: handoff_topic(&input.history, &u),
                    transcript: &transcript,
                    orders: &input.orders,
                    suggested_replies: render::topic_drafts(
                        &index,
                        &render::cited_articles(since_resolution),
                        &hits,
                        u.lang,
                        u.anger >= self.policy.anger_cut(),
                        HANDOFF_DRAFTS,
                    ),
                });
                let due = self.due.due_at(now, *priority);
                Some(HandoffRecord::open(&conversation_id, details, now, due))
            }
            _ => None,
        };
        let must_record = new_handoff.is_some() || open_handoff.is_some();
        if !earlier.store_up && must_record {
            return Err(ServiceError::Unavailable(
                "database unavailable: the handoff could not be recorded, please retry".into(),
            ));
        }
        // While a person has the conversation the bot only acknowledges; its
        // words are not part of the transcript the agent reads.
        let bot_turn = (!with_agent).then_some(bot_turn);
        transcript.extend(bot_turn.clone());
        let shown_handoff = new_handoff.as_ref().or(open_handoff);
        let response = pb::ReplyResponse {
            action: rendered.action as i32,
            text: rendered.text,
            intent: intent_pb(&u.intents),
            alternatives: alternatives_pb(&u.intents),
            sentiment: Some(sentiment_pb(u.sentiment, u.anger)),
            sources: rendered.sources,
            handoff: shown_handoff.map(|h| handoff_pb(h, &transcript)),
            turn_id: bot_turn.as_ref().unwrap_or(&customer_turn).id.clone(),
            language: u.lang.code().to_string(),
        };
        let exchange = Exchange {
            conversation: ConversationMeta {
                id: conversation_id,
                shop_id: req.shop_id,
                channel: req.channel,
                language: u.lang.code().to_string(),
            },
            customer: customer_turn,
            bot: bot_turn,
            open_handoff: open_handoff.map(|h| (h.id.clone(), h.details.queue)),
            client_turn_id,
            // Stored so a retry with the same client turn id gets this very answer.
            response: prost::Message::encode_to_vec(&response),
            handoff: new_handoff,
        };
        let first_message = earlier.store_up && earlier.turns.is_empty();
        if let Some(replayed) = self.record(&exchange, must_record).await? {
            return Ok(replayed);
        }
        if first_message {
            telemetry::record_conversation_started();
        }
        telemetry::record_reply_action(record::action_metric(rendered.action));
        Ok(response)
    }

    /// The conversation's earlier turns and open handoff; a store outage
    /// answers without history rather than failing the shopper.
    async fn earlier(&self, conversation_id: &str) -> Earlier {
        let read = async {
            let turns = self
                .with_store(
                    self.store
                        .conversation_turns(conversation_id, HISTORY_TURNS),
                )
                .await?;
            let latest_handoff = self
                .with_store(self.store.latest_handoff(conversation_id))
                .await?;
            Ok::<_, StoreError>((turns, latest_handoff))
        };
        match read.await {
            Ok((turns, latest_handoff)) => Earlier {
                turns,
                latest_handoff,
                store_up: true,
            },
            Err(e) => {
                warn!(conversation_id, error = %e, "history unavailable, answering without it");
                Earlier {
                    turns: Vec::new(),
                    latest_handoff: None,
                    store_up: false,
                }
            }
        }
    }

    /// Writes the exchange. Returns the earlier response when a concurrent
    /// or retried request with the same client turn id got there first; a
    /// store failure fails the call only when something must be recorded.
    async fn record(
        &self,
        exchange: &Exchange,
        must_record: bool,
    ) -> Result<Option<pb::ReplyResponse>, ServiceError> {
        let conversation_id = exchange.conversation.id.as_str();
        match self.with_store(self.store.record_exchange(exchange)).await {
            Ok(Recorded::New) => {
                if let Some(created) = &exchange.handoff {
                    telemetry::record_handoff(record::reason_metric(created.details.reason));
                    info!(conversation_id, handoff_id = %created.id, queue = %created.details.queue, "handed off");
                }
                Ok(None)
            }
            Ok(Recorded::Replayed { response }) => record::decode_response(&response).map(Some),
            Err(StoreError::Conflict(why)) => {
                // A concurrent request for this conversation won the race
                // (same client turn id, or it opened the handoff first).
                if let Some(client_id) = exchange.client_turn_id.as_deref() {
                    if let Some(bytes) = self
                        .store
                        .replayed_response(conversation_id, client_id)
                        .await?
                    {
                        return record::decode_response(&bytes).map(Some);
                    }
                }
                Err(ServiceError::Unavailable(format!(
                    "conflicting concurrent write, please retry: {why}"
                )))
            }
            Err(e) if must_record => Err(e.into()),
            Err(e) => {
                telemetry::record_degraded_reply();
                warn!(conversation_id, error = %e, "reply not recorded: database unavailable");
                Ok(None)
            }
        }
    }
}

impl Earlier {
    /// When the shopper's stored messages arrived, oldest first.
    fn customer_times(&self) -> Vec<i64> {
        self.turns
            .iter()
            .filter(|t| t.role == xiaoer_domain::TurnRole::Customer)
            .map(|t| t.at_ms)
            .collect()
    }

    /// The waiting or claimed handoff, if a person has the conversation.
    fn open_handoff(&self) -> Option<&HandoffRecord> {
        self.latest_handoff
            .as_ref()
            .filter(|h| h.state != HandoffState::Resolved)
    }

    /// When the latest handoff was resolved, if it was.
    fn resolved_at(&self) -> Option<i64> {
        self.latest_handoff
            .as_ref()
            .filter(|h| h.state == HandoffState::Resolved)
            .and_then(|h| h.resolved_at_ms)
    }

    /// The turns the policy reads: those after the latest resolution.
    fn turns_since_resolution(&self) -> &[TurnRecord] {
        let Some(resolved) = self.resolved_at() else {
            return &self.turns;
        };
        let first = self.turns.partition_point(|t| t.at_ms < resolved);
        &self.turns[first..]
    }

    /// Whether this is the bot's first answer since an agent resolved the
    /// handoff: it then says it is back, so the transcript shows who speaks.
    fn bot_resumes(&self) -> bool {
        self.resolved_at().is_some()
            && !self
                .turns_since_resolution()
                .iter()
                .any(|t| t.role == xiaoer_domain::TurnRole::Bot)
    }
}

/// What a handoff is about: a bare "转人工" goes to the queue and summary of
/// the topic the conversation was about before it.
fn handoff_topic(history: &History, u: &Understanding) -> Intent {
    match (u.top_intent(), history.last_topic_intent) {
        (Intent::HumanAgent, Some(earlier)) => earlier,
        (now, _) => now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xiaoer_domain::SentimentLabel;
    use xiaoer_models::Language;

    fn understood(intent: Intent) -> Understanding {
        Understanding {
            text: String::new(),
            lang: Language::En,
            embedding: vec![],
            intents: vec![(intent, 0.9)],
            out_of_scope: false,
            sentiment: SentimentLabel::Neutral,
            anger: 0.0,
            asks_staff_action: false,
        }
    }

    #[test]
    fn a_bare_request_for_a_person_keeps_the_earlier_topic() {
        let history = History {
            last_topic_intent: Some(Intent::RefundStatus),
            ..History::default()
        };
        assert_eq!(
            handoff_topic(&history, &understood(Intent::HumanAgent)),
            Intent::RefundStatus
        );
        assert_eq!(
            handoff_topic(&history, &understood(Intent::Complaint)),
            Intent::Complaint,
            "a message with its own topic is routed by it"
        );
        assert_eq!(
            handoff_topic(&History::default(), &understood(Intent::HumanAgent)),
            Intent::HumanAgent
        );
    }
}
