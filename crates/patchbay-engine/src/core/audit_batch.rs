//! Group commit for the audit entries of uses (actions, tool calls): each caller still waits
//! until its entry is committed, but the entries of callers who arrive together share one
//! transaction, so that a busy deployment is not held to one write transaction per call.

use patchbay_store::{NewAudit, Store};
use tokio::sync::{mpsc, oneshot};

/// The most entries one transaction carries.
const BATCH: usize = 256;

type Entry = (NewAudit, oneshot::Sender<bool>);

#[derive(Debug)]
pub(crate) struct AuditQueue {
    tx: mpsc::UnboundedSender<Entry>,
}

impl AuditQueue {
    /// Starts the writer on `runtime`; it ends when the queue is dropped.
    pub(crate) fn start(store: Store, runtime: &tokio::runtime::Handle) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Entry>();
        runtime.spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < BATCH {
                    match rx.try_recv() {
                        Ok(e) => batch.push(e),
                        Err(_) => break,
                    }
                }
                let events: Vec<&NewAudit> = batch.iter().map(|(e, _)| e).collect();
                if write(&store, &events).await {
                    for (_, done) in batch {
                        let _ = done.send(true);
                    }
                    continue;
                }
                // One entry the store refuses must not take the others with it.
                for (event, done) in batch {
                    let _ = done.send(write(&store, &[&event]).await);
                }
            }
        });
        Self { tx }
    }

    /// Appends `event`; whether it was committed.
    pub(crate) async fn append(&self, event: NewAudit) -> bool {
        let (done, committed) = oneshot::channel();
        if self.tx.send((event, done)).is_err() {
            return false;
        }
        committed.await.unwrap_or(false)
    }
}

async fn write(store: &Store, events: &[&NewAudit]) -> bool {
    let result = async {
        let mut tx = store.begin().await?;
        tx.append_audits(events).await?;
        tx.commit().await
    }
    .await;
    if let Err(e) = &result {
        tracing::error!(error = %e, entries = events.len(), "could not write audit entries");
    }
    result.is_ok()
}
