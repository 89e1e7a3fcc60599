//! The engine: Patchbay's services. Every API operation is a method on [`Hub`], the façade the
//! server calls, taking the calling [`Principal`]; the hub checks permissions and organization
//! boundaries, validates, seals and opens secrets through the vault, and changes stored state
//! only through the core's audited write ([`core::Write`]).
//!
//! The services live in folders of their own: `admin/` (organizations, projects, tokens, the
//! audit log, vault keys, first run), `connections/` (connections, secrets, templates,
//! providers, tests), `oauth/` (apps, flows, callbacks, renewal), `act/` (the proxy, actions,
//! workflow nodes), `outbox/` (events and webhook deliveries) and `workers/` (the background
//! loops and their leases). `core/` is what they all stand on.
//!
//! Together with the vault, this is the only crate that holds plaintext secrets, and only for
//! as long as a call needs them.

mod act;
mod admin;
mod connections;
mod core;
mod error;
mod inbound;
mod mcp;
mod oauth;
mod outbox;
mod workers;

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use patchbay_store::Store;
use patchbay_vault::Vault;

pub use act::{Answer, ProxyCall, StorageOutcome, caller_label};
pub use admin::{
    DEFAULT_WEB_SESSION_IDLE, DEFAULT_WEB_SESSION_MAX, KeyChoice, Started, TOKEN_PREFIX,
    WebSession, hash_token,
};
pub use connections::{EngineSettings, ListQuery, provider_fill};
pub use core::metrics::{Metrics, RequestLabels};
pub use core::{Clock, SystemClock};
pub use error::{EngineError, Result};
pub use inbound::{Answered, Refused};
pub use mcp::{GatewayTool, Relay, registry_name};
pub use oauth::{CallbackOutcome, OAuthStart};
pub use outbox::EventSink;
pub use patchbay_oauth::pkce::{code_challenge, state_hash};
pub use patchbay_store::{AuditFilter, ConnectionFilter};
pub use workers::Workers;

pub(crate) use core::system;

/// The services, shared by all requests.
#[derive(Debug, Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    core: core::Core,
    settings: EngineSettings,
    test_limiter: connections::Limiter,
    tool_limiter: connections::Limiter,
    refresh_locks: Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    prepared: Arc<act::PreparedCache>,
    mcp: Arc<mcp::SessionPool>,
    gateway: Arc<mcp::GatewayCache>,
    usage: Mutex<act::UsageLog>,
    principals: Arc<admin::PrincipalCache>,
    outbox_wake: tokio::sync::Notify,
}

impl Hub {
    pub fn store(&self) -> &Store {
        &self.inner.core.store
    }

    pub fn vault(&self) -> &Vault {
        &self.inner.core.vault
    }

    pub(crate) fn core(&self) -> &core::Core {
        &self.inner.core
    }

    /// Runs `work` on the hub's runtime, never on the serving thread that asked for it; the
    /// work goes on when the returned handle is dropped.
    pub(crate) fn spawn_background<F>(&self, work: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.inner.core.spawn(work)
    }

    /// What `/metrics` records into.
    pub fn metrics(&self) -> &core::metrics::Metrics {
        &self.inner.core.metrics
    }

    /// `/metrics` in the Prometheus text format.
    pub fn metrics_text(&self) -> String {
        self.inner.core.metrics_text()
    }

    /// Opens a change: see [`core::Write`].
    pub(crate) async fn write(&self) -> Result<core::Write<'_>> {
        self.inner.core.write().await
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.inner.core.now()
    }

    /// Readiness: the store answers and the vault is unsealed.
    pub async fn readiness(&self) -> (bool, String, String) {
        let store = match self.store().ping().await {
            Ok(()) => "ok".to_owned(),
            Err(e) => format!("unreachable: {e}"),
        };
        let vault = match self.vault().sealed_reason() {
            None => "unsealed".to_owned(),
            Some(why) => format!("sealed: {why}"),
        };
        (store == "ok" && vault == "unsealed", store, vault)
    }
}
