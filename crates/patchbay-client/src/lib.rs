//! A typed client for Patchbay's REST API, used by the CLI and the integration tests. Wire
//! types come from `patchbay_domain::api`; errors carry the server's problem document.

use std::time::Duration;

use patchbay_domain::FieldError;
use patchbay_domain::api::{
    AuditEvent, AuditVerification, CreateConnection, CreateOrg, CreateProject, CreateToken,
    CreatedOrg, CreatedToken, Credentials, KeysStatus, Me, Org, Page, Project, PutSecret,
    RotationProgress, SecretMeta, TestResult, Token, UpdateConnection,
};
use patchbay_domain::connection::Connection;
pub use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach Patchbay at {url}: {source}")]
    Transport { url: String, source: reqwest::Error },
    /// The server answered with a problem document.
    #[error("{status} {code}: {}", summary(.detail, .errors))]
    Api {
        status: u16,
        code: String,
        detail: String,
        errors: Vec<FieldError>,
    },
    #[error("unexpected response ({status}): {message}")]
    Decode { status: u16, message: String },
    #[error("invalid base URL: {0}")]
    BaseUrl(String),
}

fn summary(detail: &str, errors: &[FieldError]) -> String {
    if errors.is_empty() {
        return detail.to_owned();
    }
    let lines: String = errors
        .iter()
        .map(|e| format!("\n  - {}: {}", e.field, e.reason))
        .collect();
    format!("{} invalid field(s):{lines}", errors.len())
}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

#[derive(Deserialize)]
struct ProblemBody {
    code: String,
    detail: String,
    #[serde(default)]
    errors: Vec<FieldError>,
}

/// A raw response, for callers that check status and headers themselves.
#[derive(Debug)]
pub struct RawResponse {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends a request and reads the whole answer.
async fn send(req: reqwest::RequestBuilder, url: String) -> Result<RawResponse> {
    let resp = req.send().await.map_err(|source| ClientError::Transport {
        url: url.clone(),
        source,
    })?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp
        .bytes()
        .await
        .map_err(|source| ClientError::Transport { url, source })?
        .to_vec();
    Ok(RawResponse {
        status,
        headers,
        body,
    })
}

#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: url::Url,
    token: Option<String>,
}

impl Client {
    pub fn new(base: &str, token: Option<String>) -> Result<Self> {
        let base = url::Url::parse(base).map_err(|e| ClientError::BaseUrl(e.to_string()))?;
        // Redirects come back to the caller: the API only redirects browsers to providers.
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .map_err(|source| ClientError::Transport {
                url: base.to_string(),
                source,
            })?;
        Ok(Self { http, base, token })
    }

    pub fn with_token(&self, token: impl Into<String>) -> Self {
        Self {
            token: Some(token.into()),
            ..self.clone()
        }
    }

    pub fn base_url(&self) -> &url::Url {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base.as_str().trim_end_matches('/'), path)
    }

    /// A request through the proxy: `path` under the connection's base URL; the upstream's
    /// answer as it came (a problem document when Patchbay itself refused).
    pub async fn proxy(
        &self,
        connection: &str,
        method: Method,
        path: &str,
        headers: &[(String, String)],
        body: Option<Vec<u8>>,
    ) -> Result<RawResponse> {
        let url = self.url(&format!("/v1/proxy/{}", path.trim_start_matches('/')));
        let mut req = self
            .http
            .request(method, &url)
            .header("Patchbay-Connection", connection);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(k, v);
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        send(req, url).await
    }

    /// Sends any request; `body` is sent as JSON when given.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<RawResponse> {
        let url = self.url(path);
        let mut req = self.http.request(method, &url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        send(req, url).await
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<T> {
        let r = self.raw(method, path, body, headers).await?;
        if !r.status.is_success() {
            return Err(match serde_json::from_slice::<ProblemBody>(&r.body) {
                Ok(p) => ClientError::Api {
                    status: r.status.as_u16(),
                    code: p.code,
                    detail: p.detail,
                    errors: p.errors,
                },
                Err(_) => ClientError::Decode {
                    status: r.status.as_u16(),
                    message: r.text().chars().take(200).collect(),
                },
            });
        }
        let body = if r.body.is_empty() {
            b"null".as_slice()
        } else {
            &r.body
        };
        serde_json::from_slice(body).map_err(|e| ClientError::Decode {
            status: r.status.as_u16(),
            message: e.to_string(),
        })
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.call(Method::GET, path, None, &[]).await
    }

    async fn send<T: DeserializeOwned, B: serde::Serialize>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<T> {
        let v = serde_json::to_value(body).map_err(|e| ClientError::Decode {
            status: 0,
            message: e.to_string(),
        })?;
        self.call(method, path, Some(&v), &[]).await
    }

    async fn delete(&self, path: &str) -> Result<()> {
        self.call::<Value>(Method::DELETE, path, None, &[])
            .await
            .map(|_| ())
    }

    pub async fn me(&self) -> Result<Me> {
        self.get("/v1/me").await
    }

    pub async fn create_org(&self, name: &str) -> Result<CreatedOrg> {
        self.send(Method::POST, "/v1/orgs", &CreateOrg { name: name.into() })
            .await
    }

    pub async fn list_orgs(&self) -> Result<Vec<Org>> {
        self.get("/v1/orgs").await
    }

    pub async fn list_providers(
        &self,
        category: Option<&str>,
    ) -> Result<Vec<patchbay_oauth::Provider>> {
        match category {
            Some(c) => self.get(&format!("/v1/providers?category={c}")).await,
            None => self.get("/v1/providers").await,
        }
    }

    pub async fn get_provider(&self, key: &str) -> Result<patchbay_oauth::Provider> {
        self.get(&format!("/v1/providers/{key}")).await
    }

    pub async fn list_apps(&self) -> Result<Vec<patchbay_domain::api::OAuthApp>> {
        self.get("/v1/oauth/apps").await
    }

    pub async fn create_app(
        &self,
        req: &patchbay_domain::api::CreateOAuthApp,
    ) -> Result<patchbay_domain::api::OAuthApp> {
        self.send(Method::POST, "/v1/oauth/apps", req).await
    }

    pub async fn update_app(
        &self,
        id: &str,
        req: &patchbay_domain::api::UpdateOAuthApp,
    ) -> Result<patchbay_domain::api::OAuthApp> {
        self.send(Method::PATCH, &format!("/v1/oauth/apps/{id}"), req)
            .await
    }

    pub async fn delete_app(&self, id: &str) -> Result<()> {
        self.delete(&format!("/v1/oauth/apps/{id}")).await
    }

    pub async fn list_projects(&self) -> Result<Vec<Project>> {
        self.get("/v1/projects").await
    }

    pub async fn get_project(&self, id: &str) -> Result<Project> {
        self.get(&format!("/v1/projects/{id}")).await
    }

    pub async fn create_project(&self, req: &CreateProject) -> Result<Project> {
        self.send(Method::POST, "/v1/projects", req).await
    }

    pub async fn list_tokens(&self) -> Result<Vec<Token>> {
        self.get("/v1/tokens").await
    }

    pub async fn create_token(&self, req: &CreateToken) -> Result<CreatedToken> {
        self.send(Method::POST, "/v1/tokens", req).await
    }

    pub async fn revoke_token(&self, id: &str) -> Result<()> {
        self.delete(&format!("/v1/tokens/{id}")).await
    }

    pub async fn list_secrets(&self) -> Result<Vec<SecretMeta>> {
        self.get("/v1/secrets").await
    }

    pub async fn put_secret(&self, name: &str, req: &PutSecret) -> Result<SecretMeta> {
        self.send(Method::PUT, &format!("/v1/secrets/{name}"), req)
            .await
    }

    pub async fn delete_secret(&self, name: &str) -> Result<()> {
        self.delete(&format!("/v1/secrets/{name}")).await
    }

    /// `query` is a ready query string such as `kind=http&limit=10` (may be empty).
    pub async fn list_connections(&self, query: &str) -> Result<Page<Connection>> {
        let q = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        self.get(&format!("/v1/connections{q}")).await
    }

    pub async fn create_connection(&self, req: &CreateConnection) -> Result<Connection> {
        self.send(Method::POST, "/v1/connections", req).await
    }

    pub async fn get_connection(&self, id: &str) -> Result<Connection> {
        self.get(&format!("/v1/connections/{id}")).await
    }

    pub async fn update_connection(
        &self,
        id: &str,
        req: &UpdateConnection,
        if_match: Option<i64>,
    ) -> Result<Connection> {
        let v = serde_json::to_value(req).map_err(|e| ClientError::Decode {
            status: 0,
            message: e.to_string(),
        })?;
        let etag = if_match.map(|v| format!("\"{v}\""));
        let headers: Vec<(&str, &str)> = etag
            .as_deref()
            .map(|e| ("if-match", e))
            .into_iter()
            .collect();
        self.call(
            Method::PATCH,
            &format!("/v1/connections/{id}"),
            Some(&v),
            &headers,
        )
        .await
    }

    pub async fn delete_connection(&self, id: &str) -> Result<()> {
        self.delete(&format!("/v1/connections/{id}")).await
    }

    /// Tests a saved connection (the result is stored).
    pub async fn test_connection(&self, id: &str) -> Result<TestResult> {
        self.call(
            Method::POST,
            &format!("/v1/connections/{id}/test"),
            None,
            &[],
        )
        .await
    }

    /// Tests a connection body without saving it.
    pub async fn test_unsaved(&self, req: &CreateConnection) -> Result<TestResult> {
        self.send(Method::POST, "/v1/connections/test", req).await
    }

    /// Starts the OAuth authorization-code flow: `{authorization_url, expires_at}`.
    pub async fn start_oauth(&self, id: &str) -> Result<Value> {
        self.call(
            Method::POST,
            &format!("/v1/connections/{id}/oauth/start"),
            None,
            &[],
        )
        .await
    }

    /// `POST /v1/actions/http`.
    pub async fn http_action(
        &self,
        a: &patchbay_domain::actions::HttpAction,
    ) -> Result<patchbay_domain::actions::HttpActionResult> {
        self.send(Method::POST, "/v1/actions/http", a).await
    }

    /// `POST /v1/actions/sql`.
    pub async fn sql_action(
        &self,
        a: &patchbay_domain::actions::SqlAction,
    ) -> Result<patchbay_domain::actions::SqlActionResult> {
        self.send(Method::POST, "/v1/actions/sql", a).await
    }

    /// `POST /v1/mcp/discover`: an MCP server's tools, nothing saved.
    pub async fn mcp_discover(
        &self,
        body: &patchbay_domain::api::McpDiscover,
    ) -> Result<patchbay_domain::api::McpDiscovery> {
        self.send(Method::POST, "/v1/mcp/discover", body).await
    }

    /// `POST /v1/connections/{id}/refresh-tools`.
    pub async fn refresh_tools(&self, id: &str) -> Result<patchbay_domain::api::McpDiscovery> {
        self.call(
            Method::POST,
            &format!("/v1/connections/{id}/refresh-tools"),
            None,
            &[],
        )
        .await
    }

    /// `POST /v1/actions/mcp`.
    pub async fn mcp_action(
        &self,
        a: &patchbay_domain::actions::McpAction,
    ) -> Result<patchbay_domain::actions::McpActionResult> {
        self.send(Method::POST, "/v1/actions/mcp", a).await
    }

    /// `GET /v1/mcp/providers`.
    pub async fn mcp_providers(&self) -> Result<Vec<patchbay_domain::api::McpProvider>> {
        self.get("/v1/mcp/providers").await
    }

    /// `POST /v1/actions/email`.
    pub async fn email_action(
        &self,
        a: &patchbay_domain::actions::EmailAction,
    ) -> Result<patchbay_domain::actions::EmailActionResult> {
        self.send(Method::POST, "/v1/actions/email", a).await
    }

    /// `POST /v1/actions/storage` for the operations answered in JSON (all but `get`).
    pub async fn storage_action(
        &self,
        a: &patchbay_domain::actions::StorageAction,
    ) -> Result<patchbay_domain::actions::StorageActionResult> {
        self.send(Method::POST, "/v1/actions/storage", a).await
    }

    /// `POST /v1/actions/files`.
    pub async fn files_action(
        &self,
        a: &patchbay_domain::actions::FilesAction,
    ) -> Result<patchbay_domain::actions::FilesActionResult> {
        self.send(Method::POST, "/v1/actions/files", a).await
    }

    /// `POST /v1/actions/storage` with `op: get`: the object's bytes and headers as they came
    /// (a problem document when refused).
    pub async fn storage_get(&self, connection: &str, key: &str) -> Result<RawResponse> {
        let body = serde_json::json!({"connection": connection, "op": "get", "key": key});
        self.raw(Method::POST, "/v1/actions/storage", Some(&body), &[])
            .await
    }

    /// `POST /v1/actions/webhook`.
    pub async fn webhook_action(
        &self,
        a: &patchbay_domain::actions::WebhookAction,
    ) -> Result<patchbay_domain::actions::WebhookActionResult> {
        self.send(Method::POST, "/v1/actions/webhook", a).await
    }

    /// `POST /v1/nodes/run`.
    pub async fn run_node(&self, node: &Value) -> Result<patchbay_domain::actions::NodeRunResult> {
        self.call(Method::POST, "/v1/nodes/run", Some(node), &[])
            .await
    }

    /// `GET /v1/deliveries` with a query such as `status=failed&limit=10`.
    pub async fn list_deliveries(
        &self,
        query: &str,
    ) -> Result<Page<patchbay_domain::actions::Delivery>> {
        self.get(&format!("/v1/deliveries?{query}")).await
    }

    pub async fn get_delivery(&self, id: &str) -> Result<patchbay_domain::actions::Delivery> {
        self.get(&format!("/v1/deliveries/{id}")).await
    }

    pub async fn replay_delivery(&self, id: &str) -> Result<patchbay_domain::actions::Delivery> {
        self.call(
            Method::POST,
            &format!("/v1/deliveries/{id}/replay"),
            None,
            &[],
        )
        .await
    }

    /// `POST /v1/inbound`.
    pub async fn create_inbound(
        &self,
        b: &patchbay_domain::inbound::CreateInbound,
    ) -> Result<patchbay_domain::inbound::CreatedInbound> {
        self.send(Method::POST, "/v1/inbound", b).await
    }

    pub async fn list_inbound(&self) -> Result<Vec<patchbay_domain::inbound::Inbound>> {
        self.get("/v1/inbound").await
    }

    pub async fn get_inbound(&self, id: &str) -> Result<patchbay_domain::inbound::Inbound> {
        self.get(&format!("/v1/inbound/{id}")).await
    }

    pub async fn update_inbound(
        &self,
        id: &str,
        b: &Value,
    ) -> Result<patchbay_domain::inbound::Inbound> {
        self.send(Method::PATCH, &format!("/v1/inbound/{id}"), b)
            .await
    }

    pub async fn delete_inbound(&self, id: &str) -> Result<()> {
        self.delete(&format!("/v1/inbound/{id}")).await
    }

    /// `GET /v1/inbound/{id}/events` with a query such as `cursor=evt_…&limit=10`.
    pub async fn inbound_events(
        &self,
        id: &str,
        query: &str,
    ) -> Result<patchbay_domain::inbound::EventPage> {
        self.get(&format!("/v1/inbound/{id}/events?{query}")).await
    }

    /// `GET /v1/hooks/{endpoint}/events`: the events with their bodies.
    pub async fn poll_hook(
        &self,
        endpoint: &str,
        query: &str,
    ) -> Result<patchbay_domain::inbound::EventPage> {
        self.get(&format!("/v1/hooks/{endpoint}/events?{query}"))
            .await
    }

    pub async fn inbound_event(
        &self,
        id: &str,
        event: &str,
    ) -> Result<patchbay_domain::inbound::InboundEvent> {
        self.get(&format!("/v1/inbound/{id}/events/{event}")).await
    }

    pub async fn replay_inbound_event(
        &self,
        id: &str,
        event: &str,
    ) -> Result<patchbay_domain::inbound::InboundEvent> {
        self.call(
            Method::POST,
            &format!("/v1/inbound/{id}/events/{event}/replay"),
            None,
            &[],
        )
        .await
    }

    /// A fresh access token of an OAuth connection: `{access_token, expires_at}`.
    pub async fn access_token(&self, id: &str) -> Result<Value> {
        self.get(&format!("/v1/connections/{id}/token")).await
    }

    pub async fn credentials(&self, id: &str) -> Result<Credentials> {
        self.get(&format!("/v1/connections/{id}/credentials")).await
    }

    pub async fn audit(&self, query: &str) -> Result<Page<AuditEvent>> {
        let q = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        self.get(&format!("/v1/audit{q}")).await
    }

    pub async fn verify_audit(&self) -> Result<AuditVerification> {
        self.get("/v1/audit/verify").await
    }

    pub async fn keys(&self) -> Result<KeysStatus> {
        self.get("/v1/keys").await
    }

    pub async fn rotate_keys(&self) -> Result<RotationProgress> {
        self.send(Method::POST, "/v1/keys/rotate", &Value::Null)
            .await
    }
}
