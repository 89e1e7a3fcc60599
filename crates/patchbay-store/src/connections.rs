//! Connections and their secret fields (one ciphertext or reference per field).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use patchbay_domain::connection::{Connection, OAuthState, SecretState};
use patchbay_domain::{AuthType, ConnectionId, Kind, OrgId, ProjectId, SecretName, Status};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use crate::util::{json_map, ms, opt_json, opt_time, parse, time};
use crate::{Dialect, Result, Store, StoreError, Tx};

/// A connection row: the domain view plus its organization.
pub type ConnectionRecord = Connection;

/// One stored secret field: a ciphertext, or a reference to an organization secret.
#[derive(Debug, Clone)]
pub struct SecretRow {
    pub field: String,
    pub key_version: Option<i64>,
    pub ciphertext: Option<Vec<u8>>,
    pub secret_ref: Option<String>,
}

#[derive(Debug)]
pub struct NewConnection {
    pub org_id: OrgId,
    pub connection: Connection,
    pub secrets: Vec<SecretRow>,
}

/// List filters; every field narrows the result.
#[derive(Debug, Clone, Default)]
pub struct ConnectionFilter {
    pub project: Option<ProjectId>,
    pub kind: Option<Kind>,
    pub provider: Option<String>,
    pub auth: Option<AuthType>,
    pub status: Option<Status>,
    /// Only OAuth connections whose access token expires before this time.
    pub expiring_before: Option<DateTime<Utc>>,
}

const COLS: &str = "id, org_id, project_id, name, kind, provider, auth, config, status, test_status, \
    test_message, test_latency_ms, last_tested_at, last_used_at, used_by, oauth, mcp, created_by, \
    created_at, updated_at, version";

fn connection(row: &AnyRow) -> Result<Connection> {
    let enum_col = |col: &str| -> Result<String> { Ok(row.try_get::<String, _>(col)?) };
    let corrupt = |col: &str, v: &str| StoreError::Corrupt(format!("{col} holds {v:?}"));
    let kind = enum_col("kind")?;
    let status = enum_col("status")?;
    let test_status = enum_col("test_status")?;
    let used_by: String = row.try_get("used_by")?;
    let name: String = row.try_get("name")?;
    Ok(Connection {
        id: parse(row, "id")?,
        org_id: Some(parse(row, "org_id")?),
        project: parse(row, "project_id")?,
        name: patchbay_domain::Name::parse(&name).map_err(|_| corrupt("name", &name))?,
        kind: Kind::parse(&kind).ok_or_else(|| corrupt("kind", &kind))?,
        provider: row.try_get("provider")?,
        auth: json_map(row, "auth")?,
        config: json_map(row, "config")?,
        secrets: BTreeMap::new(),
        status: Status::parse(&status).ok_or_else(|| corrupt("status", &status))?,
        test_status: patchbay_domain::TestStatus::parse(&test_status)
            .ok_or_else(|| corrupt("test_status", &test_status))?,
        test_message: row.try_get("test_message")?,
        test_latency_ms: row.try_get("test_latency_ms")?,
        last_tested_at: opt_time(row, "last_tested_at")?,
        last_used_at: opt_time(row, "last_used_at")?,
        used_by: serde_json::from_str(&used_by).map_err(|_| corrupt("used_by", &used_by))?,
        oauth: opt_json(row, "oauth")?,
        mcp: opt_json(row, "mcp")?,
        stale: false,
        created_by: row.try_get("created_by")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
        version: row.try_get("version")?,
    })
}

fn secret_row(row: &AnyRow) -> Result<(String, SecretRow)> {
    Ok((
        row.try_get("connection_id")?,
        SecretRow {
            field: row.try_get("field")?,
            key_version: row.try_get("key_version")?,
            ciphertext: row.try_get("ciphertext")?,
            secret_ref: row.try_get("secret_ref")?,
        },
    ))
}

fn secret_state(row: &SecretRow) -> SecretState {
    SecretState {
        set: true,
        reference: row
            .secret_ref
            .as_deref()
            .and_then(|r| SecretName::parse(r).ok()),
    }
}

fn json_text(v: &impl serde::Serialize) -> String {
    serde_json::to_string(v).expect("a map or a plain struct serializes")
}

impl Store {
    pub async fn get_connection(
        &self,
        org: &OrgId,
        id: &ConnectionId,
    ) -> Result<Option<Connection>> {
        let mut conn = self.read.acquire().await?;
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLS} FROM connections WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL"
        )))
        .bind(org.as_str().to_owned())
        .bind(id.as_str().to_owned())
        .fetch_optional(&mut *conn)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let mut c = connection(&row)?;
        let secrets = sqlx::query(
            "SELECT connection_id, field, key_version, ciphertext, secret_ref \
             FROM connection_secrets WHERE connection_id = $1",
        )
        .bind(id.as_str().to_owned())
        .fetch_all(&mut *conn)
        .await?;
        for r in &secrets {
            let (_, s) = secret_row(r)?;
            c.secrets.insert(s.field.clone(), secret_state(&s));
        }
        Ok(Some(c))
    }

    /// The stored secret fields of a live connection (ciphertexts and references).
    pub async fn connection_secrets(
        &self,
        org: &OrgId,
        id: &ConnectionId,
    ) -> Result<Vec<SecretRow>> {
        sqlx::query(
            "SELECT s.connection_id, s.field, s.key_version, s.ciphertext, s.secret_ref \
             FROM connection_secrets s JOIN connections c ON c.id = s.connection_id \
             WHERE c.org_id = $1 AND c.id = $2 AND c.deleted_at IS NULL ORDER BY s.field",
        )
        .bind(org.as_str().to_owned())
        .bind(id.as_str().to_owned())
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(|r| secret_row(r).map(|(_, s)| s))
        .collect()
    }

    /// One page of connections ordered by id, after `cursor` (an id) when given.
    pub async fn list_connections(
        &self,
        org: &OrgId,
        filter: &ConnectionFilter,
        cursor: Option<&ConnectionId>,
        limit: u32,
    ) -> Result<(Vec<Connection>, Option<ConnectionId>)> {
        let mut sql =
            format!("SELECT {COLS} FROM connections WHERE org_id = $1 AND deleted_at IS NULL");
        let mut args: Vec<String> = vec![org.as_str().to_owned()];
        let mut add = |col: &str, v: Option<String>| {
            if let Some(v) = v {
                args.push(v);
                sql.push_str(&format!(" AND {col} = ${}", args.len()));
            }
        };
        add(
            "project_id",
            filter.project.as_ref().map(|p| p.as_str().to_owned()),
        );
        add("kind", filter.kind.map(|k| k.as_str().to_owned()));
        add("provider", filter.provider.clone());
        add("auth_type", filter.auth.map(|a| a.as_str().to_owned()));
        add("status", filter.status.map(|s| s.as_str().to_owned()));
        if let Some(t) = filter.expiring_before {
            sql.push_str(&format!(
                " AND oauth_expires_at IS NOT NULL AND oauth_expires_at <= {}",
                ms(t)
            ));
        }
        if let Some(c) = cursor {
            args.push(c.as_str().to_owned());
            sql.push_str(&format!(" AND id > ${}", args.len()));
        }
        sql.push_str(&format!(" ORDER BY id LIMIT {}", i64::from(limit) + 1));
        let mut conn = self.read.acquire().await?;
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for a in args {
            query = query.bind(a);
        }
        let rows = query.fetch_all(&mut *conn).await?;
        let mut items = rows.iter().map(connection).collect::<Result<Vec<_>>>()?;
        let next = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|c| c.id.clone())
        } else {
            None
        };
        if !items.is_empty() {
            self.attach_secret_states(&mut conn, &mut items).await?;
        }
        Ok((items, next))
    }

    async fn attach_secret_states(
        &self,
        conn: &mut sqlx::AnyConnection,
        items: &mut [Connection],
    ) -> Result<()> {
        let placeholders: Vec<String> = (1..=items.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT connection_id, field, key_version, ciphertext, secret_ref FROM connection_secrets \
             WHERE connection_id IN ({})",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for c in items.iter() {
            query = query.bind(c.id.as_str().to_owned());
        }
        let mut by_id: HashMap<String, Vec<SecretRow>> = HashMap::new();
        for r in query.fetch_all(&mut *conn).await? {
            let (id, s) = secret_row(&r)?;
            by_id.entry(id).or_default().push(s);
        }
        for c in items.iter_mut() {
            for s in by_id.remove(c.id.as_str()).unwrap_or_default() {
                c.secrets.insert(s.field.clone(), secret_state(&s));
            }
        }
        Ok(())
    }

    /// Live connections last tested before `before` (or never), oldest first, across
    /// organizations: the scheduler's work list.
    pub async fn connections_due_for_test(
        &self,
        before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Connection>> {
        sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLS} FROM connections WHERE deleted_at IS NULL AND status IN ('active', 'invalid') \
             AND (last_tested_at IS NULL OR last_tested_at < $1) ORDER BY COALESCE(last_tested_at, 0), id LIMIT $2"
        )))
        .bind(ms(before))
        .bind(limit)
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(connection)
        .collect()
    }

    /// Active OAuth connections whose access token expires before `before`, across
    /// organizations: the background refresher's work list.
    pub async fn oauth_due(&self, before: DateTime<Utc>, limit: i64) -> Result<Vec<Connection>> {
        sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLS} FROM connections WHERE deleted_at IS NULL AND status = 'active' \
             AND auth_type = 'oauth2' AND oauth_expires_at IS NOT NULL AND oauth_expires_at < $1 \
             ORDER BY oauth_expires_at LIMIT $2"
        )))
        .bind(ms(before))
        .bind(limit)
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(connection)
        .collect()
    }

    /// Stores a test's outcome. Not an edit: the version stays, so an `If-Match` taken
    /// before the test still holds.
    pub async fn count_connections(&self) -> Result<i64> {
        Ok(
            sqlx::query("SELECT COUNT(*) AS n FROM connections WHERE deleted_at IS NULL")
                .fetch_one(&self.read)
                .await?
                .try_get("n")?,
        )
    }
}

impl Tx {
    #[allow(clippy::too_many_arguments)]
    pub async fn record_test(
        &mut self,
        org: &OrgId,
        id: &ConnectionId,
        outcome: patchbay_domain::TestStatus,
        message: &str,
        latency_ms: i64,
        at: DateTime<Utc>,
        status: Status,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE connections SET test_status = $1, test_message = $2, test_latency_ms = $3, \
             last_tested_at = $4, status = $5 WHERE org_id = $6 AND id = $7 AND deleted_at IS NULL",
        )
        .bind(outcome.as_str().to_owned())
        .bind(message.to_owned())
        .bind(latency_ms)
        .bind(ms(at))
        .bind(status.as_str().to_owned())
        .bind(org.as_str().to_owned())
        .bind(id.as_str().to_owned())
        .execute(&mut *self.inner)
        .await?;
        Ok(())
    }

    pub async fn insert_connection(&mut self, new: &NewConnection) -> Result<()> {
        let c = &new.connection;
        sqlx::query(
            "INSERT INTO connections (id, org_id, project_id, name, kind, provider, auth_type, auth, config, \
             status, test_status, used_by, created_by, created_at, updated_at, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'untested', '[]', $11, $12, $12, 1)",
        )
        .bind(c.id.as_str().to_owned())
        .bind(new.org_id.as_str().to_owned())
        .bind(c.project.as_str().to_owned())
        .bind(c.name.as_str().to_owned())
        .bind(c.kind.as_str().to_owned())
        .bind(c.provider.clone())
        .bind(c.auth_type().as_str().to_owned())
        .bind(json_text(&c.auth))
        .bind(json_text(&c.config))
        .bind(c.status.as_str().to_owned())
        .bind(c.created_by.clone())
        .bind(ms(c.created_at))
        .execute(&mut *self.inner)
        .await?;
        for s in &new.secrets {
            self.put_connection_secret(&c.id, s).await?;
        }
        Ok(())
    }

    async fn put_connection_secret(&mut self, id: &ConnectionId, s: &SecretRow) -> Result<()> {
        sqlx::query("DELETE FROM connection_secrets WHERE connection_id = $1 AND field = $2")
            .bind(id.as_str().to_owned())
            .bind(s.field.clone())
            .execute(&mut *self.inner)
            .await?;
        sqlx::query(
            "INSERT INTO connection_secrets (connection_id, field, key_version, ciphertext, secret_ref) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id.as_str().to_owned())
        .bind(s.field.clone())
        .bind(s.key_version)
        .bind(s.ciphertext.clone())
        .bind(s.secret_ref.clone())
        .execute(&mut *self.inner)
        .await?;
        Ok(())
    }

    /// Reads a live connection inside the transaction, locking its row on PostgreSQL.
    pub async fn lock_connection(
        &mut self,
        org: &OrgId,
        id: &ConnectionId,
    ) -> Result<Option<Connection>> {
        let lock = self.for_update();
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLS} FROM connections WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL{lock}"
        )))
        .bind(org.as_str().to_owned())
        .bind(id.as_str().to_owned())
        .fetch_optional(&mut *self.inner)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let mut c = connection(&row)?;
        for r in sqlx::query(
            "SELECT connection_id, field, key_version, ciphertext, secret_ref FROM connection_secrets \
             WHERE connection_id = $1",
        )
        .bind(id.as_str().to_owned())
        .fetch_all(&mut *self.inner)
        .await?
        {
            let (_, s) = secret_row(&r)?;
            c.secrets.insert(s.field.clone(), secret_state(&s));
        }
        Ok(Some(c))
    }

    /// Writes the connection's editable fields when its version is still `expected_version`,
    /// puts the given secret rows and removes the named fields.
    pub async fn update_connection(
        &mut self,
        org: &OrgId,
        c: &Connection,
        expected_version: i64,
        put: &[SecretRow],
        remove: &[String],
    ) -> Result<()> {
        let res = sqlx::query(
            "UPDATE connections SET name = $1, provider = $2, auth_type = $3, auth = $4, config = $5, \
             status = $6, updated_at = $7, version = version + 1 \
             WHERE org_id = $8 AND id = $9 AND version = $10 AND deleted_at IS NULL",
        )
        .bind(c.name.as_str().to_owned())
        .bind(c.provider.clone())
        .bind(c.auth_type().as_str().to_owned())
        .bind(json_text(&c.auth))
        .bind(json_text(&c.config))
        .bind(c.status.as_str().to_owned())
        .bind(ms(c.updated_at))
        .bind(org.as_str().to_owned())
        .bind(c.id.as_str().to_owned())
        .bind(expected_version)
        .execute(&mut *self.inner)
        .await?;
        crate::util::expect_one(res.rows_affected(), StoreError::VersionMismatch)?;
        for field in remove {
            sqlx::query("DELETE FROM connection_secrets WHERE connection_id = $1 AND field = $2")
                .bind(c.id.as_str().to_owned())
                .bind(field.clone())
                .execute(&mut *self.inner)
                .await?;
        }
        for s in put {
            self.put_connection_secret(&c.id, s).await?;
        }
        Ok(())
    }

    /// Destroys the secret fields of a connection whose names start with `prefix` (the tokens
    /// Patchbay obtained); how many there were.
    pub async fn remove_connection_secrets_with_prefix(
        &mut self,
        id: &ConnectionId,
        prefix: &str,
    ) -> Result<u64> {
        let rows = self.secret_rows(id).await?;
        let mut removed = 0;
        for row in rows.iter().filter(|r| r.field.starts_with(prefix)) {
            sqlx::query("DELETE FROM connection_secrets WHERE connection_id = $1 AND field = $2")
                .bind(id.as_str().to_owned())
                .bind(row.field.clone())
                .execute(&mut *self.inner)
                .await?;
            removed += 1;
        }
        Ok(removed)
    }

    /// The secret rows of a connection, read inside this transaction (under its lock).
    pub async fn secret_rows(&mut self, id: &ConnectionId) -> Result<Vec<SecretRow>> {
        sqlx::query(
            "SELECT connection_id, field, key_version, ciphertext, secret_ref FROM connection_secrets WHERE connection_id = $1",
        )
        .bind(id.as_str().to_owned())
        .fetch_all(&mut *self.inner)
        .await?
        .iter()
        .map(|r| secret_row(r).map(|(_, s)| s))
        .collect()
    }

    /// Records an OAuth link or refresh: token fields (sealed), the `oauth` state (and with it
    /// the token's expiry, indexed for the renewal sweep), the status, and (on a link) config values the provider returned (QuickBooks'
    /// `realmId`); a refresh passes no config and leaves it as it is.
    /// Not an edit: the version stays.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_oauth(
        &mut self,
        org: &OrgId,
        id: &ConnectionId,
        oauth: &OAuthState,
        status: Status,
        config: Option<&serde_json::Map<String, serde_json::Value>>,
        tokens: &[SecretRow],
        now: DateTime<Utc>,
    ) -> Result<()> {
        let res = sqlx::query(
            "UPDATE connections SET oauth = $1, oauth_expires_at = $2, status = $3, \
             config = COALESCE($4, config), updated_at = $5 \
             WHERE org_id = $6 AND id = $7 AND deleted_at IS NULL",
        )
        .bind(json_text(oauth))
        .bind(oauth.expires_at.map(ms))
        .bind(status.as_str().to_owned())
        .bind(config.map(json_text))
        .bind(ms(now))
        .bind(org.as_str().to_owned())
        .bind(id.as_str().to_owned())
        .execute(&mut *self.inner)
        .await?;
        crate::util::expect_one(res.rows_affected(), StoreError::NotFound)?;
        for t in tokens {
            self.put_connection_secret(id, t).await?;
        }
        Ok(())
    }

    /// Records use: `last_used_at` moves forward, `callers` join `used_by` (distinct, at most
    /// `max` kept; the newest win when full).
    pub async fn record_use(
        &mut self,
        org: &OrgId,
        id: &ConnectionId,
        at: DateTime<Utc>,
        callers: &[String],
        max: usize,
    ) -> Result<()> {
        let current: Option<String> = sqlx::query_scalar(
            "SELECT used_by FROM connections WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL",
        )
        .bind(org.as_str().to_owned())
        .bind(id.as_str().to_owned())
        .fetch_optional(&mut *self.inner)
        .await?;
        let Some(current) = current else {
            return Ok(());
        };
        let mut used_by: Vec<String> = serde_json::from_str(&current).unwrap_or_default();
        for c in callers {
            if !used_by.contains(c) {
                used_by.push(c.clone());
            }
        }
        if used_by.len() > max {
            used_by.drain(..used_by.len() - max);
        }
        sqlx::query(
            "UPDATE connections SET used_by = $1, \
             last_used_at = CASE WHEN last_used_at IS NULL OR last_used_at < $2 THEN $2 ELSE last_used_at END \
             WHERE org_id = $3 AND id = $4",
        )
        .bind(serde_json::Value::from(used_by).to_string())
        .bind(ms(at))
        .bind(org.as_str().to_owned())
        .bind(id.as_str().to_owned())
        .execute(&mut *self.inner)
        .await?;
        Ok(())
    }

    /// Replaces only the `oauth` state (what a test learnt about the account).
    pub async fn set_oauth(
        &mut self,
        org: &OrgId,
        id: &ConnectionId,
        oauth: &OAuthState,
    ) -> Result<()> {
        sqlx::query("UPDATE connections SET oauth = $1 WHERE org_id = $2 AND id = $3 AND deleted_at IS NULL")
            .bind(json_text(oauth))
            .bind(org.as_str().to_owned())
            .bind(id.as_str().to_owned())
            .execute(&mut *self.inner)
            .await?;
        Ok(())
    }

    /// Replaces only the `mcp` state (what the connection's server said at its discovery).
    pub async fn set_mcp(
        &mut self,
        org: &OrgId,
        id: &ConnectionId,
        mcp: &serde_json::Value,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE connections SET mcp = $1 WHERE org_id = $2 AND id = $3 AND deleted_at IS NULL",
        )
        .bind(json_text(mcp))
        .bind(org.as_str().to_owned())
        .bind(id.as_str().to_owned())
        .execute(&mut *self.inner)
        .await?;
        Ok(())
    }

    /// Sets only the status (a failed OAuth link, an expired grant).
    pub async fn set_status(
        &mut self,
        org: &OrgId,
        id: &ConnectionId,
        status: Status,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query("UPDATE connections SET status = $1, updated_at = $2 WHERE org_id = $3 AND id = $4 AND deleted_at IS NULL")
            .bind(status.as_str().to_owned())
            .bind(ms(now))
            .bind(org.as_str().to_owned())
            .bind(id.as_str().to_owned())
            .execute(&mut *self.inner)
            .await?;
        Ok(())
    }

    /// Soft-deletes the connection and destroys its secret fields: a deleted credential
    /// should not linger at rest.
    pub async fn delete_connection(
        &mut self,
        org: &OrgId,
        id: &ConnectionId,
        status: Status,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let res = sqlx::query(
            "UPDATE connections SET deleted_at = $1, updated_at = $1, status = $2, version = version + 1 \
             WHERE org_id = $3 AND id = $4 AND deleted_at IS NULL",
        )
        .bind(ms(now))
        .bind(status.as_str().to_owned())
        .bind(org.as_str().to_owned())
        .bind(id.as_str().to_owned())
        .execute(&mut *self.inner)
        .await?;
        crate::util::expect_one(res.rows_affected(), StoreError::NotFound)?;
        sqlx::query("DELETE FROM connection_secrets WHERE connection_id = $1")
            .bind(id.as_str().to_owned())
            .execute(&mut *self.inner)
            .await?;
        Ok(())
    }
}

/// A connection held for renewing its tokens: on PostgreSQL its row stays locked in an open
/// transaction until the new tokens are written (so replicas wait, then re-read); on SQLite,
/// where one process owns the database, it is a plain read and the single writer is taken only
/// for the short write, never across the call to the provider.
#[derive(Debug)]
pub struct Held {
    pub connection: Connection,
    pub secrets: Vec<SecretRow>,
    tx: Option<Tx>,
}

impl Held {
    /// The transaction to write the outcome in: the one holding the lock, or a new one.
    pub async fn writer(self, store: &Store) -> Result<Tx> {
        match self.tx {
            Some(tx) => Ok(tx),
            None => store.begin().await,
        }
    }
}

impl Store {
    /// Holds a live connection for a token renewal (see [`Held`]); `None` when it is gone.
    pub async fn hold_connection(&self, org: &OrgId, id: &ConnectionId) -> Result<Option<Held>> {
        if self.dialect() == Dialect::Postgres {
            let mut tx = self.begin().await?;
            let Some(connection) = tx.lock_connection(org, id).await? else {
                return Ok(None);
            };
            let secrets = tx.secret_rows(id).await?;
            return Ok(Some(Held {
                connection,
                secrets,
                tx: Some(tx),
            }));
        }
        let Some(connection) = self.get_connection(org, id).await? else {
            return Ok(None);
        };
        let secrets = self.connection_secrets(org, id).await?;
        Ok(Some(Held {
            connection,
            secrets,
            tx: None,
        }))
    }
}
