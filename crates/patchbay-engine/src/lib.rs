//! The engine: Patchbay's services. Every API operation is a method on [`Hub`] taking the
//! calling [`Principal`]; the hub checks permissions and organization boundaries, validates,
//! seals and opens secrets through the vault, writes through the store, and records audit
//! events in the same transaction as the change.
//!
//! Together with the vault, this is the only crate that holds plaintext secrets, and only for
//! as long as a call needs them.

mod actions;
mod apps;
mod audit;
mod bootstrap;
mod cache;
mod callback;
mod calls;
mod connections;
mod credentials;
mod error;
mod events;
mod invalidate;
mod keys;
mod nodes;
mod oauth;
mod orgs;
mod outbox;
mod providers;
mod refresh;
mod secrets;
mod templates;
mod testing;
mod tokens;

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use patchbay_domain::Principal;
use patchbay_store::{NewAudit, Store};
use patchbay_vault::{RootKey, Vault};

pub use bootstrap::{KeyChoice, Started};
pub use callback::CallbackOutcome;
pub use calls::{Answer, ProxyCall, caller_label};
pub use connections::ListQuery;
pub use error::{EngineError, Result};
pub use events::EventSink;
pub use oauth::{OAuthStart, code_challenge, state_hash};
pub use patchbay_store::{AuditFilter, ConnectionFilter};
pub use testing::EngineSettings;
pub use tokens::{TOKEN_PREFIX, hash_token};

/// Where "now" comes from; tests pass a fixed clock so expiry logic needs no sleeps.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The principal of Patchbay's own background work in an organization (the scheduler, the
/// refresher, the outbox): an admin of no project, with a fresh id for each task.
pub(crate) fn system(org: patchbay_domain::OrgId) -> Principal {
    Principal {
        token_id: patchbay_domain::TokenId::generate(),
        org_id: org,
        role: patchbay_domain::Role::Admin,
        project_id: None,
        operator: false,
    }
}

/// The services, shared by all requests.
#[derive(Debug, Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    vault: Vault,
    root: Option<RootKey>,
    clock: Arc<dyn Clock>,
    settings: EngineSettings,
    test_limiter: testing::Limiter,
    refresh_locks: Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    prepared: calls::PreparedCache,
    usage: Mutex<calls::UsageLog>,
    principals: tokens::PrincipalCache,
    outbox_wake: tokio::sync::Notify,
    /// The runtime that started the hub: work that outlives a request (token renewals) runs
    /// there, never on a serving thread and never under a caller's cancellation.
    background: tokio::runtime::Handle,
    /// This process among the replicas (its own published changes are not applied twice).
    origin: u64,
}

impl Hub {
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn vault(&self) -> &Vault {
        &self.inner.vault
    }

    /// Runs `work` on the hub's runtime, never on the serving thread that asked for it; the
    /// work goes on when the returned handle is dropped.
    pub(crate) fn spawn_background<F>(&self, work: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.inner.background.spawn(work)
    }

    /// Takes or renews the lease on background work `name` for `period`; whether this
    /// process holds it (one replica runs the work at a time).
    pub(crate) async fn lease(&self, name: &str, period: std::time::Duration) -> Result<bool> {
        self.lease_as(name, &format!("{:x}", self.inner.origin), period)
            .await
    }

    /// [`Self::lease`] under a holder name of the caller's (a rotation holds it under its own).
    pub(crate) async fn lease_as(
        &self,
        name: &str,
        holder: &str,
        period: std::time::Duration,
    ) -> Result<bool> {
        let now = self.now();
        let until =
            now + chrono::Duration::from_std(period).unwrap_or(chrono::Duration::minutes(1));
        Ok(self.store().try_lease(name, holder, now, until).await?)
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    /// An audit event by `p` in its organization.
    fn event(
        &self,
        p: &Principal,
        action: &str,
        target: Option<String>,
        outcome: &str,
        details: serde_json::Value,
    ) -> NewAudit {
        NewAudit {
            org_id: p.org_id.clone(),
            at: self.now(),
            actor: p.actor(),
            action: action.to_owned(),
            target,
            outcome: outcome.to_owned(),
            details,
        }
    }

    /// Readiness: the store answers and the vault is unsealed.
    pub async fn readiness(&self) -> (bool, String, String) {
        let store = match self.inner.store.ping().await {
            Ok(()) => "ok".to_owned(),
            Err(e) => format!("unreachable: {e}"),
        };
        let vault = match self.inner.vault.sealed_reason() {
            None => "unsealed".to_owned(),
            Some(why) => format!("sealed: {why}"),
        };
        (store == "ok" && vault == "unsealed", store, vault)
    }
}
