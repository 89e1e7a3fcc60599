//! The server's typed settings; the CLI layers defaults, the TOML file, `PATCHBAY_*`
//! variables and flags into one of these.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use patchbay_net::IpNet;

use secrecy::SecretString;

use crate::logging::LogFormat;

#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    /// The URL users reach Patchbay at; defaults to `http://{listen}`.
    pub public_url: Option<url::Url>,
    /// Where the embedded SQLite database and the generated key file live.
    pub data_dir: PathBuf,
    /// `postgres://…` to scale out; `None` for the embedded SQLite default.
    pub database_url: Option<String>,
    /// The root key, base64 (`PATCHBAY_MASTER_KEY`).
    pub master_key: Option<SecretString>,
    pub master_key_file: Option<PathBuf>,
    pub log_format: LogFormat,
    /// Largest accepted JSON request body.
    pub body_limit: usize,
    /// The largest body the proxy passes in either direction.
    pub proxy_body_limit: usize,
    /// Ranges the outbound gate opens despite the deny-list (`--allow-net`).
    pub allow_net: Vec<IpNet>,
    /// Directories SQLite connections may use (`--allow-sqlite-dir`).
    pub allow_sqlite_dirs: Vec<PathBuf>,
    /// Commands stdio MCP connections may start (`--allow-command`).
    pub allow_commands: Vec<String>,
    /// DNS servers for outbound names instead of the system's (`--dns-server`).
    pub dns_servers: Vec<SocketAddr>,
    /// Connection tests per principal per minute (0: unlimited).
    pub test_rate_per_minute: u32,
    /// Background re-test interval; `None` turns the scheduler off.
    pub retest_interval: Option<Duration>,
    /// Upper bound of one connection test.
    pub test_timeout: Duration,
    /// The operator's provider catalog files (`--providers-dir`).
    pub providers_dir: Option<PathBuf>,
    /// Where system events are posted (`--event-webhook-url`), signed with the secret.
    pub event_webhook_url: Option<url::Url>,
    pub event_webhook_secret: Option<SecretString>,
    /// Threads serving connections (`--serve-threads`), each with a runtime of its own.
    pub serve_threads: usize,
    /// How long a client may take to send a request head, and stay idle between requests
    /// (`--header-timeout`).
    pub header_timeout: Duration,
    /// Open connections at most (`--max-connections`); `None` derives it from the open-file
    /// limit, which start-up raises to its hard limit.
    pub max_connections: Option<usize>,
    /// SMTP `AUTH` may go to a non-loopback server without TLS.
    pub allow_plaintext_smtp_auth: bool,
    /// The bearer token `/metrics` asks for (`PATCHBAY_METRICS_TOKEN`); `None` leaves it open.
    pub metrics_token: Option<SecretString>,
}

impl Settings {
    pub const DEFAULT_LISTEN: &'static str = "127.0.0.1:8750";

    /// Defaults around a data directory; handy for tests.
    pub fn with_data_dir(data_dir: PathBuf) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8750)),
            public_url: None,
            data_dir,
            database_url: None,
            master_key: None,
            master_key_file: None,
            log_format: LogFormat::Text,
            body_limit: 1024 * 1024,
            proxy_body_limit: 16 * 1024 * 1024,
            allow_net: Vec::new(),
            allow_sqlite_dirs: Vec::new(),
            allow_commands: Vec::new(),
            dns_servers: Vec::new(),
            test_rate_per_minute: 10,
            retest_interval: None,
            test_timeout: Duration::from_secs(15),
            providers_dir: None,
            event_webhook_url: None,
            event_webhook_secret: None,
            serve_threads: crate::serving::default_threads(),
            header_timeout: Duration::from_secs(20),
            max_connections: None,
            allow_plaintext_smtp_auth: false,
            metrics_token: None,
        }
    }

    pub fn sqlite_path(&self) -> PathBuf {
        self.data_dir.join("patchbay.db")
    }

    pub fn generated_key_path(&self) -> PathBuf {
        self.data_dir.join("master.key")
    }
}
