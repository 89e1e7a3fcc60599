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
        let row = Chained::after(e, prev);
        let hash = row.hash.clone();
        let id = row.id.clone();
        row.bind(sqlx::query(AssertSqlSafe(INSERT_ONE.as_str())))
            .execute(&mut *self.inner)
            .await?;
        Ok((id, hash))
    }
}

/// The columns an append writes.
const INSERTED: &str = "id, org_id, at, actor, action, target, outcome, details, prev_hash, hash";

/// The statement that appends one row, made once.
static INSERT_ONE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!("INSERT INTO audit ({INSERTED}) VALUES {}", placeholders(0))
});

/// `($n+1, …, $n+10)`: one appended row's parameters after the first `n`.
fn placeholders(n: usize) -> String {
    let list: Vec<String> = (n + 1..=n + 10).map(|i| format!("${i}")).collect();
    format!("({})", list.join(", "))
}

/// One entry with its place in the chain.
struct Chained<'a> {
    e: &'a NewAudit,
    id: AuditId,
    at: i64,
    details: String,
    prev: Vec<u8>,
    hash: Vec<u8>,
}

impl<'a> Chained<'a> {
    fn after(e: &'a NewAudit, prev: Vec<u8>) -> Self {
        let id = AuditId::generate();
        let at = ms(e.at);
        let details = e.details.to_string();
        let hash = chain_hash(&prev, id.as_str(), e.org_id.as_str(), at, e, &details);
        Self {
            e,
            id,
            at,
            details,
            prev,
            hash,
        }
    }

    /// Binds the row's ten values, in [`INSERTED`]'s order.
    fn bind<'q>(
        self,
        q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
        q.bind(self.id.as_str().to_owned())
            .bind(self.e.org_id.as_str().to_owned())
            .bind(self.at)
            .bind(self.e.actor.clone())
            .bind(self.e.action.clone())
            .bind(self.e.target.clone())
            .bind(self.e.outcome.clone())
            .bind(self.details)
            .bind(self.prev)
            .bind(self.hash)
    }
}

/// The heads of organizations' chains as one appender last wrote them: a hint, never
/// trusted — an append chained to a head that is no longer the last is refused by the
/// database as a whole and made again from the chain as it is.
#[derive(Debug, Default)]
pub struct ChainHeads(std::collections::HashMap<String, Vec<u8>>);

/// The most entries one append of a group carries (ten parameters each).
pub const GROUP_MAX: usize = 256;

impl Store {
    /// Appends `events`, all of one organization, in their order and all or none, and keeps
    /// the chain's new head in `heads`. On SQLite, with the head known, that is one statement
    /// that inserts only if the chain still ends there; otherwise (and on PostgreSQL, where
    /// the chain is locked) a transaction that reads the head first.
    pub async fn append_audit_group(
        &self,
        events: &[&NewAudit],
        heads: &mut ChainHeads,
    ) -> Result<()> {
        let Some(first) = events.first() else {
            return Ok(());
        };
        let org = first.org_id.as_str();
        if events.len() > GROUP_MAX || events.iter().any(|e| e.org_id.as_str() != org) {
            return Err(StoreError::Corrupt(format!(
                "an audit group holds one organization's entries, at most {GROUP_MAX}"
            )));
        }
        let known = heads.0.remove(org);
        if self.dialect == Dialect::Sqlite
            && let Some(prev) = known
            && let Some(head) = self.append_after(org, events, prev).await?
        {
            heads.0.insert(org.to_owned(), head);
            return Ok(());
        }
        let mut tx = self.begin().await?;
        let mut prev = tx.chain_head(org).await?;
        for e in events {
            prev = tx.insert_chained(e, prev).await?.1;
        }
        tx.commit().await?;
        heads.0.insert(org.to_owned(), prev);
        Ok(())
    }

    /// Inserts `events` chained after `prev` in one statement, if the chain of `org` still ends
    /// at `prev`: the new head, or `None` when it does not (nothing was written).
    async fn append_after(
        &self,
        org: &str,
        events: &[&NewAudit],
        prev: Vec<u8>,
    ) -> Result<Option<Vec<u8>>> {
        let mut rows = Vec::with_capacity(events.len());
        let mut head = prev.clone();
        for e in events {
            let row = Chained::after(e, head);
            head = row.hash.clone();
            rows.push(row);
        }
        let values: Vec<String> = (0..rows.len()).map(|i| placeholders(i * 10)).collect();
        let n = rows.len() * 10;
        let sql = format!(
            "INSERT INTO audit ({INSERTED}) SELECT * FROM (VALUES {}) \
             WHERE (SELECT hash FROM audit WHERE org_id = ${} ORDER BY seq DESC LIMIT 1) = ${}",
            values.join(", "),
            n + 1,
            n + 2
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for row in rows {
            q = row.bind(q);
        }
        let done = q
            .bind(org.to_owned())
            .bind(prev)
            .execute(&self.write)
            .await?;
        match done.rows_affected() {
            0 => Ok(None),
            n if n as usize == events.len() => Ok(Some(head)),
            _ => Err(StoreError::Corrupt(
                "an audit group was written in part".into(),
            )),
        }
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
