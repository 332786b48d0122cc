//! The console's JSON API and event stream. Every handler goes through the
//! same responder and store calls as the gRPC contract, in the signed-in
//! agent's name; JSON shapes are documented in docs/helpdesk.md.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::stream::{self, Stream};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use xiaoer_models::{detect_language, Language};
use xiaoer_proto::v1 as pb;

use super::{Console, ConsoleError};
use crate::error::{require_id, require_text, ServiceError};
use crate::events::{cursor, Feed};
use crate::reply::Responder;
use crate::store::{EventKind, HandoffQuery, HandoffState, StoreError};

type ApiResult = Result<Response, ConsoleError>;

/// Open handoffs shown at once; a queue longer than this is a staffing
/// problem, not a paging one.
const QUEUE_LIMIT: u32 = 500;

/// `GET /api/me`: who is signed in, and whether signing in needs a token.
pub(super) async fn me(State(console): State<Console>, headers: HeaderMap) -> ApiResult {
    let agent = console.agent(&headers)?;
    Ok(Json(json!({
        "name": agent.name,
        "role": agent.role.as_str(),
        "sign_in_required": !console.tokens.is_empty(),
    }))
    .into_response())
}

#[derive(Deserialize)]
pub(super) struct SignIn {
    #[serde(default)]
    token: String,
    #[serde(default)]
    agent_id: String,
}

/// `POST /api/session`: a helpdesk token (or, without tokens, a name)
/// becomes the session cookie.
pub(super) async fn sign_in(State(console): State<Console>, Json(form): Json<SignIn>) -> ApiResult {
    let value = if console.tokens.is_empty() {
        form.agent_id.trim().to_string()
    } else {
        form.token.trim().to_string()
    };
    let agent = console.identify(&value)?;
    Ok((
        [(header::SET_COOKIE, console.cookie(&value))],
        Json(json!({ "name": agent.name, "role": agent.role.as_str() })),
    )
        .into_response())
}

/// `POST /api/session/logout`.
pub(super) async fn sign_out(State(console): State<Console>) -> Response {
    ([(header::SET_COOKIE, console.cookie(""))], Json(json!({}))).into_response()
}

/// `GET /api/handoffs`: every waiting and claimed handoff.
pub(super) async fn list(State(console): State<Console>, headers: HeaderMap) -> ApiResult {
    console.agent(&headers)?;
    let responder = &console.responder;
    let mut handoffs = Vec::new();
    for state in [HandoffState::Waiting, HandoffState::Claimed] {
        let records = responder
            .store()
            .list_handoffs(&HandoffQuery {
                state: Some(state),
                queue: None,
                limit: QUEUE_LIMIT,
                after: None,
            })
            .await?;
        for record in &records {
            let handoff = responder.handoff_with_transcript(record).await?;
            handoffs.push(handoff_json(responder, &handoff));
        }
    }
    Ok(Json(json!({ "handoffs": handoffs })).into_response())
}

/// `GET /api/handoffs/{id}`.
pub(super) async fn one(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    console.agent(&headers)?;
    let handoff = load(&console.responder, &id).await?;
    Ok(Json(handoff_json(&console.responder, &handoff)).into_response())
}

/// `POST /api/handoffs/{id}/claim`, in the agent's own name.
pub(super) async fn claim(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let agent = console.agent(&headers)?;
    let id = require_id("handoff_id", &id)?;
    let record = console
        .responder
        .store()
        .claim_handoff(id, &agent.name)
        .await?;
    let handoff = console.responder.handoff_with_transcript(&record).await?;
    Ok(Json(handoff_json(&console.responder, &handoff)).into_response())
}

#[derive(Deserialize)]
pub(super) struct Message {
    text: String,
    #[serde(default)]
    suggestion_text: String,
    #[serde(default)]
    client_message_id: String,
    /// The article the reply relied on, if the agent names one.
    #[serde(default)]
    article_id: String,
}

/// `POST /api/handoffs/{id}/messages`: as `PostAgentMessage`.
pub(super) async fn send(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(message): Json<Message>,
) -> ApiResult {
    let agent = console.agent(&headers)?;
    let turn = console
        .responder
        .post_agent_message(
            pb::PostAgentMessageRequest {
                handoff_id: id,
                agent_id: agent.name.clone(),
                text: message.text,
                suggestion_text: message.suggestion_text,
                client_message_id: message.client_message_id,
                article_id: message.article_id,
            },
            Some(&agent),
        )
        .await?;
    Ok(Json(turn_json(&turn)).into_response())
}

#[derive(Deserialize)]
pub(super) struct Resolution {
    resolution: String,
}

/// `POST /api/handoffs/{id}/resolve` with the agent's note (masked).
pub(super) async fn resolve(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(form): Json<Resolution>,
) -> ApiResult {
    console.agent(&headers)?;
    let id = require_id("handoff_id", &id)?;
    let note = require_text("resolution", &form.resolution)?;
    let record = console
        .responder
        .store()
        .resolve_handoff(id, &xiaoer_privacy::mask(note))
        .await?;
    let handoff = console.responder.handoff_with_transcript(&record).await?;
    Ok(Json(handoff_json(&console.responder, &handoff)).into_response())
}

#[derive(Deserialize)]
pub(super) struct LangParam {
    #[serde(default)]
    lang: String,
}

/// `GET /api/articles/{id}?lang=zh|en`: the article an answer cited.
pub(super) async fn article(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(param): Query<LangParam>,
) -> ApiResult {
    console.agent(&headers)?;
    let lang = if param.lang == "en" {
        Language::En
    } else {
        Language::Zh
    };
    let index = console.responder.knowledge_base().current();
    let article = index
        .article(&id)
        .ok_or_else(|| ServiceError::NotFound(format!("article {id}")))?;
    Ok(Json(json!({
        "id": article.id(),
        "title": article.title(lang),
        "body": article.answer(lang),
    }))
    .into_response())
}

/// `GET /api/events`: the helpdesk's event stream as server-sent events,
/// resumed from the browser's `Last-Event-ID`. A cursor too old to resume
/// sends `resync` (reload the queue) and continues from now.
pub(super) async fn events(
    State(console): State<Console>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ConsoleError> {
    console.agent(&headers)?;
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let hub = console.responder.events();
    let (feed, resync) = match Feed::open(hub, last).await {
        Ok(feed) => (feed, false),
        Err(ServiceError::OutOfRange(_) | ServiceError::InvalidArgument { .. }) => {
            (Feed::open(hub, "").await?, true)
        }
        Err(e) => return Err(e.into()),
    };
    let first = resync.then(|| Ok(Event::default().event("resync").data("{}")));
    let responder = Arc::clone(&console.responder);
    let live = stream::unfold(Some((feed, responder)), |state| async move {
        let (mut feed, responder) = state?;
        match next_event(&mut feed, &responder).await {
            Ok(event) => Some((Ok(event), Some((feed, responder)))),
            // The browser reconnects with its Last-Event-ID.
            Err(_) => None,
        }
    });
    Ok(Sse::new(stream::iter(first).chain(live)).keep_alive(KeepAlive::default()))
}

/// The next helpdesk event as an SSE message.
async fn next_event(feed: &mut Feed, responder: &Responder) -> Result<Event, ServiceError> {
    loop {
        let record = feed.next().await?;
        if !record.event.kind.concerns_helpdesk() {
            continue;
        }
        let handoff = match load(responder, &record.event.handoff_id).await {
            Ok(handoff) => handoff,
            Err(ServiceError::NotFound(_)) => continue,
            Err(e) => return Err(e),
        };
        let data = json!({
            "kind": event_kind_name(record.event.kind),
            "handoff": handoff_json(responder, &handoff),
        });
        return Ok(Event::default()
            .event("handoff")
            .id(cursor(record.seq))
            .data(data.to_string()));
    }
}

async fn load(responder: &Responder, id: &str) -> Result<pb::Handoff, ServiceError> {
    let id = require_id("handoff_id", id)?;
    let record = responder.store().handoff(id).await.map_err(|e| match e {
        StoreError::NotFound(_) => ServiceError::NotFound(format!("handoff {id}")),
        other => other.into(),
    })?;
    responder.handoff_with_transcript(&record).await
}

fn event_kind_name(kind: EventKind) -> &'static str {
    match kind {
        EventKind::HandoffCreated => "created",
        EventKind::CustomerMessage => "customer_message",
        EventKind::Claimed => "claimed",
        EventKind::Resolved => "resolved",
        EventKind::AgentMessage => "agent_message",
        EventKind::Turn => "turn",
    }
}

/// The console's view of a handoff: the contract's fields with names for
/// enums, article titles, and the shopper's language.
fn handoff_json(responder: &Responder, h: &pb::Handoff) -> Value {
    let index = responder.knowledge_base().current();
    let language = h
        .transcript
        .iter()
        .rev()
        .find(|t| t.role == "customer")
        .map_or(Language::Zh, |t| detect_language(&t.text));
    let articles: Vec<Value> = h
        .kb_articles_tried
        .iter()
        .map(|id| {
            let title = index.article(id).map_or(id.as_str(), |a| a.title(language));
            json!({ "id": id, "title": title })
        })
        .collect();
    let enum_name = |name: Option<&str>, prefix: &str| {
        name.unwrap_or_default()
            .trim_start_matches(prefix)
            .to_lowercase()
    };
    json!({
        "handoff_id": h.handoff_id,
        "conversation_id": h.conversation_id,
        "reason": enum_name(pb::HandoffReason::try_from(h.reason).ok().map(|r| r.as_str_name()), "HANDOFF_REASON_"),
        "status": enum_name(pb::HandoffStatus::try_from(h.status).ok().map(|s| s.as_str_name()), "HANDOFF_STATUS_"),
        "queue": h.queue,
        "priority": h.priority,
        "summary": h.summary,
        "language": language.code(),
        "transcript": h.transcript.iter().map(turn_json).collect::<Vec<_>>(),
        "kb_articles_tried": articles,
        "suggested_replies": h.suggested_replies.iter().map(|s| json!({
            "text": s.text, "article_id": s.article_id, "score": s.score,
        })).collect::<Vec<_>>(),
        "entities": h.entities,
        "created_at": h.created_at,
        "due_at": h.due_at,
        "claimed_at": h.claimed_at,
        "resolved_at": h.resolved_at,
        "claimed_by": h.claimed_by,
        "resolution": h.resolution,
    })
}

fn turn_json(t: &pb::Turn) -> Value {
    let sentiment = t.sentiment.as_ref();
    let label = sentiment
        .and_then(|s| pb::SentimentLabel::try_from(s.label).ok())
        .map(|l| {
            l.as_str_name()
                .trim_start_matches("SENTIMENT_")
                .to_lowercase()
        })
        .unwrap_or_default();
    json!({
        "turn_id": t.turn_id,
        "role": t.role,
        "text": t.text,
        "intent": t.intent,
        "sentiment": { "label": label, "score": sentiment.map_or(0.0, |s| s.score) },
        "at": t.at,
        "agent_id": t.agent_id,
    })
}
