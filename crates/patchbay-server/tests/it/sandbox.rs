//! Tenant SQL against Patchbay itself and against the database servers' limits: the SQLite
//! sandbox (no attaching, no vacuuming into files, no URI names, no pragma that touches files
//! or settings), MariaDB's `read_only` for DDL, and deadlines that stop the statement on the
//! server — counted there after the 504.

use std::path::Path;
use std::time::{Duration, Instant};

use patchbay_domain::actions::SqlAction;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, Tweak};

fn tweak(sqlite_dir: &Path) -> Tweak {
    let dir = sqlite_dir.to_path_buf();
    std::sync::Arc::new(move |s| {
        s.egress.allow_net = vec!["127.0.0.0/8".parse().unwrap()];
        s.egress.allow_sqlite_dirs = vec![dir.clone()];
    })
}

async fn sql(
    app: &TestApp,
    body: Value,
) -> Result<patchbay_domain::actions::SqlActionResult, (u16, String)> {
    let a: SqlAction = serde_json::from_value(body).unwrap();
    app.admin.sql_action(&a).await.map_err(|e| match e {
        e @ patchbay_client::ClientError::Api { status, .. } => (status, e.to_string()),
        other => panic!("expected an answer, got {other:?}"),
    })
}

/// SQLite only: Patchbay's own store must be the SQLite file it protects.
#[tokio::test]
async fn sqlite_connections_cannot_reach_patchbays_store_or_other_files() {
    let backend = Backend::Sqlite;
    let allowed = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_with(backend, Some(tweak(allowed.path()))).await;
    let store = app.dir.path().join("patchbay.db");
    assert!(store.exists());
    let file = allowed.path().join("app.db");
    std::fs::write(&file, b"").unwrap();
    let lite = app
        .connection(json!({"name": "lite", "kind": "database",
            "config": {"driver": "sqlite", "database": file.to_str().unwrap()}}))
        .await;
    sql(&app, json!({"connection": lite, "query": "CREATE TABLE items (id INTEGER PRIMARY KEY, flag BOOLEAN)"}))
        .await
        .unwrap();
    sql(
        &app,
        json!({"connection": lite, "query": "INSERT INTO items VALUES (1, 1)"}),
    )
    .await
    .unwrap();
    let copy_out = outside.path().join("copy.db");
    let copy_in = allowed.path().join("copy.db");
    let store_path = store.to_str().unwrap();
    let hostile = [
        format!("ATTACH DATABASE '{store_path}' AS x"),
        format!("ATTACH 'file:{store_path}?mode=ro' AS x"),
        format!("ATTACH DATABASE 'file:{store_path}?mode=ro&immutable=1' AS x"),
        "ATTACH DATABASE ':memory:' AS m".to_owned(),
        "DETACH DATABASE main".to_owned(),
        format!("VACUUM INTO '{}'", copy_out.display()),
        format!("VACUUM main INTO '{}'", copy_in.display()),
        "VACUUM".to_owned(),
        "PRAGMA database_list".to_owned(),
        "PRAGMA journal_mode = DELETE".to_owned(),
        "PRAGMA query_only = OFF".to_owned(),
        "PRAGMA writable_schema = ON".to_owned(),
        "PRAGMA temp_store_directory = '/tmp'".to_owned(),
        "PRAGMA user_version = 7".to_owned(),
        "SELECT load_extension('/tmp/nothing.so')".to_owned(),
        "SELECT * FROM x.tokens".to_owned(),
    ];
    for read_only in [true, false] {
        for q in &hostile {
            let r = sql(
                &app,
                json!({"connection": lite, "query": q, "read_only": read_only}),
            )
            .await;
            let (status, detail) = r.expect_err(q);
            assert_eq!(status, 400, "{q} (read_only {read_only}): {detail}");
        }
        // Reading the schema stays possible.
        let r = sql(&app, json!({"connection": lite, "query": "PRAGMA table_info(items)", "read_only": read_only}))
            .await
            .unwrap();
        assert_eq!(r.count, 2);
    }
    assert!(
        !copy_out.exists(),
        "VACUUM INTO wrote outside the allowed directory"
    );
    assert!(!copy_in.exists(), "VACUUM INTO wrote a file");
    // read_only opens the file read-only: writes and DDL are refused by SQLite.
    for q in [
        "INSERT INTO items VALUES (2, 0)",
        "CREATE TABLE t2 (a)",
        "DROP TABLE items",
        "DELETE FROM items",
    ] {
        let (status, detail) = sql(
            &app,
            json!({"connection": lite, "query": q, "read_only": true}),
        )
        .await
        .expect_err(q);
        assert_eq!(status, 400, "{q}: {detail}");
    }
    let r = sql(
        &app,
        json!({"connection": lite, "query": "SELECT id, flag FROM items", "read_only": true}),
    )
    .await
    .unwrap();
    assert_eq!(r.rows[0]["flag"], json!(true));
    assert_eq!(r.count, 1);

    // A connection cannot name a URI or a file outside the allowed directory either.
    for database in [
        format!("file:{}?mode=ro", file.display()),
        store_path.to_owned(),
        format!(
            "{}/../{}",
            allowed.path().display(),
            outside.path().display()
        ),
    ] {
        let id = app
            .connection(
                json!({"name": format!("bad-{:x}", rand::random::<u32>()), "kind": "database",
                "config": {"driver": "sqlite", "database": database}}),
            )
            .await;
        let (status, detail) = sql(&app, json!({"connection": id, "query": "SELECT 1"}))
            .await
            .expect_err(&database);
        assert!(
            status == 403 || status == 502,
            "{database}: {status} {detail}"
        );
    }
}

async fn mariadb_read_only_refuses_ddl_and_file_writes(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_with(backend, Some(tweak(dir.path()))).await;
    let maria = crate::connection_tests::mariadb_connection(&app).await;
    let table = format!("pb_ro_{:x}", rand::random::<u32>());
    sql(
        &app,
        json!({"connection": maria, "query": format!("CREATE TABLE {table} (id INT PRIMARY KEY)")}),
    )
    .await
    .unwrap();
    sql(
        &app,
        json!({"connection": maria, "query": format!("INSERT INTO {table} VALUES (1), (2)")}),
    )
    .await
    .unwrap();
    for q in [
        format!("TRUNCATE {table}"),
        format!("TRUNCATE TABLE {table}"),
        format!("ALTER TABLE {table} ADD COLUMN c INT"),
        format!("RENAME TABLE {table} TO {table}_gone"),
        format!("DROP TABLE {table}"),
        format!("CREATE TABLE {table}_new (a INT)"),
        format!("CREATE INDEX i ON {table} (id)"),
        format!("DELETE FROM {table}"),
        format!("/*!DROP TABLE {table}*/"),
        format!("/*M!100000 TRUNCATE {table} */"),
        format!("SELECT * FROM {table} INTO OUTFILE '/tmp/{table}.txt'"),
        "SET STATEMENT max_statement_time=0 FOR SELECT 1".to_owned(),
        format!("SELECT 1; DROP TABLE {table}"),
    ] {
        let (status, detail) = sql(
            &app,
            json!({"connection": maria, "query": q, "read_only": true}),
        )
        .await
        .expect_err(&q);
        assert!(status == 422 || status == 400, "{q}: {status} {detail}");
        if status == 422 {
            assert!(detail.contains("query"), "{q}: {detail}");
        }
    }
    let r = sql(&app, json!({"connection": maria, "query": format!("SELECT COUNT(*) AS n FROM {table}"), "read_only": true}))
        .await
        .unwrap();
    assert_eq!(r.rows[0]["n"], 2, "the table and its rows are still there");
    let r = sql(&app, json!({"connection": maria, "query": format!("SHOW COLUMNS FROM {table}"), "read_only": true}))
        .await
        .unwrap();
    assert_eq!(r.count, 1, "no column was added");
    sql(
        &app,
        json!({"connection": maria, "query": format!("DROP TABLE {table}")}),
    )
    .await
    .unwrap();
}

/// Polls `count` (a statement answering one row with `n`) through `connection` until it
/// answers 0, for up to `within`; the last count.
async fn still_running(app: &TestApp, connection: &str, count: &str, within: Duration) -> i64 {
    let until = Instant::now() + within;
    loop {
        let r = sql(app, json!({"connection": connection, "query": count}))
            .await
            .unwrap();
        let n = r.rows[0]["n"].as_i64().unwrap();
        if n == 0 || Instant::now() >= until {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The CPU time this process spends during the next `window`.
async fn cpu_busy(window: Duration) -> Duration {
    let before = cpu_time();
    tokio::time::sleep(window).await;
    cpu_time().saturating_sub(before)
}

/// This process's user and system CPU time.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

async fn statements_past_their_deadline_stop_on_the_server(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_with(backend, Some(tweak(dir.path()))).await;

    // MariaDB: the statement lifts its own time limit; it is killed all the same.
    let maria = crate::connection_tests::mariadb_connection(&app).await;
    let marker = format!("{}", rand::random::<u32>() % 1000 + 9000);
    let runaway = format!("SET STATEMENT max_statement_time=0 FOR SELECT SLEEP(8), {marker}");
    let (status, detail) = sql(
        &app,
        json!({"connection": maria, "query": runaway, "timeout_ms": 300}),
    )
    .await
    .expect_err("504");
    assert_eq!(status, 504, "{detail}");
    let count = format!(
        "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST \
         WHERE INFO LIKE CONCAT('SET STATEMENT', '%{marker}') AND ID <> CONNECTION_ID()"
    );
    let left = still_running(&app, &maria, &count, Duration::from_secs(1)).await;
    assert_eq!(left, 0, "the MariaDB statement still runs after its 504");

    // A caller that gives up does not leave the statement running either.
    let runaway = format!("SET STATEMENT max_statement_time=0 FOR SELECT SLEEP(8), {marker}");
    let body = json!({"connection": maria, "query": runaway, "timeout_ms": 500});
    let quitter = reqwest::Client::builder()
        .timeout(Duration::from_millis(150))
        .build()
        .unwrap();
    let gave_up = quitter
        .post(format!("{}/v1/actions/sql", app.url))
        .bearer_auth(&app.admin_token)
        .json(&body)
        .send()
        .await;
    assert!(gave_up.is_err(), "the caller gave up before the answer");
    // Its deadline is 500 ms, its sleep 8 s: gone within 3 s means it was stopped.
    let left = still_running(&app, &maria, &count, Duration::from_secs(3)).await;
    assert_eq!(
        left, 0,
        "the abandoned MariaDB statement still runs past its deadline"
    );

    // PostgreSQL: cancelled at its deadline.
    let pg = crate::connection_tests::postgres_connection(&app).await;
    let runaway = format!("SELECT pg_sleep(8), {marker}");
    let (status, detail) = sql(
        &app,
        json!({"connection": pg, "query": runaway, "timeout_ms": 300}),
    )
    .await
    .expect_err("504");
    assert_eq!(status, 504, "{detail}");
    let count = format!(
        "SELECT COUNT(*) AS n FROM pg_stat_activity WHERE state = 'active' \
         AND query LIKE 'SELECT pg_sleep(8), ' || '{marker}'"
    );
    let left = still_running(&app, &pg, &count, Duration::from_secs(1)).await;
    assert_eq!(left, 0, "the PostgreSQL statement still runs after its 504");

    // SQLite: three runaway recursive queries; after their 504s no core stays busy.
    let file = dir.path().join("app.db");
    std::fs::write(&file, b"").unwrap();
    let lite = app
        .connection(json!({"name": "lite", "kind": "database",
            "config": {"driver": "sqlite", "database": file.to_str().unwrap()}}))
        .await;
    let forever =
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";
    let runs = (0..3).map(|_| {
        sql(
            &app,
            json!({"connection": lite, "query": forever, "timeout_ms": 300}),
        )
    });
    for r in futures::future::join_all(runs).await {
        let (status, detail) = r.expect_err("504");
        assert_eq!(status, 504, "{detail}");
    }
    // Quiet within two seconds (a runaway left would keep a core busy), and staying quiet.
    let window = Duration::from_millis(250);
    let quiet = Duration::from_millis(75);
    let mut busy = Duration::MAX;
    for _ in 0..8 {
        busy = cpu_busy(window).await;
        if busy < quiet {
            break;
        }
    }
    assert!(
        busy < quiet,
        "{busy:?} of CPU in each {window:?} after the runaways' 504s"
    );
    let later = cpu_busy(Duration::from_secs(1)).await;
    assert!(
        later < 4 * quiet,
        "{later:?} of CPU in the second after that"
    );
}

both_backends!(
    mariadb_read_only_refuses_ddl_and_file_writes,
    statements_past_their_deadline_stop_on_the_server,
);
