//! The reply pipeline: understand a message (one encoder pass feeds both the
//! classifier heads and dense retrieval), consult the knowledge base, ask the
//! policy, render the reply, record everything masked.
//!
//! Handlers in `grpc` only translate; this is where requests are validated,
//! where I/O happens and where failures become [`ServiceError`]s.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::{info, warn};
use xiaoer_kb::{Hit, KnowledgeBase, KnowledgeIndex, Match, RetrievalMode, SearchQuery};
use xiaoer_models::{Classifier, Encoder, InferencePool, Language, SentimentLabel, TextRole};
use xiaoer_proto::v1 as pb;

use crate::error::{bounded, require_id, require_text, ServiceError};
use crate::handoff::{build_package, PackageInput};
use crate::outage::OutageGate;
use crate::policy::{
    self, Answer, ClarifyOption, Decision, HandoffCause, History, KbMatch, OrderFact, PolicyConfig,
    PolicyInput,
};
use crate::privacy::mask;
use crate::ratelimit::{ConversationLimiter, RateLimit, DEFAULT_MAX_TRACKED};
use crate::store::{
    now_ms, ConversationMeta, DraftReply, Exchange, FeedbackRecord, HandoffRecord, HandoffState,
    Recorded, Store, StoreError, TurnRecord,
};
use crate::{cues, phrasing, telemetry};

/// How many earlier turns the policy and the handoff transcript read.
const HISTORY_TURNS: u32 = 40;
/// After a database failure, how long requests skip the store before one probes it.
const OUTAGE_PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// Rough wait quoted to shoppers handed to a person, by priority 1..4.
const WAIT_MINUTES: [u32; 4] = [3, 5, 10, 15];

/// What one message means, from one pass of the encoder.
#[derive(Debug, Clone)]
pub struct Understanding {
    pub lang: Language,
    pub embedding: Vec<f32>,
    /// Calibrated intents, best first.
    pub intents: Vec<(String, f32)>,
    pub out_of_scope: bool,
    pub sentiment: SentimentLabel,
    /// Calibrated P(angry).
    pub anger: f32,
    /// The request head says the shopper asks staff to decide or act
    /// (waive a fee, approve a refund now, reroute a shipped parcel).
    pub asks_staff_action: bool,
}

impl Understanding {
    fn top_intent(&self) -> &str {
        self.intents
            .first()
            .map(|(n, _)| n.as_str())
            .unwrap_or("out_of_scope")
    }

    fn intent_pb(&self) -> Option<pb::IntentPrediction> {
        self.intents
            .first()
            .map(|(name, confidence)| pb::IntentPrediction {
                name: name.clone(),
                confidence: *confidence,
            })
    }

    fn alternatives_pb(&self) -> Vec<pb::IntentPrediction> {
        self.intents
            .iter()
            .skip(1)
            .take(3)
            .map(|(name, confidence)| pb::IntentPrediction {
                name: name.clone(),
                confidence: *confidence,
            })
            .collect()
    }

    fn sentiment_pb(&self) -> pb::Sentiment {
        pb::Sentiment {
            label: sentiment_label_pb(self.sentiment) as i32,
            score: self.anger,
        }
    }
}

fn sentiment_label_pb(label: SentimentLabel) -> pb::SentimentLabel {
    match label {
        SentimentLabel::Positive => pb::SentimentLabel::SentimentPositive,
        SentimentLabel::Neutral => pb::SentimentLabel::SentimentNeutral,
        SentimentLabel::Negative => pb::SentimentLabel::SentimentNegative,
        SentimentLabel::Angry => pb::SentimentLabel::SentimentAngry,
    }
}

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
    /// Per-conversation flood limit on Reply.
    limiter: Mutex<ConversationLimiter>,
    /// Skips the store while the database is down, so replies stay fast.
    db_gate: OutageGate,
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

impl Responder {
    /// Wires the parts; the pool must run `models.encoder`.
    pub fn new(
        models: Models,
        pool: InferencePool,
        store: Store,
        policy: PolicyConfig,
        max_concurrent: usize,
        conversation_limit: RateLimit,
    ) -> Self {
        let Models {
            encoder,
            classifier,
            kb,
        } = models;
        let policy = policy.with_model_anger_cut(classifier.thresholds().angry);
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
            db_gate: OutageGate::new(OUTAGE_PROBE_INTERVAL),
        }
    }

    /// Admits one request or refuses at once when the server is saturated,
    /// so a traffic spike is answered quickly instead of queued without bound.
    pub fn admit(&self) -> Result<OwnedSemaphorePermit, ServiceError> {
        Arc::clone(&self.admission)
            .try_acquire_owned()
            .map_err(|_| {
                ServiceError::Overloaded("server is at its concurrency limit, please retry".into())
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

    /// Classifies one message; the encoder runs on the inference threads.
    pub async fn understand(
        &self,
        text: &str,
        locale: &str,
    ) -> Result<Understanding, ServiceError> {
        let lang =
            Language::from_locale(locale).unwrap_or_else(|| xiaoer_models::detect_language(text));
        let views = self.pool.embed(text.to_string(), TextRole::Query).await?;
        let intent = self.classifier.intent(&views.classification);
        let sentiment = self.classifier.sentiment(&views.classification, text);
        let request = self.classifier.request(&views.classification);
        Ok(Understanding {
            lang,
            embedding: views.retrieval,
            intents: intent.ranked,
            out_of_scope: intent.out_of_scope,
            sentiment: sentiment.label,
            anger: sentiment.p_angry,
            asks_staff_action: request.staff_action,
        })
    }

    fn search_hits(
        &self,
        index: &KnowledgeIndex,
        text: &str,
        understanding: &Understanding,
        limit: usize,
    ) -> Vec<Hit> {
        index.search(&SearchQuery {
            text,
            embedding: Some(&understanding.embedding),
            language: understanding.lang,
            limit,
            mode: RetrievalMode::Hybrid,
        })
    }

    /// `AutoReply/Classify`: stores nothing.
    pub async fn classify(
        &self,
        req: pb::ClassifyRequest,
    ) -> Result<pb::ClassifyResponse, ServiceError> {
        let text = require_text("text", &req.text)?;
        let u = self.understand(text, &req.locale).await?;
        Ok(pb::ClassifyResponse {
            intent: u.intent_pb(),
            alternatives: u.alternatives_pb(),
            sentiment: Some(u.sentiment_pb()),
            out_of_scope: u.out_of_scope,
            language: u.lang.code().to_string(),
        })
    }

    /// `KnowledgeBase/Search`.
    pub async fn search(&self, req: pb::SearchRequest) -> Result<pb::SearchResponse, ServiceError> {
        let text = require_text("query", &req.query)?;
        let limit = bounded("limit", req.limit, 5, 50)?;
        let u = self.understand(text, &req.locale).await?;
        let index = self.kb.current();
        let results = self
            .search_hits(&index, text, &u, limit)
            .into_iter()
            .map(source_pb)
            .collect();
        Ok(pb::SearchResponse { results })
    }

    /// `KnowledgeBase/Reload`: a broken article set leaves the live index alone.
    pub async fn reload(&self) -> Result<pb::ReloadResponse, ServiceError> {
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
        info!(articles = outcome.articles, version = %outcome.version, "knowledge base reloaded");
        Ok(pb::ReloadResponse {
            articles: outcome.articles as i32,
            version: outcome.version,
        })
    }

    /// `AutoReply/Reply`: one decision per shopper message.
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
                return decode_response(&bytes);
            }
        }
        let u = self.understand(text, &req.locale).await?;
        let index = self.kb.current();
        let hits = self.search_hits(&index, text, &u, 3);
        let (history_turns, open_handoff, store_up) =
            match self.load_history(&conversation_id).await {
                Ok((turns, handoff)) => (turns, handoff, true),
                Err(e) => {
                    warn!(conversation_id, error = %e, "history unavailable, answering without it");
                    (Vec::new(), None, false)
                }
            };
        let orders = order_facts(req.customer.as_ref());
        let input = PolicyInput {
            lang: u.lang,
            intents: u.intents.clone(),
            out_of_scope: u.out_of_scope,
            anger: u.anger,
            cues: cues::detect(text).with_staff_action(u.asks_staff_action),
            kb: reconcile_kb(
                &index,
                &hits,
                u.top_intent(),
                u.intents.first().map(|(_, p)| *p).unwrap_or(0.0),
            ),
            history: summarise_history(&history_turns, open_handoff.is_some()),
            orders: orders.clone(),
        };
        let decision = policy::decide(&input, &self.policy);

        let now = now_ms();
        let masked = mask(text);
        let customer_turn = TurnRecord {
            id: new_turn_id(),
            role: "customer".into(),
            text: masked,
            intent: u.top_intent().to_string(),
            sentiment: sentiment_label_pb(u.sentiment) as i32,
            anger: u.anger,
            action: 0,
            articles: vec![],
            at_ms: now,
        };
        let rendered = self.render(&index, &decision, &u, &hits);
        let bot_turn = TurnRecord {
            id: new_turn_id(),
            role: "bot".into(),
            text: mask(&rendered.text),
            intent: u.top_intent().to_string(),
            sentiment: 0,
            anger: 0.0,
            action: rendered.action as i32,
            articles: rendered
                .sources
                .iter()
                .map(|s| s.article_id.clone())
                .collect(),
            at_ms: now,
        };
        let mut transcript = history_turns;
        transcript.push(customer_turn.clone());
        let new_handoff = match &decision {
            Decision::Handoff {
                cause,
                queue,
                priority,
            } => {
                let topic = input
                    .history
                    .last_topic_intent
                    .clone()
                    .filter(|_| u.top_intent() == "human_agent")
                    .unwrap_or_else(|| u.top_intent().to_string());
                let details = build_package(PackageInput {
                    lang: u.lang,
                    cause: *cause,
                    queue,
                    priority: *priority,
                    topic: &topic,
                    transcript: &transcript,
                    orders: &orders,
                    suggested_replies: drafts(
                        &index,
                        &hits,
                        u.lang,
                        u.anger >= self.policy.anger_cut(),
                        3,
                    ),
                });
                Some(HandoffRecord::open(&conversation_id, details, now))
            }
            _ => None,
        };
        let must_record = new_handoff.is_some() || open_handoff.is_some();
        if !store_up && must_record {
            return Err(ServiceError::Unavailable(
                "database unavailable: the handoff could not be recorded, please retry".into(),
            ));
        }
        transcript.push(bot_turn.clone());
        let shown_handoff = new_handoff.as_ref().or(open_handoff.as_ref());
        let response = pb::ReplyResponse {
            action: rendered.action as i32,
            text: rendered.text,
            intent: u.intent_pb(),
            alternatives: u.alternatives_pb(),
            sentiment: Some(u.sentiment_pb()),
            sources: rendered.sources,
            handoff: shown_handoff.map(|h| handoff_pb(h, &transcript)),
            turn_id: bot_turn.id.clone(),
            language: u.lang.code().to_string(),
        };
        let exchange = Exchange {
            conversation: ConversationMeta {
                id: conversation_id.clone(),
                shop_id: req.shop_id.clone(),
                channel: req.channel.clone(),
                language: u.lang.code().to_string(),
            },
            customer: customer_turn,
            bot: bot_turn,
            client_turn_id,
            // Stored so a retry with the same client turn id gets this very answer.
            response: prost::Message::encode_to_vec(&response),
            handoff: new_handoff,
        };
        match self.with_store(self.store.record_exchange(&exchange)).await {
            Ok(Recorded::New) => {
                if let Some(created) = &exchange.handoff {
                    telemetry::record_handoff(reason_name(created.details.reason));
                    info!(conversation_id, handoff_id = %created.id, queue = %created.details.queue, "handed off");
                }
            }
            Ok(Recorded::Replayed { response }) => return decode_response(&response),
            Err(StoreError::Conflict(why)) => {
                // A concurrent request for this conversation won the race
                // (same client turn id, or it opened the handoff first).
                if let Some(client_id) = exchange.client_turn_id.as_deref() {
                    if let Some(bytes) = self
                        .store
                        .replayed_response(&conversation_id, client_id)
                        .await?
                    {
                        return decode_response(&bytes);
                    }
                }
                return Err(ServiceError::Unavailable(format!(
                    "conflicting concurrent write, please retry: {why}"
                )));
            }
            Err(e) if must_record => return Err(e.into()),
            Err(e) => {
                telemetry::record_degraded_reply();
                warn!(conversation_id, error = %e, "reply not recorded: database unavailable");
            }
        }
        telemetry::record_reply_action(action_name(rendered.action));
        Ok(response)
    }

    async fn load_history(
        &self,
        conversation_id: &str,
    ) -> Result<(Vec<TurnRecord>, Option<HandoffRecord>), StoreError> {
        let turns = self
            .with_store(
                self.store
                    .conversation_turns(conversation_id, HISTORY_TURNS),
            )
            .await?;
        let handoff = self
            .with_store(self.store.open_handoff(conversation_id))
            .await?;
        Ok((turns, handoff))
    }

    fn render(
        &self,
        index: &KnowledgeIndex,
        decision: &Decision,
        u: &Understanding,
        hits: &[Hit],
    ) -> Rendered {
        let lang = u.lang;
        let shop = index.shop().name(lang).to_string();
        let cite = |article_id: &str| -> Option<pb::Source> {
            let article = index.article(article_id)?;
            let score = hits
                .iter()
                .find(|h| h.article_id == article_id)
                .map(|h| h.score)
                .unwrap_or(0.0);
            Some(pb::Source {
                article_id: article_id.to_string(),
                title: article.title(lang).to_string(),
                score,
                snippet: snippet(article.answer(lang)),
            })
        };
        let answer_of = |article_id: &str| {
            index
                .article(article_id)
                .map(|a| a.answer(lang).to_string())
                .unwrap_or_default()
        };
        match decision {
            Decision::Answer(Answer::Greeting) => {
                Rendered::new(pb::Action::Answer, phrasing::greeting(&shop, lang))
            }
            Decision::Answer(Answer::Farewell) => {
                Rendered::new(pb::Action::Answer, phrasing::farewell(&shop, lang))
            }
            Decision::Answer(Answer::Article { article_id }) => Rendered {
                action: pb::Action::Answer,
                text: answer_of(article_id),
                sources: cite(article_id).into_iter().collect(),
            },
            Decision::Answer(Answer::ArticleAskOrderNumber { article_id }) => Rendered {
                action: pb::Action::Answer,
                text: format!(
                    "{}\n{}",
                    answer_of(article_id),
                    phrasing::ask_order_number(lang)
                ),
                sources: cite(article_id).into_iter().collect(),
            },
            Decision::Answer(Answer::OrderStatus { order, article_id }) => Rendered {
                action: pb::Action::Answer,
                text: phrasing::order_status(order, lang),
                sources: article_id.as_deref().and_then(cite).into_iter().collect(),
            },
            Decision::Clarify { options } => {
                let labels: Vec<String> = options
                    .iter()
                    .map(|o| match o {
                        ClarifyOption::Article(id) => index
                            .article(id)
                            .map(|a| a.title(lang).to_string())
                            .unwrap_or_else(|| id.clone()),
                        ClarifyOption::Intent(name) => {
                            phrasing::topic_label(name, lang).to_string()
                        }
                    })
                    .collect();
                Rendered::new(pb::Action::Clarify, phrasing::clarify(&labels, lang))
            }
            Decision::Handoff {
                cause, priority, ..
            } => {
                let wait = WAIT_MINUTES[(*priority).clamp(1, 4) as usize - 1];
                Rendered::new(
                    pb::Action::Handoff,
                    phrasing::handoff_holding(*cause, wait, lang),
                )
            }
            Decision::WithAgent => Rendered::new(pb::Action::Handoff, phrasing::with_agent(lang)),
        }
    }

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
        let hits = self.search_hits(&index, text, &u, max);
        let angry = u.anger >= self.policy.anger_cut() || u.sentiment == SentimentLabel::Angry;
        let suggestions = drafts(&index, &hits, u.lang, angry, max)
            .into_iter()
            .map(|d| pb::SuggestedReply {
                text: d.text,
                article_id: d.article_id,
                score: d.score,
            })
            .collect();
        Ok(pb::SuggestRepliesResponse {
            suggestions,
            intent: u.intent_pb(),
            sentiment: Some(u.sentiment_pb()),
        })
    }

    /// `AutoReply/Feedback`: stores an agent's verdict on a draft.
    pub async fn feedback(&self, req: pb::FeedbackRequest) -> Result<(), ServiceError> {
        let conversation_id = require_id("conversation_id", &req.conversation_id)?;
        let turn_id = require_id("turn_id", &req.turn_id)?;
        let suggestion = require_text("suggestion_text", &req.suggestion_text)?;
        let verdict = req.verdict.trim().to_lowercase();
        let edited = match verdict.as_str() {
            "edited" => require_text("edited_text", &req.edited_text)?.to_string(),
            "used" | "rejected" => String::new(),
            _ => {
                return Err(ServiceError::invalid(
                    "verdict",
                    format!("must be used, edited or rejected, got {:?}", req.verdict),
                ))
            }
        };
        if !self.store.turn_exists(conversation_id, turn_id).await? {
            return Err(ServiceError::NotFound(format!(
                "turn {turn_id} in conversation {conversation_id}"
            )));
        }
        self.store
            .add_feedback(&FeedbackRecord {
                id: new_turn_id(),
                conversation_id: conversation_id.to_string(),
                turn_id: turn_id.to_string(),
                suggestion_text: mask(suggestion),
                verdict,
                edited_text: mask(&edited),
                created_at_ms: now_ms(),
            })
            .await?;
        Ok(())
    }

    /// Transcript for a handoff, read from the store.
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

struct Rendered {
    action: pb::Action,
    text: String,
    sources: Vec<pb::Source>,
}

impl Rendered {
    fn new(action: pb::Action, text: String) -> Self {
        Self {
            action,
            text,
            sources: vec![],
        }
    }
}

fn new_turn_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn decode_response(bytes: &[u8]) -> Result<pb::ReplyResponse, ServiceError> {
    prost::Message::decode(bytes)
        .map_err(|e| ServiceError::Internal(format!("stored response unreadable: {e}")))
}

fn snippet(answer: &str) -> String {
    let mut s: String = answer.chars().take(80).collect();
    if answer.chars().count() > 80 {
        s.push('…');
    }
    s
}

fn source_pb(hit: Hit) -> pb::Source {
    pb::Source {
        article_id: hit.article_id,
        title: hit.title,
        score: hit.score,
        snippet: hit.snippet,
    }
}

/// Reconciles retrieval with the intent: among close hits an article written
/// for the predicted intent is preferred, and when the classifier is sure of
/// the intent, its best-ranked article answers even if retrieval alone would
/// call it a close call or too weak (two independent signals agree).
fn reconcile_kb(
    index: &KnowledgeIndex,
    hits: &[Hit],
    intent: &str,
    intent_confidence: f32,
) -> KbMatch {
    const SURE_INTENT: f32 = 0.8;
    let Some(top) = hits.first() else {
        return KbMatch::None;
    };
    let serves_intent = |hit: &Hit| {
        index
            .article(&hit.article_id)
            .is_some_and(|a| a.intents().iter().any(|i| i == intent))
    };
    let mut ordered: Vec<Hit> = hits.to_vec();
    if !serves_intent(top) {
        if let Some(pos) = hits
            .iter()
            .position(|h| serves_intent(h) && h.score >= top.score * 0.8)
        {
            let preferred = ordered.remove(pos);
            ordered.insert(0, preferred);
        }
    }
    let sure = intent_confidence >= SURE_INTENT;
    let best_for_intent = || {
        hits.iter()
            .find(|h| serves_intent(h))
            .map(|h| KbMatch::Confident {
                article_id: h.article_id.clone(),
                score: h.score,
            })
    };
    match index.decide(&ordered) {
        Match::Confident(hit) => KbMatch::Confident {
            article_id: hit.article_id,
            score: hit.score,
        },
        Match::Ambiguous(a, b) => match best_for_intent() {
            Some(found) if sure => found,
            _ => KbMatch::Ambiguous {
                first: a.article_id,
                second: b.article_id,
            },
        },
        Match::NoMatch => best_for_intent().filter(|_| sure).unwrap_or(KbMatch::None),
    }
}

/// Draft replies for an agent: an apology first for an angry shopper, then
/// the best matching articles' answers.
fn drafts(
    index: &KnowledgeIndex,
    hits: &[Hit],
    lang: Language,
    angry: bool,
    max: usize,
) -> Vec<DraftReply> {
    let mut out = Vec::new();
    if angry {
        let text = match lang {
            Language::Zh => "非常抱歉让您久等了，给您带来不便真的很抱歉。我是人工客服，已经看到您之前的消息，现在马上为您核实处理，请您稍等一两分钟。",
            Language::En => "I'm so sorry for the trouble and the wait. I'm a member of the team and I've read your earlier messages, so there's no need to repeat anything. Let me check this for you right now.",
        };
        out.push(DraftReply {
            text: text.to_string(),
            article_id: String::new(),
            score: 1.0,
        });
    }
    for hit in hits {
        if out.len() >= max {
            break;
        }
        if let Some(article) = index.article(&hit.article_id) {
            out.push(DraftReply {
                text: article.answer(lang).to_string(),
                article_id: hit.article_id.clone(),
                score: hit.score,
            });
        }
    }
    out.truncate(max);
    out
}

fn order_facts(customer: Option<&pb::CustomerContext>) -> Vec<OrderFact> {
    customer
        .map(|c| {
            c.orders
                .iter()
                .map(|o| OrderFact {
                    order_id: o.order_id.clone(),
                    status: o.status.clone(),
                    carrier: o.carrier.clone(),
                    tracking_number: o.tracking_number.clone(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Topic-free intents that do not say what a conversation is about.
const NON_TOPIC_INTENTS: &[&str] = &[
    "greeting",
    "thanks_goodbye",
    "human_agent",
    "out_of_scope",
    "complaint",
];

fn summarise_history(turns: &[TurnRecord], handed_off: bool) -> History {
    let last_bot_clarified = turns
        .iter()
        .rev()
        .find(|t| t.role == "bot")
        .is_some_and(|t| t.action == pb::Action::Clarify as i32);
    History {
        handed_off,
        last_bot_clarified,
        earlier_anger: turns
            .iter()
            .filter(|t| t.role == "customer")
            .map(|t| t.anger)
            .collect(),
        last_topic_intent: turns
            .iter()
            .rev()
            .filter(|t| t.role == "customer")
            .map(|t| t.intent.clone())
            .find(|i| !NON_TOPIC_INTENTS.contains(&i.as_str())),
    }
}

fn action_name(action: pb::Action) -> &'static str {
    match action {
        pb::Action::Answer => "answer",
        pb::Action::Clarify => "clarify",
        pb::Action::Handoff => "handoff",
        pb::Action::Unspecified => "unspecified",
    }
}

fn reason_name(reason: i32) -> &'static str {
    match reason {
        x if x == HandoffCause::CustomerRequest as i32 => "customer_request",
        x if x == HandoffCause::NegativeSentiment as i32 => "negative_sentiment",
        x if x == HandoffCause::LowConfidence as i32 => "low_confidence",
        x if x == HandoffCause::NeedsAgent as i32 => "needs_agent",
        _ => "unspecified",
    }
}

/// Contract form of a stored handoff with its transcript.
pub fn handoff_pb(record: &HandoffRecord, transcript: &[TurnRecord]) -> pb::Handoff {
    let status = match record.state {
        HandoffState::Waiting => pb::HandoffStatus::Waiting,
        HandoffState::Claimed => pb::HandoffStatus::Claimed,
        HandoffState::Resolved => pb::HandoffStatus::Resolved,
    };
    pb::Handoff {
        handoff_id: record.id.clone(),
        conversation_id: record.conversation_id.clone(),
        reason: record.details.reason,
        status: status as i32,
        queue: record.details.queue.clone(),
        priority: record.details.priority,
        summary: record.details.summary.clone(),
        transcript: transcript
            .iter()
            .map(|t| pb::Turn {
                role: t.role.clone(),
                text: t.text.clone(),
                intent: t.intent.clone(),
                sentiment: Some(pb::Sentiment {
                    label: t.sentiment,
                    score: t.anger,
                }),
                at: rfc3339(t.at_ms),
            })
            .collect(),
        kb_articles_tried: record.details.kb_articles_tried.clone(),
        suggested_replies: record
            .details
            .suggested_replies
            .iter()
            .map(|d| pb::SuggestedReply {
                text: d.text.clone(),
                article_id: d.article_id.clone(),
                score: d.score,
            })
            .collect(),
        entities: record.details.entities.clone().into_iter().collect(),
        created_at: rfc3339(record.created_at_ms),
        claimed_by: record.claimed_by.clone(),
        resolution: record.resolution.clone(),
    }
}

/// Unix milliseconds as an RFC 3339 UTC timestamp.
pub fn rfc3339(ms: i64) -> String {
    let (year, month, day, hour, minute, second) =
        xiaoer_evals::report::civil_from_unix(ms.max(0) as u64 / 1000);
    format!(
        "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{:03}Z",
        ms.max(0) % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_000_000_123), "2026-11-18T11:06:40.123Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    fn turn(role: &str, intent: &str, action: pb::Action, anger: f32) -> TurnRecord {
        TurnRecord {
            id: "t".into(),
            role: role.into(),
            text: String::new(),
            intent: intent.into(),
            sentiment: 0,
            anger,
            action: action as i32,
            articles: vec![],
            at_ms: 0,
        }
    }

    #[test]
    fn history_reads_clarify_streak_anger_and_topic() {
        let turns = vec![
            turn("customer", "refund_status", pb::Action::Unspecified, 0.1),
            turn("bot", "refund_status", pb::Action::Answer, 0.0),
            turn("customer", "out_of_scope", pb::Action::Unspecified, 0.2),
            turn("bot", "out_of_scope", pb::Action::Clarify, 0.0),
        ];
        let h = summarise_history(&turns, false);
        assert!(h.last_bot_clarified);
        assert_eq!(h.earlier_anger, vec![0.1, 0.2]);
        assert_eq!(h.last_topic_intent.as_deref(), Some("refund_status"));
    }
}
