//! Per-kind connectors: how Patchbay tests and uses a connection of each kind — HTTP,
//! database, SMTP, webhook, MCP, storage, file transfer. Connectors receive decrypted material from the engine for the
//! length of one call, never read storage, and reach the network only through the gate.

mod auth;
pub mod call;
mod database;
pub mod files;
mod http;
pub mod inbound;
pub mod mcp;
pub mod redact;
pub mod sigv4;
pub mod smtp;
pub mod sql;
pub mod storage;
pub mod transfer;
pub mod webhook;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use patchbay_domain::Kind;
use patchbay_domain::api::{ErrorKind, TestResult};
use patchbay_domain::spec::{Auth, ConnectionSpec};
use patchbay_net::{Gate, GatedHttp, HttpError, NetError};
use secrecy::SecretString;
#[cfg(test)]
use serde_json::Value;

pub use auth::{AuthError, AuthTarget, Outgoing, apply_auth};
pub use patchbay_net::read_capped;

/// A connection's decrypted material, held only for one operation.
#[derive(Debug)]
pub struct Material {
    pub provider: String,
    /// The connection's configuration, typed by kind.
    pub spec: ConnectionSpec,
    pub auth: Auth,
    pub secrets: BTreeMap<String, SecretString>,
    /// The request an HTTP connection test makes (the provider's, or `config.verify_path`).
    pub verify: Option<VerifyRequest>,
    /// How calls through the material are made, worked out on first use (see [`call::Plan`]).
    pub plan: call::PlanCell,
}

/// A connection test's request for HTTP connections, and what its answer reveals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyRequest {
    pub method: String,
    /// Appended to the base URL; templates already filled.
    pub path: String,
    /// JSON pointer to the account (user id or e-mail) in the answer.
    pub account: Option<String>,
    /// A response header listing the granted scopes.
    pub scopes_header: Option<String>,
    /// A boolean field of the answer that must be true (Slack's `ok`).
    pub ok_field: Option<String>,
}

impl Material {
    pub fn new(
        provider: String,
        spec: ConnectionSpec,
        auth: Auth,
        secrets: BTreeMap<String, SecretString>,
        verify: Option<VerifyRequest>,
    ) -> Self {
        Self {
            provider,
            spec,
            auth,
            secrets,
            verify,
            plan: Default::default(),
        }
    }

    pub fn kind(&self) -> Kind {
        self.spec.kind()
    }

    /// The user name of a basic credential: in `auth` for HTTP and MCP, in `config` for
    /// databases and SMTP servers.
    pub fn username(&self) -> Option<&str> {
        match &self.auth {
            Auth::Basic(b) if b.username.is_some() => b.username.as_deref(),
            _ => self.spec.username(),
        }
    }

    pub fn secret(&self, field: &str) -> Option<&SecretString> {
        self.secrets.get(field)
    }

    /// The connection's default headers (`config.headers`; never credentials: validation
    /// keeps those out), those that make valid headers.
    pub fn default_headers(
        &self,
    ) -> impl Iterator<Item = (reqwest::header::HeaderName, reqwest::header::HeaderValue)> + '_
    {
        self.spec.headers().iter().filter_map(|(k, v)| {
            Some((
                reqwest::header::HeaderName::from_bytes(k.as_bytes()).ok()?,
                reqwest::header::HeaderValue::from_str(v).ok()?,
            ))
        })
    }

    /// The connection's own timeout, bounded for tests.
    fn timeout(&self, default: Duration) -> Duration {
        self.spec.timeout().map_or(default, |t| t.min(default))
    }
}

/// An HTTP material with `config`, `auth` and `secrets`, for tests.
#[cfg(test)]
mod tests {
    use super::ConnectorSettings;

    #[test]
    fn commands_are_allowed_exactly_or_by_the_file_name_of_an_allowed_path() {
        let s = ConnectorSettings {
            allow_commands: vec!["/opt/mcp/bin/srv".into(), "tool".into()],
            ..Default::default()
        };
        assert_eq!(s.allowed_command("tool"), Some("tool"));
        assert_eq!(s.allowed_command("srv"), Some("/opt/mcp/bin/srv"));
        assert_eq!(
            s.allowed_command("/opt/mcp/bin/srv"),
            Some("/opt/mcp/bin/srv")
        );
        assert_eq!(s.allowed_command("/tmp/srv"), None);
        assert_eq!(s.allowed_command("bin/srv"), None);
        assert_eq!(s.allowed_command("other"), None);
    }
}

#[cfg(test)]
pub(crate) fn test_material(config: Value, auth: Value, secrets: &[(&str, &str)]) -> Material {
    let object = |v: Value| v.as_object().cloned().unwrap_or_default();
    Material::new(
        "custom".into(),
        ConnectionSpec::from_config(Kind::Http, &object(config)).expect("an HTTP config"),
        Auth::from_auth(&object(auth)).expect("an auth"),
        secrets
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).into()))
            .collect(),
        None,
    )
}

/// What the operator allows beyond the network gate.
#[derive(Debug, Clone, Default)]
pub struct ConnectorSettings {
    /// Directories SQLite connections may name files under (`--allow-sqlite-dir`).
    pub allow_sqlite_dirs: Vec<PathBuf>,
    /// Directories a storage upload may read a `file_path` under (`--allow-upload-dir`).
    pub allow_upload_dirs: Vec<PathBuf>,
    /// Directories never reachable, whatever the allow-list says (Patchbay's data directory).
    pub protected_dirs: Vec<PathBuf>,
    /// Commands stdio MCP servers may run (`--allow-command`), matched exactly.
    pub allow_commands: Vec<String>,
    /// Upper bound of one connection test.
    pub test_timeout: Duration,
    /// SMTP `AUTH` may go to a non-loopback server without TLS (`--allow-plaintext-smtp-auth`).
    pub allow_plaintext_smtp_auth: bool,
    /// File-transfer connections may use plain FTP (`--allow-plaintext-ftp`).
    pub allow_plaintext_ftp: bool,
}

impl ConnectorSettings {
    /// The program `command` runs: an allow-listed command given exactly, or one whose file
    /// name it is (a registry entry's `mcp-server-everything` runs the operator's
    /// `/opt/mcp/bin/mcp-server-everything`); `None` when the operator allows neither.
    pub fn allowed_command(&self, command: &str) -> Option<&str> {
        let by_name = |a: &&String| {
            !command.contains('/')
                && std::path::Path::new(a.as_str())
                    .file_name()
                    .is_some_and(|n| n == command)
        };
        self.allow_commands
            .iter()
            .find(|a| *a == command)
            .or_else(|| self.allow_commands.iter().find(by_name))
            .map(String::as_str)
    }
}

#[derive(Debug, Clone)]
pub struct Connectors {
    http: GatedHttp,
    gate: Gate,
    settings: ConnectorSettings,
}

impl Connectors {
    pub fn new(gate: Gate, mut settings: ConnectorSettings) -> Result<Self, String> {
        if settings.test_timeout.is_zero() {
            settings.test_timeout = Duration::from_secs(15);
        }
        let http = GatedHttp::new(gate.clone(), settings.test_timeout)?;
        Ok(Self {
            http,
            gate,
            settings,
        })
    }

    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    pub fn settings(&self) -> &ConnectorSettings {
        &self.settings
    }

    pub fn http(&self) -> &GatedHttp {
        &self.http
    }

    /// `host` at `port`, resolved and checked by the gate.
    pub(crate) async fn endpoint(
        &self,
        host: &str,
        port: u16,
    ) -> Result<Vec<std::net::SocketAddr>, Outcome> {
        let addrs = self
            .gate
            .resolve_socket(host, port)
            .await
            .map_err(Outcome::from)?;
        if addrs.is_empty() {
            return Err(Outcome::fail(
                ErrorKind::Dns,
                format!("{host} has no address"),
            ));
        }
        Ok(addrs)
    }

    /// Tests a connection: reach it, authenticate, change nothing.
    pub async fn test(&self, m: &Material) -> TestResult {
        let started = Instant::now();
        let timeout = m.timeout(self.settings.test_timeout);
        let run = async {
            match &m.spec {
                ConnectionSpec::Http(c) => http::test(self, m, c, timeout).await,
                ConnectionSpec::Database(c) => database::test(self, m, c, timeout).await,
                ConnectionSpec::Smtp(c) => smtp::test(self, m, c, timeout).await,
                ConnectionSpec::Webhook(_) => webhook::test(self, m).await,
                ConnectionSpec::Mcp(_) => mcp::test(self, m, timeout).await,
                ConnectionSpec::Storage(c) => storage::test(self, m, c).await,
                ConnectionSpec::FileTransfer(c) => transfer::test(self, m, c).await,
            }
        };
        let outcome = match tokio::time::timeout(timeout + Duration::from_millis(500), run).await {
            Ok(o) => o,
            Err(_) => Outcome::fail(
                ErrorKind::Timeout,
                format!("no answer within {} ms", timeout.as_millis()),
            ),
        };
        outcome.into_result(elapsed_ms(started))
    }
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// A connector's verdict before latency is known.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub ok: bool,
    pub kind: Option<ErrorKind>,
    pub message: String,
    pub status: Option<u16>,
    pub account: Option<String>,
    pub scopes: Option<Vec<String>>,
    /// The SSH host key the server presented.
    pub host_key: Option<String>,
}

impl Outcome {
    pub fn ok(message: impl Into<String>) -> Self {
        Self {
            ok: true,
            kind: None,
            message: message.into(),
            status: None,
            account: None,
            scopes: None,
            host_key: None,
        }
    }

    pub fn fail(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            ok: false,
            kind: Some(kind),
            message: message.into(),
            status: None,
            account: None,
            scopes: None,
            host_key: None,
        }
    }

    pub fn status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    fn into_result(self, latency_ms: u64) -> TestResult {
        let mut r = if self.ok {
            TestResult::ok(latency_ms, self.message)
        } else {
            TestResult::failed(
                latency_ms,
                self.kind.unwrap_or(ErrorKind::Protocol),
                self.message,
            )
        };
        r.status_code = self.status;
        r.account = self.account;
        r.scopes_granted = self.scopes;
        r.host_key = self.host_key;
        r
    }
}

impl From<NetError> for Outcome {
    fn from(e: NetError) -> Self {
        match e {
            NetError::Blocked { .. } => Outcome::fail(ErrorKind::Blocked, e.to_string()),
            NetError::Dns { .. } => Outcome::fail(ErrorKind::Dns, e.to_string()),
            NetError::InvalidHost(_) => Outcome::fail(ErrorKind::Dns, e.to_string()),
        }
    }
}

impl From<HttpError> for Outcome {
    fn from(e: HttpError) -> Self {
        match e {
            HttpError::Net(n) => n.into(),
            HttpError::Timeout => Outcome::fail(ErrorKind::Timeout, "timed out"),
            HttpError::Connect(m) => Outcome::fail(ErrorKind::Refused, m),
            HttpError::Tls(m) => Outcome::fail(ErrorKind::Tls, m),
            HttpError::Url(m) => Outcome::fail(ErrorKind::Protocol, m),
            HttpError::Other(m) => Outcome::fail(ErrorKind::Protocol, m),
        }
    }
}

impl From<AuthError> for Outcome {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Http(h) => h.into(),
            AuthError::Rejected(m) => Outcome::fail(ErrorKind::Auth, m),
            AuthError::Unsupported(m) => Outcome::fail(ErrorKind::Protocol, m),
        }
    }
}
