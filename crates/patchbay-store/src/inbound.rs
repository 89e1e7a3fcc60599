//! Inbound webhooks: the endpoints (signing secret sealed) and the events they accepted
//! (headers and body sealed), de-duplicated per endpoint by what a repeated delivery carries.

use chrono::{DateTime, Utc};
use patchbay_domain::{ConnectionId, DeliveryId, EventId, InboundId, OrgId, ProjectId};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::util::{ms, parse, time};
use crate::{Result, Store, StoreError, Tx};

/// An endpoint as stored.
#[derive(Debug, Clone)]
pub struct InboundRecord {
    pub id: InboundId,
    pub org_id: OrgId,
    pub project_id: ProjectId,
    pub name: String,
    pub scheme: String,
    /// The scheme's settings (window, size limit, template), as JSON.
    pub config: serde_json::Value,
    pub target_id: Option<ConnectionId>,
    pub key_version: i64,
    pub secret: Vec<u8>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

/// An accepted event as stored.
#[derive(Debug, Clone)]
pub struct EventRecord {
    pub id: EventId,
    pub endpoint_id: InboundId,
    pub org_id: OrgId,
    pub dedupe: String,
    pub provider_id: Option<String>,
    pub key_version: i64,
    pub payload: Vec<u8>,
    pub size: i64,
    pub status: String,
    pub delivery_id: Option<DeliveryId>,
    pub received_at: DateTime<Utc>,
}

const ENDPOINT_COLS: &str = "id, org_id, project_id, name, scheme, config, target_id, key_version, \
    secret, created_by, created_at, updated_at, version";
const EVENT_COLS: &str = "id, endpoint_id, org_id, dedupe, provider_id, key_version, payload, size, \
    status, delivery_id, received_at";

fn endpoint(r: &AnyRow) -> Result<InboundRecord> {
    let target: Option<String> = r.try_get("target_id")?;
    let config: String = r.try_get("config")?;
    Ok(InboundRecord {
        id: parse(r, "id")?,
        org_id: parse(r, "org_id")?,
        project_id: parse(r, "project_id")?,
        name: r.try_get("name")?,
        scheme: r.try_get("scheme")?,
        config: serde_json::from_str(&config).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        target_id: target.and_then(|t| t.parse().ok()),
        key_version: r.try_get("key_version")?,
        secret: r.try_get("secret")?,
        created_by: r.try_get("created_by")?,
        created_at: time(r, "created_at")?,
        updated_at: time(r, "updated_at")?,
        version: r.try_get("version")?,
    })
}

fn event(r: &AnyRow) -> Result<EventRecord> {
    let delivery: Option<String> = r.try_get("delivery_id")?;
    Ok(EventRecord {
        id: parse(r, "id")?,
        endpoint_id: parse(r, "endpoint_id")?,
        org_id: parse(r, "org_id")?,
        dedupe: r.try_get("dedupe")?,
        provider_id: r.try_get("provider_id")?,
        key_version: r.try_get("key_version")?,
        payload: r.try_get("payload")?,
        size: r.try_get("size")?,
        status: r.try_get("status")?,
        delivery_id: delivery.and_then(|d| d.parse().ok()),
        received_at: time(r, "received_at")?,
    })
}

impl Tx {
    pub async fn insert_inbound(&mut self, e: &InboundRecord) -> Result<()> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO inbound_endpoints ({ENDPOINT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        )))
        .bind(e.id.to_string())
        .bind(e.org_id.to_string())
        .bind(e.project_id.to_string())
        .bind(e.name.clone())
        .bind(e.scheme.clone())
        .bind(e.config.to_string())
        .bind(e.target_id.as_ref().map(ToString::to_string))
        .bind(e.key_version)
        .bind(e.secret.clone())
        .bind(e.created_by.clone())
        .bind(ms(e.created_at))
        .bind(ms(e.updated_at))
        .bind(e.version)
        .execute(&mut *self.inner)
        .await?;
        Ok(())
    }

    /// Writes an endpoint's editable fields when its version is still `expected`.
    pub async fn update_inbound(&mut self, e: &InboundRecord, expected: i64) -> Result<()> {
        let res = sqlx::query(
            "UPDATE inbound_endpoints SET name = $1, config = $2, target_id = $3, key_version = $4, \
             secret = $5, updated_at = $6, version = version + 1 \
             WHERE org_id = $7 AND id = $8 AND version = $9 AND deleted_at IS NULL",
        )
        .bind(e.name.clone())
        .bind(e.config.to_string())
        .bind(e.target_id.as_ref().map(ToString::to_string))
        .bind(e.key_version)
        .bind(e.secret.clone())
        .bind(ms(e.updated_at))
        .bind(e.org_id.to_string())
        .bind(e.id.to_string())
        .bind(expected)
        .execute(&mut *self.inner)
        .await?;
        crate::util::expect_one(res.rows_affected(), StoreError::VersionMismatch)
    }

    pub async fn delete_inbound(
        &mut self,
        org: &OrgId,
        id: &InboundId,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let res = sqlx::query(
            "UPDATE inbound_endpoints SET deleted_at = $1 WHERE org_id = $2 AND id = $3 AND deleted_at IS NULL",
        )
        .bind(ms(now))
        .bind(org.to_string())
        .bind(id.to_string())
        .execute(&mut *self.inner)
        .await?;
        Ok(res.rows_affected() == 1)
    }

    /// Stores an accepted event; `false` when the endpoint has one with the same `dedupe`.
    pub async fn insert_event(&mut self, e: &EventRecord) -> Result<bool> {
        let res = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO inbound_events ({EVENT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (endpoint_id, dedupe) DO NOTHING"
        )))
        .bind(e.id.to_string())
        .bind(e.endpoint_id.to_string())
        .bind(e.org_id.to_string())
        .bind(e.dedupe.clone())
        .bind(e.provider_id.clone())
        .bind(e.key_version)
        .bind(e.payload.clone())
        .bind(e.size)
        .bind(e.status.clone())
        .bind(e.delivery_id.as_ref().map(ToString::to_string))
        .bind(ms(e.received_at))
        .execute(&mut *self.inner)
        .await?;
        Ok(res.rows_affected() == 1)
    }

    /// Records the delivery an event was (last) forwarded by.
    pub async fn set_event_delivery(
        &mut self,
        id: &EventId,
        status: &str,
        delivery: Option<&DeliveryId>,
    ) -> Result<()> {
        sqlx::query("UPDATE inbound_events SET status = $1, delivery_id = $2 WHERE id = $3")
            .bind(status.to_owned())
            .bind(delivery.map(ToString::to_string))
            .bind(id.to_string())
            .execute(&mut *self.inner)
            .await?;
        Ok(())
    }
}

impl Store {
    /// A live endpoint by its id, whatever its organization (the public receiving route).
    pub async fn find_inbound(&self, id: &InboundId) -> Result<Option<InboundRecord>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ENDPOINT_COLS} FROM inbound_endpoints WHERE id = $1 AND deleted_at IS NULL"
        )))
        .bind(id.to_string())
        .fetch_optional(&self.read)
        .await?
        .map(|r| endpoint(&r))
        .transpose()
    }

    /// An organization's live endpoints, by name.
    pub async fn list_inbound(&self, org: &OrgId) -> Result<Vec<InboundRecord>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ENDPOINT_COLS} FROM inbound_endpoints WHERE org_id = $1 AND deleted_at IS NULL ORDER BY name"
        )))
        .bind(org.to_string())
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(endpoint)
        .collect()
    }

    pub async fn get_event(
        &self,
        endpoint: &InboundId,
        id: &EventId,
    ) -> Result<Option<EventRecord>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {EVENT_COLS} FROM inbound_events WHERE endpoint_id = $1 AND id = $2"
        )))
        .bind(endpoint.to_string())
        .bind(id.to_string())
        .fetch_optional(&self.read)
        .await?
        .map(|r| event(&r))
        .transpose()
    }

    /// An endpoint's events in the order they came, after `cursor` when given.
    pub async fn list_events(
        &self,
        endpoint: &InboundId,
        after: Option<&EventId>,
        limit: i64,
    ) -> Result<Vec<EventRecord>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {EVENT_COLS} FROM inbound_events WHERE endpoint_id = $1 \
             AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3"
        )))
        .bind(endpoint.to_string())
        .bind(after.map(ToString::to_string))
        .bind(limit)
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(event)
        .collect()
    }

    /// How many events each endpoint of `org` holds.
    pub async fn count_events(&self, org: &OrgId) -> Result<Vec<(String, i64)>> {
        sqlx::query(
            "SELECT endpoint_id, COUNT(*) AS n FROM inbound_events WHERE org_id = $1 GROUP BY endpoint_id",
        )
        .bind(org.to_string())
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("endpoint_id")?, r.try_get("n")?)))
        .collect()
    }
}
