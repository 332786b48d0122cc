//! Retention: with `--retention-days N`, a background task deletes
//! conversations idle for more than N days — with their turns, feedback and
//! resolved handoffs — at startup and then every hour, so personal data is not
//! kept longer than the shop promised. Conversations with an open handoff are
//! kept until an agent resolves it. Every run leaves an audit entry.

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::clock::rfc3339;
use crate::store::{Store, StoreResult};

/// How often the purge runs after the one at startup.
pub const PURGE_INTERVAL: Duration = Duration::from_secs(3600);

const DAY_MS: i64 = 86_400_000;

/// Deletes what is older than `days` at `now_ms`, audits the run and returns
/// how many conversations went.
pub async fn purge_once(store: &Store, days: u32, now_ms: i64) -> StoreResult<u64> {
    let cutoff = now_ms - i64::from(days) * DAY_MS;
    let removed = store.purge_before(cutoff).await?;
    store
        .audit(
            "retention",
            "purge",
            &format!("conversations idle since before {}", rfc3339(cutoff)),
            &format!("{removed} deleted"),
        )
        .await?;
    Ok(removed)
}

/// Runs [`purge_once`] now and then every `every` until `stop` resolves. A
/// purge in progress finishes first (it is one transaction either way); a
/// failed run (database down) is logged and retried at the next interval.
pub fn spawn(
    store: Store,
    days: u32,
    every: Duration,
    stop: impl Future<Output = ()> + Send + 'static,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                biased;
                () = &mut stop => break,
                _ = ticks.tick() => {
                    match purge_once(&store, days, crate::clock::now_ms()).await {
                        Ok(removed) => info!(removed, days, "retention: deleted conversations idle past the limit"),
                        Err(e) => warn!(error = %e, "retention purge failed; retrying at the next interval"),
                    }
                }
            }
        }
    })
}
