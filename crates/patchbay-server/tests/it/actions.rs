//! Actions against real peers: HTTP against the echo upstream, SQL against PostgreSQL,
//! MariaDB and SQLite, e-mail through aiosmtpd.

use std::sync::Arc;

use patchbay_domain::actions::{EmailAction, SqlAction};
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, Tweak};
use crate::upstream::Upstream;

/// The status and the whole message (detail and named fields) of a refused call.
fn err_status<T: std::fmt::Debug>(r: Result<T, patchbay_client::ClientError>) -> (u16, String) {
    match r {
        Err(e @ patchbay_client::ClientError::Api { status, .. }) => (status, e.to_string()),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn action<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).unwrap()
}

fn tweak(sqlite_dir: Option<std::path::PathBuf>) -> Tweak {
    Arc::new(move |s| {
        s.egress.allow_net = vec!["127.0.0.0/8".parse().unwrap()];
        if let Some(d) = &sqlite_dir {
            s.egress.allow_sqlite_dirs = vec![d.clone()];
        }
    })
}

async fn http_actions_send_map_and_override_auth(backend: Backend) {
    let app = TestApp::spawn_with(backend, Some(tweak(None))).await;
    let up = Upstream::start().await;
    let id = app.connection(
        json!({"name": "drive", "kind": "http", "auth": {"type": "bearer"},
            "config": {"base_url": format!("{}/drive/v3", up.url)}, "secrets": {"token": "drive-token"}}),
    )
    .await;
    let r = app
        .admin
        .http_action(&action(json!({"connection": id, "method": "post", "path": "/files?fields=id",
            "query": {"q": "name = 'x'", "n": 2}, "headers": {"X-Trace": "t-1"}, "body": {"name": "report"},
            "map": [{"as": "path", "select": "$.path"}, {"as": "auth", "select": "$.headers.authorization"},
                {"as": "none", "select": "$.missing"}]})))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.output["path"], "/drive/v3/files");
    // The echoed credential does not come back to the caller; the upstream got it.
    assert_eq!(r.output["auth"], "Bearer [REDACTED]");
    assert_eq!(r.output["none"], Value::Null);
    let seen = up.last();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.header("authorization"), Some("Bearer drive-token"));
    assert_eq!(
        seen.query.as_deref(),
        Some("fields=id&n=2&q=name+%3D+%27x%27")
    );
    assert_eq!(seen.header("x-trace"), Some("t-1"));
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert_eq!(seen.body.as_ref(), br#"{"name":"report"}"#);
    assert_eq!(
        r.body["body"], r#"{"name":"report"}"#,
        "the echoed JSON came back parsed"
    );

    // An explicit auth overrides the connection's, from an organization secret.
    app.admin
        .put_secret(
            "override-token",
            &serde_json::from_value(json!({"value": "from-the-vault"})).unwrap(),
        )
        .await
        .unwrap();
    app.admin
        .http_action(&action(json!({"connection": id, "path": "/about",
            "auth": {"type": "bearer", "tokenRef": "override-token"}})))
        .await
        .unwrap();
    assert_eq!(
        up.last().header("authorization"),
        Some("Bearer from-the-vault")
    );
    app.admin
        .http_action(&action(
            json!({"connection": id, "path": "/about", "auth": {"type": "none"}}),
        ))
        .await
        .unwrap();
    assert_eq!(up.last().header("authorization"), None);
    // A text answer comes back as text; an upstream error status is the caller's to judge.
    up.script("/drive/v3/gone", &[(404, None)]);
    let r = app
        .admin
        .http_action(&action(json!({"connection": id, "path": "/gone"})))
        .await
        .unwrap();
    assert_eq!((r.status, r.body.clone()), (404, json!("scripted 404")));

    // Bad input names the field; nothing is sent.
    let before = up.seen().len();
    for (body, field) in [
        (
            json!({"connection": id, "path": "/x", "map": [{"as": "a", "select": "$..["}]}),
            "map[0].select",
        ),
        (
            json!({"connection": id, "path": "/x", "method": "BAD METHOD"}),
            "method",
        ),
        (
            json!({"connection": id, "path": "/x", "headers": {"Bad Name": "v"}}),
            "headers.Bad Name",
        ),
        (
            json!({"connection": id, "path": "/x", "auth": {"type": "bearer", "secret_ref": "nope"}}),
            "auth.secret_ref",
        ),
        (
            json!({"connection": id, "path": "/x", "auth": {"type": "hmac"}}),
            "auth.type",
        ),
    ] {
        let (status, detail) = err_status(app.admin.http_action(&action(body)).await);
        assert_eq!(status, 422, "{detail}");
        assert!(detail.contains(field), "{field}: {detail}");
    }
    let r = app
        .admin
        .raw(
            reqwest::Method::POST,
            "/v1/actions/http",
            Some(&json!({"connection": id, "paht": "/x"})),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 400, "{}", r.text());
    assert!(r.text().contains("paht"), "{}", r.text());
    assert_eq!(up.seen().len(), before);
    // Audited without bodies or query strings.
    let audit = app.admin.audit("action=action.http").await.unwrap();
    assert!(audit.items.len() >= 4);
    let text = serde_json::to_string(&audit).unwrap();
    assert!(
        !text.contains("report") && !text.contains("fields=id") && !text.contains("from-the-vault")
    );
    assert!(
        audit
            .items
            .iter()
            .all(|e| e.details["latency_ms"].is_number())
    );
}

/// The statements every database runs, with its placeholder style.
async fn sql_round_trip(app: &TestApp, id: &str, table: &str, ph: &dyn Fn(usize) -> String) {
    let run = |query: String, params: Value, read_only: bool| {
        let a: SqlAction = action(
            json!({"connection": id, "query": query, "params": params, "read_only": read_only}),
        );
        async move { app.admin.sql_action(&a).await }
    };
    run(format!("DROP TABLE IF EXISTS {table}"), json!([]), false)
        .await
        .unwrap();
    run(
        format!("CREATE TABLE {table} (id INTEGER PRIMARY KEY, name VARCHAR(200), score DECIMAL(10,2), active BOOLEAN, note TEXT)"),
        json!([]),
        false,
    )
    .await
    .unwrap();
    let hostile = format!("x'); DROP TABLE {table}; --");
    let insert = format!(
        "INSERT INTO {table} (id, name, score, active, note) VALUES ({}, {}, {}, {}, {})",
        ph(1),
        ph(2),
        ph(3),
        ph(4),
        ph(5)
    );
    let r = run(insert.clone(), json!([1, hostile, 12.5, true, null]), false)
        .await
        .unwrap();
    assert_eq!(r.rows_affected, 1);
    run(insert.clone(), json!([2, "plain", 3, false, "n"]), false)
        .await
        .unwrap();
    // The injection attempt was stored verbatim and executed nothing.
    let r = run(
        format!(
            "SELECT id, name, score, active, note FROM {table} WHERE name = {} ORDER BY id",
            ph(1)
        ),
        json!([hostile]),
        true,
    )
    .await
    .unwrap();
    assert_eq!(r.count, 1);
    assert_eq!(r.rows[0]["id"], 1);
    assert_eq!(r.rows[0]["name"], hostile.as_str());
    assert_eq!(r.rows[0]["note"], Value::Null);
    assert_eq!(
        r.columns
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["id", "name", "score", "active", "note"]
    );
    assert!(r.columns.iter().all(|c| !c.kind.is_empty()));
    // A write under read_only is refused (by the database, or on MySQL and MariaDB before it
    // is sent, naming the query); nothing changed.
    let (status, detail) =
        err_status(run(insert.clone(), json!([3, "sneaky", 1, true, null]), true).await);
    assert!(
        status == 400 || (status == 422 && detail.contains("query")),
        "{detail}"
    );
    let r = run(
        format!("SELECT COUNT(*) AS n FROM {table}"),
        json!([]),
        true,
    )
    .await
    .unwrap();
    assert_eq!(r.rows[0]["n"], 2);
    // max_rows cuts and says so.
    let a: SqlAction = action(
        json!({"connection": id, "query": format!("SELECT id FROM {table} ORDER BY id"), "max_rows": 1}),
    );
    let r = app.admin.sql_action(&a).await.unwrap();
    assert_eq!((r.count, r.truncated), (1, true));
    // A statement the database rejects is the caller's error, with its message.
    let (status, detail) = err_status(run("SELEC nonsense".into(), json!([]), false).await);
    assert_eq!(status, 400);
    assert!(detail.contains("refused the statement"), "{detail}");
    run(format!("DROP TABLE {table}"), json!([]), false)
        .await
        .unwrap();
}

async fn sql_actions_on_postgresql_mariadb_and_sqlite(backend: Backend) {
    crate::connection_tests::ensure_mariadb_user().await;
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_with(backend, Some(tweak(Some(dir.path().to_path_buf())))).await;
    let suffix = format!("{:x}", rand::random::<u32>());

    let pg = crate::connection_tests::postgres_connection(&app).await;
    sql_round_trip(&app, &pg, &format!("pb_items_{suffix}"), &|i| {
        format!("${i}")
    })
    .await;
    // Types come back as JSON of their kind; the server stops a slow statement.
    let a: SqlAction = action(json!({"connection": pg, "read_only": true, "query":
        "SELECT 1::int4 AS i, 2.50::numeric AS d, true AS b, '{\"k\": [1]}'::jsonb AS j, \
         TIMESTAMPTZ '2026-01-02 03:04:05+00' AS t, 'a'::text AS s, '\\xdead'::bytea AS raw"}));
    let r = app.admin.sql_action(&a).await.unwrap();
    let row = &r.rows[0];
    assert_eq!(
        (row["i"].clone(), row["d"].clone(), row["b"].clone()),
        (json!(1), json!("2.50"), json!(true))
    );
    assert_eq!(row["j"], json!({"k": [1]}));
    assert_eq!(row["t"], "2026-01-02T03:04:05Z");
    assert_eq!(row["raw"], "3q0=");
    let kinds: Vec<&str> = r.columns.iter().map(|c| c.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "INT4",
            "NUMERIC",
            "BOOL",
            "JSONB",
            "TIMESTAMPTZ",
            "TEXT",
            "BYTEA"
        ]
    );
    let a: SqlAction =
        action(json!({"connection": pg, "query": "SELECT pg_sleep(3)", "timeout_ms": 300}));
    let (status, detail) = err_status(app.admin.sql_action(&a).await);
    assert_eq!(status, 504, "{detail}");

    let maria = crate::connection_tests::mariadb_connection(&app).await;
    sql_round_trip(&app, &maria, &format!("pb_items_{suffix}"), &|_| "?".into()).await;
    let a: SqlAction =
        action(json!({"connection": maria, "query": "SELECT SLEEP(3)", "timeout_ms": 300}));
    let (status, detail) = err_status(app.admin.sql_action(&a).await);
    assert_eq!(status, 504, "{detail}");

    let file = dir.path().join("app.db");
    std::fs::write(&file, b"").unwrap();
    let lite = app
        .connection(
            json!({"name": "lite", "kind": "database", "config": {"driver": "sqlite",
        "database": file.to_str().unwrap()}}),
        )
        .await;
    sql_round_trip(&app, &lite, "items", &|_| "?".into()).await;

    // Not a database connection; bounds named.
    let up = app
        .connection(
            json!({"name": "web", "kind": "http", "config": {"base_url": "http://127.0.0.1:9"}}),
        )
        .await;
    let (status, detail) = err_status(
        app.admin
            .sql_action(&action(json!({"connection": up, "query": "SELECT 1"})))
            .await,
    );
    assert_eq!(status, 422);
    assert!(detail.contains("connection"), "{detail}");
    let (status, detail) = err_status(
        app.admin
            .sql_action(&action(
                json!({"connection": pg, "query": "SELECT 1", "max_rows": 0}),
            ))
            .await,
    );
    assert_eq!(status, 422);
    assert!(detail.contains("max_rows"), "{detail}");
    // Audited by verb only: no statement text, no parameter.
    let audit = app
        .admin
        .audit("action=action.sql&limit=200")
        .await
        .unwrap();
    let text = serde_json::to_string(&audit).unwrap();
    assert!(text.contains("\"statement\":\"INSERT\""));
    assert!(
        !text.contains("DROP TABLE pb_items") || !text.contains("x');"),
        "no parameter values"
    );
    assert!(!text.contains("x'); DROP"));
}

async fn email_actions_reach_a_real_smtp_server(backend: Backend) {
    let app = TestApp::spawn_with(backend, Some(tweak(None))).await;
    let maildir = tempfile::tempdir().unwrap();
    let smtp = crate::peers::smtp(Some(("mailer", "mail-pass")), Some(maildir.path()));
    let id = app.connection(
        json!({"name": "mail", "kind": "smtp", "auth": {"type": "basic"},
        "config": {"host": "127.0.0.1", "port": smtp.port, "encryption": "none", "from_address": "ops@example.com", "username": "mailer"},
        "secrets": {"password": "mail-pass"}})).await;
    let r = app
        .admin
        .email_action(&action::<EmailAction>(
            json!({"connection": id, "to": "dev@example.com",
            "cc": ["lead@example.com"], "bcc": "audit@example.com", "subject": "Weekly report",
            "text": "Plain body", "html": "<p>HTML <b>body</b></p>"}),
        ))
        .await
        .unwrap();
    assert_eq!(r.accepted, 3);
    let files: Vec<_> = std::fs::read_dir(maildir.path()).unwrap().collect();
    assert_eq!(files.len(), 1);
    let mail = std::fs::read_to_string(files[0].as_ref().unwrap().path()).unwrap();
    assert!(mail.contains("X-Envelope-From: ops@example.com"), "{mail}");
    assert!(
        mail.contains("dev@example.com,lead@example.com,audit@example.com"),
        "{mail}"
    );
    assert!(mail.contains("Subject: Weekly report"));
    assert!(mail.contains("Plain body") && mail.contains("<b>body</b>"));
    assert!(mail.contains("multipart/alternative"));
    assert!(mail.contains(&format!("Message-ID: {}", r.message_id)));
    assert!(
        !mail.contains("audit@example.com\r\nBcc") && !mail.contains("Bcc:"),
        "Bcc stays off the message"
    );
    // Bad addresses are named; a wrong password is the server's refusal.
    let (status, detail) = err_status(app.admin.email_action(&action(json!({"connection": id, "to": ["ok@example.com", "not an address"], "subject": "s", "text": "t"}))).await);
    assert_eq!(status, 422);
    assert!(detail.contains("to[1]"), "{detail}");
    let (status, detail) = err_status(
        app.admin
            .email_action(&action(
                json!({"connection": id, "to": "a@example.com", "subject": "s"}),
            ))
            .await,
    );
    assert_eq!(status, 422);
    assert!(detail.contains("text"), "{detail}");
    app.admin
        .update_connection(
            &id,
            &serde_json::from_value(json!({"secrets": {"password": "wrong"}})).unwrap(),
            None,
        )
        .await
        .unwrap();
    let (status, detail) = err_status(
        app.admin
            .email_action(&action(
                json!({"connection": id, "to": "a@example.com", "subject": "s", "text": "t"}),
            ))
            .await,
    );
    assert_eq!(status, 502, "{detail}");
    assert!(detail.contains("Authentication failed"), "{detail}");
    assert!(!detail.contains("wrong"));
    assert_eq!(std::fs::read_dir(maildir.path()).unwrap().count(), 1);
}

/// Actions at once are audited in shared writes: each entry exactly once, while other audited
/// writes move the chain on between them, and the chain holds.
async fn actions_at_once_are_each_audited_once_on_an_unbroken_chain(backend: Backend) {
    let app = TestApp::spawn_with(backend, Some(tweak(None))).await;
    let up = Upstream::start().await;
    let id = app
        .connection(json!({"name": "busy", "kind": "http",
            "config": {"base_url": format!("{}/api", up.url)}}))
        .await;
    let calls = (0..40).map(|i| {
        let app = &app;
        let id = id.clone();
        async move {
            app.admin
                .http_action(&action(json!({"connection": id, "path": format!("/n{i}")})))
                .await
                .unwrap()
                .status
        }
    });
    let edits = (0..5).map(|i| {
        let app = &app;
        async move {
            app.admin
                .put_secret(
                    &format!("between-{i}"),
                    &serde_json::from_value(json!({"value": "v"})).unwrap(),
                )
                .await
                .unwrap();
        }
    });
    let (statuses, ()) = futures::join!(futures::future::join_all(calls), async {
        futures::future::join_all(edits).await;
    });
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let audit = app
        .admin
        .audit("action=action.http&limit=100")
        .await
        .unwrap();
    let mut targets: Vec<&str> = audit
        .items
        .iter()
        .map(|e| e.target.as_deref().unwrap())
        .collect();
    assert_eq!(targets.len(), 40, "one entry per action");
    targets.dedup();
    assert_eq!(targets, [id.as_str()]);
    let ids: std::collections::HashSet<&str> = audit.items.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), 40);
    let v = app.admin.verify_audit().await.unwrap();
    assert!(v.ok, "{v:?}");
}

both_backends!(
    actions_at_once_are_each_audited_once_on_an_unbroken_chain,
    http_actions_send_map_and_override_auth,
    sql_actions_on_postgresql_mariadb_and_sqlite,
    email_actions_reach_a_real_smtp_server,
);
