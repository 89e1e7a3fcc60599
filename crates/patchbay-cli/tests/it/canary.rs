//! The canary test (SPEC §4, Logs): plant known secret values, exercise every route including
//! its failure paths, and assert that none of them appears in any response (other than the
//! credentials read that exists to return them), any header, any log line, audit entry or
//! `/metrics` line.

use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};

use crate::server::Server;

const MARK: &str = "CANARY";

fn canary(what: &str) -> String {
    format!("{MARK}-{what}-9f8e7d6c")
}

struct Recorder {
    http: reqwest::Client,
    url: String,
    token: String,
    /// Everything that came back, except the credentials bodies.
    seen: String,
}

impl Recorder {
    async fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{}", self.url, path));
        req = req.bearer_auth(token.unwrap_or(&self.token));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = format!("{:?}", resp.headers());
        let text = resp.text().await.unwrap();
        // 502/504 are an upstream's failures, reported as such; a 500 is a bug.
        assert!(
            status != 500 || path.ends_with("/credentials"),
            "{method} {path} answered {status}: {text}"
        );
        self.seen.push_str(&headers);
        if !path.ends_with("/credentials") {
            self.seen.push_str(&text);
        }
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_planted_secret_escapes_into_responses_headers_logs_or_audit() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // An upstream that refuses every credential, for connection tests that fail on auth.
    let refuse = axum::Router::new().fallback(|| async { axum::http::StatusCode::UNAUTHORIZED });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, refuse).await.unwrap() });
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Server::start(
        &data,
        &[
            "--log-format",
            "json",
            "--allow-net",
            "127.0.0.0/8",
            "--test-rate-limit",
            "0",
        ],
        &[("RUST_LOG", "trace")],
    );
    let token = server.token.clone().unwrap();
    let mut r = Recorder {
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
        url: server.url.clone(),
        token,
        seen: String::new(),
    };
    let mut planted = vec![];
    let mut plant = |what: &str| {
        let c = canary(what);
        planted.push(c.clone());
        c
    };

    // Connections of every kind and auth type, holding canaries.
    let bodies = vec![
        json!({"name": "bearer", "kind": "http", "auth": {"type": "bearer"}, "config": {"base_url": "https://a.example"}, "secrets": {"token": plant("bearer")}}),
        json!({"name": "apikey", "kind": "http", "auth": {"type": "api_key", "in": "query", "name": "key"}, "config": {"base_url": "https://a.example"}, "secrets": {"api_key": plant("apikey"), "api_secret": plant("apisecret")}}),
        json!({"name": "basic", "kind": "http", "auth": {"type": "basic", "username": "u"}, "config": {"base_url": "https://a.example"}, "secrets": {"password": plant("basic")}}),
        json!({"name": "oauth", "kind": "http", "auth": {"type": "oauth2", "authorization_url": "https://id.example/a", "token_url": "https://id.example/t"}, "config": {"base_url": "https://a.example"}, "secrets": {"client_id": plant("clientid"), "client_secret": plant("clientsecret")}}),
        json!({"name": "cc", "kind": "http", "auth": {"type": "oauth2_client_credentials", "token_url": "https://id.example/t"}, "config": {"base_url": "https://a.example"}, "secrets": {"client_id": plant("ccid"), "client_secret": plant("ccsecret")}}),
        json!({"name": "custom", "kind": "http", "auth": {"type": "custom", "inject": [{"in": "header", "name": "X-K", "template": "K ${secrets.k}"}]}, "config": {"base_url": "https://a.example"}, "secrets": {"k": plant("custom")}}),
        json!({"name": "db", "kind": "database", "config": {"driver": "mysql", "host": "127.0.0.1", "database": "test", "username": "root"}, "secrets": {"password": plant("dbpass")}}),
        json!({"name": "mail", "kind": "smtp", "config": {"host": "127.0.0.1", "encryption": "starttls", "from_address": "a@example.com", "username": "a"}, "secrets": {"password": plant("smtp")}}),
        json!({"name": "hook", "kind": "webhook", "auth": {"type": "bearer"}, "config": {"url": "https://h.example/x"}, "secrets": {"token": plant("hooktoken")}}),
        json!({"name": "mcp", "kind": "mcp", "auth": {"type": "basic", "username": "m"}, "config": {"server_url": "http://127.0.0.1:9/mcp"}, "secrets": {"password": plant("mcp")}}),
    ];
    let mut ids = vec![];
    for b in bodies {
        let (status, c) = r.call(Method::POST, "/v1/connections", Some(b), None).await;
        assert_eq!(status, 201, "{c}");
        ids.push(c["id"].as_str().unwrap().to_owned());
    }
    let secret_value = plant("orgsecret");
    assert_eq!(
        r.call(
            Method::PUT,
            "/v1/secrets/shared",
            Some(json!({"value": secret_value})),
            None
        )
        .await
        .0,
        201
    );
    r.call(
        Method::POST,
        "/v1/secrets",
        Some(json!({"name": "other", "value": plant("orgsecret2")})),
        None,
    )
    .await;
    r.call(Method::POST, "/v1/connections", Some(json!({"name": "ref", "kind": "http", "auth": {"type": "bearer"}, "config": {"base_url": "https://a.example"}, "secrets": {"token": {"ref": "shared"}}})), None).await;

    // Connection tests that fail, saved and unsaved, with canaries in every secret.
    let failing = vec![
        json!({"name": "t-bearer", "kind": "http", "auth": {"type": "bearer"}, "config": {"base_url": upstream, "verify_path": "/me"}, "secrets": {"token": plant("testbearer")}}),
        json!({"name": "t-query", "kind": "http", "auth": {"type": "api_key", "in": "query", "name": "key"}, "config": {"base_url": upstream}, "secrets": {"api_key": plant("testquery")}}),
        json!({"name": "t-basic", "kind": "http", "auth": {"type": "basic", "username": "u"}, "config": {"base_url": upstream}, "secrets": {"password": plant("testbasic")}}),
        json!({"name": "t-closed", "kind": "http", "auth": {"type": "api_key", "in": "query", "name": "key"}, "config": {"base_url": format!("http://127.0.0.1:{closed}")}, "secrets": {"api_key": plant("testclosed")}}),
        json!({"name": "t-maria", "kind": "database", "config": {"driver": "mysql", "host": "127.0.0.1", "port": 3306, "database": "test", "username": "root"}, "secrets": {"password": plant("testmaria")}}),
        json!({"name": "t-smtp", "kind": "smtp", "config": {"host": "127.0.0.1", "port": closed, "encryption": "none", "from_address": "a@example.com", "username": "u"}, "secrets": {"password": plant("testsmtp")}}),
        json!({"name": "t-hook", "kind": "webhook", "auth": {"type": "hmac"}, "config": {"url": format!("{upstream}/hook")}, "secrets": {"secret": plant("testwebhooksecret")}}),
        json!({"name": "t-mcp", "kind": "mcp", "auth": {"type": "bearer"}, "config": {"server_url": format!("{upstream}/mcp")}, "secrets": {"token": plant("testmcp")}}),
        json!({"name": "t-blocked", "kind": "http", "auth": {"type": "bearer"}, "config": {"base_url": "http://169.254.169.254/"}, "secrets": {"token": plant("testblocked")}}),
    ];
    let mut kinds = std::collections::BTreeSet::new();
    for b in failing {
        let (_, result) = r
            .call(Method::POST, "/v1/connections/test", Some(b.clone()), None)
            .await;
        assert_eq!(result["success"], false, "{result}");
        kinds.insert(result["error_kind"].as_str().unwrap_or("none").to_owned());
        let (_, c) = r.call(Method::POST, "/v1/connections", Some(b), None).await;
        let (_, saved) = r
            .call(
                Method::POST,
                &format!("/v1/connections/{}/test", c["id"].as_str().unwrap()),
                None,
                None,
            )
            .await;
        assert_eq!(saved["success"], false, "{saved}");
    }
    assert!(
        kinds.contains("auth") && kinds.contains("refused") && kinds.contains("blocked"),
        "{kinds:?}"
    );

    // The proxy, through every auth type, to the refusing upstream (with retries of its 401s
    // and a token renewal where one applies).
    let proxied = vec![
        json!({"name": "p-bearer", "kind": "http", "auth": {"type": "bearer"}, "config": {"base_url": upstream}, "secrets": {"token": plant("proxybearer")}}),
        json!({"name": "p-query", "kind": "http", "auth": {"type": "api_key", "in": "query", "name": "key"}, "config": {"base_url": upstream}, "secrets": {"api_key": plant("proxyquery")}}),
        json!({"name": "p-cookie", "kind": "http", "auth": {"type": "api_key", "in": "cookie", "name": "sid"}, "config": {"base_url": upstream}, "secrets": {"api_key": plant("proxycookie")}}),
        json!({"name": "p-basic", "kind": "http", "auth": {"type": "basic", "username": "u"}, "config": {"base_url": upstream}, "secrets": {"password": plant("proxybasic")}}),
        json!({"name": "p-custom", "kind": "http", "auth": {"type": "custom", "inject": [{"in": "query", "name": "sig", "template": "${secrets.k}"}]}, "config": {"base_url": upstream}, "secrets": {"k": plant("proxycustom")}}),
        json!({"name": "p-closed", "kind": "http", "auth": {"type": "api_key", "in": "query", "name": "key"}, "config": {"base_url": format!("http://127.0.0.1:{closed}")}, "secrets": {"api_key": plant("proxyclosed")}}),
    ];
    for b in proxied {
        let (_, c) = r.call(Method::POST, "/v1/connections", Some(b), None).await;
        let id = c["id"].as_str().unwrap().to_owned();
        for method in [Method::GET, Method::POST] {
            let resp = r
                .http
                .request(method, format!("{}/v1/proxy/things?q=1", r.url))
                .bearer_auth(&r.token)
                .header("Patchbay-Connection", &id)
                .header("Patchbay-Caller", "canary-run")
                .body("{}")
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            assert!(status == 401 || status == 502, "{status}");
            r.seen.push_str(&format!("{:?}", resp.headers()));
            r.seen.push_str(&resp.text().await.unwrap());
        }
    }

    // Actions and nodes through connections holding canaries, failing upstream.
    let action_connections = vec![
        json!({"name": "a-http", "kind": "http", "provider": "openai", "auth": {"type": "api_key"}, "config": {"base_url": upstream}, "secrets": {"api_key": format!("sk-{}", plant("actionkey"))}}),
        json!({"name": "a-sql", "kind": "database", "config": {"driver": "mysql", "host": "127.0.0.1", "port": 3306, "database": "test", "username": "root"}, "secrets": {"password": plant("actionsql")}}),
        json!({"name": "a-mail", "kind": "smtp", "config": {"host": "127.0.0.1", "port": closed, "encryption": "none", "from_address": "a@example.com", "username": "u"}, "secrets": {"password": plant("actionmail")}}),
        json!({"name": "a-hook", "kind": "webhook", "auth": {"type": "hmac"}, "config": {"url": format!("{upstream}/hook")}, "secrets": {"secret": plant("actionhooksecret")}}),
    ];
    let mut action_ids = vec![];
    for b in action_connections {
        let (status, c) = r.call(Method::POST, "/v1/connections", Some(b), None).await;
        assert_eq!(status, 201, "{c}");
        action_ids.push(c["id"].as_str().unwrap().to_owned());
    }
    for (path, body) in [
        (
            "/v1/actions/http",
            json!({"connection": action_ids[0], "method": "POST", "path": "/x", "query": {"q": 1}, "body": {"b": 1}}),
        ),
        (
            "/v1/actions/http",
            json!({"connection": action_ids[0], "path": "/x", "auth": {"type": "bearer", "secret_ref": "shared"}}),
        ),
        (
            "/v1/actions/sql",
            json!({"connection": action_ids[1], "query": "SELECT ?", "params": [1]}),
        ),
        (
            "/v1/actions/email",
            json!({"connection": action_ids[2], "to": "b@example.com", "subject": "s", "text": "t"}),
        ),
        (
            "/v1/actions/webhook",
            json!({"connection": action_ids[3], "body": {"k": 1}, "retry": {"attempts": 2, "backoff_ms": 10}}),
        ),
        (
            "/v1/actions/webhook",
            json!({"connection": action_ids[3], "mode": "fire_and_forget", "body": {"k": 2}, "retry": {"attempts": 1}}),
        ),
        (
            "/v1/nodes/run",
            json!({"type": "llm", "config": {"provider": "openai", "model": "m", "connectionId": action_ids[0], "prompt": "p"}}),
        ),
    ] {
        let (status, answer) = r.call(Method::POST, path, Some(body), None).await;
        assert!(status < 500 || status == 502, "{path}: {status} {answer}");
    }
    r.call(Method::GET, "/v1/deliveries", None, None).await;

    // Failure paths that carry canaries in places where they do not belong.
    let (s, _) = r.call(Method::POST, "/v1/connections", Some(json!({"name": "leak", "kind": "http", "config": {"base_url": "https://a.example", "password": plant("inconfig")}})), None).await;
    assert_eq!(s, 422);
    let (s, _) = r.call(Method::POST, "/v1/connections", Some(json!({"name": "leak", "kind": "http", "config": {"base_url": "https://a.example", "headers": {"X-A": format!("{}\r\n", plant("inheader"))}}})), None).await;
    assert_eq!(s, 422);
    let (s, _) = r.call(Method::POST, "/v1/connections", Some(json!({"name": "leak", "kind": "http", "config": {"base_url": format!("https://user:{}@a.example", plant("inurl"))}})), None).await;
    assert_eq!(s, 422);
    let (s, _) = r.call(Method::POST, "/v1/connections", Some(json!({"name": "leak", "kind": "webhook", "auth": {"type": "hmac"}, "config": {"url": "https://h.example"}, "secrets": {"secret": plant("x")[..10].to_owned()}})), None).await;
    assert_eq!(s, 422);
    let (s, _) = r.call(Method::POST, "/v1/connections", Some(json!({"name": "leak", "kind": "http", "auth": {"type": "bearer"}, "config": {"base_url": "https://a.example"}, "secrets": {"token": plant("wrongtype"), "password": plant("unknownfield")}})), None).await;
    assert_eq!(s, 422);
    let bogus = format!("pb_{}", &plant("badtoken")[..]);
    assert_eq!(
        r.call(Method::GET, "/v1/me", None, Some(&bogus)).await.0,
        401
    );
    let provider = plant("inquery");
    r.call(
        Method::GET,
        &format!("/v1/connections?provider={provider}"),
        None,
        None,
    )
    .await;
    // Every other route, with its reads and writes.
    let id = ids[0].clone();
    for (m, p, b) in [
        (Method::GET, "/v1/me".to_owned(), None),
        (Method::GET, "/v1/orgs".to_owned(), None),
        (
            Method::POST,
            "/v1/orgs".to_owned(),
            Some(json!({"name": "second"})),
        ),
        (Method::GET, "/v1/projects".to_owned(), None),
        (
            Method::POST,
            "/v1/projects".to_owned(),
            Some(json!({"name": "p2"})),
        ),
        (Method::GET, "/v1/tokens".to_owned(), None),
        (
            Method::POST,
            "/v1/tokens".to_owned(),
            Some(json!({"name": "exec", "role": "executor"})),
        ),
        (Method::GET, "/v1/secrets".to_owned(), None),
        (Method::GET, "/v1/connections".to_owned(), None),
        (Method::GET, format!("/v1/connections/{id}"), None),
        (
            Method::PATCH,
            format!("/v1/connections/{id}"),
            Some(json!({"secrets": {"token": plant("patched")}, "config": {"timeout_ms": 1000}})),
        ),
        (
            Method::PATCH,
            format!("/v1/connections/{}", ids[1]),
            Some(json!({"config": {"retries": 3}})),
        ),
        (
            Method::GET,
            format!("/v1/connections/{id}/credentials"),
            None,
        ),
        (
            Method::GET,
            format!("/v1/connections/{}/credentials", ids[7]),
            None,
        ),
        (Method::GET, "/v1/audit?limit=200".to_owned(), None),
        (Method::GET, "/v1/audit/verify".to_owned(), None),
        (Method::GET, "/v1/keys".to_owned(), None),
        (Method::POST, "/v1/keys/rotate".to_owned(), None),
        (Method::GET, "/v1/openapi.json".to_owned(), None),
        (Method::GET, "/healthz".to_owned(), None),
        (Method::GET, "/readyz".to_owned(), None),
        (Method::DELETE, format!("/v1/connections/{}", ids[2]), None),
        (Method::DELETE, "/v1/secrets/other".to_owned(), None),
    ] {
        r.call(m, &p, b, None).await;
    }
    // Let the rotation finish, then read everything once more on the new key.
    for _ in 0..100 {
        let (_, k) = r.call(Method::GET, "/v1/keys", None, None).await;
        if k["rotation"]["finished"] == true {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    for id in &ids {
        r.call(
            Method::GET,
            &format!("/v1/connections/{id}/credentials"),
            None,
            None,
        )
        .await;
    }
    let (_, audit) = r.call(Method::GET, "/v1/audit?limit=200", None, None).await;
    assert!(
        audit["items"].as_array().unwrap().len() > 20,
        "the audit log recorded the session"
    );

    // `/metrics` after all of it: counters moved, and not one planted value among them.
    let metrics = r
        .http
        .get(format!("{}/metrics", r.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("patchbay_http_requests_total{") && metrics.contains("/v1/connections"),
        "/metrics counts the session: {metrics}"
    );
    r.seen.push_str(&metrics);

    server.stop();
    let logs = server.logs();
    assert!(logs.lines().count() > 50, "trace logging produced output");
    assert!(logs.contains("/v1/connections"), "requests are logged");
    let stdout = server.stdout.join("\n");
    for c in &planted {
        let forms = [
            c.clone(),
            base64::engine::general_purpose::STANDARD.encode(c),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(c),
        ];
        for f in &forms {
            assert!(
                !r.seen.contains(f.as_str()),
                "{c} appeared in a response or header"
            );
            assert!(!logs.contains(f.as_str()), "{c} appeared in the logs");
            assert!(!stdout.contains(f.as_str()), "{c} appeared on stdout");
        }
    }
    assert!(
        !logs.contains(MARK) && !r.seen.contains(MARK),
        "a canary fragment leaked"
    );
}
