//! A scripted in-process `AutoReply` server for the runner and load tests:
//! replies by exact message text, records every conversation, and can be
//! slowed down to exercise time limits.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};
use xiaoer_proto::v1 as pb;
use xiaoer_proto::v1::auto_reply_server::{AutoReply, AutoReplyServer};

use xiaoer_domain::HandoffReason;
use xiaoer_service::conversions::handoff_reason_pb;

/// Text that makes the fake server fail the call.
pub(crate) const FAIL_TEXT: &str = "__fail__";
/// Text that makes the fake server refuse the call as overloaded.
pub(crate) const BUSY_TEXT: &str = "__busy__";

/// A canned reply.
#[derive(Clone)]
pub(crate) struct Reply {
    action: pb::Action,
    intent: &'static str,
    confidence: f32,
    source: Option<&'static str>,
    reason: Option<HandoffReason>,
}

impl Reply {
    pub(crate) fn answer(intent: &'static str, confidence: f32, source: &'static str) -> Self {
        Reply {
            action: pb::Action::Answer,
            intent,
            confidence,
            source: Some(source),
            reason: None,
        }
    }

    pub(crate) fn clarify(intent: &'static str, confidence: f32) -> Self {
        Reply {
            action: pb::Action::Clarify,
            intent,
            confidence,
            source: None,
            reason: None,
        }
    }

    pub(crate) fn handoff(intent: &'static str, confidence: f32, reason: HandoffReason) -> Self {
        Reply {
            action: pb::Action::Handoff,
            intent,
            confidence,
            source: None,
            reason: Some(reason),
        }
    }

    fn to_response(&self) -> pb::ReplyResponse {
        let reason = self
            .reason
            .map_or(pb::HandoffReason::Unspecified, handoff_reason_pb);
        pb::ReplyResponse {
            action: self.action as i32,
            text: "ok".into(),
            intent: Some(pb::IntentPrediction {
                name: self.intent.into(),
                confidence: self.confidence,
            }),
            sources: self
                .source
                .map(|id| pb::Source {
                    article_id: id.into(),
                    ..Default::default()
                })
                .into_iter()
                .collect(),
            handoff: self.reason.map(|_| pb::Handoff {
                reason: reason as i32,
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

#[derive(Default)]
struct State {
    calls: AtomicUsize,
    conversations: Mutex<Vec<(String, Vec<String>)>>,
}

struct FakeBot {
    script: Vec<(&'static str, Reply)>,
    delay: Duration,
    state: Arc<State>,
}

#[tonic::async_trait]
impl AutoReply for FakeBot {
    async fn reply(
        &self,
        request: Request<pb::ReplyRequest>,
    ) -> Result<Response<pb::ReplyResponse>, Status> {
        let request = request.into_inner();
        self.state.calls.fetch_add(1, Ordering::SeqCst);
        {
            let mut conversations = self
                .state
                .conversations
                .lock()
                .map_err(|_| Status::internal("poisoned"))?;
            match conversations
                .iter_mut()
                .find(|(id, _)| *id == request.conversation_id)
            {
                Some((_, texts)) => texts.push(request.text.clone()),
                None => conversations
                    .push((request.conversation_id.clone(), vec![request.text.clone()])),
            }
        }
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        if request.text == FAIL_TEXT {
            return Err(Status::internal("scripted failure"));
        }
        if request.text == BUSY_TEXT {
            return Err(Status::resource_exhausted("scripted overload"));
        }
        let reply = self
            .script
            .iter()
            .find(|(text, _)| *text == request.text)
            .map(|(_, reply)| reply.clone())
            .unwrap_or_else(|| Reply::answer("greeting", 0.5, "greeting-none"));
        let mut response = reply.to_response();
        if let Some(handoff) = &mut response.handoff {
            // One handoff per conversation, named after it, as the real server does.
            handoff.handoff_id = format!("handoff-{}", request.conversation_id);
        }
        Ok(Response::new(response))
    }

    async fn suggest_replies(
        &self,
        _: Request<pb::SuggestRepliesRequest>,
    ) -> Result<Response<pb::SuggestRepliesResponse>, Status> {
        Err(Status::unimplemented("not scripted"))
    }

    async fn classify(
        &self,
        _: Request<pb::ClassifyRequest>,
    ) -> Result<Response<pb::ClassifyResponse>, Status> {
        Err(Status::unimplemented("not scripted"))
    }

    async fn feedback(
        &self,
        _: Request<pb::FeedbackRequest>,
    ) -> Result<Response<pb::FeedbackResponse>, Status> {
        Ok(Response::new(pb::FeedbackResponse {}))
    }

    async fn rate_reply(
        &self,
        _: Request<pb::RateReplyRequest>,
    ) -> Result<Response<pb::RateReplyResponse>, Status> {
        Err(Status::unimplemented("not scripted"))
    }

    type WatchConversationStream = xiaoer_service::grpc::StatusStream<pb::Turn>;

    async fn watch_conversation(
        &self,
        _: Request<pb::WatchConversationRequest>,
    ) -> Result<Response<Self::WatchConversationStream>, Status> {
        Err(Status::unimplemented("not scripted"))
    }
}

/// A running fake server; stops when dropped.
pub(crate) struct FakeServer {
    pub(crate) url: String,
    state: Arc<State>,
    _stop: oneshot::Sender<()>,
}

impl FakeServer {
    /// Conversations in first-seen order, with their texts in arrival order.
    pub(crate) fn conversations(&self) -> Vec<(String, Vec<String>)> {
        self.state
            .conversations
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default()
    }

    /// `Reply` calls received.
    pub(crate) fn calls(&self) -> usize {
        self.state.calls.load(Ordering::SeqCst)
    }
}

pub(crate) async fn spawn(script: Vec<(&'static str, Reply)>) -> FakeServer {
    spawn_with_delay(script, Duration::ZERO).await
}

pub(crate) async fn spawn_with_delay(
    script: Vec<(&'static str, Reply)>,
    delay: Duration,
) -> FakeServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind an ephemeral port");
    let addr = listener.local_addr().expect("local addr");
    let state = Arc::new(State::default());
    let bot = FakeBot {
        script,
        delay,
        state: Arc::clone(&state),
    };
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(AutoReplyServer::new(bot))
            .serve_with_incoming_shutdown(
                TcpIncoming::from(listener).with_nodelay(Some(true)),
                async {
                    let _ = stopped.await;
                },
            ),
    );
    FakeServer {
        url: format!("http://{addr}"),
        state,
        _stop: stop,
    }
}
