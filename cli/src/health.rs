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
