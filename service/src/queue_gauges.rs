//! Live helpdesk numbers for Prometheus: per queue, how many handoffs wait,
//! how long the oldest has waited and how many are past their due time,
//! read from the database every few seconds. Every replica reads the same
//! shared tables, so dashboards take the maximum across replicas.

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinHandle;
use tracing::debug;
use xiaoer_domain::Queue;

use crate::clock::now_ms;
use crate::periodic::Ticks;
use crate::store::Store;
use crate::telemetry;

/// How often the queue gauges are refreshed: one grouped query.
pub const REFRESH: Duration = Duration::from_secs(10);

/// Refreshes the gauges every `every` until `stop` resolves; a queue with
/// nothing waiting reports zeros, and a failed read keeps the last values.
pub fn spawn(
    store: Store,
    every: Duration,
    stop: impl Future<Output = ()> + Send + 'static,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = Ticks::new(every, stop);
        while ticks.next().await {
            let now = now_ms();
            match store.queue_stats(now).await {
                Ok(stats) => {
                    for queue in Queue::ALL {
                        let name = queue.as_str();
                        match stats.iter().find(|s| s.queue == name) {
                            Some(s) => telemetry::record_queue(
                                name,
                                s.waiting,
                                (now - s.oldest_created_ms).max(0) as f64 / 1000.0,
                                s.overdue,
                            ),
                            None => telemetry::record_queue(name, 0, 0.0, 0),
                        }
                    }
                }
                Err(e) => debug!(error = %e, "queue gauges not refreshed"),
            }
        }
    })
}
