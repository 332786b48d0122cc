//! Hot reload: rebuild the knowledge-base index when the articles folder
//! changes, so the service team's edits go live without a restart.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tracing::{info, warn};

use crate::responder::Responder;

/// Quiet period after the last change before reloading: editors write files
/// in several steps and a half-saved article must not trigger a reload.
const DEBOUNCE: Duration = Duration::from_millis(750);

/// Starts watching `kb_dir`; reloads stop when the returned watcher is dropped.
/// Returns `None` (and logs why) when the platform cannot watch the folder:
/// `KnowledgeBase/Reload` still works then.
pub fn watch_knowledge_base(responder: Arc<Responder>, kb_dir: PathBuf) -> Option<notify::RecommendedWatcher> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut watcher = match notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| !e.kind.is_access()) {
            let _ = tx.send(());
        }
    }) {
        Ok(w) => w,
        Err(e) => {
            warn!(error = %e, "cannot watch the knowledge base folder; use KnowledgeBase/Reload");
            return None;
        }
    };
    if let Err(e) = watcher.watch(&kb_dir, RecursiveMode::Recursive) {
        warn!(error = %e, dir = %kb_dir.display(), "cannot watch the knowledge base folder; use KnowledgeBase/Reload");
        return None;
    }
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            // Swallow the burst of events of one save.
            while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, rx.recv()).await {}
            match responder.reload().await {
                Ok(done) => info!(articles = done.articles, version = %done.version, "knowledge base folder changed: reloaded"),
                Err(e) => warn!(error = %e, "knowledge base folder changed but the new articles were rejected"),
            }
        }
    });
    Some(watcher)
}
