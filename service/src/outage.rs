//! Remembers a database outage for a moment, so requests during it skip the
//! store at once instead of each waiting out the pool's acquire timeout.
//!
//! After a failure the gate stays shut for `retry_after`; then exactly one
//! request per `retry_after` is let through as a probe, and the first success
//! opens the gate again — so the service recovers without a restart and
//! without a stampede on a database that is still starting. The caller passes
//! the current [`Instant`], so tests drive it with a fake clock.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::store::{StoreError, StoreResult};

/// Whether the database is believed reachable.
#[derive(Debug)]
pub struct OutageGate {
    retry_after: Duration,
    /// `Some(t)`: down; the next probe may go at `t`.
    down: Mutex<Option<Instant>>,
}

impl OutageGate {
    /// A gate that, once shut, lets one probe through every `retry_after`.
    pub fn new(retry_after: Duration) -> Self {
        Self {
            retry_after,
            down: Mutex::new(None),
        }
    }

    /// Whether a store call should be attempted at `now`. While down, answers
    /// yes once per `retry_after` (the probe) and no otherwise.
    pub fn should_try(&self, now: Instant) -> bool {
        let mut down = self.down.lock().unwrap_or_else(|e| e.into_inner());
        match *down {
            None => true,
            Some(next_probe) if now < next_probe => false,
            Some(_) => {
                *down = Some(now + self.retry_after);
                true
            }
        }
    }

    /// Notes the outcome of a store call finished at `now`: an unavailable
    /// database shuts the gate, any answer from the database opens it.
    pub fn record<T>(&self, result: &StoreResult<T>, now: Instant) {
        let mut down = self.down.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Err(StoreError::Unavailable(why)) => {
                if down.is_none() {
                    warn!(error = %why, "database unavailable: answering from the knowledge base only, refusing what must be recorded");
                    crate::telemetry::record_database_up(false);
                }
                *down = Some(now + self.retry_after);
            }
            _ => {
                if down.take().is_some() {
                    info!("database reachable again");
                    crate::telemetry::record_database_up(true);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn down() -> StoreResult<()> {
        Err(StoreError::Unavailable("connection refused".into()))
    }

    #[test]
    fn up_until_a_failure_then_one_probe_per_interval() {
        let t0 = Instant::now();
        let gate = OutageGate::new(Duration::from_secs(1));
        assert!(gate.should_try(t0));
        gate.record(&down(), t0);
        assert!(!gate.should_try(t0));
        assert!(!gate.should_try(t0 + Duration::from_millis(999)));
        assert!(gate.should_try(t0 + Duration::from_secs(1)), "the probe");
        assert!(
            !gate.should_try(t0 + Duration::from_millis(1001)),
            "only one probe at a time"
        );
        gate.record(&down(), t0 + Duration::from_millis(1500));
        assert!(!gate.should_try(t0 + Duration::from_millis(2400)));
        assert!(gate.should_try(t0 + Duration::from_millis(2500)));
        gate.record(&Ok(()), t0 + Duration::from_millis(2510));
        assert!(gate.should_try(t0 + Duration::from_millis(2511)));
        assert!(gate.should_try(t0 + Duration::from_millis(2511)));
    }

    #[test]
    fn answers_from_the_database_are_not_outages() {
        let t0 = Instant::now();
        let gate = OutageGate::new(Duration::from_secs(1));
        for refusal in [
            StoreError::NotFound("handoff h".into()),
            StoreError::Conflict("already claimed".into()),
        ] {
            gate.record::<()>(&Err(refusal), t0);
            assert!(gate.should_try(t0));
            assert!(gate.should_try(t0), "not even a probe window");
        }
    }
}
