//! The webhook outbox: queued deliveries, claimed by workers under a lease (`FOR UPDATE SKIP
//! LOCKED` on PostgreSQL, so replicas never claim the same row), completed in batches.

use chrono::{DateTime, Utc};
use patchbay_domain::{ConnectionId, DeliveryId, OrgId};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::pool::Dialect;
use crate::util::{ms, opt_time, parse, time};
use crate::{Result, Store, Tx};

/// A delivery as stored.
#[derive(Debug, Clone)]
pub struct DeliveryRecord {
    pub id: DeliveryId,
    pub org_id: OrgId,
    pub connection_id: Option<ConnectionId>,
    pub webhook_id: String,
    pub method: String,
    pub target: String,
    pub key_version: i64,
    pub payload: Vec<u8>,
    pub status: String,
    pub attempts: i64,
    pub max_attempts: i64,
    pub backoff_ms: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_by: String,
    pub caller: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

const COLS: &str = "id, org_id, connection_id, webhook_id, method, target, key_version, payload, status, \
    attempts, max_attempts, backoff_ms, next_attempt_at, last_status, last_error, created_by, caller, \
    created_at, updated_at, delivered_at";

fn delivery(r: &AnyRow) -> Result<DeliveryRecord> {
    let connection: Option<String> = r.try_get("connection_id")?;
    Ok(DeliveryRecord {
        id: parse(r, "id")?,
        org_id: parse(r, "org_id")?,
        connection_id: connection.and_then(|c| c.parse().ok()),
        webhook_id: r.try_get("webhook_id")?,
        method: r.try_get("method")?,
        target: r.try_get("target")?,
        key_version: r.try_get("key_version")?,
        payload: r.try_get("payload")?,
        status: r.try_get("status")?,
        attempts: r.try_get("attempts")?,
        max_attempts: r.try_get("max_attempts")?,
        backoff_ms: r.try_get("backoff_ms")?,
        next_attempt_at: time(r, "next_attempt_at")?,
        last_status: r.try_get("last_status")?,
        last_error: r.try_get("last_error")?,
        created_by: r.try_get("created_by")?,
        caller: r.try_get("caller")?,
        created_at: time(r, "created_at")?,
        updated_at: time(r, "updated_at")?,
        delivered_at: opt_time(r, "delivered_at")?,
    })
}

/// How one attempt ended.
#[derive(Debug, Clone)]
pub enum Completion {
    Delivered {
        id: DeliveryId,
        status: i64,
    },
    /// Try again at `next`.
    Retry {
        id: DeliveryId,
        status: Option<i64>,
        error: String,
        next: DateTime<Utc>,
    },
    /// No more attempts: dead-lettered.
    Failed {
        id: DeliveryId,
        status: Option<i64>,
        error: String,
    },
}

impl Tx {
    /// Queues a finished delivery again (same `webhook-id`, attempts counted afresh).
    pub async fn replay_delivery(
        &mut self,
        org: &OrgId,
        id: &DeliveryId,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let res = sqlx::query(
            "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = $1, updated_at = $1, \
             locked_until = NULL WHERE org_id = $2 AND id = $3 AND status IN ('delivered', 'failed')",
        )
        .bind(ms(now))
        .bind(org.to_string())
        .bind(id.to_string())
        .execute(&mut *self.inner)
        .await?;
        Ok(res.rows_affected() == 1)
    }

    pub async fn insert_delivery(&mut self, d: &DeliveryRecord) -> Result<()> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO deliveries ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)"
        )))
        .bind(d.id.to_string())
        .bind(d.org_id.to_string())
        .bind(d.connection_id.as_ref().map(ToString::to_string))
        .bind(d.webhook_id.clone())
        .bind(d.method.clone())
        .bind(d.target.clone())
        .bind(d.key_version)
        .bind(d.payload.clone())
        .bind(d.status.clone())
        .bind(d.attempts)
        .bind(d.max_attempts)
        .bind(d.backoff_ms)
        .bind(ms(d.next_attempt_at))
        .bind(d.last_status)
        .bind(d.last_error.clone())
        .bind(d.created_by.clone())
        .bind(d.caller.clone())
        .bind(ms(d.created_at))
        .bind(ms(d.updated_at))
        .bind(d.delivered_at.map(ms))
        .execute(&mut *self.inner)
        .await?;
        Ok(())
    }
}

impl Store {
    /// Claims up to `limit` due deliveries until `lease_until`; each claim counts an attempt.
    pub async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<DeliveryRecord>> {
        let skip = if self.dialect() == Dialect::Postgres {
            " FOR UPDATE SKIP LOCKED"
        } else {
            ""
        };
        let mut tx = self.begin().await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE deliveries SET status = 'delivering', locked_until = $1, attempts = attempts + 1, updated_at = $2 \
             WHERE id IN (SELECT id FROM deliveries WHERE status IN ('pending', 'delivering') \
               AND next_attempt_at <= $2 AND (locked_until IS NULL OR locked_until <= $2) \
               ORDER BY next_attempt_at LIMIT $3{skip}) \
             RETURNING {COLS}"
        )))
        .bind(ms(lease_until))
        .bind(ms(now))
        .bind(limit)
        .fetch_all(&mut *tx.inner)
        .await?;
        tx.commit().await?;
        rows.iter().map(delivery).collect()
    }

    /// Writes the outcomes of a batch of attempts in one transaction.
    pub async fn complete_deliveries(&self, done: &[Completion], now: DateTime<Utc>) -> Result<()> {
        if done.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        for c in done {
            let q = match c {
                Completion::Delivered { id, status } => sqlx::query(
                    "UPDATE deliveries SET status = 'delivered', delivered_at = $1, updated_at = $1, \
                     last_status = $2, last_error = NULL, locked_until = NULL WHERE id = $3",
                )
                .bind(ms(now))
                .bind(*status)
                .bind(id.to_string()),
                Completion::Retry {
                    id,
                    status,
                    error,
                    next,
                } => sqlx::query(
                    "UPDATE deliveries SET status = 'pending', next_attempt_at = $1, updated_at = $2, \
                     last_status = $3, last_error = $4, locked_until = NULL WHERE id = $5",
                )
                .bind(ms(*next))
                .bind(ms(now))
                .bind(*status)
                .bind(error.clone())
                .bind(id.to_string()),
                Completion::Failed { id, status, error } => sqlx::query(
                    "UPDATE deliveries SET status = 'failed', updated_at = $1, \
                     last_status = $2, last_error = $3, locked_until = NULL WHERE id = $4",
                )
                .bind(ms(now))
                .bind(*status)
                .bind(error.clone())
                .bind(id.to_string()),
            };
            q.execute(&mut *tx.inner).await?;
        }
        tx.commit().await
    }

    /// Makes every claimed delivery claimable again at once (SQLite, where one process owns the
    /// database: a row still `delivering` at start belongs to a process that died).
    pub async fn release_claims(&self, now: DateTime<Utc>) -> Result<u64> {
        let mut tx = self.begin().await?;
        let res = sqlx::query(
            "UPDATE deliveries SET status = 'pending', locked_until = NULL, updated_at = $1 \
             WHERE status = 'delivering'",
        )
        .bind(ms(now))
        .execute(&mut *tx.inner)
        .await?;
        tx.commit().await?;
        Ok(res.rows_affected())
    }

    /// The soonest time a queued delivery falls due, if any is queued.
    pub async fn next_delivery_due(&self) -> Result<Option<DateTime<Utc>>> {
        let at: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(CASE WHEN locked_until IS NOT NULL AND locked_until > next_attempt_at \
             THEN locked_until ELSE next_attempt_at END) FROM deliveries \
             WHERE status IN ('pending', 'delivering')",
        )
        .fetch_one(&self.read)
        .await?;
        Ok(at.and_then(DateTime::from_timestamp_millis))
    }

    pub async fn get_delivery(
        &self,
        org: &OrgId,
        id: &DeliveryId,
    ) -> Result<Option<DeliveryRecord>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM deliveries WHERE org_id = $1 AND id = $2"
        )))
        .bind(org.to_string())
        .bind(id.to_string())
        .fetch_optional(&self.read)
        .await?
        .map(|r| delivery(&r))
        .transpose()
    }

    /// A page of an organization's deliveries, newest first, before `cursor` when given.
    pub async fn list_deliveries(
        &self,
        org: &OrgId,
        status: Option<&str>,
        connection: Option<&ConnectionId>,
        cursor: Option<&DeliveryId>,
        limit: i64,
    ) -> Result<Vec<DeliveryRecord>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM deliveries WHERE org_id = $1 \
             AND ($2 IS NULL OR status = $2) AND ($3 IS NULL OR connection_id = $3) \
             AND ($4 IS NULL OR id < $4) ORDER BY id DESC LIMIT $5"
        )))
        .bind(org.to_string())
        .bind(status.map(str::to_owned))
        .bind(connection.map(ToString::to_string))
        .bind(cursor.map(ToString::to_string))
        .bind(limit)
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(delivery)
        .collect()
    }

    /// Counts by status (for tests and status pages).
    pub async fn count_deliveries(&self, org: &OrgId) -> Result<Vec<(String, i64)>> {
        sqlx::query(
            "SELECT status, COUNT(*) AS n FROM deliveries WHERE org_id = $1 GROUP BY status ORDER BY status",
        )
        .bind(org.to_string())
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("status")?, r.try_get("n")?)))
        .collect()
    }
}
