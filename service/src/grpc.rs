//! gRPC handlers: translate between the contract and the [`Responder`].
//!
//! Each handler runs through [`serve`], which opens a span with the RPC and
//! conversation id, times the call for metrics and maps the error to a status.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::{Stream, StreamExt};

use tonic::{Request, Response, Status};
use tracing::Instrument;
use xiaoer_proto::v1 as pb;
use xiaoer_proto::v1::auto_reply_server::AutoReply;
use xiaoer_proto::v1::handoffs_server::Handoffs;
use xiaoer_proto::v1::knowledge_base_server::KnowledgeBase;

use crate::auth::Caller;
use crate::conversions::handoff_state_filter;
use crate::error::{bounded, require_id, ServiceError};
use crate::reply::agent::{check_acting_agent, parse_queue, Watch};
use crate::reply::Responder;
use crate::store::{page_token, parse_page_token, HandoffQuery};
use crate::telemetry::RpcTimer;

/// Runs one RPC body inside a span, with metrics and the one error mapping.
async fn serve<T, F>(
    responder: &Responder,
    rpc: &'static str,
    conversation_id: &str,
    body: F,
) -> Result<Response<T>, Status>
where
    F: Future<Output = Result<T, ServiceError>>,
{
    // The request id is on the enclosing `call` span (see `request_id`).
    let span = tracing::info_span!("rpc", rpc, conversation_id);
    let timer = RpcTimer::start(rpc);
    let result = match responder.admit() {
        Ok(_permit) => body.instrument(span.clone()).await,
        Err(refused) => Err(refused),
    };
    let outcome = result.map(Response::new).map_err(Status::from);
    let code = outcome
        .as_ref()
        .map(|_| tonic::Code::Ok)
        .unwrap_or_else(|s| s.code());
    span.in_scope(|| match &outcome {
        Ok(_) => tracing::debug!("ok"),
        Err(status) => {
            // Masked: a refusal may quote what the caller sent.
            let message = xiaoer_privacy::mask(status.message());
            tracing::info!(code = ?status.code(), %message, "request failed")
        }
    });
    timer.finish(code);
    outcome
}

/// Opens a server stream through [`serve`] (admission, span, metrics and the
/// error mapping apply to the opening call; the open stream holds no
/// admission permit, so long-lived watchers never starve unary calls) and
/// maps the errors of its items the same way.
async fn serve_stream<T, F>(
    responder: &Responder,
    rpc: &'static str,
    conversation_id: &str,
    open: F,
) -> Result<Response<StatusStream<T>>, Status>
where
    T: Send + 'static,
    F: Future<Output = Result<Watch<T>, ServiceError>>,
{
    let opened = serve(responder, rpc, conversation_id, open).await?;
    let items = opened.into_inner().map(|item| item.map_err(Status::from));
    Ok(Response::new(Box::pin(items)))
}

/// A server stream as tonic sends it.
pub type StatusStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The caller's token identity, when access control is on.
fn caller<T>(request: &Request<T>) -> Option<Caller> {
    request.extensions().get::<Caller>().cloned()
}

/// `xiaoer.v1.AutoReply`.
#[derive(Clone)]
pub struct AutoReplyService(pub Arc<Responder>);

#[tonic::async_trait]
impl AutoReply for AutoReplyService {
    async fn reply(
        &self,
        request: Request<pb::ReplyRequest>,
    ) -> Result<Response<pb::ReplyResponse>, Status> {
        let req = request.into_inner();
        let conversation_id = req.conversation_id.clone();
        serve(
            &self.0,
            "AutoReply/Reply",
            &conversation_id,
            self.0.reply(req),
        )
        .await
    }

    async fn suggest_replies(
        &self,
        request: Request<pb::SuggestRepliesRequest>,
    ) -> Result<Response<pb::SuggestRepliesResponse>, Status> {
        let req = request.into_inner();
        let conversation_id = req.conversation_id.clone();
        serve(
            &self.0,
            "AutoReply/SuggestReplies",
            &conversation_id,
            self.0.suggest(req),
        )
        .await
    }

    async fn classify(
        &self,
        request: Request<pb::ClassifyRequest>,
    ) -> Result<Response<pb::ClassifyResponse>, Status> {
        serve(
            &self.0,
            "AutoReply/Classify",
            "",
            self.0.classify(request.into_inner()),
        )
        .await
    }

    async fn feedback(
        &self,
        request: Request<pb::FeedbackRequest>,
    ) -> Result<Response<pb::FeedbackResponse>, Status> {
        let req = request.into_inner();
        let conversation_id = req.conversation_id.clone();
        serve(&self.0, "AutoReply/Feedback", &conversation_id, async {
            self.0.feedback(req).await.map(|()| pb::FeedbackResponse {})
        })
        .await
    }

    async fn rate_reply(
        &self,
        request: Request<pb::RateReplyRequest>,
    ) -> Result<Response<pb::RateReplyResponse>, Status> {
        let req = request.into_inner();
        let conversation_id = req.conversation_id.clone();
        serve(&self.0, "AutoReply/RateReply", &conversation_id, async {
            self.0
                .rate_reply(req)
                .await
                .map(|()| pb::RateReplyResponse {})
        })
        .await
    }

    type WatchConversationStream = StatusStream<pb::Turn>;

    async fn watch_conversation(
        &self,
        request: Request<pb::WatchConversationRequest>,
    ) -> Result<Response<Self::WatchConversationStream>, Status> {
        let req = request.into_inner();
        let conversation_id = req.conversation_id.clone();
        serve_stream(
            &self.0,
            "AutoReply/WatchConversation",
            &conversation_id,
            self.0.watch_conversation(req),
        )
        .await
    }
}

/// `xiaoer.v1.Handoffs`.
#[derive(Clone)]
pub struct HandoffsService(pub Arc<Responder>);

impl HandoffsService {
    async fn list(
        &self,
        req: pb::ListHandoffsRequest,
    ) -> Result<pb::ListHandoffsResponse, ServiceError> {
        let state = handoff_state_filter(req.status)?;
        let queue = match req.queue.trim() {
            "" => None,
            name => Some(parse_queue(name)?),
        };
        let limit = bounded("page_size", req.page_size, 20, 100)? as u32;
        let after = match req.page_token.as_str() {
            "" => None,
            token => Some(parse_page_token(token).ok_or_else(|| {
                ServiceError::invalid("page_token", "is not a token this server issued")
            })?),
        };
        let store = self.0.store();
        // Fetch one extra row to know whether another page exists.
        let mut records = store
            .list_handoffs(&HandoffQuery {
                state,
                queue,
                limit: limit + 1,
                after,
            })
            .await?;
        let next_page_token = if records.len() > limit as usize {
            records.truncate(limit as usize);
            records.last().map(page_token).unwrap_or_default()
        } else {
            String::new()
        };
        let mut handoffs = Vec::with_capacity(records.len());
        for record in &records {
            handoffs.push(self.0.handoff_with_transcript(record).await?);
        }
        Ok(pb::ListHandoffsResponse {
            handoffs,
            next_page_token,
        })
    }
}

#[tonic::async_trait]
impl Handoffs for HandoffsService {
    async fn list_handoffs(
        &self,
        request: Request<pb::ListHandoffsRequest>,
    ) -> Result<Response<pb::ListHandoffsResponse>, Status> {
        serve(
            &self.0,
            "Handoffs/ListHandoffs",
            "",
            self.list(request.into_inner()),
        )
        .await
    }

    async fn get_handoff(
        &self,
        request: Request<pb::GetHandoffRequest>,
    ) -> Result<Response<pb::Handoff>, Status> {
        let req = request.into_inner();
        serve(&self.0, "Handoffs/GetHandoff", "", async {
            let record = self
                .0
                .store()
                .handoff(require_id("handoff_id", &req.handoff_id)?)
                .await?;
            self.0.handoff_with_transcript(&record).await
        })
        .await
    }

    async fn claim_handoff(
        &self,
        request: Request<pb::ClaimHandoffRequest>,
    ) -> Result<Response<pb::Handoff>, Status> {
        let caller = caller(&request);
        let req = request.into_inner();
        serve(&self.0, "Handoffs/ClaimHandoff", "", async {
            let id = require_id("handoff_id", &req.handoff_id)?;
            let agent = require_id("agent_id", &req.agent_id)?;
            check_acting_agent(caller.as_ref(), agent)?;
            let record = self.0.store().claim_handoff(id, agent).await?;
            self.0.handoff_with_transcript(&record).await
        })
        .await
    }

    async fn resolve_handoff(
        &self,
        request: Request<pb::ResolveHandoffRequest>,
    ) -> Result<Response<pb::Handoff>, Status> {
        let req = request.into_inner();
        serve(&self.0, "Handoffs/ResolveHandoff", "", async {
            let id = require_id("handoff_id", &req.handoff_id)?;
            let resolution = crate::error::require_text("resolution", &req.resolution)?;
            let record = self
                .0
                .store()
                .resolve_handoff(id, &xiaoer_privacy::mask(resolution))
                .await?;
            self.0.handoff_with_transcript(&record).await
        })
        .await
    }

    type WatchHandoffsStream = StatusStream<pb::HandoffEvent>;

    async fn watch_handoffs(
        &self,
        request: Request<pb::WatchHandoffsRequest>,
    ) -> Result<Response<Self::WatchHandoffsStream>, Status> {
        serve_stream(
            &self.0,
            "Handoffs/WatchHandoffs",
            "",
            self.0.watch_handoffs(request.into_inner()),
        )
        .await
    }

    async fn post_agent_message(
        &self,
        request: Request<pb::PostAgentMessageRequest>,
    ) -> Result<Response<pb::Turn>, Status> {
        let caller = caller(&request);
        let req = request.into_inner();
        serve(
            &self.0,
            "Handoffs/PostAgentMessage",
            "",
            self.0.post_agent_message(req, caller.as_ref()),
        )
        .await
    }
}

/// `xiaoer.v1.KnowledgeBase`.
#[derive(Clone)]
pub struct KnowledgeBaseService(pub Arc<Responder>);

#[tonic::async_trait]
impl KnowledgeBase for KnowledgeBaseService {
    async fn search(
        &self,
        request: Request<pb::SearchRequest>,
    ) -> Result<Response<pb::SearchResponse>, Status> {
        serve(
            &self.0,
            "KnowledgeBase/Search",
            "",
            self.0.search(request.into_inner()),
        )
        .await
    }

    async fn reload(
        &self,
        _request: Request<pb::ReloadRequest>,
    ) -> Result<Response<pb::ReloadResponse>, Status> {
        serve(&self.0, "KnowledgeBase/Reload", "", self.0.reload()).await
    }
}
