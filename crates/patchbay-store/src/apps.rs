//! OAuth apps: an organization's client registrations at providers.

use chrono::{DateTime, Utc};
use patchbay_domain::OrgId;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::util::{ms, parse, time};
use crate::{Result, Store, StoreError, Tx};

#[derive(Debug, Clone)]
pub struct AppRecord {
    pub id: String,
    pub org_id: OrgId,
    pub name: String,
    pub provider: String,
    pub client_id: String,
    pub key_version: Option<i64>,
    /// Sealed; `None` for a public client.
    pub client_secret: Option<Vec<u8>>,
    pub scopes: serde_json::Value,
    pub authorization_params: serde_json::Value,
    pub token_params: serde_json::Value,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

const COLS: &str = "id, org_id, name, provider, client_id, key_version, client_secret, scopes, \
    authorization_params, token_params, created_by, created_at, updated_at, version";

fn json(row: &AnyRow, col: &str) -> Result<serde_json::Value> {
    let v: String = row.try_get(col)?;
    serde_json::from_str(&v).map_err(|_| StoreError::Corrupt(format!("{col} is not JSON")))
}

fn app(row: &AnyRow) -> Result<AppRecord> {
    Ok(AppRecord {
        id: row.try_get("id")?,
        org_id: parse(row, "org_id")?,
        name: row.try_get("name")?,
        provider: row.try_get("provider")?,
        client_id: row.try_get("client_id")?,
        key_version: row.try_get("key_version")?,
        client_secret: row.try_get("client_secret")?,
        scopes: json(row, "scopes")?,
        authorization_params: json(row, "authorization_params")?,
        token_params: json(row, "token_params")?,
        created_by: row.try_get("created_by")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
        version: row.try_get("version")?,
    })
}

impl Store {
    pub async fn list_apps(&self, org: &OrgId) -> Result<Vec<AppRecord>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM oauth_apps WHERE org_id = $1 AND deleted_at IS NULL ORDER BY id"
        )))
        .bind(org.as_str().to_owned())
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(app)
        .collect()
    }

    /// A live app by id or by name.
    pub async fn find_app(&self, org: &OrgId, id_or_name: &str) -> Result<Option<AppRecord>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM oauth_apps WHERE org_id = $1 AND (id = $2 OR name = $2) AND deleted_at IS NULL"
        )))
        .bind(org.as_str().to_owned())
        .bind(id_or_name.to_owned())
        .fetch_optional(&self.read)
        .await?
        .map(|r| app(&r))
        .transpose()
    }
}

impl Tx {
    /// Reads a live OAuth app by id or name inside the transaction, locking its row on
    /// PostgreSQL.
    pub async fn lock_app(&mut self, org: &OrgId, id_or_name: &str) -> Result<Option<AppRecord>> {
        let lock = self.for_update();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM oauth_apps WHERE org_id = $1 AND (id = $2 OR name = $2) AND deleted_at IS NULL{lock}"
        )))
        .bind(org.as_str().to_owned())
        .bind(id_or_name.to_owned())
        .fetch_optional(&mut *self.inner)
        .await?
        .map(|r| app(&r))
        .transpose()
    }

    pub async fn insert_app(&mut self, a: &AppRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO oauth_apps (id, org_id, name, provider, client_id, key_version, client_secret, scopes, \
             authorization_params, token_params, created_by, created_at, updated_at, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, 1)",
        )
        .bind(a.id.clone())
        .bind(a.org_id.as_str().to_owned())
        .bind(a.name.clone())
        .bind(a.provider.clone())
        .bind(a.client_id.clone())
        .bind(a.key_version)
        .bind(a.client_secret.clone())
        .bind(a.scopes.to_string())
        .bind(a.authorization_params.to_string())
        .bind(a.token_params.to_string())
        .bind(a.created_by.clone())
        .bind(ms(a.created_at))
        .execute(&mut *self.inner)
        .await?;
        Ok(())
    }

    /// Writes the editable fields when the version still matches.
    pub async fn update_app(&mut self, a: &AppRecord, expected_version: i64) -> Result<()> {
        let res = sqlx::query(
            "UPDATE oauth_apps SET name = $1, client_id = $2, key_version = $3, client_secret = $4, scopes = $5, \
             authorization_params = $6, token_params = $7, updated_at = $8, version = version + 1 \
             WHERE org_id = $9 AND id = $10 AND version = $11 AND deleted_at IS NULL",
        )
        .bind(a.name.clone())
        .bind(a.client_id.clone())
        .bind(a.key_version)
        .bind(a.client_secret.clone())
        .bind(a.scopes.to_string())
        .bind(a.authorization_params.to_string())
        .bind(a.token_params.to_string())
        .bind(ms(a.updated_at))
        .bind(a.org_id.as_str().to_owned())
        .bind(a.id.clone())
        .bind(expected_version)
        .execute(&mut *self.inner)
        .await?;
        crate::util::expect_one(res.rows_affected(), StoreError::VersionMismatch)
    }

    /// Soft-deletes an app and destroys its secret; refused while a live connection uses it.
    pub async fn delete_app(&mut self, a: &AppRecord, now: DateTime<Utc>) -> Result<()> {
        let users: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM connections WHERE org_id = $1 AND deleted_at IS NULL AND (auth LIKE $2 OR auth LIKE $3)",
        )
        .bind(a.org_id.as_str().to_owned())
        .bind(format!("%\"app\":\"{}\"%", a.name))
        .bind(format!("%\"app\":\"{}\"%", a.id))
        .fetch_one(&mut *self.inner)
        .await?
        .try_get("n")?;
        if users > 0 {
            return Err(StoreError::Conflict(format!(
                "the app is used by {users} connection(s)"
            )));
        }
        let res = sqlx::query(
            "UPDATE oauth_apps SET deleted_at = $1, updated_at = $1, client_secret = NULL, key_version = NULL \
             WHERE org_id = $2 AND id = $3 AND deleted_at IS NULL",
        )
        .bind(ms(now))
        .bind(a.org_id.as_str().to_owned())
        .bind(a.id.clone())
        .execute(&mut *self.inner)
        .await?;
        crate::util::expect_one(res.rows_affected(), StoreError::NotFound)
    }
}
