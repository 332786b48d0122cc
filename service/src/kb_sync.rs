//! Knowledge-base reloads across replicas. `KnowledgeBase/Reload` sent
//! through a Kubernetes Service reaches one pod; that replica records the
//! request in the database, and every replica polls it and reloads its own
//! folder, so all of them serve the new articles within about one poll
//! interval plus one reload. (Folder edits, such as a ConfigMap update, are
//! also picked up by each replica's folder watch.)

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::periodic::Ticks;
use crate::reply::Responder;

/// How often each replica looks for a reload requested elsewhere: one tiny
/// primary-key read a second.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Follows reload requests until `stop` resolves. The replica that took the
/// request reloads again too, which costs one folder read: an unchanged
/// folder is not re-indexed.
pub fn spawn_follower(
    responder: Arc<Responder>,
    every: Duration,
    stop: impl Future<Output = ()> + Send + 'static,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut seen: Option<i64> = None;
        let mut ticks = Ticks::new(every, stop);
        while ticks.next().await {
            let request = match responder.store().kb_reload_request().await {
                Ok(request) => request,
                Err(e) => {
                    debug!(error = %e, "cannot read knowledge-base reload requests");
                    continue;
                }
            };
            // The folder was read at start: only later requests matter.
            let last = *seen.get_or_insert(request.generation);
            if request.generation <= last {
                continue;
            }
            seen = Some(request.generation);
            info!(
                generation = request.generation,
                "reload requested through another replica: reloading this replica's folder"
            );
            match responder.reload_local().await {
                Ok(outcome) if outcome.version == request.version => {
                    info!(version = %outcome.version, "knowledge base in step with a reload requested through another replica");
                }
                Ok(outcome) => warn!(
                    here = %outcome.version,
                    requested = %request.version,
                    "reloaded on another replica's request, but this replica's folder holds other content (a ConfigMap update still on its way?)"
                ),
                Err(e) => warn!(error = %e, "reload requested through another replica failed here"),
            }
        }
    })
}
