//! JSON wire types of the REST API (SPEC §3), shared by the server, which renders them, and the
//! client, which parses them. Connection bodies stay loosely typed (`serde_json::Value`) because
//! their validation reports every bad field at once (see `validate`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::ids::{AuditId, ConnectionId, OrgId, ProjectId, TokenId};
use crate::principal::Role;
use crate::{AuthType, Kind};

/// One page of a list; pass `next_cursor` back as `?cursor=` for the next.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Me {
    pub org: OrgId,
    pub org_name: String,
    pub role: Role,
    pub project: Option<ProjectId>,
    pub operator: bool,
    pub token: TokenId,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Org {
    pub id: OrgId,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateOrg {
    #[schema(value_type = crate::names::Name)]
    pub name: String,
}

/// The new organization and its first admin token, shown this once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedOrg {
    pub id: OrgId,
    pub name: String,
    pub admin_token: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Project {
    pub id: ProjectId,
    pub name: String,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    #[schema(value_type = crate::names::Name)]
    pub name: String,
    #[serde(default)]
    #[schema(value_type = Option<crate::names::Description>)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProject {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::names::Name>)]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::names::Description>)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Token {
    pub id: TokenId,
    pub name: String,
    pub role: Role,
    pub project: Option<ProjectId>,
    pub operator: bool,
    /// The first characters of the value, enough to recognise it (`pb_AbCd…`).
    pub hint: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    #[schema(value_type = crate::names::Name)]
    pub name: String,
    pub role: Role,
    #[serde(default)]
    pub project: Option<ProjectId>,
}

/// A new token; `value` is shown this once and stored only as a hash.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub token: Token,
    pub value: String,
}

/// An organization secret as listed: never its value.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SecretMeta {
    pub name: String,
    pub description: Option<String>,
    pub set: bool,
    /// The projects it is shared with; absent when it is organization-wide.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projects: Option<Vec<String>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutSecret {
    #[schema(min_length = 1, max_length = 65536)]
    pub value: String,
    #[serde(default)]
    #[schema(value_type = Option<crate::names::Description>)]
    pub description: Option<String>,
    /// The projects (ids or names) whose connections and tokens may use it; `null` makes it
    /// organization-wide again; absent keeps what it was (organization-wide when new).
    #[serde(
        default,
        deserialize_with = "sent",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<Vec<String>>)]
    #[schema(min_items = 1)]
    pub projects: Option<Option<Vec<String>>>,
}

/// A field that was sent, `null` included (`Some(None)`); an absent one stays `None`.
fn sent<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Body of `POST /v1/connections` and `POST /v1/connections/test`. `name` and `kind` are
/// required; their absence is reported by validation together with every other bad field.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConnection {
    /// Project id or name; `default` when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[serde(default)]
    #[schema(value_type = crate::names::Name)]
    pub name: Value,
    #[serde(default)]
    #[schema(value_type = crate::connection::Kind)]
    pub kind: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub auth: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
    /// Field → value, `{"ref": "org_secret_name"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub secrets: Option<Value>,
}

/// Body of `PATCH /v1/connections/{id}`: `auth` and `config` merge (RFC 7396, `null` removes a
/// key); a secret sent replaces the stored one, `null` removes it, an omitted one is kept.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateConnection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub auth: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub secrets: Option<Value>,
    /// `active` or `disabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// The answer of `DELETE /v1/connections?provider=…`: every connection of the provider the
/// caller sees, revoked at the provider where it can be and deleted.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BulkDeleted {
    pub provider: String,
    pub deleted: Vec<ConnectionId>,
    /// How many of them had a grant revoked at the provider.
    pub revoked: usize,
}

/// Decrypted credentials of one connection, for an executor.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Credentials {
    pub connection: ConnectionId,
    pub kind: Kind,
    pub provider: String,
    pub auth_type: AuthType,
    #[schema(value_type = Object)]
    pub auth: serde_json::Map<String, Value>,
    #[schema(value_type = Object)]
    pub config: serde_json::Map<String, Value>,
    pub secrets: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditEvent {
    pub id: AuditId,
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub outcome: String,
    #[schema(value_type = Object)]
    pub details: Value,
    /// Hex SHA-256 over the previous event's hash and this event.
    pub hash: String,
}

/// Result of checking the organization's audit hash chain.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditVerification {
    pub ok: bool,
    pub events: i64,
    /// The first event whose hash does not match, when the chain is broken.
    pub broken_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeyVersion {
    pub version: i64,
    pub created_at: DateTime<Utc>,
    /// Ciphertexts still sealed with this version.
    pub rows: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RotationProgress {
    pub target_version: i64,
    pub done: i64,
    pub total: i64,
    pub finished: bool,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeysStatus {
    pub sealed: bool,
    pub current_version: Option<i64>,
    pub versions: Vec<KeyVersion>,
    pub rotation: Option<RotationProgress>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault: Option<String>,
    /// Client connections: open now, the cap, and how many were refused since start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<ConnectionCounts>,
}

/// The server's client connections (`/healthz`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConnectionCounts {
    pub open: usize,
    pub limit: usize,
    pub refused: u64,
}

/// How a connection test failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    Timeout,
    Dns,
    Refused,
    Tls,
    /// The credentials were refused (HTTP 401/403, a database or SMTP login failure).
    Auth,
    Protocol,
    /// The outbound gate refused the destination.
    Blocked,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Dns => "dns",
            ErrorKind::Refused => "refused",
            ErrorKind::Tls => "tls",
            ErrorKind::Auth => "auth",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Blocked => "blocked",
        }
    }
}

/// The result of a connection test (SPEC §4, Connection tests).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TestResult {
    pub success: bool,
    pub latency_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<ErrorKind>,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_valid: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes_granted: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// An SFTP server's host key (`ssh-ed25519 AAAA…`), pinned by the test of a connection that
    /// had none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_key: Option<String>,
}

impl TestResult {
    pub fn ok(latency_ms: u64, message: impl Into<String>) -> Self {
        Self {
            success: true,
            latency_ms,
            status_code: None,
            error_kind: None,
            message: message.into(),
            token_valid: None,
            scopes_granted: None,
            account: None,
            host_key: None,
        }
    }

    pub fn failed(latency_ms: u64, kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            success: false,
            error_kind: Some(kind),
            ..Self::ok(latency_ms, message)
        }
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status_code = Some(status);
        self
    }
}

/// An organization's client registration at a provider. The client secret is write-only.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OAuthApp {
    pub id: crate::ids::AppId,
    pub name: String,
    pub provider: String,
    pub client_id: String,
    pub client_secret: crate::connection::SecretState,
    pub scopes: Vec<String>,
    pub authorization_params: BTreeMap<String, String>,
    pub token_params: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOAuthApp {
    #[schema(value_type = crate::names::Name)]
    pub name: String,
    /// A catalog provider key.
    pub provider: String,
    #[schema(value_type = crate::names::ClientId)]
    pub client_id: String,
    /// Omitted for a public client (PKCE only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 65536)]
    pub client_secret: Option<String>,
    /// The catalog's default scopes when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<crate::names::Scope>>)]
    pub scopes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_params: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_params: Option<BTreeMap<String, String>>,
}

/// `PATCH /v1/oauth/apps/{id}`: sent fields replace; `client_secret: null` removes it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOAuthApp {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::names::Name>)]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::names::ClientId>)]
    pub client_id: Option<String>,
    /// Kept when absent; `null` removes it (hence not a plain `Option`, where null is absent).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 65536)]
    pub client_secret: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<crate::names::Scope>>)]
    pub scopes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_params: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_params: Option<BTreeMap<String, String>>,
}

/// Deserializes a field that is present (even as `null`) into `Some`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// Body of `POST /v1/mcp/discover`: an MCP server as a connection would describe it, its
/// `config` fields at the top level (`server_url` or `command`, `transport`, …); nothing is
/// saved.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct McpDiscover {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub auth: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub secrets: Option<Value>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::objects::present"
    )]
    #[schema(value_type = Option<String>)]
    pub server_url: Option<Value>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::objects::present"
    )]
    #[schema(value_type = Option<String>)]
    pub command: Option<Value>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::objects::present"
    )]
    #[schema(value_type = Option<Vec<String>>)]
    pub args: Option<Value>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::objects::present"
    )]
    #[schema(value_type = Option<Object>)]
    pub env: Option<Value>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::objects::present"
    )]
    #[schema(value_type = Option<String>)]
    pub transport: Option<Value>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::objects::present"
    )]
    #[schema(value_type = Option<Object>)]
    pub headers: Option<Value>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::objects::present"
    )]
    #[schema(value_type = Option<u64>)]
    pub timeout_ms: Option<Value>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::objects::present"
    )]
    #[schema(value_type = Option<Vec<String>>)]
    pub allowed_tools: Option<Value>,
}

impl McpDiscover {
    /// The connection draft it describes.
    pub fn into_draft(self) -> CreateConnection {
        let config: serde_json::Map<String, Value> = [
            ("server_url", self.server_url),
            ("command", self.command),
            ("args", self.args),
            ("env", self.env),
            ("transport", self.transport),
            ("headers", self.headers),
            ("timeout_ms", self.timeout_ms),
            ("allowed_tools", self.allowed_tools),
        ]
        .into_iter()
        .filter_map(|(k, v)| Some((k.to_owned(), v?)))
        .collect();
        CreateConnection {
            project: self.project,
            name: Value::String("discovery".into()),
            kind: Value::String("mcp".into()),
            provider: self.provider,
            auth: self.auth,
            config: Some(Value::Object(config)),
            secrets: self.secrets,
        }
    }
}

/// What an MCP connection's server said of itself at its last discovery (`mcp` on the
/// connection).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct McpState {
    /// `serverInfo`: name, version, and whatever else the server reports.
    #[schema(value_type = Object)]
    pub server_info: Value,
    /// The protocol revision spoken (`2026-07-28` for a stateless server).
    pub protocol_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub capabilities: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// Each tool as the server lists it (`name`, `description`, `inputSchema`, …).
    #[schema(value_type = Vec<Object>)]
    pub tools: Vec<Value>,
    pub tools_refreshed_at: DateTime<Utc>,
}

/// The answer of `POST /v1/mcp/discover` and `POST /v1/connections/{id}/refresh-tools`: a
/// connection test's fields, and on success what the server said.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct McpDiscovery {
    #[serde(flatten)]
    pub test: TestResult,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub server_info: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<String>,
    #[schema(value_type = Vec<Object>)]
    pub tools: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools_count: Option<usize>,
}

/// An entry of the MCP server registry (`GET /v1/mcp/providers`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct McpProvider {
    /// The catalog key to create a connection with (`provider`).
    pub name: String,
    pub display_name: String,
    pub categories: Vec<String>,
    /// `streamable_http`, `sse` or `stdio`.
    pub transport: String,
    /// The server's URL: the operator's `PATCHBAY_MCP_<NAME>_URL`, else the catalog's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_server_url: Option<String>,
    /// The command a stdio server runs (the operator must allow it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// The auth types the server takes.
    pub auth_types: Vec<String>,
}
