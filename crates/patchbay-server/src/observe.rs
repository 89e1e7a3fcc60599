//! The one layer around everything served, the proxy and the router alike: each request gets
//! an id (the caller's `X-Request-Id` when it is a sane one, else a new one, echoed on the
//! answer), one log line (method, path without the query, which may hold keys, status,
//! latency, request id; never a header or a body) and its count and latency in `/metrics`,
//! under its route template. Proxied requests are many: their line is logged at debug level,
//! their use summarised in the audit log every second.

use std::borrow::Cow;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use patchbay_engine::RequestLabels;

use crate::startup::AppState;

/// The header of a request's id (a constant name: parsing one per request costs more than all
/// the rest of this layer).
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What a served request is counted under, known before it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Served {
    Proxy,
    Router,
}

/// A request on its way: started, named, identified.
pub(crate) struct Seen {
    served: Served,
    method: Method,
    /// Only when its log line will be written.
    path: Option<String>,
    id: HeaderValue,
    started: Instant,
}

/// The route template the router matched, handed out to the layer on the answer.
#[derive(Clone)]
struct Route(MatchedPath);

impl Seen {
    pub(crate) fn of<B>(req: &http::Request<B>, served: Served) -> Self {
        let logged = match served {
            Served::Proxy => tracing::enabled!(tracing::Level::DEBUG),
            Served::Router => tracing::enabled!(tracing::Level::INFO),
        };
        Self {
            served,
            method: req.method().clone(),
            path: logged.then(|| req.uri().path().to_owned()),
            id: request_id(req.headers().get(&REQUEST_ID)),
            started: Instant::now(),
        }
    }

    /// Logs and counts the answer, and puts the request id on it.
    pub(crate) fn answered(self, state: &AppState, mut response: Response) -> Response {
        let took = self.started.elapsed();
        let status = response.status().as_u16();
        let route: Cow<'static, str> =
            match (self.served, response.extensions_mut().remove::<Route>()) {
                (Served::Proxy, _) => Cow::Borrowed("/v1/proxy"),
                (Served::Router, Some(Route(r))) => Cow::Owned(r.as_str().to_owned()),
                (Served::Router, None) => Cow::Borrowed("unmatched"),
            };
        state.hub.metrics().request(
            &RequestLabels {
                method: method_label(&self.method),
                route,
                status,
            },
            took,
        );
        if let Some(path) = &self.path {
            let latency_ms = took.as_secs_f64() * 1000.0;
            let (method, id) = (&self.method, self.id.to_str().unwrap_or(""));
            match self.served {
                Served::Proxy => {
                    tracing::debug!(%method, %path, status, latency_ms, request_id = id, "request")
                }
                Served::Router => {
                    tracing::info!(%method, %path, status, latency_ms, request_id = id, "request")
                }
            }
        }
        response.headers_mut().insert(REQUEST_ID, self.id);
        response
    }
}

/// Inside the router: hands the matched route template out to [`Seen::answered`].
pub(crate) async fn matched_route(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().cloned().map(Route);
    let mut response = next.run(req).await;
    if let Some(route) = route {
        response.extensions_mut().insert(route);
    }
    response
}

/// A method as a label: the standard ones by name, anything else as `other`.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The caller's request id when it is 1 to 128 characters of `[A-Za-z0-9._:-]`, else a new
/// one: this process's random prefix and a sequence number.
fn request_id(given: Option<&HeaderValue>) -> HeaderValue {
    static PREFIX: LazyLock<u64> = LazyLock::new(rand::random);
    static NEXT: AtomicU64 = AtomicU64::new(0);
    if let Some(v) = given
        && (1..=128).contains(&v.len())
        && v.as_bytes()
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b".-_:".contains(b))
    {
        return v.clone();
    }
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    // 32 hex digits written in place (on every proxied request: no formatting machinery).
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = [0u8; 32];
    for (i, word) in [*PREFIX, n].into_iter().enumerate() {
        for (j, nibble) in (0..16).rev().enumerate() {
            id[i * 16 + j] = HEX[((word >> (nibble * 4)) & 0xf) as usize];
        }
    }
    HeaderValue::from_bytes(&id).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_kept_when_sane_and_made_otherwise() {
        let kept = HeaderValue::from_static("req-42.a:b_c");
        assert_eq!(request_id(Some(&kept)), kept);
        for bad in ["has space", "quote\"", ""] {
            let made = request_id(Some(&HeaderValue::from_str(bad).unwrap()));
            assert_eq!(made.len(), 32, "{bad:?} replaced");
        }
        let long = HeaderValue::from_str(&"a".repeat(129)).unwrap();
        assert_eq!(request_id(Some(&long)).len(), 32);
        let (a, b) = (request_id(None), request_id(None));
        assert_ne!(a, b);
        assert!(a.as_bytes().iter().all(u8::is_ascii_hexdigit));
        let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
        assert_eq!(a[..16], b[..16], "one prefix per process");
        assert_eq!(
            u64::from_str_radix(&b[16..], 16).unwrap(),
            u64::from_str_radix(&a[16..], 16).unwrap() + 1
        );
    }
}
