//! Catalog quirks end to end against a local server that answers the way Slack does: comma
//! scope lists, `client_secret_post`, token answers that say `ok: false` with HTTP 200 or carry
//! only a user token under `authed_user`, and a verify request (`auth.test`) that names the
//! account and lists the granted scopes in a header.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Query};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use patchbay_domain::api::ErrorKind;
use serde_json::json;

use crate::both_backends;
use crate::helpers::{Backend, TestApp, allow_loopback};
use crate::peers::no_redirects;

#[derive(Default)]
struct Seen {
    authorize: Vec<HashMap<String, String>>,
    token: Vec<HashMap<String, String>>,
    revoked_tokens: Vec<String>,
}

/// The Slack-shaped server: `/oauth/v2/authorize` consents at once with the code named by the
/// `login_hint` parameter; `/api/oauth.v2.access` answers per code; `/api/auth.test` knows two
/// tokens, and answers `invalid_auth` for the rest (or for a token listed as revoked).
async fn slack() -> (String, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (s1, s2, s3) = (seen.clone(), seen.clone(), seen.clone());
    let app = axum::Router::new()
        .route(
            "/oauth/v2/authorize",
            get(move |Query(q): Query<HashMap<String, String>>| {
                s1.lock().unwrap().authorize.push(q.clone());
                let to = format!(
                    "{}?code={}&state={}",
                    q["redirect_uri"],
                    q.get("login_hint").map_or("bot-code", String::as_str),
                    q["state"]
                );
                async move { Redirect::to(&to) }
            }),
        )
        .route(
            "/api/oauth.v2.access",
            post(move |Form(f): Form<HashMap<String, String>>| {
                s2.lock().unwrap().token.push(f.clone());
                let client_ok = f.get("client_id").map(String::as_str) == Some("slack-client")
                    && f.get("client_secret").map(String::as_str) == Some("slack-secret");
                let body = match (client_ok, f.get("code").map(String::as_str)) {
                    (false, _) => json!({"ok": false, "error": "invalid_client_id"}),
                    (true, Some("bot-code")) => json!({"ok": true, "app_id": "A1",
                        "access_token": "xoxb-bot-token", "token_type": "bot", "scope": "chat:write,channels:read",
                        "bot_user_id": "U0BOT", "team": {"id": "T1", "name": "Acme"},
                        "authed_user": {"id": "U1", "scope": "search:read", "access_token": "xoxp-user-beside-bot", "token_type": "user"}}),
                    (true, Some("user-code")) => json!({"ok": true, "app_id": "A1", "team": {"id": "T1"},
                        "authed_user": {"id": "U1", "scope": "search:read,users:read", "access_token": "xoxp-user-only", "token_type": "user"}}),
                    (true, Some("silent-code")) => json!({"ok": false}),
                    _ => json!({"ok": false, "error": "invalid_code"}),
                };
                async move { axum::Json(body) }
            }),
        )
        .route(
            "/api/auth.test",
            get(move |h: HeaderMap| {
                let auth = h
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let revoked = s3
                    .lock()
                    .unwrap()
                    .revoked_tokens
                    .iter()
                    .any(|t| auth == format!("Bearer {t}"));
                let user = match auth.as_str() {
                    _ if revoked => None,
                    "Bearer xoxb-bot-token" => Some(("U0BOT", "chat:write,channels:read")),
                    "Bearer xoxp-user-only" => Some(("U1", "search:read,users:read")),
                    _ => None,
                };
                async move {
                    match user {
                        Some((id, scopes)) => (
                            StatusCode::OK,
                            [("x-oauth-scopes", scopes)],
                            axum::Json(json!({"ok": true, "user_id": id, "team": "Acme"})),
                        )
                            .into_response(),
                        None => axum::Json(json!({"ok": false, "error": "invalid_auth"}))
                            .into_response(),
                    }
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

/// A `slack` connection with its own client, pointed at the local server.
async fn slack_connection(app: &TestApp, base: &str, name: &str, hint: &str) -> String {
    let c = app
        .admin
        .create_connection(
            &serde_json::from_value(json!({"name": name, "kind": "http", "provider": "slack",
                "auth": {"type": "oauth2", "authorization_url": format!("{base}/oauth/v2/authorize"),
                    "token_url": format!("{base}/api/oauth.v2.access"), "authorization_params": {"login_hint": hint}},
                "config": {"base_url": format!("{base}/api")},
                "secrets": {"client_id": "slack-client", "client_secret": "slack-secret"}}))
            .unwrap(),
        )
        .await
        .unwrap();
    c.id.to_string()
}

/// Runs the flow; the callback page's status and text.
async fn link(app: &TestApp, id: &str) -> (u16, String) {
    let started = app.admin.start_oauth(id).await.unwrap();
    let browser = no_redirects();
    let r = browser
        .get(started["authorization_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let back = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(back.starts_with(&format!("{}/v1/oauth/callback", app.url)));
    let page = browser.get(&back).send().await.unwrap();
    (page.status().as_u16(), page.text().await.unwrap())
}

async fn slack_token_answers_and_verify(backend: Backend) {
    let app = TestApp::spawn_with(backend, Some(allow_loopback())).await;
    let (base, seen) = slack().await;

    // A bot install: the top-level token is the connection's; the user token beside it is
    // neither stored in the clear nor shown anywhere.
    let bot = slack_connection(&app, &base, "bot", "bot-code").await;
    let (status, page) = link(&app, &bot).await;
    assert_eq!(status, 200, "{page}");
    {
        let seen = seen.lock().unwrap();
        let authorize = seen.authorize.last().unwrap();
        assert_eq!(
            authorize["scope"], "chat:write,channels:read",
            "comma-separated catalog scopes"
        );
        assert_eq!(authorize["code_challenge_method"], "S256");
        let token = seen.token.last().unwrap();
        assert_eq!(token["client_secret"], "slack-secret", "client_secret_post");
        assert!(token.contains_key("code_verifier"));
    }
    let token = app.admin.access_token(&bot).await.unwrap();
    assert_eq!(token["access_token"], "xoxb-bot-token");
    let c = app.admin.get_connection(&bot).await.unwrap();
    assert_eq!(c.status.as_str(), "active");
    let shown = serde_json::to_string(&c).unwrap();
    assert!(
        !shown.contains("xoxp-user") && !shown.contains("xoxb-bot"),
        "{shown}"
    );
    assert_eq!(
        c.oauth.as_ref().unwrap().scopes,
        ["chat:write", "channels:read"]
    );
    let pool = app.db().await;
    let oauth_json: String = sqlx::query_scalar("SELECT oauth FROM connections WHERE id = $1")
        .bind(bot.clone())
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(!oauth_json.contains("xoxp"), "{oauth_json}");

    // The test names the account and the scopes, and the connection keeps the account.
    let r = app.admin.test_connection(&bot).await.unwrap();
    assert!(r.success, "{r:?}");
    assert_eq!(r.account.as_deref(), Some("U0BOT"));
    assert_eq!(r.token_valid, Some(true));
    assert_eq!(
        r.scopes_granted,
        Some(vec!["chat:write".to_owned(), "channels:read".to_owned()])
    );
    let c = app.admin.get_connection(&bot).await.unwrap();
    assert_eq!(c.oauth.as_ref().unwrap().account.as_deref(), Some("U0BOT"));

    // Slack answers a revoked token with HTTP 200 and ok: false: an auth failure.
    seen.lock()
        .unwrap()
        .revoked_tokens
        .push("xoxb-bot-token".into());
    let r = app.admin.test_connection(&bot).await.unwrap();
    assert!(!r.success);
    assert_eq!(r.error_kind, Some(ErrorKind::Auth));
    assert_eq!(r.token_valid, Some(false));
    assert!(r.message.contains("invalid_auth"), "{}", r.message);
    assert_eq!(
        app.admin
            .get_connection(&bot)
            .await
            .unwrap()
            .status
            .as_str(),
        "invalid"
    );

    // A user-token-only install: the token under authed_user is the connection's.
    let user = slack_connection(&app, &base, "user", "user-code").await;
    assert_eq!(link(&app, &user).await.0, 200);
    let token = app.admin.access_token(&user).await.unwrap();
    assert_eq!(token["access_token"], "xoxp-user-only");
    let c = app.admin.get_connection(&user).await.unwrap();
    assert_eq!(
        c.oauth.as_ref().unwrap().scopes,
        ["search:read", "users:read"]
    );
    let r = app.admin.test_connection(&user).await.unwrap();
    assert_eq!(r.account.as_deref(), Some("U1"), "{r:?}");

    // ok: false with HTTP 200 is a failed exchange, with or without an error code; the
    // connection waits for a new attempt.
    for (name, hint, expected) in [
        ("bad", "bad-code", "invalid_code"),
        ("silent", "silent-code", "provider_error"),
    ] {
        let id = slack_connection(&app, &base, name, hint).await;
        let (status, page) = link(&app, &id).await;
        assert_eq!(status, 400, "{page}");
        assert!(page.contains(expected), "{page}");
        let c = app.admin.get_connection(&id).await.unwrap();
        assert_eq!(c.status.as_str(), "pending");
        assert!(app.admin.access_token(&id).await.is_err());
    }
}

/// Salesforce names each org's API host in its token answer (`instance_url`): the connection's
/// base URL comes from it, and the catalog's verify request goes there.
async fn salesforce_base_url_comes_from_the_token_answer(backend: Backend) {
    let app = TestApp::spawn_with(backend, Some(allow_loopback())).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let instance = format!("{base}/instance-42");
    let answer = json!({"access_token": "sf-access", "refresh_token": "sf-refresh", "token_type": "Bearer",
        "scope": "api refresh_token", "instance_url": instance, "id": "https://login.example/id/00D/005"});
    let server = axum::Router::new()
        .route(
            "/services/oauth2/authorize",
            get(|Query(q): Query<HashMap<String, String>>| async move {
                Redirect::to(&format!(
                    "{}?code=sf-code&state={}",
                    q["redirect_uri"], q["state"]
                ))
            }),
        )
        .route(
            "/services/oauth2/token",
            post(move || {
                let answer = answer.clone();
                async move { axum::Json(answer) }
            }),
        )
        .route(
            "/instance-42/services/data/v60.0/limits",
            get(|h: HeaderMap| async move {
                if h.get("authorization")
                    .is_some_and(|v| v == "Bearer sf-access")
                {
                    (StatusCode::OK, "{}")
                } else {
                    (StatusCode::UNAUTHORIZED, "{}")
                }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, server).await.unwrap() });
    let c = app
        .admin
        .create_connection(
            &serde_json::from_value(json!({"name": "sf", "kind": "http", "provider": "salesforce",
                "auth": {"type": "oauth2", "authorization_url": format!("{base}/services/oauth2/authorize"),
                    "token_url": format!("{base}/services/oauth2/token")},
                "secrets": {"client_id": "sf-client", "client_secret": "sf-secret"}}))
            .unwrap(),
        )
        .await
        .unwrap();
    let id = c.id.to_string();
    assert!(
        c.config.get("base_url").is_none(),
        "no base URL before the link"
    );
    assert_eq!(link(&app, &id).await.0, 200);
    let c = app.admin.get_connection(&id).await.unwrap();
    assert_eq!(
        c.config["base_url"],
        format!("{instance}/services/data/v60.0")
    );
    let r = app.admin.test_connection(&id).await.unwrap();
    assert!(r.success, "{r:?}");
    assert_eq!(r.status_code, Some(200));
}

both_backends!(
    slack_token_answers_and_verify,
    salesforce_base_url_comes_from_the_token_answer,
);
