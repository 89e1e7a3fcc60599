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

    let doc = app.openapi().await;
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
    // The public operations need no token; every other one documents its problem answers, and
    // every anonymous call to it is answered as documented (401).
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let public = [
                "/healthz",
                "/readyz",
                "/metrics",
                "/v1/oauth/callback",
                "/v1/oauth/client-metadata.json",
                "/v1/hooks/{endpoint}",
            ]
            .contains(&path.as_str());
            let statuses = op["responses"].as_object().unwrap();
            if public {
                assert_eq!(op["security"], serde_json::json!([]), "{method} {path}");
                continue;
            }
            for status in ["401", "403", "404", "422", "503"] {
                let r = &statuses[status];
                assert!(
                    r["content"]["application/problem+json"]["schema"]["$ref"]
                        .as_str()
                        .is_some_and(|s| s.ends_with("/Problem")),
                    "{method} {path} does not document {status}: {r}"
                );
            }
            let m = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
            let concrete = path
                .replace("{id}", "con_00000000000000000000000000")
                .replace("{name}", "x")
                .replace("{key}", "x");
            let r = anon.raw(m, &concrete, None, &[]).await.unwrap();
            assert_eq!(r.status.as_u16(), 401, "{method} {path} without a token");
        }
    }

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
