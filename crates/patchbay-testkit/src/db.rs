//! A database per test: a SQLite file in a temporary directory, or a PostgreSQL database of
//! its own (`PATCHBAY_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`)
//! that is dropped — with its connections — when the test ends, passed or failed.

use sqlx::{Connection as _, Executor as _};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server's administrative URL the test databases are made through.
pub fn postgres_admin_url() -> String {
    std::env::var("PATCHBAY_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// One test's database; dropping it drops a PostgreSQL database.
#[derive(Debug)]
pub struct TestDatabase {
    pub url: String,
    pub backend: Backend,
    /// The PostgreSQL database's name.
    name: Option<String>,
}

impl TestDatabase {
    /// A fresh, empty database for `backend`; a SQLite file goes in `dir`.
    pub async fn create(backend: Backend, dir: &std::path::Path) -> Self {
        match backend {
            Backend::Sqlite => Self {
                url: format!("sqlite://{}?mode=rwc", dir.join("patchbay.db").display()),
                backend,
                name: None,
            },
            Backend::Postgres => {
                let admin = postgres_admin_url();
                let name = format!(
                    "pbtest_{}",
                    ulid::Ulid::new().to_string().to_ascii_lowercase()
                );
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .unwrap_or_else(|e| {
                        panic!("PostgreSQL is needed for this test ({admin}): {e}")
                    });
                conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .await
                    .expect("create database");
                let mut url = url::Url::parse(&admin).expect("admin url");
                url.set_path(&format!("/{name}"));
                Self {
                    url: url.to_string(),
                    backend,
                    name: Some(name),
                }
            }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(name) = self.name.take() else {
            return;
        };
        // A runtime of its own: the test's may be the one shutting down.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&postgres_admin_url()).await?;
                conn.execute(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .await
                .map(|_| ())
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("the test database was not dropped: {e}");
        }
    }
}
