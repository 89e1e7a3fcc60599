//! A revoked token stops working the moment its revocation returns, even while it is being
//! used hard: no request sent after that moment succeeds (a read of the row from before the
//! commit must not be cached again).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use patchbay_domain::Role;
use patchbay_domain::api::CreateToken;

use crate::helpers::{Backend, TestApp};

async fn revoked_under_load(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let created = app
        .admin
        .create_token(&CreateToken {
            name: "busy".into(),
            role: Role::Member,
            project: None,
        })
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let stop = Arc::new(AtomicBool::new(false));
    let revoked_at: Arc<std::sync::Mutex<Option<Instant>>> = Default::default();
    // Successes before the revocation, and answers to requests sent after it.
    let (succeeded, answered_after) =
        (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut users = tokio::task::JoinSet::new();
    for _ in 0..64 {
        let (http, url, value) = (http.clone(), app.url.clone(), created.value.clone());
        let (stop, revoked_at) = (stop.clone(), revoked_at.clone());
        let (succeeded, answered_after) = (succeeded.clone(), answered_after.clone());
        users.spawn(async move {
            let mut late_successes = 0;
            let mut refused = 0;
            let deadline = Instant::now() + Duration::from_secs(10);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let sent = Instant::now();
                let ok = http
                    .get(format!("{url}/v1/me"))
                    .bearer_auth(&value)
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200);
                let after = revoked_at.lock().unwrap().is_some_and(|at| sent > at);
                if ok && after {
                    late_successes += 1;
                }
                if after {
                    answered_after.fetch_add(1, Ordering::SeqCst);
                } else if ok {
                    succeeded.fetch_add(1, Ordering::SeqCst);
                }
                if !ok {
                    refused += 1;
                }
            }
            (late_successes, refused)
        });
    }
    // The token is in use (and cached) before it is revoked…
    let busy = holds_within(Duration::from_secs(10), async || {
        succeeded.load(Ordering::SeqCst) >= 64
    })
    .await;
    assert!(busy.is_some(), "the users got going");
    app.admin
        .revoke_token(created.token.id.as_str())
        .await
        .unwrap();
    *revoked_at.lock().unwrap() = Some(Instant::now());
    // …and many requests are answered after the revocation returned.
    let tried = holds_within(Duration::from_secs(10), async || {
        answered_after.load(Ordering::SeqCst) >= 256
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    assert!(tried.is_some(), "requests were sent after the revocation");
    let (mut late, mut refused) = (0, 0);
    while let Some(r) = users.join_next().await {
        let (l, r) = r.unwrap();
        late += l;
        refused += r;
    }
    assert_eq!(
        late, 0,
        "requests sent after the revocation returned succeeded"
    );
    assert!(refused > 0, "the revoked token was refused");
}

crate::both_backends!(revoked_under_load);

/// Polls `check` every 20 ms for up to `within`; how long it took to hold, if it did.
async fn holds_within(within: Duration, mut check: impl AsyncFnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < within {
        if check().await {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

#[tokio::test]
async fn other_replicas_learn_of_revocations_and_changes_within_a_second() {
    let app = TestApp::spawn_with(Backend::Postgres, Some(crate::helpers::allow_loopback())).await;
    let replica = app.replica().await;
    let created = app
        .admin
        .create_token(&CreateToken {
            name: "elsewhere".into(),
            role: Role::Member,
            project: None,
        })
        .await
        .unwrap();
    // The replica authenticates (and caches) the token and prepares a connection.
    let on_replica =
        patchbay_client::Client::new(&replica_url(&replica), Some(created.value.clone())).unwrap();
    on_replica.me().await.unwrap();
    let first = crate::upstream::Upstream::start().await;
    let second = crate::upstream::Upstream::start().await;
    let id = app
        .connection(
            serde_json::json!({"name": "moving", "kind": "http", "auth": {"type": "bearer"},
            "config": {"base_url": first.url}, "secrets": {"token": "t-123456"}}),
        )
        .await;
    replica
        .proxy(&id, http::Method::GET, "/ping", &[], None)
        .await
        .unwrap();
    assert_eq!(first.count("/ping"), 1);

    app.admin
        .revoke_token(created.token.id.as_str())
        .await
        .unwrap();
    let refused = holds_within(Duration::from_secs(1), async || {
        on_replica.me().await.is_err()
    })
    .await;
    assert!(
        refused.is_some(),
        "the replica still accepts the revoked token after 1 s"
    );

    let patch: patchbay_domain::api::UpdateConnection =
        serde_json::from_value(serde_json::json!({"config": {"base_url": second.url}})).unwrap();
    app.admin
        .update_connection(&id, &patch, None)
        .await
        .unwrap();
    let moved = holds_within(Duration::from_secs(1), async || {
        replica
            .proxy(&id, http::Method::GET, "/ping", &[], None)
            .await
            .is_ok()
            && second.count("/ping") > 0
    })
    .await;
    assert!(
        moved.is_some(),
        "the replica still serves the old connection after 1 s"
    );
}

fn replica_url(c: &patchbay_client::Client) -> String {
    c.base_url().as_str().trim_end_matches('/').to_owned()
}
