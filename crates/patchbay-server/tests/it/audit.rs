//! The audit log: who did what, never a secret value, and a hash chain that shows tampering.

use patchbay_domain::api::CreateConnection;
use serde_json::json;

use crate::both_backends;
use crate::helpers::{Backend, TestApp, every_kind};

async fn audit_records_changes_and_detects_tampering(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut planted = Vec::new();
    for (spec, secrets) in every_kind("audit") {
        let c = app
            .admin
            .create_connection(&serde_json::from_value::<CreateConnection>(spec).unwrap())
            .await
            .unwrap();
        app.admin.credentials(c.id.as_str()).await.unwrap();
        planted.extend(secrets);
    }
    let events = app.admin.audit("limit=200").await.unwrap();
    let actions: Vec<&str> = events.items.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == "connection.create")
            .count(),
        10
    );
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == "connection.credentials.read")
            .count(),
        10
    );
    let text = serde_json::to_string(&events).unwrap();
    for s in &planted {
        assert!(!text.contains(s.as_str()), "an audit event holds a secret");
    }
    let me = app.admin.me().await.unwrap();
    assert!(
        events
            .items
            .iter()
            .filter(|e| e.action != "org.create")
            .all(|e| e.actor == format!("token:{}", me.token))
    );
    let filtered = app
        .admin
        .audit("action=connection.create&limit=3")
        .await
        .unwrap();
    assert_eq!(filtered.items.len(), 3);
    assert!(filtered.next_cursor.is_some());
    let v = app.admin.verify_audit().await.unwrap();
    assert!(v.ok);
    assert_eq!(v.events, events.items.len() as i64);

    // The table refuses edits; forcing one past the guard breaks the chain.
    let pool = app.db().await;
    let refused = sqlx::query("UPDATE audit SET outcome = 'failure' WHERE seq = 3")
        .execute(&pool)
        .await;
    assert!(refused.is_err(), "audit rows are append-only");
    let (disable, enable) = match backend {
        Backend::Sqlite => ("DROP TRIGGER audit_no_update", None),
        Backend::Postgres => (
            "ALTER TABLE audit DISABLE TRIGGER audit_no_change",
            Some("ALTER TABLE audit ENABLE TRIGGER audit_no_change"),
        ),
    };
    sqlx::query(disable).execute(&pool).await.unwrap();
    let target_seq = events.items[events.items.len() - 3].seq;
    sqlx::query("UPDATE audit SET details = $1 WHERE seq = $2")
        .bind(json!({"edited": true}).to_string())
        .bind(target_seq)
        .execute(&pool)
        .await
        .unwrap();
    if let Some(e) = enable {
        sqlx::query(e).execute(&pool).await.unwrap();
    }
    let v = app.admin.verify_audit().await.unwrap();
    assert!(!v.ok);
    assert_eq!(v.broken_at, Some(target_seq));
}

both_backends!(audit_records_changes_and_detects_tampering);
