//! MCP connections (SPEC §3, §4 MCP): discovery before saving (`POST /v1/mcp/discover`), on
//! create and on refresh (kept as the connection's `mcp` state), tool calls as actions through
//! pooled upstream sessions (`pool`), and the registry of known servers. The protocol is
//! `patchbay-mcp`'s; the connection's material says where the server is and with which
//! credentials.

mod authorize;
mod gateway;
mod pool;

pub(crate) use gateway::GatewayCache;
pub use gateway::GatewayTool;

/// What a caller of a tool gets while it runs: its notifications (progress, log messages),
/// and a way to cancel it (dropping the upstream request, which cancels it there).
#[derive(Debug, Default, Clone)]
pub struct Relay {
    pub notes: Option<patchbay_mcp::Notes>,
    pub cancel: Option<tokio_util::sync::CancellationToken>,
}

use std::sync::Arc;
use std::time::{Duration, Instant};

use patchbay_connectors::mcp::Discovery;
use patchbay_domain::actions::{McpAction, McpActionResult};
use patchbay_domain::api::{
    ErrorKind, McpDiscover, McpDiscovery, McpProvider, McpState, TestResult,
};
use patchbay_domain::connection::Connection;
use patchbay_domain::{ConnectionId, Kind, Principal, ValidationErrors};
use patchbay_mcp::{Era, McpError};
use serde_json::{Value, json};

pub(crate) use pool::{IDLE, SessionPool, Upstream};

use crate::act::calls::Prepared;
use crate::{EngineError, Hub, Result};

/// What a discovery's outcome answers.
fn discovery(outcome: &std::result::Result<Discovery, McpError>, started: Instant) -> McpDiscovery {
    let latency = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match outcome {
        Ok(d) => McpDiscovery {
            test: TestResult::ok(
                latency,
                format!(
                    "Connected to {} ({}): {} tools",
                    d.summary.label(),
                    d.summary.protocol_version,
                    d.tools.len()
                ),
            ),
            server_info: Some(d.summary.server_info.clone()),
            protocol_version: Some(d.summary.protocol_version.clone()),
            tools_count: Some(d.tools.len()),
            tools: d.tools.clone(),
        },
        Err(e) => McpDiscovery {
            test: TestResult::failed(latency, e.kind, e.message.clone()),
            server_info: None,
            protocol_version: None,
            tools: vec![],
            tools_count: None,
        },
    }
}

/// The era a connection's server spoke at its last discovery.
fn stored_era(c: &Connection) -> Era {
    c.mcp
        .as_ref()
        .and_then(|m| m["protocol_version"].as_str())
        .map_or(Era::Unknown, Era::of)
}

/// An upstream failure as the API reports it.
pub(crate) fn mcp_error(e: McpError) -> EngineError {
    match e.kind {
        ErrorKind::Blocked => EngineError::Blocked(e.message),
        ErrorKind::Timeout => EngineError::Timeout(format!("the MCP server: {}", e.message)),
        ErrorKind::Auth => EngineError::Upstream(format!(
            "the MCP server refused the connection's credentials: {}",
            e.message
        )),
        _ => EngineError::Upstream(format!("the MCP server failed: {}", e.message)),
    }
}

fn require_mcp(c: &Connection) -> Result<()> {
    if c.kind == Kind::Mcp {
        Ok(())
    } else {
        Err(EngineError::bad_request(
            "not_mcp",
            format!(
                "this is a {} connection; only MCP connections have tools",
                c.kind.as_str()
            ),
        ))
    }
}

impl Hub {
    /// `POST /v1/mcp/discover`: connects to a server described as a connection would be, lists
    /// its tools, and saves nothing. A failure answers like a connection test.
    pub async fn mcp_discover(&self, p: &Principal, body: McpDiscover) -> Result<McpDiscovery> {
        let draft = body.into_draft();
        // The body's config fields are at its top level.
        let (name, material) = self.draft_material(p, &draft).await.map_err(|e| match e {
            EngineError::Validation(errs) => EngineError::Validation(
                errs.renamed(|f| f.strip_prefix("config.").unwrap_or(f).to_owned()),
            ),
            other => other,
        })?;
        let started = Instant::now();
        let timeout = self.connectors().timeout_for(&material);
        let outcome = self
            .connectors()
            .mcp_discover(&material, Era::Unknown, timeout)
            .await;
        drop(material);
        let found = discovery(&outcome, started);
        self.audit_draft_test(p, &name, &found.test).await?;
        Ok(found)
    }

    /// `POST /v1/connections/{id}/refresh-tools`: discovers the connection's tools again.
    pub async fn refresh_tools(&self, p: &Principal, id: &ConnectionId) -> Result<McpDiscovery> {
        let c = self.visible_connection(p, id).await?;
        if !p.can_write() {
            return Err(EngineError::forbidden(
                "refreshing tools needs an admin or member token",
            ));
        }
        require_mcp(&c)?;
        self.check_test_rate(p)?;
        self.discover_stored(p, c, p.actor()).await
    }

    /// Discovers a stored connection's server, keeps what it said (`mcp`) and records the
    /// outcome as the connection's test.
    pub(crate) async fn discover_stored(
        &self,
        p: &Principal,
        c: Connection,
        actor: String,
    ) -> Result<McpDiscovery> {
        let started = Instant::now();
        let c = match self.ensure_fresh(p, c.clone()).await {
            Ok(fresh) => fresh,
            Err(EngineError::Conflict(m) | EngineError::Upstream(m)) => {
                let failed = discovery(&Err(McpError::new(ErrorKind::Auth, m)), started);
                self.record(p, &c, &failed.test, actor).await?;
                return Ok(failed);
            }
            Err(e) => return Err(e),
        };
        let material = self.material(p, &c).await?;
        let timeout = self.connectors().timeout_for(&material);
        let outcome = self
            .connectors()
            .mcp_discover(&material, stored_era(&c), timeout)
            .await;
        drop(material);
        let found = discovery(&outcome, started);
        if let Ok(d) = &outcome {
            self.keep_discovery(p, &c.id, d).await?;
        }
        self.record(p, &c, &found.test, actor).await?;
        Ok(found)
    }

    /// Keeps what a discovery found as the connection's `mcp` state.
    async fn keep_discovery(&self, p: &Principal, id: &ConnectionId, d: &Discovery) -> Result<()> {
        let state = McpState {
            server_info: d.summary.server_info.clone(),
            protocol_version: d.summary.protocol_version.clone(),
            capabilities: Some(d.summary.capabilities.clone()),
            instructions: d.summary.instructions.clone(),
            tools: d.tools.clone(),
            tools_refreshed_at: self.now(),
        };
        let value = serde_json::to_value(&state)
            .map_err(|e| EngineError::Internal(format!("the MCP state: {e}")))?;
        let mut w = self.write().await?;
        w.set_mcp(&p.org_id, id, &value).await?;
        w.succeeded(
            p,
            "connection.tools_refreshed",
            id.to_string(),
            json!({"tools": d.tools.len(), "protocol_version": d.summary.protocol_version}),
        );
        // Prepared connections keep the era they knew: a session asked in the wrong one
        // probes again.
        w.commit().await?;
        Ok(())
    }

    /// Discovers a newly created MCP connection (its failure is the connection's first test,
    /// not the create's).
    pub(crate) async fn discover_created(&self, p: &Principal, c: Connection) {
        let id = c.id.clone();
        if let Err(e) = self.discover_stored(p, c, p.actor()).await {
            tracing::info!(connection = %id, error = %e, "discovery after create failed");
        }
    }

    /// `POST /v1/actions/mcp`: calls one tool of the connection's server.
    pub async fn mcp_action(
        &self,
        p: &Principal,
        a: McpAction,
        caller: Option<String>,
    ) -> Result<McpActionResult> {
        self.mcp_action_relayed(p, a, caller, Relay::default())
            .await
    }

    /// [`Hub::mcp_action`] with the call's notifications relayed and its cancellation.
    pub async fn mcp_action_relayed(
        &self,
        p: &Principal,
        a: McpAction,
        caller: Option<String>,
        relay: Relay,
    ) -> Result<McpActionResult> {
        let started = Instant::now();
        if a.tool.trim().is_empty() {
            return Err(ValidationErrors::single("tool", "is required").into());
        }
        let prepared = self.prepared(p, &a.connection).await?;
        crate::act::require_kind(&prepared, Kind::Mcp)?;
        let timeout = a
            .timeout_ms
            .map(Duration::from_millis)
            .or_else(|| prepared.material.spec.timeout())
            .unwrap_or(Duration::from_secs(30));
        let result = self
            .call_tool(p, &prepared, &a.tool, a.arguments, timeout, relay)
            .await;
        let is_error = result.as_ref().ok().map(|r| r.is_error);
        let (outcome, status) = match is_error {
            Some(false) => ("success", 200),
            Some(true) => ("tool_error", 422),
            None => ("failure", 502),
        };
        self.core().metrics.tool_call(outcome);
        self.audit_action(
            p,
            "action.mcp",
            a.connection.as_str(),
            is_error == Some(false),
            json!({"tool": a.tool, "is_error": is_error,
                "error": result.as_ref().err().map(ToString::to_string)}),
            started,
        )
        .await;
        self.record_use(p, &a.connection, None, caller, Some(status), started);
        result
    }

    /// Calls `tool` through the connection's pooled session.
    pub(crate) async fn call_tool(
        &self,
        p: &Principal,
        prepared: &Arc<Prepared>,
        tool: &str,
        arguments: Option<serde_json::Map<String, Value>>,
        timeout: Duration,
        relay: Relay,
    ) -> Result<McpActionResult> {
        let session = self.mcp_session(prepared, timeout).await?;
        let call = session.call_tool_relayed(tool, arguments, timeout, relay.notes);
        let outcome = match relay.cancel {
            Some(cancel) => tokio::select! {
                r = call => r,
                () = cancel.cancelled() => Err(McpError::protocol("the caller cancelled the call")),
            },
            None => call.await,
        };
        if session.take_tools_changed() {
            self.refresh_in_background(&prepared.connection);
        }
        let mut value = match outcome {
            Ok(v) => v,
            Err(e) => {
                if session.is_closed() {
                    self.inner.mcp.discard(prepared.connection.id.as_str());
                }
                let c = &prepared.connection;
                if let Some(challenge) = &e.challenge
                    && self.step_up(p, c, challenge).await
                {
                    return Err(EngineError::Upstream(format!(
                        "the MCP server needs more scopes for this tool ({}); they were added to the connection: authorize it again (POST /v1/connections/{}/oauth/start)",
                        e.message, c.id
                    )));
                }
                return Err(mcp_error(e));
            }
        };
        // A tool may echo a credential (a stdio server's environment, a header it was sent).
        prepared.material.redactor().scrub_json(&mut value);
        serde_json::from_value(value).map_err(|e| {
            EngineError::Upstream(format!("the MCP server's result is not a tool result: {e}"))
        })
    }

    /// The connection's session, started when there is none. A serving thread (a runtime of
    /// one thread) gets a session of its own, started there, so that its calls' I/O stays on
    /// it; other callers, and every stdio server (one process per connection), share one
    /// started on the hub's runtime.
    pub(crate) async fn mcp_session(
        &self,
        prepared: &Arc<Prepared>,
        timeout: Duration,
    ) -> Result<Upstream> {
        let c = &prepared.connection;
        let era = stored_era(c);
        let stdio = matches!(
            &prepared.material.spec,
            patchbay_domain::spec::ConnectionSpec::Mcp(m)
                if matches!(m.transport, patchbay_domain::spec::McpTransport::Stdio { .. })
        );
        let own_thread = !stdio
            && tokio::runtime::Handle::try_current()
                .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread);
        let home = own_thread.then(|| std::thread::current().id());
        let connect = || {
            let connectors = self.connectors().clone();
            let prepared = prepared.clone();
            let start = async move {
                let session = connectors
                    .mcp_connect(&prepared.material, era, timeout)
                    .await?;
                session.watch_tools();
                Ok(Arc::new(session) as Upstream)
            };
            if own_thread {
                return futures::future::Either::Left(start);
            }
            let started = self.spawn_background(start);
            futures::future::Either::Right(async move {
                started
                    .await
                    .map_err(|_| McpError::protocol("the session could not be started"))?
            })
        };
        self.inner
            .mcp
            .session(c.id.as_str(), home, c.version, connect)
            .await
            .map_err(mcp_error)
    }

    /// A server said its tools changed: discovered again, off the caller's path.
    fn refresh_in_background(&self, c: &Connection) {
        let Some(org) = c.org_id.clone() else { return };
        let hub = self.clone();
        let c = c.clone();
        self.spawn_background(async move {
            let system = crate::system(org);
            if let Err(e) = hub.discover_stored(&system, c, "system:mcp".into()).await {
                tracing::info!(error = %e, "re-discovery after tools/list_changed failed");
            }
        });
    }

    /// Ends idle sessions (a worker's pass).
    pub(crate) fn sweep_mcp_sessions(&self) -> usize {
        self.inner.mcp.sweep()
    }

    /// Ends every session (at shutdown: processes are killed, HTTP sessions deleted).
    pub(crate) fn close_mcp_sessions(&self) {
        self.inner.mcp.clear();
    }

    /// `GET /v1/mcp/providers`: the registry of known MCP servers, with the operator's URLs.
    pub fn mcp_providers(&self) -> Vec<McpProvider> {
        let urls = &self.inner.settings.mcp_server_urls;
        self.catalog()
            .iter()
            .filter_map(|entry| {
                let m = entry.mcp.as_ref()?;
                let name = registry_name(&entry.key);
                let url = urls.get(&name).cloned();
                let transport = if url.is_some() {
                    "streamable_http".to_owned()
                } else {
                    m.transport.clone()
                };
                Some(McpProvider {
                    default_server_url: url.or_else(|| m.server_url.clone()),
                    command: m.command.clone().filter(|_| transport == "stdio"),
                    args: if transport == "stdio" {
                        m.args.clone()
                    } else {
                        vec![]
                    },
                    transport,
                    name: entry.key.clone(),
                    display_name: entry.display_name.clone(),
                    categories: entry.categories.clone(),
                    auth_types: entry.auth_modes.clone(),
                })
            })
            .collect()
    }
}

/// The name an MCP registry entry goes by in `PATCHBAY_MCP_<NAME>_URL`: its key without the
/// `mcp-` prefix or `-mcp` suffix (`mcp-filesystem` → `filesystem`).
pub fn registry_name(key: &str) -> String {
    let name = key.strip_prefix("mcp-").unwrap_or(key);
    name.strip_suffix("-mcp").unwrap_or(name).to_owned()
}

#[cfg(test)]
mod tests {
    use super::registry_name;

    #[test]
    fn registry_names_drop_the_mcp_affix() {
        assert_eq!(registry_name("mcp-filesystem"), "filesystem");
        assert_eq!(registry_name("github-mcp"), "github");
        assert_eq!(registry_name("everything"), "everything");
    }
}
