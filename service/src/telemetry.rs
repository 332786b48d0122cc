//! Logs and metrics.
//!
//! Logs go through `tracing` (pretty on a terminal, JSON for collectors) with
//! the RPC and conversation id on every span; customer text is never logged
//! at info level. Metrics are Prometheus text on their own HTTP port.

use std::net::SocketAddr;
use std::time::Instant;

use metrics::{counter, gauge, histogram};
use serde::Deserialize;
use tracing_subscriber::EnvFilter;

/// Log output style.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable, for a terminal.
    #[default]
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Installs the global log subscriber; `RUST_LOG` overrides the default `info`.
pub fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,h2=warn,tower=warn,sqlx=warn,tantivy=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests start several servers) is harmless: keep the first.
    let _ = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
}

/// Serves Prometheus metrics on `addr` (GET /metrics).
pub fn init_metrics(addr: SocketAddr) -> anyhow::Result<()> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets(&[
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        ])?
        .install()
        .map_err(|e| anyhow::anyhow!("metrics listener on {addr}: {e}"))
}

/// Records one RPC's outcome and latency; created at the start of a handler.
pub struct RpcTimer {
    rpc: &'static str,
    started: Instant,
}

impl RpcTimer {
    /// Starts timing `rpc` (e.g. "AutoReply/Reply").
    pub fn start(rpc: &'static str) -> Self {
        Self {
            rpc,
            started: Instant::now(),
        }
    }

    /// Records the status code name ("OK", "INVALID_ARGUMENT", ...).
    pub fn finish(self, code: tonic::Code) {
        let code = format!("{code:?}");
        counter!("xiaoer_rpc_requests_total", "rpc" => self.rpc, "code" => code).increment(1);
        histogram!("xiaoer_rpc_latency_seconds", "rpc" => self.rpc)
            .record(self.started.elapsed().as_secs_f64());
    }
}

/// Counts a reply by the action taken.
pub fn record_reply_action(action: &'static str) {
    counter!("xiaoer_replies_total", "action" => action).increment(1);
}

/// Counts a new handoff by reason.
pub fn record_handoff(reason: &'static str) {
    counter!("xiaoer_handoffs_total", "reason" => reason).increment(1);
}

/// 1 while the database answers, 0 during an outage (see `outage`).
pub fn record_database_up(up: bool) {
    gauge!("xiaoer_database_up").set(if up { 1.0 } else { 0.0 });
}

/// Counts replies served while the database was unavailable.
pub fn record_degraded_reply() {
    counter!("xiaoer_degraded_replies_total").increment(1);
}

/// Counts calls refused by access control, by method and reason
/// ("missing_token", "unknown_token", "wrong_role", ...).
pub fn record_auth_denial(rpc: &'static str, reason: &'static str) {
    counter!("xiaoer_auth_denied_total", "rpc" => rpc, "reason" => reason).increment(1);
}
