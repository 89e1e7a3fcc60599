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
    #[schema(min_length = 1)]
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
    #[schema(value_type = Option<crate::names::HttpMethod>)]
    pub method: Option<String>,
    /// Under the connection's base URL.
    #[serde(default)]
    pub path: String,
    /// Query parameters, appended to any in `path`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub query: Option<Map<String, Value>>,
    #[serde(default)]
    #[schema(value_type = Option<BTreeMap<crate::names::HeaderName, crate::names::HeaderValue>>)]
    pub headers: Option<BTreeMap<String, String>>,
    /// Sent as JSON, any JSON value (a string is sent as text).
    #[serde(default)]
    #[schema(value_type = Option<Value>)]
    pub body: Option<Value>,
    /// Values to pick out of a JSON answer, returned under `output`.
    #[serde(default, deserialize_with = "crate::objects::list")]
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
    #[schema(value_type = crate::names::Statement)]
    pub query: String,
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub params: Vec<Value>,
    /// At most this many rows come back (default 1,000, at most 10,000).
    #[serde(default, deserialize_with = "crate::objects::integer")]
    #[schema(minimum = 1, maximum = 10000)]
    pub max_rows: Option<u32>,
    /// Run in a read-only transaction the database enforces.
    #[serde(default)]
    pub read_only: bool,
    /// Statement timeout (default the connection's, else 30 s).
    #[serde(default, deserialize_with = "crate::objects::integer")]
    #[schema(minimum = 1, maximum = 600000)]
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

/// What a storage action does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StorageOp {
    Put,
    Get,
    List,
    Delete,
    Presign,
}

/// How a put's `body` is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BodyEncoding {
    #[default]
    Text,
    Base64,
}

/// `POST /v1/actions/storage`: one operation on a storage connection's bucket. Keys are
/// relative to the connection's prefix. Each operation takes its own fields (see
/// [`StorageActionBody`] for the document's schema); others are refused, each named.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageAction {
    pub connection: ConnectionId,
    pub op: StorageOp,
    /// The object's key (put, get, delete, presign).
    #[serde(default)]
    pub key: Option<String>,
    /// put: the content, as text or (with `encoding: base64`) base64.
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub encoding: Option<BodyEncoding>,
    /// put: the object's `Content-Type`.
    #[serde(default)]
    pub content_type: Option<String>,
    /// put: a canned ACL (`private`, `public-read`, …).
    #[serde(default)]
    pub acl: Option<String>,
    /// put: user metadata (`x-amz-meta-*`).
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// list: the keys under this prefix (relative to the connection's).
    #[serde(default)]
    pub prefix: Option<String>,
    /// list: group keys by this delimiter (usually `/`).
    #[serde(default)]
    pub delimiter: Option<String>,
    /// list: at most this many keys (default 100, at most 1,000).
    #[serde(default, deserialize_with = "crate::objects::integer")]
    pub limit: Option<u32>,
    /// list: the `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// presign: `GET` (default) or `PUT`.
    #[serde(default)]
    pub method: Option<String>,
    /// presign: how long the URL works, in seconds (default 900, at most 604,800).
    #[serde(default, deserialize_with = "crate::objects::integer")]
    pub expires_in: Option<u64>,
}

/// An object key relative to a connection's prefix: `/`-separated segments, none empty, `.`
/// or `..`, without backslashes or control characters, not starting with `/`.
pub const STORAGE_KEY_PATTERN: &str = concat!(
    r"^(?:(?:[^./\\\x00-\x1f\x7f-\x9f][^/\\\x00-\x1f\x7f-\x9f]*|\.[^./\\\x00-\x1f\x7f-\x9f][^/\\\x00-\x1f\x7f-\x9f]*|\.\.[^/\\\x00-\x1f\x7f-\x9f]+)/)*",
    r"(?:[^./\\\x00-\x1f\x7f-\x9f][^/\\\x00-\x1f\x7f-\x9f]*|\.[^./\\\x00-\x1f\x7f-\x9f][^/\\\x00-\x1f\x7f-\x9f]*|\.\.[^/\\\x00-\x1f\x7f-\x9f]+)$"
);

/// A listing prefix: like a key, and it may end with `/`.
pub const STORAGE_PREFIX_PATTERN: &str = concat!(
    r"^(?:(?:[^./\\\x00-\x1f\x7f-\x9f][^/\\\x00-\x1f\x7f-\x9f]*|\.[^./\\\x00-\x1f\x7f-\x9f][^/\\\x00-\x1f\x7f-\x9f]*|\.\.[^/\\\x00-\x1f\x7f-\x9f]+)/)*",
    r"(?:[^./\\\x00-\x1f\x7f-\x9f][^/\\\x00-\x1f\x7f-\x9f]*|\.[^./\\\x00-\x1f\x7f-\x9f][^/\\\x00-\x1f\x7f-\x9f]*|\.\.[^/\\\x00-\x1f\x7f-\x9f]+)?$"
);

/// The canned ACLs S3 takes in `x-amz-acl`.
pub const CANNED_ACLS: &[&str] = &[
    "private",
    "public-read",
    "public-read-write",
    "authenticated-read",
    "aws-exec-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
];

/// One operation's object of an action that names its `op`: `connection`, `op: name`, the
/// operation's own fields (`extra`), nothing else.
fn operation_schema(name: &str, required: &[&str], extra: Value) -> Value {
    use serde_json::json;
    let connection = json!({"type": "string",
        "pattern": "^con_[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$"});
    let mut props = json!({"connection": connection, "op": {"type": "string", "enum": [name]}});
    if let (Some(p), Some(e)) = (props.as_object_mut(), extra.as_object()) {
        p.extend(e.clone());
    }
    let mut req = vec!["connection", "op"];
    req.extend_from_slice(required);
    json!({"type": "object", "title": name, "properties": props, "required": req,
        "additionalProperties": false})
}

/// The document's schema of a storage action: one object per operation, each with the fields
/// it takes.
#[derive(Debug)]
pub struct StorageActionBody;

impl utoipa::PartialSchema for StorageActionBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use serde_json::json;
        let key = json!({"type": "string", "minLength": 1, "maxLength": 1024,
            "pattern": STORAGE_KEY_PATTERN});
        let ascii = json!({"type": "string", "maxLength": 1024, "pattern": r"^[\t\x20-\x7e]*$"});
        let op = operation_schema;
        let schema = json!({"oneOf": [
            op("put", &["key"], json!({"key": key, "body": {"type": "string",
                    "description": "the content (at most 16 MiB), as text or base64"},
                "encoding": {"type": "string", "enum": ["text", "base64"]},
                "content_type": ascii,
                "acl": {"type": "string", "enum": CANNED_ACLS},
                "metadata": {"type": "object", "maxProperties": 8,
                    "propertyNames": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
                    "additionalProperties": {"type": "string", "maxLength": 128,
                        "pattern": r"^[\t\x20-\x7e]*$"}}})),
            op("get", &["key"], json!({"key": key})),
            op("delete", &["key"], json!({"key": key})),
            op("list", &[], json!({
                "prefix": {"type": "string", "maxLength": 1024, "pattern": STORAGE_PREFIX_PATTERN},
                "delimiter": {"type": "string", "minLength": 1, "maxLength": 16, "pattern": "^[\x21-\x7e]+$"},
                "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
                "cursor": {"type": "string", "minLength": 1, "maxLength": 4096, "pattern": "^[\x21-\x7e]+$"}})),
            op("presign", &["key"], json!({"key": key,
                "method": {"type": "string", "pattern": "^([Gg][Ee][Tt]|[Pp][Uu][Tt])$"},
                "expires_in": {"type": "integer", "minimum": 1, "maximum": 604800}})),
        ]});
        serde_json::from_value(schema).expect("a valid schema")
    }
}

impl utoipa::ToSchema for StorageActionBody {}

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StorageObject {
    /// Relative to the connection's prefix.
    pub key: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
}

/// What a storage action did (a `get` answers with the object itself instead).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StorageActionResult {
    #[schema(value_type = String)]
    pub op: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// put: the stored object's ETag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// put: bytes stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// list: the objects of this page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objects: Option<Vec<StorageObject>>,
    /// list with a delimiter: the common prefixes ("folders").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefixes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// presign: the signed URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// delete: done (S3 answers alike whether or not the key existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<bool>,
}

/// How often and how patiently a delivery is tried.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in all (default 5, at most 20).
    #[serde(
        default,
        alias = "maxAttempts",
        deserialize_with = "crate::objects::integer"
    )]
    #[schema(minimum = 1, maximum = 20)]
    pub attempts: Option<u32>,
    /// The first wait; it doubles each time, with jitter (default 1,000 ms).
    #[serde(
        default,
        alias = "backoffMs",
        deserialize_with = "crate::objects::integer"
    )]
    #[schema(maximum = 3600000)]
    pub backoff_ms: Option<u64>,
}

/// `blocking` (the answer comes back) or `fire_and_forget` (queued; a delivery id at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryMode {
    #[default]
    Blocking,
    #[serde(alias = "fire-and-forget")]
    FireAndForget,
}

/// `POST /v1/actions/webhook`: to a webhook connection (signed with its secret) or a URL.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookAction {
    #[serde(default)]
    pub connection: Option<ConnectionId>,
    #[serde(default)]
    #[schema(value_type = Option<crate::names::WebhookUrl>)]
    pub url: Option<String>,
    /// POST, PUT or PATCH (default the connection's, else POST).
    #[serde(default)]
    #[schema(value_type = Option<crate::names::WebhookMethod>)]
    pub method: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<BTreeMap<crate::names::HeaderName, crate::names::HeaderValue>>)]
    pub headers: Option<BTreeMap<String, String>>,
    /// Any JSON value.
    #[serde(default)]
    #[schema(value_type = Option<Value>)]
    pub body: Option<Value>,
    #[serde(default)]
    pub mode: DeliveryMode,
    #[serde(
        default,
        alias = "retryPolicy",
        deserialize_with = "crate::objects::optional"
    )]
    pub retry: Option<RetryPolicy>,
    /// A CEL expression over `context`; when false nothing is sent.
    #[serde(default)]
    pub condition: Option<String>,
    /// Variables for `condition` and for `${var}` / `{{var}}` in `body` and `headers`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub context: Option<Map<String, Value>>,
}

/// What a webhook action answers.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebhookActionResult {
    /// `delivered`, `failed` (blocking), `pending` (queued) or `skipped` (condition false).
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<crate::ids::DeliveryId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_id: Option<String>,
    /// The receiver's answer (blocking).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub response_body: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A queued webhook delivery as the API shows it (never its body or full URL).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Delivery {
    pub id: crate::ids::DeliveryId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<ConnectionId>,
    pub webhook_id: String,
    pub method: String,
    /// The receiver's host.
    pub target: String,
    /// `pending`, `delivering`, `delivered` or `failed` (dead letter).
    pub status: String,
    pub attempts: u32,
    pub max_attempts: u32,
    pub next_attempt_at: chrono::DateTime<chrono::Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// `POST /v1/nodes/run`: one workflow node in the seeds' shape, `{type, label, config}`, with
/// the variables its templates and condition read. Other fields of the node (`id`,
/// `position`, …) are ignored.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NodeRun {
    /// `http`, `webhook`, `sql` (or `database`), `email`, `integration`, `llm`, `mcp_tool` or
    /// `s3-upload`.
    #[serde(rename = "type")]
    #[schema(value_type = crate::names::NodeType)]
    pub node_type: String,
    #[serde(default)]
    pub label: Option<String>,
    #[schema(value_type = Object)]
    pub config: Map<String, Value>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub context: Option<Map<String, Value>>,
}

/// What a node produced: its outputs by variable name (`outputVariable`, or the node's own
/// names such as `rows` and `count`), and the raw result of the action it ran.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NodeRunResult {
    #[serde(rename = "type")]
    #[schema(value_type = crate::names::NodeType)]
    pub node_type: String,
    #[schema(value_type = Object)]
    pub outputs: Map<String, Value>,
    #[schema(value_type = Object)]
    pub result: Value,
}

/// `POST /v1/actions/mcp`: one tool of an MCP connection's server.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct McpAction {
    pub connection: ConnectionId,
    /// The tool's name, as the server lists it.
    #[schema(min_length = 1, max_length = 256)]
    pub tool: String,
    /// The tool's arguments (its `inputSchema` says which).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub arguments: Option<Map<String, Value>>,
    /// How long the call may take (default the connection's `timeout_ms`).
    #[serde(default, deserialize_with = "crate::objects::integer")]
    #[schema(minimum = 1, maximum = 600000)]
    pub timeout_ms: Option<u64>,
}

/// A tool's result as its server wrote it: `content` (text, image, audio, resource,
/// resource_link), `structuredContent`, and `isError` when the tool failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct McpActionResult {
    #[schema(value_type = Vec<Object>)]
    pub content: Vec<Value>,
    #[serde(
        rename = "structuredContent",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<Object>)]
    pub structured_content: Option<Value>,
    #[serde(rename = "isError", default)]
    pub is_error: bool,
    /// Everything else the result carried (`_meta`, fields of later revisions).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub rest: Map<String, Value>,
}

/// What a file action does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FilesOp {
    Put,
    Get,
    List,
    Delete,
    Mkdir,
}

impl FilesOp {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Put => "put",
            Self::Get => "get",
            Self::List => "list",
            Self::Delete => "delete",
            Self::Mkdir => "mkdir",
        }
    }
}

/// `POST /v1/actions/files`: one operation on a file-transfer connection's server. Paths are
/// relative to the connection's base directory and stay under it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesAction {
    pub connection: ConnectionId,
    pub op: FilesOp,
    /// The file or directory, relative to the base directory (list: the base directory when
    /// absent).
    #[serde(default)]
    pub path: Option<String>,
    /// put: the content, as text or (with `encoding: base64`) base64.
    #[serde(default)]
    pub body: Option<String>,
    /// put: how `body` is written; get: how the content is answered (text when it is UTF-8,
    /// base64 otherwise, unless given).
    #[serde(default)]
    pub encoding: Option<BodyEncoding>,
}

/// The document's schema of a file action: one object per operation.
#[derive(Debug)]
pub struct FilesActionBody;

impl utoipa::PartialSchema for FilesActionBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use serde_json::json;
        let path = json!({"type": "string", "minLength": 1, "maxLength": 1024,
            "pattern": STORAGE_PREFIX_PATTERN});
        let encoding = json!({"type": "string", "enum": ["text", "base64"]});
        let op = operation_schema;
        let schema = json!({"oneOf": [
            op("put", &["path"], json!({"path": path, "encoding": encoding,
                "body": {"type": "string", "description": "the content (at most 16 MiB), as text or base64"}})),
            op("get", &["path"], json!({"path": path, "encoding": encoding})),
            op("list", &[], json!({"path": path})),
            op("delete", &["path"], json!({"path": path})),
            op("mkdir", &["path"], json!({"path": path})),
        ]});
        serde_json::from_value(schema).expect("a valid schema")
    }
}

impl utoipa::ToSchema for FilesActionBody {}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FileEntry {
    pub name: String,
    /// `file`, `dir`, `link` or `other`.
    #[schema(value_type = String)]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified: Option<chrono::DateTime<chrono::Utc>>,
}

/// What a file action did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FilesActionResult {
    #[schema(value_type = String)]
    pub op: String,
    /// Relative to the base directory (`.` for the base directory itself).
    pub path: String,
    /// list: the directory's entries, by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entries: Option<Vec<FileEntry>>,
    /// put: bytes written; get: bytes read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// get: the content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<BodyEncoding>,
    /// mkdir: false when the directory was there already.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<bool>,
}
