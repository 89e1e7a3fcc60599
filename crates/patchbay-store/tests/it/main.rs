//! The storage conformance suite: every store operation, run on SQLite and on PostgreSQL
//! (`PATCHBAY_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`).

#![allow(clippy::unwrap_used)]

mod conformance;

use patchbay_store::Store;

pub use patchbay_testkit::Backend;
use patchbay_testkit::TestDatabase;

/// A migrated, empty store, and what keeps its database (a SQLite file's directory, or a
/// PostgreSQL database dropped when the test ends).
pub async fn fresh(backend: Backend) -> (Store, (TestDatabase, tempfile::TempDir)) {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::create(backend, dir.path()).await;
    let url = match backend {
        Backend::Sqlite => Store::sqlite_url(&dir.path().join("store.db")),
        Backend::Postgres => db.url.clone(),
    };
    (Store::open(&url).await.unwrap(), (db, dir))
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
