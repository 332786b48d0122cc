//! Retention: with `--retention-days N`, a background task deletes
//! conversations idle for more than N days — with their turns, feedback and
//! resolved handoffs — at startup and then every hour, so personal data is not
//! kept longer than the shop promised. Conversations with an open handoff are
//! kept until an agent resolves it. Every run leaves an audit entry.
//!
//! Every replica runs this task; they take turns through the database (an
//! advisory lock on PostgreSQL, and a run is skipped when another replica
//! purged within the interval), so the fleet purges about once an interval.

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::periodic::Ticks;
use crate::store::{Purge, Store, StoreResult};

/// How often the purge runs after the one at startup.
pub const PURGE_INTERVAL: Duration = Duration::from_secs(3600);

const DAY_MS: i64 = 86_400_000;

/// Deletes what is older than `days` at `now_ms` and audits the run, unless
/// another replica is purging right now.
pub async fn purge_once(store: &Store, days: u32, now_ms: i64) -> StoreResult<Purge> {
    store.purge_before(cutoff(days, now_ms), None).await
}

fn cutoff(days: u32, now_ms: i64) -> i64 {
    now_ms - i64::from(days) * DAY_MS
}

/// Purges now and then every `every` until `stop` resolves, skipping a tick
/// when another replica purged within the last nine tenths of `every`. A
/// purge in progress finishes first (it is one transaction either way); a
/// failed run (database down) is logged and retried at the next interval.
pub fn spawn(
    store: Store,
    days: u32,
    every: Duration,
    stop: impl Future<Output = ()> + Send + 'static,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = Ticks::new(every, stop);
        while ticks.next().await {
            let now = crate::clock::now_ms();
            let recently = now - i64::try_from(every.as_millis() * 9 / 10).unwrap_or(i64::MAX);
            match store.purge_before(cutoff(days, now), Some(recently)).await {
                Ok(Purge::Deleted(removed)) => {
                    info!(
                        removed,
                        days, "retention: deleted conversations idle past the limit"
                    )
                }
                Ok(Purge::Skipped) => {
                    info!("retention: another replica purged recently or is purging; skipped")
                }
                Err(e) => {
                    warn!(error = %e, "retention purge failed; retrying at the next interval")
                }
            }
        }
    })
}
