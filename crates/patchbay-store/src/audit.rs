//! The append-only audit log with a per-organization SHA-256 hash chain: each event's hash
//! covers the previous event's hash, so editing or removing a row breaks every later hash.

use chrono::{DateTime, Utc};
use patchbay_domain::{AuditId, OrgId};
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use crate::util::{ms, parse, time};
use crate::{Dialect, Result, Store, StoreError, Tx};

#[derive(Debug, Clone)]
pub struct NewAudit {
    pub org_id: OrgId,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub outcome: String,
    /// Never a secret value: callers put ids, names, field names and error kinds here.
    pub details: serde_json::Value,
}

#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub seq: i64,
    pub id: AuditId,
    pub org_id: OrgId,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub outcome: String,
    pub details: serde_json::Value,
    pub hash: Vec<u8>,
}

/// Filters of `GET /v1/audit`.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target: Option<String>,
    pub since: Option<DateTime<Utc>>,
}

const GENESIS: [u8; 32] = [0; 32];

fn chain_hash(prev: &[u8], id: &str, org: &str, at: i64, e: &NewAudit, details: &str) -> Vec<u8> {
    let fields = serde_json::json!([id, org, at, e.actor, e.action, e.target, e.outcome, details]);
    let mut h = Sha256::new();
    h.update(prev);
    h.update([0u8]);
    h.update(fields.to_string().as_bytes());
    h.finalize().to_vec()
}

fn record(row: &AnyRow) -> Result<AuditRecord> {
    let details: String = row.try_get("details")?;
    Ok(AuditRecord {
        seq: row.try_get("seq")?,
        id: parse(row, "id")?,
        org_id: parse(row, "org_id")?,
        at: time(row, "at")?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        target: row.try_get("target")?,
        outcome: row.try_get("outcome")?,
        details: serde_json::from_str(&details)
            .map_err(|_| StoreError::Corrupt("audit details".into()))?,
        hash: row.try_get("hash")?,
    })
}

const COLS: &str = "seq, id, org_id, at, actor, action, target, outcome, details, prev_hash, hash";

impl Tx {
    pub async fn append_audit(&mut self, e: &NewAudit) -> Result<AuditId> {
        let prev = self.chain_head(e.org_id.as_str()).await?;
        Ok(self.insert_chained(e, prev).await?.0)
    }

    /// Appends `events` in their order: each organization's chain is locked and read once,
    /// and carried on in memory from entry to entry.
    pub async fn append_audits(&mut self, events: &[&NewAudit]) -> Result<()> {
        let mut heads: std::collections::HashMap<String, Vec<u8>> = Default::default();
        for e in events {
            let org = e.org_id.as_str();
            let prev = match heads.remove(org) {
                Some(h) => h,
                None => self.chain_head(org).await?,
            };
            let (_, hash) = self.insert_chained(e, prev).await?;
            heads.insert(org.to_owned(), hash);
        }
        Ok(())
    }

    /// The hash the organization's next entry chains to, its chain locked for the rest of the
    /// transaction on PostgreSQL (SQLite has one writer).
    async fn chain_head(&mut self, org: &str) -> Result<Vec<u8>> {
        if self.dialect == Dialect::Postgres {
            // Serialises appends per organization so that the chain stays linear.
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
                .bind(format!("audit:{org}"))
                .execute(&mut *self.inner)
                .await?;
        }
        Ok(
            sqlx::query("SELECT hash FROM audit WHERE org_id = $1 ORDER BY seq DESC LIMIT 1")
                .bind(org.to_owned())
                .fetch_optional(&mut *self.inner)
                .await?
                .map(|r| r.try_get("hash"))
                .transpose()?
                .unwrap_or_else(|| GENESIS.to_vec()),
        )
    }

    async fn insert_chained(&mut self, e: &NewAudit, prev: Vec<u8>) -> Result<(AuditId, Vec<u8>)> {
        let org = e.org_id.as_str().to_owned();
        let id = AuditId::generate();
        let at = ms(e.at);
        let details = e.details.to_string();
        let hash = chain_hash(&prev, id.as_str(), &org, at, e, &details);
        sqlx::query(
            "INSERT INTO audit (id, org_id, at, actor, action, target, outcome, details, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(id.as_str().to_owned())
        .bind(org)
        .bind(at)
        .bind(e.actor.clone())
        .bind(e.action.clone())
        .bind(e.target.clone())
        .bind(e.outcome.clone())
        .bind(details)
        .bind(prev)
        .bind(hash.clone())
        .execute(&mut *self.inner)
        .await?;
        Ok((id, hash))
    }
}

impl Store {
    /// Appends one event in its own transaction (for reads that are audited).
    /// Newest first; `before` is a sequence number cursor.
    pub async fn list_audit(
        &self,
        org: &OrgId,
        filter: &AuditFilter,
        before: Option<i64>,
        limit: u32,
    ) -> Result<(Vec<AuditRecord>, Option<i64>)> {
        let mut sql = format!("SELECT {COLS} FROM audit WHERE org_id = $1");
        let mut texts = vec![org.as_str().to_owned()];
        for (col, v) in [
            ("actor", &filter.actor),
            ("action", &filter.action),
            ("target", &filter.target),
        ] {
            if let Some(v) = v {
                texts.push(v.clone());
                sql.push_str(&format!(" AND {col} = ${}", texts.len()));
            }
        }
        let n = texts.len();
        sql.push_str(&format!(
            " AND at >= ${} AND seq < ${} ORDER BY seq DESC LIMIT {}",
            n + 1,
            n + 2,
            i64::from(limit) + 1
        ));
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for t in texts {
            q = q.bind(t);
        }
        q = q
            .bind(filter.since.map(ms).unwrap_or(i64::MIN))
            .bind(before.unwrap_or(i64::MAX));
        let mut items = q
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(record)
            .collect::<Result<Vec<_>>>()?;
        let next = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|r| r.seq)
        } else {
            None
        };
        Ok((items, next))
    }

    /// Recomputes the organization's chain; returns (events, first broken seq).
    pub async fn verify_audit(&self, org: &OrgId) -> Result<(i64, Option<i64>)> {
        use futures::TryStreamExt;
        let mut rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLS} FROM audit WHERE org_id = $1 ORDER BY seq"
        )))
        .bind(org.as_str().to_owned())
        .fetch(&self.read);
        let mut prev = GENESIS.to_vec();
        let mut count = 0;
        while let Some(row) = rows.try_next().await? {
            count += 1;
            let seq: i64 = row.try_get("seq")?;
            let stored_prev: Vec<u8> = row.try_get("prev_hash")?;
            let hash: Vec<u8> = row.try_get("hash")?;
            let details: String = row.try_get("details")?;
            let e = NewAudit {
                org_id: org.clone(),
                at: time(&row, "at")?,
                actor: row.try_get("actor")?,
                action: row.try_get("action")?,
                target: row.try_get("target")?,
                outcome: row.try_get("outcome")?,
                details: serde_json::Value::Null,
            };
            let id: String = row.try_get("id")?;
            let at: i64 = row.try_get("at")?;
            let expected = chain_hash(&prev, &id, org.as_str(), at, &e, &details);
            if stored_prev != prev || hash != expected {
                return Ok((count, Some(seq)));
            }
            prev = hash;
        }
        Ok((count, None))
    }
}
