//! Calling an HTTP connection on a caller's behalf (the proxy and HTTP actions): the URL under
//! the connection's base URL, the caller's headers without hop-by-hop, `Patchbay-*` or
//! credential headers, the connection's default headers and auth, its timeout, and bounded
//! retries of idempotent requests on 429/5xx that honour `Retry-After`.

use std::borrow::Cow;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use http::uri::PathAndQuery;
use http_body_util::BodyExt as _;
use patchbay_net::{Answer, BoxError, Destination, HttpError, SendBody};
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret as _;

use crate::auth::{Inject, credentials};
use crate::{AuthError, Connectors, Material, Outgoing, apply_auth};

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

/// Whether `name` is never forwarded in either direction: it describes one hop (RFC 9110
/// §7.6.1), is a credential of the caller's own that must not reach the upstream, or is
/// Patchbay's own. (Names the `Connection` header lists are hop-by-hop too: see [`strip`].)
fn hop_by_hop(name: &HeaderName) -> bool {
    let n = name.as_str();
    matches!(
        n,
        "connection"
            | "keep-alive"
            | "close"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | "content-length"
            | "authorization"
            | "forwarded"
            | "x-forwarded-for"
            | "x-forwarded-host"
            | "x-forwarded-proto"
            | "x-real-ip"
    ) || n.starts_with("patchbay-")
}

/// Whether a `Connection` option is `keep-alive` or `close`, which [`hop_by_hop`] names already.
fn usual_option(option: &[u8]) -> bool {
    option.eq_ignore_ascii_case(b"keep-alive") || option.eq_ignore_ascii_case(b"close")
}

/// The header names the `Connection` header lists beyond `keep-alive` and `close`: they are
/// hop-by-hop too. A value that is one of those two alone (the usual answer from an upstream)
/// is not split.
fn connection_listed(headers: &HeaderMap) -> smallvec::SmallVec<[&str; 4]> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter(|v| !usual_option(v.as_bytes().trim_ascii()))
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty() && !usual_option(s.as_bytes()))
        .collect()
}

/// Keeps the end-to-end headers of `headers`.
pub fn forwardable(headers: HeaderMap) -> HeaderMap {
    strip(headers, |_| false)
}

/// Room a forwarded request's headers keep for what is added to them (credentials, the user
/// agent, the host).
const ADDED: usize = 4;

/// Removes the headers that are never forwarded from `headers`, except those `keep` names.
pub fn strip(mut headers: HeaderMap, keep: impl Fn(&HeaderName) -> bool) -> HeaderMap {
    // The positions of the names that go, in the map's order (which its iterators share).
    let mut gone: smallvec::SmallVec<[usize; 8]> = smallvec::SmallVec::new();
    let mut lists = false;
    for (i, name) in headers.keys().enumerate() {
        lists |= name == header::CONNECTION;
        if hop_by_hop(name) && !keep(name) {
            gone.push(i);
        }
    }
    // A `Connection` header rarely lists more than `keep-alive` or `close`: only then are the
    // names read again, for those it lists.
    if lists {
        let listed = connection_listed(&headers);
        if !listed.is_empty() {
            for (i, name) in headers.keys().enumerate() {
                if !gone.contains(&i)
                    && !keep(name)
                    && listed.iter().any(|l| l.eq_ignore_ascii_case(name.as_str()))
                {
                    gone.push(i);
                }
            }
            gone.sort_unstable();
        }
    }
    let names = headers.keys_len();
    if gone.len() == names {
        // Nothing stays (a proxied request often carries only its host and credentials): the
        // map is emptied and keeps its room.
        headers.clear();
        return headers;
    }
    if gone.len() * 2 <= names {
        let doomed: smallvec::SmallVec<[HeaderName; 8]> = headers
            .keys()
            .enumerate()
            .filter(|(i, _)| gone.contains(i))
            .map(|(_, n)| n.clone())
            .collect();
        for name in doomed {
            headers.remove(name);
        }
        return headers;
    }
    // Most names go: what stays is moved to a new map, which costs less than removing the rest
    // one by one.
    let mut kept = HeaderMap::with_capacity(names - gone.len() + ADDED);
    let mut gone = gone.into_iter().peekable();
    let mut position = 0;
    let mut stays = false;
    let mut current = None;
    for (name, value) in headers {
        if let Some(name) = name {
            stays = gone.next_if_eq(&position).is_none();
            position += 1;
            current = Some(name);
        }
        if stays && let Some(name) = &current {
            kept.append(name, value);
        }
    }
    kept
}

/// `base_url` + `path` + `query`; a path that would climb out of the base URL is refused.
pub fn call_url(m: &Material, path: &str, query: Option<&str>) -> Result<url::Url, CallError> {
    let base = base_url(m)?;
    let trimmed = path.trim_start_matches('/');
    check_path(trimmed)?;
    let mut url = base.clone();
    if !trimmed.is_empty() {
        url.set_path(&format!(
            "{}/{}",
            base.path().trim_end_matches('/'),
            trimmed
        ));
    }
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        let joined = match base.query() {
            Some(own) if !own.is_empty() => format!("{own}&{q}"),
            _ => q.to_owned(),
        };
        url.set_query(Some(&joined));
    }
    Ok(url)
}

fn base_url(m: &Material) -> Result<url::Url, CallError> {
    let raw = m
        .config_str("base_url")
        .ok_or_else(|| CallError::Unusable("the connection has no config.base_url".into()))?;
    url::Url::parse(raw).map_err(|e| CallError::Unusable(format!("config.base_url: {e}")))
}

/// Refuses a path (under the base URL, without its leading `/`) with `.` or `..` segments,
/// encoded or not, or a NUL.
fn check_path(trimmed: &str) -> Result<(), CallError> {
    let decoded = if trimmed.contains('%') {
        percent_encoding::percent_decode_str(trimmed).decode_utf8_lossy()
    } else {
        Cow::Borrowed(trimmed)
    };
    if decoded
        .split(['/', '\\'])
        .any(|seg| seg == ".." || seg == ".")
        || decoded.contains('\0')
    {
        return Err(CallError::Invalid(
            "the path may not contain '.' or '..' segments".into(),
        ));
    }
    Ok(())
}

/// Path characters a URL keeps as they are (RFC 3986 `pchar` and `/`, `%` of an escape).
fn path_safe(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/%".contains(&b)
}

/// Query characters a URL keeps as they are.
fn query_safe(b: u8) -> bool {
    b != b'\'' && (path_safe(b) || b == b'?')
}

/// What every call through a connection shares, worked out the first time the connection is
/// used and kept with its material: where requests go, the base path and query, the default
/// headers, the credentials (for the auth types that need no request of their own), the
/// timeout and the retries. A connection whose calls cannot be planned (no or a bad base URL,
/// credentials missing or fetched per call) takes the general path, which says what is wrong;
/// so does a request whose path or query a URL would have to encode.
#[derive(Debug)]
pub struct Plan {
    to: Destination,
    /// The base URL's path, as a URL serialises it.
    base_path: String,
    base_query: Option<String>,
    defaults: Vec<(HeaderName, HeaderValue)>,
    /// Credentials carried in headers and cookies, in order.
    headers: Vec<Inject>,
    /// Credentials carried in the query, encoded.
    query: Option<secrecy::SecretString>,
    timeout: Duration,
    policy: RetryPolicy,
}

/// A material's plan and the redactor of its answers, each made on first use.
#[derive(Default)]
pub struct PlanCell(OnceLock<Option<Plan>>, OnceLock<crate::redact::Redactor>);

impl std::fmt::Debug for PlanCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PlanCell")
    }
}

impl Material {
    /// How calls through this material are made, if they can be planned.
    fn plan(&self) -> Option<&Plan> {
        self.plan.0.get_or_init(|| Plan::of(self)).as_ref()
    }

    /// What keeps this material's credential values out of the answers relayed to callers.
    pub fn redactor(&self) -> &crate::redact::Redactor {
        self.plan
            .1
            .get_or_init(|| crate::redact::Redactor::of(self))
    }
}

impl Plan {
    fn of(m: &Material) -> Option<Self> {
        let base = base_url(m).ok()?;
        // An empty query or a fragment the general path keeps (or refuses) as they are.
        if base.query() == Some("") || base.fragment().is_some() {
            return None;
        }
        let uri = http::Uri::try_from(base.as_str()).ok()?;
        let to = Destination::of(&uri).ok()?;
        let mut headers = Vec::new();
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        let mut queried = false;
        for inject in credentials(m).ok()?? {
            match inject {
                Inject::Query(name, value) => {
                    query.append_pair(&name, value.expose_secret());
                    queried = true;
                }
                other => headers.push(other),
            }
        }
        Some(Self {
            to,
            base_path: base.path().to_owned(),
            base_query: base.query().map(str::to_owned),
            defaults: m.default_headers().collect(),
            headers,
            query: queried.then(|| query.finish().into()),
            timeout: timeout_of(m),
            policy: policy_of(m),
        })
    }

    /// The path and query of a call to `path` with `query`; `None` when they hold characters
    /// a URL would encode (the general path does that).
    fn path_and_query(
        &self,
        path: &str,
        query: Option<&str>,
    ) -> Result<Option<PathAndQuery>, CallError> {
        let trimmed = path.trim_start_matches('/');
        check_path(trimmed)?;
        let query = query.filter(|q| !q.is_empty());
        if !trimmed.bytes().all(path_safe) || !query.unwrap_or("").bytes().all(query_safe) {
            return Ok(None);
        }
        let credentials = self.query.as_ref().map(|q| q.expose_secret());
        let parts = [self.base_query.as_deref(), query, credentials];
        let mut out = String::with_capacity(
            self.base_path.len()
                + 1
                + trimmed.len()
                + parts.iter().flatten().map(|p| p.len() + 1).sum::<usize>(),
        );
        if trimmed.is_empty() {
            out.push_str(&self.base_path);
        } else {
            out.push_str(self.base_path.trim_end_matches('/'));
            out.push('/');
            out.push_str(trimmed);
        }
        let mut separator = '?';
        for part in parts.into_iter().flatten() {
            out.push(separator);
            out.push_str(part);
            separator = '&';
        }
        PathAndQuery::from_maybe_shared(Bytes::from(out))
            .map(Some)
            .map_err(|_| CallError::Invalid("the URL cannot be sent".into()))
    }

    /// Adds the default headers the caller did not set, then the credentials.
    fn fill(&self, headers: &mut HeaderMap) -> Result<(), CallError> {
        add_defaults(headers, self.defaults.iter().cloned());
        for inject in &self.headers {
            inject.to_headers(headers)?;
        }
        Ok(())
    }
}

/// How a connection retries: `config.retries` extra attempts (default 2), `config.backoff_ms`
/// (default 250) doubled each time, `Retry-After` honoured up to `max_wait`.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub retries: u32,
    pub backoff: Duration,
    pub max_wait: Duration,
}

impl RetryPolicy {
    pub fn of(m: &Material) -> Self {
        m.plan().map_or_else(|| policy_of(m), |p| p.policy)
    }
}

fn policy_of(m: &Material) -> RetryPolicy {
    let n = |k: &str, d: u64| {
        m.config
            .get(k)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(d)
    };
    RetryPolicy {
        retries: u32::try_from(n("retries", 2).min(10)).unwrap_or(2),
        backoff: Duration::from_millis(n("backoff_ms", 250).min(60_000)),
        max_wait: Duration::from_secs(30),
    }
}

fn idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

fn retryable(s: StatusCode) -> bool {
    s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error()
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

/// The connection's timeout (`config.timeout_ms`, default 30 s).
pub fn call_timeout(m: &Material) -> Duration {
    m.plan().map_or_else(|| timeout_of(m), |p| p.timeout)
}

fn timeout_of(m: &Material) -> Duration {
    Duration::from_millis(
        m.config
            .get("timeout_ms")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(30_000)
            .clamp(1, 600_000),
    )
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
                    headers,
                } = self
                    .assemble_each(m, &path, query.as_deref(), headers)
                    .await?;
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
        Box::pin(apply_auth(self.http(), m, &mut out)).await?;
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
fn outgoing(
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

fn full(b: Bytes) -> SendBody {
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
mod tests {
    use super::*;

    fn material(base: &str) -> Material {
        crate::test_material(
            serde_json::json!({"base_url": base}),
            serde_json::json!({}),
            &[],
        )
    }

    #[test]
    fn urls_stay_under_the_base() {
        let m = material("https://api.example.com/v2/");
        assert_eq!(
            call_url(&m, "/users/1", Some("a=1&b=2")).unwrap().as_str(),
            "https://api.example.com/v2/users/1?a=1&b=2"
        );
        assert_eq!(
            call_url(&m, "", None).unwrap().as_str(),
            "https://api.example.com/v2/"
        );
        assert_eq!(
            call_url(&m, "files/a%3Fb%2Fc", Some("x=%26"))
                .unwrap()
                .as_str(),
            "https://api.example.com/v2/files/a%3Fb%2Fc?x=%26"
        );
        let keyed = material("https://api.example.com/v1?key=k1");
        assert_eq!(
            call_url(&keyed, "/items", Some("page=2")).unwrap().as_str(),
            "https://api.example.com/v1/items?key=k1&page=2"
        );
        for bad in [
            "../admin",
            "a/../../admin",
            "%2e%2e/admin",
            "a/%2E%2E/b",
            "./x",
            "a\\..\\b",
        ] {
            assert!(
                matches!(call_url(&m, bad, None), Err(CallError::Invalid(_))),
                "{bad}"
            );
        }
    }

    fn with_auth(base: &str, auth: serde_json::Value, secrets: &[(&str, &str)]) -> Material {
        let config = serde_json::json!({
            "base_url": base,
            "headers": {"Accept": "application/json", "X-Team": "core"},
        });
        crate::test_material(config, auth, secrets)
    }

    /// What a call sends, comparable: where to, the path and query, and every header.
    fn sent(a: Assembled<'_>) -> (Destination, String, Vec<(String, String)>) {
        let mut headers: Vec<(String, String)> = a
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        headers.sort();
        (a.to.into_owned(), a.path_and_query.to_string(), headers)
    }

    /// The planned path sends exactly what the general path sends, for every auth type and
    /// the paths, queries and caller headers a proxy sees.
    #[tokio::test]
    async fn a_planned_call_sends_what_the_general_path_sends() {
        let gate = patchbay_net::Gate::new(&Default::default()).unwrap();
        let c = Connectors::new(gate, Default::default()).unwrap();
        let materials = [
            with_auth(
                "https://api.example.com/v2/",
                serde_json::json!({"type": "none"}),
                &[],
            ),
            with_auth(
                "http://127.0.0.1:8080",
                serde_json::json!({"type": "bearer"}),
                &[("token", "tok-1")],
            ),
            with_auth(
                "https://api.example.com/v1?key=k1",
                serde_json::json!({"type": "api_key", "in": "query", "name": "api key"}),
                &[("api_key", "a&b=c d")],
            ),
            with_auth(
                "https://api.example.com",
                serde_json::json!({"type": "api_key", "in": "cookie", "name": "sid"}),
                &[("api_key", "sid-secret")],
            ),
            with_auth(
                "https://api.example.com:8443/x",
                serde_json::json!({"type": "api_key", "name": "X-Key", "prefix": "K "}),
                &[("api_key", "key-secret")],
            ),
            with_auth(
                "http://[::1]:9000/",
                serde_json::json!({"type": "basic", "username": "ann"}),
                &[("password", "pass:word")],
            ),
            with_auth(
                "https://api.example.com",
                serde_json::json!({"type": "custom", "inject": [
                    {"in": "header", "name": "X-A", "template": "a-${secrets.one}"},
                    {"in": "query", "name": "q1", "template": "${secrets.two}"},
                    {"in": "cookie", "name": "c1", "template": "${secrets.one}"},
                    {"in": "query", "name": "q2", "template": "x/y"},
                ]}),
                &[("one", "one-1"), ("two", "two-2?")],
            ),
            with_auth(
                "https://api.example.com",
                serde_json::json!({"type": "oauth2"}),
                &[("access_token", "at-1")],
            ),
            with_auth(
                "https://api.example.com",
                serde_json::json!({"type": "oauth2_client_credentials"}),
                &[("access_token", "at-2")],
            ),
        ];
        type Caller<'a> = &'a [(&'a str, &'a str)];
        let requests: [(&str, Option<&str>, Caller<'_>); 7] = [
            ("/user", None, &[]),
            ("", None, &[("accept", "text/plain")]),
            ("/", Some("a=1&b=2"), &[("cookie", "theirs=1")]),
            ("repos/o/r/issues", Some(""), &[("x-team", "mine")]),
            ("files/a%3Fb%2Fc", Some("x=%26&y=:@/?"), &[]),
            ("/with space/\u{e9}", Some("q=it's"), &[]),
            (
                "a//b;c=d",
                Some("f[]=1"),
                &[("connection", "x-gone"), ("x-gone", "1")],
            ),
        ];
        let mut planned = 0;
        for m in &materials {
            let plan = format!("{:?}", m.plan().expect("planned"));
            for secret in m.secrets.values() {
                assert!(!plan.contains(secret.expose_secret()), "{plan}");
            }
            for (path, query, caller) in requests {
                let headers = header_map(caller);
                let plan = m.plan().unwrap();
                if plan.path_and_query(path, query).unwrap().is_some() {
                    planned += 1;
                }
                let fast = c.assemble(m, path, query, headers.clone()).await.unwrap();
                let each = c
                    .assemble_each(m, path, query, forwardable(headers))
                    .await
                    .unwrap();
                assert_eq!(sent(fast), sent(each), "{:?} {path} {query:?}", m.auth);
            }
        }
        // Most requests take the planned path; those needing encoding do not.
        assert_eq!(planned, materials.len() * 5);
        for bad in ["../admin", "a/%2e%2E/b"] {
            assert!(matches!(
                c.assemble(&materials[1], bad, None, HeaderMap::new()).await,
                Err(CallError::Invalid(_))
            ));
        }
    }

    #[test]
    fn connections_that_cannot_be_planned_take_the_general_path() {
        for m in [
            with_auth(
                "https://api.example.com",
                serde_json::json!({"type": "bearer"}),
                &[],
            ),
            with_auth("not a url", serde_json::json!({"type": "none"}), &[]),
            with_auth(
                "ftp://files.example.com",
                serde_json::json!({"type": "none"}),
                &[],
            ),
            with_auth(
                "https://api.example.com/?",
                serde_json::json!({"type": "none"}),
                &[],
            ),
            with_auth(
                "https://api.example.com",
                serde_json::json!({"type": "oauth2_client_credentials"}),
                &[],
            ),
            with_auth(
                "https://api.example.com",
                serde_json::json!({"type": "aws_sigv4"}),
                &[],
            ),
        ] {
            assert!(m.plan().is_none(), "{:?} {:?}", m.config, m.auth);
        }
    }

    /// A header map of `pairs`, in order (a repeated name keeps every value).
    fn header_map(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (k.parse::<HeaderName>().unwrap(), v.parse().unwrap()))
            .collect()
    }

    /// The names in `m`, sorted.
    fn sorted_names(m: &HeaderMap) -> Vec<&str> {
        let mut names: Vec<&str> = m.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        names
    }

    #[test]
    fn hop_by_hop_and_patchbay_headers_are_dropped() {
        let h = header_map(&[
            ("authorization", "Bearer pb_secret"),
            ("patchbay-connection", "con_1"),
            ("patchbay-caller", "wf-1"),
            ("connection", "close, x-private"),
            ("x-private", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("host", "proxy.local"),
            ("accept", "application/json"),
            ("x-multi", "a"),
            ("x-multi", "b"),
        ]);
        let out = forwardable(h);
        assert_eq!(sorted_names(&out), ["accept", "x-multi"]);
        assert_eq!(out.get_all("x-multi").iter().count(), 2);
        // Nothing to keep: the map comes back empty, and takes new headers.
        let h = header_map(&[
            ("host", "proxy.local"),
            ("authorization", "Bearer pb_secret"),
            ("patchbay-connection", "con_1"),
        ]);
        let mut out = forwardable(h);
        assert!(out.is_empty());
        out.insert("authorization", "Bearer upstream".parse().unwrap());
        assert_eq!(out.len(), 1);
        assert_eq!(out["authorization"], "Bearer upstream");
    }

    #[test]
    fn headers_that_mostly_stay_keep_every_value_in_order() {
        // Few names go: they are removed in place (most going is the test above).
        let h = header_map(&[
            ("accept", "application/json"),
            ("x-multi", "a"),
            ("x-multi", "b"),
            ("host", "proxy.local"),
            ("user-agent", "client/1"),
            ("x-request-id", "r-1"),
        ]);
        let out = strip(h, |n| n == header::USER_AGENT);
        assert_eq!(
            sorted_names(&out),
            ["accept", "user-agent", "x-multi", "x-request-id"]
        );
        let multi: Vec<_> = out.get_all("x-multi").iter().collect();
        assert_eq!(multi, ["a", "b"]);
        // A name the Connection header lists goes, whatever its case there.
        let h = header_map(&[
            ("connection", "X-Trace , keep-alive"),
            ("x-trace", "1"),
            ("content-type", "text/plain"),
            ("content-length", "4"),
            ("date", "today"),
        ]);
        let out = strip(h, |n| n == header::CONTENT_LENGTH);
        assert_eq!(
            sorted_names(&out),
            ["content-length", "content-type", "date"]
        );
        // Listing only the usual options drops no other name; their own headers still go.
        let h = header_map(&[
            ("connection", "Keep-Alive, CLOSE"),
            ("keep-alive", "timeout=5"),
            ("close", "1"),
            ("x-trace", "1"),
            ("content-type", "text/plain"),
            ("date", "today"),
            ("server", "upstream"),
        ]);
        let out = strip(h, |_| false);
        assert_eq!(
            sorted_names(&out),
            ["content-type", "date", "server", "x-trace"]
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(header::RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        let soon = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(20));
        h.insert(header::RETRY_AFTER, soon.parse().unwrap());
        let d = retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(15) && d <= Duration::from_secs(20),
            "{d:?}"
        );
        h.insert(header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }
}
