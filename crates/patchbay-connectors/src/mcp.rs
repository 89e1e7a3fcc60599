//! MCP connection test: `initialize` then `tools/list` over Streamable HTTP (through the gate)
//! or stdio (only commands the operator allows). The Patchbay token is never forwarded: the
//! upstream's credentials come from the connection.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use patchbay_domain::api::ErrorKind;
use patchbay_domain::spec::{McpConfig, McpTransport};
use reqwest::header::{HeaderName, HeaderValue};
use rmcp::ServiceExt;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;

use crate::{Connectors, Material, Outcome, Outgoing, apply_auth};

pub(crate) async fn test(
    c: &Connectors,
    m: &Material,
    config: &McpConfig,
    timeout: Duration,
) -> Outcome {
    match &config.transport {
        McpTransport::StreamableHttp { url } => streamable_http(c, m, url, timeout).await,
        McpTransport::Stdio { command, args, env } => stdio(c, command, args, env, timeout).await,
        // Validation refuses it until a client for it exists.
        McpTransport::Sse { .. } => Outcome::fail(
            ErrorKind::Protocol,
            "the legacy HTTP+SSE transport is not available yet",
        ),
    }
}

/// The connection's default headers and credentials, injected as for every other kind (an API
/// key in the query goes into `url`).
async fn upstream_headers(
    c: &Connectors,
    m: &Material,
    url: url::Url,
) -> Result<(url::Url, HashMap<HeaderName, HeaderValue>), Outcome> {
    let mut out = Outgoing {
        url,
        headers: m.default_headers().collect(),
    };
    apply_auth(c.http(), m, &mut out).await?;
    Ok((
        out.url,
        out.headers
            .into_iter()
            .filter_map(|(k, v)| Some((k?, v)))
            .collect(),
    ))
}

async fn streamable_http(c: &Connectors, m: &Material, server: &str, timeout: Duration) -> Outcome {
    let url = match url::Url::parse(server) {
        Ok(u) => u,
        Err(e) => return Outcome::fail(ErrorKind::Protocol, format!("config.server_url: {e}")),
    };
    if let Err(e) = c.http().check_url(&url).await {
        return e.into();
    }
    let (url, headers) = match upstream_headers(c, m, url).await {
        Ok(pair) => pair,
        Err(o) => return o,
    };
    let mut config = StreamableHttpClientTransportConfig::with_uri(url.as_str())
        .control_request_timeout(timeout);
    config.custom_headers = headers;
    // A client of its own records gate refusals, which the MCP library reports only as text.
    let (http, refusals) = match c.http().observed() {
        Ok(pair) => pair,
        Err(e) => return Outcome::fail(ErrorKind::Protocol, e),
    };
    let transport =
        StreamableHttpClientTransport::with_client(http.following_client().clone(), config);
    let run = async {
        let client = ().serve(transport).await.map_err(|e| describe(&e))?;
        let server = client
            .peer_info()
            .and_then(|i| {
                i.server_info
                    .as_ref()
                    .map(|s| format!("{} {}", s.name, s.version))
            })
            .unwrap_or_else(|| "an MCP server".into());
        let tools = client.list_all_tools().await.map_err(|e| describe(&e));
        let _ = client.cancel().await;
        tools.map(|t| (server, t.len()))
    };
    match tokio::time::timeout(timeout, run).await {
        Ok(Ok((server, n))) => Outcome::ok(format!("Connected to {server}: {n} tools")),
        Ok(Err(outcome)) => refusals.last().map_or(outcome, Outcome::from),
        Err(_) => Outcome::fail(
            ErrorKind::Timeout,
            format!("no answer within {} ms", timeout.as_millis()),
        ),
    }
}

/// Starts an allowed command with a minimal environment (and the connection's own variables)
/// and speaks MCP over its stdio.
async fn stdio(
    c: &Connectors,
    command: &str,
    args: &[String],
    env: &BTreeMap<String, String>,
    timeout: Duration,
) -> Outcome {
    let Some(program) = c.settings.allowed_command(command) else {
        return Outcome::fail(
            ErrorKind::Blocked,
            format!(
                "the command {command:?} is not on the operator's allow-list (--allow-command)"
            ),
        );
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args).env_clear().kill_on_drop(true);
    for var in ["PATH", "HOME", "LANG"] {
        if let Ok(v) = std::env::var(var) {
            cmd.env(var, v);
        }
    }
    cmd.envs(env);
    let transport = match rmcp::transport::TokioChildProcess::new(cmd) {
        Ok(t) => t,
        Err(e) => {
            return Outcome::fail(
                ErrorKind::Refused,
                format!("cannot start {command:?}: {}", e.kind()),
            );
        }
    };
    let run = async {
        let client = ().serve(transport).await.map_err(|e| describe(&e))?;
        let tools = client.list_all_tools().await.map_err(|e| describe(&e));
        let _ = client.cancel().await;
        tools.map(|t| t.len())
    };
    match tokio::time::timeout(timeout, run).await {
        Ok(Ok(n)) => Outcome::ok(format!("Started {command}: {n} tools")),
        Ok(Err(outcome)) => outcome,
        Err(_) => Outcome::fail(
            ErrorKind::Timeout,
            format!("no answer within {} ms", timeout.as_millis()),
        ),
    }
}

/// Sorts an MCP client failure: gate refusals and transport failures by their type, HTTP
/// auth refusals by their status, the rest as protocol errors; URLs never reach the message.
fn describe(e: &(dyn std::error::Error + 'static)) -> Outcome {
    if let Some(http) = patchbay_net::classify_chain(e) {
        return http.into();
    }
    let text = patchbay_net::redact_urls(&e.to_string());
    let lower = text.to_ascii_lowercase();
    let auth = [
        "401 unauthorized",
        "403 forbidden",
        "status: 401",
        "status: 403",
        "auth required",
        "authrequired",
        "unauthorized",
    ]
    .iter()
    .any(|w| lower.contains(w));
    let kind = if auth {
        ErrorKind::Auth
    } else {
        ErrorKind::Protocol
    };
    Outcome::fail(
        kind,
        format!("MCP: {}", text.chars().take(300).collect::<String>()),
    )
}
