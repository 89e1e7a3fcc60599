//! MCP authorization for `oauth2` MCP connections that name no endpoints: before the first
//! authorization request, the server's 401 leads to its authorization server (RFC 9728,
//! RFC 8414) and to a client — the connection's own `client_id` (pre-registered), Patchbay's
//! client ID metadata document when the server accepts one, or an RFC 7591 registration. What
//! was found is written into the connection's `auth` (endpoints, issuer, scopes, the RFC 8707
//! `resource` on both requests) and secrets (the client), audited as
//! `connection.mcp_authorization`; from there it is an ordinary OAuth connection, linked by the
//! callback and renewed by the renewal service.
//!
//! A server's 403 `insufficient_scope` (step-up) adds the scopes it names to the connection's
//! `auth.scopes`, audited as `connection.scopes_stepped_up`, so that the next authorization asks
//! for them.

use std::collections::BTreeMap;

use patchbay_domain::connection::Connection;
use patchbay_domain::spec::{ConnectionSpec, McpTransport};
use patchbay_domain::validate::SecretInput;
use patchbay_domain::{Kind, Principal};
use patchbay_mcp::McpError;
use patchbay_mcp::auth::{AuthServer, Challenge};
use secrecy::SecretString;
use serde_json::{Map, Value, json};

use crate::{EngineError, Hub, Result};

/// The path of Patchbay's client ID metadata document.
pub const CLIENT_METADATA_PATH: &str = "/v1/oauth/client-metadata.json";

/// How a connection's client came to be.
enum Client {
    PreRegistered,
    MetadataDocument(String),
    Registered(patchbay_mcp::auth::Registered),
}

impl Client {
    fn label(&self) -> &'static str {
        match self {
            Self::PreRegistered => "pre_registered",
            Self::MetadataDocument(_) => "metadata_document",
            Self::Registered(_) => "dynamic",
        }
    }

    /// The `client_id` and `client_secret` to keep among the connection's secrets; `None`
    /// when the connection's own are kept.
    fn issued(&self) -> Option<(&str, Option<&str>)> {
        match self {
            Self::PreRegistered => None,
            Self::MetadataDocument(id) => Some((id, None)),
            Self::Registered(r) => Some((&r.client_id, r.client_secret.as_deref())),
        }
    }
}

fn server_url(c: &Connection) -> Result<url::Url> {
    let spec = ConnectionSpec::from_config(Kind::Mcp, &c.config)
        .map_err(|e| EngineError::Conflict(format!("the connection's config: {e}")))?;
    let ConnectionSpec::Mcp(config) = spec else {
        return Err(EngineError::Conflict("not an MCP connection".into()));
    };
    match config.transport {
        McpTransport::StreamableHttp { url } | McpTransport::Sse { url } => url::Url::parse(&url)
            .map_err(|e| EngineError::Conflict(format!("config.server_url: {e}"))),
        McpTransport::Stdio { .. } => Err(EngineError::Conflict(
            "a stdio MCP server takes no OAuth; give it its credentials as secrets".into(),
        )),
    }
}

fn authorization_error(e: McpError) -> EngineError {
    match e.kind {
        patchbay_domain::api::ErrorKind::Blocked => EngineError::Blocked(e.message),
        patchbay_domain::api::ErrorKind::Timeout => {
            EngineError::Timeout(format!("MCP authorization: {}", e.message))
        }
        _ => EngineError::Upstream(format!("MCP authorization: {}", e.message)),
    }
}

/// `auth` as MCP authorization found it, keeping what the connection set itself.
fn discovered_auth(
    own: &Map<String, Value>,
    server: &AuthServer,
    client: &Client,
) -> Map<String, Value> {
    let mut auth = own.clone();
    let mut set = |k: &str, v: Value| {
        auth.entry(k.to_owned()).or_insert(v);
    };
    set("type", json!("oauth2"));
    set("authorization_url", json!(server.authorization_endpoint));
    set("token_url", json!(server.token_endpoint));
    set("issuer", json!(server.issuer));
    if let Some(r) = &server.revocation_endpoint {
        set("revocation_url", json!(r));
    }
    if !server.scopes.is_empty() {
        set("scopes", json!(server.scopes));
    }
    let method = match client {
        Client::Registered(r) => Some(r.auth_method.as_str()),
        Client::PreRegistered => {
            let m = &server.token_auth_methods;
            (m.iter().any(|x| x == "client_secret_post")
                && !m.iter().any(|x| x == "client_secret_basic"))
            .then_some("client_secret_post")
        }
        Client::MetadataDocument(_) => None,
    };
    if let Some(m @ ("client_secret_basic" | "client_secret_post")) = method {
        set("token_request_auth_method", json!(m));
    }
    for key in ["authorization_params", "token_params"] {
        let mut params = auth
            .get(key)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        params
            .entry("resource")
            .or_insert_with(|| json!(server.resource));
        auth.insert(key.into(), Value::Object(params));
    }
    auth
}

impl Hub {
    /// The URL of Patchbay's client ID metadata document, when it can be one (https).
    pub fn client_metadata_url(&self) -> Option<String> {
        if let Some(u) = &self.inner.settings.client_metadata_url {
            return Some(u.clone());
        }
        let base = self.public_url();
        base.starts_with("https://")
            .then(|| format!("{base}{CLIENT_METADATA_PATH}"))
    }

    /// `GET /v1/oauth/client-metadata.json`: Patchbay as an OAuth client (public, PKCE, this
    /// deployment's callback).
    pub fn client_metadata(&self) -> Value {
        json!({
            "client_id": self
                .client_metadata_url()
                .unwrap_or_else(|| format!("{}{CLIENT_METADATA_PATH}", self.public_url())),
            "client_name": "Patchbay",
            "client_uri": self.public_url(),
            "redirect_uris": [self.callback_url()],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        })
    }

    /// Whether `c` is to be authorized by MCP authorization (its endpoints are not known yet).
    pub(crate) fn needs_mcp_authorization(c: &Connection) -> bool {
        c.kind == Kind::Mcp
            && c.auth.get("app").is_none_or(Value::is_null)
            && (c.auth.get("authorization_url").is_none_or(Value::is_null)
                || c.auth.get("token_url").is_none_or(Value::is_null))
    }

    /// Discovers the connection's authorization server and client, writes them into the
    /// connection and answers it as it now is.
    pub(crate) async fn prepare_mcp_authorization(
        &self,
        p: &Principal,
        c: Connection,
    ) -> Result<Connection> {
        let url = server_url(&c)?;
        let http = self.connectors().http();
        let deadline = self.connectors().settings().test_timeout;
        let server = patchbay_mcp::auth::discover(http, &url, deadline)
            .await
            .map_err(authorization_error)?;
        let fields = self.open_fields(p, &c.id, &c.project).await?;
        let client = if fields.contains_key("client_id") {
            Client::PreRegistered
        } else if let Some(doc) = self
            .client_metadata_url()
            .filter(|_| server.metadata_documents)
        {
            Client::MetadataDocument(doc)
        } else {
            let r = patchbay_mcp::auth::register(http, &server, &self.callback_url(), deadline)
                .await
                .map_err(authorization_error)?;
            Client::Registered(r)
        };
        let mut secrets = BTreeMap::new();
        let mut remove = Vec::new();
        if let Some((id, secret)) = client.issued() {
            let value = |v: &str| SecretInput::Value(SecretString::from(v.to_owned()));
            secrets.insert("client_id".to_owned(), value(id));
            match secret {
                Some(s) => {
                    secrets.insert("client_secret".to_owned(), value(s));
                }
                // A client secret from before (a registration's) goes with its client.
                None => remove.push("client_secret".to_owned()),
            }
        }
        let rows = self.seal_fields(p, &c.id, &secrets)?;
        let mut next = c.clone();
        next.auth = discovered_auth(&c.auth, &server, &client);
        next.updated_at = self.now();
        let mut w = self.write().await?;
        w.update_connection(&p.org_id, &next, c.version, &rows, &remove)
            .await
            .map_err(|e| match e {
                patchbay_store::StoreError::VersionMismatch => EngineError::Conflict(
                    "the connection changed during MCP authorization; start again".into(),
                ),
                other => other.into(),
            })?;
        w.succeeded(
            p,
            "connection.mcp_authorization",
            c.id.to_string(),
            json!({
                "issuer": server.issuer,
                "client": client.label(),
                "scopes": server.scopes,
                "resource": server.resource,
            }),
        );
        w.invalidates(crate::core::Change::connection(&c.id));
        w.commit().await?;
        self.visible_connection(p, &c.id).await
    }

    /// A server's 403 `insufficient_scope` on an `oauth2` connection: its scopes join the
    /// connection's, for the next authorization. Answers whether anything was added.
    pub(crate) async fn step_up(&self, p: &Principal, c: &Connection, challenge: &str) -> bool {
        let challenge = Challenge::parse(challenge);
        let wanted = challenge.scopes();
        if !challenge.insufficient_scope()
            || c.auth_type() != patchbay_domain::AuthType::Oauth2
            || wanted.is_empty()
        {
            return false;
        }
        match self.add_scopes(p, c, &wanted).await {
            Ok(added) => added,
            Err(e) => {
                tracing::warn!(connection = %c.id, error = %e, "recording a scope step-up failed");
                false
            }
        }
    }

    async fn add_scopes(&self, p: &Principal, c: &Connection, wanted: &[String]) -> Result<bool> {
        let Some(current) = self.store().get_connection(&p.org_id, &c.id).await? else {
            return Ok(false);
        };
        let mut scopes = crate::oauth::strings(current.auth.get("scopes"));
        let before = scopes.len();
        for s in wanted {
            if !scopes.contains(s) {
                scopes.push(s.clone());
            }
        }
        if scopes.len() == before {
            return Ok(false);
        }
        let mut next = current.clone();
        next.auth.insert("scopes".into(), json!(scopes));
        next.updated_at = self.now();
        let mut w = self.write().await?;
        w.update_connection(&p.org_id, &next, current.version, &[], &[])
            .await?;
        w.succeeded(
            p,
            "connection.scopes_stepped_up",
            c.id.to_string(),
            json!({"scopes": scopes}),
        );
        w.invalidates(crate::core::Change::connection(&c.id));
        w.commit().await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> AuthServer {
        AuthServer {
            resource: "https://mcp.example/mcp".into(),
            issuer: "https://as.example".into(),
            authorization_endpoint: "https://as.example/authorize".into(),
            token_endpoint: "https://as.example/token".into(),
            registration_endpoint: Some("https://as.example/register".into()),
            revocation_endpoint: None,
            scopes: vec!["mcp:tools".into(), "offline_access".into()],
            metadata_documents: false,
            token_auth_methods: vec!["client_secret_post".into()],
        }
    }

    #[test]
    fn discovered_auth_carries_the_resource_and_keeps_what_the_connection_set() {
        let own = json!({"type": "oauth2", "scopes": ["mine"], "token_params": {"audience": "x"}});
        let auth = discovered_auth(own.as_object().unwrap(), &server(), &Client::PreRegistered);
        assert_eq!(auth["authorization_url"], "https://as.example/authorize");
        assert_eq!(auth["token_url"], "https://as.example/token");
        assert_eq!(auth["issuer"], "https://as.example");
        assert_eq!(auth["scopes"], json!(["mine"]));
        assert_eq!(auth["token_request_auth_method"], "client_secret_post");
        assert_eq!(
            auth["authorization_params"],
            json!({"resource": "https://mcp.example/mcp"})
        );
        assert_eq!(
            auth["token_params"],
            json!({"audience": "x", "resource": "https://mcp.example/mcp"})
        );
        let public = discovered_auth(
            &Map::new(),
            &server(),
            &Client::MetadataDocument("https://p.example/doc".into()),
        );
        assert!(public.get("token_request_auth_method").is_none());
        assert_eq!(public["scopes"], json!(["mcp:tools", "offline_access"]));
    }
}
