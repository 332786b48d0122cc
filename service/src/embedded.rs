//! The real server on an ephemeral loopback port inside the calling process:
//! `xiaoer eval cases` replays its suites through it when no endpoint is
//! given, and the integration tests start it the same way, so both talk gRPC
//! to exactly what `serve` runs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::config::ServeArgs;
use crate::events::EventHub;
use crate::server::{serve, App};

/// A running in-process server and where it keeps its data.
pub struct EmbeddedServer {
    /// The loopback address it listens on.
    pub addr: SocketAddr,
    /// Its data folder (a fresh temporary one unless the args named one).
    pub data_dir: PathBuf,
    /// Whether it serves TLS (its URL is then https://).
    pub tls: bool,
    /// Its live-event hub, so tests can see how many watchers it holds.
    pub events: Arc<EventHub>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Longest wait for the model and knowledge base to load.
const START_TIMEOUT: Duration = Duration::from_secs(300);

impl EmbeddedServer {
    /// Starts the server with `args` (a fresh data folder unless one is set)
    /// on its own runtime thread, so callers' runtimes can come and go while
    /// it keeps serving. Returns once it accepts connections.
    /// An in-process server stops at once unless the args set a drain window.
    pub fn start(mut args: ServeArgs) -> anyhow::Result<EmbeddedServer> {
        args.drain_window
            .get_or_insert(crate::duration::HumanDuration(Duration::ZERO));
        let data_dir = args
            .data_dir
            .get_or_insert_with(|| {
                std::env::temp_dir().join(format!("xiaoer-{}", uuid::Uuid::new_v4().simple()))
            })
            .clone();
        type Started = (SocketAddr, bool, Arc<EventHub>);
        let (tx, rx) = std::sync::mpsc::channel::<anyhow::Result<Started>>();
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("embedded-server".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Runtime::new() {
                    Ok(runtime) => runtime,
                    Err(e) => return drop(tx.send(Err(e.into()))),
                };
                runtime.block_on(async move {
                    let started = async {
                        let config = args.resolve()?;
                        let tls = config.tls.is_some();
                        let app = App::load(config).await.context(
                            "loading the server (weights fetched? run scripts/fetch-weights.sh)",
                        )?;
                        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                        let addr = listener.local_addr()?;
                        anyhow::Ok((app, listener, addr, tls))
                    };
                    match started.await {
                        Ok((app, listener, addr, tls)) => {
                            let events = Arc::clone(app.responder.events());
                            let _ = tx.send(Ok((addr, tls, events)));
                            let stopped = async {
                                let _ = stop.await;
                            };
                            if let Err(e) = serve(app, listener, stopped).await {
                                tracing::error!("embedded server stopped: {e:#}");
                            }
                        }
                        Err(e) => drop(tx.send(Err(e))),
                    }
                });
            })?;
        let (addr, tls, events) = rx
            .recv_timeout(START_TIMEOUT)
            .context("the embedded server did not start within 5 minutes")??;
        Ok(EmbeddedServer {
            addr,
            data_dir,
            tls,
            events,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// `http://ADDR`, or `https://localhost:PORT` (the name local test
    /// certificates are issued for) when it serves TLS.
    pub fn url(&self) -> String {
        if self.tls {
            format!("https://localhost:{}", self.addr.port())
        } else {
            format!("http://{}", self.addr)
        }
    }

    /// Shuts the server down gracefully and waits until it has let go of its
    /// database, as a process exit would; returns the data folder, which stays.
    pub fn stop(mut self) -> PathBuf {
        self.shut_down();
        self.data_dir.clone()
    }

    fn shut_down(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for EmbeddedServer {
    fn drop(&mut self) {
        self.shut_down();
    }
}
