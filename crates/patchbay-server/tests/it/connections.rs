//! Connections through the API: every kind, masked secrets, nothing in plaintext at rest,
//! PATCH semantics, names, pagination, references.

use base64::Engine as _;
use patchbay_domain::api::{CreateConnection, PutSecret, UpdateConnection};
use serde_json::{Value, json};
use sqlx::Row;

use crate::both_backends;
use crate::helpers::{Backend, TestApp, err_status, every_kind};

fn body(v: Value) -> CreateConnection {
    serde_json::from_value(v).expect("connection body")
}

/// Every byte the database holds, as text we can search.
async fn dump_database(app: &TestApp) -> Vec<u8> {
    match app.backend {
        Backend::Sqlite => {
            let path = app.dir.path().join("patchbay.db");
            let mut bytes = std::fs::read(&path).expect("db file");
            if let Ok(wal) = std::fs::read(path.with_extension("db-wal")) {
                bytes.extend(wal);
            }
            bytes
        }
        Backend::Postgres => {
            let pool = app.db().await;
            let tables: Vec<String> = sqlx::query(
                "SELECT CAST(table_name AS TEXT) AS table_name FROM information_schema.tables WHERE table_schema = 'public'",
            )
            .fetch_all(&pool)
            .await
            .expect("tables")
            .iter()
            .map(|r| r.get::<String, _>("table_name"))
            .collect();
            assert!(tables.contains(&"connection_secrets".to_owned()));
            let mut out = Vec::new();
            for t in tables {
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT CAST(t AS TEXT) AS r FROM {t} t"
                )))
                .fetch_all(&pool)
                .await
                .expect("dump");
                for r in rows {
                    out.extend(r.get::<String, _>("r").into_bytes());
                    out.push(b'\n');
                }
            }
            out
        }
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

async fn every_kind_round_trip_with_masked_secrets(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut planted = Vec::new();
    for (spec, secrets) in every_kind("rt") {
        let created = app
            .admin
            .create_connection(&body(spec.clone()))
            .await
            .expect("create");
        let read = app
            .admin
            .get_connection(created.id.as_str())
            .await
            .expect("read back");
        let shown = serde_json::to_string(&read).unwrap();
        for field in spec["secrets"].as_object().unwrap().keys() {
            assert!(read.secrets[field].set, "{field} shows as set");
        }
        for s in &secrets {
            assert!(
                !shown.contains(s.as_str()),
                "secret leaked in read of {}",
                read.name
            );
        }
        assert_eq!(read.kind.as_str(), spec["kind"]);
        planted.extend(secrets);
    }
    let listed =
        serde_json::to_string(&app.admin.list_connections("limit=200").await.unwrap()).unwrap();
    let dump = dump_database(&app).await;
    assert!(dump.len() > 1000, "the dump holds the store");
    for s in &planted {
        assert!(!listed.contains(s.as_str()));
        let b64 = base64::engine::general_purpose::STANDARD.encode(s);
        let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let hex: String = s.bytes().map(|b| format!("{b:02x}")).collect();
        for form in [s.as_str(), &b64, &b64url, &hex] {
            assert!(
                !contains(&dump, form),
                "a secret is readable at rest ({form})"
            );
        }
    }
    // The decrypted values are all still there for an executor.
    let list = app.admin.list_connections("limit=200").await.unwrap();
    assert_eq!(list.items.len(), 10);
    for c in list.items {
        let creds = app
            .admin
            .credentials(c.id.as_str())
            .await
            .expect("credentials");
        assert!(creds.secrets.values().all(|v| v.starts_with("canary-rt-")));
    }
}

async fn patch_keeps_omitted_secrets_and_checks_versions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (spec, _) = every_kind("p").remove(0);
    let c = app.admin.create_connection(&body(spec)).await.unwrap();
    assert_eq!(c.version, 1);
    let patch = UpdateConnection {
        config: Some(json!({"timeout_ms": 5000})),
        ..Default::default()
    };
    let c2 = app
        .admin
        .update_connection(c.id.as_str(), &patch, Some(1))
        .await
        .expect("patch at v1");
    assert_eq!(c2.version, 2);
    assert_eq!(c2.config["timeout_ms"], 5000);
    assert_eq!(
        app.admin.credentials(c.id.as_str()).await.unwrap().secrets["token"],
        "canary-p-bearer-7c1f9e"
    );
    // A stale version is refused and changes nothing.
    let stale = UpdateConnection {
        config: Some(json!({"timeout_ms": 1})),
        ..Default::default()
    };
    assert_eq!(
        err_status(
            app.admin
                .update_connection(c.id.as_str(), &stale, Some(1))
                .await
        ),
        (412, "version_mismatch".into())
    );
    assert_eq!(
        app.admin
            .get_connection(c.id.as_str())
            .await
            .unwrap()
            .config["timeout_ms"],
        5000
    );
    // Sending a secret replaces it.
    let replace = UpdateConnection {
        secrets: Some(json!({"token": "new-token-value"})),
        ..Default::default()
    };
    app.admin
        .update_connection(c.id.as_str(), &replace, None)
        .await
        .unwrap();
    assert_eq!(
        app.admin.credentials(c.id.as_str()).await.unwrap().secrets["token"],
        "new-token-value"
    );
    // Switching auth type drops the old secret and requires the new one.
    let switch = UpdateConnection {
        auth: Some(json!({"type": "basic", "username": "u"})),
        ..Default::default()
    };
    let (status, _) = err_status(
        app.admin
            .update_connection(c.id.as_str(), &switch, None)
            .await,
    );
    assert_eq!(status, 422);
    let switch = UpdateConnection {
        auth: Some(json!({"type": "basic", "username": "u"})),
        secrets: Some(json!({"password": "pw"})),
        ..Default::default()
    };
    let c3 = app
        .admin
        .update_connection(c.id.as_str(), &switch, None)
        .await
        .unwrap();
    assert_eq!(c3.secrets.keys().collect::<Vec<_>>(), vec!["password"]);
    // Disabling is a status change; other statuses are not writable.
    let disable = UpdateConnection {
        status: Some("disabled".into()),
        ..Default::default()
    };
    assert_eq!(
        app.admin
            .update_connection(c.id.as_str(), &disable, None)
            .await
            .unwrap()
            .status
            .as_str(),
        "disabled"
    );
    let bad = UpdateConnection {
        status: Some("expired".into()),
        ..Default::default()
    };
    assert_eq!(
        err_status(app.admin.update_connection(c.id.as_str(), &bad, None).await).0,
        422
    );
}

async fn names_are_unique_per_project_until_deleted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (spec, _) = every_kind("n").remove(0);
    let c = app
        .admin
        .create_connection(&body(spec.clone()))
        .await
        .unwrap();
    assert_eq!(
        err_status(app.admin.create_connection(&body(spec.clone())).await),
        (409, "conflict".into())
    );
    // Another project may reuse the name.
    let p = app
        .admin
        .create_project(&patchbay_domain::api::CreateProject {
            name: "other".into(),
            description: None,
        })
        .await
        .unwrap();
    let mut other = spec.clone();
    other["project"] = json!(p.id);
    app.admin
        .create_connection(&body(other))
        .await
        .expect("same name, other project");
    app.admin.delete_connection(c.id.as_str()).await.unwrap();
    assert_eq!(
        err_status(app.admin.get_connection(c.id.as_str()).await).0,
        404
    );
    assert_eq!(
        err_status(app.admin.delete_connection(c.id.as_str()).await).0,
        404
    );
    app.admin
        .create_connection(&body(spec))
        .await
        .expect("name free after delete");
    // The deleted connection's ciphertexts are gone from the store.
    let pool = app.db().await;
    let left: i64 =
        sqlx::query("SELECT COUNT(*) AS n FROM connection_secrets WHERE connection_id = $1")
            .bind(c.id.to_string())
            .fetch_one(&pool)
            .await
            .unwrap()
            .get("n");
    assert_eq!(left, 0);
}

async fn lists_page_with_cursors_and_filter(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let kinds = every_kind("l");
    for (spec, _) in &kinds {
        app.admin
            .create_connection(&body(spec.clone()))
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut query = "limit=3".to_owned();
    loop {
        let page = app.admin.list_connections(&query).await.unwrap();
        assert!(page.items.len() <= 3);
        seen.extend(page.items.into_iter().map(|c| c.id));
        match page.next_cursor {
            Some(c) => query = format!("limit=3&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), kinds.len());
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, seen, "pages are ordered and disjoint");
    let https = app.admin.list_connections("kind=http").await.unwrap();
    assert_eq!(https.items.len(), 6);
    let bearer = app
        .admin
        .list_connections("kind=http&auth=bearer")
        .await
        .unwrap();
    assert_eq!(bearer.items.len(), 1);
    let pending = app.admin.list_connections("status=pending").await.unwrap();
    assert_eq!(
        pending.items.len(),
        1,
        "the authorization-code connection waits for consent"
    );
    assert_eq!(
        app.admin
            .list_connections("provider=mistral")
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    assert_eq!(
        app.admin
            .list_connections("project=default")
            .await
            .unwrap()
            .items
            .len(),
        10
    );
    assert_eq!(
        err_status(app.admin.list_connections("kind=ftp").await).0,
        422
    );
    assert_eq!(
        err_status(app.admin.list_connections("limit=0").await).0,
        422
    );
    assert_eq!(
        err_status(app.admin.list_connections("cursor=nope").await).0,
        422
    );
    assert_eq!(
        err_status(app.admin.list_connections("colour=red").await).0,
        400
    );
}

async fn secret_references_resolve_and_pin_the_secret(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.admin
        .put_secret(
            "stripe_key",
            &PutSecret {
                value: "sk_live_canary_ref".into(),
                description: Some("Stripe".into()),
                projects: None,
            },
        )
        .await
        .unwrap();
    let listed = app.admin.list_secrets().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].set);
    assert!(
        !serde_json::to_string(&listed)
            .unwrap()
            .contains("sk_live_canary_ref")
    );
    let c = app
        .admin
        .create_connection(&body(
            json!({"name": "stripe", "kind": "http", "provider": "stripe",
            "auth": {"type": "bearer"}, "config": {"base_url": "https://api.stripe.com"},
            "secrets": {"token": {"ref": "stripe_key"}}}),
        ))
        .await
        .unwrap();
    assert_eq!(
        c.secrets["token"].reference.as_ref().map(|r| r.as_str()),
        Some("stripe_key")
    );
    assert_eq!(
        app.admin.credentials(c.id.as_str()).await.unwrap().secrets["token"],
        "sk_live_canary_ref"
    );
    // Rotating the org secret is seen by the connection at once.
    app.admin
        .put_secret(
            "stripe_key",
            &PutSecret {
                value: "sk_live_rotated".into(),
                description: None,
                projects: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        app.admin.credentials(c.id.as_str()).await.unwrap().secrets["token"],
        "sk_live_rotated"
    );
    assert_eq!(
        err_status(app.admin.delete_secret("stripe_key").await),
        (409, "conflict".into())
    );
    let missing = app
        .admin
        .create_connection(&body(
            json!({"name": "x", "kind": "http", "auth": {"type": "bearer"},
            "config": {"base_url": "https://x.example"}, "secrets": {"token": {"ref": "nope"}}}),
        ))
        .await;
    assert_eq!(err_status(missing).0, 422);
    app.admin.delete_connection(c.id.as_str()).await.unwrap();
    app.admin
        .delete_secret("stripe_key")
        .await
        .expect("free once unreferenced");
    assert!(app.admin.list_secrets().await.unwrap().is_empty());
}

both_backends!(
    every_kind_round_trip_with_masked_secrets,
    patch_keeps_omitted_secrets_and_checks_versions,
    names_are_unique_per_project_until_deleted,
    lists_page_with_cursors_and_filter,
    secret_references_resolve_and_pin_the_secret,
);
