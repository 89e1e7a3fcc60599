//! The schema migrations, compiled into the binary without sqlx's macros (whose build compiles
//! every database driver and TLS stack a second time for the host). Each file name is listed
//! once here, for both dialects; a test holds the list to the directory and each migration to what sqlx's own resolver
//! reads from the file (version, description, checksum), so databases migrated by earlier
//! builds stay valid.

use std::borrow::Cow;

use sqlx::migrate::{Migration, MigrationType, Migrator};

/// The two dialects' migrations: the same files, in order, under `migrations/sqlite` and
/// `migrations/postgres`.
macro_rules! embedded {
    ($($file:literal),+ $(,)?) => {
        /// `(file name, SQL)` of each SQLite migration, in order.
        pub(crate) const SQLITE: &[(&str, &str)] =
            &[$(($file, include_str!(concat!("../migrations/sqlite/", $file)))),+];
        /// `(file name, SQL)` of each PostgreSQL migration, in order.
        pub(crate) const POSTGRES: &[(&str, &str)] =
            &[$(($file, include_str!(concat!("../migrations/postgres/", $file)))),+];
    };
}

embedded![
    "0001_init.sql",
    "0002_oauth_expiry.sql",
    "0003_oauth_apps.sql",
    "0004_oauth_states.sql",
    "0005_deliveries.sql",
    "0006_secret_projects.sql",
    "0007_leases.sql",
    "0008_rotations.sql",
    "0009_mcp_sessions.sql",
    "0010_web_sessions.sql",
    "0011_oauth_state_browser.sql",
    "0012_inbound.sql",
];

/// `0007_leases.sql` → version 7, description "leases" (sqlx's naming rule).
fn migration(file: &str, sql: &'static str) -> Migration {
    let (version, rest) = file
        .split_once('_')
        .unwrap_or_else(|| unreachable!("{file}: migrations are named NNNN_description.sql"));
    let version: i64 = version
        .parse()
        .unwrap_or_else(|_| unreachable!("{file}: the version is a number"));
    let description = rest.trim_end_matches(".sql").replace('_', " ");
    Migration::new(
        version,
        Cow::Owned(description),
        MigrationType::Simple,
        sqlx::SqlStr::from_static(sql),
        sql.starts_with("-- no-transaction"),
    )
}

/// The migrator of one dialect's files.
pub(crate) fn migrator(files: &[(&str, &'static str)]) -> Migrator {
    Migrator {
        migrations: Cow::Owned(files.iter().map(|(f, sql)| migration(f, sql)).collect()),
        ..Migrator::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_embedded_migrations_are_the_directories_as_sqlx_reads_them() {
        for (dir, files) in [("sqlite", SQLITE), ("postgres", POSTGRES)] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("migrations")
                .join(dir);
            let mut on_disk: Vec<String> = std::fs::read_dir(&path)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".sql"))
                .collect();
            on_disk.sort();
            let listed: Vec<String> = files.iter().map(|(f, _)| (*f).to_owned()).collect();
            assert_eq!(listed, on_disk, "{dir}: every file is listed, in order");
            let resolved = Migrator::new(path.as_path()).await.unwrap();
            let ours = migrator(files);
            assert_eq!(ours.migrations.len(), resolved.migrations.len());
            for (a, b) in ours.migrations.iter().zip(resolved.migrations.iter()) {
                assert_eq!(
                    (a.version, &a.description, &a.checksum, a.no_tx),
                    (b.version, &b.description, &b.checksum, b.no_tx),
                    "{dir}: migration {}",
                    a.version
                );
            }
        }
    }
}
