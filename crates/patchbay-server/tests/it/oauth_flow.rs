//! The authorization-code flow end to end against a real authorization server (oidc-provider):
//! consent scripted at the server, code + PKCE, token exchange, and the state attacks.

use std::sync::Arc;

use patchbay_domain::api::CreateConnection;
use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, Tweak, allow_loopback};
use crate::peers::{self, consent, no_redirects};

pub(crate) fn oidc_connection(name: &str, port: u16) -> CreateConnection {
    let base = format!("http://127.0.0.1:{port}");
    serde_json::from_value(json!({"name": name, "kind": "http", "auth": {"type": "oauth2",
        "authorization_url": format!("{base}/auth"), "token_url": format!("{base}/token"), "issuer": base,
        "scopes": ["openid", "offline_access"], "authorization_params": {"prompt": "consent"}},
        "config": {"base_url": base}, "secrets": {"client_id": "patchbay", "client_secret": "patchbay-secret"}}))
    .unwrap()
}

/// [`oidc_connection`] with the provider's revocation endpoint.
fn revocable(name: &str, port: u16) -> CreateConnection {
    let mut body = serde_json::to_value(oidc_connection(name, port)).unwrap();
    body["auth"]["revocation_url"] = json!(format!("http://127.0.0.1:{port}/token/revocation"));
    serde_json::from_value(body).unwrap()
}

/// The callback at `url` answers 400 with a page that says `reason`.
async fn refused(client: &reqwest::Client, url: &str, reason: &str) {
    refused_with(client, url, 400, reason).await;
}

async fn refused_with(client: &reqwest::Client, url: &str, status: u16, reason: &str) {
    let r = client.get(url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), status);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "a page"
    );
    let page = r.text().await.unwrap();
    assert!(page.contains(reason), "expected {reason:?} in {page}");
}

pub(crate) async fn stats(port: u16) -> Value {
    reqwest::get(format!("http://127.0.0.1:{port}/_stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn with_param(url: &str, key: &str, value: &str) -> String {
    let mut u = reqwest::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .filter(|(k, _)| k != key)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    u.query_pairs_mut()
        .clear()
        .extend_pairs(pairs)
        .append_pair(key, value);
    u.to_string()
}

async fn code_flow_with_pkce_and_state_attacks(backend: Backend) {
    let app = TestApp::spawn_with(backend, Some(allow_loopback())).await;
    let callback = format!("{}/v1/oauth/callback", app.url);
    let idp = peers::oidc(&callback);
    let anon = no_redirects();

    let c = app
        .admin
        .create_connection(&oidc_connection("idp", idp.port))
        .await
        .unwrap();
    assert_eq!(c.status.as_str(), "pending");
    let started = app.admin.start_oauth(c.id.as_str()).await.unwrap();
    // The request carries an S256 challenge; the provider requires the matching verifier for
    // every code, so the exchange below succeeds only if Patchbay sent the right one.
    let authorize = url::Url::parse(started["authorization_url"].as_str().unwrap()).unwrap();
    let q: std::collections::HashMap<_, _> = authorize.query_pairs().into_owned().collect();
    assert_eq!(
        q.get("code_challenge_method").map(String::as_str),
        Some("S256")
    );
    assert_eq!(q.get("code_challenge").map(String::len), Some(43));
    let back = consent(started["authorization_url"].as_str().unwrap(), &callback).await;
    assert!(back.contains("code=") && back.contains("iss="), "{back}");
    let page = anon.get(&back).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert_eq!(page.headers()["cache-control"], "no-store");
    let html = page.text().await.unwrap();
    assert!(
        html.contains("oauth_success") && html.contains(c.id.as_str()),
        "{html}"
    );
    assert!(
        html.contains(&format!("\"{}\"", app.url)),
        "postMessage names its target origin"
    );
    assert_eq!(stats(idp.port).await["token_requests"], 1);
    let linked = app.admin.get_connection(c.id.as_str()).await.unwrap();
    assert_eq!(linked.status.as_str(), "active");
    let oauth = linked.oauth.unwrap();
    assert!(oauth.refreshable);
    assert!(oauth.expires_at.is_some());
    assert_eq!(oauth.linked_at, oauth.obtained_at, "linked now");
    assert_eq!(oauth.last_refresh_at, None, "not renewed yet");
    assert!(
        linked.secrets.keys().all(|k| !k.starts_with("__")),
        "tokens are not listed as secrets"
    );
    let token = app
        .admin
        .raw(
            Method::GET,
            &format!("/v1/connections/{}/token", c.id),
            None,
            &[],
        )
        .await
        .unwrap();
    assert_eq!(token.status.as_u16(), 200);
    let access = token.json()["access_token"].as_str().unwrap().to_owned();
    assert!(access.len() > 20);
    assert!(
        !serde_json::to_string(&app.admin.get_connection(c.id.as_str()).await.unwrap())
            .unwrap()
            .contains(&access)
    );

    // Replaying the same callback: the state was used.
    refused(&anon, &back, "already used").await;
    assert_eq!(
        stats(idp.port).await["token_requests"],
        1,
        "no second exchange"
    );

    // A forged state names no authorization request.
    refused_with(
        &anon,
        &with_param(&back, "state", "forged-state-value"),
        404,
        "unknown authorization request",
    )
    .await;

    // A wrong issuer on a fresh flow.
    let fresh = app.admin.start_oauth(c.id.as_str()).await.unwrap();
    let back2 = consent(fresh["authorization_url"].as_str().unwrap(), &callback).await;
    refused(
        &anon,
        &with_param(&back2, "iss", "http://evil.example"),
        "unexpected issuer",
    )
    .await;
    assert_eq!(stats(idp.port).await["token_requests"], 1);

    // An expired state.
    let late = app.admin.start_oauth(c.id.as_str()).await.unwrap();
    let back3 = consent(late["authorization_url"].as_str().unwrap(), &callback).await;
    app.clock.advance(std::time::Duration::from_secs(11 * 60));
    refused(&anon, &back3, "expired").await;

    // The user declines: a new connection stays pending.
    let d = app
        .admin
        .create_connection(&oidc_connection("declined", idp.port))
        .await
        .unwrap();
    let declined_start = app.admin.start_oauth(d.id.as_str()).await.unwrap();
    let state = reqwest::Url::parse(declined_start["authorization_url"].as_str().unwrap())
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    refused(
        &anon,
        &format!("{callback}?error=access_denied&state={state}"),
        "access_denied",
    )
    .await;
    assert_eq!(
        app.admin
            .get_connection(d.id.as_str())
            .await
            .unwrap()
            .status
            .as_str(),
        "pending"
    );

    // A state minted in another organization links only that organization's connection.
    let other = app.org("other").await;
    let theirs = other
        .create_connection(&oidc_connection("theirs", idp.port))
        .await
        .unwrap();
    let their_start = other.start_oauth(theirs.id.as_str()).await.unwrap();
    let their_back = consent(
        their_start["authorization_url"].as_str().unwrap(),
        &callback,
    )
    .await;
    assert_eq!(
        anon.get(&their_back)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        other
            .get_connection(theirs.id.as_str())
            .await
            .unwrap()
            .status
            .as_str(),
        "active"
    );
    assert_eq!(
        app.admin
            .get_connection(d.id.as_str())
            .await
            .unwrap()
            .status
            .as_str(),
        "pending"
    );
    assert_eq!(
        crate::helpers::err_status(app.admin.get_connection(theirs.id.as_str()).await).0,
        404
    );

    let links = app.admin.audit("action=oauth.link").await.unwrap();
    assert!(
        links.items.iter().any(|e| e.outcome == "success")
            && links.items.iter().any(|e| e.outcome == "failure")
    );
}

/// Links a connection through the full flow and returns its id.
pub(crate) async fn linked(app: &TestApp, idp_port: u16, name: &str) -> String {
    let callback = format!("{}/v1/oauth/callback", app.url);
    let c = app
        .admin
        .create_connection(&oidc_connection(name, idp_port))
        .await
        .unwrap();
    link(app, c.id.as_str(), &callback).await;
    c.id.to_string()
}

/// Runs connection `id`'s authorization-code flow through the provider's consent to the
/// callback, which must accept it.
async fn link(app: &TestApp, id: &str, callback: &str) {
    let started = app.admin.start_oauth(id).await.unwrap();
    let back = consent(started["authorization_url"].as_str().unwrap(), callback).await;
    let anon = no_redirects();
    assert_eq!(anon.get(&back).send().await.unwrap().status().as_u16(), 200);
}

/// Moves the server's clock past the stored access token's expiry (every connection of the
/// server ages with it).
pub(crate) async fn expire(app: &TestApp, id: &str) {
    let c = app.admin.get_connection(id).await.unwrap();
    let oauth = c.oauth.expect("an OAuth connection");
    let expires = oauth.expires_at.expect("the token expires");
    let left = expires - patchbay_engine::Clock::now(&*app.clock);
    app.clock
        .advance(left.to_std().unwrap_or_default() + std::time::Duration::from_secs(1));
}

/// Ages the connection past its token's expiry and runs the renewal sweep, which must renew it
/// with one token request; the token requests the server had counted before.
pub(crate) async fn renews_once(app: &TestApp, idp_port: u16, id: &str) -> i64 {
    let before = stats(idp_port).await["token_requests"].as_i64().unwrap();
    expire(app, id).await;
    assert_eq!(app.hub.refresh_due().await.unwrap(), 1);
    assert_eq!(
        stats(idp_port).await["token_requests"].as_i64().unwrap(),
        before + 1
    );
    before
}

async fn token_of(client: &patchbay_client::Client, id: &str) -> (u16, Value) {
    let r = client
        .raw(
            Method::GET,
            &format!("/v1/connections/{id}/token"),
            None,
            &[],
        )
        .await
        .unwrap();
    (r.status.as_u16(), r.json())
}

async fn refresh_storm_reaches_the_server_once(backend: Backend) {
    let app = TestApp::spawn_with(backend, Some(allow_loopback())).await;
    let idp = peers::oidc(&format!("{}/v1/oauth/callback", app.url));
    let id = linked(&app, idp.port, "storm").await;
    let (_, first) = token_of(&app.admin, &id).await;
    expire(&app, &id).await;
    let before = stats(idp.port).await["token_requests"].as_i64().unwrap();
    // 500 callers at once; on PostgreSQL half of them ask a second replica.
    let clients = match backend {
        Backend::Sqlite => vec![app.admin.clone()],
        Backend::Postgres => vec![app.admin.clone(), app.replica().await],
    };
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..500 {
        let client = clients[i % clients.len()].clone();
        let id = id.clone();
        calls.spawn(async move { token_of(&client, &id).await });
    }
    let mut tokens = std::collections::BTreeSet::new();
    while let Some(r) = calls.join_next().await {
        let (status, body) = r.unwrap();
        assert_eq!(status, 200, "{body}");
        tokens.insert(body["access_token"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        stats(idp.port).await["token_requests"].as_i64().unwrap(),
        before + 1,
        "exactly one refresh reached the server"
    );
    assert_eq!(tokens.len(), 1, "every caller got the same new token");
    assert_ne!(
        tokens.iter().next().unwrap(),
        first["access_token"].as_str().unwrap()
    );
    let c = app.admin.get_connection(&id).await.unwrap();
    assert!(c.oauth.as_ref().unwrap().last_refresh_at.is_some());
    // The rotated refresh token was kept: a second refresh works (a reused one would not).
    expire(&app, &id).await;
    assert_eq!(token_of(&app.admin, &id).await.0, 200);
    assert_eq!(
        stats(idp.port).await["token_requests"].as_i64().unwrap(),
        before + 2
    );
}

crate::both_backends!(
    refresh_storm_reaches_the_server_once,
    disconnecting_revokes_and_forgets_the_tokens
);

type Received = Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, Vec<u8>)>>>;

/// A receiver of system events.
async fn event_receiver() -> (String, Received) {
    let seen: Received = Arc::default();
    let record = seen.clone();
    let app =
        axum::Router::new().fallback(move |h: axum::http::HeaderMap, body: axum::body::Bytes| {
            let record = record.clone();
            async move {
                record.lock().unwrap().push((h, body.to_vec()));
                axum::http::StatusCode::NO_CONTENT
            }
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

const EVENT_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Event types received so far, each checked against its Standard Webhooks signature.
fn verified_events(seen: &Received) -> Vec<String> {
    use base64::Engine as _;
    use hmac::Mac;
    let key = base64::engine::general_purpose::STANDARD
        .decode(EVENT_SECRET.trim_start_matches("whsec_"))
        .unwrap();
    seen.lock()
        .unwrap()
        .iter()
        .map(|(h, body)| {
            let id = h["webhook-id"].to_str().unwrap();
            let ts = h["webhook-timestamp"].to_str().unwrap();
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
            mac.update(format!("{id}.{ts}.").as_bytes());
            mac.update(body);
            let expected = format!(
                "v1,{}",
                base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
            );
            assert_eq!(
                h["webhook-signature"].to_str().unwrap(),
                expected,
                "event signature"
            );
            let v: Value = serde_json::from_slice(body).unwrap();
            v["type"].as_str().unwrap().to_owned()
        })
        .collect()
}

async fn wait_for_event(seen: &Received, kind: &str) {
    for _ in 0..100 {
        if verified_events(seen).iter().any(|k| k == kind) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no {kind} event arrived: {:?}", verified_events(seen));
}

async fn outages_keep_active_and_invalid_grant_expires(backend: Backend) {
    let (events_url, seen) = event_receiver().await;
    let tweak: Tweak = Arc::new(move |s| {
        s.egress.allow_net = vec!["127.0.0.0/8".parse().unwrap()];
        s.workers.event_webhook_url = Some(events_url.parse().unwrap());
        s.workers.event_webhook_secret = Some(EVENT_SECRET.to_owned().into());
    });
    let app = TestApp::spawn_with(backend, Some(tweak)).await;
    let idp = peers::oidc(&format!("{}/v1/oauth/callback", app.url));
    let id = linked(&app, idp.port, "outage").await;
    let http = reqwest::Client::new();
    // The token endpoint answers 503: bounded retries, then 502; the connection stays active.
    http.post(format!("http://127.0.0.1:{}/_mode?token=503", idp.port))
        .send()
        .await
        .unwrap();
    expire(&app, &id).await;
    let before = stats(idp.port).await["token_requests"].as_i64().unwrap();
    let (status, body) = token_of(&app.admin, &id).await;
    assert_eq!(status, 502, "{body}");
    wait_for_event(&seen, "connection.refresh_failed").await;
    assert_eq!(
        stats(idp.port).await["token_requests"].as_i64().unwrap(),
        before + 3,
        "three attempts"
    );
    let c = app.admin.get_connection(&id).await.unwrap();
    assert_eq!(c.status.as_str(), "active");
    assert!(c.oauth.unwrap().last_refresh_error.is_some());
    // Back up: it recovers.
    http.post(format!("http://127.0.0.1:{}/_mode?token=ok", idp.port))
        .send()
        .await
        .unwrap();
    assert_eq!(token_of(&app.admin, &id).await.0, 200);
    wait_for_event(&seen, "connection.recovered").await;
    // The grant is revoked at the provider: invalid_grant expires the connection.
    let creds = app.admin.credentials(&id).await.unwrap();
    let refresh = creds.secrets["__refresh_token"].clone();
    let revoked = http
        .post(format!("http://127.0.0.1:{}/token/revocation", idp.port))
        .basic_auth("patchbay", Some("patchbay-secret"))
        .form(&[
            ("token", refresh.as_str()),
            ("token_type_hint", "refresh_token"),
        ])
        .send()
        .await
        .unwrap();
    assert!(revoked.status().is_success());
    expire(&app, &id).await;
    let (status, body) = token_of(&app.admin, &id).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        app.admin.get_connection(&id).await.unwrap().status.as_str(),
        "expired"
    );
    let expired = app.admin.audit("action=connection.expired").await.unwrap();
    assert_eq!(expired.items.len(), 1);
    wait_for_event(&seen, "connection.expired").await;
    assert!(verified_events(&seen).contains(&"connection.created".to_owned()));
    let bodies: String = seen
        .lock()
        .unwrap()
        .iter()
        .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
        .collect();
    assert!(
        !bodies.contains(&refresh) && !bodies.contains("patchbay-secret"),
        "events carry no secrets"
    );
    assert!(!serde_json::to_string(&expired).unwrap().contains(&refresh));
    // Deleting it revokes at the provider and says so.
    let mut auth = app.admin.get_connection(&id).await.unwrap().auth;
    auth.insert(
        "revocation_url".into(),
        json!(format!("http://127.0.0.1:{}/token/revocation", idp.port)),
    );
    let patch = patchbay_domain::api::UpdateConnection {
        auth: Some(serde_json::Value::Object(auth)),
        ..Default::default()
    };
    app.admin
        .update_connection(&id, &patch, None)
        .await
        .unwrap();
    app.admin.delete_connection(&id).await.unwrap();
    wait_for_event(&seen, "connection.revoked").await;
    assert!(verified_events(&seen).contains(&"connection.revoked".to_owned()));
}

async fn disconnecting_revokes_and_forgets_the_tokens(backend: Backend) {
    let app = TestApp::spawn_with(backend, Some(allow_loopback())).await;
    let callback = format!("{}/v1/oauth/callback", app.url);
    let idp = peers::oidc(&callback);
    let c = app
        .admin
        .create_connection(&revocable("unlink", idp.port))
        .await
        .unwrap();
    link(&app, c.id.as_str(), &callback).await;
    let id = c.id.to_string();
    assert_eq!(token_of(&app.admin, &id).await.0, 200);
    let path = format!("/v1/connections/{id}/oauth/disconnect");
    let viewer = app
        .token(&app.admin, patchbay_domain::Role::Viewer, None)
        .await;
    let refused = viewer.raw(Method::POST, &path, None, &[]).await.unwrap();
    assert_eq!(refused.status.as_u16(), 403, "a viewer cannot unlink");

    let r = app.admin.raw(Method::POST, &path, None, &[]).await.unwrap();
    assert_eq!(r.status.as_u16(), 204);
    assert_eq!(
        stats(idp.port).await["revocations"],
        1,
        "the grant was revoked at the provider"
    );
    let after = app.admin.get_connection(&id).await.unwrap();
    assert_eq!(after.status.as_str(), "pending");
    assert!(
        after.oauth.as_ref().is_none_or(|o| o.linked_at.is_none()),
        "{:?}",
        after.oauth
    );
    assert!(after.secrets.contains_key("client_id"), "the client stays");
    let pool = app.db().await;
    let tokens: i64 = sqlx::Row::get(
        &sqlx::query(
            "SELECT COUNT(*) AS n FROM connection_secrets WHERE connection_id = $1 AND field LIKE '\\_\\_%' ESCAPE '\\'",
        )
        .bind(id.clone())
        .fetch_one(&pool)
        .await
        .unwrap(),
        "n",
    );
    assert_eq!(tokens, 0, "the obtained tokens are destroyed");
    assert_eq!(
        token_of(&app.admin, &id).await.0,
        409,
        "no token until connected again"
    );
    let events = app
        .admin
        .audit(&format!("action=oauth.unlink&target={id}"))
        .await
        .unwrap();
    assert_eq!(events.items.len(), 1);
    assert_eq!(events.items[0].details["revocation"], "revoked");

    // Connected again, it works as before.
    link(&app, &id, &callback).await;
    assert_eq!(token_of(&app.admin, &id).await.0, 200);
    let bearer = app
        .connection(
            json!({"name": "plain", "kind": "http", "auth": {"type": "bearer"},
        "config": {"base_url": "https://a.example"}, "secrets": {"token": "t"}}),
        )
        .await;
    let not_oauth = app
        .admin
        .raw(
            Method::POST,
            &format!("/v1/connections/{bearer}/oauth/disconnect"),
            None,
            &[],
        )
        .await
        .unwrap();
    assert_eq!(not_oauth.status.as_u16(), 409);
}

async fn all_of_a_providers_connections_are_revoked_and_deleted_at_once(backend: Backend) {
    let app = TestApp::spawn_with(backend, Some(allow_loopback())).await;
    let callback = format!("{}/v1/oauth/callback", app.url);
    let idp = peers::oidc(&callback);
    let linked = app
        .admin
        .create_connection(&revocable("linked", idp.port))
        .await
        .unwrap();
    link(&app, linked.id.as_str(), &callback).await;
    let mut custom = vec![linked.id.to_string()];
    for name in ["plain-1", "plain-2"] {
        custom.push(
            app.connection(
                json!({"name": name, "kind": "http", "auth": {"type": "bearer"},
                "config": {"base_url": "https://a.example"}, "secrets": {"token": "t"}}),
            )
            .await,
        );
    }
    let github = app
        .connection(
            json!({"name": "gh", "kind": "http", "provider": "github", "auth": {"type": "bearer"},
            "secrets": {"token": "ghp_0123456789abcdefghij"}}),
        )
        .await;
    let other = app.org("elsewhere").await;
    let theirs = other
        .create_connection(
            &serde_json::from_value(json!({"name": "theirs", "kind": "http",
            "auth": {"type": "bearer"}, "config": {"base_url": "https://a.example"},
            "secrets": {"token": "t"}}))
            .unwrap(),
        )
        .await
        .unwrap();

    let member = app
        .token(&app.admin, patchbay_domain::Role::Member, None)
        .await;
    let r = member
        .raw(Method::DELETE, "/v1/connections?provider=custom", None, &[])
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 403, "admins only");
    let r = app
        .admin
        .raw(Method::DELETE, "/v1/connections", None, &[])
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 422, "never every connection at once");
    assert!(r.json().to_string().contains("provider"));
    let r = app
        .admin
        .raw(
            Method::DELETE,
            "/v1/connections?provider=Not%20a%20key",
            None,
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 422, "a provider key, not any text");

    let r = app
        .admin
        .raw(Method::DELETE, "/v1/connections?provider=custom", None, &[])
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200);
    let body = r.json();
    let mut deleted: Vec<String> = body["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    deleted.sort();
    custom.sort();
    assert_eq!(deleted, custom);
    assert_eq!(
        body["revoked"], 1,
        "the linked grant was revoked at the provider"
    );
    assert_eq!(stats(idp.port).await["revocations"], 1);
    let left: Vec<String> = app
        .admin
        .list_connections("")
        .await
        .unwrap()
        .items
        .iter()
        .map(|c| c.id.to_string())
        .collect();
    assert_eq!(left, vec![github], "another provider's connection stays");
    assert!(
        other.get_connection(theirs.id.as_str()).await.is_ok(),
        "another organization's stays"
    );
    let each = app.admin.audit("action=connection.delete").await.unwrap();
    assert_eq!(each.items.len(), 3);
    let all = app
        .admin
        .audit("action=connection.bulk_delete")
        .await
        .unwrap();
    assert_eq!(all.items.len(), 1);
    assert_eq!(all.items[0].target.as_deref(), Some("custom"));
}

async fn flows_cross_replicas_and_delete_revokes(backend: Backend) {
    let app = TestApp::spawn_with(backend, Some(allow_loopback())).await;
    let callback = format!("{}/v1/oauth/callback", app.url);
    let idp = peers::oidc(&callback);
    let replica = app.replica().await;
    // Started on one process, completed on another: the state lives in the shared database.
    let c = app
        .admin
        .create_connection(&revocable("shared", idp.port))
        .await
        .unwrap();
    let started = app.admin.start_oauth(c.id.as_str()).await.unwrap();
    let back = consent(started["authorization_url"].as_str().unwrap(), &callback).await;
    let on_replica = back.replacen(
        &app.url,
        replica.base_url().as_str().trim_end_matches('/'),
        1,
    );
    assert_ne!(on_replica, back);
    let anon = no_redirects();
    assert_eq!(
        anon.get(&on_replica)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        app.admin
            .get_connection(c.id.as_str())
            .await
            .unwrap()
            .status
            .as_str(),
        "active"
    );
    // Deleting revokes the refresh token at the provider, then soft-deletes.
    app.admin.delete_connection(c.id.as_str()).await.unwrap();
    assert_eq!(stats(idp.port).await["revocations"], 1);
    let events = app
        .admin
        .audit(&format!("action=connection.delete&target={}", c.id))
        .await
        .unwrap();
    assert_eq!(events.items[0].details["revocation"], "revoked");
    let pool = app.db().await;
    let status: String = sqlx::Row::get(
        &sqlx::query("SELECT status FROM connections WHERE id = $1")
            .bind(c.id.to_string())
            .fetch_one(&pool)
            .await
            .unwrap(),
        "status",
    );
    assert_eq!(status, "revoked");
}

crate::both_backends!(
    flows_cross_replicas_and_delete_revokes,
    all_of_a_providers_connections_are_revoked_and_deleted_at_once
);

async fn client_credentials_are_fetched_once_and_cached(backend: Backend) {
    let app = TestApp::spawn_with(backend, Some(allow_loopback())).await;
    let idp = peers::oidc(&format!("{}/v1/oauth/callback", app.url));
    let cc = |name: &str, secret: &str| -> CreateConnection {
        serde_json::from_value(
            json!({"name": name, "kind": "http", "auth": {"type": "oauth2_client_credentials",
            "token_url": format!("http://127.0.0.1:{}/token", idp.port), "scopes": ["api"]},
            "config": {"base_url": format!("http://127.0.0.1:{}", idp.port)},
            "secrets": {"client_id": "patchbay", "client_secret": secret}}),
        )
        .unwrap()
    };
    let c = app
        .admin
        .create_connection(&cc("machine", "patchbay-secret"))
        .await
        .unwrap();
    let before = stats(idp.port).await["token_requests"].as_i64().unwrap();
    let (status, first) = token_of(&app.admin, c.id.as_str()).await;
    assert_eq!(status, 200, "{first}");
    let (_, second) = token_of(&app.admin, c.id.as_str()).await;
    assert_eq!(
        first["access_token"], second["access_token"],
        "cached until near expiry"
    );
    assert_eq!(
        stats(idp.port).await["token_requests"].as_i64().unwrap(),
        before + 1
    );
    expire(&app, c.id.as_str()).await;
    let (_, third) = token_of(&app.admin, c.id.as_str()).await;
    assert_ne!(first["access_token"], third["access_token"]);
    assert_eq!(
        stats(idp.port).await["token_requests"].as_i64().unwrap(),
        before + 2
    );
    let bad = app
        .admin
        .create_connection(&cc("wrong", "not-the-secret"))
        .await
        .unwrap();
    let (status, body) = token_of(&app.admin, bad.id.as_str()).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("invalid_client"));
    assert!(!body.to_string().contains("not-the-secret"));
    // Viewers may not read tokens.
    let viewer = app
        .token(&app.admin, patchbay_domain::Role::Viewer, None)
        .await;
    assert_eq!(token_of(&viewer, c.id.as_str()).await.0, 403);
}

async fn the_background_refresher_keeps_idle_connections_fresh(backend: Backend) {
    let app = TestApp::spawn_with(backend, Some(allow_loopback())).await;
    let idp = peers::oidc(&format!("{}/v1/oauth/callback", app.url));
    let id = linked(&app, idp.port, "idle").await;
    // Fresh tokens are left alone.
    assert_eq!(app.hub.refresh_due().await.unwrap(), 0);
    let before = renews_once(&app, idp.port, &id).await;
    let c = app.admin.get_connection(&id).await.unwrap();
    let expires = c.oauth.unwrap().expires_at.unwrap();
    assert!(expires > chrono::Utc::now() + chrono::Duration::minutes(30));
    // A caller now gets the refreshed token without another request.
    assert_eq!(token_of(&app.admin, &id).await.0, 200);
    assert_eq!(
        stats(idp.port).await["token_requests"].as_i64().unwrap(),
        before + 1
    );
}

async fn a_linked_connection_tests_with_its_access_token(backend: Backend) {
    let app = TestApp::spawn_with(backend, Some(allow_loopback())).await;
    let idp = peers::oidc(&format!("{}/v1/oauth/callback", app.url));
    let id = linked(&app, idp.port, "userinfo").await;
    let patch = patchbay_domain::api::UpdateConnection {
        config: Some(json!({"verify_path": "/me"})),
        ..Default::default()
    };
    app.admin
        .update_connection(&id, &patch, None)
        .await
        .unwrap();
    let r = app.admin.test_connection(&id).await.unwrap();
    assert!(r.success, "{r:?}");
    assert_eq!(r.status_code, Some(200));
    // An unlinked one says so.
    let pending = app
        .admin
        .create_connection(&oidc_connection("pending", idp.port))
        .await
        .unwrap();
    let r = app
        .admin
        .test_connection(pending.id.as_str())
        .await
        .unwrap();
    assert_eq!(r.error_kind, Some(patchbay_domain::api::ErrorKind::Auth));
    assert!(r.message.contains("not authorized yet"), "{}", r.message);
}

/// An API that refuses the bearer tokens listed in its set (a token invalidated at the provider
/// before it expires, as after a password change), or every token once `*` is listed.
async fn strict_api() -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    let refused = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let list = refused.clone();
    let app = axum::Router::new().route(
        "/me",
        axum::routing::get(move |h: axum::http::HeaderMap| {
            let auth = h
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let ok = auth.starts_with("Bearer ")
                && !list
                    .lock()
                    .unwrap()
                    .iter()
                    .any(|t| t == "*" || auth == format!("Bearer {t}"));
            async move {
                if ok {
                    (axum::http::StatusCode::OK, "{}")
                } else {
                    (axum::http::StatusCode::UNAUTHORIZED, "{}")
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, refused)
}

/// The upstream refusing a token that has not expired gets one refresh and a retry, however
/// many callers saw the refusal at once.
async fn a_401_from_the_upstream_refreshes_once_and_retries(backend: Backend) {
    let app = TestApp::spawn_with(backend, Some(allow_loopback())).await;
    let idp = peers::oidc(&format!("{}/v1/oauth/callback", app.url));
    let (api, refused) = strict_api().await;
    let id = linked(&app, idp.port, "refused-access").await;
    let patch = patchbay_domain::api::UpdateConnection {
        config: Some(json!({"base_url": api, "verify_path": "/me"})),
        ..Default::default()
    };
    app.admin
        .update_connection(&id, &patch, None)
        .await
        .unwrap();
    let (_, old) = token_of(&app.admin, &id).await;
    let old = old["access_token"].as_str().unwrap().to_owned();
    refused.lock().unwrap().push(old.clone());
    let before = stats(idp.port).await["token_requests"].as_i64().unwrap();
    let mut tests = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (client, id) = (app.admin.clone(), id.clone());
        tests.spawn(async move { client.test_connection(&id).await.unwrap() });
    }
    while let Some(r) = tests.join_next().await {
        let r = r.unwrap();
        assert!(r.success, "{r:?}");
        assert_eq!(r.status_code, Some(200));
        assert_eq!(r.token_valid, Some(true));
    }
    assert_eq!(
        stats(idp.port).await["token_requests"].as_i64().unwrap(),
        before + 1,
        "one refresh for every caller that saw the 401"
    );
    let (_, new) = token_of(&app.admin, &id).await;
    let new = new["access_token"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    // A token the upstream accepts is not refreshed again.
    assert!(app.admin.test_connection(&id).await.unwrap().success);
    assert_eq!(
        stats(idp.port).await["token_requests"].as_i64().unwrap(),
        before + 1
    );
    // When the renewed token is refused too, the test fails as `auth` after one refresh more.
    refused.lock().unwrap().push("*".into());
    let r = app.admin.test_connection(&id).await.unwrap();
    assert_eq!(
        r.error_kind,
        Some(patchbay_domain::api::ErrorKind::Auth),
        "{r:?}"
    );
    assert_eq!(r.token_valid, Some(false));
    assert_eq!(
        stats(idp.port).await["token_requests"].as_i64().unwrap(),
        before + 2
    );
}

/// A writer collecting every log line of this thread's subscriber.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Tokens, the client secret and the PKCE verifier never reach a log line (at TRACE level),
/// and no URL Patchbay builds carries a token or secret.
async fn oauth_secrets_never_reach_logs_or_urls(backend: Backend) {
    let logs = Captured::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || sink.clone())
        .finish();
    // For the whole process (the server answers on threads of its own), and with the records
    // of crates that log through `log` (reqwest, hyper-util) bridged in. Each test runs in a
    // process of its own under nextest.
    tracing::subscriber::set_global_default(subscriber)
        .expect("the first subscriber of this test's process");
    tracing_log::LogTracer::init().expect("the first logger of this test's process");
    let app = TestApp::spawn_with(backend, Some(allow_loopback())).await;
    let idp = peers::oidc(&format!("{}/v1/oauth/callback", app.url));
    let c = app
        .admin
        .create_connection(&oidc_connection("quiet", idp.port))
        .await
        .unwrap();
    let started = app.admin.start_oauth(c.id.as_str()).await.unwrap();
    let auth_url = started["authorization_url"].as_str().unwrap().to_owned();
    let back = consent(&auth_url, &format!("{}/v1/oauth/callback", app.url)).await;
    let anon = no_redirects();
    assert_eq!(anon.get(&back).send().await.unwrap().status().as_u16(), 200);
    let id = c.id.to_string();
    let (_, first) = token_of(&app.admin, &id).await;
    expire(&app, &id).await;
    let (_, second) = token_of(&app.admin, &id).await;
    let creds = app.admin.credentials(&id).await.unwrap();
    let refresh = creds.secrets["__refresh_token"].clone();
    app.admin.delete_connection(&id).await.unwrap();
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("/v1/oauth/callback"), "requests were logged");
    assert!(
        text.contains("reqwest::connect"),
        "records reqwest writes through the `log` crate are captured too"
    );
    for secret in [
        first["access_token"].as_str().unwrap(),
        second["access_token"].as_str().unwrap(),
        refresh.as_str(),
        "patchbay-secret",
    ] {
        assert!(!text.contains(secret), "a token or secret reached the logs");
        assert!(!auth_url.contains(secret));
    }
    // The authorization code and state travel in the callback URL by design, never in logs.
    let code = reqwest::Url::parse(&back)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    assert!(
        !text.contains(&code),
        "the authorization code reached the logs"
    );
}

both_backends!(
    code_flow_with_pkce_and_state_attacks,
    outages_keep_active_and_invalid_grant_expires,
    client_credentials_are_fetched_once_and_cached,
    the_background_refresher_keeps_idle_connections_fresh,
    a_linked_connection_tests_with_its_access_token,
    a_401_from_the_upstream_refreshes_once_and_retries,
    oauth_secrets_never_reach_logs_or_urls,
);
