//! Hostile and malformed input: always a 4xx problem document, never a 5xx, and the store is
//! left exactly as it was.

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, error_fields};

async fn snapshot(app: &TestApp) -> (Value, Value, i64) {
    let list =
        serde_json::to_value(app.admin.list_connections("limit=200").await.unwrap()).unwrap();
    let projects = serde_json::to_value(app.admin.list_projects().await.unwrap()).unwrap();
    let audit = app.admin.verify_audit().await.unwrap().events;
    (list, projects, audit)
}

async fn malformed_input_is_refused_cleanly(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (spec, _) = crate::helpers::every_kind("m").remove(0);
    let existing = app
        .admin
        .create_connection(&serde_json::from_value(spec.clone()).unwrap())
        .await
        .unwrap();
    let before = snapshot(&app).await;
    let token = format!("Bearer {}", app.admin_token);
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let ten_mb = format!("{{\"name\": \"{}\"}}", "a".repeat(10 * 1024 * 1024));
    let mut invalid_utf8 = br#"{"name": "x"#.to_vec();
    invalid_utf8.extend([0xff, 0xfe]);
    invalid_utf8.extend(br#"", "kind": "http"}"#);
    let with = |name: Value| {
        let mut s = spec.clone();
        s["name"] = name;
        s.to_string().into_bytes()
    };
    let cases: Vec<(&str, Method, String, Vec<u8>, &str)> = vec![
        (
            "bad json",
            Method::POST,
            "/v1/connections".into(),
            b"{\"name\": ".to_vec(),
            "application/json",
        ),
        (
            "not an object",
            Method::POST,
            "/v1/connections".into(),
            b"[1,2]".to_vec(),
            "application/json",
        ),
        (
            "unknown kind",
            Method::POST,
            "/v1/connections".into(),
            json!({"name": "x", "kind": "ftp"}).to_string().into_bytes(),
            "application/json",
        ),
        (
            "missing field",
            Method::POST,
            "/v1/connections".into(),
            json!({"name": "x", "kind": "http"})
                .to_string()
                .into_bytes(),
            "application/json",
        ),
        (
            "wrong type",
            Method::POST,
            "/v1/connections".into(),
            json!({"name": 5, "kind": "http", "config": "x"})
                .to_string()
                .into_bytes(),
            "application/json",
        ),
        (
            "10 MB body",
            Method::POST,
            "/v1/connections".into(),
            ten_mb.into_bytes(),
            "application/json",
        ),
        (
            "invalid utf-8",
            Method::POST,
            "/v1/connections".into(),
            invalid_utf8,
            "application/json",
        ),
        (
            "sql in name",
            Method::POST,
            "/v1/connections".into(),
            with(json!("x'); DROP TABLE connections; --")),
            "application/json",
        ),
        (
            "crlf in name",
            Method::POST,
            "/v1/connections".into(),
            with(json!("a\r\nX-Injected: 1")),
            "application/json",
        ),
        (
            "nul in name",
            Method::POST,
            "/v1/connections".into(),
            with(json!("a\u{0}b")),
            "application/json",
        ),
        (
            "duplicate name",
            Method::POST,
            "/v1/connections".into(),
            spec.to_string().into_bytes(),
            "application/json",
        ),
        (
            "form body",
            Method::POST,
            "/v1/connections".into(),
            b"name=x&kind=http".to_vec(),
            "application/x-www-form-urlencoded",
        ),
        (
            "crlf in secret name",
            Method::PUT,
            "/v1/secrets/a%0D%0Ab".into(),
            json!({"value": "v"}).to_string().into_bytes(),
            "application/json",
        ),
        (
            "sql in secret name",
            Method::PUT,
            "/v1/secrets/x';--".into(),
            json!({"value": "v"}).to_string().into_bytes(),
            "application/json",
        ),
        (
            "empty secret",
            Method::PUT,
            "/v1/secrets/ok_name".into(),
            json!({"value": ""}).to_string().into_bytes(),
            "application/json",
        ),
        (
            "unknown field",
            Method::POST,
            "/v1/projects".into(),
            json!({"name": "p", "colour": "red"})
                .to_string()
                .into_bytes(),
            "application/json",
        ),
        (
            "crlf project",
            Method::POST,
            "/v1/projects".into(),
            json!({"name": "p\r\nq"}).to_string().into_bytes(),
            "application/json",
        ),
        (
            "bad role",
            Method::POST,
            "/v1/tokens".into(),
            json!({"name": "t", "role": "root"})
                .to_string()
                .into_bytes(),
            "application/json",
        ),
        (
            "patch kind",
            Method::PATCH,
            format!("/v1/connections/{}", existing.id),
            json!({"kind": "smtp"}).to_string().into_bytes(),
            "application/json",
        ),
        (
            "patch bad config",
            Method::PATCH,
            format!("/v1/connections/{}", existing.id),
            json!({"config": {"base_url": "gopher://x"}})
                .to_string()
                .into_bytes(),
            "application/json",
        ),
        (
            "sql id",
            Method::GET,
            "/v1/connections/con_'%20OR%201=1--".into(),
            vec![],
            "application/json",
        ),
        (
            "unknown route",
            Method::GET,
            "/v1/nope".into(),
            vec![],
            "application/json",
        ),
        (
            "bad method",
            Method::PUT,
            "/v1/connections".into(),
            vec![],
            "application/json",
        ),
        (
            "bad since",
            Method::GET,
            "/v1/audit?since=yesterday".into(),
            vec![],
            "application/json",
        ),
        (
            "a signed cursor",
            Method::GET,
            "/v1/audit?cursor=-1".into(),
            vec![],
            "application/json",
        ),
        (
            "a cursor with a plus",
            Method::GET,
            "/v1/audit?cursor=%2B5".into(),
            vec![],
            "application/json",
        ),
        (
            "a struct's fields as an array",
            Method::POST,
            "/v1/projects".into(),
            br#"["sneaky", null]"#.to_vec(),
            "application/json",
        ),
        (
            "a nested struct's fields as an array",
            Method::POST,
            "/v1/actions/webhook".into(),
            json!({"url": "http://127.0.0.1:9/", "retry": [3, 100]})
                .to_string()
                .into_bytes(),
            "application/json",
        ),
    ];
    for (what, method, path, body, ctype) in cases {
        let mut req = http
            .request(method.clone(), format!("{}{}", app.url, path))
            .header("authorization", &token);
        if !body.is_empty() {
            req = req.header("content-type", ctype).body(body);
        }
        let r = req.send().await.unwrap_or_else(|e| panic!("{what}: {e}"));
        let status = r.status().as_u16();
        let ctype = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        let problem: Value = r.json().await.unwrap_or(Value::Null);
        assert!(
            (400..500).contains(&status),
            "{what}: answered {status}: {problem}"
        );
        assert_eq!(ctype.as_deref(), Some("application/problem+json"), "{what}");
        assert!(
            problem["code"].is_string() && problem["detail"].is_string(),
            "{what}: {problem}"
        );
        assert_eq!(problem["status"], status, "{what}");
    }
    // Field errors name their fields.
    let r = app
        .admin
        .raw(
            Method::POST,
            "/v1/connections",
            Some(&json!({"name": "x\r\n", "kind": "http", "config": {"timeout_ms": "slow"}})),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 422);
    assert_eq!(
        error_fields(&r.json()),
        ["name", "config.timeout_ms", "config.base_url"]
    );
    // A project a body names that does not exist is not found, like a connection an action
    // names.
    for (path, body) in [
        (
            "/v1/tokens",
            json!({"name": "t", "role": "member", "project": "prj_01j00000000000000000000000"}),
        ),
        (
            "/v1/connections",
            json!({"name": "elsewhere", "kind": "http", "project": "nowhere",
                "config": {"base_url": "https://a.example"}}),
        ),
    ] {
        let r = app
            .admin
            .raw(Method::POST, path, Some(&body), &[])
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 404, "{path}: {}", r.text());
        assert!(r.text().contains("project"), "{}", r.text());
    }
    // A stale or malformed If-Match.
    let r = app
        .admin
        .raw(
            Method::PATCH,
            &format!("/v1/connections/{}", existing.id),
            Some(&json!({})),
            &[("if-match", "\"xyz\"")],
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 400);
    assert_eq!(snapshot(&app).await, before, "the store changed");
}

both_backends!(malformed_input_is_refused_cleanly);
