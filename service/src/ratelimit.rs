//! Per-conversation rate limit: a token bucket per `conversation_id`, so one
//! flooding client (a script, a stuck retry loop) is refused quickly while
//! every other conversation keeps its latency.
//!
//! The limiter is pure: the caller passes the current [`Instant`], so tests
//! drive it with a fake clock. Memory is bounded: past `max_tracked`
//! conversations the least recently seen one is forgotten — a forgotten
//! conversation starts again with a full bucket, which only ever errs on the
//! side of answering.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// Conversations tracked at once by default; at about 100 bytes each this
/// caps the limiter near 10 MB however many conversations a flood invents.
pub const DEFAULT_MAX_TRACKED: usize = 100_000;

/// How fast one conversation may send messages.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Messages allowed back to back before the rate applies.
    pub burst: u32,
    /// Sustained messages per minute once the burst is spent.
    pub per_minute: u32,
}

impl Default for RateLimit {
    /// A shopper typing fast sends a few messages in a row, not 30 a minute
    /// for long: burst 10, then 30 per minute.
    fn default() -> Self {
        Self {
            burst: 10,
            per_minute: 30,
        }
    }
}

impl RateLimit {
    /// Tokens added per second.
    fn per_second(&self) -> f64 {
        f64::from(self.per_minute) / 60.0
    }

    /// Refills a bucket holding `tokens` for `elapsed_secs`, then takes one
    /// message's token or says how long to wait (a refusal takes nothing).
    fn take(&self, tokens: &mut f64, elapsed_secs: f64) -> Result<(), RateLimited> {
        let rate = self.per_second();
        *tokens = (*tokens + elapsed_secs * rate).min(f64::from(self.burst));
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            return Ok(());
        }
        let wait = if rate > 0.0 {
            Duration::from_secs_f64((1.0 - *tokens) / rate)
        } else {
            Duration::MAX
        };
        Err(RateLimited {
            retry_after: wait,
            burst: self.burst,
            per_minute: self.per_minute,
        })
    }

    /// The same bucket replayed over a conversation's stored messages (unix
    /// ms, oldest first), whichever replica accepted them: the limit that
    /// holds across replicas. The bucket starts full at the first stored
    /// message, and a history cut short only shows fewer messages, so this
    /// errs on the side of answering; two replicas deciding at the same
    /// instant may both accept (at most one extra message per replica).
    pub fn check_history(&self, accepted_ms: &[i64], now_ms: i64) -> Result<(), RateLimited> {
        let Some(&first) = accepted_ms.first() else {
            return Ok(());
        };
        let mut tokens = f64::from(self.burst);
        let mut last = first;
        let secs = |from: i64, to: i64| (to - from).max(0) as f64 / 1000.0;
        for &at in accepted_ms {
            // Stored means accepted, even when a race let it past an empty bucket.
            let _ = self.take(&mut tokens, secs(last, at));
            last = last.max(at);
        }
        self.take(&mut tokens, secs(last, now_ms))
    }
}

/// A message refused because its conversation is over its rate.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "conversation is sending messages too fast (limit: {per_minute} per minute, bursts of {burst}); retry in {:.1} s",
    retry_after.as_secs_f64()
)]
pub struct RateLimited {
    /// When the next message would be accepted.
    pub retry_after: Duration,
    pub burst: u32,
    pub per_minute: u32,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last_seen: Instant,
    /// Key of this bucket in the recency index.
    order: (Instant, u64),
}

/// Token buckets for the most recently seen conversations.
#[derive(Debug)]
pub struct ConversationLimiter {
    limit: RateLimit,
    max_tracked: usize,
    buckets: HashMap<String, Bucket>,
    /// (last seen, tie-breaker) → conversation, oldest first, for eviction.
    recency: BTreeSet<((Instant, u64), String)>,
    next_tie: u64,
}

impl ConversationLimiter {
    /// A limiter remembering at most `max_tracked` (≥ 1) conversations.
    pub fn new(limit: RateLimit, max_tracked: usize) -> Self {
        Self {
            limit,
            max_tracked: max_tracked.max(1),
            buckets: HashMap::new(),
            recency: BTreeSet::new(),
            next_tie: 0,
        }
    }

    /// Takes one message's token for `conversation_id` at `now`, or says how
    /// long to wait. A refused message takes nothing, so a client that backs
    /// off as told gets through.
    pub fn check(&mut self, conversation_id: &str, now: Instant) -> Result<(), RateLimited> {
        if !self.buckets.contains_key(conversation_id) {
            self.make_room(now);
            self.buckets.insert(
                conversation_id.to_string(),
                Bucket {
                    tokens: f64::from(self.limit.burst),
                    last_seen: now,
                    order: (now, 0),
                },
            );
        }
        let tie = self.next_tie;
        self.next_tie += 1;
        let bucket = self
            .buckets
            .get_mut(conversation_id)
            .expect("bucket inserted above");
        self.recency
            .remove(&(bucket.order, conversation_id.to_string()));
        let elapsed = now
            .saturating_duration_since(bucket.last_seen)
            .as_secs_f64();
        bucket.last_seen = now.max(bucket.last_seen);
        bucket.order = (bucket.last_seen, tie);
        self.recency
            .insert((bucket.order, conversation_id.to_string()));
        self.limit.take(&mut bucket.tokens, elapsed)
    }

    /// Frees a slot for a new conversation: first drops conversations idle
    /// long enough to have refilled (forgetting them changes nothing), then,
    /// if still full, the least recently seen.
    fn make_room(&mut self, now: Instant) {
        let capacity = f64::from(self.limit.burst);
        let rate = self.limit.per_second();
        while let Some((order, id)) = self.recency.first().cloned() {
            let refilled = self.buckets.get(&id).is_some_and(|b| {
                b.tokens + now.saturating_duration_since(b.last_seen).as_secs_f64() * rate
                    >= capacity
            });
            if !refilled && self.buckets.len() < self.max_tracked {
                break;
            }
            self.recency.remove(&(order, id.clone()));
            self.buckets.remove(&id);
        }
    }

    /// Conversations currently tracked.
    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(burst: u32, per_minute: u32, cap: usize) -> ConversationLimiter {
        ConversationLimiter::new(RateLimit { burst, per_minute }, cap)
    }

    #[test]
    fn stored_messages_from_every_replica_share_one_bucket() {
        let limit = RateLimit {
            burst: 3,
            per_minute: 6,
        };
        // No history: a new conversation is always answered.
        assert!(limit.check_history(&[], 0).is_ok());
        // Three messages a second apart used the burst: the fourth waits
        // for the refill of one token (10 s at 6 a minute), less the 2 s passed.
        let sent = [0, 1_000, 2_000];
        let refused = limit.check_history(&sent, 2_000).unwrap_err();
        assert!(
            (refused.retry_after.as_secs_f64() - 8.0).abs() < 0.01,
            "{refused:?}"
        );
        assert!(limit.check_history(&sent, 9_900).is_err());
        assert!(limit.check_history(&sent, 10_100).is_ok());
        // Spread out, the same three leave room.
        assert!(limit.check_history(&[0, 20_000, 40_000], 41_000).is_ok());
    }

    #[test]
    fn history_replay_agrees_with_the_live_bucket() {
        let limit = RateLimit {
            burst: 4,
            per_minute: 12,
        };
        let t0 = Instant::now();
        let mut live = ConversationLimiter::new(limit, 10);
        let mut accepted = Vec::new();
        // Irregular gaps: bursts, pauses, and refusals on the way.
        let mut at = 0i64;
        for gap in [
            0, 100, 100, 100, 100, 900, 4_000, 50, 50, 7_000, 300, 20_000, 10, 10,
        ] {
            at += gap;
            let now = t0 + Duration::from_millis(at as u64);
            let from_history = limit.check_history(&accepted, at).is_ok();
            assert_eq!(live.check("c", now).is_ok(), from_history, "at {at} ms");
            if from_history {
                accepted.push(at);
            }
        }
        assert!(accepted.len() < 14, "some were refused");
    }

    #[test]
    fn burst_then_refusal_with_retry_time() {
        let t0 = Instant::now();
        let mut l = limiter(10, 30, 100);
        for i in 0..10 {
            assert!(l.check("c", t0).is_ok(), "message {i} of the burst");
        }
        let refused = l.check("c", t0).unwrap_err();
        // 30 per minute = one token every 2 s.
        assert_eq!(refused.retry_after, Duration::from_secs(2));
        assert!(refused.to_string().contains("30 per minute"), "{refused}");
        assert!(refused.to_string().contains("retry in 2.0 s"), "{refused}");
    }

    #[test]
    fn tokens_refill_at_the_rate_and_never_past_the_burst() {
        let t0 = Instant::now();
        let mut l = limiter(3, 60, 100);
        for _ in 0..3 {
            l.check("c", t0).unwrap();
        }
        assert!(l.check("c", t0 + Duration::from_millis(999)).is_err());
        assert!(l.check("c", t0 + Duration::from_millis(1000)).is_ok());
        assert!(l.check("c", t0 + Duration::from_millis(1000)).is_err());
        // An hour idle refills to the burst, not to 3,600.
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..3 {
            l.check("c", later).unwrap();
        }
        assert!(l.check("c", later).is_err());
    }

    #[test]
    fn refused_messages_cost_nothing() {
        let t0 = Instant::now();
        let mut l = limiter(1, 60, 100);
        l.check("c", t0).unwrap();
        for ms in [100, 200, 500, 900] {
            assert!(l.check("c", t0 + Duration::from_millis(ms)).is_err());
        }
        assert!(l.check("c", t0 + Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn conversations_do_not_share_buckets() {
        let t0 = Instant::now();
        let mut l = limiter(2, 30, 100);
        l.check("flood", t0).unwrap();
        l.check("flood", t0).unwrap();
        assert!(l.check("flood", t0).is_err());
        assert!(l.check("calm", t0).is_ok());
    }

    #[test]
    fn a_clock_going_backwards_grants_nothing() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut l = limiter(1, 60, 100);
        l.check("c", t0).unwrap();
        assert!(l.check("c", t0 - Duration::from_secs(5)).is_err());
        assert!(l.check("c", t0 + Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn zero_rate_refuses_after_the_burst_for_good() {
        let t0 = Instant::now();
        let mut l = limiter(1, 0, 100);
        l.check("c", t0).unwrap();
        let refused = l.check("c", t0 + Duration::from_secs(86_400)).unwrap_err();
        assert_eq!(refused.retry_after, Duration::MAX);
    }

    #[test]
    fn memory_is_bounded_and_the_least_recent_goes_first() {
        let t0 = Instant::now();
        let mut l = limiter(2, 1, 3);
        for (i, id) in ["a", "b", "c"].iter().enumerate() {
            l.check(id, t0 + Duration::from_millis(i as u64)).unwrap();
            l.check(id, t0 + Duration::from_millis(i as u64)).unwrap();
        }
        // "a" is seen again, so "b" is now the least recent.
        assert!(l.check("a", t0 + Duration::from_millis(5)).is_err());
        l.check("d", t0 + Duration::from_millis(6)).unwrap();
        assert_eq!(l.tracked(), 3);
        // "a" and "c" were kept with their empty buckets; "b" was forgotten
        // and starts over with a full one (pushing out "d", now least recent).
        assert!(l.check("a", t0 + Duration::from_millis(7)).is_err());
        assert!(l.check("c", t0 + Duration::from_millis(8)).is_err());
        assert!(l.check("b", t0 + Duration::from_millis(9)).is_ok());
        assert_eq!(l.tracked(), 3);
        for i in 0..1000 {
            let _ = l.check(&format!("flood-{i}"), t0 + Duration::from_millis(10));
        }
        assert_eq!(l.tracked(), 3, "a flood of new ids never grows the map");
    }

    #[test]
    fn idle_refilled_conversations_are_dropped_before_the_cap() {
        let t0 = Instant::now();
        let mut l = limiter(2, 60, 100);
        l.check("old", t0).unwrap();
        l.check("busy", t0 + Duration::from_secs(9)).unwrap();
        l.check("busy", t0 + Duration::from_secs(9)).unwrap();
        // At t0+10 s "old" has refilled (2 s suffice) and is forgotten;
        // "busy" refilled only one token and is kept.
        l.check("new", t0 + Duration::from_secs(10)).unwrap();
        assert_eq!(l.tracked(), 2);
        l.check("busy", t0 + Duration::from_secs(10)).unwrap();
        assert!(l.check("busy", t0 + Duration::from_secs(10)).is_err());
    }
}
