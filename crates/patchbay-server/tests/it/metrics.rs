//! `/metrics`: scraped before and after a mixed load (proxied calls, a blocked destination, a
//! connection test, an OAuth renewal, a webhook delivery, API calls and a 404), the counters
//! move by what was done; every answer carries a request id; the optional token guards it.

use std::collections::BTreeMap;

use patchbay_testkit::strict_oauth::StrictServer;
use serde_json::json;

use crate::both_backends;
use crate::helpers::{Backend, TestApp, allow_loopback};
use crate::upstream::Upstream;

/// The samples of a scrape: `name{labels}` → value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect()
}

async fn scrape(app: &TestApp, token: Option<&str>) -> (u16, String) {
    let mut req = reqwest::Client::new().get(format!("{}/metrics", app.url));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn moved(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>, key: &str) -> f64 {
    after.get(key).copied().unwrap_or(0.0) - before.get(key).copied().unwrap_or(0.0)
}

async fn counters_move_with_a_mixed_load(backend: Backend) {
    let app = TestApp::spawn_with(backend, Some(allow_loopback())).await;
    let up = Upstream::start().await;
    let id = app
        .connection(
            json!({"name": "api", "kind": "http", "auth": {"type": "bearer"},
            "config": {"base_url": up.url}, "secrets": {"token": "t-metrics"}}),
        )
        .await;
    let walled = app
        .connection(json!({"name": "walled", "kind": "http",
            "config": {"base_url": "http://10.255.255.1:9"}}))
        .await;
    let server = StrictServer::start(3600, 0).await;
    let oauth = crate::renewal::linked(&app, &server).await;
    let (hook_url, _receiver) = crate::webhooks::Receiver::start().await;
    let hook = crate::webhooks::hook(&app, &hook_url).await;

    let (status, text) = scrape(&app, None).await;
    assert_eq!(status, 200);
    let before = samples(&text);

    let http = reqwest::Client::new();
    for _ in 0..20 {
        let r = http
            .get(format!("{}/v1/proxy/items", app.url))
            .bearer_auth(&app.admin_token)
            .header("Patchbay-Connection", &id)
            .header("X-Request-Id", "trace-abc.1")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["x-request-id"],
            "trace-abc.1",
            "a sane id is kept"
        );
    }
    let blocked = http
        .get(format!("{}/v1/proxy/x", app.url))
        .bearer_auth(&app.admin_token)
        .header("Patchbay-Connection", &walled)
        .send()
        .await
        .unwrap();
    assert_eq!(blocked.status(), 403);
    assert_eq!(
        blocked.headers()["x-request-id"].len(),
        32,
        "a request without an id gets one"
    );
    app.admin.test_connection(&id).await.unwrap();
    crate::oauth_flow::expire(&app, &oauth).await;
    app.admin.access_token(&oauth).await.unwrap();
    let r = app
        .admin
        .webhook_action(&crate::webhooks::action(
            json!({"connection": hook, "mode": "fire_and_forget", "body": {"n": 1}}),
        ))
        .await
        .unwrap();
    crate::webhooks::settled(&app, &r.delivery.unwrap().to_string()).await;
    let missing = http
        .get(format!("{}/v1/no-such-route", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    let (_, text) = scrape(&app, None).await;
    let after = samples(&text);
    let m = |k: &str| moved(&before, &after, k);
    assert_eq!(
        m(r#"patchbay_http_requests_total{method="GET",route="/v1/proxy",status="200"}"#),
        20.0,
        "{text}"
    );
    assert_eq!(
        m(
            r#"patchbay_http_request_duration_seconds_count{method="GET",route="/v1/proxy",status="200"}"#
        ),
        20.0
    );
    assert_eq!(
        m(
            r#"patchbay_http_requests_total{method="POST",route="/v1/connections/{id}/test",status="200"}"#
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        m(r#"patchbay_http_requests_total{method="GET",route="unmatched",status="404"}"#),
        1.0
    );
    assert!(m(r#"patchbay_upstream_requests_total{outcome="2xx"}"#) >= 20.0);
    assert_eq!(
        m(r#"patchbay_upstream_requests_total{outcome="blocked"}"#),
        1.0
    );
    assert!(m("patchbay_egress_blocked_total") >= 1.0);
    assert_eq!(
        m(r#"patchbay_connection_tests_total{outcome="success"}"#),
        1.0
    );
    assert_eq!(
        m(r#"patchbay_token_renewals_total{grant="refresh_token",outcome="ok",reason=""}"#),
        1.0,
        "{text}"
    );
    assert_eq!(m(r#"patchbay_deliveries_total{outcome="queued"}"#), 1.0);
    assert_eq!(m(r#"patchbay_deliveries_total{outcome="delivered"}"#), 1.0);
    assert!(after[r#"patchbay_cache_entries{cache="prepared_connections"}"#] >= 1.0);
    assert!(after[r#"patchbay_cache_misses{cache="principals"}"#] >= 1.0);
    assert_eq!(after["patchbay_vault_sealed"], 0.0);
    assert!(
        after["patchbay_open_connections"] >= 1.0,
        "this scrape's own"
    );
    assert!(!text.contains("t-metrics"), "no secret in the metrics");
}

async fn a_metrics_token_guards_the_scrape(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        Some(std::sync::Arc::new(|s| {
            s.metrics.token = Some("scrape-me-4411".to_owned().into());
        })),
    )
    .await;
    for wrong in [None, Some("nope"), Some(app.admin_token.as_str())] {
        let (status, body) = scrape(&app, wrong).await;
        assert_eq!(status, 401, "{wrong:?}");
        assert!(!body.contains("patchbay_"), "nothing is shown");
    }
    let (status, body) = scrape(&app, Some("scrape-me-4411")).await;
    assert_eq!(status, 200);
    assert!(body.contains("patchbay_http_requests_total"));
}

both_backends!(
    counters_move_with_a_mixed_load,
    a_metrics_token_guards_the_scrape,
);
