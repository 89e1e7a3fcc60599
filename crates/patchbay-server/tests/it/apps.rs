//! OAuth apps: admin-only client registrations with a sealed, write-only client secret.

use patchbay_domain::Role;
use patchbay_domain::api::{CreateConnection, CreateOAuthApp, UpdateOAuthApp};
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::Row;

use crate::both_backends;
use crate::helpers::{Backend, TestApp, err_status};

fn slack_app(name: &str) -> CreateOAuthApp {
    CreateOAuthApp {
        name: name.into(),
        provider: "slack".into(),
        client_id: "1234.5678".into(),
        client_secret: Some("slack-client-secret-canary".into()),
        ..Default::default()
    }
}

fn via_app(name: &str, app: &str, provider: &str) -> CreateConnection {
    serde_json::from_value(json!({"name": name, "kind": "http", "provider": provider, "auth": {"type": "oauth2", "app": app}})).unwrap()
}

async fn oauth_apps_are_admin_only_and_write_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let created = app.admin.create_app(&slack_app("workspace")).await.unwrap();
    assert!(created.client_secret.set);
    assert_eq!(
        created.scopes,
        vec!["chat:write", "channels:read"],
        "catalog scopes are the default"
    );
    let listed = serde_json::to_string(&app.admin.list_apps().await.unwrap()).unwrap();
    assert!(!listed.contains("slack-client-secret-canary"));
    let pool = app.db().await;
    let stored: Vec<u8> = sqlx::query("SELECT client_secret FROM oauth_apps WHERE id = $1")
        .bind(created.id.to_string())
        .fetch_one(&pool)
        .await
        .unwrap()
        .get("client_secret");
    assert!(
        !stored.windows(10).any(|w| w == b"slack-clie"),
        "the client secret is sealed"
    );

    // Bad registrations name their fields.
    for (req, field) in [
        (
            CreateOAuthApp {
                provider: "stripe".into(),
                ..slack_app("a")
            },
            "provider",
        ),
        (
            CreateOAuthApp {
                provider: "nope".into(),
                ..slack_app("b")
            },
            "provider",
        ),
        (
            CreateOAuthApp {
                client_id: String::new(),
                ..slack_app("c")
            },
            "client_id",
        ),
        (
            CreateOAuthApp {
                scopes: Some(vec!["has space".into()]),
                ..slack_app("d")
            },
            "scopes",
        ),
    ] {
        let r = app
            .admin
            .raw(
                Method::POST,
                "/v1/oauth/apps",
                Some(&serde_json::to_value(&req).unwrap()),
                &[],
            )
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 422);
        assert_eq!(r.json()["errors"][0]["field"], field);
    }
    assert_eq!(
        err_status(app.admin.create_app(&slack_app("workspace")).await).0,
        409
    );

    // Connections name their app; the provider must match.
    let c = app
        .admin
        .create_connection(&via_app("team", "workspace", "slack"))
        .await
        .unwrap();
    assert_eq!(c.status.as_str(), "pending");
    let wrong = app
        .admin
        .raw(
            Method::POST,
            "/v1/connections",
            Some(&serde_json::to_value(via_app("x", "workspace", "github")).unwrap()),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(wrong.status.as_u16(), 422);
    assert_eq!(wrong.json()["errors"][0]["field"], "auth.app");
    assert_eq!(
        err_status(
            app.admin
                .create_connection(&via_app("y", "missing", "slack"))
                .await
        )
        .0,
        422
    );

    // Roles and organizations.
    let member = app.token(&app.admin, Role::Member, None).await;
    assert_eq!(err_status(member.list_apps().await).0, 403);
    let other = app.org("other").await;
    assert_eq!(
        err_status(other.delete_app(created.id.as_str()).await).0,
        404
    );
    assert_eq!(
        err_status(
            other
                .update_app(created.id.as_str(), &UpdateOAuthApp::default())
                .await
        )
        .0,
        404
    );

    // Updates: a new secret replaces, null removes; a used app cannot go.
    let changed = app
        .admin
        .update_app(
            created.id.as_str(),
            &UpdateOAuthApp {
                client_secret: Some(Value::Null),
                scopes: Some(vec!["chat:write".into()]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(!changed.client_secret.set);
    assert_eq!(changed.version, 2);
    assert_eq!(
        err_status(app.admin.delete_app(created.id.as_str()).await).0,
        409
    );
    app.admin.delete_connection(c.id.as_str()).await.unwrap();
    app.admin.delete_app(created.id.as_str()).await.unwrap();
    assert!(app.admin.list_apps().await.unwrap().is_empty());
}

async fn key_rotation_covers_app_secrets(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.admin.create_app(&slack_app("rotated")).await.unwrap();
    assert_eq!(app.admin.keys().await.unwrap().versions[0].rows, 1);
    app.admin.rotate_keys().await.unwrap();
    while !app.admin.keys().await.unwrap().rotation.unwrap().finished {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let status = app.admin.keys().await.unwrap();
    assert_eq!(status.rotation.unwrap().error, None);
    assert_eq!(
        status
            .versions
            .iter()
            .map(|v| (v.version, v.rows))
            .collect::<Vec<_>>(),
        vec![(1, 0), (2, 1)]
    );
}

/// Concurrent edits that send no If-Match all apply, one after the other: none is answered 412
/// for a version it never named, and every one counts in the version.
async fn edits_without_if_match_all_apply(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let project = app
        .admin
        .create_project(&patchbay_domain::api::CreateProject {
            name: "busy".into(),
            description: None,
        })
        .await
        .unwrap();
    let oauth_app = app
        .admin
        .create_app(&CreateOAuthApp {
            name: "busy-app".into(),
            provider: "github".into(),
            client_id: "Iv1.busy".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let edits = 12;
    let project_edits = (0..edits).map(|i| {
        let path = format!("/v1/projects/{}", project.id);
        let admin = &app.admin;
        async move {
            admin
                .raw(
                    Method::PATCH,
                    &path,
                    Some(&json!({"description": format!("edit {i}")})),
                    &[],
                )
                .await
                .unwrap()
                .status
                .as_u16()
        }
    });
    let app_edits = (0..edits).map(|i| {
        let path = format!("/v1/oauth/apps/{}", oauth_app.id);
        let admin = &app.admin;
        async move {
            admin
                .raw(
                    Method::PATCH,
                    &path,
                    Some(&json!({"client_id": format!("Iv1.edit{i}")})),
                    &[],
                )
                .await
                .unwrap()
                .status
                .as_u16()
        }
    });
    let (projects, apps) = futures::future::join(
        futures::future::join_all(project_edits),
        futures::future::join_all(app_edits),
    )
    .await;
    assert!(projects.iter().all(|s| *s == 200), "{projects:?}");
    assert!(apps.iter().all(|s| *s == 200), "{apps:?}");
    let after = app.admin.get_project(project.id.as_str()).await.unwrap();
    assert_eq!(after.version, project.version + edits);
    let listed = app.admin.list_apps().await.unwrap();
    let after = listed.iter().find(|a| a.id == oauth_app.id).unwrap();
    assert_eq!(after.version, oauth_app.version + edits);
}

both_backends!(
    oauth_apps_are_admin_only_and_write_only,
    key_rotation_covers_app_secrets,
    edits_without_if_match_all_apply,
);
