//! Patchbay's MCP client: one [`ToolServer`] per upstream, over Streamable HTTP (the session
//! era 2025-03-26 … 2025-11-25 and the stateless revision 2026-07-28, negotiated modern first),
//! the legacy HTTP+SSE transport (2024-11-05) and stdio child processes.
//!
//! The protocol is rmcp's (the official SDK); this crate chooses its transports, bounds every
//! call by a deadline and every answer by a size, follows cursors with a guard, and turns
//! every failure into an [`McpError`] with an [`ErrorKind`] and a message that carries no URL
//! and no credential. HTTP transports go through the outbound gate's client; the caller
//! injects the connection's credentials as headers, so no Patchbay token can reach upstream.

pub mod auth;
mod client;
mod error;
mod limit;
pub mod names;
mod sse;
mod stdio;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use futures::future::BoxFuture;
use reqwest::header::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use client::{Session, connect};
pub use error::McpError;
pub use patchbay_domain::api::ErrorKind;

/// The protocol revisions this client speaks, newest first.
pub const MODERN_VERSION: &str = "2026-07-28";
pub const LEGACY_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// Where an MCP server is and how it is reached.
#[derive(Debug, Clone)]
pub enum Endpoint {
    /// Streamable HTTP, either era.
    StreamableHttp { url: url::Url, headers: Headers },
    /// The legacy HTTP+SSE transport: a GET stream that names the endpoint to POST to.
    Sse { url: url::Url, headers: Headers },
    /// A child process speaking newline-delimited JSON-RPC on its standard streams.
    Stdio(Command),
}

/// Where a relayed call's notifications go.
pub type Notes = tokio::sync::mpsc::UnboundedSender<Value>;

/// Headers sent with every request (the connection's defaults and credentials).
pub type Headers = HashMap<HeaderName, HeaderValue>;

/// An allowed program, its arguments and its environment (besides `PATH`, `HOME` and `LANG`,
/// nothing of Patchbay's environment reaches it).
#[derive(Clone)]
pub struct Command {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// Values that must never appear in what the process writes to stderr (its secrets).
    pub redact: Vec<String>,
    /// The command as the connection names it, for messages.
    pub label: String,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Command")
            .field("program", &self.program)
            .field("args", &self.args.len())
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Which era a server was last seen to speak, so that the next connection asks it first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Era {
    /// Not known yet: probe modern first, fall back to `initialize`.
    #[default]
    Unknown,
    Modern,
    Legacy,
}

impl Era {
    /// The era of a negotiated protocol version.
    pub fn of(protocol_version: &str) -> Self {
        if protocol_version >= MODERN_VERSION {
            Era::Modern
        } else {
            Era::Legacy
        }
    }
}

/// Bounds on what one server may send.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest answer (one JSON body, one SSE event, one stdio line).
    pub max_message_bytes: usize,
    /// The most `tools/list` pages followed.
    pub max_pages: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 8 * 1024 * 1024,
            max_pages: 100,
        }
    }
}

/// What a server says of itself once connected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerSummary {
    /// `serverInfo`: name, version and whatever else it reports.
    pub server_info: Value,
    pub protocol_version: String,
    pub capabilities: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
}

impl ServerSummary {
    pub fn era(&self) -> Era {
        Era::of(&self.protocol_version)
    }

    /// `name version`, for messages.
    pub fn label(&self) -> String {
        let name = self.server_info["name"].as_str().unwrap_or("an MCP server");
        match self.server_info["version"].as_str() {
            Some(v) => format!("{name} {v}"),
            None => name.to_owned(),
        }
    }
}

/// A connected MCP server, whatever its transport: what the engine and the gateway use.
pub trait ToolServer: Send + Sync + 'static {
    fn summary(&self) -> &ServerSummary;

    /// Every tool, cursors followed (a repeated cursor or more than [`Limits::max_pages`]
    /// pages is an error); each tool as the server wrote it.
    fn list_tools(&self, timeout: Duration) -> BoxFuture<'_, Result<Vec<Value>, McpError>>;

    /// Calls a tool; the result as the server wrote it (`content` of every type,
    /// `structuredContent`, `isError`). On timeout the request is cancelled upstream.
    fn call_tool<'a>(
        &'a self,
        name: &'a str,
        arguments: Option<Map<String, Value>>,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Value, McpError>> {
        self.call_tool_relayed(name, arguments, timeout, None)
    }

    /// Like [`ToolServer::call_tool`]; with `notes`, the call asks for progress and what the
    /// server notifies while it runs (`notifications/progress` without its token,
    /// `notifications/message`) is sent there as `{"method", "params"}`.
    fn call_tool_relayed<'a>(
        &'a self,
        name: &'a str,
        arguments: Option<Map<String, Value>>,
        timeout: Duration,
        notes: Option<Notes>,
    ) -> BoxFuture<'a, Result<Value, McpError>>;

    /// Whether the server announced that its tools changed since the last listing.
    fn take_tools_changed(&self) -> bool;

    /// Whether the session ended (the server closed it, the process died).
    fn is_closed(&self) -> bool;
}
