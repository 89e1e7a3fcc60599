//! What every service stands on: the store, the vault, the clock, the runtime that background
//! work runs on, and the one way to change anything, [`Write`] — a transaction whose audit
//! events commit with it and whose invalidations are published only once it committed.

mod audit_batch;
mod cache;
mod invalidate;
pub mod metrics;
mod write;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use patchbay_domain::Principal;
use patchbay_store::{NewAudit, Store};
use patchbay_vault::{RootKey, Vault};

pub(crate) use cache::{CacheStats, Cached};
pub(crate) use invalidate::{Caches, Change, Forgets};
pub(crate) use write::Write;

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

#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) store: Store,
    pub(crate) vault: Vault,
    pub(crate) root: Option<RootKey>,
    clock: Arc<dyn Clock>,
    /// The runtime that started the hub: work that outlives a request (token renewals, key
    /// rotation, workers) runs there, never on a serving thread and never under a caller's
    /// cancellation.
    background: tokio::runtime::Handle,
    /// This process among the replicas (its own published changes are not applied twice).
    origin: u64,
    /// What a committed change can make stale.
    caches: Arc<Caches>,
    pub(crate) metrics: metrics::Metrics,
    /// The audit entries of uses, committed in groups.
    uses: audit_batch::AuditQueue,
}

impl Core {
    pub(crate) fn new(
        store: Store,
        vault: Vault,
        root: Option<RootKey>,
        clock: Arc<dyn Clock>,
        caches: Caches,
    ) -> Self {
        let background = tokio::runtime::Handle::current();
        Self {
            uses: audit_batch::AuditQueue::new(store.clone()),
            store,
            vault,
            root,
            clock,
            background,
            origin: rand::random(),
            caches: Arc::new(caches),
            metrics: metrics::Metrics::default(),
        }
    }

    /// Records the audit entry of a use (an action, a tool call), committed with the entries
    /// of the uses that arrive with it; whether it was committed.
    pub(crate) async fn audit_use(&self, event: patchbay_store::NewAudit) -> bool {
        self.uses.append(event).await
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Runs `work` on the hub's runtime, never on the serving thread that asked for it; the
    /// work goes on when the returned handle is dropped.
    pub(crate) fn spawn<F>(&self, work: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.background.spawn(work)
    }

    /// Takes or renews the lease on background work `name` for `period` under `holder`
    /// (this process when `None`); whether it holds the lease (one replica runs the work at a
    /// time).
    pub(crate) async fn lease(
        &self,
        name: &str,
        holder: Option<&str>,
        period: std::time::Duration,
    ) -> Result<bool, patchbay_store::StoreError> {
        let now = self.now();
        let until =
            now + chrono::Duration::from_std(period).unwrap_or(chrono::Duration::minutes(1));
        let own = format!("{:x}", self.origin);
        self.store
            .try_lease(name, holder.unwrap_or(&own), now, until)
            .await
    }

    /// `/metrics`: the text exposition, its gauges read now.
    pub(crate) fn metrics_text(&self) -> String {
        let caches = self.caches.stats();
        self.metrics
            .encode(&caches, self.vault.sealed_reason().is_some())
    }

    /// Gives up lease `name` held by `holder`, so that the next taker need not wait for it to
    /// run out (it is renewed until now).
    pub(crate) async fn release(
        &self,
        name: &str,
        holder: &str,
    ) -> Result<bool, patchbay_store::StoreError> {
        let now = self.now();
        self.store.try_lease(name, holder, now, now).await
    }

    /// An audit event by `p` in its organization, dated now.
    pub(crate) fn event(
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
}
