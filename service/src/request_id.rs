//! Request ids: every gRPC call carries one, taken from the caller's
//! `x-request-id` metadata (so a storefront can follow its own id through
//! xiaoer's logs) or made here, returned in the response metadata and
//! attached to every log line the call writes, through a tracing span.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::codegen::http::{self, HeaderValue};
use tower::{Layer, Service};
use tracing::Instrument;

/// The metadata key, as load balancers and proxies already name it.
pub const HEADER: &str = "x-request-id";
/// Longest caller id kept; a longer one is replaced rather than logged.
const MAX_LEN: usize = 128;

/// The caller's id when it is short, printable ASCII; a fresh one otherwise,
/// so nothing a caller sends can break a log line or flood it.
pub fn choose(given: Option<&HeaderValue>) -> HeaderValue {
    given
        .filter(|v| {
            let bytes = v.as_bytes();
            !bytes.is_empty()
                && bytes.len() <= MAX_LEN
                && bytes.iter().all(|b| b.is_ascii_graphic())
        })
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::from_str(&uuid::Uuid::new_v4().simple().to_string())
                .expect("a uuid is a valid header value")
        })
}

/// Tower layer giving every call its request id; the outermost layer, so
/// even calls refused by access control carry one.
#[derive(Clone, Copy, Default)]
pub struct RequestIdLayer;

impl<S> Layer<S> for RequestIdLayer {
    type Service = RequestIdService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestIdService { inner }
    }
}

/// The service [`RequestIdLayer`] wraps around the router.
#[derive(Clone)]
pub struct RequestIdService<S> {
    inner: S,
}

impl<S, B, R> Service<http::Request<B>> for RequestIdService<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<R>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let id = choose(request.headers().get(HEADER));
        request.headers_mut().insert(HEADER, id.clone());
        let span = tracing::info_span!(
            "call",
            request_id = %id.to_str().unwrap_or_default(),
            method = %request.uri().path(),
        );
        let call = self.inner.call(request).instrument(span);
        Box::pin(async move {
            let mut response = call.await?;
            response.headers_mut().insert(HEADER, id);
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_id_is_kept_when_it_is_printable_and_short() {
        let given = HeaderValue::from_static("shop-7f3a/42");
        assert_eq!(choose(Some(&given)), given);
    }

    #[test]
    fn a_missing_or_unprintable_id_is_replaced_by_a_fresh_one() {
        let long = HeaderValue::from_str(&"a".repeat(MAX_LEN + 1)).unwrap();
        let spaced = HeaderValue::from_static("two words");
        let empty = HeaderValue::from_static("");
        for given in [None, Some(&long), Some(&spaced), Some(&empty)] {
            let id = choose(given);
            assert_eq!(id.len(), 32, "{given:?} → {id:?}");
            assert!(id.as_bytes().iter().all(u8::is_ascii_hexdigit));
        }
        assert_ne!(choose(None), choose(None));
    }
}
