//! Organization secrets: named ciphertexts that connections may reference.

use chrono::{DateTime, Utc};
use patchbay_domain::{OrgId, SecretId};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::util::{ms, parse, time};
use crate::{Result, Store, StoreError, Tx};

#[derive(Debug, Clone)]
pub struct SecretRecord {
    pub id: SecretId,
    pub org_id: OrgId,
    pub name: String,
    pub description: Option<String>,
    pub key_version: i64,
    pub ciphertext: Vec<u8>,
    /// The projects it is shared with; `None` is organization-wide.
    pub projects: Option<Vec<String>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLS: &str =
    "id, org_id, name, description, key_version, ciphertext, projects, created_at, updated_at";

fn projects_text(p: &Option<Vec<String>>) -> Option<String> {
    p.as_ref()
        .map(|list| serde_json::to_string(list).unwrap_or_else(|_| "[]".into()))
}

fn secret(row: &AnyRow) -> Result<SecretRecord> {
    Ok(SecretRecord {
        id: parse(row, "id")?,
        org_id: parse(row, "org_id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        key_version: row.try_get("key_version")?,
        ciphertext: row.try_get("ciphertext")?,
        projects: row
            .try_get::<Option<String>, _>("projects")?
            .map(|t| {
                serde_json::from_str(&t)
                    .map_err(|e| StoreError::Corrupt(format!("secret projects: {e}")))
            })
            .transpose()?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

impl Store {
    pub async fn list_secrets(&self, org: &OrgId) -> Result<Vec<SecretRecord>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM secrets WHERE org_id = $1 AND deleted_at IS NULL ORDER BY name"
        )))
        .bind(org.as_str().to_owned())
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(secret)
        .collect()
    }

    pub async fn get_secret(&self, org: &OrgId, name: &str) -> Result<Option<SecretRecord>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM secrets WHERE org_id = $1 AND name = $2 AND deleted_at IS NULL"
        )))
        .bind(org.as_str().to_owned())
        .bind(name.to_owned())
        .fetch_optional(&self.read)
        .await?
        .map(|r| secret(&r))
        .transpose()
    }
}

impl Tx {
    /// Inserts or replaces the secret named `s.name` (its projects as given: the caller
    /// decides whether an update keeps them); returns whether it was created.
    pub async fn put_secret(&mut self, s: &SecretRecord) -> Result<bool> {
        let res = sqlx::query(
            "UPDATE secrets SET key_version = $1, ciphertext = $2, description = COALESCE($3, description), \
             updated_at = $4, projects = $7 WHERE org_id = $5 AND name = $6 AND deleted_at IS NULL",
        )
        .bind(s.key_version)
        .bind(s.ciphertext.clone())
        .bind(s.description.clone())
        .bind(ms(s.updated_at))
        .bind(s.org_id.as_str().to_owned())
        .bind(s.name.clone())
        .bind(projects_text(&s.projects))
        .execute(&mut *self.inner)
        .await?;
        if res.rows_affected() == 1 {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO secrets (id, org_id, name, description, key_version, ciphertext, created_at, updated_at, projects) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(s.id.as_str().to_owned())
        .bind(s.org_id.as_str().to_owned())
        .bind(s.name.clone())
        .bind(s.description.clone())
        .bind(s.key_version)
        .bind(s.ciphertext.clone())
        .bind(ms(s.created_at))
        .bind(ms(s.updated_at))
        .bind(projects_text(&s.projects))
        .execute(&mut *self.inner)
        .await?;
        Ok(true)
    }

    /// The id of the live secret `name`, read inside this transaction.
    pub async fn secret_id(&mut self, org: &OrgId, name: &str) -> Result<Option<SecretId>> {
        let row = sqlx::query(
            "SELECT id FROM secrets WHERE org_id = $1 AND name = $2 AND deleted_at IS NULL",
        )
        .bind(org.as_str().to_owned())
        .bind(name.to_owned())
        .fetch_optional(&mut *self.inner)
        .await?;
        row.map(|r| parse(&r, "id")).transpose()
    }

    /// Soft-deletes a secret and destroys its ciphertext. Refused while a live connection
    /// refers to it, since that connection would stop working.
    pub async fn delete_secret(
        &mut self,
        org: &OrgId,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let users: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM connection_secrets s JOIN connections c ON c.id = s.connection_id \
             WHERE c.org_id = $1 AND c.deleted_at IS NULL AND s.secret_ref = $2",
        )
        .bind(org.as_str().to_owned())
        .bind(name.to_owned())
        .fetch_one(&mut *self.inner)
        .await?
        .try_get("n")?;
        if users > 0 {
            return Err(StoreError::Conflict(format!(
                "secret is referenced by {users} connection(s)"
            )));
        }
        let res = sqlx::query(
            "UPDATE secrets SET deleted_at = $1, updated_at = $1, ciphertext = $2 \
             WHERE org_id = $3 AND name = $4 AND deleted_at IS NULL",
        )
        .bind(ms(now))
        .bind(Vec::<u8>::new())
        .bind(org.as_str().to_owned())
        .bind(name.to_owned())
        .execute(&mut *self.inner)
        .await?;
        crate::util::expect_one(res.rows_affected(), StoreError::NotFound)
    }
}
