//! The start of the authorization-code flow: PKCE S256, a 256-bit state kept only as its hash,
//! bound to the connection, a ten-minute expiry, the exact callback URL, provider quirks.

use std::collections::HashMap;

use base64::Engine as _;
use patchbay_domain::Role;
use patchbay_domain::api::{CreateConnection, CreateOAuthApp};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Digest;
use sqlx::Row;

use crate::both_backends;
use crate::helpers::{Backend, TestApp, err_status};

fn query(url: &str) -> (url::Url, HashMap<String, String>) {
    let u = url::Url::parse(url).unwrap();
    let q = u
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    (u, q)
}

async fn authorization_requests_are_bound_and_single_use(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let custom: CreateConnection = serde_json::from_value(json!({"name": "idp", "kind": "http",
        "auth": {"type": "oauth2", "authorization_url": "https://id.example.com/authorize?tenant=a",
                 "token_url": "https://id.example.com/token", "scopes": ["read", "write"]},
        "config": {"base_url": "https://api.example.com"}, "secrets": {"client_id": "client-abc", "client_secret": "s3cret-value"}})).unwrap();
    let c = app.admin.create_connection(&custom).await.unwrap();
    let started = app.admin.start_oauth(c.id.as_str()).await.unwrap();
    let (url, q) = query(started["authorization_url"].as_str().unwrap());
    assert_eq!(
        (url.host_str(), url.path()),
        (Some("id.example.com"), "/authorize")
    );
    assert_eq!(q["tenant"], "a", "the endpoint's own query survives");
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], "client-abc");
    assert_eq!(q["redirect_uri"], format!("{}/v1/oauth/callback", app.url));
    assert_eq!(q["scope"], "read write");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"].len(), 43);
    let state = &q["state"];
    assert_eq!(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(state)
            .unwrap()
            .len(),
        32,
        "256 random bits"
    );
    assert!(!url.as_str().contains("s3cret-value"));

    // The database keeps the state's hash only, bound to the connection, for ten minutes.
    let pool = app.db().await;
    let row = sqlx::query("SELECT state_hash, connection_id, principal, redirect_uri, code_verifier, created_at, expires_at, used_at FROM oauth_states")
        .fetch_one(&pool)
        .await
        .unwrap();
    let hash: Vec<u8> = row.get("state_hash");
    assert_eq!(hash, sha2::Sha256::digest(state.as_bytes()).to_vec());
    assert_eq!(row.get::<String, _>("connection_id"), c.id.to_string());
    assert_eq!(
        row.get::<String, _>("principal"),
        app.admin.me().await.unwrap().token.to_string()
    );
    let ttl = row.get::<i64, _>("expires_at") - row.get::<i64, _>("created_at");
    assert_eq!(ttl, 10 * 60 * 1000);
    assert!(row.get::<Option<i64>, _>("used_at").is_none());
    let sealed: Vec<u8> = row.get("code_verifier");
    assert!(!sealed.windows(state.len()).any(|w| w == state.as_bytes()));
    let dump: Vec<String> = sqlx::query("SELECT CAST(state_hash AS TEXT) AS h FROM oauth_states")
        .fetch_all(&pool)
        .await
        .map(|rows| {
            rows.iter()
                .map(|r| r.try_get::<String, _>("h").unwrap_or_default())
                .collect()
        })
        .unwrap_or_default();
    assert!(dump.iter().all(|d| !d.contains(state.as_str())));

    // A second start is a new state; a browser gets a redirect.
    let again = app.admin.start_oauth(c.id.as_str()).await.unwrap();
    assert_ne!(
        query(again["authorization_url"].as_str().unwrap()).1["state"],
        *state
    );
    let browser = app
        .admin
        .raw(
            Method::GET,
            &format!("/v1/oauth/start?connection={}", c.id),
            None,
            &[],
        )
        .await
        .unwrap();
    assert_eq!(browser.status.as_u16(), 303);
    assert!(
        browser.headers["location"]
            .to_str()
            .unwrap()
            .starts_with("https://id.example.com/authorize?")
    );

    // Who may start it, for what.
    let viewer = app.token(&app.admin, Role::Viewer, None).await;
    assert_eq!(err_status(viewer.start_oauth(c.id.as_str()).await).0, 403);
    let other = app.org("other").await;
    assert_eq!(err_status(other.start_oauth(c.id.as_str()).await).0, 404);
    let bearer: CreateConnection = serde_json::from_value(
        json!({"name": "b", "kind": "http", "auth": {"type": "bearer"},
        "config": {"base_url": "https://x.example"}, "secrets": {"token": "t"}}),
    )
    .unwrap();
    let b = app.admin.create_connection(&bearer).await.unwrap();
    assert_eq!(
        err_status(app.admin.start_oauth(b.id.as_str()).await).0,
        409
    );
    let offsite = app
        .admin
        .raw(
            Method::POST,
            &format!("/v1/connections/{}/oauth/start", c.id),
            Some(&json!({"return_to": "https://evil.example/"})),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(offsite.status.as_u16(), 422);
    // A `null` body, as the document allows, is no options.
    let null = app
        .admin
        .raw(
            Method::POST,
            &format!("/v1/connections/{}/oauth/start", c.id),
            Some(&Value::Null),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(null.status.as_u16(), 200, "{}", null.text());
    assert!(null.json()["authorization_url"].is_string());
}

async fn catalog_apps_shape_the_request(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (provider, client) in [("slack", "1.2"), ("google-calendar", "g.apps")] {
        app.admin
            .create_app(&CreateOAuthApp {
                name: provider.into(),
                provider: provider.into(),
                client_id: client.into(),
                client_secret: Some("x".into()),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let via = |name: &str, provider: &str| -> CreateConnection {
        serde_json::from_value(json!({"name": name, "kind": "http", "provider": provider, "auth": {"type": "oauth2", "app": provider}})).unwrap()
    };
    let slack = app
        .admin
        .create_connection(&via("team", "slack"))
        .await
        .unwrap();
    let (url, q) = query(
        app.admin.start_oauth(slack.id.as_str()).await.unwrap()["authorization_url"]
            .as_str()
            .unwrap(),
    );
    assert_eq!(
        url.as_str().split('?').next(),
        Some("https://slack.com/oauth/v2/authorize")
    );
    assert_eq!(q["client_id"], "1.2");
    assert_eq!(
        q["scope"], "chat:write,channels:read",
        "Slack separates scopes with commas"
    );
    let google = app
        .admin
        .create_connection(&via("cal", "google-calendar"))
        .await
        .unwrap();
    let (_, q) = query(
        app.admin.start_oauth(google.id.as_str()).await.unwrap()["authorization_url"]
            .as_str()
            .unwrap(),
    );
    assert_eq!(
        (q["access_type"].as_str(), q["prompt"].as_str()),
        ("offline", "consent")
    );
    assert!(q["scope"].contains("calendar.events"));
}

both_backends!(
    authorization_requests_are_bound_and_single_use,
    catalog_apps_shape_the_request
);
