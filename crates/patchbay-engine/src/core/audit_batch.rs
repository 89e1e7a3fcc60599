//! Group commit for the audit entries of uses (actions, tool calls): each caller still waits
//! until its entry is committed, but the entries of callers who arrive together share one
//! write, so that a busy deployment is not held to one write transaction per call.
//!
//! There is no writer of its own: the caller who finds no write under way starts one, on its
//! own runtime, and that write takes whatever waits, again and again until nothing does. A
//! caller on a quiet deployment so wakes no other thread but the database's; the head of each
//! organization's chain is remembered between writes (`ChainHeads`, checked by the database).

use std::sync::{Arc, Mutex, PoisonError};

use patchbay_store::{ChainHeads, GROUP_MAX, NewAudit, Store};
use tokio::sync::oneshot;

type Entry = (NewAudit, oneshot::Sender<bool>);

#[derive(Debug, Default)]
struct Queue {
    waiting: Vec<Entry>,
    /// Whether a write is under way (it takes what waits when it is done).
    writing: bool,
    heads: ChainHeads,
}

#[derive(Debug)]
pub(crate) struct AuditQueue {
    store: Store,
    queue: Arc<Mutex<Queue>>,
}

impl AuditQueue {
    pub(crate) fn new(store: Store) -> Self {
        Self {
            store,
            queue: Arc::default(),
        }
    }

    /// Appends `event`; whether it was committed.
    pub(crate) async fn append(&self, event: NewAudit) -> bool {
        let (done, committed) = oneshot::channel();
        let start = {
            let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            q.waiting.push((event, done));
            !std::mem::replace(&mut q.writing, true)
        };
        if start {
            // A task of its own: the caller's going does not take the others' entries with it.
            let mut writer = Writer {
                queue: self.queue.clone(),
                finished: false,
            };
            let store = self.store.clone();
            tokio::spawn(async move { writer.run(&store).await });
        }
        committed.await.unwrap_or(false)
    }
}

/// The write under way. Ended before its time (its runtime shutting down), it lets the next
/// caller start another, and tells the callers it leaves waiting that nothing was written.
struct Writer {
    queue: Arc<Mutex<Queue>>,
    finished: bool,
}

impl Writer {
    async fn run(&mut self, store: &Store) {
        loop {
            let (batch, mut heads) = {
                let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
                if q.waiting.is_empty() {
                    q.writing = false;
                    self.finished = true;
                    return;
                }
                let n = q.waiting.len().min(GROUP_MAX);
                let batch: Vec<Entry> = q.waiting.drain(..n).collect();
                (batch, std::mem::take(&mut q.heads))
            };
            write(store, batch, &mut heads).await;
            self.queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .heads = heads;
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if !self.finished {
            let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            q.writing = false;
            q.waiting.clear();
        }
    }
}

/// Writes `batch`, one organization's entries at a time, and answers each caller.
async fn write(store: &Store, batch: Vec<Entry>, heads: &mut ChainHeads) {
    let mut by_org: Vec<Vec<Entry>> = Vec::new();
    for entry in batch {
        match by_org.iter_mut().find(|g| g[0].0.org_id == entry.0.org_id) {
            Some(group) => group.push(entry),
            None => by_org.push(vec![entry]),
        }
    }
    for group in by_org {
        let events: Vec<&NewAudit> = group.iter().map(|(e, _)| e).collect();
        if appended(store, &events, heads).await {
            for (_, done) in group {
                let _ = done.send(true);
            }
            continue;
        }
        // One entry the store refuses must not take the others with it.
        for (event, done) in group {
            let _ = done.send(appended(store, &[&event], heads).await);
        }
    }
}

async fn appended(store: &Store, events: &[&NewAudit], heads: &mut ChainHeads) -> bool {
    match store.append_audit_group(events, heads).await {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(error = %e, entries = events.len(), "could not write audit entries");
            false
        }
    }
}
