//! Pending OAuth authorization-code flows (state rows), shared by every replica.

use chrono::{DateTime, Utc};
use patchbay_domain::{ConnectionId, OrgId, ProjectId};
use sqlx::Row;

use crate::util::{ms, opt_time, parse, time};
use crate::{Result, Store, Tx};

#[derive(Debug, Clone)]
pub struct StateRecord {
    pub state_hash: Vec<u8>,
    pub org_id: OrgId,
    pub project_id: ProjectId,
    pub connection_id: ConnectionId,
    /// The token that started the flow.
    pub principal: String,
    /// The issuer the callback's `iss` must name, when the provider sends one.
    pub issuer: Option<String>,
    pub redirect_uri: String,
    pub return_to: Option<String>,
    pub key_version: i64,
    /// Sealed PKCE verifier.
    pub code_verifier: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    /// The hash of the value the browser that started the flow holds (web UI flows only).
    pub browser_hash: Option<Vec<u8>>,
}

impl Store {
    pub async fn find_state(&self, state_hash: &[u8]) -> Result<Option<StateRecord>> {
        let row = sqlx::query(
            "SELECT state_hash, org_id, project_id, connection_id, principal, issuer, redirect_uri, return_to, \
             key_version, code_verifier, created_at, expires_at, used_at, browser_hash FROM oauth_states \
             WHERE state_hash = $1",
        )
        .bind(state_hash.to_vec())
        .fetch_optional(&self.read)
        .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(StateRecord {
            state_hash: r.try_get("state_hash")?,
            org_id: parse(&r, "org_id")?,
            project_id: parse(&r, "project_id")?,
            connection_id: parse(&r, "connection_id")?,
            principal: r.try_get("principal")?,
            issuer: r.try_get("issuer")?,
            redirect_uri: r.try_get("redirect_uri")?,
            return_to: r.try_get("return_to")?,
            key_version: r.try_get("key_version")?,
            code_verifier: r.try_get("code_verifier")?,
            created_at: time(&r, "created_at")?,
            expires_at: time(&r, "expires_at")?,
            used_at: opt_time(&r, "used_at")?,
            browser_hash: r.try_get("browser_hash")?,
        }))
    }
}

impl Tx {
    pub async fn insert_state(&mut self, s: &StateRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO oauth_states (state_hash, org_id, project_id, connection_id, principal, issuer, redirect_uri, \
             return_to, key_version, code_verifier, created_at, expires_at, browser_hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(s.state_hash.clone())
        .bind(s.org_id.as_str().to_owned())
        .bind(s.project_id.as_str().to_owned())
        .bind(s.connection_id.as_str().to_owned())
        .bind(s.principal.clone())
        .bind(s.issuer.clone())
        .bind(s.redirect_uri.clone())
        .bind(s.return_to.clone())
        .bind(s.key_version)
        .bind(s.code_verifier.clone())
        .bind(ms(s.created_at))
        .bind(ms(s.expires_at))
        .bind(s.browser_hash.clone())
        .execute(&mut *self.inner)
        .await?;
        Ok(())
    }

    /// Marks a state used; `false` when it was used already (single use, across replicas).
    pub async fn consume_state(&mut self, state_hash: &[u8], now: DateTime<Utc>) -> Result<bool> {
        let res = sqlx::query(
            "UPDATE oauth_states SET used_at = $1 WHERE state_hash = $2 AND used_at IS NULL",
        )
        .bind(ms(now))
        .bind(state_hash.to_vec())
        .execute(&mut *self.inner)
        .await?;
        Ok(res.rows_affected() == 1)
    }

    /// Drops states that expired before `before`.
    pub async fn purge_states(&mut self, before: DateTime<Utc>) -> Result<u64> {
        let res = sqlx::query("DELETE FROM oauth_states WHERE expires_at < $1")
            .bind(ms(before))
            .execute(&mut *self.inner)
            .await?;
        Ok(res.rows_affected())
    }
}
