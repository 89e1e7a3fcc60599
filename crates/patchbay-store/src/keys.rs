//! Wrapped data keys, and the ciphertext inventory that key rotation walks.

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::util::{ms, time};
use crate::{Result, Store, Tx};

#[derive(Debug, Clone)]
pub struct VaultKeyRow {
    pub version: i64,
    pub wrapped: Vec<u8>,
    pub root_fingerprint: String,
    pub created_at: DateTime<Utc>,
}

/// One ciphertext due for re-encryption, with what its associated data needs.
#[derive(Debug, Clone)]
pub enum CiphertextRef {
    Connection {
        org_id: String,
        connection_id: String,
        field: String,
        ciphertext: Vec<u8>,
    },
    Secret {
        org_id: String,
        secret_id: String,
        ciphertext: Vec<u8>,
    },
    App {
        org_id: String,
        app_id: String,
        ciphertext: Vec<u8>,
    },
    Delivery {
        org_id: String,
        delivery_id: String,
        ciphertext: Vec<u8>,
    },
    /// A sealed column of another table: inbound endpoints' secrets, inbound events' payloads.
    Column {
        org_id: String,
        table: &'static str,
        column: &'static str,
        id: String,
        /// The object its associated data names (`inbound:…`, `event:…`).
        object: String,
        field: &'static str,
        ciphertext: Vec<u8>,
    },
}

/// The sealed columns [`CiphertextRef::Column`] covers: table, column, whether rows are
/// soft-deleted, the object prefix and field of their associated data.
const COLUMNS: &[(&str, &str, bool, &str, &str)] = &[
    ("inbound_endpoints", "secret", true, "inbound", "secret"),
    ("inbound_events", "payload", false, "event", "payload"),
];

impl Store {
    pub async fn vault_keys(&self) -> Result<Vec<VaultKeyRow>> {
        sqlx::query("SELECT version, wrapped, root_fingerprint, created_at FROM vault_keys ORDER BY version")
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(|r| {
                Ok(VaultKeyRow {
                    version: r.try_get("version")?,
                    wrapped: r.try_get("wrapped")?,
                    root_fingerprint: r.try_get("root_fingerprint")?,
                    created_at: time(r, "created_at")?,
                })
            })
            .collect()
    }

    /// How many live ciphertexts each key version still seals.
    pub async fn ciphertexts_by_version(&self) -> Result<Vec<(i64, i64)>> {
        sqlx::query(
            "SELECT key_version, COUNT(*) AS n FROM ( \
               SELECT key_version FROM connection_secrets WHERE key_version IS NOT NULL \
               UNION ALL SELECT key_version FROM secrets WHERE deleted_at IS NULL \
               UNION ALL SELECT key_version FROM oauth_apps WHERE key_version IS NOT NULL AND deleted_at IS NULL \
               UNION ALL SELECT key_version FROM deliveries \
               UNION ALL SELECT key_version FROM inbound_endpoints WHERE deleted_at IS NULL \
               UNION ALL SELECT key_version FROM inbound_events \
             ) t GROUP BY key_version ORDER BY key_version",
        )
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("key_version")?, r.try_get("n")?)))
        .collect()
    }

    /// Up to `limit` ciphertexts sealed with a version other than `current`.
    pub async fn stale_ciphertexts(&self, current: i64, limit: i64) -> Result<Vec<CiphertextRef>> {
        let mut out = Vec::new();
        for r in sqlx::query(
            "SELECT c.org_id, s.connection_id, s.field, s.ciphertext FROM connection_secrets s \
             JOIN connections c ON c.id = s.connection_id \
             WHERE s.key_version IS NOT NULL AND s.key_version <> $1 LIMIT $2",
        )
        .bind(current)
        .bind(limit)
        .fetch_all(&self.read)
        .await?
        {
            out.push(CiphertextRef::Connection {
                org_id: r.try_get("org_id")?,
                connection_id: r.try_get("connection_id")?,
                field: r.try_get("field")?,
                ciphertext: r.try_get("ciphertext")?,
            });
        }
        let rest = limit - out.len() as i64;
        if rest > 0 {
            for r in sqlx::query(
                "SELECT org_id, id, ciphertext FROM secrets \
                 WHERE deleted_at IS NULL AND key_version <> $1 LIMIT $2",
            )
            .bind(current)
            .bind(rest)
            .fetch_all(&self.read)
            .await?
            {
                out.push(CiphertextRef::Secret {
                    org_id: r.try_get("org_id")?,
                    secret_id: r.try_get("id")?,
                    ciphertext: r.try_get("ciphertext")?,
                });
            }
        }
        let rest = limit - out.len() as i64;
        if rest > 0 {
            for r in sqlx::query(
                "SELECT org_id, id, client_secret FROM oauth_apps \
                 WHERE deleted_at IS NULL AND key_version IS NOT NULL AND key_version <> $1 LIMIT $2",
            )
            .bind(current)
            .bind(rest)
            .fetch_all(&self.read)
            .await?
            {
                out.push(CiphertextRef::App {
                    org_id: r.try_get("org_id")?,
                    app_id: r.try_get("id")?,
                    ciphertext: r.try_get("client_secret")?,
                });
            }
        }
        let rest = limit - out.len() as i64;
        if rest > 0 {
            for r in sqlx::query(
                "SELECT org_id, id, payload FROM deliveries WHERE key_version <> $1 LIMIT $2",
            )
            .bind(current)
            .bind(rest)
            .fetch_all(&self.read)
            .await?
            {
                out.push(CiphertextRef::Delivery {
                    org_id: r.try_get("org_id")?,
                    delivery_id: r.try_get("id")?,
                    ciphertext: r.try_get("payload")?,
                });
            }
        }
        for (table, column, soft, prefix, field) in COLUMNS {
            let rest = limit - out.len() as i64;
            if rest <= 0 {
                break;
            }
            let live = if *soft { " AND deleted_at IS NULL" } else { "" };
            for r in sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT org_id, id, {column} AS sealed FROM {table} WHERE key_version <> $1{live} LIMIT $2"
            )))
            .bind(current)
            .bind(rest)
            .fetch_all(&self.read)
            .await?
            {
                let id: String = r.try_get("id")?;
                out.push(CiphertextRef::Column {
                    org_id: r.try_get("org_id")?,
                    table,
                    column,
                    object: format!("{prefix}:{id}"),
                    id,
                    field,
                    ciphertext: r.try_get("sealed")?,
                });
            }
        }
        Ok(out)
    }
}

impl Store {
    /// Adds the first data key of a new store, on its own.
    pub async fn add_vault_key(&self, k: &VaultKeyRow) -> Result<()> {
        let mut tx = self.begin().await?;
        tx.insert_vault_key(k).await?;
        tx.commit().await
    }
}

impl Tx {
    pub async fn insert_vault_key(&mut self, k: &VaultKeyRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO vault_keys (version, wrapped, root_fingerprint, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(k.version)
        .bind(k.wrapped.clone())
        .bind(k.root_fingerprint.clone())
        .bind(ms(k.created_at))
        .execute(&mut *self.inner)
        .await?;
        Ok(())
    }

    /// Swaps one ciphertext for its re-encryption, only if it is still the one that was read
    /// (a concurrent edit wins; the next pass picks the row up again if needed).
    pub async fn replace_ciphertext(
        &mut self,
        target: &CiphertextRef,
        new_ciphertext: Vec<u8>,
        new_version: i64,
    ) -> Result<bool> {
        let res = match target {
            CiphertextRef::Connection {
                connection_id,
                field,
                ciphertext,
                ..
            } => {
                sqlx::query(
                    "UPDATE connection_secrets SET ciphertext = $1, key_version = $2 \
                     WHERE connection_id = $3 AND field = $4 AND ciphertext = $5",
                )
                .bind(new_ciphertext)
                .bind(new_version)
                .bind(connection_id.clone())
                .bind(field.clone())
                .bind(ciphertext.clone())
                .execute(&mut *self.inner)
                .await?
            }
            CiphertextRef::Secret {
                secret_id,
                ciphertext,
                ..
            } => {
                sqlx::query(
                    "UPDATE secrets SET ciphertext = $1, key_version = $2 WHERE id = $3 AND ciphertext = $4",
                )
                .bind(new_ciphertext)
                .bind(new_version)
                .bind(secret_id.clone())
                .bind(ciphertext.clone())
                .execute(&mut *self.inner)
                .await?
            }
            CiphertextRef::App {
                app_id, ciphertext, ..
            } => {
                sqlx::query(
                    "UPDATE oauth_apps SET client_secret = $1, key_version = $2 WHERE id = $3 AND client_secret = $4",
                )
                .bind(new_ciphertext)
                .bind(new_version)
                .bind(app_id.clone())
                .bind(ciphertext.clone())
                .execute(&mut *self.inner)
                .await?
            }
            CiphertextRef::Delivery {
                delivery_id,
                ciphertext,
                ..
            } => {
                sqlx::query(
                    "UPDATE deliveries SET payload = $1, key_version = $2 WHERE id = $3 AND payload = $4",
                )
                .bind(new_ciphertext)
                .bind(new_version)
                .bind(delivery_id.clone())
                .bind(ciphertext.clone())
                .execute(&mut *self.inner)
                .await?
            }
            CiphertextRef::Column {
                table,
                column,
                id,
                ciphertext,
                ..
            } => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE {table} SET {column} = $1, key_version = $2 WHERE id = $3 AND {column} = $4"
                )))
                .bind(new_ciphertext)
                .bind(new_version)
                .bind(id.clone())
                .bind(ciphertext.clone())
                .execute(&mut *self.inner)
                .await?
            }
        };
        Ok(res.rows_affected() == 1)
    }
}
