//! A secret goes only where it was stored for: a member who may use a connection but not read
//! its secrets cannot re-point it (base URL, host, port, URL, server URL, OAuth endpoints,
//! SQLite path) without resending the secrets, while an admin can; the change is audited.

use patchbay_domain::Role;
use patchbay_domain::api::UpdateConnection;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, allow_loopback};
use crate::upstream::Upstream;

fn patch(v: Value) -> UpdateConnection {
    serde_json::from_value(v).unwrap()
}

/// The status and the whole message of a refused call.
fn refusal<T: std::fmt::Debug>(r: Result<T, patchbay_client::ClientError>) -> (u16, String) {
    match r {
        Err(e @ patchbay_client::ClientError::Api { status, .. }) => (status, e.to_string()),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn members_cannot_send_a_stored_secret_somewhere_new(backend: Backend) {
    let app = TestApp::spawn_with(backend, Some(allow_loopback())).await;
    let member = app.token(&app.admin, Role::Member, None).await;
    let good = Upstream::start().await;
    let evil = Upstream::start().await;
    let id = app
        .connection(
            json!({"name": "api", "kind": "http", "auth": {"type": "bearer"},
            "config": {"base_url": good.url}, "secrets": {"token": "stored-secret-1"}}),
        )
        .await;
    let act = |c: &patchbay_client::Client| {
        let a = serde_json::from_value(json!({"connection": id, "path": "/ping"})).unwrap();
        let c = c.clone();
        async move { c.http_action(&a).await }
    };

    // Re-pointing alone is refused, naming the field and the secret to resend.
    let (status, detail) = refusal(
        member
            .update_connection(&id, &patch(json!({"config": {"base_url": evil.url}})), None)
            .await,
    );
    assert_eq!(status, 422, "{detail}");
    assert!(detail.contains("config.base_url"), "{detail}");
    assert!(detail.contains("secrets.token"), "{detail}");
    act(&member).await.unwrap();
    assert!(
        evil.seen().is_empty(),
        "the stored secret went to the new host"
    );
    assert_eq!(
        good.last().header("authorization"),
        Some("Bearer stored-secret-1")
    );

    // Other fields stay the member's to change.
    member
        .update_connection(&id, &patch(json!({"config": {"timeout_ms": 5000}})), None)
        .await
        .unwrap();

    // With the secret resent, the member may re-point it: what arrives is the member's own.
    member
        .update_connection(
            &id,
            &patch(json!({"config": {"base_url": evil.url}, "secrets": {"token": "members-own"}})),
            None,
        )
        .await
        .unwrap();
    act(&member).await.unwrap();
    assert_eq!(
        evil.last().header("authorization"),
        Some("Bearer members-own")
    );

    // An admin may re-point without resending.
    app.admin
        .update_connection(&id, &patch(json!({"config": {"base_url": good.url}})), None)
        .await
        .unwrap();
    act(&app.admin).await.unwrap();
    assert_eq!(
        good.last().header("authorization"),
        Some("Bearer members-own")
    );

    // Each change of destination is audited as one, with who resent what.
    let audit = app
        .admin
        .audit("action=connection.destination_change&limit=10")
        .await
        .unwrap();
    assert_eq!(audit.items.len(), 2, "{audit:?}");
    let text = serde_json::to_string(&audit).unwrap();
    assert!(text.contains("config.base_url"));
    assert!(!text.contains("members-own") && !text.contains("stored-secret-1"));
}

async fn every_kind_binds_its_destination_to_its_secrets(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let sqlite_dir = dir.path().to_path_buf();
    let tweak: crate::helpers::Tweak = std::sync::Arc::new(move |s| {
        s.egress.allow_net = vec!["127.0.0.0/8".parse().unwrap()];
        s.egress.allow_sqlite_dirs = vec![sqlite_dir.clone()];
    });
    let app = TestApp::spawn_with(backend, Some(tweak)).await;
    let member = app.token(&app.admin, Role::Member, None).await;
    let cases = [
        (
            json!({"name": "db", "kind": "database", "config": {"driver": "postgresql",
                "host": "127.0.0.1", "database": "test", "username": "svc"}, "secrets": {"password": "db-secret"}}),
            vec![
                ("config.host", json!({"config": {"host": "127.0.0.9"}})),
                ("config.port", json!({"config": {"port": 6543}})),
            ],
            json!({"password": "resent"}),
        ),
        (
            json!({"name": "mail", "kind": "smtp", "auth": {"type": "basic"}, "config": {"host": "127.0.0.1",
                "port": 2525, "encryption": "starttls", "from_address": "ops@example.com", "username": "ops"},
                "secrets": {"password": "smtp-secret"}}),
            vec![
                ("config.host", json!({"config": {"host": "127.0.0.9"}})),
                ("config.port", json!({"config": {"port": 2526}})),
            ],
            json!({"password": "resent"}),
        ),
        (
            json!({"name": "hook", "kind": "webhook", "auth": {"type": "hmac"},
                "config": {"url": "http://127.0.0.1:9/in"}, "secrets": {"secret": "whsec-secret-long-enough-1"}}),
            vec![(
                "config.url",
                json!({"config": {"url": "http://127.0.0.9:9/in"}}),
            )],
            json!({"secret": "whsec-resent-long-enough-22"}),
        ),
        (
            json!({"name": "tools", "kind": "mcp", "auth": {"type": "bearer"},
                "config": {"server_url": "http://127.0.0.1:9/mcp"}, "secrets": {"token": "mcp-secret"}}),
            vec![(
                "config.server_url",
                json!({"config": {"server_url": "http://127.0.0.9:9/mcp"}}),
            )],
            json!({"token": "resent"}),
        ),
        (
            json!({"name": "oauth", "kind": "http", "auth": {"type": "oauth2",
                "authorization_url": "http://127.0.0.1:9/authorize", "token_url": "http://127.0.0.1:9/token"},
                "config": {"base_url": "http://127.0.0.1:9"},
                "secrets": {"client_id": "cid", "client_secret": "oauth-secret"}}),
            vec![
                (
                    "auth.token_url",
                    json!({"auth": {"token_url": "http://127.0.0.9:9/token"}}),
                ),
                (
                    "auth.authorization_url",
                    json!({"auth": {"authorization_url": "http://127.0.0.9:9/authorize"}}),
                ),
            ],
            json!({"client_id": "cid", "client_secret": "resent"}),
        ),
        (
            json!({"name": "cc", "kind": "http", "auth": {"type": "oauth2_client_credentials",
                "token_url": "http://127.0.0.1:9/token"}, "config": {"base_url": "http://127.0.0.1:9"},
                "secrets": {"client_id": "cid", "client_secret": "cc-secret"}}),
            vec![(
                "auth.token_url",
                json!({"auth": {"token_url": "http://127.0.0.9:9/token"}}),
            )],
            json!({"client_id": "cid", "client_secret": "resent"}),
        ),
    ];
    for (body, moves, secrets) in cases {
        let id = app.connection(body.clone()).await;
        for (field, change) in &moves {
            let version = app.admin.get_connection(&id).await.unwrap().version;
            let (status, detail) = refusal(
                member
                    .update_connection(&id, &patch(change.clone()), None)
                    .await,
            );
            assert_eq!(status, 422, "{field}: {detail}");
            assert!(detail.contains(field), "{field}: {detail}");
            let now = app.admin.get_connection(&id).await.unwrap();
            assert_eq!(
                now.version, version,
                "{field}: a refused change changed the connection"
            );
            // Resent secrets make it the member's own change.
            let mut with = change.clone();
            with["secrets"] = secrets.clone();
            member
                .update_connection(&id, &patch(with), None)
                .await
                .unwrap_or_else(|e| panic!("{field} with its secrets resent: {e}"));
        }
        // An admin re-points back without resending.
        let mut back = json!({});
        for (field, _) in &moves {
            let (section, name) = field.split_once('.').unwrap();
            back[section][name] = body[section][name].clone();
        }
        app.admin
            .update_connection(&id, &patch(back), None)
            .await
            .unwrap_or_else(|e| panic!("{body}: admin re-points: {e}"));
    }
}

async fn a_connection_without_secrets_is_the_members_to_re_point(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let sqlite_dir = dir.path().to_path_buf();
    let tweak: crate::helpers::Tweak = std::sync::Arc::new(move |s| {
        s.egress.allow_sqlite_dirs = vec![sqlite_dir.clone()];
    });
    let app = TestApp::spawn_with(backend, Some(tweak)).await;
    let member = app.token(&app.admin, Role::Member, None).await;
    let id = app
        .connection(
            json!({"name": "lite", "kind": "database", "config": {"driver": "sqlite",
            "database": dir.path().join("app.db").to_str().unwrap()}}),
        )
        .await;
    let other = dir.path().join("other.db");
    member
        .update_connection(
            &id,
            &patch(json!({"config": {"database": other.to_str().unwrap()}})),
            None,
        )
        .await
        .unwrap();
    let audit = app
        .admin
        .audit("action=connection.destination_change&limit=10")
        .await
        .unwrap();
    let text = serde_json::to_string(&audit).unwrap();
    assert!(text.contains("config.database"), "{text}");
}

async fn a_linked_oauth_connection_re_pointed_by_a_member_loses_its_tokens(backend: Backend) {
    let app = TestApp::spawn_with(backend, Some(allow_loopback())).await;
    let idp = crate::peers::oidc(&format!("{}/v1/oauth/callback", app.url));
    let id = crate::oauth_flow::linked(&app, idp.port, "linked").await;
    let member = app.token(&app.admin, Role::Member, None).await;
    let elsewhere = format!("http://127.0.0.9:{}/token", idp.port);
    let (status, detail) = refusal(
        member
            .update_connection(&id, &patch(json!({"auth": {"token_url": elsewhere}})), None)
            .await,
    );
    assert_eq!(status, 422, "{detail}");
    assert!(detail.contains("secrets.client_secret"), "{detail}");
    assert!(
        !detail.contains("__"),
        "obtained tokens are not asked for: {detail}"
    );
    // With the client credentials resent the change goes through, and the tokens obtained for
    // the old endpoint are gone: the connection must be authorized again.
    let c = member
        .update_connection(
            &id,
            &patch(json!({"auth": {"token_url": elsewhere},
                "secrets": {"client_id": "patchbay", "client_secret": "members-own"}})),
            None,
        )
        .await
        .unwrap();
    assert_eq!(c.status.as_str(), "pending");
    let (status, _) = refusal(app.admin.access_token(&id).await);
    assert!(status >= 400);
    let db = app.db().await;
    let left: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM connection_secrets WHERE connection_id = $1 AND field LIKE '\\_\\_%' ESCAPE '\\'",
    )
    .bind(&id)
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(left, 0, "the obtained tokens were dropped");
}

both_backends!(
    members_cannot_send_a_stored_secret_somewhere_new,
    every_kind_binds_its_destination_to_its_secrets,
    a_connection_without_secrets_is_the_members_to_re_point,
    a_linked_oauth_connection_re_pointed_by_a_member_loses_its_tokens,
);
