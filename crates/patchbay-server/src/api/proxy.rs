//! `ANY /v1/proxy/{path}` with `Patchbay-Connection: <id>`: the caller's request, with the
//! connection's auth, to the connection's base URL; the upstream's answer streamed back. Small
//! bodies are buffered so that idempotent requests can be retried and a 401 answered by a token
//! renewal; larger ones stream through once. Both directions are capped.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Request, Uri, header};
use axum::response::{IntoResponse as _, Response};
use futures::StreamExt;
use http_body_util::BodyExt as _;
use hyper::body::Body as _;
use hyper::body::Incoming;
use patchbay_connectors::call::{CallBody, CallRequest, strip};
use patchbay_domain::ConnectionId;
use patchbay_engine::{EngineError, ProxyCall};

use super::actions::{CALLER_HEADER, caller_in};
use crate::error::{ApiError, ApiResult};
use crate::extract::bearer_in;
use crate::startup::AppState;

/// Bodies up to this size are buffered (and so can be replayed).
const BUFFERED: u64 = 256 * 1024;

pub const CONNECTION_HEADER: &str = "patchbay-connection";

/// Whether a request is for the proxy: `/v1/proxy` and everything under it. The proxy is served
/// outside the router and its layers (it needs no JSON body limit); the observe layer wraps
/// both.
pub fn is_proxied(path: &str) -> bool {
    path.strip_prefix("/v1/proxy")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The path after `/v1/proxy`, still percent-encoded as the caller sent it (decoding it here
/// would turn `%3F` into a query and `%2F` into a segment).
fn upstream_path(uri: &Uri) -> String {
    uri.path()
        .strip_prefix("/v1/proxy")
        .unwrap_or("")
        .to_owned()
}

/// What the proxy reads from a request's headers, found in one pass over them (the first
/// value of each, as a lookup by name would give).
#[derive(Default)]
struct Asked<'a> {
    authorization: Option<&'a HeaderValue>,
    connection: Option<&'a HeaderValue>,
    caller: Option<&'a HeaderValue>,
    length: Option<&'a HeaderValue>,
    chunked: bool,
}

impl<'a> Asked<'a> {
    fn of(headers: &'a HeaderMap) -> Self {
        let mut asked = Self::default();
        for (name, value) in headers {
            if name == header::AUTHORIZATION {
                asked.authorization.get_or_insert(value);
            } else if name == header::CONTENT_LENGTH {
                asked.length.get_or_insert(value);
            } else if name == header::TRANSFER_ENCODING {
                asked.chunked = true;
            } else if name.as_str() == CONNECTION_HEADER {
                asked.connection.get_or_insert(value);
            } else if name.as_str() == CALLER_HEADER {
                asked.caller.get_or_insert(value);
            }
        }
        asked
    }

    /// The declared `Content-Length`, if it is a number.
    fn content_length(&self) -> Option<u64> {
        self.length
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
    }

    /// The connection the request names.
    fn connection(&self) -> Result<ConnectionId, ApiError> {
        let value = self.connection.ok_or_else(|| {
            ApiError::BadHeader(format!(
                "the {CONNECTION_HEADER} header must name the connection to use"
            ))
        })?;
        value
            .to_str()
            .map_err(|_| ApiError::BadHeader(format!("{CONNECTION_HEADER} is not visible ASCII")))?
            .trim()
            .parse::<ConnectionId>()
            .map_err(|_| ApiError::BadHeader(format!("{CONNECTION_HEADER} is not a connection id")))
    }
}

pub async fn forward(s: &AppState, req: Request<Incoming>) -> Response {
    relay(s, req).await.into_response()
}

async fn relay(s: &AppState, req: Request<Incoming>) -> ApiResult<Response> {
    let (parts, body) = req.into_parts();
    let asked = Asked::of(&parts.headers);
    let p = s.hub.authenticated(bearer_in(asked.authorization)?).await?;
    let limit = s.proxy_body_limit;
    let path = upstream_path(&parts.uri);
    let id = asked.connection()?;
    let caller = caller_in(asked.caller)?;
    let length = asked.content_length();
    if length.is_some_and(|l| l > limit as u64) {
        return Err(ApiError::PayloadTooLarge(limit));
    }
    let chunked = asked.chunked;
    // Set when a streamed body turns out larger than the limit.
    let mut too_large = None;
    let body = if body.is_end_stream() {
        CallBody::empty()
    } else if length.is_some_and(|l| l <= BUFFERED) || (length.is_none() && !chunked) {
        let bytes = http_body_util::Limited::new(body, BUFFERED as usize)
            .collect()
            .await
            .map_err(|_| ApiError::PayloadTooLarge(BUFFERED as usize))?
            .to_bytes();
        CallBody::Bytes(bytes)
    } else {
        let exceeded = Arc::new(AtomicBool::new(false));
        too_large = Some(exceeded.clone());
        CallBody::stream(capped(
            http_body_util::BodyDataStream::new(body),
            limit,
            exceeded,
        ))
    };
    let request = CallRequest {
        method: parts.method,
        path,
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers,
        body,
    };
    let call = ProxyCall {
        connection: id,
        caller,
        request,
    };
    // Boxed: the call's future is large, and this one would otherwise hold and move a copy.
    let upstream = match Box::pin(s.hub.proxy(&p, call)).await {
        Ok(r) => r,
        Err(_) if too_large.is_some_and(|t| t.load(Ordering::Relaxed)) => {
            return Err(ApiError::PayloadTooLarge(limit));
        }
        Err(e) => return Err(e.into()),
    };
    let (mut head, body) = upstream.into_parts();
    // The length the answer's framing declares (none for a HEAD or a 304, whatever their
    // Content-Length says); the client reads a declared length and no more.
    let declared = body.size_hint().exact();
    if let Some(len) = declared.filter(|l| *l > limit as u64) {
        return Err(EngineError::Upstream(format!(
            "the upstream's answer ({len} bytes) is larger than the proxy's limit of {limit} bytes"
        ))
        .into());
    }
    // The body passes through unchanged, so its length stays true.
    head.headers = strip(head.headers, |n| n == header::CONTENT_LENGTH);
    // The answer streams through as it arrives; one without a declared length is cut off
    // beyond the limit.
    let body = match declared {
        Some(_) => Body::new(body),
        None => Body::new(http_body_util::Limited::new(body, limit)),
    };
    Ok(Response::from_parts(head, body))
}

/// Passes a byte stream through until it exceeds `limit` bytes, then fails it.
fn capped<S, E>(
    stream: S,
    limit: usize,
    exceeded: Arc<AtomicBool>,
) -> impl futures::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + 'static
where
    S: futures::Stream<Item = Result<bytes::Bytes, E>> + Send + 'static,
    E: std::fmt::Display,
{
    let mut seen = 0usize;
    stream.map(move |chunk| {
        let chunk = chunk.map_err(|e| std::io::Error::other(e.to_string()))?;
        seen = seen.saturating_add(chunk.len());
        if seen > limit {
            exceeded.store(true, Ordering::Relaxed);
            return Err(std::io::Error::other("the body exceeds the proxy's limit"));
        }
        Ok(chunk)
    })
}

#[cfg(test)]
mod tests {
    use super::is_proxied;

    #[test]
    fn only_the_proxy_prefix_and_what_is_under_it_is_proxied() {
        for path in [
            "/v1/proxy",
            "/v1/proxy/",
            "/v1/proxy/user",
            "/v1/proxy/a/b%2Fc",
        ] {
            assert!(is_proxied(path), "{path}");
        }
        for path in [
            "/v1/proxyx",
            "/v1/proxies/x",
            "/v1/connections",
            "/",
            "/v1/proxy-x/y",
        ] {
            assert!(!is_proxied(path), "{path}");
        }
    }
}
