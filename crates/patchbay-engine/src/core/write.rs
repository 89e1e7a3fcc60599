//! The one way the engine changes stored state: begin, write, append the audit events, commit,
//! and only then empty what the change made stale, here and on every replica.
//!
//! Only bookkeeping that no one audits is written directly through the store: delivery
//! claims and outcomes, last-used stamps, leases and a rotation's progress row.
//!
//! A [`Write`] dropped before [`Write::commit`] rolls back: nothing is audited and nothing is
//! invalidated, so a caller that goes away mid-change leaves no half of it anywhere.

use patchbay_domain::Principal;
use patchbay_store::{NewAudit, Tx};

use super::{Change, Core};
use crate::Result;

/// A change in progress: the transaction (its store methods are reached through it), the
/// audit events to append and the invalidations to publish once it commits.
pub(crate) struct Write<'a> {
    core: &'a Core,
    tx: Tx,
    events: Vec<NewAudit>,
    changes: Vec<Change>,
}

impl Core {
    /// Opens a change.
    pub(crate) async fn write(&self) -> Result<Write<'_>> {
        Ok(self.write_in(self.store.begin().await?))
    }

    /// A change in a transaction already open (one holding a row lock).
    pub(crate) fn write_in(&self, tx: Tx) -> Write<'_> {
        Write {
            core: self,
            tx,
            events: Vec::new(),
            changes: Vec::new(),
        }
    }
}

impl Core {
    /// Records `event` on its own (a read of secrets, a use): a change of nothing but the log.
    pub(crate) async fn audit(&self, event: NewAudit) -> Result<()> {
        let mut w = self.write().await?;
        w.audit(event);
        w.commit().await
    }
}

impl Write<'_> {
    /// Records `event` with the change: it is appended in the same transaction.
    pub(crate) fn audit(&mut self, event: NewAudit) -> &mut Self {
        self.events.push(event);
        self
    }

    /// Records that `p` did `action` on `target`, successfully, with the change.
    pub(crate) fn succeeded(
        &mut self,
        p: &Principal,
        action: &str,
        target: String,
        details: serde_json::Value,
    ) -> &mut Self {
        let event = self.core.event(p, action, Some(target), "success", details);
        self.audit(event)
    }

    /// What the change makes stale, emptied once it committed.
    pub(crate) fn invalidates(&mut self, change: Change) -> &mut Self {
        if !self.changes.contains(&change) {
            self.changes.push(change);
        }
        self
    }

    /// Appends the audit events, commits, then publishes the invalidations.
    pub(crate) async fn commit(self) -> Result<()> {
        let Write {
            core,
            mut tx,
            events,
            changes,
        } = self;
        for event in &events {
            tx.append_audit(event).await?;
        }
        tx.commit().await?;
        for change in changes {
            core.changed(change);
        }
        Ok(())
    }
}

impl std::ops::Deref for Write<'_> {
    type Target = Tx;

    fn deref(&self) -> &Tx {
        &self.tx
    }
}

impl std::ops::DerefMut for Write<'_> {
    fn deref_mut(&mut self) -> &mut Tx {
        &mut self.tx
    }
}
