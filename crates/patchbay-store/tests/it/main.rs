//! The storage conformance suite: every store operation, run on SQLite and on PostgreSQL
//! (`PATCHBAY_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`).

#![allow(clippy::unwrap_used)]

mod conformance;

use patchbay_store::Store;
use sqlx::{Connection as _, Executor as _};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A migrated, empty store (and the directory keeping a SQLite file alive).
pub async fn fresh(backend: Backend) -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = match backend {
        Backend::Sqlite => Store::sqlite_url(&dir.path().join("store.db")),
        Backend::Postgres => {
            let admin = std::env::var("PATCHBAY_TEST_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
            let name = format!(
                "pbtest_{}",
                ulid::Ulid::new().to_string().to_ascii_lowercase()
            );
            let mut conn = sqlx::PgConnection::connect(&admin)
                .await
                .expect("PostgreSQL is needed");
            conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .await
                .unwrap();
            let (base, _) = admin.rsplit_once('/').unwrap();
            format!("{base}/{name}")
        }
    };
    (Store::open(&url).await.unwrap(), dir)
}

#[macro_export]
macro_rules! conformance {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    super::$name($crate::Backend::Sqlite).await
                }
                #[tokio::test]
                async fn postgres() {
                    super::$name($crate::Backend::Postgres).await
                }
            }
        )+
    };
}
