//! MCP connections: where a connection's server is and how it is reached ([`endpoint`]), a
//! session with it ([`Connectors::mcp_connect`]), and its test (initialize or discover, then
//! `tools/list`). HTTP transports go through the gate with the connection's headers and
//! credentials; stdio runs only commands the operator allows, with the connection's
//! environment and secrets as its variables. The Patchbay token is never forwarded.

use std::collections::BTreeMap;
use std::time::Duration;

use patchbay_domain::api::ErrorKind;
use patchbay_domain::spec::{McpConfig, McpTransport};
use patchbay_mcp::{Endpoint, Era, Limits, McpError, Session, ToolServer};
use secrecy::ExposeSecret;
use serde_json::Value;

use crate::{Connectors, Material, Outcome, Outgoing, apply_auth};

/// What a server said of itself and its tools.
#[derive(Debug, Clone)]
pub struct Discovery {
    pub summary: patchbay_mcp::ServerSummary,
    pub tools: Vec<Value>,
}

impl From<McpError> for Outcome {
    fn from(e: McpError) -> Self {
        Outcome::fail(e.kind, e.message)
    }
}

pub(crate) async fn test(c: &Connectors, m: &Material, timeout: Duration) -> Outcome {
    match c.mcp_discover(m, Era::Unknown, timeout).await {
        Ok(d) => Outcome::ok(format!(
            "Connected to {} ({}): {} tools",
            d.summary.label(),
            d.summary.protocol_version,
            d.tools.len()
        )),
        Err(e) => e.into(),
    }
}

impl Connectors {
    /// Connects to the MCP server of `m`; `era` is what it spoke last time.
    pub async fn mcp_connect(
        &self,
        m: &Material,
        era: Era,
        timeout: Duration,
    ) -> Result<Session, McpError> {
        let endpoint = endpoint(self, m).await?;
        patchbay_mcp::connect(&endpoint, self.http(), era, self.mcp_limits(), timeout).await
    }

    /// Connects, lists the tools, and ends the session.
    pub async fn mcp_discover(
        &self,
        m: &Material,
        era: Era,
        timeout: Duration,
    ) -> Result<Discovery, McpError> {
        let started = tokio::time::Instant::now();
        let session = self.mcp_connect(m, era, timeout).await?;
        let left = timeout.saturating_sub(started.elapsed());
        let tools = session.list_tools(left).await;
        let summary = session.summary().clone();
        session.close().await;
        Ok(Discovery {
            summary,
            tools: tools?,
        })
    }

    pub fn mcp_limits(&self) -> Limits {
        Limits::default()
    }

    /// How long a test or a discovery of `m` may take: the connection's timeout, at most the
    /// operator's test timeout.
    pub fn timeout_for(&self, m: &Material) -> Duration {
        m.timeout(self.settings.test_timeout)
    }
}

/// The connection's MCP configuration.
fn config(m: &Material) -> Result<&McpConfig, McpError> {
    match &m.spec {
        patchbay_domain::spec::ConnectionSpec::Mcp(c) => Ok(c),
        _ => Err(McpError::protocol("not an MCP connection")),
    }
}

/// Where the server of `m` is: its URL with the connection's headers and credentials, or its
/// allowed program with the connection's environment.
pub async fn endpoint(c: &Connectors, m: &Material) -> Result<Endpoint, McpError> {
    let config = config(m)?;
    match &config.transport {
        McpTransport::StreamableHttp { url } => {
            let (url, headers) = http_target(c, m, url).await?;
            Ok(Endpoint::StreamableHttp { url, headers })
        }
        McpTransport::Sse { url } => {
            let (url, headers) = http_target(c, m, url).await?;
            Ok(Endpoint::Sse { url, headers })
        }
        McpTransport::Stdio { command, args, env } => stdio_target(c, m, command, args, env),
    }
}

async fn http_target(
    c: &Connectors,
    m: &Material,
    server: &str,
) -> Result<(url::Url, patchbay_mcp::Headers), McpError> {
    let url = url::Url::parse(server)
        .map_err(|e| McpError::protocol(format!("config.server_url: {e}")))?;
    let mut out = Outgoing {
        url,
        headers: m.default_headers().collect(),
    };
    apply_auth(c.http(), m, &mut out).await.map_err(|e| {
        let o = Outcome::from(e);
        McpError::new(o.kind.unwrap_or(ErrorKind::Protocol), o.message)
    })?;
    let headers = out
        .headers
        .into_iter()
        .filter_map(|(k, v)| Some((k?, v)))
        .collect();
    Ok((out.url, headers))
}

fn stdio_target(
    c: &Connectors,
    m: &Material,
    command: &str,
    args: &[String],
    env: &BTreeMap<String, String>,
) -> Result<Endpoint, McpError> {
    let Some(program) = c.settings.allowed_command(command) else {
        return Err(McpError::new(
            ErrorKind::Blocked,
            format!(
                "the command {command:?} is not on the operator's allow-list (--allow-command)"
            ),
        ));
    };
    let mut vars = env.clone();
    let mut redact = Vec::new();
    // A stdio server's secrets are its environment variables.
    for (name, value) in &m.secrets {
        vars.insert(name.clone(), value.expose_secret().to_owned());
        redact.push(value.expose_secret().to_owned());
    }
    Ok(Endpoint::Stdio(patchbay_mcp::Command {
        program: program.into(),
        args: args.to_vec(),
        env: vars,
        redact,
        label: command.to_owned(),
    }))
}
