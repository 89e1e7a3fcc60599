//! The client that acts through HTTP connections (the proxy and HTTP actions): hyper's HTTP/1.1
//! connections, pooled per thread, with the gate as resolver, rustls (aws-lc-rs, the platform's
//! roots) for `https`, no redirects, no cookies, no environment proxies. It carries requests as
//! they are given — no URL re-parsing or middleware per request — because every proxied request
//! pays for what it does.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
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
struct GateDns(Arc<(Gate, Refusals)>);

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
type Sender = hyper::client::conn::http1::SendRequest<SendBody>;

/// How long an idle upstream connection is kept for reuse.
const IDLE_FOR: Duration = Duration::from_secs(90);
/// Idle connections kept per origin and thread.
const IDLE_MAX: usize = 128;

/// Where a pooled connection leads: `scheme://authority` in lower case (an authority's own
/// comparisons ignore case byte by byte, which costs more than the lookup they serve).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Origin(Arc<str>);

/// One thread's idle HTTP/1.1 connections. A connection is driven by a task on the runtime that
/// opened it, so each serving thread keeps its own: a request then never wakes another core.
/// (The lock is only contended when an answer is read to its end on another thread.)
#[derive(Default)]
struct Shard {
    idle: std::sync::Mutex<IdleByOrigin>,
}

type IdleByOrigin = std::collections::HashMap<Origin, Vec<Idle>, foldhash::fast::RandomState>;

struct Idle {
    sender: Sender,
    since: Instant,
}

impl Shard {
    fn lock(&self) -> std::sync::MutexGuard<'_, IdleByOrigin> {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The most recently used open connection to `origin`; stale and closed ones are dropped.
    fn checkout(&self, origin: &Origin, now: Instant) -> Option<Sender> {
        let mut idle = self.lock();
        let list = idle.get_mut(origin)?;
        while let Some(entry) = list.pop() {
            if !entry.sender.is_closed() && now.duration_since(entry.since) < IDLE_FOR {
                return Some(entry.sender);
            }
        }
        None
    }

    /// Keeps `sender` for reuse, as idle since `now`: when its exchange began, so a connection
    /// is retired early rather than late.
    fn checkin(&self, origin: Origin, sender: Sender, now: Instant) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.lock();
        let list = match idle.get_mut(&origin) {
            Some(list) => list,
            None => idle.entry(origin).or_default(),
        };
        // Connections return in about the order their exchanges began, so the oldest are
        // first: once the first has idled too long, every one that did (or closed meanwhile)
        // goes; until then, checkouts skip the stale and closed ones.
        if list
            .first()
            .is_some_and(|e| now.duration_since(e.since) >= IDLE_FOR)
        {
            list.retain(|e| now.duration_since(e.since) < IDLE_FOR && !e.sender.is_closed());
        }
        if list.len() < IDLE_MAX {
            list.push(Idle { sender, since: now });
        }
    }
}

/// A connection lent to one exchange; back to its thread's pool once the answer was read to its
/// end (a connection whose answer was abandoned is closed by hyper instead).
struct Lent {
    shard: Arc<Shard>,
    origin: Origin,
    sender: Sender,
    /// When the exchange began.
    sent: Instant,
}

/// The client; cheap to clone.
#[derive(Clone)]
pub struct UpstreamClient {
    shards: Arc<thread_local::ThreadLocal<Arc<Shard>>>,
    connector: Connector,
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
        let tls = crate::tls_config(None)?;
        let mut http =
            HttpConnector::new_with_resolver(GateDns(Arc::new((gate.clone(), refusals.clone()))));
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(Self {
            shards: Arc::default(),
            connector,
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
        let to = Destination::of(req.uri())?;
        // HTTP/1.1 asks for the path and query alone; the origin is the connection's.
        *req.uri_mut() = req.uri().path_and_query().map_or_else(
            || http::Uri::from_static("/"),
            |pq| http::Uri::from(pq.clone()),
        );
        self.send_to(&to, req, timeout).await
    }

    /// Sends `req`, whose URI is the path and query alone, to `to` (see [`Self::send`]).
    ///
    /// What needs no waiting is done before the future is made, and the future holds the
    /// request once: a proxied request's futures are moved (copied whole) as they start, so
    /// their size is paid on every request.
    pub fn send_to<'a>(
        &'a self,
        to: &'a Destination,
        mut req: http::Request<SendBody>,
        timeout: Duration,
    ) -> impl Future<Output = Result<http::Response<Answer>, HttpError>> + Send + 'a {
        let checked = match &to.ip {
            Some((ip, name)) => self
                .gate
                .check(name, *ip)
                .inspect_err(|e| self.refusals.record(e)),
            None => Ok(()),
        };
        let headers = req.headers_mut();
        headers
            .entry(http::header::USER_AGENT)
            .or_insert_with(|| self.user_agent.clone());
        if let http::header::Entry::Vacant(v) = headers.entry(http::header::HOST) {
            v.insert(to.host.clone());
        }
        // The one clock read of an exchange: its deadline, and the age of the connections it
        // takes from and returns to the pool.
        let sent = Instant::now();
        let deadline = sent + timeout;
        let shard = self.shard().clone();
        async move {
            checked?;
            // Boxed: hyper's send future is large, and every future awaiting this one would
            // hold (and move) a copy of its size.
            let exchange = Box::pin(self.exchange(&shard, to, req, sent));
            let (resp, sender) = match tokio::time::timeout_at(deadline, exchange).await {
                Err(_) => return Err(HttpError::Timeout),
                Ok(r) => r?,
            };
            let lent = Lent {
                shard,
                origin: to.origin.clone(),
                sender,
                sent,
            };
            Ok(resp.map(|body| {
                let mut answer = Answer {
                    body,
                    deadline,
                    sleep: None,
                    lent: Some(lent),
                };
                answer.release_if_done();
                answer
            }))
        }
    }

    /// This thread's idle connections.
    fn shard(&self) -> &Arc<Shard> {
        self.shards.get_or(Arc::default)
    }

    /// Sends on an idle connection to `origin` — the next one if it turns out closed before
    /// the request went out — or on a new one.
    #[expect(
        clippy::manual_async_fn,
        reason = "an async fn's future holds its arguments twice; this one holds the request once"
    )]
    fn exchange<'a>(
        &'a self,
        shard: &'a Shard,
        to: &'a Destination,
        mut req: http::Request<SendBody>,
        sent: Instant,
    ) -> impl Future<Output = Result<(http::Response<hyper::body::Incoming>, Sender), HttpError>>
    + Send
    + 'a {
        // A block, not an `async fn`: it holds the request once (an `async fn` keeps its
        // arguments and a copy of them).
        async move {
            while let Some(mut sender) = shard.checkout(&to.origin, sent) {
                if sender.ready().await.is_err() {
                    continue;
                }
                match sender.try_send_request(req).await {
                    Ok(resp) => return Ok((resp, sender)),
                    Err(mut e) => match e.take_message() {
                        // Never written: the connection closed in the meantime.
                        Some(unsent) => req = unsent,
                        None => return Err(by_text(&e.into_error(), false)),
                    },
                }
            }
            // Boxed: a new connection is the exception, and its future is large.
            let mut sender = Box::pin(self.connect(&to.root)).await?;
            sender.ready().await.map_err(|e| by_text(&e, true))?;
            let resp = sender
                .send_request(req)
                .await
                .map_err(|e| by_text(&e, false))?;
            Ok((resp, sender))
        }
    }

    /// Opens a connection (the gate resolves and judges the name, TLS for `https`) and drives
    /// it from a task on this thread's runtime.
    async fn connect(&self, uri: &http::Uri) -> Result<Sender, HttpError> {
        use tower_service::Service as _;
        let mut connector = self.connector.clone();
        let io = match std::future::poll_fn(|cx| connector.poll_ready(cx)).await {
            Ok(()) => connector.call(uri.clone()).await,
            Err(e) => Err(e),
        }
        .map_err(|e| match refusal_in(&*e) {
            Some(net) => HttpError::Net(net),
            None => by_text(&*e, true),
        })?;
        let (sender, connection) = hyper::client::conn::http1::Builder::new()
            .handshake(io)
            .await
            .map_err(|e| by_text(&e, true))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "an upstream connection ended with an error");
            }
        });
        Ok(sender)
    }
}

/// Where a request goes: its origin (which connections serve it), the `Host` header it
/// carries, and the IP address when the host is one. Worked out once per URL, so callers that
/// send many requests to one base keep it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    origin: Origin,
    /// `scheme://authority/`: what a new connection is opened to.
    root: http::Uri,
    host: http::HeaderValue,
    /// The IP address the host is, with its text as the gate names it (an IPv6 address without
    /// brackets).
    ip: Option<(IpAddr, Box<str>)>,
}

impl Destination {
    /// `scheme://authority`, lowercase.
    pub fn origin(&self) -> &str {
        &self.origin.0
    }

    /// The `Host` header a request to it carries.
    pub fn host_header(&self) -> &http::HeaderValue {
        &self.host
    }

    /// The destination of an absolute `http` or `https` URI.
    pub fn of(uri: &http::Uri) -> Result<Self, HttpError> {
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => {
                return Err(HttpError::Url(
                    "only http and https URLs are allowed".into(),
                ));
            }
        };
        let (Some(authority), Some(host)) = (uri.authority(), uri.host()) else {
            return Err(HttpError::Url("no host".into()));
        };
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let value = match uri.port_u16() {
            Some(port) if port != if https { 443 } else { 80 } => format!("{host}:{port}"),
            _ => host.to_owned(),
        };
        let root = http::Uri::builder()
            .scheme(if https { "https" } else { "http" })
            .authority(authority.clone())
            .path_and_query("/")
            .build()
            .map_err(|_| HttpError::Url("the host is not valid".into()))?;
        Ok(Self {
            origin: Origin(
                format!("{}://{authority}", if https { "https" } else { "http" })
                    .to_ascii_lowercase()
                    .into(),
            ),
            root,
            host: http::HeaderValue::try_from(value)
                .map_err(|_| HttpError::Url("the host is not valid".into()))?,
            ip: bare.parse().ok().map(|ip| (ip, bare.into())),
        })
    }
}

/// An upstream's answer body, failed with [`HttpError::Timeout`] once the exchange's deadline
/// passes. The timer is only armed when the body has to be waited for.
pub struct Answer {
    body: hyper::body::Incoming,
    deadline: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
    lent: Option<Lent>,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer").finish_non_exhaustive()
    }
}

impl Answer {
    /// Returns the connection to its pool (the whole answer has arrived).
    fn release(&mut self) {
        if let Some(Lent {
            shard,
            origin,
            sender,
            sent,
        }) = self.lent.take()
        {
            shard.checkin(origin, sender, sent);
        }
    }

    /// Returns the connection to its pool once the whole answer has arrived.
    fn release_if_done(&mut self) {
        if self.body.is_end_stream() {
            self.release();
        }
    }
}

impl Drop for Answer {
    fn drop(&mut self) {
        self.release_if_done();
    }
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
            Poll::Ready(None) => {
                this.release();
                Poll::Ready(None)
            }
            Poll::Ready(Some(frame)) => {
                this.release_if_done();
                Poll::Ready(Some(frame.map_err(|e| {
                    HttpError::Other(format!("reading the answer failed: {e}"))
                })))
            }
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
