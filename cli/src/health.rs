//! `xiaoer health`: the container health check.

use anyhow::bail;
use xiaoer_evals::client::connect_channel;
use xiaoer_evals::ClientAuthArgs;

/// `xiaoer health`: succeeds only when the server reports SERVING. Health
/// needs no token, but an https:// server needs `auth.tls_ca`.
pub async fn health(endpoint: &str, auth: &ClientAuthArgs) -> anyhow::Result<()> {
    use tonic_health::pb::{
        health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest,
    };
    let mut client = HealthClient::new(connect_channel(endpoint, auth).await?);
    let status = client
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await?
        .into_inner()
        .status;
    if status != ServingStatus::Serving as i32 {
        bail!("{endpoint} is not serving (status {status})");
    }
    println!("SERVING");
    Ok(())
}

/// How long the readiness probe may take, as a container health check's
/// own timeout would allow.
const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// `xiaoer health --ready-url URL`: succeeds only when a plain-HTTP GET of
/// `URL` answers 200. Needs no HTTP client crate: one HTTP/1.0 request.
pub async fn ready(url: &str) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        anyhow::anyhow!("--ready-url {url}: only http:// URLs (the probe listener never uses TLS)")
    })?;
    let (host, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, "/"),
    };
    let probe = async {
        let mut conn = tokio::net::TcpStream::connect(host).await?;
        conn.write_all(format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
            .await?;
        let mut head = vec![0u8; 64];
        let n = conn.read(&mut head).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&head[..n]).into_owned())
    };
    let head = tokio::time::timeout(READY_TIMEOUT, probe)
        .await
        .map_err(|_| anyhow::anyhow!("{url}: no answer within {READY_TIMEOUT:?}"))?
        .map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        bail!("{url} is not ready ({status})");
    }
    println!("READY");
    Ok(())
}
