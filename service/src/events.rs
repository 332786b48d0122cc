//! Live events for `WatchHandoffs` and `WatchConversation`.
//!
//! One poller per server reads the shared event log (`store::events`) a few
//! times a second and broadcasts what is new to this server's watchers, so a
//! handoff created through another replica reaches a watcher here within
//! [`POLL_INTERVAL`], and a thousand watchers cost one query, not a thousand.
//! A [`Feed`] gives one watcher the events after its cursor in order: first
//! from the database (catch-up), then from the broadcast, going back to the
//! database whenever the broadcast lagged or skipped ahead. It holds no task:
//! when the client goes away its stream is dropped and nothing is left.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::clock::now_ms;
use crate::error::ServiceError;
use crate::periodic::Ticks;
use crate::store::{EventRecord, Store};

/// How often the poller reads the log: the latency budget of a cross-replica
/// event is 1 s.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// Events kept for resuming watchers; older cursors get OUT_OF_RANGE and
/// resync with ListHandoffs.
pub const EVENTS_KEPT: Duration = Duration::from_secs(7 * 24 * 3600);
/// How often the poller drops events older than [`EVENTS_KEPT`].
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Events read per query, by the poller and by a catching-up watcher.
const PAGE: u32 = 500;
/// Events buffered per watcher before it counts as lagging (it then catches
/// up from the database; nothing is lost).
const BROADCAST_CAPACITY: usize = 1024;
/// Prefix of the cursors this server issues; anything else is refused.
const CURSOR_PREFIX: &str = "ev-";

/// The shared side: the broadcast and the count of open watchers.
pub struct EventHub {
    store: Store,
    /// Longest life of one watch stream (see [`EventHub::new`]).
    stream_life: Duration,
    sender: broadcast::Sender<Arc<EventRecord>>,
    watchers: Arc<AtomicUsize>,
    /// True once the server drains: open watches end so shutdown can finish.
    closing: tokio::sync::watch::Sender<bool>,
}

impl EventHub {
    /// A hub over `store`; nothing is broadcast until [`EventHub::spawn_poller`].
    /// Each watch stream ends with UNAVAILABLE after `stream_life`, the
    /// connection-age grace: every stream then ends cleanly, resumable from
    /// its cursor, before the server closes its connection for age.
    pub fn new(store: Store, stream_life: Duration) -> Arc<Self> {
        let (sender, _) = broadcast::channel(BROADCAST_CAPACITY);
        Arc::new(Self {
            store,
            stream_life,
            sender,
            watchers: Arc::new(AtomicUsize::new(0)),
            closing: tokio::sync::watch::Sender::new(false),
        })
    }

    /// Ends every open watch (each gets UNAVAILABLE: reconnect with your
    /// last cursor) and refuses new ones: a watch never ends by itself, and
    /// a graceful shutdown waits for open streams.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Watchers currently connected to this server (for metrics and tests).
    pub fn watchers(&self) -> usize {
        self.watchers.load(Ordering::SeqCst)
    }

    /// Polls the log until `stop` resolves, broadcasting new events in order
    /// and pruning old ones hourly. A database outage is logged and retried.
    pub fn spawn_poller(
        self: &Arc<Self>,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> JoinHandle<()> {
        let hub = Arc::clone(self);
        tokio::spawn(async move {
            let mut seen: Option<i64> = None;
            let mut ticks = Ticks::new(POLL_INTERVAL, stop);
            let mut last_prune = tokio::time::Instant::now() - PRUNE_EVERY;
            while ticks.next().await {
                if let Err(e) = hub.poll_once(&mut seen).await {
                    warn!(error = %e, "event log unreadable; watchers wait for the next poll");
                }
                if last_prune.elapsed() >= PRUNE_EVERY {
                    last_prune = tokio::time::Instant::now();
                    let cutoff = now_ms() - EVENTS_KEPT.as_millis() as i64;
                    match hub.store.prune_events_before(cutoff).await {
                        Ok(gone) => debug!(gone, "old events pruned"),
                        Err(e) => warn!(error = %e, "cannot prune old events"),
                    }
                }
            }
        })
    }

    /// Broadcasts the events after `seen` (starting from the log's end the
    /// first time: earlier events are for catch-up reads, not broadcast).
    async fn poll_once(&self, seen: &mut Option<i64>) -> Result<(), crate::store::StoreError> {
        let mut after = match *seen {
            Some(after) => after,
            None => {
                let start = self.store.event_horizon().await?.last_seq;
                *seen = Some(start);
                return Ok(());
            }
        };
        loop {
            let page = self.store.events_after(after, PAGE).await?;
            let full = page.len() == PAGE as usize;
            for event in page {
                after = event.seq;
                // No receivers is fine: nobody is watching right now.
                let _ = self.sender.send(Arc::new(event));
            }
            *seen = Some(after);
            if !full {
                return Ok(());
            }
        }
    }
}

/// The cursor string for an event number.
pub fn cursor(seq: i64) -> String {
    format!("{CURSOR_PREFIX}{seq}")
}

/// Parses a cursor this server issued.
fn parse_cursor(text: &str) -> Result<i64, ServiceError> {
    text.strip_prefix(CURSOR_PREFIX)
        .and_then(|n| n.parse::<i64>().ok())
        .filter(|n| *n >= 0)
        .ok_or_else(|| ServiceError::invalid("after_cursor", "is not a cursor this server issued"))
}

fn shutting_down() -> ServiceError {
    ServiceError::Unavailable("server is shutting down; reconnect with your last cursor".into())
}

/// Counts a watcher for as long as it lives.
struct WatcherGuard(Arc<AtomicUsize>);

impl WatcherGuard {
    fn new(count: &Arc<AtomicUsize>) -> Self {
        let now = count.fetch_add(1, Ordering::SeqCst) + 1;
        metrics::gauge!("xiaoer_watchers").set(now as f64);
        Self(Arc::clone(count))
    }
}

impl Drop for WatcherGuard {
    fn drop(&mut self) {
        let now = self.0.fetch_sub(1, Ordering::SeqCst) - 1;
        metrics::gauge!("xiaoer_watchers").set(now as f64);
    }
}

/// One watcher's ordered view of the log after its cursor.
pub struct Feed {
    store: Store,
    receiver: broadcast::Receiver<Arc<EventRecord>>,
    /// Everything up to here was delivered (or belongs to the past).
    delivered: i64,
    /// Read from the database, not yet delivered.
    backlog: VecDeque<EventRecord>,
    /// False while the database may hold events the broadcast never showed us.
    caught_up: bool,
    /// Turns true when the server drains.
    closing: tokio::sync::watch::Receiver<bool>,
    /// When this stream ends so its client resumes on a fresh connection.
    ends_at: tokio::time::Instant,
    _guard: WatcherGuard,
}

impl Feed {
    /// Opens a feed after `after_cursor` (empty: from now on). A cursor
    /// older than the events kept is `OUT_OF_RANGE`; one this database
    /// never issued is `INVALID_ARGUMENT`.
    pub async fn open(hub: &EventHub, after_cursor: &str) -> Result<Feed, ServiceError> {
        let closing = hub.closing.subscribe();
        if *closing.borrow() {
            return Err(shutting_down());
        }
        // Subscribe before reading where the log stands, so nothing
        // committed in between can fall between the two.
        let receiver = hub.sender.subscribe();
        let horizon = hub.store.event_horizon().await?;
        let (delivered, caught_up) = match after_cursor.trim() {
            "" => (horizon.last_seq, true),
            text => {
                let after = parse_cursor(text)?;
                if after > horizon.last_seq {
                    return Err(ServiceError::invalid(
                        "after_cursor",
                        "is ahead of this server's event log (a cursor from another database?)",
                    ));
                }
                if after < horizon.pruned_through {
                    return Err(ServiceError::OutOfRange(format!(
                        "cursor {text} is older than the events kept ({} days): resync with ListHandoffs and watch from now on",
                        EVENTS_KEPT.as_secs() / 86_400
                    )));
                }
                (after, false)
            }
        };
        Ok(Feed {
            store: hub.store.clone(),
            receiver,
            delivered,
            backlog: VecDeque::new(),
            caught_up,
            closing,
            ends_at: tokio::time::Instant::now() + hub.stream_life,
            _guard: WatcherGuard::new(&hub.watchers),
        })
    }

    /// The next event after the last one returned, waiting for it.
    pub async fn next(&mut self) -> Result<EventRecord, ServiceError> {
        loop {
            if let Some(event) = self.backlog.pop_front() {
                self.delivered = event.seq;
                return Ok(event);
            }
            if !self.caught_up {
                let page = self.store.events_after(self.delivered, PAGE).await?;
                self.caught_up = page.len() < PAGE as usize;
                self.backlog.extend(page);
                continue;
            }
            let received = tokio::select! {
                received = self.receiver.recv() => received,
                _ = self.closing.wait_for(|closing| *closing) => return Err(shutting_down()),
                () = tokio::time::sleep_until(self.ends_at) => return Err(ServiceError::Unavailable(
                    "watch stream reached its maximum life; reconnect with your last cursor".into(),
                )),
            };
            match received {
                Ok(event) if event.seq <= self.delivered => {}
                Ok(event) if event.seq == self.delivered + 1 => {
                    self.delivered = event.seq;
                    return Ok((*event).clone());
                }
                Ok(event) => {
                    // Events between ours and this one exist in the log
                    // unless deleted (forget); read them rather than guess.
                    let missing = self.store.events_after(self.delivered, PAGE).await?;
                    let upto = missing.iter().take_while(|e| e.seq < event.seq).count();
                    let complete = upto < missing.len() || missing.len() < PAGE as usize;
                    self.backlog.extend(missing.into_iter().take(upto));
                    if complete {
                        self.backlog.push_back((*event).clone());
                    } else {
                        self.caught_up = false;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(skipped)) => {
                    debug!(skipped, "watcher lagged; catching up from the log");
                    self.caught_up = false;
                }
                Err(broadcast::error::RecvError::Closed) => return Err(shutting_down()),
            }
        }
    }
}
