//! Renewals against a strict authorization server: it rotates the refresh token on every use
//! and revokes the whole grant when a spent one comes back (RFC 9700's reuse detection), and it
//! commits the rotation before its answer reaches Patchbay. Callers that give up mid-renewal
//! must not lose the grant; tokens that live shorter than the refresh margin must not be renewed
//! on every call.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use patchbay_testkit::strict_oauth::StrictServer;
use serde_json::Value;

use crate::both_backends;
use crate::helpers::{Backend, TestApp, allow_loopback};

/// A connection linked through the strict server's authorization flow; its id.
pub(crate) async fn linked(app: &TestApp, server: &StrictServer) -> String {
    let c = app
        .admin
        .create_connection(&serde_json::from_value(server.connection("strict")).unwrap())
        .await
        .unwrap();
    let started = app.admin.start_oauth(c.id.as_str()).await.unwrap();
    let callback = format!("{}/v1/oauth/callback", app.url);
    let back =
        crate::peers::consent(started["authorization_url"].as_str().unwrap(), &callback).await;
    let page = crate::peers::no_redirects()
        .get(&back)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    c.id.to_string()
}

async fn token_now(app: &TestApp, id: &str) -> String {
    let t: Value = app.admin.access_token(id).await.unwrap();
    t["access_token"].as_str().unwrap().to_owned()
}

async fn callers_that_give_up_mid_renewal_do_not_lose_the_grant(backend: Backend) {
    let app = TestApp::spawn_with(backend, Some(allow_loopback())).await;
    let server = StrictServer::start(3600, 300).await;
    let grant = server.grant.clone();
    let id = linked(&app, &server).await;
    crate::oauth_flow::expire(&app, &id).await;
    // Five impatient callers, each gone before the provider's answer arrives.
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(150))
        .build()
        .unwrap();
    let calls = (0..5).map(|_| {
        impatient
            .get(format!("{}/v1/connections/{id}/token", app.url))
            .bearer_auth(&app.admin_token)
            .send()
    });
    for r in futures::future::join_all(calls).await {
        assert!(r.is_err(), "the caller gave up before the answer");
    }
    // The renewal they started finishes without them; the next caller gets its token.
    let started = Instant::now();
    while grant.lock().unwrap().issued < 2 && started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let token = token_now(&app, &id).await;
    assert_eq!(token, "access-2");
    {
        let g = grant.lock().unwrap();
        assert_eq!(g.reuse, 0, "a spent refresh token was sent again");
        assert!(!g.revoked, "the grant was revoked");
        assert_eq!(g.refreshes, 1, "one renewal for five callers");
    }
    let c = app.admin.get_connection(&id).await.unwrap();
    assert_eq!(c.status.as_str(), "active");
}

async fn tokens_shorter_than_the_margin_are_not_renewed_on_every_call(backend: Backend) {
    let app = TestApp::spawn_with(backend, Some(allow_loopback())).await;
    // Three-second tokens against the default five-minute margin.
    let server = StrictServer::start(3, 0).await;
    let grant = server.grant.clone();
    let id = linked(&app, &server).await;
    let calls = (0..200).map(|_| token_now(&app, &id));
    let tokens: HashSet<String> = futures::future::join_all(calls).await.into_iter().collect();
    assert_eq!(tokens.len(), 1, "one token for all callers: {tokens:?}");
    let g = grant.lock().unwrap();
    assert_eq!(
        (g.issued, g.refreshes),
        (1, 0),
        "no renewal of a token just obtained"
    );
}

#[tokio::test]
async fn two_replicas_share_one_renewal_of_a_short_lived_token() {
    let app = TestApp::spawn_with(Backend::Postgres, Some(allow_loopback())).await;
    let replica = app.replica().await;
    let server = StrictServer::start(3, 100).await;
    let grant = server.grant.clone();
    let id = linked(&app, &server).await;
    crate::oauth_flow::expire(&app, &id).await;
    // 200 callers over two processes on one expired three-second token.
    let calls = (0..200).map(|i| {
        let client = if i % 2 == 0 {
            app.admin.clone()
        } else {
            replica.clone()
        };
        let id = id.clone();
        async move {
            let t: Value = client.access_token(&id).await.unwrap();
            t["access_token"].as_str().unwrap().to_owned()
        }
    });
    let tokens: HashSet<String> = futures::future::join_all(calls).await.into_iter().collect();
    assert_eq!(tokens.len(), 1, "one token for all callers: {tokens:?}");
    let g = grant.lock().unwrap();
    assert_eq!(g.refreshes, 1, "exactly one renewal across both replicas");
    assert_eq!((g.reuse, g.revoked), (0, false));
}

both_backends!(
    callers_that_give_up_mid_renewal_do_not_lose_the_grant,
    tokens_shorter_than_the_margin_are_not_renewed_on_every_call,
);
