//! The MCP gateway's client sessions: bookkeeping written straight through (a session holds no
//! secret and its start is audited by the calls made in it), read by whichever replica serves
//! the session's next request.

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::util::{ms, time};
use crate::{Result, Store};

/// One session, by the hash of its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpSessionRecord {
    pub id_hash: String,
    pub org_id: String,
    pub token_id: String,
    pub protocol_version: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
}

impl Store {
    pub async fn insert_mcp_session(&self, s: &McpSessionRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO mcp_sessions (id_hash, org_id, token_id, protocol_version, created_at, \
             last_used_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(s.id_hash.clone())
        .bind(s.org_id.clone())
        .bind(s.token_id.clone())
        .bind(s.protocol_version.clone())
        .bind(ms(s.created_at))
        .bind(ms(s.last_used_at))
        .execute(&self.write)
        .await?;
        Ok(())
    }

    pub async fn mcp_session(&self, id_hash: &str) -> Result<Option<McpSessionRecord>> {
        let row = sqlx::query(
            "SELECT id_hash, org_id, token_id, protocol_version, created_at, last_used_at \
             FROM mcp_sessions WHERE id_hash = $1",
        )
        .bind(id_hash.to_owned())
        .fetch_optional(&self.read)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(McpSessionRecord {
            id_hash: row.try_get("id_hash")?,
            org_id: row.try_get("org_id")?,
            token_id: row.try_get("token_id")?,
            protocol_version: row.try_get("protocol_version")?,
            created_at: time(&row, "created_at")?,
            last_used_at: time(&row, "last_used_at")?,
        }))
    }

    /// Notes that the session was used (at most once a minute per session is enough).
    pub async fn touch_mcp_session(&self, id_hash: &str, at: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE mcp_sessions SET last_used_at = $1 WHERE id_hash = $2")
            .bind(ms(at))
            .bind(id_hash.to_owned())
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Ends a session of `token_id`; whether there was one.
    pub async fn delete_mcp_session(&self, id_hash: &str, token_id: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM mcp_sessions WHERE id_hash = $1 AND token_id = $2")
            .bind(id_hash.to_owned())
            .bind(token_id.to_owned())
            .execute(&self.write)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Forgets sessions unused since `before`.
    pub async fn expire_mcp_sessions(&self, before: DateTime<Utc>) -> Result<u64> {
        let r = sqlx::query("DELETE FROM mcp_sessions WHERE last_used_at < $1")
            .bind(ms(before))
            .execute(&self.write)
            .await?;
        Ok(r.rows_affected())
    }
}
