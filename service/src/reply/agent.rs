//! The human half: agents reply through xiaoer, and the helpdesk and the
//! storefront watch handoffs and conversations live (issue #22).

use std::pin::Pin;
use std::sync::Arc;

use futures_util::stream::{self, Stream};
use xiaoer_domain::{Intent, Queue, TurnRole};
use xiaoer_privacy::{mask, mask_keeping};
use xiaoer_proto::v1 as pb;

use super::{record, Responder};
use crate::auth::Caller;
use crate::clock::now_ms;
use crate::conversions::turn_pb;
use crate::error::{require_id, require_text, ServiceError};
use crate::events::{cursor, Feed};
use crate::store::{EventKind, FeedbackRecord, HandoffRecord, Recorded, StoreError, TurnRecord};

/// A server stream of contract messages, errors already mapped.
pub type Watch<T> = Pin<Box<dyn Stream<Item = Result<T, ServiceError>> + Send>>;

/// With access tokens, an agent acts only in their own name: `agent_id`
/// must be the calling token's name. Without tokens (loopback) anyone may.
pub fn check_acting_agent(caller: Option<&Caller>, agent_id: &str) -> Result<(), ServiceError> {
    match caller {
        Some(caller) if caller.name != agent_id => Err(ServiceError::PermissionDenied(format!(
            "agent_id {agent_id:?} is not the calling token's name {:?}: agents act only in their own name",
            caller.name
        ))),
        _ => Ok(()),
    }
}

/// The verdict an agent's sent text gives the draft it started from.
fn draft_verdict(suggestion: &str, sent: &str) -> &'static str {
    let squash = |s: &str| s.split_whitespace().collect::<String>();
    if squash(suggestion) == squash(sent) {
        "used"
    } else {
        "edited"
    }
}

/// Numbers the handoff package extracted (order and tracking numbers): they
/// stay readable in the agent's reply as in the shopper's messages.
fn known_numbers(handoff: &HandoffRecord) -> Vec<&str> {
    handoff
        .details
        .entities
        .values()
        .map(String::as_str)
        .collect()
}

impl Responder {
    /// `Handoffs/PostAgentMessage`: the claiming agent's reply, masked,
    /// stored as an agent turn, pushed to watchers; a draft it started
    /// from is recorded as feedback in the same transaction.
    pub async fn post_agent_message(
        &self,
        req: pb::PostAgentMessageRequest,
        caller: Option<&Caller>,
    ) -> Result<pb::Turn, ServiceError> {
        let handoff_id = require_id("handoff_id", &req.handoff_id)?;
        let agent_id = require_id("agent_id", &req.agent_id)?;
        check_acting_agent(caller, agent_id)?;
        let text = require_text("text", &req.text)?;
        let suggestion = match req.suggestion_text.trim() {
            "" => None,
            _ => Some(require_text("suggestion_text", &req.suggestion_text)?),
        };
        let client_id = match req.client_message_id.trim() {
            "" => None,
            id => Some(require_id("client_message_id", id)?),
        };
        let named_article = match req.article_id.trim() {
            "" => None,
            id => {
                let id = require_id("article_id", id)?;
                if self.kb.current().article(id).is_none() {
                    return Err(ServiceError::invalid(
                        "article_id",
                        format!("no article {id:?} in the knowledge base"),
                    ));
                }
                Some(id.to_string())
            }
        };
        let handoff = self.store.handoff(handoff_id).await?;
        let known = known_numbers(&handoff);
        // The article the agent names, else the one behind the draft they started from.
        let cited = named_article.or_else(|| {
            suggestion.and_then(|s| {
                handoff
                    .details
                    .suggested_replies
                    .iter()
                    .find(|d| d.text.trim() == s && !d.article_id.is_empty())
                    .map(|d| d.article_id.clone())
            })
        });
        let now = now_ms();
        let turn = TurnRecord {
            id: record::new_turn_id(),
            role: TurnRole::Agent,
            text: mask_keeping(text, &known),
            // An agent turn answers the conversation, not a classified
            // message: it is filed under the person the shopper reached.
            intent: Intent::HumanAgent,
            sentiment: 0,
            anger: 0.0,
            action: 0,
            articles: cited.into_iter().collect(),
            at_ms: now,
            agent_id: agent_id.to_string(),
        };
        let feedback = suggestion.map(|s| {
            let verdict = draft_verdict(s, text);
            FeedbackRecord {
                id: record::new_turn_id(),
                conversation_id: handoff.conversation_id.clone(),
                turn_id: turn.id.clone(),
                suggestion_text: mask(s),
                verdict: verdict.to_string(),
                edited_text: if verdict == "edited" {
                    turn.text.clone()
                } else {
                    String::new()
                },
                created_at_ms: now,
            }
        });
        let response = turn_pb(&turn);
        let stored = self
            .store
            .record_agent_turn(
                handoff_id,
                &turn,
                client_id,
                &prost::Message::encode_to_vec(&response),
                feedback.as_ref(),
            )
            .await?;
        match stored {
            Recorded::New => Ok(response),
            Recorded::Replayed { response } => prost::Message::decode(response.as_slice())
                .map_err(|e| ServiceError::Internal(format!("stored turn unreadable: {e}"))),
        }
    }

    /// `Handoffs/WatchHandoffs`: handoff events after the cursor, in the
    /// requested queues, each with the handoff as it stands.
    pub async fn watch_handoffs(
        self: &Arc<Self>,
        req: pb::WatchHandoffsRequest,
    ) -> Result<Watch<pb::HandoffEvent>, ServiceError> {
        let queues = req
            .queues
            .iter()
            .map(|name| parse_queue(name))
            .collect::<Result<Vec<Queue>, _>>()?;
        let feed = Feed::open(&self.events, &req.after_cursor).await?;
        let state = Some((feed, Arc::clone(self), queues));
        Ok(Box::pin(stream::unfold(state, |state| async move {
            let (mut feed, responder, queues) = state?;
            match responder.next_handoff_event(&mut feed, &queues).await {
                Ok(event) => Some((Ok(event), Some((feed, responder, queues)))),
                // The stream ends after reporting its error.
                Err(e) => Some((Err(e), None)),
            }
        })))
    }

    /// The next event a helpdesk watcher of `queues` should see.
    async fn next_handoff_event(
        &self,
        feed: &mut Feed,
        queues: &[Queue],
    ) -> Result<pb::HandoffEvent, ServiceError> {
        loop {
            let record = feed.next().await?;
            let event = &record.event;
            let wanted = event.kind.concerns_helpdesk()
                && (queues.is_empty() || event.queue.is_some_and(|q| queues.contains(&q)));
            if !wanted {
                continue;
            }
            let handoff = match self.store.handoff(&event.handoff_id).await {
                Ok(handoff) => handoff,
                // Forgotten since (right to be forgotten): nothing to show.
                Err(StoreError::NotFound(_)) => continue,
                Err(e) => return Err(e.into()),
            };
            return Ok(pb::HandoffEvent {
                kind: handoff_event_kind_pb(event.kind) as i32,
                handoff: Some(self.handoff_with_transcript(&handoff).await?),
                cursor: cursor(record.seq),
            });
        }
    }

    /// `AutoReply/WatchConversation`: the turns after `after_turn_id`, then
    /// each new one as it is recorded.
    pub async fn watch_conversation(
        self: &Arc<Self>,
        req: pb::WatchConversationRequest,
    ) -> Result<Watch<pb::Turn>, ServiceError> {
        let conversation_id = require_id("conversation_id", &req.conversation_id)?.to_string();
        // Open the live feed first so no turn recorded during the replay
        // read can fall between the two; duplicates are skipped by position.
        let feed = Feed::open(&self.events, "").await?;
        let after = match req.after_turn_id.trim() {
            "" => 0,
            id => {
                let id = require_id("after_turn_id", id)?;
                self.store.turn_position(&conversation_id, id).await?
            }
        };
        let replay = self.store.turns_after(&conversation_id, after).await?;
        let watcher = ConversationWatch {
            responder: Arc::clone(self),
            feed,
            conversation_id,
            delivered: after,
            replay: replay.into(),
        };
        Ok(Box::pin(stream::unfold(
            Some(watcher),
            |state| async move {
                let mut watcher = state?;
                match watcher.next().await {
                    Ok(turn) => Some((Ok(turn), Some(watcher))),
                    Err(e) => Some((Err(e), None)),
                }
            },
        )))
    }
}

/// One storefront watcher of one conversation.
struct ConversationWatch {
    responder: Arc<Responder>,
    feed: Feed,
    conversation_id: String,
    /// Position (in the conversation) of the last turn delivered.
    delivered: i64,
    replay: std::collections::VecDeque<(i64, TurnRecord)>,
}

impl ConversationWatch {
    async fn next(&mut self) -> Result<pb::Turn, ServiceError> {
        if let Some((position, turn)) = self.replay.pop_front() {
            self.delivered = position;
            return Ok(turn_pb(&turn));
        }
        loop {
            let record = self.feed.next().await?;
            let event = record.event;
            let Some((turn_id, position)) = event.turn else {
                continue;
            };
            if event.conversation_id != self.conversation_id || position <= self.delivered {
                continue;
            }
            match self.responder.store.turn(&turn_id).await {
                Ok(turn) => {
                    self.delivered = position;
                    return Ok(turn_pb(&turn));
                }
                Err(StoreError::NotFound(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// A queue name from a request, with the valid names in the error.
pub fn parse_queue(name: &str) -> Result<Queue, ServiceError> {
    name.trim().parse::<Queue>().map_err(|_| {
        let expected: Vec<&str> = Queue::ALL.iter().map(|q| q.as_str()).collect();
        ServiceError::invalid(
            "queue",
            format!(
                "unknown queue {name:?}; expected one of {}",
                expected.join(", ")
            ),
        )
    })
}

/// The contract's event kind for a helpdesk event.
fn handoff_event_kind_pb(kind: EventKind) -> pb::HandoffEventKind {
    match kind {
        EventKind::HandoffCreated => pb::HandoffEventKind::Created,
        EventKind::CustomerMessage => pb::HandoffEventKind::CustomerMessage,
        EventKind::Claimed => pb::HandoffEventKind::Claimed,
        EventKind::Resolved => pb::HandoffEventKind::Resolved,
        EventKind::AgentMessage => pb::HandoffEventKind::AgentMessage,
        EventKind::Turn => pb::HandoffEventKind::Unspecified,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    #[test]
    fn agents_act_only_in_their_own_name() {
        let alice = Caller {
            name: "alice".into(),
            role: Role::Helpdesk,
        };
        assert!(check_acting_agent(Some(&alice), "alice").is_ok());
        assert!(matches!(
            check_acting_agent(Some(&alice), "bob"),
            Err(ServiceError::PermissionDenied(_))
        ));
        assert!(
            check_acting_agent(None, "anyone").is_ok(),
            "no tokens: loopback"
        );
    }

    #[test]
    fn a_draft_sent_as_is_counts_as_used_whitespace_aside() {
        assert_eq!(draft_verdict("您好，非常抱歉", " 您好，非常抱歉 "), "used");
        assert_eq!(
            draft_verdict("您好，非常抱歉", "您好，非常抱歉，已为您补发"),
            "edited"
        );
    }
}
