//! Calling an HTTP connection on a caller's behalf (the proxy and HTTP actions): the URL under
//! the connection's base URL, the caller's headers without hop-by-hop, `Patchbay-*` or
//! credential headers, the connection's default headers and auth, its timeout, and bounded
//! retries of idempotent requests on 429/5xx that honour `Retry-After`.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt as _;
use patchbay_net::{Answer, BoxError, HttpError, SendBody};
use reqwest::header::{self, HeaderMap, HeaderName};
use reqwest::{Method, StatusCode};

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

/// Headers that describe one hop, never forwarded (RFC 9110 §7.6.1), and credentials of the
/// caller's own that must not reach the upstream.
const DROPPED: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "authorization",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
];

/// Whether `name` is never forwarded in either direction.
pub fn hop_by_hop(name: &HeaderName, connection_listed: &[String]) -> bool {
    let n = name.as_str();
    DROPPED.contains(&n) || n.starts_with("patchbay-") || connection_listed.iter().any(|l| l == n)
}

/// The header names a `Connection` header lists (they are hop-by-hop too).
pub fn connection_listed(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Keeps the end-to-end headers of `headers`.
pub fn forwardable(headers: HeaderMap) -> HeaderMap {
    strip(headers, |_| false)
}

/// Removes the headers that are never forwarded from `headers`, except those `keep` names.
pub fn strip(mut headers: HeaderMap, keep: impl Fn(&HeaderName) -> bool) -> HeaderMap {
    let listed = connection_listed(&headers);
    let dropped: Vec<HeaderName> = headers
        .keys()
        .filter(|n| hop_by_hop(n, &listed) && !keep(n))
        .cloned()
        .collect();
    for name in dropped {
        headers.remove(name);
    }
    headers
}

/// `base_url` + `path` + `query`; a path that would climb out of the base URL is refused.
pub fn call_url(m: &Material, path: &str, query: Option<&str>) -> Result<url::Url, CallError> {
    let base = match m.parsed_base.get() {
        Some(u) => u,
        None => {
            let raw = m.config_str("base_url").ok_or_else(|| {
                CallError::Unusable("the connection has no config.base_url".into())
            })?;
            let parsed = url::Url::parse(raw)
                .map_err(|e| CallError::Unusable(format!("config.base_url: {e}")))?;
            m.parsed_base.get_or_init(|| parsed)
        }
    };
    let trimmed = path.trim_start_matches('/');
    let decoded = percent_encoding::percent_decode_str(trimmed).decode_utf8_lossy();
    if decoded
        .split(['/', '\\'])
        .any(|seg| seg == ".." || seg == ".")
        || decoded.contains('\0')
    {
        return Err(CallError::Invalid(
            "the path may not contain '.' or '..' segments".into(),
        ));
    }
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
        let n = |k: &str, d: u64| {
            m.config
                .get(k)
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(d)
        };
        Self {
            retries: u32::try_from(n("retries", 2).min(10)).unwrap_or(2),
            backoff: Duration::from_millis(n("backoff_ms", 250).min(60_000)),
            max_wait: Duration::from_secs(30),
        }
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
    Duration::from_millis(
        m.config
            .get("timeout_ms")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(30_000)
            .clamp(1, 600_000),
    )
}

impl Connectors {
    /// Sends `req` through the connection: a response of any status (a 401 is for the caller
    /// to judge), after retrying idempotent requests with replayable bodies on 429/5xx.
    pub async fn call(
        &self,
        m: &Material,
        req: CallRequest,
        policy: RetryPolicy,
    ) -> Result<http::Response<Answer>, CallError> {
        let url = call_url(m, &req.path, req.query.as_deref())?;
        let timeout = call_timeout(m);
        let mut headers = forwardable(req.headers);
        // The caller's own value of a header wins over the connection's default.
        for (name, value) in m.default_headers() {
            if !headers.contains_key(&name) {
                headers.insert(name, value);
            }
        }
        let retries = if idempotent(&req.method) && req.body.replayable().is_some() {
            policy.retries
        } else {
            0
        };
        // Credentials go in once; every attempt sends the same URL and headers.
        let mut out = Outgoing { url, headers };
        apply_auth(self.http(), m, &mut out).await?;
        let uri = http::Uri::try_from(out.url.as_str())
            .map_err(|_| CallError::Invalid("the URL cannot be sent".into()))?;
        let mut headers = out.headers;
        let mut body = Some(req.body);
        let mut attempt = 0;
        loop {
            let this_body = match body.as_ref().and_then(CallBody::replayable) {
                Some(b) => full(b.clone()),
                None => match body.take() {
                    Some(CallBody::Stream(s)) => s,
                    _ => full(Bytes::new()),
                },
            };
            // The last attempt takes the headers; earlier ones send a copy.
            let this_headers = if attempt >= retries {
                std::mem::take(&mut headers)
            } else {
                headers.clone()
            };
            let mut request = http::Request::new(this_body);
            *request.method_mut() = req.method.clone();
            *request.uri_mut() = uri.clone();
            *request.headers_mut() = this_headers;
            let resp = self.http().upstream().send(request, timeout).await?;
            if attempt >= retries || !retryable(resp.status()) {
                return Ok(resp);
            }
            let backoff = policy.backoff * 2u32.saturating_pow(attempt);
            let wait = match retry_after(resp.headers()) {
                Some(w) if w > policy.max_wait => return Ok(resp),
                Some(w) => w,
                None => backoff + jitter(backoff),
            };
            drop(resp);
            attempt += 1;
            tokio::time::sleep(wait).await;
        }
    }
}

fn full(b: Bytes) -> SendBody {
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
        Material {
            kind: patchbay_domain::Kind::Http,
            provider: "custom".into(),
            auth: Default::default(),
            config: serde_json::json!({"base_url": base})
                .as_object()
                .unwrap()
                .clone(),
            secrets: Default::default(),
            verify: None,
            parsed_base: Default::default(),
        }
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

    #[test]
    fn hop_by_hop_and_patchbay_headers_are_dropped() {
        let mut h = HeaderMap::new();
        h.insert("authorization", "Bearer pb_secret".parse().unwrap());
        h.insert("patchbay-connection", "con_1".parse().unwrap());
        h.insert("patchbay-caller", "wf-1".parse().unwrap());
        h.insert("connection", "close, x-private".parse().unwrap());
        h.insert("x-private", "1".parse().unwrap());
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        h.insert("te", "trailers".parse().unwrap());
        h.insert("host", "proxy.local".parse().unwrap());
        h.insert("accept", "application/json".parse().unwrap());
        h.append("x-multi", "a".parse().unwrap());
        h.append("x-multi", "b".parse().unwrap());
        let out = forwardable(h);
        let mut names: Vec<&str> = out.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["accept", "x-multi"]);
        assert_eq!(out.get_all("x-multi").iter().count(), 2);
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
