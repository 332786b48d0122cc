//! gRPC connection to a xiaoer server, failing fast and clearly when nothing
//! is listening. Every client in the workspace (`xiaoer chat`, `xiaoer
//! health`, `xiaoer eval cases|load`) connects through [`connect_channel`],
//! so bearer tokens and TLS work the same everywhere.

use std::time::Duration;

use anyhow::{bail, Context};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use xiaoer_proto::v1::auto_reply_client::AutoReplyClient;

use crate::cli::ClientAuthArgs;

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

/// A channel that sends the caller's bearer token with every call; wrap it
/// in any generated client (`AutoReplyClient::new(channel)`).
pub type AuthChannel = InterceptedService<Channel, BearerToken>;

/// Adds `authorization: Bearer <token>` to each request, when a token is set.
#[derive(Clone)]
pub struct BearerToken(Option<MetadataValue<Ascii>>);

impl BearerToken {
    /// Checks the token once, up front, rather than failing every call.
    pub fn new(token: Option<&str>) -> anyhow::Result<Self> {
        let value = token
            .map(|token| {
                MetadataValue::try_from(format!("Bearer {}", token.trim())).map_err(|_| {
                    anyhow::anyhow!("the token contains characters not allowed in gRPC metadata")
                })
            })
            .transpose()?;
        Ok(Self(value))
    }
}

impl Interceptor for BearerToken {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// Adds TLS for `https://` URLs, trusting only the CA in `--tls-ca`: this
/// build carries no system root store, and a private CA is the usual case.
fn with_tls(endpoint: Endpoint, url: &str, auth: &ClientAuthArgs) -> anyhow::Result<Endpoint> {
    let https = endpoint.uri().scheme_str() == Some("https");
    match (&auth.tls_ca, https) {
        (Some(ca), true) => {
            let pem = std::fs::read(ca)
                .with_context(|| format!("reading --tls-ca {}", ca.display()))?;
            endpoint
                .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)))
                .with_context(|| format!("TLS settings for {url} with CA {}", ca.display()))
        }
        (None, true) => bail!(
            "{url} is https: pass --tls-ca (or XIAOER_TLS_CA) with the PEM certificate of the CA that signed the server's certificate"
        ),
        (Some(_), false) => {
            bail!("--tls-ca is set but {url} is not https://; use an https:// URL to talk TLS")
        }
        (None, false) => Ok(endpoint),
    }
}

/// Connects within [`CONNECT_TIMEOUT`] with the token and TLS settings of
/// `auth`, or explains what failed.
pub async fn connect_channel(url: &str, auth: &ClientAuthArgs) -> anyhow::Result<AuthChannel> {
    let token = BearerToken::new(auth.token.as_deref())?;
    let endpoint = with_tls(endpoint(url)?, url, auth)?;
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
        Ok(Ok(channel)) => Ok(InterceptedService::new(channel, token)),
        Ok(Err(err)) => Err(unreachable(error_chain(&err))),
        Err(_) => Err(unreachable("timed out".to_string())),
    }
}

/// [`connect_channel`] for the `AutoReply` service the evals drive.
pub(crate) async fn connect(
    url: &str,
    auth: &ClientAuthArgs,
) -> anyhow::Result<AutoReplyClient<AuthChannel>> {
    Ok(AutoReplyClient::new(connect_channel(url, auth).await?))
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
    async fn tls_settings_must_match_the_scheme() {
        let https = connect("https://127.0.0.1:1", &ClientAuthArgs::default())
            .await
            .expect_err("no CA");
        assert!(https.to_string().contains("pass --tls-ca"), "{https}");
        let with_ca = ClientAuthArgs {
            tls_ca: Some("/nonexistent/ca.pem".into()),
            ..Default::default()
        };
        let plain = connect("http://127.0.0.1:1", &with_ca)
            .await
            .expect_err("CA without https");
        assert!(plain.to_string().contains("is not https://"), "{plain}");
        let missing = connect("https://127.0.0.1:1", &with_ca)
            .await
            .expect_err("unreadable CA");
        assert!(
            missing
                .to_string()
                .contains("reading --tls-ca /nonexistent/ca.pem"),
            "{missing}"
        );
    }

    #[test]
    fn tokens_are_sent_as_bearer_metadata() {
        let mut with = BearerToken::new(Some(" xo_abc ")).expect("valid");
        let request = with.call(tonic::Request::new(())).expect("passes");
        assert_eq!(
            request
                .metadata()
                .get("authorization")
                .and_then(|v| v.to_str().ok()),
            Some("Bearer xo_abc")
        );
        let mut without = BearerToken::new(None).expect("valid");
        let request = without.call(tonic::Request::new(())).expect("passes");
        assert!(request.metadata().get("authorization").is_none());
        let err = BearerToken::new(Some("xo_\nabc"))
            .err()
            .expect("newline refused");
        assert!(!err.to_string().contains("xo_"), "token echoed: {err}");
    }

    #[tokio::test]
    async fn unreachable_endpoint_fails_fast_with_a_clear_message() {
        // A port that was free a moment ago: nothing listens there.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        let started = Instant::now();
        let err = connect(
            &format!("http://127.0.0.1:{port}"),
            &ClientAuthArgs::default(),
        )
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
