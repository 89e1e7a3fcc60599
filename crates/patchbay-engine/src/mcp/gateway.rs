//! Patchbay as an MCP server (the gateway): the tools a principal sees — every active MCP
//! connection it can see, each tool as last discovered, named `{connection}__{tool}`
//! (`patchbay_mcp::names`), or one connection's tools under their own names — and calls of
//! them as MCP actions. Client sessions of the session era live in the store, so any replica
//! continues one another started.

use patchbay_domain::actions::{McpAction, McpActionResult};
use patchbay_domain::connection::Connection;
use patchbay_domain::{ConnectionId, Kind, Principal, Status};
use patchbay_store::McpSessionRecord;
use serde_json::{Map, Value};

use std::sync::Arc;

use crate::connections::ListQuery;
use crate::core::{Cached, Change, Forgets};
use crate::{EngineError, Hub, Result};

/// How long what the gateway read stays in memory at most (changes empty it sooner).
const CACHED_FOR: std::time::Duration = std::time::Duration::from_secs(60);

/// What the gateway reads on every request: the tools a scope sees, and its sessions.
#[derive(Debug)]
pub(crate) struct GatewayCache {
    /// By organization, project scope and connection (`*` for every one).
    tools: Cached<String, Arc<Vec<GatewayTool>>>,
    /// By the hash of the session's id.
    sessions: Cached<String, McpSessionRecord>,
}

impl GatewayCache {
    pub(crate) fn new() -> Self {
        Self {
            tools: Cached::new(10_000, CACHED_FOR),
            sessions: Cached::new(100_000, CACHED_FOR),
        }
    }
}

impl Forgets for GatewayCache {
    fn forget(&self, change: &Change) {
        match change {
            Change::Connection(_) | Change::Connections => self.tools.invalidate_all(),
            Change::McpSession(hash) => self.sessions.invalidate(hash.as_str()),
            Change::Principals => {}
        }
    }

    fn forget_all(&self) {
        self.tools.invalidate_all();
        self.sessions.invalidate_all();
    }

    fn stats(&self) -> (&'static str, crate::core::CacheStats) {
        ("mcp_gateway_tools", self.tools.stats())
    }
}

fn scope_key(p: &Principal, only: Option<&ConnectionId>) -> String {
    format!(
        "{}|{}|{}",
        p.org_id,
        p.project_id.as_ref().map_or("*", |x| x.as_str()),
        only.map_or("*", |c| c.as_str())
    )
}

/// Sessions unused this long are forgotten.
const SESSION_IDLE: chrono::Duration = chrono::Duration::hours(24);

/// One tool as the gateway offers it.
#[derive(Debug, Clone)]
pub struct GatewayTool {
    /// Its name through the gateway.
    pub name: String,
    pub connection: ConnectionId,
    /// Its name at its server, or the catalog operation's.
    pub upstream: String,
    /// Its definition as the server listed it (or as the operation makes it), `name` replaced
    /// by the gateway's.
    pub definition: Value,
    /// The catalog provider whose operation it is (an HTTP connection's, offered with
    /// `config.mcp_tools`); `None` for an MCP server's tool.
    pub operation_of: Option<String>,
}

/// The catalog operations of an HTTP connection that offers them (`config.mcp_tools`), as
/// tool definitions: every `${name}` of the path (required) and of the body is a string
/// argument.
fn operations_of(c: &Connection, catalog: &patchbay_oauth::Catalog) -> Vec<(String, Value)> {
    if c.kind != Kind::Http || c.config.get("mcp_tools").and_then(Value::as_bool) != Some(true) {
        return vec![];
    }
    let Some(entry) = catalog.get(&c.provider) else {
        return vec![];
    };
    entry
        .operations
        .iter()
        .map(|(name, op)| {
            let mut properties = Map::new();
            let mut required = Vec::new();
            for (_, _, p) in crate::connections::templates::placeholders(&op.path) {
                properties.insert(p.to_owned(), serde_json::json!({"type": "string"}));
                required.push(Value::String(p.to_owned()));
            }
            let body = op.body.as_ref().map(Value::to_string).unwrap_or_default();
            for (_, _, p) in crate::connections::templates::placeholders(&body) {
                properties
                    .entry(p.to_owned())
                    .or_insert_with(|| serde_json::json!({"type": "string"}));
            }
            let read_only = op.method.eq_ignore_ascii_case("GET");
            let definition = serde_json::json!({
                "name": name,
                "description": format!("{}: {} {}", entry.display_name, op.method, op.path),
                "inputSchema": {"type": "object", "properties": properties, "required": required},
                "annotations": {"readOnlyHint": read_only, "openWorldHint": true},
            });
            (name.clone(), definition)
        })
        .filter(|(name, _)| allowed(c, name))
        .collect()
}

/// Whether `tool` passes the connection's allow-list (`config.allowed_tools`; none: all).
fn allowed(c: &Connection, tool: &str) -> bool {
    match c.config.get("allowed_tools").and_then(Value::as_array) {
        Some(list) => list.iter().any(|t| t.as_str() == Some(tool)),
        None => true,
    }
}

fn tools_of(c: &Connection) -> Vec<(String, Value)> {
    c.mcp
        .as_ref()
        .and_then(|m| m["tools"].as_array())
        .into_iter()
        .flatten()
        .filter_map(|t| Some((t["name"].as_str()?.to_owned(), t.clone())))
        .filter(|(name, _)| allowed(c, name))
        .collect()
}

impl Hub {
    /// The connections of `kind` that `p` sees and may reach: active, in its scope.
    async fn gateway_connections(&self, p: &Principal, kind: Kind) -> Result<Vec<Connection>> {
        let mut out = Vec::new();
        let mut cursor = None;
        for _ in 0..100 {
            let page = self
                .list_connections(
                    p,
                    ListQuery {
                        kind: Some(kind.as_str().into()),
                        status: Some(Status::Active.as_str().into()),
                        limit: Some(200),
                        cursor: cursor.take(),
                        ..ListQuery::default()
                    },
                )
                .await?;
            out.extend(page.items);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        Ok(out)
    }

    /// The tools of `/mcp` (every connection's, namespaced) or of `/mcp/c/{id}` (`only`'s,
    /// under their own names).
    pub async fn gateway_tools(
        &self,
        p: &Principal,
        only: Option<&ConnectionId>,
    ) -> Result<Arc<Vec<GatewayTool>>> {
        let cache = &self.inner.gateway.tools;
        let key = scope_key(p, only);
        if let Some(tools) = cache.get(&key) {
            return Ok(tools);
        }
        let since = cache.epoch();
        let tools = Arc::new(self.read_gateway_tools(p, only).await?);
        cache.insert_read_since(since, key, tools.clone());
        Ok(tools)
    }

    async fn read_gateway_tools(
        &self,
        p: &Principal,
        only: Option<&ConnectionId>,
    ) -> Result<Vec<GatewayTool>> {
        let catalog = self.catalog();
        let offered = |c: &Connection| -> Vec<(String, Value)> {
            match c.kind {
                Kind::Mcp => tools_of(c),
                _ => operations_of(c, catalog),
            }
        };
        let operation_of = |c: &Connection| (c.kind == Kind::Http).then(|| c.provider.clone());
        if let Some(id) = only {
            let c = self.visible_connection(p, id).await?;
            let tools = offered(&c);
            if c.kind != Kind::Mcp && tools.is_empty() {
                return Err(EngineError::NotFound("MCP connection"));
            }
            return Ok(tools
                .into_iter()
                .map(|(name, definition)| GatewayTool {
                    name: name.clone(),
                    connection: c.id.clone(),
                    upstream: name,
                    definition,
                    operation_of: operation_of(&c),
                })
                .collect());
        }
        // An HTTP connection offers its operations only when it opts in (`operations_of`).
        let mut connections = self.gateway_connections(p, Kind::Mcp).await?;
        connections.extend(self.gateway_connections(p, Kind::Http).await?);
        let listed: Vec<(&Connection, String, Value)> = connections
            .iter()
            .flat_map(|c| {
                offered(c)
                    .into_iter()
                    .map(move |(name, def)| (c, name, def))
            })
            .collect();
        let pairs: Vec<(&str, &str, &str)> = listed
            .iter()
            .map(|(c, tool, _)| (c.name.as_str(), c.id.as_str(), tool.as_str()))
            .collect();
        let names = patchbay_mcp::names::name_tools(&pairs);
        Ok(names
            .into_iter()
            .map(|n| {
                let (c, tool, def) = &listed[n.index];
                let mut definition = def.clone();
                definition["name"] = Value::String(n.name.clone());
                GatewayTool {
                    name: n.name,
                    connection: c.id.clone(),
                    upstream: tool.clone(),
                    definition,
                    operation_of: operation_of(c),
                }
            })
            .collect())
    }

    /// Calls the gateway's tool `name`: `None` when there is no such tool for `p`.
    pub async fn gateway_call(
        &self,
        p: &Principal,
        only: Option<&ConnectionId>,
        name: &str,
        arguments: Option<Map<String, Value>>,
        caller: Option<String>,
        relay: super::Relay,
    ) -> Result<Option<McpActionResult>> {
        if !p.can_use() {
            return Err(EngineError::forbidden(
                "calling tools needs an admin, member or executor token",
            ));
        }
        self.check_tool_call_rate(p)?;
        let tools = self.gateway_tools(p, only).await?;
        let Some(tool) = tools.iter().find(|t| t.name == name) else {
            return Ok(None);
        };
        if let Some(service) = &tool.operation_of {
            return self
                .operation_tool(p, tool, service, arguments.unwrap_or_default(), caller)
                .await
                .map(Some);
        }
        let action = McpAction {
            connection: tool.connection.clone(),
            tool: tool.upstream.clone(),
            arguments,
            timeout_ms: None,
        };
        self.mcp_action_relayed(p, action, caller, relay)
            .await
            .map(Some)
    }

    /// Calls a catalog operation offered as a tool: its JSON answer as the result's text and
    /// `structuredContent`; a refusal by the service is an error result.
    async fn operation_tool(
        &self,
        p: &Principal,
        tool: &GatewayTool,
        service: &str,
        arguments: Map<String, Value>,
        caller: Option<String>,
    ) -> Result<McpActionResult> {
        let answered = self
            .operation(
                p,
                tool.connection.clone(),
                service,
                &tool.upstream,
                &arguments,
                caller,
            )
            .await;
        let (result, outcome) = match answered {
            Ok(body) => (
                McpActionResult {
                    content: vec![serde_json::json!({"type": "text", "text": body.to_string()})],
                    structured_content: Some(body),
                    is_error: false,
                    rest: Map::new(),
                },
                "success",
            ),
            Err(EngineError::Upstream(message)) => (
                McpActionResult {
                    content: vec![serde_json::json!({"type": "text", "text": message})],
                    structured_content: None,
                    is_error: true,
                    rest: Map::new(),
                },
                "tool_error",
            ),
            Err(e) => {
                self.core().metrics.tool_call("failure");
                return Err(e);
            }
        };
        self.core().metrics.tool_call(outcome);
        Ok(result)
    }

    /// Starts a client session of `p` in `protocol_version`; its id (shown once).
    pub async fn gateway_session_start(
        &self,
        p: &Principal,
        protocol_version: &str,
    ) -> Result<String> {
        let id = {
            use base64::Engine as _;
            use rand::RngCore as _;
            let mut bytes = [0u8; 32];
            rand::rng().fill_bytes(&mut bytes);
            format!(
                "mcps_{}",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
            )
        };
        let now = self.now();
        self.store()
            .insert_mcp_session(&McpSessionRecord {
                id_hash: hex::encode(crate::hash_token(&id)),
                org_id: p.org_id.to_string(),
                token_id: p.token_id.to_string(),
                protocol_version: protocol_version.to_owned(),
                created_at: now,
                last_used_at: now,
            })
            .await?;
        Ok(id)
    }

    /// The protocol version of `p`'s session `id`; `None` when there is none (ended, expired,
    /// another token's).
    pub async fn gateway_session(&self, p: &Principal, id: &str) -> Result<Option<String>> {
        let hash = hex::encode(crate::hash_token(id));
        let cache = &self.inner.gateway.sessions;
        let s = match cache.get(&hash) {
            Some(s) => s,
            None => {
                let since = cache.epoch();
                let Some(s) = self.store().mcp_session(&hash).await? else {
                    return Ok(None);
                };
                cache.insert_read_since(since, hash.clone(), s.clone());
                s
            }
        };
        let now = self.now();
        if s.token_id != p.token_id.to_string() || now - s.last_used_at > SESSION_IDLE {
            return Ok(None);
        }
        if now - s.last_used_at > chrono::Duration::minutes(1) {
            let since = cache.epoch();
            self.store().touch_mcp_session(&hash, now).await?;
            let touched = McpSessionRecord {
                last_used_at: now,
                ..s.clone()
            };
            cache.insert_read_since(since, hash, touched);
        }
        Ok(Some(s.protocol_version))
    }

    /// Ends `p`'s session `id` (on every replica); whether there was one.
    pub async fn gateway_session_end(&self, p: &Principal, id: &str) -> Result<bool> {
        let hash = hex::encode(crate::hash_token(id));
        let ended = self
            .store()
            .delete_mcp_session(&hash, &p.token_id.to_string())
            .await?;
        self.core().changed(Change::McpSession(hash));
        Ok(ended)
    }

    /// Forgets sessions idle for a day (a worker's pass).
    pub(crate) async fn expire_gateway_sessions(&self) -> Result<()> {
        self.store()
            .expire_mcp_sessions(self.now() - SESSION_IDLE)
            .await?;
        Ok(())
    }
}
