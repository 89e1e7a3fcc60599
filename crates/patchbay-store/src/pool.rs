//! Opening the database, migrations, and the write transaction type.

use std::path::Path;
use std::str::FromStr;
use std::sync::Once;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

use crate::{Result, StoreError};

/// Which SQL dialect the store speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// Handle to the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) read: AnyPool,
    pub(crate) write: AnyPool,
    pub(crate) dialect: Dialect,
    /// PostgreSQL's URL, for the invalidation listener's connection of its own.
    pub(crate) url: Option<String>,
}

/// A write transaction. Dropping it without [`Tx::commit`] rolls back.
#[derive(Debug)]
pub struct Tx {
    pub(crate) inner: sqlx::Transaction<'static, sqlx::Any>,
    pub(crate) dialect: Dialect,
}

static DRIVERS: Once = Once::new();

impl Store {
    /// Opens (and migrates) the database behind `url`: `sqlite://path` or `postgres://…`.
    pub async fn open(url: &str) -> Result<Self> {
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let store = if url.starts_with("sqlite:") {
            Self::open_sqlite(url).await?
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Self::open_postgres(url).await?
        } else {
            let scheme = url.split(':').next().unwrap_or_default();
            return Err(StoreError::UnsupportedUrl(format!(
                "scheme {scheme:?}; use sqlite://PATH or postgres://…"
            )));
        };
        store.migrate().await?;
        Ok(store)
    }

    /// The SQLite URL for a database file in `dir`.
    pub fn sqlite_url(path: &Path) -> String {
        format!("sqlite://{}?mode=rwc", path.display())
    }

    async fn open_sqlite(url: &str) -> Result<Self> {
        let options = AnyConnectOptions::from_str(url)?;
        // One writer connection serialises writes (no SQLITE_BUSY between writers, a linear
        // audit chain); readers never block it under WAL.
        let write = AnyPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute(
                        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; \
                         PRAGMA foreign_keys=ON; PRAGMA busy_timeout=10000;",
                    )
                    .await?;
                    Ok(())
                })
            })
            .connect_with(options.clone())
            .await?;
        // Create the file and switch it to WAL before readers open it.
        write.acquire().await?;
        let read = AnyPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute(
                        "PRAGMA busy_timeout=10000; PRAGMA foreign_keys=ON; PRAGMA query_only=ON;",
                    )
                    .await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(Self {
            read,
            write,
            dialect: Dialect::Sqlite,
            url: None,
        })
    }

    async fn open_postgres(url: &str) -> Result<Self> {
        let pool = AnyPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(30))
            .connect(url)
            .await?;
        Ok(Self {
            read: pool.clone(),
            write: pool,
            dialect: Dialect::Postgres,
            url: Some(url.to_owned()),
        })
    }

    async fn migrate(&self) -> Result<()> {
        match self.dialect {
            Dialect::Sqlite => {
                crate::migrations::migrator(crate::migrations::SQLITE)
                    .run(&self.write)
                    .await?
            }
            Dialect::Postgres => {
                crate::migrations::migrator(crate::migrations::POSTGRES)
                    .run(&self.write)
                    .await?
            }
        }
        Ok(())
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Starts a write transaction.
    pub async fn begin(&self) -> Result<Tx> {
        Ok(Tx {
            inner: self.write.begin().await?,
            dialect: self.dialect,
        })
    }

    /// Whether the database answers, for `/readyz`.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }
}

impl Tx {
    /// What a read inside this transaction appends to lock the rows it reads: `FOR UPDATE` on
    /// PostgreSQL; nothing on SQLite, whose write transaction already excludes other writers.
    pub(crate) fn for_update(&self) -> &'static str {
        if self.dialect == Dialect::Postgres {
            " FOR UPDATE"
        } else {
            ""
        }
    }

    pub async fn commit(self) -> Result<()> {
        self.inner.commit().await?;
        Ok(())
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }
}
