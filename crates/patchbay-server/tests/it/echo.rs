//! Answers relayed to a caller never carry the credential Patchbay injected: a redirect whose
//! `Location` holds the API key from the query, headers that reflect the token, echoed bodies
//! on the buffered paths (HTTP action, `http` node, blocking webhook). The upstream still got
//! the real credential each time.

use http::Method;
use patchbay_domain::Role;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, allow_loopback};
use crate::upstream::Upstream;

const KEY: &str = "query-key-4f1c9a7e";
const TOKEN: &str = "bearer-token-8d2e6b0c";

fn action<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).unwrap()
}

async fn redirects_and_echoes_do_not_hand_the_credential_back(backend: Backend) {
    let app = TestApp::spawn_with(backend, Some(allow_loopback())).await;
    let member = app.token(&app.admin, Role::Member, None).await;
    let up = Upstream::start().await;
    let keyed = app
        .connection(json!({"name": "keyed", "kind": "http",
            "auth": {"type": "api_key", "in": "query", "name": "api_key"},
            "config": {"base_url": up.url}, "secrets": {"api_key": KEY}}))
        .await;
    let bearer = app
        .connection(
            json!({"name": "bearer", "kind": "http", "auth": {"type": "bearer"},
            "config": {"base_url": up.url}, "secrets": {"token": TOKEN}}),
        )
        .await;

    // The proxy: a redirect's Location is rewritten, reflected headers are redacted.
    let r = member
        .proxy(&keyed, Method::GET, "/redirect?page=2", &[], None)
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 302);
    let location = r.headers["location"].to_str().unwrap().to_owned();
    assert!(!location.contains(KEY), "{location}");
    assert!(
        location.contains("page=2") && location.contains("[REDACTED]"),
        "{location}"
    );
    assert_eq!(
        up.last().query.as_deref(),
        Some(format!("page=2&api_key={KEY}").as_str())
    );
    let r = member
        .proxy(&bearer, Method::GET, "/reflect", &[], None)
        .await
        .unwrap();
    assert_eq!(r.headers["x-reflect"], "Bearer [REDACTED]");
    assert_eq!(
        up.last().header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );

    // The HTTP action: headers and the buffered body.
    for (id, secret) in [(&keyed, KEY), (&bearer, TOKEN)] {
        for path in ["/redirect", "/reflect", "/echo"] {
            let r = member
                .http_action(&action(json!({"connection": id, "path": path,
                    "map": [{"as": "auth", "select": "$.headers.authorization"}]})))
                .await
                .unwrap();
            let text = serde_json::to_string(&r).unwrap();
            assert!(!text.contains(secret), "{path}: {text}");
        }
    }
    let r = member
        .http_action(&action(json!({"connection": bearer, "path": "/echo",
            "map": [{"as": "auth", "select": "$.headers.authorization"}]})))
        .await
        .unwrap();
    assert_eq!(r.output["auth"], "Bearer [REDACTED]");

    // The http node runs the same action.
    let r = member
        .run_node(&json!({"type": "http", "config": {"connection": bearer, "path": "/reflect"}}))
        .await
        .unwrap();
    let text = serde_json::to_string(&r).unwrap();
    assert!(!text.contains(TOKEN), "{text}");
    assert!(text.contains("[REDACTED]"), "{text}");
}

async fn a_blocking_webhook_answer_is_redacted(backend: Backend) {
    let app = TestApp::spawn_with(backend, Some(allow_loopback())).await;
    let up = Upstream::start().await;
    let hook = app
        .connection(
            json!({"name": "hook", "kind": "webhook", "auth": {"type": "bearer"},
            "config": {"url": format!("{}/echo", up.url)}, "secrets": {"token": TOKEN}}),
        )
        .await;
    let r = app
        .admin
        .webhook_action(&action(json!({"connection": hook, "mode": "blocking",
            "body": {"event": "ping"}})))
        .await
        .unwrap();
    let text = serde_json::to_string(&r).unwrap();
    assert!(!text.contains(TOKEN), "{text}");
    assert!(text.contains("Bearer [REDACTED]"), "{text}");
    assert_eq!(
        up.last().header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
}

both_backends!(
    redirects_and_echoes_do_not_hand_the_credential_back,
    a_blocking_webhook_answer_is_redacted,
);
