//! The web UI's sessions. A session is started in the same transaction as its audit entry and
//! read by whichever replica serves the browser's next request; it is valid only while its
//! token is (a revoked token ends every session it started).

use chrono::{DateTime, Utc};
use patchbay_domain::TokenId;
use sqlx::Row;

use crate::tokens::TokenRecord;
use crate::util::{ms, time};
use crate::{Result, Store, Tx};

/// One session, by the hash of its cookie's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSessionRecord {
    pub id_hash: String,
    pub org_id: String,
    pub token_id: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// The absolute end, however active the session is.
    pub expires_at: DateTime<Utc>,
}

impl Store {
    /// The session with this hash and the live token it acts as; `None` when either is gone.
    pub async fn web_session(
        &self,
        id_hash: &str,
    ) -> Result<Option<(WebSessionRecord, TokenRecord)>> {
        let row = sqlx::query(
            "SELECT id_hash, org_id, token_id, created_at, last_seen_at, expires_at \
             FROM web_sessions WHERE id_hash = $1",
        )
        .bind(id_hash.to_owned())
        .fetch_optional(&self.read)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let session = WebSessionRecord {
            id_hash: row.try_get("id_hash")?,
            org_id: row.try_get("org_id")?,
            token_id: row.try_get("token_id")?,
            created_at: time(&row, "created_at")?,
            last_seen_at: time(&row, "last_seen_at")?,
            expires_at: time(&row, "expires_at")?,
        };
        let Ok(token_id) = session.token_id.parse::<TokenId>() else {
            return Err(crate::StoreError::Corrupt("web_sessions.token_id".into()));
        };
        Ok(self
            .token_by_id(&token_id)
            .await?
            .filter(|t| t.org_id.as_str() == session.org_id)
            .map(|t| (session, t)))
    }

    /// Notes that the session was seen (its idle expiry starts again from `at`).
    pub async fn touch_web_session(&self, id_hash: &str, at: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE web_sessions SET last_seen_at = $1 WHERE id_hash = $2")
            .bind(ms(at))
            .bind(id_hash.to_owned())
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Forgets sessions past their absolute end (`now`) or unseen since `idle_before`.
    pub async fn expire_web_sessions(
        &self,
        now: DateTime<Utc>,
        idle_before: DateTime<Utc>,
    ) -> Result<u64> {
        let r = sqlx::query("DELETE FROM web_sessions WHERE expires_at <= $1 OR last_seen_at < $2")
            .bind(ms(now))
            .bind(ms(idle_before))
            .execute(&self.write)
            .await?;
        Ok(r.rows_affected())
    }
}

impl Tx {
    pub async fn insert_web_session(&mut self, s: &WebSessionRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO web_sessions (id_hash, org_id, token_id, created_at, last_seen_at, \
             expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(s.id_hash.clone())
        .bind(s.org_id.clone())
        .bind(s.token_id.clone())
        .bind(ms(s.created_at))
        .bind(ms(s.last_seen_at))
        .bind(ms(s.expires_at))
        .execute(&mut *self.inner)
        .await?;
        Ok(())
    }

    /// Ends a session; whether there was one.
    pub async fn delete_web_session(&mut self, id_hash: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM web_sessions WHERE id_hash = $1")
            .bind(id_hash.to_owned())
            .execute(&mut *self.inner)
            .await?;
        Ok(r.rows_affected() == 1)
    }
}
