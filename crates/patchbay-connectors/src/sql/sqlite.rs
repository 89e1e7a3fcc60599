//! SQLite files opened for tenants, sandboxed by SQLite itself rather than by reading the
//! statement: no database can be attached (the attach limit is zero, which also stops
//! `VACUUM` and `VACUUM INTO`, and the authorizer refuses `ATTACH`/`DETACH`), no pragma but a
//! few that only read the schema, no extension loading, no URI filenames, no symbolic link
//! followed at open, and functions in the file's own schema are not trusted. `read_only` opens
//! the file read-only and sets `query_only`. A statement runs on a blocking thread and stops
//! when its deadline passes or its caller goes away, by SQLite's progress handler — so a
//! runaway query never keeps a core busy after its answer.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use patchbay_domain::actions::{Column as OutColumn, SqlActionResult};
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::limits::Limit;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, config::DbConfig};
use serde_json::{Map, Value, json};

use super::{SqlError, SqlStatement};

/// Pragmas that read the schema, given the object (or count) they report on, if any.
const NAMING_PRAGMAS: &[&str] = &[
    "table_info",
    "table_xinfo",
    "table_list",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
    "foreign_key_check",
    "integrity_check",
    "quick_check",
];

/// Pragmas that report a setting: allowed without a value only (a value would set it).
const READING_PRAGMAS: &[&str] = &[
    "collation_list",
    "user_version",
    "schema_version",
    "page_count",
    "page_size",
    "freelist_count",
    "encoding",
];

/// Functions never called, whatever the build of SQLite offers.
const REFUSED_FUNCTIONS: &[&str] = &[
    "load_extension",
    "fts3_tokenizer",
    "readfile",
    "writefile",
    "edit",
];

/// The longest wait for another writer's lock.
const BUSY: Duration = Duration::from_secs(5);

/// How many virtual-machine steps run between two looks at the deadline.
const STEPS_BETWEEN_CHECKS: i32 = 1000;

/// Opens `path` (already checked to lie under an allowed directory) in the sandbox, waiting at
/// most `busy` for another writer's lock.
pub(crate) fn open(path: &Path, read_only: bool, busy: Duration) -> rusqlite::Result<Connection> {
    // No SQLITE_OPEN_URI (a `file:` name stays a plain name) and no SQLITE_OPEN_CREATE.
    let access = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
    };
    let conn = Connection::open_with_flags(
        path,
        access | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_NOFOLLOW,
    )?;
    conn.busy_timeout(busy)?;
    conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false)?;
    if read_only {
        conn.pragma_update(None, "query_only", true)?;
    }
    conn.authorizer(Some(authorize))?;
    Ok(conn)
}

fn authorize(ctx: AuthContext<'_>) -> Authorization {
    match ctx.action {
        AuthAction::Attach { .. } | AuthAction::Detach { .. } => Authorization::Deny,
        AuthAction::Pragma {
            pragma_name,
            pragma_value,
        } => {
            let listed = |list: &[&str]| list.iter().any(|p| p.eq_ignore_ascii_case(pragma_name));
            if listed(NAMING_PRAGMAS) || (listed(READING_PRAGMAS) && pragma_value.is_none()) {
                Authorization::Allow
            } else {
                Authorization::Deny
            }
        }
        AuthAction::Function { function_name }
            if REFUSED_FUNCTIONS
                .iter()
                .any(|f| f.eq_ignore_ascii_case(function_name)) =>
        {
            Authorization::Deny
        }
        _ => Authorization::Allow,
    }
}

/// Raised when the caller gave up: the statement stops at its next check.
#[derive(Debug, Default)]
struct GaveUp(Arc<AtomicBool>);

impl Drop for GaveUp {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Runs one statement on a blocking thread; it stops at `timeout`, or as soon as the returned
/// future is dropped.
pub(crate) async fn run(
    path: std::path::PathBuf,
    s: SqlStatement,
) -> Result<SqlActionResult, SqlError> {
    let gave_up = GaveUp::default();
    let flag = gave_up.0.clone();
    let timeout = s.timeout;
    let work = tokio::task::spawn_blocking(move || {
        let conn = open(&path, s.read_only, timeout.min(BUSY)).map_err(open_error)?;
        let deadline = Instant::now() + timeout;
        let timed_out = Arc::new(AtomicBool::new(false));
        let seen = timed_out.clone();
        conn.progress_handler(
            STEPS_BETWEEN_CHECKS,
            Some(move || {
                if Instant::now() >= deadline {
                    seen.store(true, Ordering::Relaxed);
                }
                seen.load(Ordering::Relaxed) || flag.load(Ordering::Relaxed)
            }),
        )
        .map_err(statement_error)?;
        execute(&conn, &s).map_err(|e| {
            if timed_out.load(Ordering::Relaxed) {
                SqlError::Timeout(timeout.as_millis())
            } else {
                e
            }
        })
    });
    let out = work
        .await
        .map_err(|e| SqlError::Statement(format!("the statement's thread failed: {e}")));
    drop(gave_up);
    out?
}

fn open_error(e: rusqlite::Error) -> SqlError {
    SqlError::Connection {
        kind: patchbay_domain::api::ErrorKind::Protocol,
        message: format!("cannot open the SQLite file: {}", message(&e)),
    }
}

fn statement_error(e: rusqlite::Error) -> SqlError {
    SqlError::Statement(message(&e))
}

/// SQLite's own message (never the statement's parameters).
fn message(e: &rusqlite::Error) -> String {
    match e {
        rusqlite::Error::SqliteFailure(code, Some(m)) => {
            if code.code == rusqlite::ErrorCode::AuthorizationForStatementDenied {
                format!(
                    "{m} (the sandbox refuses attaching databases, pragmas that change settings or touch files, and extensions)"
                )
            } else {
                m.clone()
            }
        }
        other => other.to_string(),
    }
}

fn execute(conn: &Connection, s: &SqlStatement) -> Result<SqlActionResult, SqlError> {
    let mut stmt = conn.prepare(&s.query).map_err(statement_error)?;
    let expected = stmt.parameter_count();
    if expected != s.params.len() {
        return Err(SqlError::Statement(format!(
            "the statement takes {expected} parameters; {} were given",
            s.params.len()
        )));
    }
    for (i, p) in s.params.iter().enumerate() {
        let at = i + 1;
        let bound = match p {
            Value::Null => stmt.raw_bind_parameter(at, rusqlite::types::Null),
            Value::Bool(b) => stmt.raw_bind_parameter(at, *b),
            Value::Number(n) if n.is_i64() => stmt.raw_bind_parameter(at, n.as_i64()),
            Value::Number(n) => stmt.raw_bind_parameter(at, n.as_f64()),
            Value::String(t) => stmt.raw_bind_parameter(at, t.as_str()),
            other => stmt.raw_bind_parameter(at, other.to_string()),
        };
        bound.map_err(statement_error)?;
    }
    let names: Vec<String> = stmt.column_names().into_iter().map(str::to_owned).collect();
    let declared: Vec<Option<String>> = stmt
        .columns()
        .iter()
        .map(|c| c.decl_type().map(str::to_ascii_uppercase))
        .collect();
    let mut columns: Vec<OutColumn> = Vec::new();
    let mut rows = Vec::new();
    let mut truncated = false;
    let writes = !stmt.readonly();
    let mut raw = stmt.raw_query();
    while let Some(row) = raw.next().map_err(statement_error)? {
        if columns.is_empty() {
            columns = names
                .iter()
                .enumerate()
                .map(|(i, name)| OutColumn {
                    name: name.clone(),
                    kind: declared[i]
                        .clone()
                        .unwrap_or_else(|| storage_class(row.get_ref(i).ok()).to_owned()),
                })
                .collect();
        }
        if rows.len() == s.max_rows {
            truncated = true;
            break;
        }
        let mut obj = Map::new();
        for (i, name) in names.iter().enumerate() {
            let v = row.get_ref(i).map_err(statement_error)?;
            obj.insert(name.clone(), cell(v, declared[i].as_deref()));
        }
        rows.push(obj);
    }
    drop(raw);
    let affected = if writes { conn.changes() } else { 0 };
    Ok(SqlActionResult {
        count: rows.len(),
        columns,
        rows,
        rows_affected: affected,
        truncated,
    })
}

fn storage_class(v: Option<ValueRef<'_>>) -> &'static str {
    match v {
        Some(ValueRef::Integer(_)) => "INTEGER",
        Some(ValueRef::Real(_)) => "REAL",
        Some(ValueRef::Text(_)) => "TEXT",
        Some(ValueRef::Blob(_)) => "BLOB",
        Some(ValueRef::Null) | None => "NULL",
    }
}

/// SQLite types values, not columns: a value goes by its storage class, and an integer in a
/// column declared BOOLEAN comes back as a boolean.
fn cell(v: ValueRef<'_>, declared: Option<&str>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) if declared == Some("BOOLEAN") => json!(i != 0),
        ValueRef::Integer(i) => json!(i),
        ValueRef::Real(f) => json!(f),
        ValueRef::Text(t) => json!(String::from_utf8_lossy(t)),
        ValueRef::Blob(b) => json!(base64::engine::general_purpose::STANDARD.encode(b)),
    }
}

/// Opens the file read-only and reads its schema: the connection test.
pub(crate) async fn probe(path: std::path::PathBuf) -> Result<(), String> {
    tokio::task::spawn_blocking(move || {
        let conn = open(&path, true, BUSY).map_err(|e| message(&e))?;
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))
            .map_err(|e| message(&e))
    })
    .await
    .map_err(|e| format!("the test's thread failed: {e}"))?
}
