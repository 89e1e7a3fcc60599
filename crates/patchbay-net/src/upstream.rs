//! The client that acts through HTTP connections (the proxy and HTTP actions): hyper's pooled
//! HTTP/1.1 client with the gate as its resolver, rustls (aws-lc-rs, the platform's roots) for
//! `https`, no redirects, no cookies, no environment proxies. It carries requests as they are
//! given — no URL re-parsing or middleware per request — because every proxied request pays
//! for what it does.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::TokioExecutor;
use tokio::time::{Instant, Sleep};

use crate::NetError;
use crate::gate::Gate;
use crate::http::{HttpError, Refusals, by_text, refusal_in};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request body for [`UpstreamClient::send`].
pub type SendBody = UnsyncBoxBody<Bytes, BoxError>;

/// Resolves names for new connections through the gate. One `Arc`: the client clones its
/// connector for every request.
#[derive(Clone)]
struct GateDns(std::sync::Arc<(Gate, Refusals)>);

impl tower_service::Service<Name> for GateDns {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = NetError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, NetError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), NetError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let shared = self.0.clone();
        Box::pin(async move {
            let (gate, refusals) = &*shared;
            let ips = gate.resolve(name.as_str()).await.inspect_err(|e| {
                refusals.record(e);
            })?;
            Ok(ips
                .into_iter()
                .map(|ip| SocketAddr::new(ip, 0))
                .collect::<Vec<_>>()
                .into_iter())
        })
    }
}

type Connector = hyper_rustls::HttpsConnector<HttpConnector<GateDns>>;

/// The pooled client; cheap to clone.
#[derive(Clone)]
pub struct UpstreamClient {
    client: Client<Connector, SendBody>,
    gate: Gate,
    refusals: Refusals,
    user_agent: http::HeaderValue,
}

impl std::fmt::Debug for UpstreamClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamClient").finish_non_exhaustive()
    }
}

impl UpstreamClient {
    pub(crate) fn new(gate: Gate, refusals: Refusals, timeout: Duration) -> Result<Self, String> {
        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls_platform_verifier::BuilderVerifierExt::with_platform_verifier(
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?,
        )
        .map_err(|e| e.to_string())?
        .with_no_client_auth();
        let mut http = HttpConnector::new_with_resolver(GateDns(std::sync::Arc::new((
            gate.clone(),
            refusals.clone(),
        ))));
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(https);
        Ok(Self {
            client,
            gate,
            refusals,
            user_agent: http::HeaderValue::from_static(concat!(
                "patchbay/",
                env!("CARGO_PKG_VERSION")
            )),
        })
    }

    /// Sends `req` and returns the answer's head once it arrives; the whole exchange, body
    /// included, must end within `timeout`. Addresses are judged by the gate: IP literals
    /// here, names when a connection is opened to them.
    pub async fn send(
        &self,
        mut req: http::Request<SendBody>,
        timeout: Duration,
    ) -> Result<http::Response<Answer>, HttpError> {
        let uri = req.uri();
        if !matches!(uri.scheme_str(), Some("http" | "https")) {
            return Err(HttpError::Url(
                "only http and https URLs are allowed".into(),
            ));
        }
        let host = uri.host().ok_or_else(|| HttpError::Url("no host".into()))?;
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            self.gate
                .check(bare, ip)
                .inspect_err(|e| self.refusals.record(e))?;
        }
        req.headers_mut()
            .entry(http::header::USER_AGENT)
            .or_insert_with(|| self.user_agent.clone());
        let deadline = Instant::now() + timeout;
        let resp = match tokio::time::timeout_at(deadline, self.client.request(req)).await {
            Err(_) => return Err(HttpError::Timeout),
            Ok(Err(e)) => return Err(classify(&e)),
            Ok(Ok(r)) => r,
        };
        Ok(resp.map(|body| Answer {
            body,
            deadline,
            sleep: None,
        }))
    }
}

/// Sorts a client failure into the kinds callers report (the URL is never part of it).
fn classify(e: &hyper_util::client::legacy::Error) -> HttpError {
    match refusal_in(e) {
        Some(net) => HttpError::Net(net),
        None => by_text(e, e.is_connect()),
    }
}

/// An upstream's answer body, failed with [`HttpError::Timeout`] once the exchange's deadline
/// passes. The timer is only armed when the body has to be waited for.
#[derive(Debug)]
pub struct Answer {
    body: hyper::body::Incoming,
    deadline: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Body for Answer {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| {
                f.map_err(|e| HttpError::Other(format!("reading the answer failed: {e}")))
            })),
            Poll::Pending => {
                let deadline = this.deadline;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(HttpError::Timeout))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
