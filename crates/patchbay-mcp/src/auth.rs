//! MCP authorization (the 2025-11-25 revision's): from a server's 401 to the authorization
//! server that protects it and a client registered with it.
//!
//! - the challenge's `resource_metadata` and `scope` ([`Challenge`]);
//! - RFC 9728 protected-resource metadata, from the challenge and then the well-known paths,
//!   whose `resource` must be the server's own;
//! - RFC 8414 / OpenID Connect discovery of the authorization server, whose `issuer` must be
//!   the one named (RFC 8414 §3.3), refused without PKCE S256;
//! - RFC 7591 dynamic client registration ([`register`]).
//!
//! Every request goes through the outbound gate without following redirects, is bounded by the
//! caller's deadline, and reads at most [`METADATA_MAX`] bytes. Errors name the document and
//! the reason, never a token.

use std::time::Duration;

use patchbay_domain::api::ErrorKind;
use patchbay_net::GatedHttp;
use reqwest::header::{ACCEPT, CONTENT_TYPE, WWW_AUTHENTICATE};
use serde_json::{Value, json};
use url::Url;

use crate::McpError;

/// The largest metadata document or registration answer read.
pub const METADATA_MAX: usize = 256 * 1024;

/// What a `WWW-Authenticate: Bearer …` challenge says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Challenge {
    pub error: Option<String>,
    pub scope: Option<String>,
    pub resource_metadata: Option<String>,
}

impl Challenge {
    /// Parses the auth-params of a Bearer challenge (RFC 6750 §3, RFC 9728 §5.1); other
    /// schemes and malformed parameters are ignored.
    pub fn parse(header: &str) -> Self {
        let mut out = Self::default();
        let trimmed = header.trim_start();
        let Some(rest) = trimmed
            .get(..6)
            .filter(|s| s.eq_ignore_ascii_case("bearer"))
            .map(|_| &trimmed[6..])
        else {
            return out;
        };
        for (name, value) in auth_params(rest) {
            match name.to_ascii_lowercase().as_str() {
                "error" => out.error = Some(value),
                "scope" => out.scope = Some(value),
                "resource_metadata" => out.resource_metadata = Some(value),
                _ => {}
            }
        }
        out
    }

    /// The scopes the challenge names.
    pub fn scopes(&self) -> Vec<String> {
        split_scopes(self.scope.as_deref().unwrap_or_default())
    }

    pub fn insufficient_scope(&self) -> bool {
        self.error.as_deref() == Some("insufficient_scope")
    }
}

fn split_scopes(s: &str) -> Vec<String> {
    s.split_ascii_whitespace().map(str::to_owned).collect()
}

/// `name=value` and `name="quoted value"` pairs separated by commas.
fn auth_params(mut s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    loop {
        s = s.trim_start_matches(|c: char| c == ',' || c.is_ascii_whitespace());
        let Some(eq) = s.find('=') else { break };
        let name = s[..eq].trim().to_owned();
        s = s[eq + 1..].trim_start();
        let value;
        if let Some(quoted) = s.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            v.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => v.push(c),
                }
            }
            value = v;
            s = &quoted[end.min(quoted.len())..];
        } else {
            let end = s.find(',').unwrap_or(s.len());
            value = s[..end].trim().to_owned();
            s = &s[end..];
        }
        if name.is_empty() || name.contains(char::is_whitespace) {
            break;
        }
        out.push((name, value));
    }
    out
}

/// The authorization server of an MCP server, as discovered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthServer {
    /// The protected resource's identifier: the `resource` of RFC 8707 requests.
    pub resource: String,
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub registration_endpoint: Option<String>,
    pub revocation_endpoint: Option<String>,
    /// What to ask for: the challenge's scopes, else the resource's `scopes_supported`, with
    /// `offline_access` when the authorization server offers it (for refresh tokens).
    pub scopes: Vec<String>,
    /// The server accepts client ID metadata documents (`client_id_metadata_document_supported`).
    pub metadata_documents: bool,
    pub token_auth_methods: Vec<String>,
}

/// Asks `server` without credentials and follows its 401 to the authorization server.
pub async fn discover(
    http: &GatedHttp,
    server: &Url,
    deadline: Duration,
) -> Result<AuthServer, McpError> {
    tokio::time::timeout(deadline, discover_inner(http, server))
        .await
        .unwrap_or_else(|_| Err(McpError::timeout(deadline)))
}

async fn discover_inner(http: &GatedHttp, server: &Url) -> Result<AuthServer, McpError> {
    let challenge = probe(http, server).await?;
    let (resource, scopes_supported, issuers) = resource_metadata(http, server, &challenge).await?;
    let issuer = issuers.first().ok_or_else(|| {
        McpError::protocol("the protected-resource metadata names no authorization server")
    })?;
    let meta = server_metadata(http, issuer).await?;
    let text = |k: &str| meta.get(k).and_then(Value::as_str).map(str::to_owned);
    let list = |k: &str| strings(meta.get(k));
    if !list("code_challenge_methods_supported")
        .iter()
        .any(|m| m == "S256")
    {
        return Err(McpError::protocol(
            "the authorization server does not offer PKCE with S256 (code_challenge_methods_supported), which MCP authorization requires",
        ));
    }
    let endpoint = |k: &str| -> Result<String, McpError> {
        let v = text(k).ok_or_else(|| {
            McpError::protocol(format!("the authorization server's metadata has no {k}"))
        })?;
        web_url(&v)
            .map(|_| v)
            .map_err(|why| McpError::protocol(format!("the authorization server's {k} {why}")))
    };
    let optional = |k: &str| text(k).filter(|v| web_url(v).is_ok());
    let mut scopes = challenge.scopes();
    if scopes.is_empty() {
        scopes = scopes_supported;
    }
    if list("scopes_supported")
        .iter()
        .any(|s| s == "offline_access")
        && !scopes.iter().any(|s| s == "offline_access")
    {
        scopes.push("offline_access".into());
    }
    Ok(AuthServer {
        resource,
        issuer: issuer.clone(),
        authorization_endpoint: endpoint("authorization_endpoint")?,
        token_endpoint: endpoint("token_endpoint")?,
        registration_endpoint: optional("registration_endpoint"),
        revocation_endpoint: optional("revocation_endpoint"),
        scopes,
        metadata_documents: meta
            .get("client_id_metadata_document_supported")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        token_auth_methods: list("token_endpoint_auth_methods_supported"),
    })
}

/// The strings of a JSON array (none when it is not one).
fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn web_url(raw: &str) -> Result<Url, &'static str> {
    let url = Url::parse(raw).map_err(|_| "is not a URL")?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("is not an http(s) URL");
    }
    Ok(url)
}

/// Unauthenticated requests: `initialize`, and `tools/list` when a server lets anyone
/// initialize; the server's 401 and its challenge.
async fn probe(http: &GatedHttp, server: &Url) -> Result<Challenge, McpError> {
    let initialize = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "patchbay", "version": env!("CARGO_PKG_VERSION")}
        }
    });
    let send = |body: Value, session: Option<reqwest::header::HeaderValue>| {
        let mut req = http
            .client()
            .post(server.clone())
            .header(ACCEPT, "application/json, text/event-stream")
            .header(CONTENT_TYPE, "application/json")
            .header("mcp-protocol-version", "2025-11-25")
            .body(body.to_string());
        if let Some(s) = session {
            req = req.header("mcp-session-id", s);
        }
        async move {
            let req = req
                .build()
                .map_err(|_| McpError::protocol("the MCP server's URL cannot be requested"))?;
            http.execute(req).await.map_err(McpError::from_http)
        }
    };
    let mut answer = send(initialize, None).await?;
    if answer.status().is_success() {
        let session = answer.headers().get("mcp-session-id").cloned();
        let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}});
        answer = send(list, session).await?;
    }
    let status = answer.status();
    if status != reqwest::StatusCode::UNAUTHORIZED {
        return Err(McpError::new(
            ErrorKind::Protocol,
            format!(
                "the MCP server did not ask for authorization (it answered HTTP {} without credentials)",
                status.as_u16()
            ),
        ));
    }
    Ok(answer
        .headers()
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(Challenge::parse)
        .find(|c| c.resource_metadata.is_some() || c.scope.is_some())
        .unwrap_or_default())
}

/// GETs a JSON document, `None` when it is not there (4xx).
async fn fetch_json(http: &GatedHttp, url: &Url, what: &str) -> Result<Option<Value>, McpError> {
    let req = http
        .client()
        .get(url.clone())
        .header(ACCEPT, "application/json")
        .build()
        .map_err(|_| McpError::protocol(format!("the {what} URL cannot be requested")))?;
    let answer = http.execute(req).await.map_err(McpError::from_http)?;
    let status = answer.status();
    if status.is_client_error() || status.is_redirection() {
        return Ok(None);
    }
    if !status.is_success() {
        return Err(McpError::protocol(format!(
            "the {what} answered HTTP {}",
            status.as_u16()
        )));
    }
    let body = read_limited(answer, what).await?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|_| McpError::protocol(format!("the {what} is not JSON")))
}

async fn read_limited(answer: reqwest::Response, what: &str) -> Result<Vec<u8>, McpError> {
    patchbay_net::read_capped(reqwest::Body::from(answer), METADATA_MAX)
        .await
        .map_err(|why| {
            McpError::protocol(format!("the {what}: {}", patchbay_net::redact_urls(&why)))
        })
}

/// `origin` + `/.well-known/{name}` + `path` (RFC 8414 §3.1, RFC 9728 §3.1), the path left out
/// when it is `/`.
fn well_known(base: &Url, name: &str, with_path: bool) -> Url {
    let mut url = base.clone();
    let path = base.path().trim_end_matches('/');
    let suffix = if with_path { path } else { "" };
    url.set_path(&format!("/.well-known/{name}{suffix}"));
    url.set_query(None);
    url.set_fragment(None);
    url
}

/// The protected-resource metadata: its `resource`, `scopes_supported` and
/// `authorization_servers`.
async fn resource_metadata(
    http: &GatedHttp,
    server: &Url,
    challenge: &Challenge,
) -> Result<(String, Vec<String>, Vec<String>), McpError> {
    let mut candidates = Vec::new();
    if let Some(raw) = &challenge.resource_metadata {
        let url = web_url(raw).map_err(|why| {
            McpError::protocol(format!("the challenge's resource_metadata {why}"))
        })?;
        candidates.push(url);
    }
    if server.path().trim_end_matches('/').is_empty() {
        candidates.push(well_known(server, "oauth-protected-resource", false));
    } else {
        candidates.push(well_known(server, "oauth-protected-resource", true));
        candidates.push(well_known(server, "oauth-protected-resource", false));
    }
    for url in candidates {
        let Some(doc) = fetch_json(http, &url, "protected-resource metadata").await? else {
            continue;
        };
        let resource = doc
            .get("resource")
            .and_then(Value::as_str)
            .ok_or_else(|| McpError::protocol("the protected-resource metadata has no resource"))?;
        if !is_resource_of(resource, server) {
            return Err(McpError::protocol(
                "the protected-resource metadata names another resource than this MCP server",
            ));
        }
        return Ok((
            resource.to_owned(),
            strings(doc.get("scopes_supported")),
            strings(doc.get("authorization_servers")),
        ));
    }
    Err(McpError::protocol(
        "the MCP server publishes no protected-resource metadata (RFC 9728)",
    ))
}

/// `resource` identifies `server`: the same origin, and the server's path within its path.
fn is_resource_of(resource: &str, server: &Url) -> bool {
    let Ok(r) = Url::parse(resource) else {
        return false;
    };
    if r.origin() != server.origin() {
        return false;
    }
    let base = r.path().trim_end_matches('/');
    let path = server.path().trim_end_matches('/');
    path == base || path.starts_with(&format!("{base}/")) || base.is_empty()
}

/// RFC 8414 and OpenID Connect discovery, in the order the MCP specification gives; the
/// document's `issuer` must be `issuer`.
async fn server_metadata(
    http: &GatedHttp,
    issuer: &str,
) -> Result<serde_json::Map<String, Value>, McpError> {
    let base = web_url(issuer)
        .map_err(|why| McpError::protocol(format!("the authorization server {issuer:?} {why}")))?;
    let has_path = !base.path().trim_end_matches('/').is_empty();
    let mut candidates = vec![well_known(&base, "oauth-authorization-server", has_path)];
    candidates.push(well_known(&base, "openid-configuration", has_path));
    if has_path {
        let mut appended = base.clone();
        appended.set_path(&format!(
            "{}/.well-known/openid-configuration",
            base.path().trim_end_matches('/')
        ));
        candidates.push(appended);
    }
    for url in candidates {
        let Some(Value::Object(doc)) =
            fetch_json(http, &url, "authorization server's metadata").await?
        else {
            continue;
        };
        let named = doc
            .get("issuer")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if named != issuer {
            return Err(McpError::protocol(
                "the authorization server's metadata names another issuer (RFC 8414 §3.3)",
            ));
        }
        return Ok(doc);
    }
    Err(McpError::protocol(
        "the authorization server publishes no metadata (RFC 8414 or OpenID Connect discovery)",
    ))
}

/// A client registered by RFC 7591.
#[derive(Clone, PartialEq, Eq)]
pub struct Registered {
    pub client_id: String,
    pub client_secret: Option<String>,
    pub auth_method: String,
}

impl std::fmt::Debug for Registered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registered")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "…"))
            .field("auth_method", &self.auth_method)
            .finish()
    }
}

/// Registers Patchbay with the server's `registration_endpoint`: a confidential client
/// (`client_secret_basic`) unless the server only takes public ones.
pub async fn register(
    http: &GatedHttp,
    server: &AuthServer,
    redirect_uri: &str,
    deadline: Duration,
) -> Result<Registered, McpError> {
    let endpoint = server.registration_endpoint.as_deref().ok_or_else(|| {
        McpError::protocol(
            "the authorization server offers no dynamic client registration; give the connection a client_id",
        )
    })?;
    let methods = &server.token_auth_methods;
    let method = if methods.is_empty() || methods.iter().any(|m| m == "client_secret_basic") {
        "client_secret_basic"
    } else if methods.iter().any(|m| m == "client_secret_post") {
        "client_secret_post"
    } else {
        "none"
    };
    // No `scope`: a client registered for some scopes could not step up to more later.
    let body = json!({
        "client_name": "Patchbay",
        "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": method,
    });
    let work = async {
        let req = http
            .client()
            .post(endpoint)
            .header(ACCEPT, "application/json")
            .json(&body)
            .build()
            .map_err(|_| McpError::protocol("the registration endpoint cannot be requested"))?;
        let answer = http.execute(req).await.map_err(McpError::from_http)?;
        let status = answer.status();
        let doc: Value =
            serde_json::from_slice(&read_limited(answer, "registration answer").await?)
                .unwrap_or(Value::Null);
        if !status.is_success() {
            let code = doc
                .get("error")
                .and_then(Value::as_str)
                .map(patchbay_oauth::wire::error_code)
                .unwrap_or_else(|| format!("HTTP {}", status.as_u16()));
            return Err(McpError::protocol(format!(
                "the authorization server refused the client registration ({code})"
            )));
        }
        let client_id = doc
            .get("client_id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| McpError::protocol("the registration answer has no client_id"))?;
        let client_secret = doc
            .get("client_secret")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let auth_method = doc
            .get("token_endpoint_auth_method")
            .and_then(Value::as_str)
            .unwrap_or(method)
            .to_owned();
        Ok(Registered {
            client_id: client_id.to_owned(),
            client_secret,
            auth_method,
        })
    };
    tokio::time::timeout(deadline, work)
        .await
        .unwrap_or_else(|_| Err(McpError::timeout(deadline)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse_quoted_and_plain_parameters() {
        let c = Challenge::parse(
            r#"Bearer error="insufficient_scope", scope="files:read files:write", resource_metadata="https://mcp.example/.well-known/oauth-protected-resource/mcp""#,
        );
        assert!(c.insufficient_scope());
        assert_eq!(c.scopes(), ["files:read", "files:write"]);
        assert_eq!(
            c.resource_metadata.as_deref(),
            Some("https://mcp.example/.well-known/oauth-protected-resource/mcp")
        );
        let plain = Challenge::parse(r#"bearer realm=mcp,scope="a \"b\"""#);
        assert_eq!(plain.scope.as_deref(), Some(r#"a "b""#));
        assert_eq!(Challenge::parse("Basic realm=\"x\""), Challenge::default());
        assert_eq!(Challenge::parse("Bearer"), Challenge::default());
        assert_eq!(
            Challenge::parse("Bearer error=\"unterminated"),
            Challenge {
                error: Some("unterminated".into()),
                ..Challenge::default()
            }
        );
    }

    #[test]
    fn well_known_paths_keep_the_resource_path() {
        let server = Url::parse("https://mcp.example/tenant/mcp?x=1").unwrap();
        assert_eq!(
            well_known(&server, "oauth-protected-resource", true).as_str(),
            "https://mcp.example/.well-known/oauth-protected-resource/tenant/mcp"
        );
        assert_eq!(
            well_known(&server, "oauth-protected-resource", false).as_str(),
            "https://mcp.example/.well-known/oauth-protected-resource"
        );
    }

    #[test]
    fn a_resource_must_be_the_servers_own() {
        let server = Url::parse("https://mcp.example/tenant/mcp").unwrap();
        for ok in [
            "https://mcp.example/tenant/mcp",
            "https://mcp.example/tenant",
            "https://mcp.example/",
            "https://mcp.example",
        ] {
            assert!(is_resource_of(ok, &server), "{ok}");
        }
        for bad in [
            "https://evil.example/tenant/mcp",
            "http://mcp.example/tenant/mcp",
            "https://mcp.example/tenant/mcp-other",
            "https://mcp.example/other",
            "not a url",
        ] {
            assert!(!is_resource_of(bad, &server), "{bad}");
        }
    }
}
