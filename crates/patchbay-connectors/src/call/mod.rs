//! Calling an HTTP connection on a caller's behalf (the proxy and HTTP actions): the URL under
//! the connection's base URL, the caller's headers without hop-by-hop, `Patchbay-*` or
//! credential headers, the connection's default headers and auth, its timeout, and bounded
//! retries of idempotent requests on 429/5xx that honour `Retry-After`.

use std::borrow::Cow;
use std::time::Duration;

use bytes::Bytes;
use http::uri::PathAndQuery;
use http_body_util::BodyExt as _;
use patchbay_net::{Answer, BoxError, Destination, HttpError, SendBody};
use reqwest::Method;
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};

use patchbay_domain::spec::Auth;

use crate::{AuthError, Connectors, Material, Outgoing, apply_auth};

mod headers;
mod plan;
mod retry;
mod url;

pub use headers::{forwardable, strip};
pub use plan::{Plan, PlanCell};
pub use retry::{RetryPolicy, call_timeout};
use retry::{idempotent, retry_after, retryable};
pub use url::call_url;

/// Why a call could not be made or answered.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The request itself is wrong (a path escaping the base URL, a bad header).
    #[error("{0}")]
    Invalid(String),
    /// The connection cannot be used as it is (no base URL, unusable credentials).
    #[error("{0}")]
    Unusable(String),
    #[error(transparent)]
    Http(#[from] HttpError),
}

impl From<AuthError> for CallError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Http(h) => CallError::Http(h),
            AuthError::Rejected(m) | AuthError::Unsupported(m) => CallError::Unusable(m),
        }
    }
}

/// A request body: replayable bytes (retries are possible), or a stream sent once.
pub enum CallBody {
    Bytes(Bytes),
    Stream(SendBody),
}

impl std::fmt::Debug for CallBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallBody::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            CallBody::Stream(_) => f.write_str("Stream"),
        }
    }
}

impl CallBody {
    pub fn empty() -> Self {
        CallBody::Bytes(Bytes::new())
    }

    /// A body streamed once from `stream`.
    pub fn stream<S, E>(stream: S) -> Self
    where
        S: futures::Stream<Item = Result<Bytes, E>> + Send + 'static,
        E: Into<BoxError> + 'static,
    {
        use futures::TryStreamExt as _;
        let frames = stream.map_ok(http_body::Frame::data).map_err(Into::into);
        CallBody::Stream(http_body_util::StreamBody::new(frames).boxed_unsync())
    }

    fn replayable(&self) -> Option<&Bytes> {
        match self {
            CallBody::Bytes(b) => Some(b),
            CallBody::Stream(_) => None,
        }
    }
}

/// One outbound request before auth is applied.
#[derive(Debug)]
pub struct CallRequest {
    pub method: Method,
    /// The path under the base URL (with or without a leading `/`).
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: CallBody,
}

/// A call ready to send: where, the path and query, and every header.
struct Assembled<'m> {
    to: Cow<'m, Destination>,
    path_and_query: PathAndQuery,
    headers: HeaderMap,
}

/// A call's request once assembled, with what its attempts need.
struct Attempts<'a> {
    to: &'a Destination,
    uri: http::Uri,
    headers: HeaderMap,
    method: Method,
    body: Option<CallBody>,
    timeout: Duration,
    policy: RetryPolicy,
    /// Attempts after the first that a 429 or 5xx may bring.
    retries: u32,
}

/// The future of [`Connectors::call`]: planned calls are sent by a future of their own, small
/// and not boxed; others (and refusals) are boxed.
type CallFuture<'a, A> = futures::future::Either<
    A,
    std::pin::Pin<Box<dyn Future<Output = Result<http::Response<Answer>, CallError>> + Send + 'a>>,
>;

impl Connectors {
    /// Sends `req` through the connection: a response of any status (a 401 is for the caller
    /// to judge), after retrying idempotent requests with replayable bodies on 429/5xx.
    ///
    /// What needs no waiting (the plan's URL, headers and credentials) is done before the future
    /// is made: a proxied request's futures are moved (copied whole) as they start, so their size
    /// is paid on every request.
    pub fn call<'a>(
        &'a self,
        m: &'a Material,
        req: CallRequest,
        policy: RetryPolicy,
    ) -> CallFuture<'a, impl Future<Output = Result<http::Response<Answer>, CallError>> + Send + 'a>
    {
        use futures::future::Either;
        let timeout = call_timeout(m);
        let retries = if idempotent(&req.method) && req.body.replayable().is_some() {
            policy.retries
        } else {
            0
        };
        let CallRequest {
            method,
            path,
            query,
            headers,
            body,
        } = req;
        // Credentials go in once; every attempt sends the same URL and headers.
        let mut headers = forwardable(headers);
        let planned = match planned(m, &path, query.as_deref(), &mut headers) {
            Ok(planned) => planned,
            Err(e) => return Either::Right(Box::pin(std::future::ready(Err(e)))),
        };
        let body = Some(body);
        match planned {
            Some((to, path_and_query)) => Either::Left(self.attempts(Attempts {
                to,
                uri: http::Uri::from(path_and_query),
                headers,
                method,
                body,
                timeout,
                policy,
                retries,
            })),
            None => Either::Right(Box::pin(async move {
                let Assembled {
                    to,
                    path_and_query,
                    mut headers,
                } = self
                    .assemble_each(m, &path, query.as_deref(), headers)
                    .await?;
                let mut body = body;
                // A signature covers the method, URL and body: made once they are known.
                if let (Auth::AwsSigv4(a), Some(b)) = (&m.auth, body.take()) {
                    let signed = crate::sigv4::sign_call(
                        m,
                        a,
                        &method,
                        &to,
                        &path_and_query,
                        &mut headers,
                        b,
                    )
                    .await?;
                    body = Some(signed);
                }
                self.attempts(Attempts {
                    to: &to,
                    uri: http::Uri::from(path_and_query),
                    headers,
                    method,
                    body,
                    timeout,
                    policy,
                    retries,
                })
                .await
            })),
        }
    }

    /// Sends a call's request, again after a 429 or 5xx as long as its retries last. A block,
    /// not an `async fn`, which would keep its argument and a copy of it.
    #[expect(
        clippy::manual_async_fn,
        reason = "an async fn's future holds its arguments twice; this one holds them once"
    )]
    fn attempts<'a>(
        &'a self,
        mut a: Attempts<'a>,
    ) -> impl Future<Output = Result<http::Response<Answer>, CallError>> + Send + 'a {
        async move {
            let mut attempt = 0;
            loop {
                let wait = {
                    let body = match a.body.as_ref().and_then(CallBody::replayable) {
                        Some(b) => full(b.clone()),
                        None => match a.body.take() {
                            Some(CallBody::Stream(s)) => s,
                            _ => full(Bytes::new()),
                        },
                    };
                    // The last attempt takes the headers; earlier ones send a copy.
                    let headers = if attempt >= a.retries {
                        std::mem::take(&mut a.headers)
                    } else {
                        a.headers.clone()
                    };
                    let resp = self
                        .http()
                        .upstream()
                        .send_to(
                            a.to,
                            outgoing(a.method.clone(), a.uri.clone(), headers, body),
                            a.timeout,
                        )
                        .await?;
                    if attempt >= a.retries || !retryable(resp.status()) {
                        return Ok(resp);
                    }
                    let backoff = a.policy.backoff * 2u32.saturating_pow(attempt);
                    match retry_after(resp.headers()) {
                        Some(w) if w > a.policy.max_wait => return Ok(resp),
                        Some(w) => w,
                        None => backoff + jitter(backoff),
                    }
                };
                attempt += 1;
                tokio::time::sleep(wait).await;
            }
        }
    }

    /// The request [`Self::call`] sends for a call to `path` and `query` with the caller's
    /// `headers`: the material's plan when it has one, otherwise the URL joined, the defaults
    /// and the credentials applied one by one. (The tests hold both ways to the same request.)
    #[cfg(test)]
    async fn assemble<'m>(
        &self,
        m: &'m Material,
        path: &str,
        query: Option<&str>,
        headers: HeaderMap,
    ) -> Result<Assembled<'m>, CallError> {
        let mut headers = forwardable(headers);
        if let Some((to, path_and_query)) = planned(m, path, query, &mut headers)? {
            return Ok(Assembled {
                to: Cow::Borrowed(to),
                path_and_query,
                headers,
            });
        }
        // Boxed: the general path is the exception, and its future is large.
        Box::pin(self.assemble_each(m, path, query, headers)).await
    }

    /// [`Self::assemble`] without a plan.
    async fn assemble_each<'m>(
        &self,
        m: &'m Material,
        path: &str,
        query: Option<&str>,
        mut headers: HeaderMap,
    ) -> Result<Assembled<'m>, CallError> {
        let url = call_url(m, path, query)?;
        add_defaults(&mut headers, m.default_headers());
        let mut out = Outgoing { url, headers };
        // A signature is made per request, once its method and body are known (`call`).
        if !matches!(m.auth, Auth::AwsSigv4(_)) {
            Box::pin(apply_auth(self.http(), m, &mut out)).await?;
        }
        let uri = http::Uri::try_from(out.url.as_str())
            .map_err(|_| CallError::Invalid("the URL cannot be sent".into()))?;
        Ok(Assembled {
            to: Cow::Owned(Destination::of(&uri)?),
            path_and_query: uri
                .path_and_query()
                .cloned()
                .unwrap_or_else(|| PathAndQuery::from_static("/")),
            headers: out.headers,
        })
    }
}

/// Where a call to `path` and `query` goes and its path and query, by the material's plan,
/// with the plan's headers and credentials added to `headers`; `None` when the call cannot be
/// planned (the general path assembles it).
fn planned<'m>(
    m: &'m Material,
    path: &str,
    query: Option<&str>,
    headers: &mut HeaderMap,
) -> Result<Option<(&'m Destination, PathAndQuery)>, CallError> {
    let Some(plan) = m.plan() else {
        return Ok(None);
    };
    let Some(path_and_query) = plan.path_and_query(path, query)? else {
        return Ok(None);
    };
    plan.fill(headers)?;
    Ok(Some((&plan.to, path_and_query)))
}

/// One attempt's request.
pub(crate) fn outgoing(
    method: Method,
    uri: http::Uri,
    headers: HeaderMap,
    body: SendBody,
) -> http::Request<SendBody> {
    let mut request = http::Request::new(body);
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    request
}

/// Adds the connection's default headers the caller did not set (the caller's own value wins).
fn add_defaults(
    headers: &mut HeaderMap,
    defaults: impl Iterator<Item = (HeaderName, HeaderValue)>,
) {
    for (name, value) in defaults {
        if let header::Entry::Vacant(slot) = headers.entry(name) {
            slot.insert(value);
        }
    }
}

/// A body of `b`, sent whole.
pub(crate) fn full(b: Bytes) -> SendBody {
    if b.is_empty() {
        // `Empty` has no size: boxing it allocates nothing.
        return http_body_util::Empty::new()
            .map_err(|never| match never {})
            .boxed_unsync();
    }
    http_body_util::Full::new(b)
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Up to a quarter of `d`, at random.
fn jitter(d: Duration) -> Duration {
    let quarter = u64::try_from(d.as_millis() / 4).unwrap_or(0);
    if quarter == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis(rand::random_range(0..=quarter))
}

#[cfg(test)]
mod tests;
