//! Connecting to a server and the session that follows.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use patchbay_net::{GatedHttp, HttpError, Refusals};
use rmcp::RoleClient;
use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation,
    PaginatedRequestParams, ProtocolVersion,
};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, NotificationContext, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Map, Value};

use crate::{Endpoint, Era, ErrorKind, Limits, McpError, ServerSummary, ToolServer, sse, stdio};

/// What the client tells servers it is.
fn client_config(version: ProtocolVersion) -> ClientConfig {
    ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("patchbay", env!("CARGO_PKG_VERSION")),
    )
    .with_protocol_version(version)
}

/// The client side of a session: notices when the server's tools change.
#[derive(Debug)]
struct Handler {
    config: ClientConfig,
    tools_changed: Arc<AtomicBool>,
    relays: Relays,
}

/// The relayed calls in flight, by the progress token each was sent with.
type Relays = Arc<std::sync::Mutex<HashMap<String, crate::Notes>>>;

/// Sends `note` to the relay of `token`, or to every relay when `None` (log messages belong to
/// no request).
fn relay(relays: &Relays, token: Option<&str>, note: Value) {
    let relays = relays
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match token {
        Some(t) => {
            if let Some(tx) = relays.get(t) {
                let _ = tx.send(note);
            }
        }
        None => {
            for tx in relays.values() {
                let _ = tx.send(note.clone());
            }
        }
    }
}

impl rmcp::ClientHandler for Handler {
    fn get_info(&self) -> ClientConfig {
        self.config.clone()
    }

    fn on_tool_list_changed(
        &self,
        _context: NotificationContext<RoleClient>,
    ) -> impl Future<Output = ()> + Send + '_ {
        self.tools_changed.store(true, Ordering::Relaxed);
        std::future::ready(())
    }

    fn on_progress(
        &self,
        params: rmcp::model::ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) -> impl Future<Output = ()> + Send + '_ {
        let mut note = json(&params);
        if let Some(obj) = note.as_object_mut() {
            obj.remove("progressToken");
        }
        relay(
            &self.relays,
            Some(&token_key(&params.progress_token)),
            serde_json::json!({"method": "notifications/progress", "params": note}),
        );
        std::future::ready(())
    }

    #[allow(deprecated)] // session-era servers still log
    fn on_logging_message(
        &self,
        params: rmcp::model::LoggingMessageNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) -> impl Future<Output = ()> + Send + '_ {
        relay(
            &self.relays,
            None,
            serde_json::json!({"method": "notifications/message", "params": json(&params)}),
        );
        std::future::ready(())
    }
}

/// A connected server. Dropping it ends the session (an HTTP session is deleted, a process is
/// killed with its group).
pub struct Session {
    service: RunningService<RoleClient, Handler>,
    summary: ServerSummary,
    limits: Limits,
    tools_changed: Arc<AtomicBool>,
    relays: Relays,
    /// The `subscriptions/listen` stream of a 2026-07-28 server's tool changes.
    watch: std::sync::Mutex<Option<tokio::task::AbortHandle>>,
    /// The process of a stdio server.
    child: Option<stdio::Child>,
    /// Why a legacy SSE stream ended.
    ended: Option<Arc<OnceLock<McpError>>>,
    refusals: Option<Refusals>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("summary", &self.summary)
            .field("child", &self.child)
            .finish_non_exhaustive()
    }
}

/// Connects to `endpoint` within `timeout`. `era` is what the server spoke last time (asked
/// first; on a protocol failure the client probes again, modern first, in the time left).
pub async fn connect(
    endpoint: &Endpoint,
    http: &GatedHttp,
    era: Era,
    limits: Limits,
    timeout: Duration,
) -> Result<Session, McpError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let within = |era| async move {
        tokio::time::timeout_at(deadline, connect_once(endpoint, http, era, limits, timeout))
            .await
            .map_err(|_| McpError::timeout(timeout))?
    };
    match within(era).await {
        Err(e) if era != Era::Unknown && e.kind == ErrorKind::Protocol => {
            within(Era::Unknown).await
        }
        // A session-era server may answer `server/discover` with nonsense instead of refusing
        // it: asked with `initialize` alone, it may still be spoken to. Its first error stands
        // when that fails too.
        Err(e) if era == Era::Unknown && e.kind == ErrorKind::Protocol => {
            within(Era::Legacy).await.map_err(|_| e)
        }
        other => other,
    }
}

/// The gate's client for one session to `url` (checked first), with a record of its own of
/// the gate's refusals, which the protocol library reports only as text.
async fn gated(http: &GatedHttp, url: &url::Url) -> Result<(reqwest::Client, Refusals), McpError> {
    http.check_url(url).await.map_err(McpError::from_http)?;
    let (gated, refusals) = http.observed().map_err(McpError::protocol)?;
    Ok((gated.client().clone(), refusals))
}

/// The gate's refusal when it refused the session's destination, else `e`.
fn refused_or(refusals: &Refusals, e: McpError) -> McpError {
    refusals
        .last()
        .map_or(e, |n| McpError::from_http(HttpError::Net(n)))
}

fn lifecycle(era: Era) -> ClientLifecycleMode {
    let modern = vec![ProtocolVersion::V_2026_07_28];
    match era {
        Era::Modern => ClientLifecycleMode::Discover {
            preferred_versions: modern,
        },
        Era::Legacy => ClientLifecycleMode::Initialize,
        Era::Unknown => ClientLifecycleMode::Auto {
            preferred_versions: modern,
            legacy_version: Some(ProtocolVersion::V_2025_11_25),
        },
    }
}

async fn connect_once(
    endpoint: &Endpoint,
    http: &GatedHttp,
    era: Era,
    limits: Limits,
    timeout: Duration,
) -> Result<Session, McpError> {
    let tools_changed = Arc::new(AtomicBool::new(false));
    let relays = Relays::default();
    let handler = |version| Handler {
        config: client_config(version),
        tools_changed: tools_changed.clone(),
        relays: relays.clone(),
    };
    let (service, child, ended, refusals) = match endpoint {
        Endpoint::StreamableHttp { url, headers } => {
            let (client, refusals) = gated(http, url).await?;
            let mut config = StreamableHttpClientTransportConfig::with_uri(url.as_str())
                .control_request_timeout(timeout);
            config.custom_headers = headers.clone();
            config.max_json_response_size = limits.max_message_bytes;
            config.max_sse_event_size = limits.max_message_bytes;
            config.reinit_on_expired_session = true;
            // One pooled session carries every caller's calls to this server.
            config.max_concurrent_requests = 256;
            let transport = StreamableHttpClientTransport::with_client(client, config);
            let served = handler(ProtocolVersion::V_2025_11_25)
                .serve_with_lifecycle(transport, lifecycle(era))
                .await;
            let service = served.map_err(|e| refused_or(&refusals, McpError::from_init(e)))?;
            (service, None, None, Some(refusals))
        }
        Endpoint::Sse { url, headers } => {
            let (client, refusals) = gated(http, url).await?;
            let opened = sse::open(client, url.clone(), headers.clone(), limits, timeout).await;
            let transport = opened.map_err(|e| refused_or(&refusals, e))?;
            let ended = transport.ended.clone();
            let service = handler(ProtocolVersion::V_2024_11_05)
                .serve_with_lifecycle(transport, ClientLifecycleMode::Initialize)
                .await
                .map_err(|e| {
                    ended
                        .get()
                        .cloned()
                        .unwrap_or_else(|| McpError::from_init(e))
                })?;
            (service, None, Some(ended), Some(refusals))
        }
        Endpoint::Stdio(command) => {
            let (transport, child) = stdio::spawn(command, limits.max_message_bytes)?;
            let served = handler(ProtocolVersion::V_2025_11_25)
                .serve_with_lifecycle(transport, lifecycle(era))
                .await;
            let service = served.map_err(|e| {
                child
                    .tripped
                    .get()
                    .cloned()
                    .unwrap_or_else(|| McpError::from_init(e))
                    .with_stderr(child.stderr.tail())
            })?;
            (service, Some(child), None, None)
        }
    };
    let summary = summarise(&service);
    Ok(Session {
        service,
        summary,
        limits,
        tools_changed,
        relays,
        watch: std::sync::Mutex::new(None),
        child,
        ended,
        refusals,
    })
}

fn summarise(service: &RunningService<RoleClient, Handler>) -> ServerSummary {
    let info = service.peer_info();
    match info.as_deref() {
        Some(i) => ServerSummary {
            server_info: i
                .server_info
                .as_ref()
                .map_or(Value::Object(Map::new()), json),
            protocol_version: i.protocol_version.to_string(),
            capabilities: json(&i.capabilities),
            instructions: i.instructions.clone(),
        },
        None => ServerSummary {
            server_info: Value::Object(Map::new()),
            protocol_version: String::new(),
            capabilities: Value::Object(Map::new()),
            instructions: None,
        },
    }
}

/// One of the protocol library's values as the JSON it was read from (they always serialize).
fn json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or_default()
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(watch) = self
            .watch
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            watch.abort();
        }
    }
}

impl Session {
    /// Watches for the server's tool changes (`take_tools_changed`). A server of the session
    /// era sends them on its own; one of the stateless revision only on a `subscriptions/listen`
    /// stream, which this opens when the server says its tool list changes. For a session
    /// that lives on (a pooled one), not for a one-off discovery.
    pub fn watch_tools(&self) {
        if self.summary.protocol_version != crate::MODERN_VERSION
            || self.summary.capabilities["tools"]["listChanged"] != Value::Bool(true)
        {
            return;
        }
        let peer = self.service.peer().clone();
        let changed = self.tools_changed.clone();
        let task = tokio::spawn(async move {
            let filter = rmcp::model::SubscriptionFilter::builder()
                .tools_list_changed()
                .build();
            let Ok(mut subscription) = peer.listen(filter).await else {
                return;
            };
            // A change made between the discovery and the stream's start was sent to nobody:
            // the next look at the session's news lists the tools once more.
            changed.store(true, Ordering::Relaxed);
            while let Ok(Some(note)) = subscription.next().await {
                if matches!(
                    note,
                    rmcp::model::ServerNotification::ToolListChangedNotification(_)
                ) {
                    changed.store(true, Ordering::Relaxed);
                }
            }
        });
        *self
            .watch
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(task.abort_handle());
    }

    /// A call whose notifications go to `notes`: sent with the progress token the library
    /// gives it, under which its progress is relayed; cancelled upstream when dropped.
    async fn relayed(
        &self,
        params: CallToolRequestParams,
        notes: crate::Notes,
    ) -> Result<Value, McpError> {
        let peer = self.service.peer();
        let request =
            rmcp::model::ClientRequest::CallToolRequest(rmcp::model::CallToolRequest::new(params));
        // Servers of the stateless revision log only to requests that ask for it.
        let mut meta = rmcp::model::RequestMetaObject::default();
        #[allow(deprecated)]
        meta.set_log_level(rmcp::model::LoggingLevel::Info);
        let mut options = rmcp::service::PeerRequestOptions::no_options();
        options.meta = Some(meta);
        let handle = peer
            .send_request_with_option(request, options)
            .await
            .map_err(|e| self.failed(e))?;
        let token = token_key(&handle.progress_token);
        self.relays
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(token.clone(), notes);
        let mut guard = Abandoned {
            peer: peer.clone(),
            id: Some(handle.id.clone()),
            relays: &self.relays,
            token,
        };
        let answer = handle.await_response().await;
        guard.id = None;
        match answer.map_err(|e| self.failed(e))? {
            rmcp::model::ServerResult::CallToolResult(result) => Ok(json(&result)),
            _ => Err(McpError::protocol(
                "the MCP server answered the tool call with something else than a result",
            )),
        }
    }

    pub fn summary(&self) -> &ServerSummary {
        &self.summary
    }

    /// The id of a stdio server's process.
    pub fn process_id(&self) -> Option<u32> {
        self.child.as_ref().and_then(stdio::Child::id)
    }

    /// Sorts a failure of a request, with what the transport knows of why.
    fn failed(&self, e: rmcp::service::ServiceError) -> McpError {
        if let Some(n) = self.refusals.as_ref().and_then(Refusals::last) {
            return McpError::from_http(HttpError::Net(n));
        }
        let transport_end = self
            .ended
            .as_ref()
            .and_then(|e| e.get().cloned())
            .or_else(|| self.child.as_ref().and_then(|c| c.tripped.get().cloned()));
        let closed = matches!(e, rmcp::service::ServiceError::TransportClosed)
            || self.service.is_transport_closed();
        let error = match transport_end {
            Some(end) if closed => end,
            _ => McpError::from_service(e),
        };
        error.with_stderr(self.child.as_ref().and_then(|c| c.stderr.tail()))
    }

    async fn list_all(&self) -> Result<Vec<Value>, McpError> {
        let mut tools = Vec::new();
        let mut seen = HashSet::new();
        let mut cursor: Option<String> = None;
        for _ in 0..self.limits.max_pages {
            let page = self
                .service
                .list_tools(Some(
                    PaginatedRequestParams::default().with_cursor(cursor.clone()),
                ))
                .await
                .map_err(|e| self.failed(e))?;
            tools.extend(page.tools.iter().map(json));
            match page.next_cursor {
                None => return Ok(tools),
                Some(next) if !seen.insert(next.clone()) => {
                    return Err(McpError::protocol(format!(
                        "the MCP server repeated the cursor of a tools/list page after {} tools",
                        tools.len()
                    )));
                }
                Some(next) => cursor = Some(next),
            }
        }
        Err(McpError::protocol(format!(
            "the MCP server's tools/list went on past {} pages",
            self.limits.max_pages
        )))
    }

    /// Ends the session: an HTTP session is deleted, a process stopped.
    pub async fn close(mut self) {
        let _ = self
            .service
            .close_with_timeout(Duration::from_secs(2))
            .await;
    }
}

/// A progress token as the relays are keyed (its JSON).
fn token_key(token: &rmcp::model::ProgressToken) -> String {
    serde_json::to_string(token).unwrap_or_default()
}

/// Forgets a relayed call's relay when the call ends, and cancels it upstream when it ends
/// unanswered (the caller went, the deadline passed).
struct Abandoned<'a> {
    peer: rmcp::Peer<RoleClient>,
    id: Option<rmcp::model::RequestId>,
    relays: &'a Relays,
    token: String,
}

impl Drop for Abandoned<'_> {
    fn drop(&mut self) {
        self.relays
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.token);
        if let Some(id) = self.id.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let peer = self.peer.clone();
            runtime.spawn(async move {
                let _ = peer
                    .notify_cancelled(rmcp::model::CancelledNotificationParam::new(
                        Some(id),
                        Some("the caller cancelled the call".into()),
                    ))
                    .await;
            });
        }
    }
}

impl ToolServer for Session {
    fn summary(&self) -> &ServerSummary {
        &self.summary
    }

    fn list_tools(&self, timeout: Duration) -> BoxFuture<'_, Result<Vec<Value>, McpError>> {
        async move {
            self.tools_changed.store(false, Ordering::Relaxed);
            tokio::time::timeout(timeout, self.list_all())
                .await
                .map_err(|_| McpError::timeout(timeout))?
        }
        .boxed()
    }

    fn call_tool_relayed<'a>(
        &'a self,
        name: &'a str,
        arguments: Option<Map<String, Value>>,
        timeout: Duration,
        notes: Option<crate::Notes>,
    ) -> BoxFuture<'a, Result<Value, McpError>> {
        async move {
            let mut params = CallToolRequestParams::new(name.to_owned());
            params.arguments = arguments;
            // Dropped at the deadline, the request is cancelled upstream.
            let call = async {
                match notes {
                    Some(notes) => self.relayed(params, notes).await,
                    None => self
                        .service
                        .call_tool(params)
                        .await
                        .map(|r| json(&r))
                        .map_err(|e| self.failed(e)),
                }
            };
            tokio::time::timeout(timeout, call)
                .await
                .map_err(|_| McpError::timeout(timeout))?
        }
        .boxed()
    }

    fn take_tools_changed(&self) -> bool {
        self.tools_changed.swap(false, Ordering::Relaxed)
    }

    fn is_closed(&self) -> bool {
        self.service.is_transport_closed()
    }
}
