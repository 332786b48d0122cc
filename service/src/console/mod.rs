//! The agents' web console (`serve --console-addr`): a small page (plain
//! JavaScript, embedded in the binary) over a JSON API and a server-sent
//! event stream fed by the same event hub as `WatchHandoffs`.
//!
//! Access control matches gRPC: with tokens configured an agent signs in
//! with a helpdesk or admin token, kept in an HttpOnly cookie and checked
//! on every request (stateless, so any replica serves any agent, and
//! revoking the token ends the session); on loopback without tokens the
//! agent only gives a name. The agent's identity is the token's name, so
//! agents cannot act as each other.

mod api;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tokio::net::TcpListener;
use tracing::info;

use crate::auth::{check_exposure, Caller, Role, Tokens};
use crate::error::ServiceError;
use crate::reply::Responder;

/// The page and its two assets, compiled in.
const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// Cookie holding the agent's token (with tokens) or name (without).
const SESSION_COOKIE: &str = "xiaoer_console";
/// Roles that may use the console: the helpdesk's.
const CONSOLE_ROLES: [Role; 2] = [Role::Helpdesk, Role::Admin];

/// What every handler shares.
#[derive(Clone)]
struct Console {
    responder: Arc<Responder>,
    tokens: Tokens,
    /// Cookies get `Secure` when the console sits behind TLS.
    secure_cookies: bool,
}

/// Binds the console's address, refusing a non-loopback one without
/// tokens as gRPC does; done before serving so a bad address fails start-up.
pub async fn bind(addr: SocketAddr, tokens: &Tokens) -> anyhow::Result<TcpListener> {
    check_exposure(addr, tokens)?;
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("console address {addr}"))
}

/// Serves the console on `listener` until `shutdown`.
pub async fn serve(
    responder: Arc<Responder>,
    listener: TcpListener,
    tokens: Tokens,
    secure_cookies: bool,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    info!(addr = %listener.local_addr()?, "helpdesk console serving");
    let app = router(Console {
        responder,
        tokens,
        secure_cookies,
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .context("console")
}

fn router(console: Console) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { page(INDEX_HTML, "text/html; charset=utf-8") }),
        )
        .route(
            "/assets/app.js",
            get(|| async { page(APP_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/assets/app.css",
            get(|| async { page(APP_CSS, "text/css; charset=utf-8") }),
        )
        .route("/api/me", get(api::me))
        .route("/api/session", post(api::sign_in))
        .route("/api/session/logout", post(api::sign_out))
        .route("/api/handoffs", get(api::list))
        .route("/api/handoffs/{id}", get(api::one))
        .route("/api/handoffs/{id}/claim", post(api::claim))
        .route("/api/handoffs/{id}/messages", post(api::send))
        .route("/api/handoffs/{id}/resolve", post(api::resolve))
        .route("/api/articles/{id}", get(api::article))
        .route("/api/events", get(api::events))
        .with_state(console)
}

/// An embedded asset; never cached stale across upgrades.
fn page(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// A service error as the console's JSON error, with its HTTP status: the
/// one place the console decides what a failure looks like.
pub struct ConsoleError(ServiceError);

impl From<ServiceError> for ConsoleError {
    fn from(e: ServiceError) -> Self {
        Self(e)
    }
}

impl From<crate::store::StoreError> for ConsoleError {
    fn from(e: crate::store::StoreError) -> Self {
        Self(e.into())
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let status = match &self.0 {
            ServiceError::InvalidArgument { .. } => StatusCode::BAD_REQUEST,
            ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
            ServiceError::FailedPrecondition(_) => StatusCode::CONFLICT,
            ServiceError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ServiceError::Overloaded { .. } => StatusCode::TOO_MANY_REQUESTS,
            ServiceError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ServiceError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ServiceError::PermissionDenied(_) => StatusCode::FORBIDDEN,
            ServiceError::OutOfRange(_) => StatusCode::GONE,
        };
        // Masked: a refusal may quote what the agent typed.
        let message = xiaoer_privacy::mask(&self.0.to_string());
        (status, Json(json!({ "error": message }))).into_response()
    }
}

impl Console {
    /// The signed-in agent, from the session cookie.
    fn agent(&self, headers: &HeaderMap) -> Result<Caller, ConsoleError> {
        let value = session_cookie(headers)
            .ok_or_else(|| ServiceError::Unauthenticated("sign in with a helpdesk token".into()))?;
        self.identify(&value)
    }

    /// Who a session value (token or, without tokens, a name) stands for.
    fn identify(&self, value: &str) -> Result<Caller, ConsoleError> {
        if self.tokens.is_empty() {
            let name = crate::error::require_id("agent_id", value)?;
            return Ok(Caller {
                name: name.to_string(),
                role: Role::Admin,
            });
        }
        let entry = self
            .tokens
            .verify(value)
            .ok_or_else(|| ServiceError::Unauthenticated("unknown or revoked token".into()))?;
        if !CONSOLE_ROLES.contains(&entry.role) {
            return Err(ServiceError::PermissionDenied(format!(
                "a {} token cannot use the helpdesk console",
                entry.role
            ))
            .into());
        }
        Ok(Caller {
            name: entry.name.clone(),
            role: entry.role,
        })
    }

    /// The `Set-Cookie` value holding `value` (empty: sign out).
    fn cookie(&self, value: &str) -> HeaderValue {
        let age = if value.is_empty() { "Max-Age=0; " } else { "" };
        let secure = if self.secure_cookies { "; Secure" } else { "" };
        let cookie = format!(
            "{SESSION_COOKIE}={}; {age}Path=/; HttpOnly; SameSite=Strict{secure}",
            percent_encode(value)
        );
        HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

/// The session cookie's value, if the browser sent one.
fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| percent_decode(value))
        .filter(|v| !v.is_empty())
}

/// Cookie-safe form of a token or name (names may be Chinese).
fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_values_round_trip_names_and_tokens() {
        for value in ["xo_AbC-12_x", "小李", "a b;c=d%"] {
            assert_eq!(percent_decode(&percent_encode(value)), value);
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("other=1; xiaoer_console=%E5%B0%8F%E6%9D%8E"),
        );
        assert_eq!(session_cookie(&headers).as_deref(), Some("小李"));
        headers.insert(header::COOKIE, HeaderValue::from_static("xiaoer_console="));
        assert_eq!(session_cookie(&headers), None, "signed out");
    }
}
