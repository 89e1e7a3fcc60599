//! Connection tests against real servers (issue: connection testing): PostgreSQL and MariaDB
//! with right and wrong passwords, a SQLite file, SMTP with and without required AUTH, the MCP
//! reference server, webhooks, and a local HTTP upstream that answers 200, 401 or slowly.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use patchbay_domain::api::{CreateConnection, ErrorKind, TestResult, UpdateConnection};
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::{Connection as _, Executor as _};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, Tweak, err_status, postgres_admin_url};
use crate::peers;

pub(crate) const RIGHT: &str = "pw-right-5b1e";

fn loopback_allowed(sqlite_dir: Option<std::path::PathBuf>) -> Tweak {
    Arc::new(move |s| {
        s.egress.allow_net = vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
        s.egress.allow_sqlite_dirs = sqlite_dir.clone().into_iter().collect();
        s.limits.test_rate_per_minute = 0;
        s.egress.test_timeout = Duration::from_secs(10);
    })
}

fn body(v: Value) -> CreateConnection {
    serde_json::from_value(v).unwrap()
}

async fn unsaved(app: &TestApp, v: Value) -> TestResult {
    app.admin
        .test_unsaved(&body(v))
        .await
        .expect("test answers")
}

fn assert_ok(r: &TestResult) {
    assert!(r.success, "expected success: {r:?}");
    assert_eq!(r.error_kind, None);
}

fn assert_kind(r: &TestResult, kind: ErrorKind) {
    assert!(!r.success, "expected {kind:?}: {r:?}");
    assert_eq!(r.error_kind, Some(kind), "{r:?}");
}

async fn ensure_postgres_role() {
    let mut conn = sqlx::PgConnection::connect(&postgres_admin_url())
        .await
        .unwrap();
    // Tests on both backends set the role at once: one at a time, or PostgreSQL refuses the
    // second ("tuple concurrently updated").
    conn.execute("SELECT pg_advisory_lock(7342001)")
        .await
        .unwrap();
    conn.execute(sqlx::AssertSqlSafe(format!(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'patchbay_pw') THEN \
         CREATE ROLE patchbay_pw LOGIN PASSWORD '{RIGHT}'; ELSE ALTER ROLE patchbay_pw PASSWORD '{RIGHT}'; END IF; END $$"
    )))
    .await
    .unwrap();
    conn.execute("SELECT pg_advisory_unlock(7342001)")
        .await
        .unwrap();
}

/// A PostgreSQL connection to the local `test` database (loopback trusts `postgres`), its id.
pub(crate) async fn postgres_connection(app: &crate::helpers::TestApp) -> String {
    app.connection(
        json!({"name": "pg", "kind": "database", "config": {"driver": "postgresql",
        "host": "127.0.0.1", "port": 5432, "database": "test", "username": "postgres"},
        "secrets": {"password": "loopback-trusts-postgres"}}),
    )
    .await
}

/// A MariaDB connection (as the password-checked test user) on `app`, its id.
pub(crate) async fn mariadb_connection(app: &crate::helpers::TestApp) -> String {
    ensure_mariadb_user().await;
    app.connection(
        json!({"name": "maria", "kind": "database", "config": {"driver": "mysql",
        "host": "127.0.0.1", "port": 3306, "database": "test", "username": "patchbay_pw"},
        "secrets": {"password": RIGHT}}),
    )
    .await
}

pub(crate) async fn ensure_mariadb_user() {
    let mut conn = sqlx::MySqlConnection::connect("mysql://root@127.0.0.1:3306/test")
        .await
        .expect(
            "MariaDB on 127.0.0.1:3306 (root, empty password) is needed: scripts/test.sh starts it",
        );
    for host in ["%", "localhost", "127.0.0.1"] {
        conn.execute(sqlx::AssertSqlSafe(format!(
            "CREATE USER IF NOT EXISTS 'patchbay_pw'@'{host}' IDENTIFIED BY '{RIGHT}'"
        )))
        .await
        .unwrap();
        conn.execute(sqlx::AssertSqlSafe(format!(
            "ALTER USER 'patchbay_pw'@'{host}' IDENTIFIED BY '{RIGHT}'"
        )))
        .await
        .unwrap();
        conn.execute(sqlx::AssertSqlSafe(format!(
            "GRANT ALL ON test.* TO 'patchbay_pw'@'{host}'"
        )))
        .await
        .unwrap();
    }
}

/// A MariaDB account without a password: it connects when the connection's password is empty,
/// and a password sent to it is refused.
async fn a_mariadb_account_without_a_password_connects(backend: Backend) {
    let mut root = sqlx::MySqlConnection::connect("mysql://root@127.0.0.1:3306/test")
        .await
        .expect("MariaDB on 127.0.0.1:3306 (root, empty password): scripts/test.sh starts it");
    for host in ["%", "localhost", "127.0.0.1"] {
        for sql in [
            format!("CREATE USER IF NOT EXISTS 'patchbay_nopw'@'{host}'"),
            format!("ALTER USER 'patchbay_nopw'@'{host}' IDENTIFIED BY ''"),
            format!("GRANT SELECT ON test.* TO 'patchbay_nopw'@'{host}'"),
        ] {
            root.execute(sqlx::AssertSqlSafe(sql)).await.unwrap();
        }
    }
    let app = TestApp::spawn_with(backend, Some(loopback_allowed(None))).await;
    let my = |pw: &str| {
        json!({"name": "nopw", "kind": "database", "config": {"driver": "mysql", "host": "127.0.0.1",
        "port": 3306, "database": "test", "username": "patchbay_nopw"}, "secrets": {"password": pw}})
    };
    assert_ok(&unsaved(&app, my("")).await);
    assert_kind(
        &unsaved(&app, my("not-its-password")).await,
        ErrorKind::Auth,
    );
    let id = app.connection(my("")).await;
    let rows = app
        .admin
        .sql_action(
            &serde_json::from_value(
                json!({"connection": id, "query": "SELECT CURRENT_USER() AS who"}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let who = serde_json::to_value(&rows).unwrap()["rows"][0]["who"].clone();
    assert!(
        who.as_str()
            .is_some_and(|w| w.starts_with("patchbay_nopw@")),
        "{rows:?}"
    );
}

async fn databases_answer_success_or_auth(backend: Backend) {
    ensure_postgres_role().await;
    ensure_mariadb_user().await;
    let app = TestApp::spawn_with(backend, Some(loopback_allowed(None))).await;
    let pg = |pw: &str| {
        json!({"name": "pg", "kind": "database", "config": {"driver": "postgresql", "host": "127.0.0.1",
        "port": 5432, "database": "postgres", "username": "patchbay_pw"}, "secrets": {"password": pw}})
    };
    let my = |pw: &str| {
        json!({"name": "my", "kind": "database", "config": {"driver": "mysql", "host": "127.0.0.1",
        "port": 3306, "database": "test", "username": "patchbay_pw"}, "secrets": {"password": pw}})
    };
    assert_ok(&unsaved(&app, pg(RIGHT)).await);
    let wrong = unsaved(&app, pg("pw-wrong")).await;
    assert_kind(&wrong, ErrorKind::Auth);
    assert!(
        wrong.message.contains("Authentication failed"),
        "{}",
        wrong.message
    );
    assert!(!wrong.message.contains("pw-wrong"));
    assert_ok(&unsaved(&app, my(RIGHT)).await);
    let wrong = unsaved(&app, my("pw-wrong")).await;
    assert_kind(&wrong, ErrorKind::Auth);
    assert!(!wrong.message.contains("pw-wrong"));
    // Nothing listens here: refused.
    let closed = peers::free_port();
    let mut refused = pg(RIGHT);
    refused["config"]["port"] = json!(closed);
    assert_kind(&unsaved(&app, refused).await, ErrorKind::Refused);

    // A saved connection: the result is stored, a credential failure marks it invalid, and a
    // passing test after the fix makes it active again.
    let mut saved = my("pw-wrong");
    saved["name"] = json!("orders-db");
    let c = app.admin.create_connection(&body(saved)).await.unwrap();
    let r = app.admin.test_connection(c.id.as_str()).await.unwrap();
    assert_kind(&r, ErrorKind::Auth);
    let after = app.admin.get_connection(c.id.as_str()).await.unwrap();
    assert_eq!(
        (after.status.as_str(), after.test_status.as_str()),
        ("invalid", "failed")
    );
    assert!(after.last_tested_at.is_some() && after.test_latency_ms.is_some());
    assert_eq!(after.version, c.version, "a test is not an edit");
    let fix = UpdateConnection {
        secrets: Some(json!({"password": RIGHT})),
        ..Default::default()
    };
    app.admin
        .update_connection(c.id.as_str(), &fix, None)
        .await
        .unwrap();
    assert_ok(&app.admin.test_connection(c.id.as_str()).await.unwrap());
    let healed = app.admin.get_connection(c.id.as_str()).await.unwrap();
    assert_eq!(
        (healed.status.as_str(), healed.test_status.as_str()),
        ("active", "success")
    );
    let audit = app
        .admin
        .audit(&format!("action=connection.test&target={}", c.id))
        .await
        .unwrap();
    assert_eq!(audit.items.len(), 2);
    assert_eq!(audit.items[1].details["error_kind"], "auth");
}

/// SQLite only: Patchbay's own store must be the SQLite file it protects.
#[tokio::test]
async fn sqlite_files_only_in_allowed_directories() {
    let backend = Backend::Sqlite;
    let allowed = tempfile::tempdir().unwrap();
    let file = allowed.path().join("app.db");
    {
        let url = format!("sqlite://{}?mode=rwc", file.display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        conn.execute("CREATE TABLE t (x INTEGER)").await.unwrap();
    }
    let app = TestApp::spawn_with(
        backend,
        Some(loopback_allowed(Some(allowed.path().to_path_buf()))),
    )
    .await;
    let lite = |path: &str| json!({"name": "lite", "kind": "database", "config": {"driver": "sqlite", "database": path}});
    assert_ok(&unsaved(&app, lite(file.to_str().unwrap())).await);
    let own = app.dir.path().join("patchbay.db");
    let r = unsaved(&app, lite(own.to_str().unwrap())).await;
    assert_kind(&r, ErrorKind::Blocked);
    let escape = allowed
        .path()
        .join("..")
        .join(own.strip_prefix(allowed.path().parent().unwrap()).unwrap());
    assert_kind(
        &unsaved(&app, lite(escape.to_str().unwrap())).await,
        ErrorKind::Blocked,
    );
    assert_kind(
        &unsaved(&app, lite("/etc/passwd")).await,
        ErrorKind::Blocked,
    );
    let blocked = app.admin.audit("action=egress.blocked").await.unwrap();
    assert_eq!(blocked.items.len(), 3);
}

async fn smtp_with_and_without_required_auth(backend: Backend) {
    let open = peers::smtp(None, None);
    let guarded = peers::smtp(Some(("mailer", RIGHT)), None);
    let app = TestApp::spawn_with(backend, Some(loopback_allowed(None))).await;
    let mail = |port: u16, auth: Option<&str>| {
        let mut v = json!({"name": "mail", "kind": "smtp", "config": {"host": "127.0.0.1", "port": port,
            "encryption": "none", "from_address": "ops@example.com"}});
        if let Some(pw) = auth {
            v["config"]["username"] = json!("mailer");
            v["secrets"] = json!({"password": pw});
        }
        v
    };
    assert_ok(&unsaved(&app, mail(open.port, None)).await);
    let r = unsaved(&app, mail(guarded.port, Some(RIGHT))).await;
    assert_ok(&r);
    assert!(r.message.contains("authenticated"), "{}", r.message);
    let wrong = unsaved(&app, mail(guarded.port, Some("pw-wrong"))).await;
    assert_kind(&wrong, ErrorKind::Auth);
    assert!(!serde_json::to_string(&wrong).unwrap().contains("pw-wrong"));
    assert_kind(
        &unsaved(&app, mail(peers::free_port(), None)).await,
        ErrorKind::Refused,
    );
}

async fn mcp_reference_server_over_streamable_http(backend: Backend) {
    let server = peers::mcp_everything();
    let app = TestApp::spawn_with(backend, Some(loopback_allowed(None))).await;
    let r = unsaved(
        &app,
        json!({"name": "everything", "kind": "mcp",
        "config": {"server_url": format!("http://127.0.0.1:{}/mcp", server.port)}}),
    )
    .await;
    assert_ok(&r);
    assert!(r.message.contains("tools"), "{}", r.message);
    let n: usize = r
        .message
        .split(": ")
        .last()
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(n >= 5, "server-everything lists its tools: {}", r.message);
    let down = unsaved(
        &app,
        json!({"name": "down", "kind": "mcp",
        "config": {"server_url": format!("http://127.0.0.1:{}/mcp", peers::free_port())}}),
    )
    .await;
    assert!(!down.success);
}

/// The local upstream: `/ok` wants `Bearer good-token`, `/slow` answers after 5 s.
/// What the webhook route received: headers and body.
type Seen = Arc<std::sync::Mutex<Vec<(HeaderMap, String)>>>;

async fn upstream() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new()
        .route(
            "/ok",
            get(|h: HeaderMap| async move {
                if h.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer good-token")
                {
                    StatusCode::OK
                } else {
                    StatusCode::UNAUTHORIZED
                }
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                StatusCode::OK
            }),
        )
        .route(
            "/hook",
            post(move |h: HeaderMap, body: axum::body::Bytes| {
                let record = record.clone();
                async move {
                    let ok = h.get("x-test").is_some() && !body.is_empty();
                    record
                        .lock()
                        .unwrap()
                        .push((h, String::from_utf8_lossy(&body).into_owned()));
                    if ok {
                        StatusCode::NO_CONTENT
                    } else {
                        StatusCode::BAD_REQUEST
                    }
                }
            }),
        )
        .route("/gone", post(|| async { StatusCode::GONE }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

async fn http_upstream_success_auth_and_timeout(backend: Backend) {
    let (base, _) = upstream().await;
    let app = TestApp::spawn_with(backend, Some(loopback_allowed(None))).await;
    let http = |path: &str, token: &str, timeout: u64| {
        json!({"name": "api", "kind": "http", "auth": {"type": "bearer"},
        "config": {"base_url": base, "verify_path": path, "timeout_ms": timeout}, "secrets": {"token": token}})
    };
    let ok = unsaved(&app, http("/ok", "good-token", 5000)).await;
    assert_ok(&ok);
    assert_eq!(ok.status_code, Some(200));
    let denied = unsaved(&app, http("/ok", "bad-token", 5000)).await;
    assert_kind(&denied, ErrorKind::Auth);
    assert_eq!(denied.status_code, Some(401));
    assert_eq!(denied.message, "Authentication failed: 401");
    let slow = unsaved(&app, http("/slow", "good-token", 300)).await;
    assert_kind(&slow, ErrorKind::Timeout);
    // The upstream answers after 5 s: the test ended before that, on the connection's own
    // 300 ms, not on the 10 s test timeout.
    assert!(
        slow.latency_ms < 5000,
        "the connection's timeout applies: {slow:?}"
    );
    for r in [&ok, &denied, &slow] {
        assert!(!serde_json::to_string(r).unwrap().contains("good-token"));
    }
}

async fn webhook_test_sends_a_signed_test_event(backend: Backend) {
    let (base, seen) = upstream().await;
    let app = TestApp::spawn_with(backend, Some(loopback_allowed(None))).await;
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let r = unsaved(
        &app,
        json!({"name": "hook", "kind": "webhook", "auth": {"type": "hmac"},
        "config": {"url": format!("{base}/hook")}, "secrets": {"secret": secret}}),
    )
    .await;
    assert_ok(&r);
    let (headers, body) = seen.lock().unwrap().pop().unwrap();
    assert_eq!(headers["x-test"], "true");
    assert!(headers["webhook-id"].to_str().unwrap().starts_with("msg_"));
    // The reference implementation accepts the signature over exactly what was received, and
    // refuses it over anything else.
    let id = headers["webhook-id"].to_str().unwrap().to_owned();
    assert_eq!(
        crate::webhooks::verify(&[(headers.clone(), body.clone())]),
        vec![format!("ok {id}")]
    );
    assert!(crate::webhooks::verify(&[(headers, format!("{body} "))])[0].starts_with("bad"));
    let gone = unsaved(
        &app,
        json!({"name": "hook", "kind": "webhook", "config": {"url": format!("{base}/gone")}}),
    )
    .await;
    assert_kind(&gone, ErrorKind::Protocol);
    assert_eq!(gone.status_code, Some(410));
}

async fn the_eleventh_test_in_a_minute_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // Loopback targets without an allowance: blocked at once, no traffic; the limit still counts.
    let c = app
        .admin
        .create_connection(&body(
            json!({"name": "local", "kind": "http", "config": {"base_url": "http://127.0.0.1:9/"}}),
        ))
        .await
        .unwrap();
    let mut blocked_target =
        json!({"name": "x", "kind": "http", "config": {"base_url": "http://127.0.0.1:9/"}});
    for i in 0..10 {
        let r = if i % 2 == 0 {
            app.admin
                .raw(
                    Method::POST,
                    &format!("/v1/connections/{}/test", c.id),
                    None,
                    &[],
                )
                .await
                .unwrap()
        } else {
            blocked_target["name"] = json!(format!("x{i}"));
            app.admin
                .raw(
                    Method::POST,
                    "/v1/connections/test",
                    Some(&blocked_target),
                    &[],
                )
                .await
                .unwrap()
        };
        assert_eq!(
            r.status.as_u16(),
            200,
            "test {} answered {}",
            i + 1,
            r.text()
        );
    }
    let r = app
        .admin
        .raw(
            Method::POST,
            &format!("/v1/connections/{}/test", c.id),
            None,
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 429);
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert_eq!(r.json()["code"], "rate_limited");
    // The limit is per principal: another token still has its budget.
    let other = app
        .token(&app.admin, patchbay_domain::Role::Member, None)
        .await;
    assert!(other.test_connection(c.id.as_str()).await.is_ok());
    // Viewers may not test at all.
    let viewer = app
        .token(&app.admin, patchbay_domain::Role::Viewer, None)
        .await;
    assert_eq!(
        err_status(viewer.test_connection(c.id.as_str()).await).0,
        403
    );
}

/// SQL Server: no server runs here, so the live login is checked only when
/// `PATCHBAY_TEST_MSSQL` names one (`host:port:user:password`); refusals and protocol
/// failures are checked always.
async fn mssql_refusals_and_optional_live_login(backend: Backend) {
    let app = TestApp::spawn_with(backend, Some(loopback_allowed(None))).await;
    let ms = |host: &str, port: u16, user: &str, pw: &str| {
        json!({"name": "ms", "kind": "database", "config": {"driver": "mssql",
        "host": host, "port": port, "database": "master", "username": user}, "secrets": {"password": pw}})
    };
    assert_kind(
        &unsaved(&app, ms("127.0.0.1", peers::free_port(), "sa", "x")).await,
        ErrorKind::Refused,
    );
    // A server that answers with something other than TDS.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            use tokio::io::AsyncWriteExt;
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        }
    });
    let r = unsaved(&app, ms("127.0.0.1", port, "sa", "not-a-tds-server")).await;
    assert!(!r.success && r.error_kind != Some(ErrorKind::Auth), "{r:?}");
    assert!(!r.message.contains("not-a-tds-server"));
    if let Ok(spec) = std::env::var("PATCHBAY_TEST_MSSQL") {
        let parts: Vec<&str> = spec.splitn(4, ':').collect();
        let port: u16 = parts[1].parse().unwrap();
        assert_ok(&unsaved(&app, ms(parts[0], port, parts[2], parts[3])).await);
        assert_kind(
            &unsaved(&app, ms(parts[0], port, parts[2], "wrong-password")).await,
            ErrorKind::Auth,
        );
    } else {
        eprintln!("PATCHBAY_TEST_MSSQL is not set: the live SQL Server login was not checked");
    }
}

both_backends!(
    a_mariadb_account_without_a_password_connects,
    databases_answer_success_or_auth,
    smtp_with_and_without_required_auth,
    mcp_reference_server_over_streamable_http,
    http_upstream_success_auth_and_timeout,
    webhook_test_sends_a_signed_test_event,
    the_eleventh_test_in_a_minute_is_refused,
    mssql_refusals_and_optional_live_login,
);
