//! Wire types of the actions (SPEC §3): one authenticated operation through a connection.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::ids::ConnectionId;

/// One value picked out of an answer: `select` is a JSONPath (RFC 9535), `as` its name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MapRule {
    #[serde(rename = "as")]
    pub name: String,
    pub select: String,
}

/// `POST /v1/actions/http`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpAction {
    pub connection: ConnectionId,
    /// GET unless given.
    #[serde(default)]
    pub method: Option<String>,
    /// Under the connection's base URL.
    #[serde(default)]
    pub path: String,
    /// Query parameters, appended to any in `path`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub query: Option<Map<String, Value>>,
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
    /// Sent as JSON (a string is sent as text).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub body: Option<Value>,
    /// Values to pick out of a JSON answer, returned under `output`.
    #[serde(default)]
    pub map: Vec<MapRule>,
    /// Auth for this call instead of the connection's: `{"type": "bearer", "secret_ref":
    /// "<organization secret>"}`, `{"type": "api_key", "in", "name", "secret_ref"}`,
    /// `{"type": "basic", "username", "secret_ref"}` or `{"type": "none"}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub auth: Option<Value>,
}

/// What an HTTP action answers: the upstream's status, headers and body (JSON when it was
/// JSON, else text), and the mapped values.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HttpActionResult {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    #[schema(value_type = Object)]
    pub body: Value,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[schema(value_type = Object)]
    pub output: Map<String, Value>,
}

/// `POST /v1/actions/sql`: parameters only (`$1` on PostgreSQL, `?` on MySQL and SQLite),
/// never text spliced into the query.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlAction {
    pub connection: ConnectionId,
    pub query: String,
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub params: Vec<Value>,
    /// At most this many rows come back (default 1,000, at most 10,000).
    #[serde(default)]
    pub max_rows: Option<u32>,
    /// Run in a read-only transaction the database enforces.
    #[serde(default)]
    pub read_only: bool,
    /// Statement timeout (default the connection's, else 30 s).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

/// A result column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Column {
    pub name: String,
    /// The database's name for its type (`INT4`, `VARCHAR`, `TEXT`, …).
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SqlActionResult {
    pub columns: Vec<Column>,
    /// One object per row, column name → value.
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<Map<String, Value>>,
    /// Rows returned.
    pub count: usize,
    /// Rows changed by a statement that returns none.
    pub rows_affected: u64,
    /// More rows were available than `max_rows`.
    pub truncated: bool,
}

/// One address or several.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Recipients {
    One(String),
    Many(Vec<String>),
}

impl Recipients {
    pub fn list(&self) -> Vec<&str> {
        match self {
            Recipients::One(s) => vec![s.as_str()],
            Recipients::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// `POST /v1/actions/email`: from the connection's `from_address`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailAction {
    pub connection: ConnectionId,
    pub to: Recipients,
    #[serde(default)]
    pub cc: Option<Recipients>,
    #[serde(default)]
    pub bcc: Option<Recipients>,
    #[serde(default)]
    pub reply_to: Option<String>,
    pub subject: String,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub html: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EmailActionResult {
    /// The `Message-ID` the mail was sent with.
    pub message_id: String,
    /// Recipients the server accepted.
    pub accepted: usize,
}
