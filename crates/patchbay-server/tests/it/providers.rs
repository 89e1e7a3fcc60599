//! The provider catalog over the API, and what it adds to connections.

use patchbay_domain::api::CreateConnection;
use reqwest::Method;
use serde_json::json;

use crate::both_backends;
use crate::helpers::{Backend, TestApp, err_status};

async fn catalog_is_served_and_checked_on_create(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let all = app.admin.list_providers(None).await.unwrap();
    assert!(all.len() >= 40, "{} providers", all.len());
    let ai = app.admin.list_providers(Some("ai")).await.unwrap();
    assert!(
        ai.iter().any(|p| p.key == "openai")
            && ai.iter().all(|p| p.categories.contains(&"ai".to_owned()))
    );
    let slack = app.admin.get_provider("slack").await.unwrap();
    assert_eq!(
        slack.token_url.as_deref(),
        Some("https://slack.com/api/oauth.v2.access")
    );
    assert!(slack.operations.contains_key("send_message"));
    assert_eq!(err_status(app.admin.get_provider("nope").await).0, 404);
    // Any token may read the catalog; none may skip authentication.
    let viewer = app
        .token(&app.admin, patchbay_domain::Role::Viewer, None)
        .await;
    assert_eq!(viewer.list_providers(None).await.unwrap().len(), all.len());
    assert_eq!(
        app.anonymous()
            .raw(Method::GET, "/v1/providers", None, &[])
            .await
            .unwrap()
            .status
            .as_u16(),
        401
    );

    // A catalog provider fills in its base URL; unknown providers are refused by name.
    let openai: CreateConnection = serde_json::from_value(json!({"name": "ai", "kind": "http", "provider": "openai",
        "auth": {"type": "api_key", "in": "header", "name": "Authorization", "prefix": "Bearer "}, "secrets": {"api_key": "sk-x"}})).unwrap();
    let c = app.admin.create_connection(&openai).await.unwrap();
    assert_eq!(c.config["base_url"], "https://api.openai.com/v1");
    let unknown: CreateConnection =
        serde_json::from_value(json!({"name": "x", "kind": "http", "provider": "acme-nope",
        "config": {"base_url": "https://x.example"}}))
        .unwrap();
    let r = app
        .admin
        .raw(
            Method::POST,
            "/v1/connections",
            Some(&serde_json::to_value(&unknown).unwrap()),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 422);
    assert_eq!(r.json()["errors"][0]["field"], "provider");
}

both_backends!(catalog_is_served_and_checked_on_create,);
