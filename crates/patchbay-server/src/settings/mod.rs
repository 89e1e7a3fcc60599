//! The server's typed settings, one sub-struct per section of the configuration file, built by
//! one layering (`layer`): the defaults of the table in `defs`, then the TOML file, then the
//! `PATCHBAY_*` environment, then the flags.

pub mod defs;
pub mod layer;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use patchbay_net::IpNet;
use secrecy::SecretString;

use crate::logging::LogFormat;

#[derive(Debug, Clone)]
pub struct Settings {
    pub http: HttpSettings,
    pub store: StoreSettings,
    pub vault: VaultSettings,
    pub egress: EgressSettings,
    pub limits: LimitSettings,
    pub workers: WorkerSettings,
    pub providers: ProviderSettings,
    pub metrics: MetricsSettings,
    pub log: LogSettings,
    pub ui: UiSettings,
}

#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub listen: SocketAddr,
    /// The URL users reach Patchbay at; defaults to `http://{listen}`.
    pub public_url: Option<url::Url>,
    /// Threads serving connections, each with a runtime of its own.
    pub serve_threads: usize,
    /// How long a client may take to send a request head, and stay idle between requests.
    pub header_timeout: Duration,
    /// Open connections at most; `None` derives it from the open-file limit, which start-up
    /// raises to its hard limit.
    pub max_connections: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// Where the embedded SQLite database and the generated key file live.
    pub data_dir: PathBuf,
    /// `postgres://…` to scale out; `None` for the embedded SQLite default.
    pub database_url: Option<String>,
}

#[derive(Debug, Clone)]
pub struct VaultSettings {
    /// The root key, base64.
    pub master_key: Option<SecretString>,
    pub master_key_file: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct EgressSettings {
    /// Ranges the outbound gate opens despite the deny-list.
    pub allow_net: Vec<IpNet>,
    /// Directories SQLite connections may use.
    pub allow_sqlite_dirs: Vec<PathBuf>,
    /// Directories an s3-upload node may read its `file_path` under.
    pub allow_upload_dirs: Vec<PathBuf>,
    /// Commands stdio MCP connections may start.
    pub allow_commands: Vec<String>,
    /// DNS servers for outbound names instead of the system's.
    pub dns_servers: Vec<SocketAddr>,
    /// SMTP `AUTH` may go to a non-loopback server without TLS.
    pub allow_plaintext_smtp_auth: bool,
    /// File-transfer connections may use plain FTP.
    pub allow_plaintext_ftp: bool,
    /// Upper bound of one connection test.
    pub test_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct LimitSettings {
    /// Largest accepted JSON request body.
    pub body_limit: usize,
    /// The largest body the proxy passes in either direction.
    pub proxy_body_limit: usize,
    /// Connection tests per principal per minute (0: unlimited).
    pub test_rate_per_minute: u32,
    /// Gateway tool calls per token per minute (0: unlimited).
    pub tool_call_rate_per_minute: u32,
}

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Background re-test interval; `None` turns the scheduler off.
    pub retest_interval: Option<Duration>,
    /// Where system events are posted, signed with the secret.
    pub event_webhook_url: Option<url::Url>,
    pub event_webhook_secret: Option<SecretString>,
}

#[derive(Debug, Clone)]
pub struct ProviderSettings {
    /// The operator's provider catalog files.
    pub dir: Option<PathBuf>,
    /// Where Patchbay's client ID metadata document is published (its `client_id`).
    pub client_metadata_url: Option<url::Url>,
}

#[derive(Debug, Clone)]
pub struct MetricsSettings {
    /// The bearer token `/metrics` asks for; `None` leaves it open.
    pub token: Option<SecretString>,
}

#[derive(Debug, Clone)]
pub struct UiSettings {
    /// A session ends when unused this long…
    pub session_idle: Duration,
    /// …and this long after it started.
    pub session_max: Duration,
}

#[derive(Debug, Clone)]
pub struct LogSettings {
    pub format: LogFormat,
}

impl Settings {
    /// The defaults of every setting, around a data directory (tests start from here).
    pub fn with_data_dir(data_dir: PathBuf) -> Self {
        let mut layers = layer::Layers::defaults();
        layers.set_flag("store.data_dir", data_dir.display().to_string().into());
        layers
            .settings(&data_dir)
            .unwrap_or_else(|e| unreachable!("the built-in defaults are valid: {e}"))
    }

    pub fn sqlite_path(&self) -> PathBuf {
        self.store.data_dir.join("patchbay.db")
    }

    pub fn generated_key_path(&self) -> PathBuf {
        self.store.data_dir.join("master.key")
    }
}
