//! What a committed change makes stale, here and on the other replicas. The local caches are
//! emptied at once; the change is then published (PostgreSQL `NOTIFY`) and every other replica
//! empties its own. A replica whose listener lost its connection may have missed changes, so
//! it empties everything. Called only after the commit the change belongs to.

use std::sync::{Arc, Weak};

use patchbay_domain::ConnectionId;
use patchbay_store::Heard;

use crate::{Hub, Inner};

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// One connection (its settings, secrets or tokens).
    Connection(String),
    /// Every prepared connection (an organization secret they may reference changed).
    Connections,
    /// Authenticated tokens (one was revoked).
    Principals,
}

impl Change {
    fn payload(&self, origin: u64) -> String {
        match self {
            Change::Connection(id) => format!("{origin:x} c {id}"),
            Change::Connections => format!("{origin:x} C"),
            Change::Principals => format!("{origin:x} P"),
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
            _ => None,
        }
    }
}

impl Hub {
    /// Empties what `change` made stale in this process, and tells the other replicas.
    pub(crate) fn changed(&self, change: Change) {
        self.apply(&change);
        if self.store().dialect() == patchbay_store::Dialect::Postgres {
            let store = self.store().clone();
            let payload = change.payload(self.inner.origin);
            self.spawn_background(async move {
                if let Err(e) = store.publish(&payload).await {
                    tracing::warn!(error = %e, "could not tell the other replicas of a change");
                }
            });
        }
    }

    fn apply(&self, change: &Change) {
        match change {
            Change::Connection(id) => self.inner.prepared.invalidate(id.as_str()),
            Change::Connections => self.inner.prepared.invalidate_all(),
            Change::Principals => self.inner.principals.invalidate_all(),
        }
    }

    fn forget_everything(&self) {
        self.inner.prepared.invalidate_all();
        self.inner.principals.invalidate_all();
    }

    /// Drops a prepared connection everywhere: it changed, or its tokens did.
    pub(crate) fn forget_prepared(&self, id: &ConnectionId) {
        self.changed(Change::Connection(id.to_string()));
    }

    /// Drops every prepared connection everywhere.
    pub(crate) fn forget_all_prepared(&self) {
        self.changed(Change::Connections);
    }

    /// Listens for the other replicas' changes while the hub lives (PostgreSQL only).
    pub(crate) fn listen_for_changes(&self) {
        if self.store().dialect() != patchbay_store::Dialect::Postgres {
            return;
        }
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let store = self.store().clone();
        self.spawn_background(async move {
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
                    Some(inner) => Hub { inner }.forget_everything(),
                    None => return,
                }
                loop {
                    let heard = subscription.next().await;
                    let Some(inner) = weak.upgrade() else {
                        return;
                    };
                    let hub = Hub { inner };
                    match heard {
                        Heard::Message(payload) => {
                            if let Some(change) = Change::parse(&payload, hub.inner.origin) {
                                hub.apply(&change);
                            }
                        }
                        Heard::Lost => hub.forget_everything(),
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
        ] {
            let p = change.payload(0xabc);
            assert_eq!(Change::parse(&p, 0xdef), Some(change.clone()));
            assert_eq!(Change::parse(&p, 0xabc), None, "its own change");
        }
        assert_eq!(Change::parse("zz c x", 1), None);
        assert_eq!(Change::parse("1 q", 2), None);
    }
}
