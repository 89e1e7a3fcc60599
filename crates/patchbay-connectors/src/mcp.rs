//! MCP connection test: `initialize` then `tools/list` over Streamable HTTP (through the gate)
//! or stdio (only commands the operator allows). The Patchbay token is never forwarded: the
//! upstream's credentials come from the connection.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use patchbay_domain::api::ErrorKind;
use reqwest::header::{HeaderName, HeaderValue};
use rmcp::ServiceExt;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use secrecy::ExposeSecret;

use crate::{Connectors, Material, Outcome};

pub(crate) async fn test(c: &Connectors, m: &Material, timeout: Duration) -> Outcome {
    match m.config_str("transport").unwrap_or("streamable_http") {
        "streamable_http" => streamable_http(c, m, timeout).await,
        "stdio" => stdio(c, m, timeout).await,
        other => Outcome::fail(
            ErrorKind::Protocol,
            format!("the {other} transport is not available in this build"),
        ),
    }
}

/// Upstream credentials as headers (and query for `api_key` in the query string).
fn upstream_auth(
    m: &Material,
    url: &mut url::Url,
) -> Result<(Option<String>, HashMap<HeaderName, HeaderValue>), Outcome> {
    let mut headers = HashMap::new();
    let bad = || {
        Outcome::fail(
            ErrorKind::Protocol,
            "a credential cannot be sent in an HTTP header",
        )
    };
    let mut sensitive = |name: &str, value: String| -> Result<(), Outcome> {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad())?;
        let mut v = HeaderValue::from_str(&value).map_err(|_| bad())?;
        v.set_sensitive(true);
        headers.insert(name, v);
        Ok(())
    };
    let mut bearer = None;
    match m.auth_str("type").unwrap_or("none") {
        "bearer" => bearer = m.secret("token").map(|t| t.expose_secret().to_owned()),
        "oauth2" => {
            bearer = m
                .secret("access_token")
                .map(|t| t.expose_secret().to_owned())
        }
        "basic" => {
            let user = m.auth_str("username").unwrap_or_default();
            let pass = m
                .secret("password")
                .map(|s| s.expose_secret())
                .unwrap_or_default();
            let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
            sensitive("authorization", format!("Basic {b64}"))?;
        }
        "api_key" => {
            let key = format!(
                "{}{}",
                m.auth_str("prefix").unwrap_or(""),
                m.secret("api_key")
                    .map(|s| s.expose_secret())
                    .unwrap_or_default()
            );
            let name = m.auth_str("name").unwrap_or("X-API-Key");
            match m.auth_str("in").unwrap_or("header") {
                "query" => {
                    url.query_pairs_mut().append_pair(name, &key);
                }
                "cookie" => sensitive("cookie", format!("{name}={key}"))?,
                _ => sensitive(name, key)?,
            }
        }
        _ => {}
    }
    Ok((bearer, headers))
}

async fn streamable_http(c: &Connectors, m: &Material, timeout: Duration) -> Outcome {
    let mut url = match url::Url::parse(m.config_str("server_url").unwrap_or_default()) {
        Ok(u) => u,
        Err(e) => return Outcome::fail(ErrorKind::Protocol, format!("config.server_url: {e}")),
    };
    if let Err(e) = c.http().check_url(&url).await {
        return e.into();
    }
    let (bearer, headers) = match upstream_auth(m, &mut url) {
        Ok(a) => a,
        Err(o) => return o,
    };
    let mut config = StreamableHttpClientTransportConfig::with_uri(url.as_str())
        .control_request_timeout(timeout);
    config.custom_headers = headers;
    if let Some(token) = bearer {
        config = config.auth_header(token);
    }
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

/// Starts an allowed command with a minimal environment and speaks MCP over its stdio.
async fn stdio(c: &Connectors, m: &Material, timeout: Duration) -> Outcome {
    let command = m.config_str("command").unwrap_or_default();
    if !c.settings.allow_commands.iter().any(|a| a == command) {
        return Outcome::fail(
            ErrorKind::Blocked,
            format!(
                "the command {command:?} is not on the operator's allow-list (--allow-command)"
            ),
        );
    }
    let args: Vec<String> = m
        .config
        .get("args")
        .and_then(serde_json::Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let mut cmd = tokio::process::Command::new(command);
    cmd.args(&args).env_clear().kill_on_drop(true);
    for var in ["PATH", "HOME", "LANG"] {
        if let Ok(v) = std::env::var(var) {
            cmd.env(var, v);
        }
    }
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
