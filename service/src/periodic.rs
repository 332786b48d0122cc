//! The rhythm of the server's background work — retention, the event
//! poller, the queue gauges, knowledge-base reload requests: a tick now,
//! then one every interval, until the server stops.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::time::{Interval, MissedTickBehavior};

/// Ticks every `every` (the first at once) until `stop` resolves; work
/// that overruns delays the next tick rather than bunching ticks up.
pub struct Ticks {
    interval: Interval,
    stop: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl Ticks {
    /// Starts the rhythm.
    pub fn new(every: Duration, stop: impl Future<Output = ()> + Send + 'static) -> Ticks {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Ticks {
            interval,
            stop: Box::pin(stop),
        }
    }

    /// Waits for the next tick: `true` to do the work, `false` once stopped
    /// (a stop wins over a tick that is due at the same moment).
    pub async fn next(&mut self) -> bool {
        tokio::select! {
            biased;
            () = &mut self.stop => false,
            _ = self.interval.tick() => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ticks_until_stopped_and_a_stop_wins_over_a_due_tick() {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let mut ticks = Ticks::new(Duration::from_millis(5), async {
            let _ = stopped.await;
        });
        assert!(ticks.next().await, "the first tick is at once");
        assert!(ticks.next().await, "then one per interval");
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(stop);
        assert!(!ticks.next().await, "stopped, though a tick is overdue");
    }
}
