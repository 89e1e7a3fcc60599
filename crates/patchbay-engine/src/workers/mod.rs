//! The background work of a process, under one supervisor: the scheduler's re-tests, the
//! refresher, the use flush and the outbox. Each runs on the hub's runtime (never on a serving
//! thread), and work that must happen once whatever the number of replicas takes a lease in
//! the store first: the scheduler (`retest`) and the refresher (`refresher`); key rotation
//! holds one of its own while it runs (see `admin/keys.rs`). The outbox needs none: each
//! delivery is claimed row by row.

use std::time::Duration;

use crate::{Hub, Result};

/// How often the refresher looks for tokens about to expire.
const REFRESH_EVERY: Duration = Duration::from_secs(60);
/// How often noted connection uses are written.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// How often idle upstream MCP sessions are looked for (and ended).
const MCP_SWEEP_EVERY: Duration = Duration::from_secs(10);

/// The running workers; [`Workers::stop`] ends them.
#[derive(Debug)]
pub struct Workers {
    hub: Hub,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Hub {
    /// Starts every worker: those of [`Self::start_delivery_workers`], the refresher, and the
    /// scheduler when a re-test interval is configured.
    pub fn start_workers(&self) -> Workers {
        let mut workers = self.start_delivery_workers();
        if let Some(interval) = self.inner.settings.retest_interval {
            let period = interval.clamp(Duration::from_secs(1), Duration::from_secs(3600));
            workers.tasks.push(self.every(
                period,
                "scheduled re-test pass",
                move |hub| async move { hub.scheduled_retest(interval, period).await.map(drop) },
            ));
        }
        workers.tasks.push(self.every(
            REFRESH_EVERY,
            "background refresh pass",
            |hub| async move {
                // One replica at a time; renewals are single-flight across replicas anyway,
                // so the lease only spares the others the same reads.
                if hub.core().lease("refresher", None, REFRESH_EVERY).await? {
                    hub.refresh_due().await?;
                }
                Ok(())
            },
        ));
        workers
    }

    /// Starts the workers that requests depend on: the use flush and the outbox.
    pub fn start_delivery_workers(&self) -> Workers {
        let flush = self.every(FLUSH_EVERY, "connection use flush", |hub| async move {
            hub.flush_usage().await.map(drop)
        });
        let hub = self.clone();
        let outbox = self.spawn_background(async move { hub.run_outbox().await });
        let sweep = self.every(MCP_SWEEP_EVERY, "MCP session sweep", |hub| async move {
            hub.sweep_mcp_sessions();
            hub.expire_web_sessions().await?;
            hub.expire_gateway_sessions().await
        });
        Workers {
            hub: self.clone(),
            tasks: vec![flush, outbox, sweep],
        }
    }

    /// Runs `pass` every `period`, the first time one period after start; a failed pass is
    /// logged and the next one comes as usual.
    fn every<F, Fut>(
        &self,
        period: Duration,
        what: &'static str,
        pass: F,
    ) -> tokio::task::JoinHandle<()>
    where
        F: Fn(Hub) -> Fut + Send + 'static,
        Fut: Future<Output = Result<()>> + Send,
    {
        let hub = self.clone();
        self.spawn_background(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = pass(hub.clone()).await {
                    tracing::warn!(error = %e, "{what} failed");
                }
            }
        })
    }
}

impl Workers {
    /// Stops every worker, then writes the uses noted since the last flush.
    pub async fn stop(self) {
        for task in &self.tasks {
            task.abort();
        }
        self.hub.close_mcp_sessions();
        if let Err(e) = self.hub.flush_usage().await {
            tracing::warn!(error = %e, "could not record connection use at shutdown");
        }
    }
}
