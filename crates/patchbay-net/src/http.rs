//! HTTP through the gate: a reqwest client whose every name resolution goes through
//! [`Gate::resolve`], with IP-literal URLs checked before sending (reqwest does not resolve
//! those), no automatic redirects and no environment proxies.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::NetError;
use crate::gate::Gate;
use crate::upstream::UpstreamClient;

/// Remembers the gate's last refusal during one exchange, for libraries (MCP) that flatten the
/// errors of the client they are given.
#[derive(Debug, Clone, Default)]
pub struct Refusals(Arc<std::sync::Mutex<Option<NetError>>>);

impl Refusals {
    pub(crate) fn record(&self, e: &NetError) {
        if e.is_blocked() {
            *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.clone());
        }
    }

    /// The last refusal, if any.
    pub fn last(&self) -> Option<NetError> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

struct GateResolver(Gate, Refusals);

impl Resolve for GateResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let gate = self.0.clone();
        let refusals = self.1.clone();
        Box::pin(async move {
            let ips = gate.resolve(name.as_str()).await.map_err(|e| {
                refusals.record(&e);
                Box::new(e) as Box<dyn std::error::Error + Send + Sync>
            })?;
            let addrs: Addrs = Box::new(
                ips.into_iter()
                    .map(|ip| SocketAddr::new(ip, 0))
                    .collect::<Vec<_>>()
                    .into_iter(),
            );
            Ok(addrs)
        })
    }
}

/// Why an HTTP exchange failed. Messages never carry the URL (its query may hold a key).
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error(transparent)]
    Net(#[from] NetError),
    #[error("timed out")]
    Timeout,
    #[error("connection refused or unreachable: {0}")]
    Connect(String),
    #[error("TLS failure: {0}")]
    Tls(String),
    #[error("invalid URL: {0}")]
    Url(String),
    #[error("{0}")]
    Other(String),
}

/// A gated HTTP client; cheap to clone.
#[derive(Debug, Clone)]
pub struct GatedHttp {
    client: reqwest::Client,
    following: reqwest::Client,
    upstream: UpstreamClient,
    gate: Gate,
    refusals: Refusals,
    timeout: Duration,
}

const MAX_REDIRECTS: usize = 5;

fn builder(gate: &Gate, refusals: &Refusals, timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GateResolver(gate.clone(), refusals.clone())))
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("patchbay/", env!("CARGO_PKG_VERSION")))
}

/// Follows a bounded number of redirects, each hop judged by the gate: IP literals here, names
/// when they are resolved. reqwest drops credentials on a redirect to another host.
fn checked_redirects(gate: Gate, refusals: Refusals) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= MAX_REDIRECTS {
            return attempt.error(HttpError::Other(format!(
                "more than {MAX_REDIRECTS} redirects"
            )));
        }
        if !matches!(attempt.url().scheme(), "http" | "https") {
            return attempt.error(HttpError::Url("a redirect to a non-HTTP URL".into()));
        }
        let literal = match attempt.url().host() {
            Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
            _ => None,
        };
        match literal.map(|ip| gate.check(&ip.to_string(), ip)) {
            Some(Err(e)) => {
                refusals.record(&e);
                attempt.error(e)
            }
            _ => attempt.follow(),
        }
    })
}

impl GatedHttp {
    pub fn new(gate: Gate, timeout: Duration) -> Result<Self, String> {
        let refusals = Refusals::default();
        let upstream = UpstreamClient::new(gate.clone(), refusals.clone(), timeout)?;
        Self::with_refusals(gate, timeout, refusals, upstream)
    }

    fn with_refusals(
        gate: Gate,
        timeout: Duration,
        refusals: Refusals,
        upstream: UpstreamClient,
    ) -> Result<Self, String> {
        let client = builder(&gate, &refusals, timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        let following = builder(&gate, &refusals, timeout)
            .redirect(checked_redirects(gate.clone(), refusals.clone()))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            client,
            following,
            upstream,
            gate,
            refusals,
            timeout,
        })
    }

    /// A fresh reqwest client pair whose refusals are recorded apart, for one exchange through
    /// a library that hides the errors of its client (the upstream client, which such
    /// libraries never use, is shared).
    pub fn observed(&self) -> Result<(Self, Refusals), String> {
        let refusals = Refusals::default();
        Ok((
            Self::with_refusals(
                self.gate.clone(),
                self.timeout,
                refusals.clone(),
                self.upstream.clone(),
            )?,
            refusals,
        ))
    }

    /// Refusals recorded by this client (shared by its clones).
    pub fn refusals(&self) -> &Refusals {
        &self.refusals
    }

    /// The client that follows redirects through the gate, for connection tests (never for
    /// the proxy, which hands redirects back to its caller).
    pub fn following_client(&self) -> &reqwest::Client {
        &self.following
    }

    /// Like [`GatedHttp::execute`], following up to five redirects, each one checked.
    pub async fn execute_following(
        &self,
        req: reqwest::Request,
    ) -> Result<reqwest::Response, HttpError> {
        self.check_url(req.url()).await?;
        self.following.execute(req).await.map_err(classify)
    }

    /// The lean client that acts through HTTP connections (see [`UpstreamClient`]).
    pub fn upstream(&self) -> &UpstreamClient {
        &self.upstream
    }

    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    /// The underlying client, for libraries that take one (MCP). Call [`GatedHttp::check_url`]
    /// on every URL first: IP literals bypass the resolver.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Refuses non-HTTP schemes and any URL whose host is, or resolves to, a denied address.
    pub async fn check_url(&self, url: &url::Url) -> Result<(), HttpError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(HttpError::Url(format!(
                "scheme {} is not allowed",
                url.scheme()
            )));
        }
        let host = url
            .host_str()
            .ok_or_else(|| HttpError::Url("no host".into()))?;
        self.gate.resolve(host).await?;
        Ok(())
    }

    pub async fn execute(&self, req: reqwest::Request) -> Result<reqwest::Response, HttpError> {
        self.check_url(req.url()).await?;
        self.client.execute(req).await.map_err(classify)
    }
}

/// Sorts a reqwest failure into the kinds callers report, without its URL.
pub fn classify(e: reqwest::Error) -> HttpError {
    let e = e.without_url();
    if let Some(net) = refusal_in(&e) {
        return HttpError::Net(net);
    }
    if e.is_timeout() {
        return HttpError::Timeout;
    }
    by_text(&e, e.is_connect())
}

/// The gate's refusal anywhere in `e`'s source chain, `e` included.
pub(crate) fn refusal_in(e: &(dyn std::error::Error + 'static)) -> Option<NetError> {
    let mut current = Some(e);
    while let Some(err) = current {
        if let Some(net) = err.downcast_ref::<NetError>() {
            return Some(net.clone());
        }
        if let Some(HttpError::Net(net)) = err.downcast_ref::<HttpError>() {
            return Some(net.clone());
        }
        current = err.source();
    }
    None
}

/// Sorts a failure that holds no refusal by what its messages say: TLS, connect or other.
pub(crate) fn by_text(e: &(dyn std::error::Error + 'static), connect: bool) -> HttpError {
    let chain = error_chain(e);
    let lower = chain.to_ascii_lowercase();
    if lower.contains("certificate")
        || lower.contains("tls")
        || lower.contains("handshake")
        || lower.contains("invalid peer")
    {
        HttpError::Tls(chain)
    } else if connect {
        HttpError::Connect(chain)
    } else {
        HttpError::Other(chain)
    }
}

/// Classifies any error whose source chain may hold a gate refusal or a reqwest failure (as
/// libraries that wrap our client report them).
pub fn classify_chain(e: &(dyn std::error::Error + 'static)) -> Option<HttpError> {
    if let Some(net) = refusal_in(e) {
        return Some(HttpError::Net(net));
    }
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = current {
        if let Some(r) = err.downcast_ref::<reqwest::Error>() {
            if r.is_timeout() {
                return Some(HttpError::Timeout);
            }
            if r.is_connect() {
                return Some(HttpError::Connect(redact_urls(&error_chain(r))));
            }
        }
        current = err.source();
    }
    None
}

/// The whole body of an answer, unless reading fails or it grows beyond `cap` bytes (the
/// error says which, never the URL).
pub async fn read_capped<B>(mut body: B, cap: usize) -> Result<Vec<u8>, String>
where
    B: http_body::Body<Data = bytes::Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    use http_body_util::BodyExt as _;
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("reading the answer failed: {e}"))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if out.len() + data.len() > cap {
            return Err(format!("the answer is larger than {cap} bytes"));
        }
        out.extend_from_slice(&data);
    }
    Ok(out)
}

/// Replaces every URL in `text` by `<url>`: URLs may carry keys in their query.
pub fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let next = ["http://", "https://"]
            .iter()
            .filter_map(|p| rest.find(p))
            .min();
        let Some(start) = next else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..start]);
        out.push_str("<url>");
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, ')' | '"' | '\'' | ',' | '>'))
            .unwrap_or(tail.len());
        rest = &tail[end..];
    }
}

pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::redact_urls;

    #[test]
    fn urls_are_redacted_from_messages() {
        assert_eq!(
            redact_urls("error for url (https://api.example.com/x?api_key=SECRET), when sending"),
            "error for url (<url>), when sending"
        );
        assert_eq!(redact_urls("no url here"), "no url here");
        assert_eq!(redact_urls("a http://x/y b https://z"), "a <url> b <url>");
    }
}
