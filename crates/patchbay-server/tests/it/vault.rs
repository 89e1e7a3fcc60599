//! Encryption at rest seen from outside: a ciphertext moved to another row does not open, a
//! missing or wrong master key seals the vault, rotation keeps every secret readable.

use patchbay_domain::api::CreateConnection;
use reqwest::Method;
use serde_json::json;
use sqlx::Row;

use crate::both_backends;
use crate::helpers::{Backend, TestApp, err_status, random_key};

fn db_conn(name: &str, password: &str) -> CreateConnection {
    serde_json::from_value(json!({"name": name, "kind": "database", "config": {"driver": "postgresql",
        "host": "127.0.0.1", "database": "test", "username": "app"}, "secrets": {"password": password}}))
    .unwrap()
}

async fn copied_ciphertext_does_not_decrypt(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let a = app
        .admin
        .create_connection(&db_conn("a", "password-of-a"))
        .await
        .unwrap();
    let b = app
        .admin
        .create_connection(&db_conn("b", "password-of-b"))
        .await
        .unwrap();
    let pool = app.db().await;
    let ct: Vec<u8> = sqlx::query(
        "SELECT ciphertext FROM connection_secrets WHERE connection_id = $1 AND field = 'password'",
    )
    .bind(a.id.to_string())
    .fetch_one(&pool)
    .await
    .unwrap()
    .get("ciphertext");
    sqlx::query("UPDATE connection_secrets SET ciphertext = $1 WHERE connection_id = $2 AND field = 'password'")
        .bind(ct)
        .bind(b.id.to_string())
        .execute(&pool)
        .await
        .unwrap();
    let r = app
        .admin
        .raw(
            Method::GET,
            &format!("/v1/connections/{}/credentials", b.id),
            None,
            &[],
        )
        .await
        .unwrap();
    let text = r.text();
    assert_eq!(r.status.as_u16(), 500);
    assert_eq!(r.json()["code"], "integrity_error");
    assert!(text.contains("does not decrypt"), "{text}");
    assert!(
        text.contains(b.id.as_str()),
        "the error names the connection: {text}"
    );
    assert!(!text.contains("password-of-a") && !text.contains("password-of-b"));
    // The failed read is audited; the untouched connection still opens.
    let events = app
        .admin
        .audit("action=connection.credentials.read")
        .await
        .unwrap();
    assert_eq!(events.items[0].outcome, "failure");
    assert_eq!(
        app.admin.credentials(a.id.as_str()).await.unwrap().secrets["password"],
        "password-of-a"
    );
    // The same holds for a field moved within one connection's row set.
    let two = app
        .admin
        .create_connection(&serde_json::from_value(json!({"name": "two", "kind": "http", "auth": {"type": "api_key"},
            "config": {"base_url": "https://x.example"}, "secrets": {"api_key": "key-value", "api_secret": "secret-value"}})).unwrap())
        .await
        .unwrap();
    sqlx::query("UPDATE connection_secrets SET ciphertext = (SELECT ciphertext FROM connection_secrets WHERE connection_id = $1 AND field = 'api_key') WHERE connection_id = $1 AND field = 'api_secret'")
        .bind(two.id.to_string())
        .execute(&pool)
        .await
        .unwrap();
    let r = app
        .admin
        .raw(
            Method::GET,
            &format!("/v1/connections/{}/credentials", two.id),
            None,
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 500);
    assert!(!r.text().contains("key-value"));
}

async fn a_wrong_or_missing_key_seals_the_vault(backend: Backend) {
    let mut app = TestApp::spawn(backend).await;
    let c = app
        .admin
        .create_connection(&db_conn("sealed", "sealed-password"))
        .await
        .unwrap();
    app.restart(Some(random_key())).await;
    let ready = app
        .anonymous()
        .raw(Method::GET, "/readyz", None, &[])
        .await
        .unwrap();
    assert_eq!(ready.status.as_u16(), 503);
    assert!(
        ready.json()["vault"]
            .as_str()
            .unwrap()
            .starts_with("sealed")
    );
    // Metadata is served; secrets and writes of secrets are not.
    assert_eq!(
        app.admin
            .get_connection(c.id.as_str())
            .await
            .unwrap()
            .name
            .as_str(),
        "sealed"
    );
    assert_eq!(
        err_status(app.admin.credentials(c.id.as_str()).await),
        (503, "vault_sealed".into())
    );
    assert_eq!(
        err_status(app.admin.create_connection(&db_conn("new", "pw")).await).0,
        503
    );
    assert_eq!(err_status(app.admin.rotate_keys().await).0, 503);
    if backend == Backend::Postgres {
        app.restart(None).await;
        assert_eq!(
            err_status(app.admin.credentials(c.id.as_str()).await).0,
            503
        );
    }
    // With the right key everything is back.
    let key = app.master_key.clone();
    app.restart(Some(key)).await;
    assert_eq!(
        app.anonymous()
            .raw(Method::GET, "/readyz", None, &[])
            .await
            .unwrap()
            .status
            .as_u16(),
        200
    );
    assert_eq!(
        app.admin.credentials(c.id.as_str()).await.unwrap().secrets["password"],
        "sealed-password"
    );
}

async fn rotation_moves_every_ciphertext_to_the_new_version(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut ids = Vec::new();
    for i in 0..30 {
        ids.push(
            app.admin
                .create_connection(&db_conn(&format!("c{i}"), &format!("pw-{i}")))
                .await
                .unwrap()
                .id,
        );
    }
    app.admin
        .put_secret(
            "shared",
            &patchbay_domain::api::PutSecret {
                value: "shared-value".into(),
                description: None,
                projects: None,
            },
        )
        .await
        .unwrap();
    let before = app.admin.keys().await.unwrap();
    assert_eq!(before.current_version, Some(1));
    assert_eq!(before.versions[0].rows, 31);
    let started = app.admin.rotate_keys().await.unwrap();
    assert_eq!(started.target_version, 2);
    assert_eq!(started.total, 31);
    let done = loop {
        let s = app.admin.keys().await.unwrap();
        let r = s.rotation.unwrap();
        if r.finished {
            break r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(done.error, None);
    assert_eq!(done.done, 31);
    let after = app.admin.keys().await.unwrap();
    assert_eq!(after.current_version, Some(2));
    assert_eq!(
        after
            .versions
            .iter()
            .map(|v| (v.version, v.rows))
            .collect::<Vec<_>>(),
        vec![(1, 0), (2, 31)]
    );
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(
            app.admin.credentials(id.as_str()).await.unwrap().secrets["password"],
            format!("pw-{i}")
        );
    }
    // Non-operators may not rotate.
    let other = app.org("other").await;
    assert_eq!(err_status(other.rotate_keys().await).0, 403);
}

async fn a_replica_picks_up_a_key_rotated_elsewhere(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let replica = app.replica().await;
    let c = app
        .admin
        .create_connection(&db_conn("shared", "shared-password"))
        .await
        .unwrap();
    assert_eq!(
        replica.credentials(c.id.as_str()).await.unwrap().secrets["password"],
        "shared-password"
    );
    app.admin.rotate_keys().await.unwrap();
    while !app.admin.keys().await.unwrap().rotation.unwrap().finished {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // The replica loaded only key v1 at start; the ciphertext is now on v2.
    assert_eq!(
        replica.credentials(c.id.as_str()).await.unwrap().secrets["password"],
        "shared-password"
    );
    let made_there = replica
        .create_connection(&db_conn("from-replica", "replica-password"))
        .await
        .unwrap();
    assert_eq!(
        app.admin
            .credentials(made_there.id.as_str())
            .await
            .unwrap()
            .secrets["password"],
        "replica-password"
    );
}

both_backends!(
    a_replica_picks_up_a_key_rotated_elsewhere,
    copied_ciphertext_does_not_decrypt,
    a_wrong_or_missing_key_seals_the_vault,
    rotation_moves_every_ciphertext_to_the_new_version,
);

#[tokio::test]
async fn one_rotation_runs_across_replicas_and_each_reports_it() {
    let app = TestApp::spawn(Backend::Postgres).await;
    let (replica, replica_hub) = app.replica_with_hub().await;
    for i in 0..3 {
        app.admin
            .create_connection(&db_conn(&format!("r{i}"), &format!("pw-{i}")))
            .await
            .unwrap();
    }
    // While a rotation holds the lease (here, another replica's), no other starts.
    let now = chrono::Utc::now();
    let store = replica_hub.store();
    assert!(
        store
            .try_lease(
                "rotation",
                "elsewhere",
                now,
                now + chrono::Duration::seconds(60)
            )
            .await
            .unwrap()
    );
    assert_eq!(err_status(app.admin.rotate_keys().await).0, 409);
    assert_eq!(err_status(replica.rotate_keys().await).0, 409);
    let now = chrono::Utc::now();
    store
        .try_lease("rotation", "elsewhere", now, now)
        .await
        .unwrap();
    // Started on one replica, its progress shows on the other.
    let started = app.admin.rotate_keys().await.unwrap();
    let seen = loop {
        let r = replica.keys().await.unwrap().rotation.unwrap();
        if r.finished {
            break r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(seen.target_version, started.target_version);
    assert_eq!((seen.done, seen.error.as_deref()), (seen.total, None));
    assert!(seen.total >= 3);
    // Finished, the next one may start at once.
    app.admin.rotate_keys().await.unwrap();
}
