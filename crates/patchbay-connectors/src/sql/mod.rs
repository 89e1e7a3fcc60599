//! SQL actions: one parameterized statement on PostgreSQL, MySQL/MariaDB or SQLite. Values
//! travel only as bound parameters. `read_only` is the database's own rule for the session
//! (`SET TRANSACTION READ ONLY`; on MySQL and MariaDB a read-only session and transaction behind
//! a statement classification, see [`readonly`]; SQLite in its sandbox, see [`sqlite`]). A
//! statement has a deadline that stops the work, not only the wait: the server's own statement
//! timeout, and past it the statement is cancelled on the server (`pg_cancel_backend`, `KILL
//! QUERY`) from a second connection, whatever the statement said about its own timeout. Rows
//! come back as JSON objects with the columns' types.

mod readonly;
mod sqlite;

use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use futures::TryStreamExt;
use patchbay_domain::actions::{Column as OutColumn, SqlActionResult};
use patchbay_domain::spec::DatabaseDriver;
use serde_json::{Map, Value, json};
use sqlx::{Column, Either, Row, TypeInfo, ValueRef};

use crate::database::{NetworkConn, allowed_sqlite_file, connect_network};
use crate::{Connectors, Material, Outcome};

pub(crate) use sqlite::probe as probe_sqlite;

/// One statement to run.
#[derive(Debug, Clone)]
pub struct SqlStatement {
    pub query: String,
    pub params: Vec<Value>,
    pub max_rows: usize,
    pub read_only: bool,
    pub timeout: Duration,
}

/// How long past its deadline a statement is given for the server's own timeout to answer
/// before it is cancelled from outside.
const CANCEL_GRACE: Duration = Duration::from_millis(200);

/// Why a statement did not run: the connection (refused, auth, blocked, timeout) or the
/// statement itself (the database's message).
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    #[error("{message}")]
    Connection {
        kind: patchbay_domain::api::ErrorKind,
        message: String,
    },
    #[error("{0}")]
    Statement(String),
    #[error("the statement did not finish within {0} ms")]
    Timeout(u128),
    /// The server cancelled the statement at its timeout.
    #[error("the database stopped the statement at its timeout: {0}")]
    ServerTimeout(String),
    #[error("{0}")]
    Unsupported(String),
    /// The statement may not run as asked (read_only refuses its kind); nothing was sent.
    #[error("{0}")]
    Refused(String),
}

impl From<Outcome> for SqlError {
    fn from(o: Outcome) -> Self {
        SqlError::Connection {
            kind: o.kind.unwrap_or(patchbay_domain::api::ErrorKind::Protocol),
            message: o.message,
        }
    }
}

fn statement_error(e: sqlx::Error) -> SqlError {
    match e {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            let message = db.message().to_owned();
            // PostgreSQL query_canceled; MariaDB's and MySQL's statement-time limits.
            if code == "57014"
                || code == "70100"
                || message.contains("max_statement_time")
                || message.contains("maximum statement execution time")
            {
                SqlError::ServerTimeout(message)
            } else {
                SqlError::Statement(message)
            }
        }
        sqlx::Error::ColumnDecode { index, source } => {
            SqlError::Statement(format!("column {index} cannot be read: {source}"))
        }
        other => SqlError::Statement(other.to_string()),
    }
}

macro_rules! bind_all {
    ($q:expr, $params:expr) => {{
        let mut q = $q;
        for p in $params {
            q = match p {
                Value::Null => q.bind(None::<String>),
                Value::Bool(b) => q.bind(*b),
                Value::Number(n) if n.is_i64() => q.bind(n.as_i64()),
                Value::Number(n) => q.bind(n.as_f64()),
                Value::String(s) => q.bind(s.clone()),
                other => q.bind(other.to_string()),
            };
        }
        q
    }};
}

/// Collects up to `max` rows (and whether more came) and the rows affected.
macro_rules! collect {
    ($conn:expr, $query:expr, $max:expr, $cell:ident) => {{
        let mut stream = sqlx::Executor::fetch_many($conn, $query);
        let mut rows = Vec::new();
        let mut columns: Vec<OutColumn> = Vec::new();
        let mut affected = 0u64;
        let mut truncated = false;
        while let Some(item) = stream.try_next().await.map_err(statement_error)? {
            match item {
                Either::Left(done) => affected += done.rows_affected(),
                Either::Right(row) => {
                    if columns.is_empty() {
                        columns = row
                            .columns()
                            .iter()
                            .map(|c| OutColumn {
                                name: c.name().to_owned(),
                                kind: c.type_info().name().to_owned(),
                            })
                            .collect();
                    }
                    if rows.len() == $max {
                        truncated = true;
                        break;
                    }
                    let mut obj = Map::new();
                    for (i, c) in row.columns().iter().enumerate() {
                        obj.insert(c.name().to_owned(), $cell(&row, i)?);
                    }
                    rows.push(obj);
                }
            }
        }
        drop(stream);
        Ok::<_, SqlError>((columns, rows, affected, truncated))
    }};
}

fn b64(bytes: &[u8]) -> Value {
    json!(base64::engine::general_purpose::STANDARD.encode(bytes))
}

fn pg_cell(row: &sqlx::postgres::PgRow, i: usize) -> Result<Value, SqlError> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
    let raw = row.try_get_raw(i).map_err(statement_error)?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let name = raw.type_info().name().to_owned();
    Ok(match name.as_str() {
        "BOOL" => json!(row.try_get::<bool, _>(i).map_err(statement_error)?),
        "INT2" => json!(row.try_get::<i16, _>(i).map_err(statement_error)?),
        "INT4" => json!(row.try_get::<i32, _>(i).map_err(statement_error)?),
        "INT8" => json!(row.try_get::<i64, _>(i).map_err(statement_error)?),
        "FLOAT4" => json!(row.try_get::<f32, _>(i).map_err(statement_error)?),
        "FLOAT8" => json!(row.try_get::<f64, _>(i).map_err(statement_error)?),
        "NUMERIC" => json!(
            row.try_get::<rust_decimal::Decimal, _>(i)
                .map_err(statement_error)?
                .to_string()
        ),
        "JSON" | "JSONB" => row.try_get::<Value, _>(i).map_err(statement_error)?,
        "UUID" => json!(
            row.try_get::<uuid::Uuid, _>(i)
                .map_err(statement_error)?
                .to_string()
        ),
        "TIMESTAMPTZ" => json!(
            row.try_get::<DateTime<Utc>, _>(i)
                .map_err(statement_error)?
        ),
        "TIMESTAMP" => json!(
            row.try_get::<NaiveDateTime, _>(i)
                .map_err(statement_error)?
        ),
        "DATE" => json!(row.try_get::<NaiveDate, _>(i).map_err(statement_error)?),
        "TIME" => json!(row.try_get::<NaiveTime, _>(i).map_err(statement_error)?),
        "BYTEA" => b64(&row.try_get::<Vec<u8>, _>(i).map_err(statement_error)?),
        "TEXT[]" | "VARCHAR[]" => json!(row.try_get::<Vec<String>, _>(i).map_err(statement_error)?),
        "INT4[]" => json!(row.try_get::<Vec<i32>, _>(i).map_err(statement_error)?),
        "INT8[]" => json!(row.try_get::<Vec<i64>, _>(i).map_err(statement_error)?),
        _ => match row.try_get::<String, _>(i) {
            Ok(s) => json!(s),
            Err(_) => {
                return Err(SqlError::Statement(format!(
                    "column {i} has type {name}, which cannot be returned as JSON; cast it to text"
                )));
            }
        },
    })
}

fn mysql_cell(row: &sqlx::mysql::MySqlRow, i: usize) -> Result<Value, SqlError> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
    let raw = row.try_get_raw(i).map_err(statement_error)?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let name = raw.type_info().name().to_owned();
    Ok(match name.as_str() {
        "BOOLEAN" => json!(row.try_get::<bool, _>(i).map_err(statement_error)?),
        "TINYINT" | "SMALLINT" | "MEDIUMINT" | "INT" | "BIGINT" => {
            json!(row.try_get::<i64, _>(i).map_err(statement_error)?)
        }
        "TINYINT UNSIGNED" | "SMALLINT UNSIGNED" | "MEDIUMINT UNSIGNED" | "INT UNSIGNED"
        | "BIGINT UNSIGNED" | "YEAR" => json!(row.try_get::<u64, _>(i).map_err(statement_error)?),
        "FLOAT" => json!(row.try_get::<f32, _>(i).map_err(statement_error)?),
        "DOUBLE" => json!(row.try_get::<f64, _>(i).map_err(statement_error)?),
        "DECIMAL" => json!(
            row.try_get::<rust_decimal::Decimal, _>(i)
                .map_err(statement_error)?
                .to_string()
        ),
        "JSON" => row.try_get::<Value, _>(i).map_err(statement_error)?,
        "TIMESTAMP" => json!(
            row.try_get::<DateTime<Utc>, _>(i)
                .map_err(statement_error)?
        ),
        "DATETIME" => json!(
            row.try_get::<NaiveDateTime, _>(i)
                .map_err(statement_error)?
        ),
        "DATE" => json!(row.try_get::<NaiveDate, _>(i).map_err(statement_error)?),
        "TIME" => json!(row.try_get::<NaiveTime, _>(i).map_err(statement_error)?),
        "BLOB" | "TINYBLOB" | "MEDIUMBLOB" | "LONGBLOB" | "BINARY" | "VARBINARY" | "BIT" => {
            b64(&row.try_get::<Vec<u8>, _>(i).map_err(statement_error)?)
        }
        _ => match row.try_get::<String, _>(i) {
            Ok(s) => json!(s),
            Err(_) => b64(&row
                .try_get_unchecked::<Vec<u8>, _>(i)
                .map_err(statement_error)?),
        },
    })
}

fn result(
    (columns, rows, affected, truncated): (Vec<OutColumn>, Vec<Map<String, Value>>, u64, bool),
) -> SqlActionResult {
    SqlActionResult {
        count: rows.len(),
        columns,
        rows,
        rows_affected: affected,
        truncated,
    }
}

impl Connectors {
    /// Runs one statement through a database connection.
    pub async fn run_sql(
        &self,
        m: &Material,
        s: SqlStatement,
    ) -> Result<SqlActionResult, SqlError> {
        let driver = crate::database::config_of(m)
            .map_err(|o| SqlError::Unsupported(o.message))?
            .driver;
        match driver {
            DatabaseDriver::Postgresql => self.run_postgres(m, &s).await,
            DatabaseDriver::Mysql => {
                if s.read_only
                    && let Some(why) = readonly::refusal(&s.query)
                {
                    return Err(SqlError::Refused(why));
                }
                self.run_mysql(m, &s).await
            }
            DatabaseDriver::Sqlite => {
                let path = allowed_sqlite_file(self, m)?;
                sqlite::run(path, s).await
            }
            DatabaseDriver::Mssql => Err(SqlError::Unsupported(
                "SQL actions run on postgresql, mysql and sqlite connections".into(),
            )),
        }
    }

    async fn run_postgres(
        &self,
        m: &Material,
        s: &SqlStatement,
    ) -> Result<SqlActionResult, SqlError> {
        let NetworkConn::Postgres(mut conn) =
            connect_network(self, m, self.connect_timeout(s)).await?
        else {
            return Err(SqlError::Unsupported(
                "config.driver is not postgresql".into(),
            ));
        };
        let ms = s.timeout.as_millis().max(1);
        let backend = OnceLock::new();
        let run = async {
            let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
                .fetch_one(&mut conn)
                .await
                .map_err(statement_error)?;
            let _ = backend.set(i64::from(pid));
            let mut tx = sqlx::Connection::begin(&mut conn)
                .await
                .map_err(statement_error)?;
            if s.read_only {
                sqlx::query("SET TRANSACTION READ ONLY")
                    .execute(&mut *tx)
                    .await
                    .map_err(statement_error)?;
            }
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SET LOCAL statement_timeout = {ms}"
            )))
            .execute(&mut *tx)
            .await
            .map_err(statement_error)?;
            let q = bind_all!(
                sqlx::query(sqlx::AssertSqlSafe(s.query.as_str())),
                &s.params
            );
            let out = collect!(&mut *tx, q, s.max_rows, pg_cell)?;
            tx.commit().await.map_err(statement_error)?;
            Ok(result(out))
        };
        self.watched(m, s, run, &backend).await
    }

    async fn run_mysql(&self, m: &Material, s: &SqlStatement) -> Result<SqlActionResult, SqlError> {
        let NetworkConn::Mysql(mut conn) =
            connect_network(self, m, self.connect_timeout(s)).await?
        else {
            return Err(SqlError::Unsupported("config.driver is not mysql".into()));
        };
        let ms = s.timeout.as_millis().max(1);
        let thread = OnceLock::new();
        let run = async {
            let (version, id): (String, u64) = sqlx::query_as("SELECT VERSION(), CONNECTION_ID()")
                .fetch_one(&mut conn)
                .await
                .map_err(statement_error)?;
            if let Ok(id) = i64::try_from(id) {
                let _ = thread.set(id);
            }
            let limit = if version.contains("MariaDB") {
                format!("SET SESSION max_statement_time = {}", ms as f64 / 1000.0)
            } else {
                format!("SET SESSION max_execution_time = {ms}")
            };
            sqlx::query(sqlx::AssertSqlSafe(limit))
                .execute(&mut conn)
                .await
                .map_err(statement_error)?;
            let start = if s.read_only {
                "SET SESSION TRANSACTION READ ONLY; START TRANSACTION READ ONLY"
            } else {
                "START TRANSACTION"
            };
            sqlx::raw_sql(sqlx::AssertSqlSafe(start))
                .execute(&mut conn)
                .await
                .map_err(statement_error)?;
            let q = bind_all!(
                sqlx::query(sqlx::AssertSqlSafe(s.query.as_str())),
                &s.params
            );
            let out = collect!(&mut conn, q, s.max_rows, mysql_cell)?;
            sqlx::raw_sql("COMMIT")
                .execute(&mut conn)
                .await
                .map_err(statement_error)?;
            Ok(result(out))
        };
        self.watched(m, s, run, &thread).await
    }

    fn connect_timeout(&self, s: &SqlStatement) -> Duration {
        s.timeout.min(self.settings.test_timeout)
    }

    /// Runs `run`; past the statement's deadline (and a grace for the server's own timeout to
    /// answer first) the statement running as `session` is cancelled on the server and the
    /// call answers a timeout.
    async fn watched<T>(
        &self,
        m: &Material,
        s: &SqlStatement,
        run: impl std::future::Future<Output = Result<T, SqlError>>,
        session: &OnceLock<i64>,
    ) -> Result<T, SqlError> {
        let mut run = std::pin::pin!(run);
        tokio::select! {
            r = &mut run => r,
            () = tokio::time::sleep(s.timeout + CANCEL_GRACE) => {
                if let Some(&id) = session.get() {
                    self.cancel_on_server(m, id).await;
                }
                // The cancelled statement answers at once; its connection then closes cleanly.
                let _ = tokio::time::timeout(Duration::from_secs(1), &mut run).await;
                Err(SqlError::Timeout(s.timeout.as_millis()))
            }
        }
    }

    /// Cancels what session `id` runs, from a connection of its own (the same user may cancel
    /// its own sessions on both servers).
    async fn cancel_on_server(&self, m: &Material, id: i64) {
        let outcome = async {
            match connect_network(self, m, self.settings.test_timeout).await? {
                NetworkConn::Postgres(mut pg) => {
                    sqlx::query("SELECT pg_cancel_backend($1)")
                        .bind(i32::try_from(id).unwrap_or_default())
                        .execute(&mut pg)
                        .await
                        .map_err(statement_error)?;
                    let _ = sqlx::Connection::close(pg).await;
                }
                NetworkConn::Mysql(mut my) => {
                    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("KILL QUERY {id}")))
                        .execute(&mut my)
                        .await
                        .map_err(statement_error)?;
                    let _ = sqlx::Connection::close(my).await;
                }
            }
            Ok::<_, SqlError>(())
        };
        if let Err(e) = outcome.await {
            tracing::warn!(error = %e, "could not cancel a statement past its deadline");
        }
    }
}
