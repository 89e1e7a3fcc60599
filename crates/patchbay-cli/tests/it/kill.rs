//! `kill -9` of the server in the middle of refreshes with rotating refresh tokens, then a
//! restart: every connection can still refresh, none lost its refresh token.
//!
//! The authorization server (oidc-provider) rotates the refresh token on every use. One window
//! no client can close remains: the provider has answered with a new refresh token and the
//! process dies before its commit. Providers that rotate allow for exactly this with a short
//! reuse grace for the previous token (Okta, Auth0, Xero); the peer runs with one and counts
//! each time it was needed. The test bounds that count by the refreshes that can have been in
//! flight at the kills: every refresh that completed was stored.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::peers::{self, consent, no_redirects};
use crate::server::Server;

const CONNECTIONS: usize = 12;
const CALLERS: usize = 6;
const KILLS: usize = 3;

async fn idp(port: u16, path: &str) -> Value {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("http://127.0.0.1:{port}{path}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn client(url: &str, token: &str) -> patchbay_client::Client {
    patchbay_client::Client::new(url, Some(token.to_owned())).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_during_rotating_refreshes_loses_no_refresh_token() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = peers::free_port();
    let url = format!("http://127.0.0.1:{port}");
    let callback = format!("{url}/v1/oauth/callback");
    let provider = peers::oidc(&callback);
    let listen = format!("127.0.0.1:{port}");
    let args = ["--listen", listen.as_str(), "--allow-net", "127.0.0.0/8"];
    let mut server = Server::start(&data, &args, &[]);
    let token = server
        .token
        .clone()
        .expect("first start prints the admin token");
    let admin = client(&url, &token);

    // One-second access tokens are due for renewal after half their life, so the callers'
    // reads keep refreshing every connection; the previous refresh token stays usable for 60 s
    // after its rotation.
    idp(provider.port, "/_mode?access_ttl=1&grace=60").await;
    let base = format!("http://127.0.0.1:{}", provider.port);
    let mut ids = Vec::new();
    for i in 0..CONNECTIONS {
        let c = admin
            .create_connection(&serde_json::from_value(json!({"name": format!("rotating-{i}"), "kind": "http",
                "auth": {"type": "oauth2", "authorization_url": format!("{base}/auth"), "token_url": format!("{base}/token"),
                    "issuer": base, "scopes": ["openid", "offline_access"], "authorization_params": {"prompt": "consent"}},
                "config": {"base_url": base}, "secrets": {"client_id": "patchbay", "client_secret": "patchbay-secret"}})).unwrap())
            .await
            .unwrap();
        let started = admin.start_oauth(c.id.as_str()).await.unwrap();
        let back = consent(started["authorization_url"].as_str().unwrap(), &callback).await;
        assert_eq!(
            no_redirects().get(&back).send().await.unwrap().status(),
            200
        );
        ids.push(c.id.to_string());
    }
    let before = idp(provider.port, "/_stats").await["token_requests"]
        .as_u64()
        .unwrap();

    for round in 0..KILLS {
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicUsize::new(0));
        let mut callers = tokio::task::JoinSet::new();
        for caller in 0..CALLERS {
            let (api, ids, stop, served) = (
                client(&url, &token),
                ids.clone(),
                stop.clone(),
                served.clone(),
            );
            callers.spawn(async move {
                let mut n = caller;
                while !stop.load(Ordering::Relaxed) {
                    n = (n + 7) % ids.len();
                    if api.access_token(&ids[n]).await.is_ok() {
                        served.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        // Let refreshes run — ten more each round, as the provider counts them — then kill in
        // the middle of them.
        let target = before + 10 * (round as u64 + 1);
        let waiting = std::time::Instant::now();
        while idp(provider.port, "/_stats").await["token_requests"]
            .as_u64()
            .unwrap()
            < target
        {
            assert!(
                waiting.elapsed() < Duration::from_secs(60),
                "refreshes do not run:\n{}",
                server.logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            served.load(Ordering::Relaxed) > 0,
            "no token was served before the kill:\n{}",
            server.logs()
        );
        server.child.kill().unwrap(); // SIGKILL
        server.child.wait().unwrap();
        stop.store(true, Ordering::Relaxed);
        while callers.join_next().await.is_some() {}
        server = Server::start(&data, &args, &[]);
    }

    // After the last restart every connection refreshes with what it has stored.
    for id in &ids {
        admin.access_token(id).await.unwrap_or_else(|e| {
            panic!(
                "{id} cannot refresh after the kills: {e}\n{}",
                server.logs()
            )
        });
    }
    let stats = idp(provider.port, "/_stats").await;
    let refreshes = stats["token_requests"].as_u64().unwrap() - before;
    let grace_uses = stats["grace_uses"].as_u64().unwrap();
    assert!(
        refreshes >= 10 * KILLS as u64,
        "the rounds waited for refreshes: {refreshes}"
    );
    // Only a refresh in flight when the process died can have needed the grace.
    assert!(
        grace_uses <= (KILLS * CALLERS) as u64,
        "{grace_uses} refreshes reused a rotated token after {refreshes} refreshes and {KILLS} kills"
    );
    // Strict reuse from here on: the tokens stored by those refreshes work, twice over.
    idp(provider.port, "/_mode?grace=0").await;
    let mut first = Vec::new();
    for id in &ids {
        first.push(admin.access_token(id).await.unwrap());
    }
    // Past half of the one-second lifetime every token is due again.
    tokio::time::sleep(Duration::from_millis(600)).await;
    for (id, first) in ids.iter().zip(&first) {
        let second = admin.access_token(id).await.unwrap();
        assert_ne!(first["access_token"], second["access_token"], "{id}");
        let c = admin.get_connection(id).await.unwrap();
        assert_eq!(c.status.as_str(), "active", "{id}");
    }
    let grace_after = idp(provider.port, "/_stats").await["grace_uses"]
        .as_u64()
        .unwrap();
    assert_eq!(grace_after, grace_uses, "no reuse after the restart");
    eprintln!(
        "{refreshes} refreshes, {KILLS} kills, {grace_uses} answers lost in flight and covered by the grace"
    );
    drop(server);
}

/// `kill -9` while a renewal waits on a provider that has already rotated the refresh token
/// (the one window a client cannot close): after the restart the connection is not silently
/// broken — it is reported `expired`, with the provider's answer, and asks to be authorized
/// again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_while_a_renewal_waits_on_the_provider_is_reported() {
    let provider = patchbay_testkit::strict_oauth::StrictServer::start(3600, 3000).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let args = ["--allow-net", "127.0.0.0/8"];
    let mut server = Server::start(&data, &args, &[]);
    let token = server
        .token
        .clone()
        .expect("first start prints the admin token");
    let admin = client(&server.url, &token);
    let c = admin
        .create_connection(&serde_json::from_value(provider.connection("strict")).unwrap())
        .await
        .unwrap();
    let id = c.id.to_string();
    let started = admin.start_oauth(&id).await.unwrap();
    let callback = format!("{}/v1/oauth/callback", server.url);
    let back = consent(started["authorization_url"].as_str().unwrap(), &callback).await;
    assert_eq!(
        no_redirects().get(&back).send().await.unwrap().status(),
        200
    );
    assert_eq!(provider.counts().0, 1, "linked");

    // Make the token due, ask for it, and kill the process once the provider has rotated.
    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", data.join("patchbay.db").display()))
        .await
        .unwrap();
    sqlx::query("UPDATE connections SET oauth = json_set(oauth, '$.expires_at', '2000-01-01T00:00:00Z'), oauth_expires_at = 0 WHERE id = $1")
        .bind(&id)
        .execute(&db)
        .await
        .unwrap();
    db.close().await;
    let asking = tokio::spawn({
        let admin = admin.clone();
        let id = id.clone();
        async move { admin.access_token(&id).await }
    });
    let waited = std::time::Instant::now();
    while provider.counts().0 < 2 && waited.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        provider.counts().0,
        2,
        "the provider rotated the refresh token"
    );
    server.child.kill().unwrap(); // SIGKILL, before the provider's answer arrives
    server.child.wait().unwrap();
    assert!(
        asking.await.unwrap().is_err(),
        "the caller saw the process die"
    );

    // After the restart: precisely reported, never silently broken.
    let server = Server::start(&data, &args, &[]);
    let admin = client(&server.url, &token);
    let refused = admin.access_token(&id).await.unwrap_err().to_string();
    assert!(refused.contains("reconnect"), "{refused}");
    let c = admin.get_connection(&id).await.unwrap();
    assert_eq!(c.status.as_str(), "expired", "{}", server.logs());
    let oauth = c.oauth.unwrap();
    assert_eq!(oauth.last_refresh_error.as_deref(), Some("invalid_grant"));
    let (_, refreshes, reuse, revoked) = provider.counts();
    assert_eq!(refreshes, 2, "the spent refresh token was tried once");
    assert!(
        reuse == 1 && revoked,
        "the provider saw the reuse and revoked the grant"
    );
    eprintln!(
        "kill -9 mid-renewal: the connection is reported expired (invalid_grant) and asks to be authorized again"
    );
}
