//! Connection tests (SPEC §4): of a saved connection (the result is stored and moves the status
//! between `active` and `invalid`) or of a draft (nothing stored), rate limited per principal,
//! audited — blocked egress twice, as the test and as `egress.blocked`. The scheduler re-tests
//! connections in the background.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use patchbay_connectors::{Connectors, Material};
use patchbay_domain::api::{CreateConnection, ErrorKind, TestResult};
use patchbay_domain::connection::Connection;
use patchbay_domain::spec::{Auth, ConnectionSpec};
use patchbay_domain::validate::SecretInput;
use patchbay_domain::{ConnectionId, Principal, Status, TestStatus};
use secrecy::SecretString;

use crate::{EngineError, Hub, Result};

/// What the engine needs besides the store and the vault.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Where users and providers reach this deployment (the OAuth callback's base).
    pub public_url: String,
    /// The operator's event webhook, if any.
    pub events: Option<crate::EventSink>,
    pub connectors: Connectors,
    /// Known providers (built-in and the operator's).
    pub catalog: std::sync::Arc<patchbay_oauth::Catalog>,
    /// Connection tests a principal may run per minute (0: unlimited).
    pub test_rate_per_minute: u32,
    /// MCP gateway tool calls a token may make per minute (0: unlimited).
    pub tool_call_rate_per_minute: u32,
    /// How often the scheduler re-tests connections; `None` turns it off.
    pub retest_interval: Option<Duration>,
    /// The operator's MCP server URLs by registry name (`PATCHBAY_MCP_<NAME>_URL`).
    pub mcp_server_urls: BTreeMap<String, String>,
    /// Where Patchbay's OAuth client ID metadata document is published, when not at
    /// `{public_url}/v1/oauth/client-metadata.json`.
    pub client_metadata_url: Option<String>,
    /// A web UI session ends when unused this long…
    pub web_session_idle: Duration,
    /// …and this long after it started, however active.
    pub web_session_max: Duration,
}

impl EngineSettings {
    /// Defaults around `connectors`: 10 tests a minute, no scheduler.
    pub fn with_connectors(connectors: Connectors, catalog: patchbay_oauth::Catalog) -> Self {
        Self {
            public_url: "http://127.0.0.1:8750".into(),
            events: None,
            connectors,
            catalog: std::sync::Arc::new(catalog),
            test_rate_per_minute: 10,
            tool_call_rate_per_minute: 0,
            retest_interval: None,
            mcp_server_urls: BTreeMap::new(),
            client_metadata_url: None,
            web_session_idle: crate::DEFAULT_WEB_SESSION_IDLE,
            web_session_max: crate::DEFAULT_WEB_SESSION_MAX,
        }
    }

    /// Defaults with the system resolver and no operator allowances.
    pub fn standard() -> std::result::Result<Self, String> {
        let gate = patchbay_net::Gate::new(&patchbay_net::GateSettings::default())?;
        let connectors = Connectors::new(gate, patchbay_connectors::ConnectorSettings::default())?;
        let catalog = patchbay_oauth::Catalog::builtin().map_err(|e| e.to_string())?;
        Ok(Self::with_connectors(connectors, catalog))
    }
}

pub(crate) type Limiter = Option<Arc<DefaultKeyedRateLimiter<String>>>;

pub(crate) fn limiter(per_minute: u32) -> Limiter {
    NonZeroU32::new(per_minute).map(|n| Arc::new(RateLimiter::keyed(Quota::per_minute(n))))
}

impl Hub {
    pub fn connectors(&self) -> &Connectors {
        &self.inner.settings.connectors
    }

    pub(crate) fn check_test_rate(&self, p: &Principal) -> Result<()> {
        check_rate(&self.inner.test_limiter, p)
    }

    /// Whether `p` may call another tool through the gateway now.
    pub(crate) fn check_tool_call_rate(&self, p: &Principal) -> Result<()> {
        check_rate(&self.inner.tool_limiter, p)
    }
}

fn check_rate(limiter: &Limiter, p: &Principal) -> Result<()> {
    let Some(limiter) = limiter else {
        return Ok(());
    };
    limiter
        .check_key(&p.token_id.to_string())
        .map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            EngineError::RateLimited(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
        })
}

impl Hub {
    /// Tests a saved connection and stores the outcome.
    pub async fn test_connection(&self, p: &Principal, id: &ConnectionId) -> Result<TestResult> {
        let c = self.visible_connection(p, id).await?;
        if !p.can_write() {
            return Err(EngineError::forbidden(
                "testing connections needs an admin or member token",
            ));
        }
        self.check_test_rate(p)?;
        if c.kind == patchbay_domain::Kind::Mcp {
            // An MCP server's test is its discovery, whose findings are kept.
            return Ok(self.discover_stored(p, c, p.actor()).await?.test);
        }
        let result = self.run_test(p, c.clone()).await?;
        if result.success
            && let Some(key) = &result.host_key
            && c.kind == patchbay_domain::Kind::FileTransfer
            && !c.config.contains_key("host_key")
        {
            self.pin_host_key(p, &c.id, key).await?;
        }
        self.record(p, &c, &result, p.actor()).await?;
        Ok(result)
    }

    /// Tests a stored connection with a usable token: an OAuth connection's token is refreshed
    /// first when due, and once more when the upstream answers 401 to it.
    pub(crate) async fn run_test(&self, p: &Principal, c: Connection) -> Result<TestResult> {
        let c = match self.ensure_fresh(p, c).await {
            Ok(c) => c,
            Err(e) => return token_failure(e),
        };
        let material = self.material(p, &c).await?;
        let mut result = self.connectors().test(&material).await;
        drop(material);
        let mut tested = c;
        if result.status_code == Some(401) && renewable(&tested) {
            match self.renew_rejected(p, &tested).await {
                Ok(renewed) => {
                    let material = self.material(p, &renewed).await?;
                    result = self.connectors().test(&material).await;
                    tested = renewed;
                }
                Err(e) => {
                    tracing::info!(connection = %tested.id, error = %e, "renewal after a 401 failed");
                    result.message =
                        format!("{}; the token could not be renewed: {e}", result.message);
                }
            }
        }
        if tested.auth_type().is_oauth() {
            self.oauth_findings(p, &tested, &mut result).await?;
        }
        Ok(result)
    }

    /// What a test of an OAuth connection adds: whether the token worked, the scopes granted
    /// (as the provider's answer or the token response listed them), and the account, which is
    /// kept on the connection (`oauth.account`).
    async fn oauth_findings(
        &self,
        p: &Principal,
        c: &Connection,
        r: &mut TestResult,
    ) -> Result<()> {
        r.token_valid = match (r.success, r.error_kind) {
            (true, _) => Some(true),
            (false, Some(ErrorKind::Auth)) => Some(false),
            _ => None,
        };
        if r.scopes_granted.is_none() {
            r.scopes_granted = c
                .oauth
                .as_ref()
                .map(|o| o.scopes.clone())
                .filter(|s| !s.is_empty());
        }
        if let Some(account) = &r.account {
            let known = c.oauth.as_ref().and_then(|o| o.account.as_deref());
            if known != Some(account.as_str()) {
                self.set_oauth_account(p, &c.id, account).await?;
            }
        }
        Ok(())
    }

    /// Tests a draft (the body of a create) without storing anything.
    pub async fn test_unsaved(&self, p: &Principal, body: CreateConnection) -> Result<TestResult> {
        let (name, material) = self.draft_material(p, &body).await?;
        let result = self.connectors().test(&material).await;
        drop(material);
        self.audit_draft_test(p, &name, &result).await?;
        Ok(result)
    }

    /// Audits the test of a draft named `name`.
    pub(crate) async fn audit_draft_test(
        &self,
        p: &Principal,
        name: &str,
        result: &TestResult,
    ) -> Result<()> {
        let target = format!("draft:{name}");
        self.audit_test(self.write().await?, p, &target, result, p.actor())
            .await
    }

    /// The material of a draft, for a test (writers only, rate limited): its name and its
    /// material, references opened.
    pub(crate) async fn draft_material(
        &self,
        p: &Principal,
        body: &CreateConnection,
    ) -> Result<(String, Material)> {
        if !p.can_write() {
            return Err(EngineError::forbidden(
                "testing connections needs an admin or member token",
            ));
        }
        self.check_test_rate(p)?;
        let (project, v) = self.validate_new(p, body).await?;
        let mut secrets = BTreeMap::new();
        for (field, input) in &v.secrets {
            let value = match input {
                SecretInput::Value(s) => s.clone(),
                SecretInput::Ref(name) => {
                    let plain = self.open_org_secret(p, name.as_str(), &project.id).await?;
                    SecretString::from(String::from_utf8_lossy(&plain).into_owned())
                }
            };
            secrets.insert(field.clone(), value);
        }
        let mut spec = v.spec.clone();
        self.catalog_defaults(&v.provider, &mut spec);
        let verify = self.verify_request(&v.provider, &v.config);
        let material = Material::new(
            v.provider.clone(),
            spec,
            v.auth_spec.clone(),
            secrets,
            verify,
        );
        Ok((v.name.as_str().to_owned(), material))
    }

    /// Decrypted material of a stored connection (see [`Hub::ensure_fresh`] for its tokens), for
    /// one operation.
    pub(crate) async fn material(&self, p: &Principal, c: &Connection) -> Result<Material> {
        let oauth = c.auth_type().is_oauth();
        let mut secrets = BTreeMap::new();
        for (k, v) in self.open_fields(p, &c.id, &c.project).await? {
            if k == crate::oauth::ACCESS_TOKEN && oauth {
                secrets.insert("access_token".to_owned(), SecretString::from(v));
            } else if !k.starts_with(patchbay_domain::validate::RESERVED_PREFIX) {
                secrets.insert(k, SecretString::from(v));
            }
        }
        // Validated when written: a stored connection that does not read back is named, not
        // used.
        let unreadable =
            |e: String| EngineError::Conflict(format!("the stored connection cannot be used: {e}"));
        let mut spec = ConnectionSpec::from_config(c.kind, &c.config).map_err(unreadable)?;
        let auth = Auth::from_auth(&c.auth).map_err(unreadable)?;
        self.catalog_defaults(&c.provider, &mut spec);
        let verify = self.verify_request(&c.provider, &c.config);
        Ok(Material::new(
            c.provider.clone(),
            spec,
            auth,
            secrets,
            verify,
        ))
    }

    pub(crate) async fn record(
        &self,
        p: &Principal,
        c: &Connection,
        r: &TestResult,
        actor: String,
    ) -> Result<()> {
        // Credential failures mark the connection invalid; a success heals it. Other states
        // (pending, expired, revoked, disabled) are not a test's to change.
        let status = match (r.success, r.error_kind, c.status) {
            (true, _, Status::Invalid) => Status::Active,
            (false, Some(ErrorKind::Auth), Status::Active) => Status::Invalid,
            (_, _, s) => s,
        };
        let outcome = if r.success {
            TestStatus::Success
        } else {
            TestStatus::Failed
        };
        let latency = i64::try_from(r.latency_ms).unwrap_or(i64::MAX);
        let mut w = self.write().await?;
        w.record_test(
            &p.org_id,
            &c.id,
            outcome,
            &r.message,
            latency,
            self.now(),
            status,
        )
        .await?;
        if status != c.status {
            w.invalidates(crate::core::Change::connection(&c.id));
        }
        self.audit_test(w, p, c.id.as_str(), r, actor).await
    }

    /// Audits a test (and the egress it was refused) with `w`, and commits it.
    async fn audit_test(
        &self,
        mut w: crate::core::Write<'_>,
        p: &Principal,
        target: &str,
        r: &TestResult,
        actor: String,
    ) -> Result<()> {
        let details = serde_json::json!({
            "error_kind": r.error_kind.map(ErrorKind::as_str),
            "status_code": r.status_code,
            "latency_ms": r.latency_ms,
        });
        let outcome = if r.success { "success" } else { "failure" };
        self.core().metrics.test(r.success);
        if r.error_kind == Some(ErrorKind::Blocked) {
            self.core().metrics.blocked();
        }
        let mut event = self.core().event(
            p,
            "connection.test",
            Some(target.to_owned()),
            outcome,
            details,
        );
        event.actor = actor.clone();
        w.audit(event);
        if r.error_kind == Some(ErrorKind::Blocked) {
            let mut blocked = self.core().event(
                p,
                "egress.blocked",
                Some(target.to_owned()),
                "blocked",
                serde_json::json!({"reason": r.message}),
            );
            blocked.actor = actor;
            w.audit(blocked);
        }
        w.commit().await?;
        Ok(())
    }

    /// The scheduler's pass on one replica at a time: the replica holding the `retest` lease
    /// (for `period`, renewed each pass) runs it; `None` when another replica holds it.
    pub async fn scheduled_retest(
        &self,
        interval: Duration,
        period: Duration,
    ) -> Result<Option<usize>> {
        if !self.core().lease("retest", None, period).await? {
            return Ok(None);
        }
        self.retest_due(interval).await.map(Some)
    }

    /// One scheduler pass: re-tests connections not tested within `interval`.
    pub async fn retest_due(&self, interval: Duration) -> Result<usize> {
        if self.vault().sealed_reason().is_some() {
            return Ok(0);
        }
        let cutoff =
            self.now() - chrono::Duration::from_std(interval).unwrap_or(chrono::Duration::days(1));
        let due = self.store().connections_due_for_test(cutoff, 100).await?;
        let n = due.len();
        for c in due {
            let Some(org) = c.org_id.clone() else {
                continue;
            };
            let system = crate::system(org);
            let result = match self.run_test(&system, c.clone()).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(connection = %c.id, error = %e, "scheduled test skipped");
                    continue;
                }
            };
            self.record(&system, &c, &result, "system:scheduler".into())
                .await?;
        }
        Ok(n)
    }
}

/// Whether an upstream's 401 may be answered by renewing the connection's tokens.
pub(crate) fn renewable(c: &Connection) -> bool {
    match c.auth_type() {
        patchbay_domain::AuthType::Oauth2ClientCredentials => true,
        patchbay_domain::AuthType::Oauth2 => c.oauth.as_ref().is_some_and(|o| o.refreshable),
        _ => false,
    }
}

/// A test result for a connection whose token could not be obtained; other errors stay errors.
fn token_failure(e: EngineError) -> Result<TestResult> {
    match e {
        EngineError::Conflict(m) => Ok(TestResult::failed(0, ErrorKind::Auth, m)),
        EngineError::Upstream(m) => Ok(TestResult::failed(0, ErrorKind::Protocol, m)),
        other => Err(other),
    }
}
