//! Database connection test: `SELECT 1` on PostgreSQL, MySQL/MariaDB and SQLite.
//!
//! Network databases are reached at an address the gate checked (the host is resolved once and
//! pinned), so TLS verifies the certificate chain rather than the host name. SQLite files must
//! lie under a directory the operator allows and never under Patchbay's own data directory,
//! judged after `..` and symbolic links are resolved.

use std::path::PathBuf;
use std::time::Duration;

use patchbay_domain::api::ErrorKind;
use patchbay_domain::spec::{ConnectionSpec, DatabaseConfig, DatabaseDriver};
use secrecy::ExposeSecret;
use sqlx::Connection as _;

use crate::{Connectors, Material, Outcome};

pub(crate) async fn test(
    c: &Connectors,
    m: &Material,
    config: &DatabaseConfig,
    timeout: Duration,
) -> Outcome {
    match config.driver {
        DatabaseDriver::Postgresql | DatabaseDriver::Mysql => network(c, m, timeout).await,
        DatabaseDriver::Sqlite => sqlite(c, m).await,
        DatabaseDriver::Mssql => mssql(c, m, config, timeout).await,
    }
}

/// The database configuration of `m`.
pub(crate) fn config_of(m: &Material) -> Result<&DatabaseConfig, Outcome> {
    match &m.spec {
        ConnectionSpec::Database(c) => Ok(c),
        _ => Err(Outcome::fail(
            ErrorKind::Protocol,
            "not a database connection",
        )),
    }
}

#[derive(Clone, Copy)]
enum Driver {
    Postgres,
    Mysql,
}

/// An open connection to a network database.
pub(crate) enum NetworkConn {
    Postgres(sqlx::PgConnection),
    Mysql(sqlx::MySqlConnection),
}

/// Connects to a PostgreSQL or MySQL connection at an address the gate checked, trying the
/// next address only when one refuses.
pub(crate) async fn connect_network(
    c: &Connectors,
    m: &Material,
    timeout: Duration,
) -> Result<NetworkConn, Outcome> {
    let config = config_of(m)?;
    let driver = match config.driver {
        DatabaseDriver::Postgresql => Driver::Postgres,
        DatabaseDriver::Mysql => Driver::Mysql,
        _ => {
            return Err(Outcome::fail(
                ErrorKind::Protocol,
                "config.driver is not a network database",
            ));
        }
    };
    let port = config.port();
    let addrs = c.endpoint(config.host(), port).await?;
    let user = config.username.as_deref().unwrap_or_default();
    let password = m
        .secret("password")
        .map(|s| s.expose_secret())
        .unwrap_or("");
    let database = config.database.as_str();
    let ssl = config.ssl();
    let ca = config.ssl_ca.as_ref().map(|s| s.as_bytes().to_vec());
    let mut last = Outcome::fail(ErrorKind::Refused, "no address to connect to");
    for addr in addrs {
        let ip = addr.ip().to_string();
        let attempt = async {
            match driver {
                Driver::Postgres => {
                    use sqlx::postgres::{PgConnectOptions, PgSslMode};
                    let mut o = PgConnectOptions::new()
                        .host(&ip)
                        .port(port)
                        .username(user)
                        .database(database)
                        .ssl_mode(if ssl {
                            PgSslMode::VerifyCa
                        } else {
                            PgSslMode::Disable
                        });
                    // An account without a password is sent none (an empty one is a password).
                    if !password.is_empty() {
                        o = o.password(password);
                    }
                    if let Some(ca) = &ca {
                        o = o.ssl_root_cert_from_pem(ca.clone());
                    }
                    sqlx::PgConnection::connect_with(&o)
                        .await
                        .map(NetworkConn::Postgres)
                }
                Driver::Mysql => {
                    use sqlx::mysql::{MySqlConnectOptions, MySqlSslMode};
                    let mut o = MySqlConnectOptions::new()
                        .host(&ip)
                        .port(port)
                        .username(user)
                        .database(database)
                        .ssl_mode(if ssl {
                            MySqlSslMode::VerifyCa
                        } else {
                            MySqlSslMode::Disabled
                        });
                    if !password.is_empty() {
                        o = o.password(password);
                    }
                    if let Some(ca) = &ca {
                        o = o.ssl_ca_from_pem(ca.clone());
                    }
                    sqlx::MySqlConnection::connect_with(&o)
                        .await
                        .map(NetworkConn::Mysql)
                }
            }
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(Ok(conn)) => return Ok(conn),
            Ok(Err(e)) => {
                last = classify(&e);
                // Only a refused address is worth trying the next one for.
                if last.kind != Some(ErrorKind::Refused) {
                    return Err(last);
                }
            }
            Err(_) => {
                return Err(Outcome::fail(
                    ErrorKind::Timeout,
                    format!("no answer within {} ms", timeout.as_millis()),
                ));
            }
        }
    }
    Err(last)
}

async fn network(c: &Connectors, m: &Material, timeout: Duration) -> Outcome {
    let conn = match connect_network(c, m, timeout).await {
        Ok(conn) => conn,
        Err(o) => return o,
    };
    let run = async {
        match conn {
            NetworkConn::Postgres(mut pg) => {
                sqlx::query("SELECT 1").execute(&mut pg).await?;
                pg.close().await
            }
            NetworkConn::Mysql(mut my) => {
                sqlx::query("SELECT 1").execute(&mut my).await?;
                my.close().await
            }
        }
    };
    match tokio::time::timeout(timeout, run).await {
        Ok(Ok(())) => Outcome::ok("Connected (SELECT 1)"),
        Ok(Err(e)) => classify(&e),
        Err(_) => Outcome::fail(
            ErrorKind::Timeout,
            format!("no answer within {} ms", timeout.as_millis()),
        ),
    }
}

/// SQL Server over TDS (tiberius): connect to the checked address; TLS verifies the configured
/// host name.
async fn mssql(c: &Connectors, m: &Material, db: &DatabaseConfig, timeout: Duration) -> Outcome {
    use tiberius::{AuthMethod, Config, EncryptionLevel};
    use tokio_util::compat::TokioAsyncWriteCompatExt;
    let host = db.host();
    let port = db.port();
    let addr = match c.endpoint(host, port).await {
        Ok(addrs) => addrs[0],
        Err(o) => return o,
    };
    let mut config = Config::new();
    config.host(addr.ip());
    config.port(port);
    config.database(&db.database);
    let user = db.username.as_deref().unwrap_or_default();
    let password = m
        .secret("password")
        .map(|s| s.expose_secret())
        .unwrap_or("");
    config.authentication(AuthMethod::sql_server(user, password));
    if db.ssl() {
        config.encryption(EncryptionLevel::Required);
        config.hostname_in_certificate(host.trim_matches(['[', ']']));
        if let Some(ca) = &db.ssl_ca {
            config.trust_cert_ca_bundle(ca.as_bytes().to_vec());
        }
    } else {
        config.encryption(EncryptionLevel::NotSupported);
    }
    let attempt = async {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(tiberius::error::Error::from)?;
        tcp.set_nodelay(true)
            .map_err(tiberius::error::Error::from)?;
        let mut client = tiberius::Client::connect(config, tcp.compat_write()).await?;
        client
            .simple_query("SELECT 1")
            .await?
            .into_results()
            .await?;
        client.close().await
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(())) => Outcome::ok("Connected (SELECT 1)"),
        Ok(Err(e)) => classify_mssql(&e),
        Err(_) => Outcome::fail(
            ErrorKind::Timeout,
            format!("no answer within {} ms", timeout.as_millis()),
        ),
    }
}

fn classify_mssql(e: &tiberius::error::Error) -> Outcome {
    use tiberius::error::Error as E;
    match e {
        // 18456: login failed for the user.
        E::Server(t) if t.code() == 18456 => Outcome::fail(
            ErrorKind::Auth,
            format!("Authentication failed: {}", t.message()),
        ),
        E::Server(t) => Outcome::fail(ErrorKind::Protocol, t.message().to_owned()),
        E::Io { kind, message } => match kind {
            std::io::ErrorKind::TimedOut => Outcome::fail(ErrorKind::Timeout, message.clone()),
            std::io::ErrorKind::ConnectionRefused => {
                Outcome::fail(ErrorKind::Refused, message.clone())
            }
            _ => Outcome::fail(ErrorKind::Protocol, message.clone()),
        },
        E::Tls(m) => Outcome::fail(ErrorKind::Tls, m.clone()),
        other => Outcome::fail(ErrorKind::Protocol, other.to_string()),
    }
}

/// Sorts sqlx errors; messages come from the server or the driver and carry no password.
pub(crate) fn classify(e: &sqlx::Error) -> Outcome {
    match e {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.to_string()).unwrap_or_default();
            let kind = match code.as_str() {
                // PostgreSQL invalid_password / invalid_authorization_specification; MySQL's
                // access denied reports SQLSTATE 28000.
                "28P01" | "28000" => ErrorKind::Auth,
                _ => ErrorKind::Protocol,
            };
            let message = if kind == ErrorKind::Auth {
                format!("Authentication failed: {}", db.message())
            } else {
                db.message().to_owned()
            };
            Outcome::fail(kind, message)
        }
        sqlx::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::TimedOut => Outcome::fail(ErrorKind::Timeout, io.to_string()),
            _ => Outcome::fail(ErrorKind::Refused, io.to_string()),
        },
        sqlx::Error::Tls(t) => Outcome::fail(ErrorKind::Tls, t.to_string()),
        sqlx::Error::PoolTimedOut => Outcome::fail(ErrorKind::Timeout, "timed out"),
        other => Outcome::fail(ErrorKind::Protocol, other.to_string()),
    }
}

/// Resolves `..` and links, then requires the file to sit under an allowed directory and
/// outside every protected one.
pub(crate) fn allowed_sqlite_path(
    raw: &str,
    allow: &[PathBuf],
    protected: &[PathBuf],
) -> Result<PathBuf, Outcome> {
    crate::files::path_under(raw, allow, protected).map_err(|refusal| {
        use crate::files::Refusal;
        match refusal {
            Refusal::NotAbsolute => Outcome::fail(
                ErrorKind::Blocked,
                "config.database must be an absolute path",
            ),
            Refusal::NoneAllowed => Outcome::fail(
                ErrorKind::Blocked,
                "SQLite files are not allowed here (the operator allows directories with --allow-sqlite-dir)",
            ),
            Refusal::Unreadable(kind) => {
                Outcome::fail(ErrorKind::Protocol, format!("cannot open {raw}: {kind}"))
            }
            Refusal::Protected => Outcome::fail(
                ErrorKind::Blocked,
                "the file lies in Patchbay's own data directory",
            ),
            Refusal::Outside => Outcome::fail(
                ErrorKind::Blocked,
                "the file is outside the directories the operator allows",
            ),
        }
    })
}

/// A SQLite connection's file, once it is shown to lie under an allowed directory.
pub(crate) fn allowed_sqlite_file(c: &Connectors, m: &Material) -> Result<PathBuf, Outcome> {
    allowed_sqlite_path(
        &config_of(m)?.database,
        &c.settings.allow_sqlite_dirs,
        &c.settings.protected_dirs,
    )
}

async fn sqlite(c: &Connectors, m: &Material) -> Outcome {
    let path = match allowed_sqlite_file(c, m) {
        Ok(p) => p,
        Err(o) => return o,
    };
    match crate::sql::probe_sqlite(path).await {
        Ok(()) => Outcome::ok("Opened (SELECT 1)"),
        Err(message) => Outcome::fail(ErrorKind::Protocol, message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths_must_stay_inside_allowed_directories() {
        let root = tempfile::tempdir().unwrap();
        let allowed = root.path().join("allowed");
        let data = root.path().join("data");
        std::fs::create_dir_all(&allowed).unwrap();
        std::fs::create_dir_all(&data).unwrap();
        let ok = allowed.join("app.db");
        std::fs::write(&ok, b"").unwrap();
        std::fs::write(data.join("patchbay.db"), b"").unwrap();
        std::fs::write(root.path().join("outside.db"), b"").unwrap();
        let allow = vec![allowed.clone()];
        let protected = vec![data.clone()];
        assert!(allowed_sqlite_path(ok.to_str().unwrap(), &allow, &protected).is_ok());
        let escape = allowed.join("../outside.db");
        assert_eq!(
            allowed_sqlite_path(escape.to_str().unwrap(), &allow, &protected)
                .unwrap_err()
                .kind,
            Some(ErrorKind::Blocked)
        );
        std::os::unix::fs::symlink(data.join("patchbay.db"), allowed.join("link.db")).unwrap();
        let link = allowed.join("link.db");
        assert_eq!(
            allowed_sqlite_path(link.to_str().unwrap(), &allow, &protected)
                .unwrap_err()
                .kind,
            Some(ErrorKind::Blocked)
        );
        // The data directory stays closed even when the operator allows its parent.
        let wide = vec![root.path().to_path_buf()];
        let own = data.join("patchbay.db");
        assert_eq!(
            allowed_sqlite_path(own.to_str().unwrap(), &wide, &protected)
                .unwrap_err()
                .kind,
            Some(ErrorKind::Blocked)
        );
        assert_eq!(
            allowed_sqlite_path("relative.db", &allow, &protected)
                .unwrap_err()
                .kind,
            Some(ErrorKind::Blocked)
        );
        assert_eq!(
            allowed_sqlite_path(ok.to_str().unwrap(), &[], &protected)
                .unwrap_err()
                .kind,
            Some(ErrorKind::Blocked)
        );
    }
}
