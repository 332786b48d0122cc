//! Service errors and their one mapping to gRPC status codes.
//!
//! Every handler returns [`ServiceError`]; the `From` impl below is the only
//! place that decides which status code a caller sees, so the contract's
//! error behaviour cannot drift between RPCs. Callers never see database
//! error text (it is logged, under the call's request id); a refusal they
//! should retry carries `google.rpc.RetryInfo` saying when.

use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};
use tracing::{error, warn};
use xiaoer_models::ModelError;

use crate::ratelimit::RateLimited;
use crate::store::StoreError;

/// Why a request failed, in terms the caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request itself is wrong; `field` names the culprit.
    #[error("{field}: {reason}")]
    InvalidArgument { field: &'static str, reason: String },
    /// The named record does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The record exists but its state forbids the operation.
    #[error("{0}")]
    FailedPrecondition(String),
    /// A dependency (database) is down: retry later; nothing was recorded.
    #[error("{0}")]
    Unavailable(String),
    /// Too much work queued, or a conversation over its rate: retry after
    /// `retry_after`.
    #[error("{reason}")]
    Overloaded {
        reason: String,
        retry_after: Duration,
    },
    /// A bug or broken installation.
    #[error("{0}")]
    Internal(String),
    /// No valid bearer token: the caller must authenticate (see `auth`).
    #[error("{0}")]
    Unauthenticated(String),
    /// A valid token whose role may not call this method, or a caller
    /// acting in another agent's name.
    #[error("{0}")]
    PermissionDenied(String),
    /// A watch cursor older than the events kept: resync and watch anew.
    #[error("{0}")]
    OutOfRange(String),
}

impl ServiceError {
    /// The server is saturated: worth retrying as soon as one call finishes.
    pub fn overloaded(reason: impl Into<String>) -> Self {
        ServiceError::Overloaded {
            reason: reason.into(),
            retry_after: SATURATED_RETRY,
        }
    }

    /// When a retry may succeed, for the refusals a caller should retry.
    fn retry_after(&self) -> Option<Duration> {
        match self {
            ServiceError::Overloaded { retry_after, .. } => Some(*retry_after),
            ServiceError::Unavailable(_) => Some(UNAVAILABLE_RETRY),
            _ => None,
        }
    }

    /// Shorthand for a bad request field.
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        ServiceError::InvalidArgument {
            field,
            reason: reason.into(),
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ServiceError::NotFound(what),
            StoreError::Conflict(why) => ServiceError::FailedPrecondition(why),
            StoreError::Unavailable(why) => {
                warn!(error = %why, "database unavailable");
                ServiceError::Unavailable("database unavailable, please retry".into())
            }
            StoreError::Setup(why) => {
                error!(error = %why, "database schema or configuration problem");
                ServiceError::Internal(
                    "internal error: the server log has the details under this call's x-request-id"
                        .into(),
                )
            }
        }
    }
}

impl From<ModelError> for ServiceError {
    fn from(e: ModelError) -> Self {
        match e {
            ModelError::Overloaded => {
                ServiceError::overloaded("inference queue is full, please retry")
            }
            other => ServiceError::Internal(other.to_string()),
        }
    }
}

impl From<RateLimited> for ServiceError {
    fn from(e: RateLimited) -> Self {
        ServiceError::Overloaded {
            reason: e.to_string(),
            retry_after: e.retry_after,
        }
    }
}

impl From<ServiceError> for Status {
    fn from(e: ServiceError) -> Self {
        let code = match &e {
            ServiceError::InvalidArgument { .. } => Code::InvalidArgument,
            ServiceError::NotFound(_) => Code::NotFound,
            ServiceError::FailedPrecondition(_) => Code::FailedPrecondition,
            ServiceError::Unavailable(_) => Code::Unavailable,
            ServiceError::Overloaded { .. } => Code::ResourceExhausted,
            ServiceError::Internal(_) => Code::Internal,
            ServiceError::Unauthenticated(_) => Code::Unauthenticated,
            ServiceError::PermissionDenied(_) => Code::PermissionDenied,
            ServiceError::OutOfRange(_) => Code::OutOfRange,
        };
        match e.retry_after() {
            Some(after) => Status::with_error_details(
                code,
                e.to_string(),
                ErrorDetails::with_retry_info(Some(after)),
            ),
            None => Status::new(code, e.to_string()),
        }
    }
}

/// Retry hint when the server is at its concurrency or queue limit: one
/// Reply takes about 10 ms, so a slot is free again well within this.
const SATURATED_RETRY: Duration = Duration::from_millis(100);
/// Retry hint while the database is down: the outage gate probes it once a
/// second, so an earlier retry would be refused the same way.
const UNAVAILABLE_RETRY: Duration = Duration::from_secs(1);

/// Longest shopper message accepted, in characters (not bytes: 2,000 汉字 are fine).
pub const MAX_TEXT_CHARS: usize = 2000;
/// Longest id accepted for conversations, turns, handoffs and agents.
pub const MAX_ID_CHARS: usize = 128;

/// Checks a shopper message: present, not blank, not too long.
pub fn require_text<'a>(field: &'static str, text: &'a str) -> Result<&'a str, ServiceError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(ServiceError::invalid(
            field,
            "must not be empty or only whitespace",
        ));
    }
    let chars = text.chars().count();
    if chars > MAX_TEXT_CHARS {
        return Err(ServiceError::invalid(
            field,
            format!("is {chars} characters long; the limit is {MAX_TEXT_CHARS}"),
        ));
    }
    Ok(trimmed)
}

/// Checks an identifier: present, short, printable.
pub fn require_id<'a>(field: &'static str, id: &'a str) -> Result<&'a str, ServiceError> {
    let id = id.trim();
    if id.is_empty() {
        return Err(ServiceError::invalid(field, "is required"));
    }
    if id.chars().count() > MAX_ID_CHARS || id.chars().any(char::is_control) {
        return Err(ServiceError::invalid(
            field,
            format!("must be at most {MAX_ID_CHARS} printable characters"),
        ));
    }
    Ok(id)
}

/// A count field where 0 means "the default" and anything else must lie in 1..=max.
pub fn bounded(
    field: &'static str,
    value: i32,
    default: usize,
    max: usize,
) -> Result<usize, ServiceError> {
    match usize::try_from(value) {
        Ok(0) => Ok(default),
        Ok(n) if n <= max => Ok(n),
        _ => Err(ServiceError::invalid(
            field,
            format!("must be between 0 and {max}, got {value}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_rules() {
        assert!(require_text("text", "  \n ").is_err());
        assert_eq!(require_text("text", " 在吗 ").unwrap(), "在吗");
        assert!(require_text("text", &"好".repeat(2000)).is_ok());
        let err = require_text("text", &"好".repeat(2001)).unwrap_err();
        assert!(err.to_string().starts_with("text:"), "{err}");
    }

    #[test]
    fn id_rules() {
        assert!(require_id("conversation_id", "").is_err());
        assert!(require_id("conversation_id", "a\u{0}b").is_err());
        assert!(require_id("conversation_id", &"x".repeat(129)).is_err());
        assert_eq!(require_id("conversation_id", " c-1 ").unwrap(), "c-1");
    }

    #[test]
    fn bounded_counts() {
        assert_eq!(bounded("limit", 0, 5, 50).unwrap(), 5);
        assert_eq!(bounded("limit", 50, 5, 50).unwrap(), 50);
        assert!(bounded("limit", 51, 5, 50).is_err());
        assert!(bounded("limit", -1, 5, 50).is_err());
    }

    #[test]
    fn status_codes() {
        let code = |e: ServiceError| Status::from(e).code();
        assert_eq!(
            code(ServiceError::invalid("text", "x")),
            Code::InvalidArgument
        );
        assert_eq!(
            code(StoreError::NotFound("h".into()).into()),
            Code::NotFound
        );
        assert_eq!(
            code(StoreError::Conflict("c".into()).into()),
            Code::FailedPrecondition
        );
        assert_eq!(
            code(StoreError::Unavailable("down".into()).into()),
            Code::Unavailable
        );
        assert_eq!(code(ModelError::Overloaded.into()), Code::ResourceExhausted);
        assert_eq!(
            code(ServiceError::Unauthenticated("no token".into())),
            Code::Unauthenticated
        );
        assert_eq!(
            code(ServiceError::PermissionDenied("wrong role".into())),
            Code::PermissionDenied
        );
        assert_eq!(
            code(ServiceError::OutOfRange("old cursor".into())),
            Code::OutOfRange
        );
        let flood = Status::from(ServiceError::from(RateLimited {
            retry_after: std::time::Duration::from_millis(1500),
            burst: 10,
            per_minute: 30,
        }));
        assert_eq!(flood.code(), Code::ResourceExhausted);
        assert!(
            flood.message().contains("retry in 1.5 s"),
            "{}",
            flood.message()
        );
        assert_eq!(
            flood.get_details_retry_info().and_then(|r| r.retry_delay),
            Some(std::time::Duration::from_millis(1500))
        );
    }

    #[test]
    fn database_text_never_reaches_callers() {
        let down = Status::from(ServiceError::from(StoreError::Unavailable(
            "connection to 10.0.0.7:5432 refused, role \"xiaoer\"".into(),
        )));
        assert_eq!(down.message(), "database unavailable, please retry");
        assert_eq!(
            down.get_details_retry_info().and_then(|r| r.retry_delay),
            Some(UNAVAILABLE_RETRY)
        );
        let broken = Status::from(ServiceError::from(StoreError::Setup(
            "relation \"turns\" does not exist".into(),
        )));
        assert_eq!(broken.code(), Code::Internal);
        assert!(!broken.message().contains("turns"), "{}", broken.message());
        assert!(broken.get_details_retry_info().is_none());
        let saturated = Status::from(ServiceError::from(ModelError::Overloaded));
        assert_eq!(
            saturated
                .get_details_retry_info()
                .and_then(|r| r.retry_delay),
            Some(SATURATED_RETRY)
        );
    }
}
