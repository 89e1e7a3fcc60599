//! Invalidations between replicas: after a change commits, the engine publishes what it changed
//! on one PostgreSQL channel, and every replica listening drops what it cached of it. A
//! listener that lost its connection may have missed messages, so it is told (`Heard::Lost`)
//! and drops everything. On SQLite there is one process and nothing to publish.

use std::time::Duration;

use sqlx::postgres::PgListener;

use crate::{Dialect, Result, Store};

/// The channel every replica listens on.
pub const CHANNEL: &str = "patchbay_invalidate";

/// What a subscription heard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// A payload some replica published.
    Message(String),
    /// The connection was lost (and is being made again): messages may have been missed.
    Lost,
}

/// A replica's subscription to [`CHANNEL`].
#[derive(Debug)]
pub struct Subscription(PgListener);

impl Subscription {
    /// The next thing heard; a lost connection is reported once, then made again.
    pub async fn next(&mut self) -> Heard {
        match self.0.try_recv().await {
            Ok(Some(n)) => Heard::Message(n.payload().to_owned()),
            Ok(None) => Heard::Lost,
            Err(e) => {
                tracing::warn!(error = %e, "the invalidation listener failed; listening again");
                tokio::time::sleep(Duration::from_secs(1)).await;
                Heard::Lost
            }
        }
    }
}

impl Store {
    /// Tells every listening replica `payload` (PostgreSQL; nothing on SQLite).
    pub async fn publish(&self, payload: &str) -> Result<()> {
        if self.dialect == Dialect::Postgres {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(payload.to_owned())
                .execute(&self.write)
                .await?;
        }
        Ok(())
    }

    /// Listens for what other replicas publish; `None` on SQLite.
    pub async fn subscribe(&self) -> Result<Option<Subscription>> {
        let Some(url) = &self.url else {
            return Ok(None);
        };
        let mut listener = PgListener::connect(url).await?;
        listener.listen(CHANNEL).await?;
        Ok(Some(Subscription(listener)))
    }
}
