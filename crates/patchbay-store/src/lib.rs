//! The store: every durable row of Patchbay, on SQLite (the embedded default, WAL) or PostgreSQL
//! (`postgres://…`), through one set of queries over sqlx's `Any` driver.
//!
//! Both dialects keep times as Unix milliseconds, JSON as text and flags as 0/1 integers, so a
//! query written once runs on both; the few statements that differ (locks) ask [`Dialect`].
//! Writes go through [`Tx`]: on SQLite a single writer connection serialises them, which keeps
//! the audit hash chain linear without locks; on PostgreSQL an advisory lock per organization
//! does the same. This crate stores ciphertext and never sees a plaintext secret.

mod apps;
mod audit;
mod connections;
mod deliveries;
mod inbound;
mod keys;
mod leases;
mod mcp_sessions;
mod migrations;
mod notify;
mod orgs;
mod pool;
mod secrets;
mod states;
mod tokens;
mod util;
mod web_sessions;

pub use apps::AppRecord;
pub use audit::{AuditFilter, AuditRecord, ChainHeads, GROUP_MAX, NewAudit};
pub use connections::{ConnectionFilter, ConnectionRecord, Held, NewConnection, SecretRow};
pub use deliveries::{Completion, DeliveryRecord};
pub use inbound::{EventRecord, InboundRecord};
pub use keys::{CiphertextRef, VaultKeyRow};
pub use mcp_sessions::McpSessionRecord;
pub use notify::{CHANNEL, Heard, Subscription};
pub use orgs::{OrgRecord, ProjectRecord};
pub use pool::{Dialect, Store, Tx};
pub use secrets::SecretRecord;
pub use states::StateRecord;
pub use tokens::{NewToken, TokenRecord};
pub use web_sessions::WebSessionRecord;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write (a name already taken).
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("not found")]
    NotFound,
    /// The row changed since the caller read it (optimistic concurrency).
    #[error("version mismatch")]
    VersionMismatch,
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL: {0}")]
    UnsupportedUrl(String),
}

impl From<sqlx::Error> for StoreError {
    /// The one place unique-constraint violations become [`StoreError::Conflict`].
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(db.message().to_owned())
            }
            _ => StoreError::Database(e),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
