//! A revoked token stops working the moment its revocation returns, even while it is being
//! used hard: no request sent after that moment succeeds (a read of the row from before the
//! commit must not be cached again).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
    let mut users = tokio::task::JoinSet::new();
    for _ in 0..64 {
        let (http, url, value) = (http.clone(), app.url.clone(), created.value.clone());
        let (stop, revoked_at) = (stop.clone(), revoked_at.clone());
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
                if !ok {
                    refused += 1;
                }
            }
            (late_successes, refused)
        });
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.admin
        .revoke_token(created.token.id.as_str())
        .await
        .unwrap();
    *revoked_at.lock().unwrap() = Some(Instant::now());
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
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
