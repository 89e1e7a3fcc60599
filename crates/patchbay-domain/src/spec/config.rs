//! Per-kind configuration: the non-secret settings of a connection.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::connection::Kind;

/// A connection's configuration, by kind.
#[derive(Debug, Clone, PartialEq)]
pub enum ConnectionSpec {
    Http(HttpConfig),
    Database(DatabaseConfig),
    Smtp(SmtpConfig),
    Webhook(WebhookConfig),
    Mcp(McpConfig),
    Storage(StorageConfig),
    FileTransfer(FileTransferConfig),
}

impl ConnectionSpec {
    pub fn kind(&self) -> Kind {
        match self {
            Self::Http(_) => Kind::Http,
            Self::Database(_) => Kind::Database,
            Self::Smtp(_) => Kind::Smtp,
            Self::Webhook(_) => Kind::Webhook,
            Self::Mcp(_) => Kind::Mcp,
            Self::Storage(_) => Kind::Storage,
            Self::FileTransfer(_) => Kind::FileTransfer,
        }
    }

    /// Reads a `config` object of `kind` that validation accepted (from the store, or from
    /// validation's own checked map), defaults filled; the reason when it does not parse.
    pub fn from_config(kind: Kind, config: &Map<String, Value>) -> Result<Self, String> {
        let value = Value::Object(config.clone());
        let read = |e: serde_json::Error| format!("config: {e}");
        let mut spec = match kind {
            Kind::Http => Self::Http(serde_json::from_value(value).map_err(read)?),
            Kind::Database => Self::Database(serde_json::from_value(value).map_err(read)?),
            Kind::Smtp => Self::Smtp(serde_json::from_value(value).map_err(read)?),
            Kind::Webhook => Self::Webhook(serde_json::from_value(value).map_err(read)?),
            Kind::Mcp => Self::Mcp(serde_json::from_value(value).map_err(read)?),
            Kind::Storage => Self::Storage(serde_json::from_value(value).map_err(read)?),
            Kind::FileTransfer => Self::FileTransfer(serde_json::from_value(value).map_err(read)?),
        };
        spec.fill_defaults();
        Ok(spec)
    }

    /// The `config` object as the API shows it and the store keeps it.
    pub fn to_config(&self) -> Map<String, Value> {
        match self {
            Self::Http(c) => super::to_object(c),
            Self::Database(c) => super::to_object(c),
            Self::Smtp(c) => super::to_object(c),
            Self::Webhook(c) => super::to_object(c),
            Self::Mcp(c) => super::to_object(c),
            Self::Storage(c) => super::to_object(c),
            Self::FileTransfer(c) => super::to_object(c),
        }
    }

    /// Fills the defaults that depend on other fields (a driver's port, TLS off for a local
    /// host, an encryption's port).
    pub fn fill_defaults(&mut self) {
        match self {
            Self::Database(c) => c.fill_defaults(),
            Self::Smtp(c) => c.fill_defaults(),
            Self::Storage(c) => c.fill_defaults(),
            Self::FileTransfer(c) => c.fill_defaults(),
            Self::Http(_) | Self::Webhook(_) | Self::Mcp(_) => {}
        }
    }

    /// The connection's default headers (never credentials: validation keeps those out).
    pub fn headers(&self) -> &BTreeMap<String, String> {
        static NONE: BTreeMap<String, String> = BTreeMap::new();
        match self {
            Self::Http(c) => &c.headers,
            Self::Webhook(c) => &c.headers,
            Self::Mcp(c) => &c.headers,
            Self::Database(_) | Self::Smtp(_) | Self::Storage(_) | Self::FileTransfer(_) => &NONE,
        }
    }

    /// The default headers, for the kinds that send them.
    pub fn headers_mut(&mut self) -> Option<&mut BTreeMap<String, String>> {
        match self {
            Self::Http(c) => Some(&mut c.headers),
            Self::Webhook(c) => Some(&mut c.headers),
            Self::Mcp(c) => Some(&mut c.headers),
            Self::Database(_) | Self::Smtp(_) | Self::Storage(_) | Self::FileTransfer(_) => None,
        }
    }

    /// The connection's own timeout, where its kind has one.
    pub fn timeout(&self) -> Option<Duration> {
        match self {
            Self::Http(c) => Some(c.timeout()),
            Self::Mcp(c) => Some(Duration::from_millis(c.timeout_ms)),
            Self::Storage(c) => Some(Duration::from_millis(c.timeout_ms)),
            Self::FileTransfer(c) => Some(Duration::from_millis(c.timeout_ms)),
            _ => None,
        }
    }

    /// The user name a basic credential goes with when the kind keeps it in `config`.
    pub fn username(&self) -> Option<&str> {
        match self {
            Self::Database(c) => c.username.as_deref(),
            Self::Smtp(c) => c.username.as_deref(),
            Self::FileTransfer(c) => Some(&c.username),
            _ => None,
        }
    }

    pub fn http(&self) -> Option<&HttpConfig> {
        match self {
            Self::Http(c) => Some(c),
            _ => None,
        }
    }

    pub fn storage(&self) -> Option<&StorageConfig> {
        match self {
            Self::Storage(c) => Some(c),
            _ => None,
        }
    }

    pub fn file_transfer(&self) -> Option<&FileTransferConfig> {
        match self {
            Self::FileTransfer(c) => Some(c),
            _ => None,
        }
    }
}

fn is_zero_map<K, V>(m: &BTreeMap<K, V>) -> bool {
    m.is_empty()
}

/// An HTTP API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpConfig {
    /// Absent only while an OAuth provider's token answer is to name it (Salesforce).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    #[serde(default, skip_serializing_if = "is_zero_map")]
    pub headers: BTreeMap<String, String>,
    #[serde(default = "HttpConfig::timeout_default")]
    pub timeout_ms: u64,
    #[serde(default = "HttpConfig::retries_default")]
    pub retries: u32,
    #[serde(default = "HttpConfig::backoff_default")]
    pub backoff_ms: u64,
    /// The path a connection test requests instead of the base URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_path: Option<String>,
    /// Whether the MCP gateway offers the provider's catalog operations as tools.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mcp_tools: bool,
    /// Values a provider's templates read (QuickBooks' `realmId`, kept from its callback).
    #[serde(flatten)]
    pub values: Map<String, Value>,
}

impl HttpConfig {
    pub const TIMEOUT_MS: u64 = 30_000;
    pub const RETRIES: u32 = 2;
    pub const BACKOFF_MS: u64 = 250;

    fn timeout_default() -> u64 {
        Self::TIMEOUT_MS
    }
    fn retries_default() -> u32 {
        Self::RETRIES
    }
    fn backoff_default() -> u64 {
        Self::BACKOFF_MS
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    pub fn backoff(&self) -> Duration {
        Duration::from_millis(self.backoff_ms)
    }
}

macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $s:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name { $(#[serde(rename = $s)] $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The accepted spellings.
            pub const NAMES: &'static [&'static str] = &[$($s),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),+ }
            }

            pub fn parse(raw: &str) -> Option<Self> {
                match raw { $($s => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use wire_enum;

wire_enum!(
    /// The database server a connection speaks to.
    DatabaseDriver { Postgresql => "postgresql", Mysql => "mysql", Sqlite => "sqlite", Mssql => "mssql" }
);

impl DatabaseDriver {
    /// The server's usual port; none for SQLite (a file).
    pub fn default_port(self) -> Option<u16> {
        match self {
            Self::Postgresql => Some(5432),
            Self::Mysql => Some(3306),
            Self::Mssql => Some(1433),
            Self::Sqlite => None,
        }
    }
}

/// A database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatabaseConfig {
    pub driver: DatabaseDriver,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The database name, or the file path for SQLite.
    pub database: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl: Option<bool>,
    /// A PEM certificate the server's chain must lead to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_ca: Option<String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub options: Map<String, Value>,
}

impl DatabaseConfig {
    /// How long a SQL action's statement may run unless the action says.
    pub const STATEMENT_TIMEOUT_MS: u64 = 30_000;

    /// A network database's port defaults to its driver's; TLS is on unless the host is this
    /// machine.
    pub fn fill_defaults(&mut self) {
        if self.driver == DatabaseDriver::Sqlite {
            return;
        }
        if self.port.is_none() {
            self.port = self.driver.default_port();
        }
        if self.ssl.is_none() {
            self.ssl = Some(!self.host.as_deref().is_some_and(super::is_local_host));
        }
    }

    pub fn host(&self) -> &str {
        self.host.as_deref().unwrap_or_default()
    }

    pub fn port(&self) -> u16 {
        self.port.or(self.driver.default_port()).unwrap_or_default()
    }

    pub fn ssl(&self) -> bool {
        self.ssl.unwrap_or(false)
    }
}

wire_enum!(
    /// How an SMTP session is protected.
    SmtpEncryption { Starttls => "starttls", Tls => "tls", None => "none" }
);

impl SmtpEncryption {
    pub fn default_port(self) -> u16 {
        match self {
            Self::Tls => 465,
            Self::None => 25,
            Self::Starttls => 587,
        }
    }
}

/// An SMTP server mail is sent through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmtpConfig {
    pub host: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    pub from_address: String,
    pub encryption: SmtpEncryption,
}

impl SmtpConfig {
    pub fn fill_defaults(&mut self) {
        self.port.get_or_insert(self.encryption.default_port());
    }

    pub fn port(&self) -> u16 {
        self.port.unwrap_or(self.encryption.default_port())
    }
}

wire_enum!(
    /// The method an outbound webhook is delivered with.
    WebhookMethod { Post => "POST", Put => "PUT", Patch => "PATCH" }
);

/// An outbound webhook endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookConfig {
    pub url: String,
    #[serde(default = "WebhookConfig::method_default")]
    pub method: WebhookMethod,
    #[serde(default, skip_serializing_if = "is_zero_map")]
    pub headers: BTreeMap<String, String>,
}

impl WebhookConfig {
    pub const METHOD: WebhookMethod = WebhookMethod::Post;

    fn method_default() -> WebhookMethod {
        Self::METHOD
    }
}

/// How an MCP server is reached.
#[derive(Debug, Clone, PartialEq)]
pub enum McpTransport {
    /// Streamable HTTP (MCP 2025-03-26 and later).
    StreamableHttp { url: String },
    /// The legacy HTTP+SSE transport (MCP 2024-11-05).
    Sse { url: String },
    /// A child process speaking over its stdin and stdout.
    Stdio {
        command: String,
        args: Vec<String>,
        env: BTreeMap<String, String>,
    },
}

wire_enum!(
    /// The `transport` field's spellings.
    McpTransportName { StreamableHttp => "streamable_http", Sse => "sse", Stdio => "stdio" }
);

/// An MCP tool server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "McpWire", into = "McpWire")]
pub struct McpConfig {
    pub transport: McpTransport,
    pub timeout_ms: u64,
    pub headers: BTreeMap<String, String>,
    /// The tools the gateway offers of this server (none: all).
    pub allowed_tools: Vec<String>,
}

impl McpConfig {
    pub const TIMEOUT_MS: u64 = 30_000;
}

/// `McpConfig` as the API writes it: flat fields.
#[derive(Serialize, Deserialize)]
struct McpWire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    server_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    command: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    args: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero_map")]
    env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    transport: Option<McpTransportName>,
    #[serde(default = "McpWire::timeout_default")]
    timeout_ms: u64,
    #[serde(default, skip_serializing_if = "is_zero_map")]
    headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    allowed_tools: Vec<String>,
}

impl McpWire {
    fn timeout_default() -> u64 {
        McpConfig::TIMEOUT_MS
    }
}

impl TryFrom<McpWire> for McpConfig {
    type Error = String;

    fn try_from(w: McpWire) -> Result<Self, String> {
        let name = w.transport.unwrap_or(if w.command.is_some() {
            McpTransportName::Stdio
        } else {
            McpTransportName::StreamableHttp
        });
        let transport = match (name, w.server_url, w.command) {
            (McpTransportName::Stdio, None, Some(command)) => McpTransport::Stdio {
                command,
                args: w.args,
                env: w.env,
            },
            (McpTransportName::StreamableHttp, Some(url), None) => {
                McpTransport::StreamableHttp { url }
            }
            (McpTransportName::Sse, Some(url), None) => McpTransport::Sse { url },
            (McpTransportName::Stdio, ..) => return Err("stdio needs `command`".into()),
            _ => return Err("an HTTP transport needs `server_url`, not `command`".into()),
        };
        Ok(Self {
            transport,
            timeout_ms: w.timeout_ms,
            headers: w.headers,
            allowed_tools: w.allowed_tools,
        })
    }
}

impl From<McpConfig> for McpWire {
    fn from(c: McpConfig) -> Self {
        let mut w = McpWire {
            server_url: None,
            command: None,
            args: Vec::new(),
            env: BTreeMap::new(),
            transport: None,
            timeout_ms: c.timeout_ms,
            headers: c.headers,
            allowed_tools: c.allowed_tools,
        };
        match c.transport {
            McpTransport::StreamableHttp { url } => {
                w.server_url = Some(url);
                w.transport = Some(McpTransportName::StreamableHttp);
            }
            McpTransport::Sse { url } => {
                w.server_url = Some(url);
                w.transport = Some(McpTransportName::Sse);
            }
            McpTransport::Stdio { command, args, env } => {
                w.command = Some(command);
                w.args = args;
                w.env = env;
                w.transport = Some(McpTransportName::Stdio);
            }
        }
        w
    }
}

/// An S3-compatible object store: one bucket, optionally confined to a key prefix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StorageConfig {
    pub bucket: String,
    #[serde(default = "StorageConfig::region_default")]
    pub region: String,
    /// An S3-compatible service's endpoint (`https://…`); AWS's regional endpoint when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The connection reaches only keys under this prefix (`invoices/`); the whole bucket when
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`) rather than virtual-hosted
    /// (`bucket.endpoint/key`); on by default for a given endpoint, off for AWS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_style: Option<bool>,
    #[serde(default = "StorageConfig::timeout_default")]
    pub timeout_ms: u64,
}

impl StorageConfig {
    pub const REGION: &'static str = "us-east-1";
    pub const TIMEOUT_MS: u64 = 30_000;

    fn region_default() -> String {
        Self::REGION.to_owned()
    }
    fn timeout_default() -> u64 {
        Self::TIMEOUT_MS
    }

    /// A prefix always ends with `/`; path-style addressing is on for a given endpoint.
    pub fn fill_defaults(&mut self) {
        if let Some(p) = &mut self.prefix
            && !p.ends_with('/')
        {
            p.push('/');
        }
        if self.path_style.is_none() {
            self.path_style = Some(self.endpoint.is_some());
        }
    }

    pub fn path_style(&self) -> bool {
        self.path_style.unwrap_or(self.endpoint.is_some())
    }

    pub fn prefix(&self) -> &str {
        self.prefix.as_deref().unwrap_or("")
    }

    /// The service's endpoint: the given one, or AWS's for the region.
    pub fn endpoint(&self) -> String {
        match &self.endpoint {
            Some(e) => e.trim_end_matches('/').to_owned(),
            None => format!("https://s3.{}.amazonaws.com", self.region),
        }
    }
}

wire_enum!(
    /// How a file-transfer connection speaks to its server.
    FileProtocol { Sftp => "sftp", Ftps => "ftps", Ftp => "ftp" }
);

impl FileProtocol {
    pub fn default_port(self) -> u16 {
        match self {
            Self::Sftp => 22,
            Self::Ftps | Self::Ftp => 21,
        }
    }
}

/// An SFTP, FTPS (explicit TLS) or FTP server, every path confined under `base_dir`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileTransferConfig {
    pub protocol: FileProtocol,
    pub host: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    pub username: String,
    /// The directory every path is relative to (`/srv/exports`, or `inbox` under the login
    /// directory); the login directory when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_dir: Option<String>,
    /// SFTP: the server's public key (`ssh-ed25519 AAAA…`) or its fingerprint (`SHA256:…`);
    /// pinned from the first connection when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_key: Option<String>,
    /// FTPS: a PEM certificate the server's chain must lead to (the system's roots otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ca: Option<String>,
    #[serde(default = "FileTransferConfig::timeout_default")]
    pub timeout_ms: u64,
}

impl FileTransferConfig {
    pub const TIMEOUT_MS: u64 = 30_000;

    fn timeout_default() -> u64 {
        Self::TIMEOUT_MS
    }

    pub fn fill_defaults(&mut self) {
        self.port.get_or_insert(self.protocol.default_port());
        if let Some(b) = &mut self.base_dir
            && b.len() > 1
            && b.ends_with('/')
        {
            let trimmed = b.trim_end_matches('/');
            *b = if trimmed.is_empty() {
                "/".into()
            } else {
                trimmed.to_owned()
            };
        }
    }

    pub fn port(&self) -> u16 {
        self.port.unwrap_or(self.protocol.default_port())
    }
}
