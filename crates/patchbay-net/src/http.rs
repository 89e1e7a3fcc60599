//! HTTP through the gate: a reqwest client whose every name resolution goes through
//! [`Gate::resolve`], with IP-literal URLs checked before sending (reqwest does not resolve
//! those), no automatic redirects and no environment proxies.

use std::error::Error as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::NetError;
use crate::gate::Gate;

struct GateResolver(Gate);

impl Resolve for GateResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let gate = self.0.clone();
        Box::pin(async move {
            let ips = gate
                .resolve(name.as_str())
                .await
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
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
    gate: Gate,
}

const MAX_REDIRECTS: usize = 5;

fn builder(gate: &Gate, timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GateResolver(gate.clone())))
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("patchbay/", env!("CARGO_PKG_VERSION")))
}

/// Follows a bounded number of redirects, each hop judged by the gate: IP literals here, names
/// when they are resolved. reqwest drops credentials on a redirect to another host.
fn checked_redirects(gate: Gate) -> reqwest::redirect::Policy {
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
            Some(Err(e)) => attempt.error(e),
            _ => attempt.follow(),
        }
    })
}

impl GatedHttp {
    pub fn new(gate: Gate, timeout: Duration) -> Result<Self, String> {
        let client = builder(&gate, timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        let following = builder(&gate, timeout)
            .redirect(checked_redirects(gate.clone()))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            client,
            following,
            gate,
        })
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
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(net) = s.downcast_ref::<NetError>() {
            return HttpError::Net(net.clone());
        }
        if let Some(HttpError::Net(net)) = s.downcast_ref::<HttpError>() {
            return HttpError::Net(net.clone());
        }
        source = s.source();
    }
    if e.is_timeout() {
        return HttpError::Timeout;
    }
    let chain = error_chain(&e);
    let lower = chain.to_ascii_lowercase();
    if lower.contains("certificate")
        || lower.contains("tls")
        || lower.contains("handshake")
        || lower.contains("invalid peer")
    {
        return HttpError::Tls(chain);
    }
    if e.is_connect() {
        return HttpError::Connect(chain);
    }
    HttpError::Other(chain)
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
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
