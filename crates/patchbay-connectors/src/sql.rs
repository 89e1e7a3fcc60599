//! SQL actions: one parameterized statement on PostgreSQL, MySQL/MariaDB or SQLite. Values
//! travel only as bound parameters. `read_only` is the database's own rule for the session
//! (`SET TRANSACTION READ ONLY`, `START TRANSACTION READ ONLY`, a read-only SQLite handle with
//! `query_only`), the timeout is the server's statement timeout where it has one, and rows come
//! back as JSON objects with the columns' types.

use std::time::Duration;

use base64::Engine as _;
use futures::TryStreamExt;
use patchbay_domain::actions::{Column as OutColumn, SqlActionResult};
use serde_json::{Map, Value, json};
use sqlx::{Column, Either, Row, TypeInfo, ValueRef};

use crate::database::{NetworkConn, connect_network, open_sqlite};
use crate::{Connectors, Material, Outcome};

/// One statement to run.
#[derive(Debug)]
pub struct SqlStatement<'a> {
    pub query: &'a str,
    pub params: &'a [Value],
    pub max_rows: usize,
    pub read_only: bool,
    pub timeout: Duration,
}

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

fn sqlite_cell(row: &sqlx::sqlite::SqliteRow, i: usize) -> Result<Value, SqlError> {
    let raw = row.try_get_raw(i).map_err(statement_error)?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    // SQLite types values, not columns: go by the value's storage class.
    let name = raw.type_info().name().to_owned();
    Ok(match name.as_str() {
        "INTEGER" => json!(
            row.try_get_unchecked::<i64, _>(i)
                .map_err(statement_error)?
        ),
        "REAL" => json!(
            row.try_get_unchecked::<f64, _>(i)
                .map_err(statement_error)?
        ),
        "BLOB" => b64(&row
            .try_get_unchecked::<Vec<u8>, _>(i)
            .map_err(statement_error)?),
        "BOOLEAN" => json!(
            row.try_get_unchecked::<bool, _>(i)
                .map_err(statement_error)?
        ),
        _ => json!(
            row.try_get_unchecked::<String, _>(i)
                .map_err(statement_error)?
        ),
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
        s: SqlStatement<'_>,
    ) -> Result<SqlActionResult, SqlError> {
        let connect_timeout = s.timeout.min(self.settings.test_timeout);
        let ms = s.timeout.as_millis().max(1);
        match m.config_str("driver") {
            Some("postgresql" | "mysql") => {
                match connect_network(self, m, connect_timeout).await? {
                    NetworkConn::Postgres(mut conn) => {
                        let run = async {
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
                            let q = bind_all!(sqlx::query(sqlx::AssertSqlSafe(s.query)), s.params);
                            let out = collect!(&mut *tx, q, s.max_rows, pg_cell)?;
                            tx.commit().await.map_err(statement_error)?;
                            Ok(result(out))
                        };
                        bounded(run, s.timeout).await
                    }
                    NetworkConn::Mysql(mut conn) => {
                        let run = async {
                            let version: String = sqlx::query_scalar("SELECT VERSION()")
                                .fetch_one(&mut conn)
                                .await
                                .map_err(statement_error)?;
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
                                "START TRANSACTION READ ONLY"
                            } else {
                                "START TRANSACTION"
                            };
                            sqlx::raw_sql(sqlx::AssertSqlSafe(start))
                                .execute(&mut conn)
                                .await
                                .map_err(statement_error)?;
                            let q = bind_all!(sqlx::query(sqlx::AssertSqlSafe(s.query)), s.params);
                            let out = collect!(&mut conn, q, s.max_rows, mysql_cell)?;
                            sqlx::raw_sql("COMMIT")
                                .execute(&mut conn)
                                .await
                                .map_err(statement_error)?;
                            Ok(result(out))
                        };
                        bounded(run, s.timeout).await
                    }
                }
            }
            Some("sqlite") => {
                let mut conn = open_sqlite(self, m, s.read_only).await?;
                let run = async {
                    if s.read_only {
                        sqlx::query("PRAGMA query_only = ON")
                            .execute(&mut conn)
                            .await
                            .map_err(statement_error)?;
                    }
                    let q = bind_all!(sqlx::query(sqlx::AssertSqlSafe(s.query)), s.params);
                    let out = collect!(&mut conn, q, s.max_rows, sqlite_cell)?;
                    Ok(result(out))
                };
                bounded(run, s.timeout).await
            }
            Some("mssql") => Err(SqlError::Unsupported(
                "SQL actions run on postgresql, mysql and sqlite connections".into(),
            )),
            _ => Err(SqlError::Unsupported("config.driver is not set".into())),
        }
    }
}

async fn bounded<T>(
    run: impl std::future::Future<Output = Result<T, SqlError>>,
    timeout: Duration,
) -> Result<T, SqlError> {
    // The server's own timeout fires first; this bounds what it does not cover (SQLite, a
    // stalled network).
    match tokio::time::timeout(timeout + Duration::from_millis(500), run).await {
        Ok(r) => r,
        Err(_) => Err(SqlError::Timeout(timeout.as_millis())),
    }
}
