//! What a committed change makes stale, here and on the other replicas. The local caches are
//! emptied at once; the change is then published (PostgreSQL `NOTIFY`) and every other replica
//! empties its own. A replica whose listener lost its connection may have missed changes, so
//! it empties everything. Only [`super::Write::commit`] publishes, after its commit.

use std::sync::{Arc, Weak};

use patchbay_store::Heard;

use super::Core;

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// One connection (its settings, secrets or tokens).
    Connection(String),
    /// Every prepared connection (an organization secret they may reference changed).
    Connections,
    /// Authenticated tokens (one was revoked).
    Principals,
    /// One MCP gateway session (by the hash of its id), ended.
    McpSession(String),
}

impl Change {
    pub(crate) fn connection(id: &patchbay_domain::ConnectionId) -> Self {
        Change::Connection(id.to_string())
    }

    fn payload(&self, origin: u64) -> String {
        match self {
            Change::Connection(id) => format!("{origin:x} c {id}"),
            Change::Connections => format!("{origin:x} C"),
            Change::Principals => format!("{origin:x} P"),
            Change::McpSession(hash) => format!("{origin:x} s {hash}"),
        }
    }

    /// The change in `payload`, unless this process published it or it is not one.
    fn parse(payload: &str, origin: u64) -> Option<Change> {
        let mut parts = payload.splitn(3, ' ');
        let from = u64::from_str_radix(parts.next()?, 16).ok()?;
        if from == origin {
            return None;
        }
        match (parts.next()?, parts.next()) {
            ("c", Some(id)) => Some(Change::Connection(id.to_owned())),
            ("C", None) => Some(Change::Connections),
            ("P", None) => Some(Change::Principals),
            ("s", Some(hash)) => Some(Change::McpSession(hash.to_owned())),
            _ => None,
        }
    }
}

/// A cache that a committed change can make stale.
pub(crate) trait Forgets: Send + Sync + std::fmt::Debug {
    /// Drops what `change` made stale.
    fn forget(&self, change: &Change);
    /// Drops everything (changes may have been missed).
    fn forget_all(&self);
    /// Its name and how it fares, for `/metrics`.
    fn stats(&self) -> (&'static str, super::CacheStats);
}

/// The caches of a process, told of every change.
#[derive(Debug, Default)]
pub(crate) struct Caches(Vec<Arc<dyn Forgets>>);

impl Caches {
    pub(crate) fn with(mut self, cache: Arc<dyn Forgets>) -> Self {
        self.0.push(cache);
        self
    }

    fn forget(&self, change: &Change) {
        for c in &self.0 {
            c.forget(change);
        }
    }

    fn forget_all(&self) {
        for c in &self.0 {
            c.forget_all();
        }
    }

    pub(super) fn stats(&self) -> Vec<(&'static str, super::CacheStats)> {
        self.0.iter().map(|c| c.stats()).collect()
    }
}

impl Core {
    /// Empties what `change` made stale in this process, and tells the other replicas.
    pub(crate) fn changed(&self, change: Change) {
        self.caches.forget(&change);
        if self.store.dialect() == patchbay_store::Dialect::Postgres {
            let store = self.store.clone();
            let payload = change.payload(self.origin);
            self.spawn(async move {
                if let Err(e) = store.publish(&payload).await {
                    tracing::warn!(error = %e, "could not tell the other replicas of a change");
                }
            });
        }
    }

    /// Listens for the other replicas' changes while the caches live (PostgreSQL only).
    pub(crate) fn listen_for_changes(&self) {
        if self.store.dialect() != patchbay_store::Dialect::Postgres {
            return;
        }
        let weak: Weak<Caches> = Arc::downgrade(&self.caches);
        let store = self.store.clone();
        let origin = self.origin;
        self.spawn(async move {
            loop {
                let mut subscription = match store.subscribe().await {
                    Ok(Some(s)) => s,
                    Ok(None) => return,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot listen for other replicas' changes; retrying");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        continue;
                    }
                };
                // Changes made before the subscription started were missed.
                match weak.upgrade() {
                    Some(caches) => caches.forget_all(),
                    None => return,
                }
                loop {
                    let heard = subscription.next().await;
                    let Some(caches) = weak.upgrade() else {
                        return;
                    };
                    match heard {
                        Heard::Message(payload) => {
                            if let Some(change) = Change::parse(&payload, origin) {
                                caches.forget(&change);
                            }
                        }
                        Heard::Lost => caches.forget_all(),
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_own_ones_are_skipped() {
        for change in [
            Change::Connection("con_01".into()),
            Change::Connections,
            Change::Principals,
            Change::McpSession("ab12".into()),
        ] {
            let p = change.payload(0xabc);
            assert_eq!(Change::parse(&p, 0xdef), Some(change.clone()));
            assert_eq!(Change::parse(&p, 0xabc), None, "its own change");
        }
        assert_eq!(Change::parse("zz c x", 1), None);
        assert_eq!(Change::parse("1 q", 2), None);
    }
}
