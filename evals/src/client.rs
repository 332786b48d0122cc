//! gRPC connection to the server under test, failing fast and clearly when
//! nothing is listening.

use std::time::Duration;

use anyhow::Context;
use tonic::transport::{Channel, Endpoint};
use xiaoer_proto::v1::auto_reply_client::AutoReplyClient;

/// How long to wait for the server to accept the connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Upper bound for one `Reply` call, so a stuck server cannot hang a run.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Parses the URL, adding `http://` when no scheme is given.
pub(crate) fn endpoint(url: &str) -> anyhow::Result<Endpoint> {
    let full = if url.contains("://") {
        url.to_string()
    } else {
        format!("http://{url}")
    };
    let endpoint =
        Endpoint::from_shared(full).with_context(|| format!("invalid endpoint URL {url:?}"))?;
    Ok(endpoint
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(CALL_TIMEOUT))
}

/// Connects within [`CONNECT_TIMEOUT`] or explains what failed.
pub(crate) async fn connect(url: &str) -> anyhow::Result<AutoReplyClient<Channel>> {
    let endpoint = endpoint(url)?;
    let unreachable = |detail: String| {
        anyhow::anyhow!(
            "cannot reach the xiaoer server at {url} within {} s ({detail}); is it running and listening there?",
            CONNECT_TIMEOUT.as_secs()
        )
    };
    // The outer timeout also covers a peer that accepts TCP but never speaks HTTP/2.
    match tokio::time::timeout(
        CONNECT_TIMEOUT + Duration::from_millis(250),
        endpoint.connect(),
    )
    .await
    {
        Ok(Ok(channel)) => Ok(AutoReplyClient::new(channel)),
        Ok(Err(err)) => Err(unreachable(error_chain(&err))),
        Err(_) => Err(unreachable("timed out".to_string())),
    }
}

/// "outer: inner: root" — tonic's transport error alone says only "transport error".
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn scheme_is_optional_and_garbage_is_rejected() {
        assert_eq!(
            endpoint("127.0.0.1:1").expect("valid").uri().scheme_str(),
            Some("http")
        );
        assert!(endpoint("http://exa mple").is_err());
    }

    #[tokio::test]
    async fn unreachable_endpoint_fails_fast_with_a_clear_message() {
        // A port that was free a moment ago: nothing listens there.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        let started = Instant::now();
        let err = connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect_err("nothing listens");
        assert!(started.elapsed() < CONNECT_TIMEOUT + Duration::from_secs(1));
        let message = err.to_string();
        assert!(
            message.starts_with(&format!(
                "cannot reach the xiaoer server at http://127.0.0.1:{port} within 3 s"
            )),
            "{message}"
        );
    }
}
