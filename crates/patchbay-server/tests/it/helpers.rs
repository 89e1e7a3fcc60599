//! Starting a real server on a fresh database, and small helpers the tests share.

use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine as _;
use patchbay_client::{Client, ClientError};
use patchbay_domain::Role;
use patchbay_domain::api::CreateToken;
use patchbay_server::{Application, Settings};
use patchbay_testkit::TestClock;
use secrecy::SecretString;
use serde_json::{Value, json};
use sqlx::AnyPool;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use patchbay_testkit::TestDatabase;
pub use patchbay_testkit::{Backend, postgres_admin_url};

/// Runs a test body once per backend.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
                #[tokio::test]
                async fn postgres() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            }
        )+
    };
}

pub fn random_key() -> String {
    base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>())
}

/// Adjusts the server's settings before start.
pub type Tweak = std::sync::Arc<dyn Fn(&mut Settings) + Send + Sync>;

/// Settings that let the server reach peers on 127.0.0.0/8.
pub fn allow_loopback() -> Tweak {
    std::sync::Arc::new(|s| s.egress.allow_net = vec!["127.0.0.0/8".parse().unwrap()])
}

pub struct TestApp {
    pub url: String,
    /// Every service's "now": tests move it to reach expiry, margins and schedules.
    pub clock: Arc<TestClock>,
    /// The services of the running server, for what has no route (the scheduler's pass).
    pub hub: patchbay_engine::Hub,
    tweak: Option<Tweak>,
    pub admin: Client,
    pub admin_token: String,
    pub db_url: String,
    pub backend: Backend,
    pub master_key: String,
    /// Dropped with the test (a PostgreSQL database with it).
    _db: TestDatabase,
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, None).await
    }

    /// The OpenAPI document the server serves.
    pub async fn openapi(&self) -> Value {
        self.admin
            .raw(reqwest::Method::GET, "/v1/openapi.json", None, &[])
            .await
            .expect("the OpenAPI document")
            .json()
    }

    /// A server whose settings `tweak` adjusts (allow-lists, limits).
    pub async fn spawn_with(backend: Backend, tweak: Option<Tweak>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = TestDatabase::create(backend, dir.path()).await;
        let db_url = db.url.clone();
        let master_key = random_key();
        let clock = Arc::new(TestClock::new());
        let (app, token) = Self::build(
            &db_url,
            dir.path().to_path_buf(),
            Some(master_key.clone()),
            tweak.as_ref(),
            &clock,
        )
        .await;
        let token = token.expect("first run prints a token");
        let mut t = Self {
            url: String::new(),
            clock,
            hub: app.hub().clone(),
            tweak,
            admin: Client::new("http://127.0.0.1:1", None).expect("client"),
            admin_token: token.clone(),
            db_url,
            backend,
            master_key,
            _db: db,
            dir,
            stop: None,
            task: None,
        };
        t.run(app);
        t.admin = Client::new(&t.url, Some(token)).expect("client");
        t
    }

    async fn build(
        db_url: &str,
        data_dir: PathBuf,
        key: Option<String>,
        tweak: Option<&Tweak>,
        clock: &Arc<TestClock>,
    ) -> (Application, Option<String>) {
        let mut s = Settings::with_data_dir(data_dir);
        if let Some(t) = tweak {
            t(&mut s);
        }
        s.http.listen = "127.0.0.1:0".parse().expect("addr");
        s.store.database_url = db_url.starts_with("postgres").then(|| db_url.to_owned());
        s.vault.master_key = key.map(SecretString::from);
        if !db_url.starts_with("postgres") && s.vault.master_key.is_none() {
            // A missing key on SQLite would generate one; tests that want "sealed" pass a
            // wrong key instead.
            unreachable!("tests always pass a key on SQLite");
        }
        let app = Application::build_with_clock(s, clock.clone())
            .await
            .expect("server starts");
        let token = app.first_run_token().map(str::to_owned);
        (app, token)
    }

    fn run(&mut self, app: Application) {
        self.url = app.url();
        let (tx, rx) = oneshot::channel();
        self.stop = Some(tx);
        self.task = Some(tokio::spawn(async move {
            app.run_until(async {
                let _ = rx.await;
            })
            .await
            .expect("server runs");
        }));
    }

    /// Stops the server and starts it again on the same database with `key` (None: no key).
    pub async fn restart(&mut self, key: Option<String>) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        let (app, token) = Self::build(
            &self.db_url,
            self.dir.path().to_path_buf(),
            key,
            self.tweak.as_ref(),
            &self.clock,
        )
        .await;
        assert!(token.is_none(), "a restart is not a first run");
        self.hub = app.hub().clone();
        self.run(app);
        self.admin = Client::new(&self.url, Some(self.admin_token.clone())).expect("client");
    }

    /// A second server process on the same database and key (a replica); it stops with the test.
    pub async fn replica(&self) -> Client {
        self.replica_with_hub().await.0
    }

    /// A replica, with its services (for what has no route, such as the scheduler's pass).
    pub async fn replica_with_hub(&self) -> (Client, patchbay_engine::Hub) {
        let (app, token) = Self::build(
            &self.db_url,
            self.dir.path().to_path_buf(),
            Some(self.master_key.clone()),
            self.tweak.as_ref(),
            &self.clock,
        )
        .await;
        assert!(token.is_none());
        let url = app.url();
        let hub = app.hub().clone();
        tokio::spawn(async move {
            let _ = app.run_until(std::future::pending()).await;
        });
        (
            Client::new(&url, Some(self.admin_token.clone())).expect("client"),
            hub,
        )
    }

    /// A direct pool on the server's database, for inspecting what is stored.
    pub async fn db(&self) -> AnyPool {
        sqlx::any::install_default_drivers();
        AnyPool::connect(&self.db_url)
            .await
            .expect("direct database connection")
    }

    /// Creates a connection from its JSON body as the admin; its id.
    pub async fn connection(&self, body: Value) -> String {
        self.admin
            .create_connection(&serde_json::from_value(body).unwrap())
            .await
            .unwrap()
            .id
            .to_string()
    }

    pub fn anonymous(&self) -> Client {
        Client::new(&self.url, None).expect("client")
    }

    /// A new token of `role` in the admin client's organization.
    pub async fn token(
        &self,
        admin: &Client,
        role: Role,
        project: Option<patchbay_domain::ProjectId>,
    ) -> Client {
        let t = admin
            .create_token(&CreateToken {
                name: format!("{}-token", role.as_str()),
                role,
                project,
            })
            .await
            .expect("create token");
        Client::new(&self.url, Some(t.value)).expect("client")
    }

    /// A new organization; returns its admin client.
    pub async fn org(&self, name: &str) -> Client {
        let org = self.admin.create_org(name).await.expect("create org");
        Client::new(&self.url, Some(org.admin_token)).expect("client")
    }
}

/// The API error's status and code, or a panic if the call succeeded.
pub fn err_status<T: std::fmt::Debug>(r: Result<T, ClientError>) -> (u16, String) {
    match r {
        Err(ClientError::Api { status, code, .. }) => (status, code),
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// The fields a problem document's `errors` name, in order.
pub fn error_fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .expect("a problem document with errors")
        .iter()
        .filter_map(|e| e["field"].as_str().map(str::to_owned))
        .collect()
}

/// One connection body of each kind, each with distinct secret values.
pub fn every_kind(tag: &str) -> Vec<(Value, Vec<String>)> {
    let s = |name: &str| format!("canary-{tag}-{name}-7c1f9e");
    vec![
        (
            json!({"name": format!("api-{tag}"), "kind": "http", "provider": "gitlab",
                "auth": {"type": "bearer"}, "config": {"base_url": "https://gitlab.com/api/v4"},
                "secrets": {"token": s("bearer")}}),
            vec![s("bearer")],
        ),
        (
            json!({"name": format!("key-{tag}"), "kind": "http", "provider": "mistral",
                "auth": {"type": "api_key", "in": "header", "name": "Authorization", "prefix": "Bearer "},
                "config": {"base_url": "https://api.mistral.ai/v1"},
                "secrets": {"api_key": s("apikey"), "api_secret": s("apisecret")}}),
            vec![s("apikey"), s("apisecret")],
        ),
        (
            json!({"name": format!("basic-{tag}"), "kind": "http", "auth": {"type": "basic", "username": "svc"},
                "config": {"base_url": "https://intranet.example.com"}, "secrets": {"password": s("basic")}}),
            vec![s("basic")],
        ),
        (
            json!({"name": format!("oauth-{tag}"), "kind": "http", "auth": {"type": "oauth2",
                "authorization_url": "https://id.example.com/authorize", "token_url": "https://id.example.com/token",
                "scopes": ["read"]}, "config": {"base_url": "https://api.example.com"},
                "secrets": {"client_id": s("clientid"), "client_secret": s("clientsecret")}}),
            vec![s("clientid"), s("clientsecret")],
        ),
        (
            json!({"name": format!("cc-{tag}"), "kind": "http", "auth": {"type": "oauth2_client_credentials",
                "token_url": "https://id.example.com/token"}, "config": {"base_url": "https://api.example.com"},
                "secrets": {"client_id": s("ccid"), "client_secret": s("ccsecret")}}),
            vec![s("ccid"), s("ccsecret")],
        ),
        (
            json!({"name": format!("custom-{tag}"), "kind": "http", "auth": {"type": "custom",
                "inject": [{"in": "header", "name": "X-Auth", "template": "Token ${secrets.key}"}]},
                "config": {"base_url": "https://custom.example.com"}, "secrets": {"key": s("custom")}}),
            vec![s("custom")],
        ),
        (
            json!({"name": format!("db-{tag}"), "kind": "database", "config": {"driver": "postgresql",
                "host": "127.0.0.1", "database": "test", "username": "postgres"}, "secrets": {"password": s("dbpass")}}),
            vec![s("dbpass")],
        ),
        (
            json!({"name": format!("mail-{tag}"), "kind": "smtp", "config": {"host": "127.0.0.1", "port": 2525,
                "encryption": "none", "from_address": "ops@example.com", "username": "ops"},
                "secrets": {"password": s("smtp")}}),
            vec![s("smtp")],
        ),
        (
            json!({"name": format!("hook-{tag}"), "kind": "webhook", "auth": {"type": "hmac"},
                "config": {"url": "https://hooks.example.com/in"}, "secrets": {"secret": s("whsecret-long-enough")}}),
            vec![s("whsecret-long-enough")],
        ),
        (
            json!({"name": format!("mcp-{tag}"), "kind": "mcp", "auth": {"type": "bearer"},
                "config": {"server_url": "http://127.0.0.1:3001/mcp"}, "secrets": {"token": s("mcp")}}),
            vec![s("mcp")],
        ),
    ]
}
