//! Building and running the server: open the store, unseal the vault, bind the listener
//! (port 0 in tests), serve until a shutdown signal.

use std::net::SocketAddr;
use std::sync::Arc;

use patchbay_connectors::{ConnectorSettings, Connectors};
use patchbay_engine::{Clock, EngineSettings, Hub, KeyChoice, Started, SystemClock};
use patchbay_net::{Gate, GateSettings};
use patchbay_store::Store;
use patchbay_vault::RootKey;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;

use crate::serving::{Counters, Limits, serve};
use crate::settings::Settings;

/// Shared by every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    pub hub: Hub,
    /// The largest body the proxy passes in either direction.
    pub proxy_body_limit: usize,
    /// Open and refused connections.
    pub counters: Arc<Counters>,
    /// The hash of the token `/metrics` asks for, when one is set.
    pub metrics_token: Option<Arc<Vec<u8>>>,
    /// The served OpenAPI document, written on its first request: the catalog and the public
    /// URL it is written from do not change while the server runs.
    pub openapi: Arc<std::sync::OnceLock<axum::body::Bytes>>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open the store: {0}")]
    Store(#[from] patchbay_store::StoreError),
    #[error("master key: {0}")]
    Key(#[from] patchbay_vault::VaultError),
    #[error("start-up failed: {0}")]
    Engine(#[from] patchbay_engine::EngineError),
    #[error("provider catalog: {0}")]
    Catalog(String),
    #[error("outbound network settings: {0}")]
    Net(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A server ready to run.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    app: crate::api::App,
    addr: SocketAddr,
    hub: Hub,
    first_run_token: Option<String>,
    sealed: Option<String>,
    key_note: Option<String>,
    store_location: String,
    threads: usize,
    limits: Limits,
    counters: Arc<Counters>,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// [`Application::build`] with `clock` as every service's "now" (tests move it to reach
    /// expiry, margins, leases and schedules).
    pub async fn build_with_clock(
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartupError> {
        let (url, store_location) = match &settings.store.database_url {
            Some(url) => (url.clone(), redact_url(url)),
            None => {
                std::fs::create_dir_all(&settings.store.data_dir).map_err(|source| {
                    StartupError::DataDir {
                        path: settings.store.data_dir.display().to_string(),
                        source,
                    }
                })?;
                let path = settings.sqlite_path();
                (Store::sqlite_url(&path), path.display().to_string())
            }
        };
        let embedded = settings.store.database_url.is_none();
        if embedded {
            private(&settings.store.data_dir, 0o700);
            private(&settings.sqlite_path(), 0o600);
        }
        let store = Store::open(&url).await?;
        if embedded {
            // The write-ahead log and its index take the store file's mode when SQLite creates
            // them again; those of this open are set here.
            for file in [
                settings.sqlite_path(),
                wal(&settings.sqlite_path(), "-wal"),
                wal(&settings.sqlite_path(), "-shm"),
            ] {
                private(&file, 0o600);
            }
        }
        let (key, key_note) = resolve_key(&settings)?;
        // Bound first, so that the public URL (and the OAuth callback) know the real port.
        let listener = TcpListener::bind(settings.http.listen)
            .await
            .map_err(|source| StartupError::Bind {
                addr: settings.http.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartupError::Bind {
            addr: settings.http.listen,
            source,
        })?;
        let mut engine = engine_settings(&settings)?;
        engine.public_url = settings
            .http
            .public_url
            .as_ref()
            .map(|u| u.as_str().trim_end_matches('/').to_owned())
            .unwrap_or_else(|| format!("http://{addr}"));
        let Started {
            hub,
            first_run_token,
            sealed,
        } = Hub::start(store, key, clock, engine).await?;
        let counters = Arc::new(Counters::default());
        let state = AppState {
            hub: hub.clone(),
            proxy_body_limit: settings.limits.proxy_body_limit,
            counters: counters.clone(),
            metrics_token: settings.metrics.token.as_ref().map(|t| {
                use secrecy::ExposeSecret as _;
                Arc::new(patchbay_engine::hash_token(t.expose_secret()))
            }),
            openapi: Arc::default(),
        };
        let limits = Limits {
            header_timeout: settings.http.header_timeout,
            max_connections: connection_cap(settings.http.max_connections),
        };
        let app = crate::api::App::new(state, settings.limits.body_limit);
        Ok(Self {
            listener,
            app,
            addr,
            hub,
            first_run_token,
            sealed,
            key_note,
            store_location,
            threads: settings.http.serve_threads,
            limits,
            counters,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The operator's admin token, only on the run that created the store.
    pub fn first_run_token(&self) -> Option<&str> {
        self.first_run_token.as_deref()
    }

    pub fn sealed_reason(&self) -> Option<&str> {
        self.sealed.as_deref()
    }

    /// A note about the master key worth telling the operator (e.g. a key file was generated).
    pub fn key_note(&self) -> Option<&str> {
        self.key_note.as_deref()
    }

    pub fn store_location(&self) -> &str {
        &self.store_location
    }

    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Serves connections until `stop` resolves.
    async fn serve(
        self,
        stop: impl std::future::Future<Output = ()>,
    ) -> std::io::Result<crate::serving::Serving> {
        serve(
            self.listener,
            self.app,
            self.threads,
            self.limits,
            self.counters,
            stop,
        )
        .await
    }

    /// Serves until Ctrl-C or SIGTERM.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let workers = self.hub.start_workers();
        let served = self.serve(shutdown_signal()).await;
        workers.stop().await;
        served.map(drop)
    }

    /// Serves until `stop` resolves (tests).
    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let workers = self.hub.start_delivery_workers();
        let served = self.serve(stop).await;
        workers.stop().await;
        served.map(drop)
    }
}

/// Sets `path` (when it exists) to `mode`, warning when it was open to others.
fn private(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    let was = meta.permissions().mode() & 0o777;
    if was == mode {
        return;
    }
    if was & 0o077 != 0 {
        tracing::warn!(
            path = %path.display(),
            was = format!("{was:o}"),
            now = format!("{mode:o}"),
            "the store was readable by other local users; its permissions are now tightened"
        );
    }
    if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)) {
        tracing::warn!(path = %path.display(), error = %e, "could not tighten permissions");
    }
}

/// The store's `-wal` or `-shm` file.
fn wal(store: &std::path::Path, suffix: &str) -> std::path::PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

/// File descriptors kept for everything but client connections: the store's pools, log
/// files, the resolver, outbound connections made outside the proxy.
const RESERVED_FILES: u64 = 256;

/// The open-file limit raised to its hard limit, and the cap on client connections kept below
/// it: each proxied connection may hold one upstream connection too. A configured cap above
/// what the limit allows is lowered, with a warning.
fn connection_cap(configured: Option<usize>) -> usize {
    let files = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "could not raise the open-file limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
        }
    };
    let fits = usize::try_from(files.saturating_sub(RESERVED_FILES) / 2)
        .unwrap_or(usize::MAX)
        .max(16);
    match configured {
        Some(n) if n > fits => {
            tracing::warn!(
                configured = n,
                open_file_limit = files,
                cap = fits,
                "max_connections is above what the open-file limit allows; lowered"
            );
            fits
        }
        Some(n) => n.max(1),
        None => fits,
    }
}

fn engine_settings(settings: &Settings) -> Result<EngineSettings, StartupError> {
    let gate = Gate::new(&GateSettings {
        allow_net: settings.egress.allow_net.clone(),
        dns_servers: settings.egress.dns_servers.clone(),
    })
    .map_err(StartupError::Net)?;
    let connectors = Connectors::new(
        gate,
        ConnectorSettings {
            allow_sqlite_dirs: settings.egress.allow_sqlite_dirs.clone(),
            allow_upload_dirs: settings.egress.allow_upload_dirs.clone(),
            protected_dirs: vec![settings.store.data_dir.clone()],
            allow_commands: settings.egress.allow_commands.clone(),
            test_timeout: settings.egress.test_timeout,
            allow_plaintext_smtp_auth: settings.egress.allow_plaintext_smtp_auth,
            allow_plaintext_ftp: settings.egress.allow_plaintext_ftp,
        },
    )
    .map_err(StartupError::Net)?;
    let catalog = match &settings.providers.dir {
        Some(dir) => patchbay_oauth::Catalog::with_dir(dir),
        None => patchbay_oauth::Catalog::builtin(),
    }
    .map_err(|e| StartupError::Catalog(e.to_string()))?;
    let events = match (
        &settings.workers.event_webhook_url,
        &settings.workers.event_webhook_secret,
    ) {
        (Some(url), Some(secret)) => Some(patchbay_engine::EventSink {
            url: url.clone(),
            secret: secret.clone(),
        }),
        (Some(_), None) => {
            return Err(StartupError::Net(
                "--event-webhook-url needs PATCHBAY_EVENT_WEBHOOK_SECRET".into(),
            ));
        }
        _ => None,
    };
    Ok(EngineSettings {
        public_url: String::new(),
        events,
        connectors,
        catalog: Arc::new(catalog),
        test_rate_per_minute: settings.limits.test_rate_per_minute,
        tool_call_rate_per_minute: settings.limits.tool_call_rate_per_minute,
        retest_interval: settings.workers.retest_interval,
        mcp_server_urls: mcp_server_urls(std::env::vars()),
        client_metadata_url: settings
            .providers
            .client_metadata_url
            .as_ref()
            .map(url::Url::to_string),
        web_session_idle: settings.ui.session_idle,
        web_session_max: settings.ui.session_max,
    })
}

/// The MCP registry's URLs the operator set: `PATCHBAY_MCP_<NAME>_URL` (`PATCHBAY_MCP_FILESYSTEM_URL`
/// for `mcp-filesystem`), by registry name in lower case with `-` for `_`.
fn mcp_server_urls(
    vars: impl Iterator<Item = (String, String)>,
) -> std::collections::BTreeMap<String, String> {
    vars.filter_map(|(k, v)| {
        let name = k.strip_prefix("PATCHBAY_MCP_")?.strip_suffix("_URL")?;
        if name.is_empty() || v.trim().is_empty() {
            return None;
        }
        Some((
            name.to_ascii_lowercase().replace('_', "-"),
            v.trim().to_owned(),
        ))
    })
    .collect()
}

fn resolve_key(settings: &Settings) -> Result<(KeyChoice, Option<String>), StartupError> {
    if let Some(b64) = &settings.vault.master_key {
        return Ok((
            KeyChoice::Key(RootKey::from_base64(b64.expose_secret())?),
            None,
        ));
    }
    if let Some(path) = &settings.vault.master_key_file {
        return Ok((KeyChoice::Key(RootKey::load_file(path)?), None));
    }
    if settings.store.database_url.is_some() {
        return Ok((
            KeyChoice::Missing(
                "no master key is configured: set PATCHBAY_MASTER_KEY or --master-key-file".into(),
            ),
            None,
        ));
    }
    let path = settings.generated_key_path();
    let (key, created) = RootKey::load_or_generate(&path)?;
    let note = created.then(|| {
        format!(
            "generated a master key at {} (mode 0600): back it up, without it the stored secrets cannot be read",
            path.display()
        )
    });
    Ok((KeyChoice::Key(key), note))
}

/// Hides the password of a database URL for display.
fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("****"));
            }
            u.set_query(None);
            u.to_string()
        }
        Err(_) => "(database URL)".into(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
