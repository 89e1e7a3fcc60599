//! Health, readiness, the OpenAPI document and authentication of every route.

use reqwest::Method;

use crate::both_backends;
use crate::helpers::{Backend, TestApp};

async fn health_openapi_and_authentication(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let anon = app.anonymous();
    let health = anon.raw(Method::GET, "/healthz", None, &[]).await.unwrap();
    assert_eq!(
        (health.status.as_u16(), health.json()["status"].as_str()),
        (200, Some("ok"))
    );
    let ready = anon.raw(Method::GET, "/readyz", None, &[]).await.unwrap();
    assert_eq!(ready.status.as_u16(), 200);
    assert_eq!(ready.json()["vault"], "unsealed");

    let doc = app
        .admin
        .raw(Method::GET, "/v1/openapi.json", None, &[])
        .await
        .unwrap()
        .json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    let expected = [
        "/v1/me",
        "/v1/orgs",
        "/v1/projects",
        "/v1/projects/{id}",
        "/v1/tokens",
        "/v1/tokens/{id}",
        "/v1/secrets",
        "/v1/secrets/{name}",
        "/v1/connections",
        "/v1/connections/{id}",
        "/v1/connections/{id}/credentials",
        "/v1/audit",
        "/v1/audit/verify",
        "/v1/keys",
        "/v1/keys/rotate",
        "/healthz",
        "/readyz",
    ];
    for p in expected {
        assert!(
            paths.contains_key(p),
            "{p} is missing from the OpenAPI document"
        );
    }
    assert!(doc["components"]["schemas"]["Connection"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());

    // Every API route but health needs a token; a missing one is 401 with a challenge.
    for (m, p) in [
        (Method::GET, "/v1/me"),
        (Method::GET, "/v1/connections"),
        (Method::POST, "/v1/connections"),
        (Method::GET, "/v1/secrets"),
        (Method::GET, "/v1/audit"),
        (Method::POST, "/v1/keys/rotate"),
        (Method::GET, "/v1/openapi.json"),
        (Method::GET, "/v1/tokens"),
        (Method::GET, "/v1/orgs"),
    ] {
        let r = anon.raw(m.clone(), p, None, &[]).await.unwrap();
        assert_eq!(r.status.as_u16(), 401, "{m} {p}");
        assert_eq!(r.headers["www-authenticate"], "Bearer");
        let bad = anon
            .raw(
                m.clone(),
                p,
                None,
                &[("authorization", "Bearer pb_not_a_real_token")],
            )
            .await
            .unwrap();
        assert_eq!(bad.status.as_u16(), 401, "{m} {p} with a bad token");
    }
}

both_backends!(health_openapi_and_authentication);
