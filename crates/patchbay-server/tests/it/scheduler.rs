//! The background re-test pass, the `stale` flag and `expiring_within`.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use patchbay_domain::api::CreateConnection;
use serde_json::json;

use crate::both_backends;
use crate::helpers::{Backend, TestApp};

async fn scheduler_retests_flags_stale_and_lists_expiring(backend: Backend) {
    let ok = axum::Router::new().fallback(|| async { StatusCode::OK });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, ok).await.unwrap() });
    let tweak: crate::helpers::Tweak =
        Arc::new(|s| s.egress.allow_net = vec!["127.0.0.0/8".parse().unwrap()]);
    let app = TestApp::spawn_with(backend, Some(tweak)).await;
    let mk = |name: &str| -> CreateConnection {
        serde_json::from_value(json!({"name": name, "kind": "http", "config": {"base_url": base}}))
            .unwrap()
    };
    let a = app.admin.create_connection(&mk("a")).await.unwrap();
    let b = app.admin.create_connection(&mk("b")).await.unwrap();
    assert_eq!(a.test_status.as_str(), "untested");
    assert!(!a.stale, "a new connection is not stale");

    // One pass tests everything not tested within the interval.
    let tested = app.hub.retest_due(Duration::from_secs(3600)).await.unwrap();
    assert_eq!(tested, 2);
    let after = app.admin.get_connection(a.id.as_str()).await.unwrap();
    assert_eq!(after.test_status.as_str(), "success");
    let events = app.admin.audit("action=connection.test").await.unwrap();
    assert!(events.items.iter().all(|e| e.actor == "system:scheduler"));
    // Freshly tested connections are not due again.
    assert_eq!(
        app.hub.retest_due(Duration::from_secs(3600)).await.unwrap(),
        0
    );

    // Untested for more than 7 days reads as stale (b is tested again after 8 days, a is
    // not); expiring tokens are listed.
    app.clock.advance(Duration::from_secs(8 * 86_400));
    assert!(app.admin.get_connection(a.id.as_str()).await.unwrap().stale);
    assert!(
        app.admin
            .test_connection(b.id.as_str())
            .await
            .unwrap()
            .success
    );
    let pool = app.db().await;
    let day = 86_400_000_i64;
    let now = patchbay_engine::Clock::now(&*app.clock).timestamp_millis();
    sqlx::query("UPDATE connections SET oauth_expires_at = $1 WHERE id = $2")
        .bind(now + 3 * day)
        .bind(a.id.to_string())
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE connections SET oauth_expires_at = $1 WHERE id = $2")
        .bind(now + 30 * day)
        .bind(b.id.to_string())
        .execute(&pool)
        .await
        .unwrap();
    assert!(app.admin.get_connection(a.id.as_str()).await.unwrap().stale);
    assert!(!app.admin.get_connection(b.id.as_str()).await.unwrap().stale);
    let soon = app
        .admin
        .list_connections("expiring_within=7d")
        .await
        .unwrap();
    assert_eq!(
        soon.items.iter().map(|c| c.id.clone()).collect::<Vec<_>>(),
        vec![a.id.clone()]
    );
    assert_eq!(
        app.admin
            .list_connections("expiring_within=31d")
            .await
            .unwrap()
            .items
            .len(),
        2
    );
    assert_eq!(
        crate::helpers::err_status(app.admin.list_connections("expiring_within=soon").await).0,
        422
    );
}

#[tokio::test]
async fn two_replicas_test_each_due_connection_once() {
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    let ok = axum::Router::new().fallback(move || {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async { StatusCode::OK }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, ok).await.unwrap() });
    let app = TestApp::spawn_with(Backend::Postgres, Some(crate::helpers::allow_loopback())).await;
    let (_, replica) = app.replica_with_hub().await;
    for i in 0..6 {
        app.connection(
            json!({"name": format!("c{i}"), "kind": "http", "config": {"base_url": base}}),
        )
        .await;
    }
    let interval = Duration::from_secs(3600);
    let period = Duration::from_secs(60);
    // Both replicas' schedulers come due at once.
    let (a, b) = tokio::join!(
        app.hub.scheduled_retest(interval, period),
        replica.scheduled_retest(interval, period)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(
        a.is_none() ^ b.is_none(),
        "one replica ran the pass: {a:?} {b:?}"
    );
    assert_eq!(a.or(b), Some(6));
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        6,
        "each tested once"
    );
    // The other replica's next tick within the period finds the lease held.
    let holder_is_app = a.is_some();
    let other = if holder_is_app { &replica } else { &app.hub };
    assert_eq!(
        other.scheduled_retest(interval, period).await.unwrap(),
        None
    );
    // The holder renews it and finds nothing due.
    let holder = if holder_is_app { &app.hub } else { &replica };
    assert_eq!(
        holder.scheduled_retest(interval, period).await.unwrap(),
        Some(0)
    );
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 6);
}

both_backends!(scheduler_retests_flags_stale_and_lists_expiring,);
