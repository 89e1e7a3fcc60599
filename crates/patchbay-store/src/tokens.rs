//! API tokens, stored as SHA-256 hashes of their values.

use chrono::{DateTime, Utc};
use patchbay_domain::{OrgId, ProjectId, Role, TokenId};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::util::{ms, opt_time, parse, time};
use crate::{Result, Store, StoreError, Tx};

#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub id: TokenId,
    pub org_id: OrgId,
    pub name: String,
    pub role: Role,
    pub project_id: Option<ProjectId>,
    pub operator: bool,
    pub hint: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A token to insert; `hash` is the SHA-256 of its value.
#[derive(Debug)]
pub struct NewToken {
    pub record: TokenRecord,
    pub hash: Vec<u8>,
}

const COLS: &str =
    "id, org_id, name, role, project_id, operator, hint, created_by, created_at, last_used_at";

fn token(row: &AnyRow) -> Result<TokenRecord> {
    let role: String = row.try_get("role")?;
    let project: Option<String> = row.try_get("project_id")?;
    Ok(TokenRecord {
        id: parse(row, "id")?,
        org_id: parse(row, "org_id")?,
        name: row.try_get("name")?,
        role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role {role:?}")))?,
        project_id: project
            .map(|p| p.parse())
            .transpose()
            .map_err(|_| StoreError::Corrupt("project_id".into()))?,
        operator: row.try_get::<i64, _>("operator")? != 0,
        hint: row.try_get("hint")?,
        created_by: row.try_get("created_by")?,
        created_at: time(row, "created_at")?,
        last_used_at: opt_time(row, "last_used_at")?,
    })
}

impl Store {
    /// The live token with this hash, if any.
    pub async fn token_by_hash(&self, hash: &[u8]) -> Result<Option<TokenRecord>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM tokens WHERE hash = $1 AND revoked_at IS NULL"
        )))
        .bind(hash.to_vec())
        .fetch_optional(&self.read)
        .await?
        .map(|r| token(&r))
        .transpose()
    }

    /// The live token with this id, if any.
    pub async fn token_by_id(&self, id: &TokenId) -> Result<Option<TokenRecord>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM tokens WHERE id = $1 AND revoked_at IS NULL"
        )))
        .bind(id.as_str().to_owned())
        .fetch_optional(&self.read)
        .await?
        .map(|r| token(&r))
        .transpose()
    }

    pub async fn list_tokens(&self, org: &OrgId) -> Result<Vec<TokenRecord>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM tokens WHERE org_id = $1 AND revoked_at IS NULL ORDER BY id"
        )))
        .bind(org.as_str().to_owned())
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(token)
        .collect()
    }

    /// Records use without a write transaction per request; losing one update is harmless.
    pub async fn touch_token(&self, id: &TokenId, now: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE tokens SET last_used_at = $1 WHERE id = $2")
            .bind(ms(now))
            .bind(id.as_str().to_owned())
            .execute(&self.write)
            .await?;
        Ok(())
    }
}

impl Tx {
    pub async fn insert_token(&mut self, t: &NewToken) -> Result<()> {
        let r = &t.record;
        sqlx::query(
            "INSERT INTO tokens (id, org_id, name, role, project_id, operator, hash, hint, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(r.id.as_str().to_owned())
        .bind(r.org_id.as_str().to_owned())
        .bind(r.name.clone())
        .bind(r.role.as_str().to_owned())
        .bind(r.project_id.as_ref().map(|p| p.as_str().to_owned()))
        .bind(i64::from(r.operator))
        .bind(t.hash.clone())
        .bind(r.hint.clone())
        .bind(r.created_by.clone())
        .bind(ms(r.created_at))
        .execute(&mut *self.inner)
        .await?;
        Ok(())
    }

    pub async fn revoke_token(
        &mut self,
        org: &OrgId,
        id: &TokenId,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let res = sqlx::query(
            "UPDATE tokens SET revoked_at = $1 WHERE org_id = $2 AND id = $3 AND revoked_at IS NULL",
        )
        .bind(ms(now))
        .bind(org.as_str().to_owned())
        .bind(id.as_str().to_owned())
        .execute(&mut *self.inner)
        .await?;
        crate::util::expect_one(res.rows_affected(), StoreError::NotFound)
    }
}
