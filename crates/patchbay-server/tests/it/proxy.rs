//! `ANY /v1/proxy/{path}` against a local upstream that echoes what it received.

use std::sync::Arc;
use std::time::{Duration, Instant};

use patchbay_client::Client;
use patchbay_domain::Role;
use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, allow_loopback};
use crate::upstream::{Seen, Upstream};

/// `GET /v1/proxy/{path}` through `connection` with extra headers; (status, headers, body).
async fn proxied(
    client: &Client,
    method: Method,
    connection: &str,
    path: &str,
    extra: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut headers = vec![("Patchbay-Connection", connection)];
    headers.extend_from_slice(extra);
    let r = client
        .raw(method, &format!("/v1/proxy/{path}"), None, &headers)
        .await
        .unwrap();
    (r.status.as_u16(), r.headers.clone(), r.text())
}

/// What must never reach an upstream: Patchbay's own headers and the caller's token.
fn assert_clean(seen: &Seen, app: &TestApp) {
    for (name, value) in &seen.headers {
        assert!(
            !name.as_str().starts_with("patchbay-"),
            "{name} reached the upstream"
        );
        assert!(
            !value.to_str().unwrap_or("").contains(&app.admin_token),
            "the caller's token reached the upstream in {name}"
        );
    }
    assert!(!seen.query.as_deref().unwrap_or("").contains("pb_"));
}

async fn every_auth_type_injects_exactly_its_credential(backend: Backend) {
    let app = TestApp::spawn_with(backend, Some(allow_loopback())).await;
    let up = Upstream::start().await;
    let base = format!("{}/base", up.url);
    // (connection, the Authorization the upstream must see, a check of the rest)
    type Check = Box<dyn Fn(&Seen)>;
    let cases: Vec<(Value, Option<&str>, Check)> = vec![
        (
            json!({"name": "none", "kind": "http", "config": {"base_url": base}}),
            None,
            Box::new(|s: &Seen| assert_eq!(s.query.as_deref(), Some("page=2"))),
        ),
        (
            json!({"name": "key-header", "kind": "http", "auth": {"type": "api_key", "in": "header", "name": "X-API-Key"},
                "config": {"base_url": base}, "secrets": {"api_key": "k-header-1"}}),
            None,
            Box::new(|s: &Seen| assert_eq!(s.header("x-api-key"), Some("k-header-1"))),
        ),
        (
            json!({"name": "key-prefixed", "kind": "http", "auth": {"type": "api_key", "in": "header", "name": "Authorization", "prefix": "Token "},
                "config": {"base_url": base}, "secrets": {"api_key": "k-prefixed-2"}}),
            Some("Token k-prefixed-2"),
            Box::new(|_: &Seen| {}),
        ),
        (
            json!({"name": "key-query", "kind": "http", "auth": {"type": "api_key", "in": "query", "name": "api_key"},
                "config": {"base_url": base}, "secrets": {"api_key": "k-query-3"}}),
            None,
            Box::new(|s: &Seen| assert_eq!(s.query.as_deref(), Some("page=2&api_key=k-query-3"))),
        ),
        (
            json!({"name": "key-cookie", "kind": "http", "auth": {"type": "api_key", "in": "cookie", "name": "session"},
                "config": {"base_url": base}, "secrets": {"api_key": "k-cookie-4"}}),
            None,
            Box::new(|s: &Seen| {
                assert_eq!(s.header("cookie"), Some("theme=dark; session=k-cookie-4"))
            }),
        ),
        (
            json!({"name": "bearer", "kind": "http", "auth": {"type": "bearer"},
                "config": {"base_url": base}, "secrets": {"token": "t-bearer-5"}}),
            Some("Bearer t-bearer-5"),
            Box::new(|_: &Seen| {}),
        ),
        (
            json!({"name": "basic", "kind": "http", "auth": {"type": "basic", "username": "svc"},
                "config": {"base_url": base}, "secrets": {"password": "p-basic-6"}}),
            Some("Basic c3ZjOnAtYmFzaWMtNg=="),
            Box::new(|_: &Seen| {}),
        ),
        (
            json!({"name": "custom", "kind": "http", "auth": {"type": "custom", "inject": [
                    {"in": "header", "name": "X-Auth", "template": "Token ${secrets.key}"},
                    {"in": "query", "name": "sig", "template": "${secrets.sig}"}]},
                "config": {"base_url": base}, "secrets": {"key": "c-key-7", "sig": "c-sig-8"}}),
            None,
            Box::new(|s: &Seen| {
                assert_eq!(s.header("x-auth"), Some("Token c-key-7"));
                assert_eq!(s.query.as_deref(), Some("page=2&sig=c-sig-8"));
            }),
        ),
        (
            json!({"name": "default-headers", "kind": "http", "auth": {"type": "bearer"},
                "config": {"base_url": base, "headers": {"Notion-Version": "2022-06-28"}}, "secrets": {"token": "t-9"}}),
            Some("Bearer t-9"),
            Box::new(|s: &Seen| assert_eq!(s.header("notion-version"), Some("2022-06-28"))),
        ),
    ];
    for (body, authorization, check) in cases {
        let name = body["name"].as_str().unwrap().to_owned();
        let id = app.connection(body).await;
        let (status, headers, text) = proxied(
            &app.admin,
            Method::GET,
            &id,
            "items/1?page=2",
            &[
                ("Patchbay-Caller", "wf-42"),
                ("X-Request-Tag", "keep-me"),
                ("Cookie", "theme=dark"),
                ("Connection", "keep-alive, X-Hop"),
                ("X-Hop", "drop-me"),
                ("Proxy-Authorization", "Basic c2VjcmV0"),
            ],
        )
        .await;
        assert_eq!(status, 200, "{name}: {text}");
        let seen = up.last();
        assert_eq!(seen.path, "/base/items/1", "{name}");
        assert_eq!(seen.method, "GET");
        assert_eq!(seen.header("authorization"), authorization, "{name}");
        assert_eq!(seen.header("x-request-tag"), Some("keep-me"), "{name}");
        assert_eq!(
            seen.header("x-hop"),
            None,
            "{name}: a header the caller's Connection names"
        );
        assert_eq!(seen.header("proxy-authorization"), None, "{name}");
        assert_clean(&seen, &app);
        check(&seen);
        // The answer comes back with its own headers, hop-by-hop ones removed.
        assert_eq!(headers.get("x-upstream").unwrap(), "echo");
        assert!(headers.get("keep-alive").is_none(), "{name}");
    }
}

async fn bodies_stream_both_ways_within_the_limit(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        Some(Arc::new(|s| {
            s.egress.allow_net = vec!["127.0.0.0/8".parse().unwrap()];
            s.limits.proxy_body_limit = 4 * 1024 * 1024;
        })),
    )
    .await;
    let up = Upstream::start().await;
    let id = app
        .connection(
            json!({"name": "files", "kind": "http", "auth": {"type": "bearer"},
            "config": {"base_url": up.url}, "secrets": {"token": "t-files"}}),
        )
        .await;
    let http = reqwest::Client::new();
    let through = |method: Method, path: &str| {
        http.request(method, format!("{}/v1/proxy/{path}", app.url))
            .bearer_auth(&app.admin_token)
            .header("Patchbay-Connection", &id)
    };
    // A JSON body, buffered.
    let r = through(Method::POST, "upload")
        .json(&json!({"a": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(up.last().body.as_ref(), br#"{"a":1}"#);
    assert_eq!(up.last().header("content-type"), Some("application/json"));
    // A 3 MB body sent in chunks (no Content-Length) streams through.
    let chunk = vec![b'y'; 64 * 1024];
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..48).map(|_| Ok(chunk.clone())).collect();
    let r = through(Method::PUT, "upload")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(up.last().body.len(), 48 * 64 * 1024);
    // A 3 MB answer comes back whole.
    let r = through(Method::GET, "big/3000000").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().len(), 3_000_000);
    // Over the limit, declared: 413 before anything is sent.
    let before = up.seen().len();
    let r = through(Method::POST, "upload")
        .body(vec![b'z'; 5 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(up.seen().len(), before);
    // An answer declared over the limit is refused before anything is passed.
    let r = through(Method::GET, "big/5000000").send().await.unwrap();
    assert_eq!(r.status(), 502);
    let problem: Value = r.json().await.unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("larger than the proxy's limit"),
        "{problem}"
    );
    // One that does not declare its length is cut off, never passed whole.
    let r = through(Method::GET, "chunked/5000000")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let got = r.bytes().await.map(|b| b.len()).unwrap_or(0);
    assert!(got < 5_000_000, "{got} bytes passed");
    // Within the limit, an undeclared length streams through whole.
    let r = through(Method::GET, "chunked/3000000")
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().len(), 3_000_000);
}

async fn idempotent_requests_retry_and_others_do_not(backend: Backend) {
    let app = TestApp::spawn_with(backend, Some(allow_loopback())).await;
    let up = Upstream::start().await;
    let id = app.connection(
        json!({"name": "flaky", "kind": "http", "config": {"base_url": up.url, "backoff_ms": 10}}),
    )
    .await;
    up.script("/flaky", &[(503, Some("1")), (503, Some("1"))]);
    let started = Instant::now();
    let (status, _, body) = proxied(&app.admin, Method::GET, &id, "flaky", &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(up.count("/flaky"), 3);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "Retry-After was honoured"
    );
    // 429 without Retry-After backs off and retries too, at most `retries` (2) times.
    up.script("/limited", &[(429, None), (429, None), (429, None)]);
    let (status, _, _) = proxied(&app.admin, Method::GET, &id, "limited", &[]).await;
    assert_eq!(status, 429);
    assert_eq!(up.count("/limited"), 3);
    // POST is not retried.
    up.script("/charge", &[(503, Some("1"))]);
    let (status, _, _) = proxied(&app.admin, Method::POST, &id, "charge", &[]).await;
    assert_eq!(status, 503);
    assert_eq!(up.count("/charge"), 1);
    // A Retry-After beyond what is worth waiting is passed to the caller at once.
    up.script("/later", &[(503, Some("3600"))]);
    let (status, headers, _) = proxied(&app.admin, Method::GET, &id, "later", &[]).await;
    assert_eq!(status, 503);
    assert_eq!(headers.get("retry-after").unwrap(), "3600");
    assert_eq!(up.count("/later"), 1);
}

async fn refusals_are_clear_and_nothing_leaks(backend: Backend) {
    let app = TestApp::spawn_with(backend, Some(allow_loopback())).await;
    let up = Upstream::start().await;
    let id = app.connection(
        json!({"name": "api", "kind": "http", "auth": {"type": "bearer"},
            "config": {"base_url": up.url, "timeout_ms": 500}, "secrets": {"token": "t-api-secret"}}),
    )
    .await;
    let code = |r: &(u16, reqwest::header::HeaderMap, String)| {
        serde_json::from_str::<Value>(&r.2).unwrap()["code"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // No connection header, a malformed one, an unknown one.
    let r = app
        .admin
        .raw(Method::GET, "/v1/proxy/x", None, &[])
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 400);
    assert!(r.text().contains("patchbay-connection"), "{}", r.text());
    let r = proxied(&app.admin, Method::GET, "not-an-id", "x", &[]).await;
    assert_eq!((r.0, code(&r).as_str()), (400, "bad_header"));
    let r = proxied(
        &app.admin,
        Method::GET,
        "con_01JAAAAAAAAAAAAAAAAAAAAAAA",
        "x",
        &[],
    )
    .await;
    assert_eq!(r.0, 404);
    // A caller label that is not a label.
    let r = proxied(
        &app.admin,
        Method::GET,
        &id,
        "x",
        &[("Patchbay-Caller", "")],
    )
    .await;
    assert_eq!(r.0, 400);
    // No token, a viewer, another organization.
    let r = app
        .anonymous()
        .raw(
            Method::GET,
            "/v1/proxy/x",
            None,
            &[("Patchbay-Connection", &id)],
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 401);
    let viewer = app.token(&app.admin, Role::Viewer, None).await;
    assert_eq!(proxied(&viewer, Method::GET, &id, "x", &[]).await.0, 403);
    let executor = app.token(&app.admin, Role::Executor, None).await;
    assert_eq!(proxied(&executor, Method::GET, &id, "x", &[]).await.0, 200);
    let other = app.org("elsewhere").await;
    assert_eq!(proxied(&other, Method::GET, &id, "x", &[]).await.0, 404);
    // A path climbing out of the base URL.
    for climbing in ["a/..%2Fadmin", "a/%2E%2E%2Fadmin", "..%5Cadmin"] {
        let r = proxied(&app.admin, Method::GET, &id, climbing, &[]).await;
        assert_eq!(r.0, 400, "{climbing}: {}", r.2);
    }
    // Encoded characters reach the upstream as they were sent.
    let r = proxied(&app.admin, Method::GET, &id, "files/a%3Fb%2Fc?x=%26", &[]).await;
    assert_eq!(r.0, 200, "{}", r.2);
    assert_eq!(up.last().path, "/files/a%3Fb%2Fc");
    assert_eq!(up.last().query.as_deref(), Some("x=%26"));
    // The connection's timeout.
    let r = proxied(&app.admin, Method::GET, &id, "slow/x", &[]).await;
    assert_eq!((r.0, code(&r).as_str()), (504, "upstream_timeout"));
    // A destination the gate refuses.
    let metadata = app.connection(
        json!({"name": "metadata", "kind": "http", "config": {"base_url": "http://169.254.169.254/latest"}}),
    )
    .await;
    let r = proxied(&app.admin, Method::GET, &metadata, "meta-data", &[]).await;
    assert_eq!((r.0, code(&r).as_str()), (403, "egress_blocked"));
    // Not an HTTP connection; not authorized yet; disabled.
    let db = app.connection(
        json!({"name": "db", "kind": "database", "config": {"driver": "sqlite", "database": "/tmp/x.db"}}),
    )
    .await;
    assert_eq!(proxied(&app.admin, Method::GET, &db, "x", &[]).await.0, 400);
    let pending = app.connection(
        json!({"name": "pending", "kind": "http", "auth": {"type": "oauth2", "authorization_url": format!("{}/auth", up.url),
            "token_url": format!("{}/token", up.url)}, "config": {"base_url": up.url}, "secrets": {"client_id": "c"}}),
    )
    .await;
    let r = proxied(&app.admin, Method::GET, &pending, "x", &[]).await;
    assert_eq!(r.0, 409, "{}", r.2);
    app.admin
        .update_connection(
            &id,
            &patchbay_domain::api::UpdateConnection {
                status: Some("disabled".into()),
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(proxied(&app.admin, Method::GET, &id, "x", &[]).await.0, 409);
    // The secret never came back in any of these answers or audit entries.
    let audit = app.admin.audit("limit=200").await.unwrap();
    assert!(
        !serde_json::to_string(&audit)
            .unwrap()
            .contains("t-api-secret")
    );
}

async fn use_is_recorded_in_batches(backend: Backend) {
    let app = TestApp::spawn_with(backend, Some(allow_loopback())).await;
    let up = Upstream::start().await;
    let id = app
        .connection(json!({"name": "used", "kind": "http", "config": {"base_url": up.url}}))
        .await;
    for caller in ["wf-a", "wf-b", "wf-a"] {
        let r = proxied(
            &app.admin,
            Method::GET,
            &id,
            "x",
            &[("Patchbay-Caller", caller)],
        )
        .await;
        assert_eq!(r.0, 200);
    }
    up.script("/fails", &[(500, None), (500, None), (500, None)]);
    assert_eq!(
        proxied(&app.admin, Method::POST, &id, "fails", &[]).await.0,
        500
    );
    app.hub.flush_usage().await.unwrap();
    let c = app.admin.get_connection(&id).await.unwrap();
    assert!(c.last_used_at.is_some());
    assert_eq!(c.used_by, ["wf-a", "wf-b"]);
    // One summary per flush (the background flusher may have cut the batch in two).
    let audit = app.admin.audit("action=proxy.request").await.unwrap();
    assert!(
        !audit.items.is_empty() && audit.items.len() <= 2,
        "{audit:?}"
    );
    let sum = |f: &dyn Fn(&Value) -> i64| audit.items.iter().map(|e| f(&e.details)).sum::<i64>();
    assert_eq!(sum(&|d| d["count"].as_i64().unwrap()), 4);
    assert_eq!(sum(&|d| d["statuses"]["2xx"].as_i64().unwrap_or(0)), 3);
    assert_eq!(sum(&|d| d["statuses"]["5xx"].as_i64().unwrap_or(0)), 1);
    assert!(
        audit
            .items
            .iter()
            .all(|e| e.target.as_deref() == Some(id.as_str()))
    );
    assert!(audit.items.iter().any(|e| e.outcome == "failure"));
    // Nothing new to write: nothing written.
    assert_eq!(app.hub.flush_usage().await.unwrap(), 0);
    assert!(app.admin.verify_audit().await.unwrap().ok);
}

crate::both_backends!(use_is_recorded_in_batches);

/// OAuth connections through the proxy: the access token is injected; a 401 renews it once
/// and the request goes again; client-credentials tokens are fetched once and reused.
async fn oauth_tokens_are_injected_and_renewed_once_on_401(backend: Backend) {
    use crate::oauth_flow::{linked, stats};
    let app = TestApp::spawn_with(backend, Some(allow_loopback())).await;
    let idp = crate::peers::oidc(&format!("{}/v1/oauth/callback", app.url));
    let up = Upstream::start().await;
    let id = linked(&app, idp.port, "oauth-proxied").await;
    app.admin
        .update_connection(
            &id,
            &patchbay_domain::api::UpdateConnection {
                config: Some(json!({"base_url": up.url})),
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        proxied(&app.admin, Method::GET, &id, "me", &[]).await.0,
        200
    );
    let first = up.last().header("authorization").unwrap().to_owned();
    assert!(first.starts_with("Bearer "));
    up.refuse(first.trim_start_matches("Bearer "));
    let before = stats(idp.port).await["token_requests"].as_i64().unwrap();
    let (status, _, body) = proxied(&app.admin, Method::GET, &id, "me", &[]).await;
    assert_eq!(status, 200, "{body}");
    let seen = up.seen();
    let tail: Vec<&str> = seen[seen.len() - 2..]
        .iter()
        .map(|s| s.header("authorization").unwrap())
        .collect();
    assert_eq!(tail[0], first, "the refused token was tried first");
    assert_ne!(tail[1], first, "then the renewed one");
    assert_eq!(
        stats(idp.port).await["token_requests"].as_i64().unwrap(),
        before + 1
    );
    // Refused again after renewal: the 401 goes back to the caller, one renewal only.
    up.refuse("*");
    assert_eq!(
        proxied(&app.admin, Method::GET, &id, "me", &[]).await.0,
        401
    );
    assert_eq!(
        stats(idp.port).await["token_requests"].as_i64().unwrap(),
        before + 2
    );

    let up2 = Upstream::start().await;
    let base = format!("http://127.0.0.1:{}", idp.port);
    let cc = app.connection(
        json!({"name": "cc-proxied", "kind": "http", "auth": {"type": "oauth2_client_credentials",
            "token_url": format!("{base}/token"), "scopes": ["api"]}, "config": {"base_url": up2.url},
            "secrets": {"client_id": "patchbay", "client_secret": "patchbay-secret"}}),
    )
    .await;
    let before = stats(idp.port).await["token_requests"].as_i64().unwrap();
    for _ in 0..3 {
        assert_eq!(
            proxied(&app.admin, Method::GET, &cc, "data", &[]).await.0,
            200
        );
    }
    assert_eq!(
        stats(idp.port).await["token_requests"].as_i64().unwrap(),
        before + 1,
        "one client-credentials token for three calls"
    );
    let tokens: std::collections::BTreeSet<String> = up2
        .seen()
        .iter()
        .map(|s| s.header("authorization").unwrap().to_owned())
        .collect();
    assert_eq!(tokens.len(), 1);
    assert!(tokens.iter().next().unwrap().starts_with("Bearer "));
}

both_backends!(
    every_auth_type_injects_exactly_its_credential,
    bodies_stream_both_ways_within_the_limit,
    idempotent_requests_retry_and_others_do_not,
    refusals_are_clear_and_nothing_leaks,
    oauth_tokens_are_injected_and_renewed_once_on_401,
);
