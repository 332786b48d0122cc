//! Shared harness of the integration tests: the real server (real model,
//! real knowledge base, SQLite in a fresh folder) on an ephemeral loopback
//! port, started once per test binary.

// Each test binary compiles its own copy of this module and uses a subset.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tonic::transport::Channel;
use xiaoer_proto::v1 as pb;
use xiaoer_proto::v1::auto_reply_client::AutoReplyClient;
use xiaoer_service::config::ServeArgs;
use xiaoer_service::server::{serve, App};
use xiaoer_service::store::{sqlite_url, Store};

/// A running server and where it keeps its data.
pub struct TestServer {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    /// Whether it serves TLS (its URL is then https://).
    pub tls: bool,
    /// Dropping it (with the `TestServer`) or [`TestServer::stop`] shuts
    /// the server down gracefully.
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    /// Starts the server with `args` (a fresh data folder unless one is set)
    /// on its own runtime thread, so each test's runtime can come and go
    /// while the server keeps serving. Panics with the cause if it cannot start.
    pub fn start(mut args: ServeArgs) -> TestServer {
        let data_dir = args.data_dir.get_or_insert_with(|| {
            std::env::temp_dir().join(format!("xiaoer-it-{}", uuid::Uuid::new_v4().simple()))
        });
        let data_dir = data_dir.clone();
        let (tx, rx) = std::sync::mpsc::channel::<Result<(SocketAddr, bool), String>>();
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async move {
                let started = async {
                    let config = args.resolve().map_err(|e| format!("{e:#}"))?;
                    let tls = config.tls.is_some();
                    let app = App::load(config).await.map_err(|e| {
                        format!("{e:#} (weights fetched? run scripts/fetch-weights.sh)")
                    })?;
                    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                        .await
                        .map_err(|e| e.to_string())?;
                    let addr = listener.local_addr().map_err(|e| e.to_string())?;
                    Ok((app, listener, addr, tls))
                };
                match started.await {
                    Ok((app, listener, addr, tls)) => {
                        tx.send(Ok((addr, tls))).unwrap();
                        serve(app, listener, async {
                            let _ = stop.await;
                        })
                        .await
                        .unwrap();
                    }
                    Err(e) => tx.send(Err(e)).unwrap(),
                }
            });
        });
        let (addr, tls) = rx
            .recv_timeout(Duration::from_secs(300))
            .expect("server starts within 5 minutes")
            .unwrap_or_else(|e| panic!("server cannot start: {e}"));
        TestServer {
            addr,
            data_dir,
            tls,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// Shuts the server down gracefully and waits until it has let go of
    /// its database, as a process exit would; the data folder stays.
    pub fn stop(mut self) -> PathBuf {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread.join().expect("server thread exits cleanly");
        }
        self.data_dir.clone()
    }

    /// `http://ADDR` or `https://localhost:PORT` (the name the test
    /// certificates are issued for).
    pub fn url(&self) -> String {
        if self.tls {
            format!("https://localhost:{}", self.addr.port())
        } else {
            format!("http://{}", self.addr)
        }
    }

    /// A plaintext HTTP/2 channel, whatever the server speaks.
    pub async fn plaintext_channel(&self) -> Result<Channel, tonic::transport::Error> {
        Channel::from_shared(format!("http://{}", self.addr))
            .expect("valid URL")
            .connect_timeout(Duration::from_secs(3))
            .connect()
            .await
    }

    /// The server's database, to check what it recorded.
    pub async fn store(&self) -> Store {
        Store::connect(&sqlite_url(&self.data_dir)).await.unwrap()
    }
}

/// One shopper message through `Reply`; panics with the status on failure,
/// since every caller expects the call itself to succeed.
pub async fn reply(
    client: &mut AutoReplyClient<Channel>,
    conversation: &str,
    text: &str,
) -> pb::ReplyResponse {
    client
        .reply(pb::ReplyRequest {
            conversation_id: conversation.into(),
            text: text.into(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|s| panic!("reply to {text:?}: {s}"))
        .into_inner()
}
