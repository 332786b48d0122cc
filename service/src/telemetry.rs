//! Logs and metrics.
//!
//! Logs go through `tracing` (pretty on a terminal, JSON for collectors) with
//! the request id, RPC and conversation id on every span; customer text is
//! never logged at info level. Metrics are Prometheus text on their own
//! plain-HTTP port, beside the liveness and readiness probes, so probes work
//! the same whether gRPC serves TLS or not.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;

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
        // Every enclosing span, so the request id of the outer call span
        // shows beside a handler's own fields.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
    };
}

/// Whether this replica should get traffic: false while it loads and from
/// the first moment of a drain. `/readyz` answers from it; gRPC health
/// follows the same moments.
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// Marks the replica ready (true) or not (false).
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::SeqCst);
    }

    /// Whether the replica is ready now.
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// How often histogram buckets are folded into the exported summaries.
const METRICS_UPKEEP: Duration = Duration::from_secs(5);

/// Installs the Prometheus recorder and serves, on `addr`, `GET /metrics`,
/// `GET /livez` (200 while the process runs) and `GET /readyz` (200 when
/// `readiness` says so, 503 otherwise). Binds before returning, so a bad
/// address fails at start.
pub async fn serve_metrics(addr: SocketAddr, readiness: Readiness) -> anyhow::Result<()> {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&[
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        ])?
        .install_recorder()
        .map_err(|e| anyhow::anyhow!("metrics recorder: {e}"))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("metrics listener on {addr}: {e}"))?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(METRICS_UPKEEP);
        loop {
            ticks.tick().await;
            upkeep.run_upkeep();
        }
    });
    let app = probe_routes(readiness).route(
        "/metrics",
        get(move || {
            let handle = handle.clone();
            async move { handle.render() }
        }),
    );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "metrics listener stopped");
        }
    });
    Ok(())
}

/// The liveness and readiness probes.
fn probe_routes(readiness: Readiness) -> Router {
    Router::new()
        .route("/livez", get(|| async { "alive\n" }))
        .route(
            "/readyz",
            get(move || {
                let ready = readiness.is_ready();
                async move {
                    if ready {
                        (StatusCode::OK, "ready\n")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
                    }
                }
            }),
        )
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

/// Counts a shopper's rating of a bot answer, by rating (1–5).
pub fn record_rating(rating: i32) {
    counter!("xiaoer_ratings_total", "rating" => rating.to_string()).increment(1);
}

/// Counts a conversation's first message: with the handoff counter it
/// gives the live containment rate.
pub fn record_conversation_started() {
    counter!("xiaoer_conversations_started_total").increment(1);
}

/// The helpdesk queue as the database holds it, per queue: waiting
/// handoffs, the oldest one's age and how many are past their due time.
pub fn record_queue(queue: &'static str, waiting: u64, oldest_wait_s: f64, overdue: u64) {
    gauge!("xiaoer_queue_waiting", "queue" => queue).set(waiting as f64);
    gauge!("xiaoer_queue_oldest_waiting_seconds", "queue" => queue).set(oldest_wait_s);
    gauge!("xiaoer_queue_overdue", "queue" => queue).set(overdue as f64);
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// The status line of a plain HTTP/1.0 GET.
    async fn status_of(addr: SocketAddr, path: &str) -> String {
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        conn.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut reply = String::new();
        conn.read_to_string(&mut reply).await.unwrap();
        reply.lines().next().unwrap_or_default().to_string()
    }

    #[tokio::test]
    async fn readiness_probe_follows_the_flag_and_liveness_stays_up() {
        let readiness = Readiness::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let routes = probe_routes(readiness.clone());
        tokio::spawn(async move { axum::serve(listener, routes).await });
        assert!(status_of(addr, "/readyz").await.contains("503"));
        assert!(status_of(addr, "/livez").await.contains("200"));
        readiness.set(true);
        assert!(status_of(addr, "/readyz").await.contains("200"));
        readiness.set(false);
        assert!(status_of(addr, "/readyz").await.contains("503"));
        assert!(status_of(addr, "/nope").await.contains("404"));
    }
}
