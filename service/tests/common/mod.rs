//! Shared harness of the integration tests: the real server (real model,
//! real knowledge base, SQLite in a fresh folder) on an ephemeral loopback
//! port, started once per test binary.

// Each test binary compiles its own copy of this module and uses a subset.
#![allow(dead_code)]

use std::ops::Deref;
use std::path::PathBuf;
use std::time::Duration;

use tonic::transport::Channel;
use xiaoer_proto::v1 as pb;
use xiaoer_proto::v1::auto_reply_client::AutoReplyClient;
use xiaoer_service::config::ServeArgs;
use xiaoer_service::embedded::EmbeddedServer;
use xiaoer_service::store::{sqlite_url, Store};

/// The embedded server, started once per test binary; panics with the cause
/// if it cannot start, since no test can run without it.
pub struct TestServer(EmbeddedServer);

impl Deref for TestServer {
    type Target = EmbeddedServer;
    fn deref(&self) -> &EmbeddedServer {
        &self.0
    }
}

impl TestServer {
    /// Starts the server with `args` (a fresh data folder unless one is set).
    pub fn start(args: ServeArgs) -> TestServer {
        TestServer(
            EmbeddedServer::start(args).unwrap_or_else(|e| panic!("server cannot start: {e:#}")),
        )
    }

    /// Shuts the server down gracefully; the data folder stays.
    pub fn stop(self) -> PathBuf {
        self.0.stop()
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

/// Shuts servers down while this test's runtime keeps running, after the
/// caller dropped its clients: an HTTP/2 graceful shutdown waits for each
/// client to acknowledge it, which a runtime blocked in `drop` never would.
pub async fn stop_all(servers: Vec<TestServer>) {
    tokio::task::spawn_blocking(move || drop(servers))
        .await
        .expect("servers stopped");
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
