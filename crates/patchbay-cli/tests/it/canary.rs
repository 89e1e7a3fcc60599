//! The canary test (SPEC §4, Logs): plant known secret values, exercise every route including
//! its failure paths, and assert that none of them appears in any response (other than the
//! credentials read that exists to return them), any header, any log line, audit entry or
//! `/metrics` line.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};

use crate::server::Server;

const MARK: &str = "CANARY";

fn canary(what: &str) -> String {
    format!("{MARK}-{what}-9f8e7d6c")
}

/// Responses that exist to hand credentials to their caller (an executor's reads).
fn returns_credentials(path: &str) -> bool {
    path.ends_with("/credentials") || path.ends_with("/token")
}

/// The OpenAPI document's operations as (method, path template), with the statuses each
/// documents.
type Operations = BTreeMap<(String, String), BTreeSet<String>>;

fn operations(doc: &Value) -> Operations {
    let mut ops = Operations::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("a path item") {
            if let Some(responses) = op["responses"].as_object() {
                ops.insert(
                    (method.clone(), path.clone()),
                    responses.keys().cloned().collect(),
                );
            }
        }
    }
    ops
}

struct Recorder {
    http: reqwest::Client,
    url: String,
    token: String,
    /// Everything that came back, except the credentials bodies.
    seen: String,
    operations: Operations,
    /// The operations called, each with the statuses it answered.
    exercised: BTreeMap<(String, String), BTreeSet<u16>>,
}

impl Recorder {
    /// The document's operation a concrete request is an instance of (the most literal
    /// template that matches).
    fn operation(&self, method: &Method, path: &str) -> (String, String) {
        let path = path.split('?').next().unwrap();
        let segments: Vec<&str> = path.split('/').collect();
        let method = method.as_str().to_ascii_lowercase();
        self.operations
            .keys()
            .filter(|(m, template)| {
                let parts: Vec<&str> = template.split('/').collect();
                *m == method
                    && parts.len() == segments.len()
                    && parts
                        .iter()
                        .zip(&segments)
                        .all(|(t, s)| t == s || (t.starts_with('{') && !s.is_empty()))
            })
            .min_by_key(|(_, template)| template.matches('{').count())
            .cloned()
            .unwrap_or_else(|| panic!("{method} {path} is not in the OpenAPI document"))
    }

    /// Calls one operation and asserts that it answered one of `expect`, a status its
    /// operation documents.
    async fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
        expect: &[u16],
    ) -> (u16, Value) {
        let op = self.operation(&method, path);
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
        assert!(
            expect.contains(&status),
            "{method} {path} answered {status}, not one of {expect:?}: {text}"
        );
        let documented = &self.operations[&op];
        assert!(
            documented.contains(&status.to_string()) || documented.contains("default"),
            "{} {} answered {status}, which its operation does not document ({documented:?})",
            op.0,
            op.1
        );
        self.exercised.entry(op).or_default().insert(status);
        self.seen.push_str(&headers);
        if !returns_credentials(path) {
            self.seen.push_str(&text);
        }
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

impl Recorder {
    /// Posts a delivery to an inbound endpoint as its provider would: no Patchbay token.
    async fn deliver(
        &mut self,
        path: &str,
        headers: &[(&str, String)],
        body: &str,
        expect: &[u16],
    ) -> Value {
        let op = self.operation(&Method::POST, path);
        let mut req = self
            .http
            .post(format!("{}{}", self.url, path))
            .body(body.to_owned());
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        self.seen.push_str(&format!("{:?}", resp.headers()));
        let text = resp.text().await.unwrap();
        assert!(
            expect.contains(&status),
            "POST {path} answered {status}: {text}"
        );
        self.exercised.entry(op).or_default().insert(status);
        self.seen.push_str(&text);
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }
}

/// GitHub's `X-Hub-Signature-256` of `body` under `secret`.
fn github_signature(secret: &str, body: &str) -> String {
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// Operations the walk does not call, and why.
const EXEMPT: &[(&str, &str, &str)] = &[];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_planted_secret_escapes_into_responses_headers_logs_or_audit() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // An upstream that refuses every credential, for connection tests that fail on auth.
    let refuse = axum::Router::new().fallback(|| async { axum::http::StatusCode::UNAUTHORIZED });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = format!("http://{}", listener.local_addr().unwrap());
    // An SFTP server that refuses every canary credential.
    let sftp_root = tempfile::tempdir().unwrap();
    let sftp = crate::peers::FileServer::sftp(sftp_root.path());
    tokio::spawn(async move { axum::serve(listener, refuse).await.unwrap() });
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // An authorization server whose tokens are canaries too.
    let idp = patchbay_testkit::strict_oauth::StrictServer::start(3600, 0).await;
    idp.grant.lock().unwrap().prefix = canary("oauthtoken");
    let mut server = Server::start(
        &data,
        &[
            "--log-format",
            "json",
            "--allow-net",
            "127.0.0.0/8",
            "--test-rate-limit",
            "0",
            "--allow-command",
            "node",
            // Short, so that the UI walk's last session can be seen to expire.
            "--ui-session-idle",
            "5s",
        ],
        &[("RUST_LOG", "trace")],
    );
    let token = server.token.clone().unwrap();
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let doc: Value = http
        .get(format!("{}/v1/openapi.json", server.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut r = Recorder {
        http,
        url: server.url.clone(),
        token,
        seen: doc.to_string(),
        operations: operations(&doc),
        exercised: BTreeMap::new(),
    };
    let mut planted = vec![canary("oauthtoken")];
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
        json!({"name": "bucket", "kind": "storage", "config": {"bucket": "canary-bucket", "endpoint": "http://127.0.0.1:9"}, "secrets": {"access_key_id": plant("s3keyid"), "secret_access_key": plant("s3secret"), "session_token": plant("s3session")}}),
        json!({"name": "sigv4", "kind": "http", "auth": {"type": "aws_sigv4", "region": "us-east-1", "service": "execute-api"}, "config": {"base_url": "https://a.example"}, "secrets": {"access_key_id": plant("sigv4keyid"), "secret_access_key": plant("sigv4secret")}}),
        json!({"name": "sftp", "kind": "file_transfer", "config": {"protocol": "sftp", "host": "127.0.0.1", "port": 9, "username": "u"}, "secrets": {"password": plant("sftppw")}}),
        json!({"name": "sftp-key", "kind": "file_transfer", "auth": {"type": "ssh_key"}, "config": {"protocol": "sftp", "host": "127.0.0.1", "port": 9, "username": "u"}, "secrets": {"private_key": plant("sftpkey"), "passphrase": plant("sftppassphrase")}}),
        json!({"name": "mcp", "kind": "mcp", "auth": {"type": "basic", "username": "m"}, "config": {"server_url": "http://127.0.0.1:9/mcp"}, "secrets": {"password": plant("mcp")}}),
    ];
    let mut ids = vec![];
    for b in bodies {
        let (_, c) = r
            .call(Method::POST, "/v1/connections", Some(b), None, &[201])
            .await;
        ids.push(c["id"].as_str().unwrap().to_owned());
    }
    let secret_value = plant("orgsecret");
    r.call(
        Method::PUT,
        "/v1/secrets/shared",
        Some(json!({"value": secret_value})),
        None,
        &[201],
    )
    .await;
    r.call(
        Method::PUT,
        "/v1/secrets/shared",
        Some(json!({"value": plant("orgsecretagain")})),
        None,
        &[200],
    )
    .await;
    r.call(
        Method::POST,
        "/v1/secrets",
        Some(json!({"name": "other", "value": plant("orgsecret2")})),
        None,
        &[201],
    )
    .await;
    r.call(Method::POST, "/v1/connections", Some(json!({"name": "ref", "kind": "http", "auth": {"type": "bearer"}, "config": {"base_url": "https://a.example"}, "secrets": {"token": {"ref": "shared"}}})), None, &[201]).await;

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
        json!({"name": "t-bucket", "kind": "storage", "config": {"bucket": "canary-bucket", "endpoint": upstream}, "secrets": {"access_key_id": plant("tests3keyid"), "secret_access_key": plant("tests3secret")}}),
        json!({"name": "t-sftp", "kind": "file_transfer", "config": {"protocol": "sftp", "host": "127.0.0.1", "port": sftp.port, "username": sftp.user, "host_key": sftp.get("host_key")}, "secrets": {"password": plant("testsftppw")}}),
        json!({"name": "t-sftp-key", "kind": "file_transfer", "auth": {"type": "ssh_key"}, "config": {"protocol": "sftp", "host": "127.0.0.1", "port": sftp.port, "username": sftp.user, "host_key": sftp.get("host_key")}, "secrets": {"private_key": plant("testsftpkey"), "passphrase": plant("testsftppassphrase")}}),
        json!({"name": "t-ftps", "kind": "file_transfer", "config": {"protocol": "ftps", "host": "127.0.0.1", "port": closed, "username": "u"}, "secrets": {"password": plant("testftps")}}),
        json!({"name": "t-sigv4", "kind": "http", "auth": {"type": "aws_sigv4", "region": "us-east-1", "service": "s3"}, "config": {"base_url": upstream}, "secrets": {"access_key_id": plant("testsigv4keyid"), "secret_access_key": plant("testsigv4secret")}}),
    ];
    let mut kinds = std::collections::BTreeSet::new();
    for b in failing {
        let (_, result) = r
            .call(
                Method::POST,
                "/v1/connections/test",
                Some(b.clone()),
                None,
                &[200],
            )
            .await;
        assert_eq!(result["success"], false, "{result}");
        kinds.insert(result["error_kind"].as_str().unwrap_or("none").to_owned());
        let (_, c) = r
            .call(Method::POST, "/v1/connections", Some(b), None, &[201])
            .await;
        let (_, saved) = r
            .call(
                Method::POST,
                &format!("/v1/connections/{}/test", c["id"].as_str().unwrap()),
                None,
                None,
                &[200],
            )
            .await;
        assert_eq!(saved["success"], false, "{saved}");
    }
    assert!(
        kinds.contains("auth") && kinds.contains("refused") && kinds.contains("blocked"),
        "{kinds:?}"
    );

    // An OAuth connection linked through the whole flow: the client secret and every token the
    // provider issues are canaries.
    let mut linked = idp.connection("o-linked");
    linked["config"]["base_url"] = json!(upstream);
    linked["secrets"]["client_secret"] = json!(plant("linkclientsecret"));
    let (_, c) = r
        .call(Method::POST, "/v1/connections", Some(linked), None, &[201])
        .await;
    let oauth_id = c["id"].as_str().unwrap().to_owned();
    let (_, started) = r
        .call(
            Method::POST,
            &format!("/v1/connections/{oauth_id}/oauth/start"),
            Some(json!({})),
            None,
            &[200],
        )
        .await;
    let (redirected, _) = r
        .call(
            Method::GET,
            &format!("/v1/oauth/start?connection={oauth_id}"),
            None,
            None,
            &[303],
        )
        .await;
    assert_eq!(redirected, 303);
    let consent = r
        .http
        .get(started["authorization_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let back = consent.headers()["location"].to_str().unwrap().to_owned();
    let callback = back
        .strip_prefix(&r.url)
        .unwrap_or_else(|| panic!("the provider sends the browser back to Patchbay: {back}"))
        .to_owned();
    r.call(Method::GET, &callback, None, None, &[200]).await;
    // The same code and state again, and a state never issued: refused with a reason.
    r.call(Method::GET, &callback, None, None, &[400]).await;
    r.call(
        Method::GET,
        &format!("/v1/oauth/callback?code={}&state=unknown", plant("code")),
        None,
        None,
        &[404],
    )
    .await;
    let (_, access) = r
        .call(
            Method::GET,
            &format!("/v1/connections/{oauth_id}/token"),
            None,
            None,
            &[200],
        )
        .await;
    assert!(
        access["access_token"]
            .as_str()
            .is_some_and(|t| t.starts_with(MARK)),
        "the linked token is the provider's: {access}"
    );
    r.call(
        Method::GET,
        &format!("/v1/connections/{}/token", ids[0]),
        None,
        None,
        &[409],
    )
    .await;

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
    let mut proxy_ids = vec![oauth_id.clone()];
    for b in proxied {
        let (_, c) = r
            .call(Method::POST, "/v1/connections", Some(b), None, &[201])
            .await;
        proxy_ids.push(c["id"].as_str().unwrap().to_owned());
    }
    for id in &proxy_ids {
        for method in [Method::GET, Method::POST] {
            let resp = r
                .http
                .request(method, format!("{}/v1/proxy/things?q=1", r.url))
                .bearer_auth(&r.token)
                .header("Patchbay-Connection", id)
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
    assert!(
        idp.counts().1 >= 1,
        "the upstream's 401 renewed the OAuth connection's tokens"
    );

    // Actions and nodes through connections holding canaries, failing upstream.
    let action_connections = vec![
        json!({"name": "a-http", "kind": "http", "provider": "openai", "auth": {"type": "api_key"}, "config": {"base_url": upstream}, "secrets": {"api_key": format!("sk-{}", plant("actionkey"))}}),
        json!({"name": "a-sql", "kind": "database", "config": {"driver": "mysql", "host": "127.0.0.1", "port": 3306, "database": "test", "username": "root"}, "secrets": {"password": plant("actionsql")}}),
        json!({"name": "a-mail", "kind": "smtp", "config": {"host": "127.0.0.1", "port": closed, "encryption": "none", "from_address": "a@example.com", "username": "u"}, "secrets": {"password": plant("actionmail")}}),
        json!({"name": "a-hook", "kind": "webhook", "auth": {"type": "hmac"}, "config": {"url": format!("{upstream}/hook")}, "secrets": {"secret": plant("actionhooksecret")}}),
        json!({"name": "a-bucket", "kind": "storage", "config": {"bucket": "canary-bucket", "endpoint": upstream}, "secrets": {"access_key_id": plant("actions3keyid"), "secret_access_key": plant("actions3secret")}}),
        // A presigned URL carries its access key id (SigV4's query form), never the secret.
        json!({"name": "a-sftp", "kind": "file_transfer", "config": {"protocol": "sftp", "host": "127.0.0.1", "port": sftp.port, "username": sftp.user}, "secrets": {"password": plant("actionsftppw")}}),
        json!({"name": "a-presign", "kind": "storage", "config": {"bucket": "canary-bucket", "endpoint": upstream}, "secrets": {"access_key_id": "AKIAPRESIGNEXAMPLE", "secret_access_key": plant("presignsecret")}}),
    ];
    let mut action_ids = vec![];
    for b in action_connections {
        let (_, c) = r
            .call(Method::POST, "/v1/connections", Some(b), None, &[201])
            .await;
        action_ids.push(c["id"].as_str().unwrap().to_owned());
    }
    for (path, body, expect) in [
        (
            "/v1/actions/http",
            json!({"connection": action_ids[0], "method": "POST", "path": "/x", "query": {"q": 1}, "body": {"b": 1}}),
            200,
        ),
        (
            "/v1/actions/http",
            json!({"connection": action_ids[0], "path": "/x", "auth": {"type": "bearer", "secret_ref": "shared"}}),
            200,
        ),
        (
            "/v1/actions/sql",
            json!({"connection": action_ids[1], "query": "SELECT ?", "params": [1]}),
            502,
        ),
        (
            "/v1/actions/email",
            json!({"connection": action_ids[2], "to": "b@example.com", "subject": "s", "text": "t"}),
            502,
        ),
        (
            "/v1/actions/webhook",
            json!({"connection": action_ids[3], "body": {"k": 1}, "retry": {"attempts": 2, "backoff_ms": 10}}),
            200,
        ),
        (
            "/v1/actions/webhook",
            json!({"connection": action_ids[3], "mode": "fire_and_forget", "body": {"k": 2}, "retry": {"attempts": 1}}),
            202,
        ),
        (
            "/v1/nodes/run",
            json!({"type": "llm", "config": {"provider": "openai", "model": "m", "connectionId": action_ids[0], "prompt": "p"}}),
            502,
        ),
        (
            "/v1/actions/storage",
            json!({"connection": action_ids[4], "op": "put", "key": "k.txt", "body": "b", "metadata": {"m": "v"}}),
            502,
        ),
        (
            "/v1/actions/storage",
            json!({"connection": action_ids[4], "op": "get", "key": "k.txt"}),
            502,
        ),
        (
            "/v1/actions/storage",
            json!({"connection": action_ids[6], "op": "presign", "key": "k.txt", "method": "PUT"}),
            200,
        ),
        (
            "/v1/actions/files",
            json!({"connection": action_ids[5], "op": "put", "path": "k.txt", "body": "b"}),
            502,
        ),
    ] {
        r.call(Method::POST, path, Some(body), None, &[expect])
            .await;
    }
    // MCP: a stdio server whose environment holds a canary and which is asked to print it;
    // a draft's discovery and a saved connection's refresh against the refusing upstream; a
    // tool call that fails; the registry.
    let everything = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.tools/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    let (_, tools) = r
        .call(
            Method::POST,
            "/v1/connections",
            Some(json!({"name": "env-tools", "kind": "mcp",
                "config": {"command": "node", "args": [everything, "stdio"]},
                "secrets": {"TOOL_SECRET": plant("mcpenv")}})),
            None,
            &[201],
        )
        .await;
    assert_eq!(tools["test_status"], "success", "{tools}");
    let tools = tools["id"].as_str().unwrap().to_owned();
    let (_, env) = r
        .call(
            Method::POST,
            "/v1/actions/mcp",
            Some(json!({"connection": tools, "tool": "get-env"})),
            None,
            &[200],
        )
        .await;
    assert!(env.to_string().contains("TOOL_SECRET"), "{env}");
    r.call(
        Method::POST,
        "/v1/nodes/run",
        Some(json!({"type": "mcp_tool", "config": {"connectionId": tools, "tool": "get-env"}})),
        None,
        &[200],
    )
    .await;
    r.call(
        Method::POST,
        &format!("/v1/connections/{tools}/refresh-tools"),
        None,
        None,
        &[200],
    )
    .await;
    let (_, discovered) = r
        .call(
            Method::POST,
            "/v1/mcp/discover",
            Some(
                json!({"server_url": format!("{upstream}/mcp"), "auth": {"type": "bearer"},
                "secrets": {"token": plant("discovertoken")}}),
            ),
            None,
            &[200],
        )
        .await;
    assert_eq!(discovered["error_kind"], "auth", "{discovered}");
    let refusing = ids.last().unwrap().clone();
    r.call(
        Method::POST,
        &format!("/v1/connections/{refusing}/refresh-tools"),
        None,
        None,
        &[200],
    )
    .await;
    r.call(
        Method::POST,
        "/v1/actions/mcp",
        Some(json!({"connection": refusing, "tool": "echo", "arguments": {"m": 1}})),
        None,
        &[502],
    )
    .await;
    r.call(Method::GET, "/v1/mcp/providers", None, None, &[200])
        .await;

    // The queued delivery: read, and (once it has failed for good) replayed.
    let (_, deliveries) = r
        .call(Method::GET, "/v1/deliveries", None, None, &[200])
        .await;
    let delivery = deliveries["items"][0]["id"]
        .as_str()
        .expect("the fire-and-forget delivery")
        .to_owned();
    let mut finished = false;
    for _ in 0..200 {
        let (_, d) = r
            .call(
                Method::GET,
                &format!("/v1/deliveries/{delivery}"),
                None,
                None,
                &[200],
            )
            .await;
        if d["status"] == "delivered" || d["status"] == "failed" {
            finished = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(finished, "the one-attempt delivery ended");
    r.call(
        Method::POST,
        &format!("/v1/deliveries/{delivery}/replay"),
        None,
        None,
        &[202],
    )
    .await;

    // Inbound webhooks: an endpoint whose signing secret is a canary, forwarding to a webhook
    // connection whose own secret is one; deliveries accepted, duplicated and refused.
    let hook_secret = plant("inboundsecret");
    let (_, endpoint) = r
        .call(
            Method::POST,
            "/v1/inbound",
            Some(
                json!({"name": "in-github", "scheme": "github", "secret": hook_secret,
                "target": action_ids[3]}),
            ),
            None,
            &[201],
        )
        .await;
    let hook_id = endpoint["id"].as_str().unwrap().to_owned();
    let hook_path = format!("/v1/hooks/{hook_id}");
    let payload = r#"{"action":"opened","number":7}"#;
    let signed = vec![
        (
            "x-hub-signature-256",
            github_signature(&hook_secret, payload),
        ),
        ("x-github-delivery", "canary-delivery-1".to_owned()),
        ("content-type", "application/json".to_owned()),
    ];
    let accepted = r.deliver(&hook_path, &signed, payload, &[200]).await;
    let event = accepted["event"].as_str().unwrap().to_owned();
    r.deliver(&hook_path, &signed, payload, &[200]).await;
    r.deliver(&hook_path, &signed, "{\"action\":\"closed\"}", &[401])
        .await;
    r.deliver(&hook_path, &[], payload, &[401]).await;
    let (_, generated) = r
        .call(
            Method::POST,
            "/v1/inbound",
            Some(json!({"name": "in-held", "scheme": "standard_webhooks"})),
            None,
            &[201],
        )
        .await;
    let held = generated["id"].as_str().unwrap().to_owned();
    r.call(Method::GET, "/v1/inbound", None, None, &[200]).await;
    r.call(
        Method::GET,
        &format!("/v1/inbound/{hook_id}"),
        None,
        None,
        &[200],
    )
    .await;
    r.call(
        Method::GET,
        &format!("/v1/inbound/{hook_id}/events"),
        None,
        None,
        &[200],
    )
    .await;
    r.call(
        Method::GET,
        &format!("/v1/inbound/{hook_id}/events/{event}"),
        None,
        None,
        &[200],
    )
    .await;
    r.call(
        Method::GET,
        &format!("/v1/hooks/{hook_id}/events?limit=5"),
        None,
        None,
        &[200],
    )
    .await;
    r.call(
        Method::POST,
        &format!("/v1/inbound/{hook_id}/events/{event}/replay"),
        None,
        None,
        &[202],
    )
    .await;
    r.call(
        Method::PATCH,
        &format!("/v1/inbound/{hook_id}"),
        Some(json!({"secret": plant("inboundsecretrotated"), "tolerance_s": 60})),
        None,
        &[200],
    )
    .await;
    r.call(
        Method::DELETE,
        &format!("/v1/inbound/{held}"),
        None,
        None,
        &[204],
    )
    .await;

    // Failure paths that carry canaries in places where they do not belong.
    for body in [
        json!({"name": "leak", "kind": "http", "config": {"base_url": "https://a.example", "password": plant("inconfig")}}),
        json!({"name": "leak", "kind": "http", "config": {"base_url": "https://a.example", "headers": {"X-A": format!("{}\r\n", plant("inheader"))}}}),
        json!({"name": "leak", "kind": "http", "config": {"base_url": format!("https://user:{}@a.example", plant("inurl"))}}),
        json!({"name": "leak", "kind": "webhook", "auth": {"type": "hmac"}, "config": {"url": "https://h.example"}, "secrets": {"secret": plant("x")[..10].to_owned()}}),
        json!({"name": "leak", "kind": "http", "auth": {"type": "bearer"}, "config": {"base_url": "https://a.example"}, "secrets": {"token": plant("wrongtype"), "password": plant("unknownfield")}}),
        json!({"name": "leak", "kind": "http", "provider": "openai", "auth": {"type": "api_key"}, "secrets": {"api_key": plant("badformat")}}),
    ] {
        r.call(Method::POST, "/v1/connections", Some(body), None, &[422])
            .await;
    }
    let bogus = format!("pb_{}", &plant("badtoken")[..]);
    r.call(Method::GET, "/v1/me", None, Some(&bogus), &[401])
        .await;
    let provider = plant("inquery");
    r.call(
        Method::GET,
        &format!("/v1/connections?provider={provider}"),
        None,
        None,
        &[200],
    )
    .await;

    // Every other operation, with its reads and writes.
    let (_, project) = r
        .call(
            Method::POST,
            "/v1/projects",
            Some(json!({"name": "p2", "description": "payments"})),
            None,
            &[201],
        )
        .await;
    let project = project["id"].as_str().unwrap().to_owned();
    let (_, executor) = r
        .call(
            Method::POST,
            "/v1/tokens",
            Some(json!({"name": "exec", "role": "executor"})),
            None,
            &[201],
        )
        .await;
    let executor_id = executor["id"].as_str().unwrap().to_owned();
    let executor_value = executor["value"].as_str().unwrap().to_owned();
    let (_, app) = r
        .call(
            Method::POST,
            "/v1/oauth/apps",
            Some(json!({"name": "slack-app", "provider": "slack", "client_id": "1234.5678", "client_secret": plant("appsecret")})),
            None,
            &[201],
        )
        .await;
    let app = app["id"].as_str().unwrap().to_owned();
    let id = ids[0].clone();
    for (m, p, b, expect) in [
        (Method::GET, "/v1/me".to_owned(), None, 200),
        (Method::GET, "/v1/orgs".to_owned(), None, 200),
        (
            Method::POST,
            "/v1/orgs".to_owned(),
            Some(json!({"name": "second"})),
            201,
        ),
        (Method::GET, "/v1/projects".to_owned(), None, 200),
        (Method::GET, format!("/v1/projects/{project}"), None, 200),
        (
            Method::PATCH,
            format!("/v1/projects/{project}"),
            Some(json!({"description": "payments and refunds"})),
            200,
        ),
        (Method::GET, "/v1/tokens".to_owned(), None, 200),
        (Method::GET, "/v1/oauth/apps".to_owned(), None, 200),
        (
            Method::PATCH,
            format!("/v1/oauth/apps/{app}"),
            Some(json!({"client_secret": plant("appsecret2")})),
            200,
        ),
        (Method::GET, "/v1/providers".to_owned(), None, 200),
        (Method::GET, "/v1/providers/openai".to_owned(), None, 200),
        (Method::GET, "/v1/providers/no-such".to_owned(), None, 404),
        (Method::GET, "/v1/secrets".to_owned(), None, 200),
        (Method::GET, "/v1/connections".to_owned(), None, 200),
        (Method::GET, format!("/v1/connections/{id}"), None, 200),
        (
            Method::PATCH,
            format!("/v1/connections/{id}"),
            Some(json!({"secrets": {"token": plant("patched")}, "config": {"timeout_ms": 1000}})),
            200,
        ),
        (
            Method::PATCH,
            format!("/v1/connections/{}", ids[1]),
            Some(json!({"config": {"retries": 3}})),
            200,
        ),
        (
            Method::GET,
            format!("/v1/connections/{id}/credentials"),
            None,
            200,
        ),
        (
            Method::GET,
            format!("/v1/connections/{}/credentials", ids[7]),
            None,
            200,
        ),
        (Method::GET, "/v1/audit?limit=200".to_owned(), None, 200),
        (Method::GET, "/v1/audit/verify".to_owned(), None, 200),
        (Method::GET, "/v1/keys".to_owned(), None, 200),
        (Method::POST, "/v1/keys/rotate".to_owned(), None, 202),
        (Method::GET, "/healthz".to_owned(), None, 200),
        (Method::GET, "/readyz".to_owned(), None, 200),
        (Method::GET, "/metrics".to_owned(), None, 200),
        (
            Method::GET,
            "/v1/oauth/client-metadata.json".to_owned(),
            None,
            200,
        ),
        (
            Method::DELETE,
            format!("/v1/connections/{}", ids[2]),
            None,
            204,
        ),
        (Method::DELETE, "/v1/secrets/other".to_owned(), None, 204),
        (Method::DELETE, format!("/v1/oauth/apps/{app}"), None, 204),
        (Method::DELETE, format!("/v1/projects/{project}"), None, 204),
    ] {
        r.call(m, &p, b, None, &[expect]).await;
    }
    // An executor reads credentials but manages nothing; once revoked it is refused.
    r.call(
        Method::GET,
        &format!("/v1/connections/{id}/credentials"),
        None,
        Some(&executor_value),
        &[200],
    )
    .await;
    r.call(
        Method::GET,
        "/v1/tokens",
        None,
        Some(&executor_value),
        &[403],
    )
    .await;
    r.call(
        Method::DELETE,
        &format!("/v1/tokens/{executor_id}"),
        None,
        None,
        &[204],
    )
    .await;
    r.call(Method::GET, "/v1/me", None, Some(&executor_value), &[401])
        .await;
    // Let the rotation finish, then read everything once more on the new key.
    let mut rotated = false;
    for _ in 0..100 {
        let (_, k) = r.call(Method::GET, "/v1/keys", None, None, &[200]).await;
        if k["rotation"]["finished"] == true {
            rotated = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(rotated, "the key rotation finished");
    for (i, id) in ids.iter().enumerate() {
        // The third was deleted above.
        let expect = if i == 2 { 404 } else { 200 };
        r.call(
            Method::GET,
            &format!("/v1/connections/{id}/credentials"),
            None,
            None,
            &[expect],
        )
        .await;
    }
    let (_, audit) = r
        .call(Method::GET, "/v1/audit?limit=200", None, None, &[200])
        .await;
    assert!(
        audit["items"].as_array().unwrap().len() > 20,
        "the audit log recorded the session"
    );

    // Every connection of one provider deleted at once (the action connection to "openai"),
    // and the refusal to delete them all.
    let (_, bulk) = r
        .call(
            Method::DELETE,
            "/v1/connections?provider=openai",
            None,
            None,
            &[200],
        )
        .await;
    assert_eq!(bulk["deleted"].as_array().map(Vec::len), Some(1), "{bulk}");
    r.call(Method::DELETE, "/v1/connections", None, None, &[422])
        .await;

    // The linked OAuth connection unlinked (its tokens revoked and destroyed), and a refusal
    // for a connection that has no OAuth account.
    r.call(
        Method::POST,
        &format!("/v1/connections/{oauth_id}/oauth/disconnect"),
        None,
        None,
        &[204],
    )
    .await;
    r.call(
        Method::POST,
        &format!("/v1/connections/{}/oauth/disconnect", ids[0]),
        None,
        None,
        &[409],
    )
    .await;

    // The web UI, walked as a browser: log in, every page of every connection, a saved
    // connection's test, a draft's test and an edit through forms. Pages, redirects and their
    // headers join what is checked.
    let login = r
        .http
        .post(format!("{}/login", r.url))
        .header("origin", &r.url)
        .form(&[("token", r.token.as_str()), ("next", "/connections")])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status().as_u16(), 303);
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    r.seen.push_str(&format!("{:?}", login.headers()));
    let (_, all) = r
        .call(Method::GET, "/v1/connections?limit=200", None, None, &[200])
        .await;
    let all: Vec<String> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    let mut pages: Vec<String> = [
        "/",
        "/connections",
        "/connections?status=Failed",
        "/connections/new",
        "/connections/new?kind=http",
        "/connections/new?kind=http&provider=github",
        "/connections/new?kind=database&provider=postgresql",
        "/connections/new?kind=mcp&provider=custom",
    ]
    .iter()
    .map(|p| (*p).to_owned())
    .collect();
    for id in &all {
        for suffix in ["", "/edit", "/delete"] {
            pages.push(format!("/connections/{id}{suffix}"));
        }
    }
    let (browser, base) = (r.http.clone(), r.url.clone());
    let ui = |path: &str| {
        browser
            .get(format!("{base}{path}"))
            .header("cookie", &cookie)
            .header("accept", "text/html")
    };
    let mut walked = String::new();
    for path in &pages {
        let page = ui(path).send().await.unwrap();
        let status = page.status().as_u16();
        assert!(status == 200 || status == 303, "{path}: {status}");
        walked.push_str(&format!("{:?}", page.headers()));
        walked.push_str(&page.text().await.unwrap());
    }
    let csrf = {
        let at = walked.find("name=\"_csrf\" value=\"").unwrap() + 20;
        walked[at..at + walked[at..].find('"').unwrap()].to_owned()
    };
    let form = |path: &str, fields: &[(&str, &str)]| {
        let mut all = vec![("_csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        browser
            .post(format!("{base}{path}"))
            .header("cookie", &cookie)
            .header("origin", &base)
            .form(&all)
            .send()
    };
    let draft_secret = plant("uidraft");
    let edit_secret = plant("uiedit");
    fn edit<'a>(upstream: &'a str, key: &'a str) -> Vec<(&'static str, &'a str)> {
        vec![
            ("name", "p-query"),
            ("config.base_url", upstream),
            ("auth.type", "api_key"),
            ("auth.api_key.in", "query"),
            ("auth.api_key.name", "key"),
            ("secrets.api_key.api_key", key),
        ]
    }
    for (path, fields) in [
        (
            format!("/connections/{}/test", proxy_ids[1]),
            vec![("back", "detail")],
        ),
        (
            format!("/connections/{}/test", proxy_ids[1]),
            vec![("back", "list")],
        ),
        (
            "/connections/new/test".to_owned(),
            vec![
                ("kind", "http"),
                ("provider", "custom"),
                ("name", "draft"),
                ("config.base_url", upstream.as_str()),
                ("auth.type", "bearer"),
                ("secrets.bearer.token", draft_secret.as_str()),
            ],
        ),
        // An edit with a new key, then one that leaves it empty (kept).
        (
            format!("/connections/{}/edit", proxy_ids[2]),
            edit(&upstream, &edit_secret),
        ),
        (
            format!("/connections/{}/edit", proxy_ids[2]),
            edit(&upstream, ""),
        ),
    ] {
        let answer = form(&path, &fields).await.unwrap();
        let status = answer.status().as_u16();
        walked.push_str(&format!("{:?}", answer.headers()));
        let text = answer.text().await.unwrap();
        assert!(status == 200 || status == 303, "{path}: {status} {text}");
        walked.push_str(&text);
    }
    // Forms refused: without the session's token, with another session's, from another site.
    let second = browser
        .post(format!("{base}/login"))
        .header("origin", &base)
        .form(&[("token", r.token.as_str())])
        .send()
        .await
        .unwrap();
    let second_cookie = second.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let theirs = {
        let page = browser
            .get(format!("{base}/connections"))
            .header("cookie", &second_cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let at = page.find("name=\"_csrf\" value=\"").unwrap() + 20;
        page[at..at + page[at..].find('"').unwrap()].to_owned()
    };
    assert_ne!(theirs, csrf);
    let delete_path = format!("{base}/connections/{}/delete", ids[0]);
    for (why, token, origin, site) in [
        ("no token", "", base.as_str(), "same-origin"),
        (
            "another session's token",
            theirs.as_str(),
            base.as_str(),
            "same-origin",
        ),
        (
            "a cross-site post",
            csrf.as_str(),
            base.as_str(),
            "cross-site",
        ),
        (
            "another origin",
            csrf.as_str(),
            "https://evil.example",
            "cross-site",
        ),
    ] {
        let refused = browser
            .post(&delete_path)
            .header("cookie", &cookie)
            .header("origin", origin)
            .header("sec-fetch-site", site)
            .form(&[("_csrf", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status().as_u16(), 403, "{why}");
        walked.push_str(&refused.text().await.unwrap());
    }
    // Untrusted text comes out as text.
    let markup_secret = plant("markup");
    let (_, marked) = r
        .call(
            Method::POST,
            "/v1/connections",
            Some(
                json!({"name": "markup", "kind": "database", "config": {"driver": "mysql",
                "host": "127.0.0.1", "database": "<script>alert(1)</script>",
                "username": "<img src=x onerror=alert(1)>"},
                "secrets": {"password": markup_secret}}),
            ),
            None,
            &[201],
        )
        .await;
    let (kept, _) = r
        .call(
            Method::GET,
            &format!("/v1/connections/{}", ids[0]),
            None,
            None,
            &[200],
        )
        .await;
    assert_eq!(kept, 200, "no refused form deleted anything");
    let markup_page = ui(&format!("/connections/{}", marked["id"].as_str().unwrap()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !markup_page.contains("<script>alert(1)</script>") && !markup_page.contains("<img src=x"),
        "stored text is never markup"
    );
    assert!(markup_page.contains("&#60;script&#62;alert(1)"));
    walked.push_str(&markup_page);
    // After log-out the session is refused (its expiry is shown by the server's ui tests).
    let out = form("/logout", &[]).await.unwrap();
    assert_eq!(out.status().as_u16(), 303);
    let after = ui("/connections").send().await.unwrap();
    assert_eq!(after.status().as_u16(), 303, "the ended session is refused");
    assert!(
        after.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/login")
    );
    // A session left unused past its idle time is refused too.
    tokio::time::sleep(std::time::Duration::from_millis(5500)).await;
    let idle = browser
        .get(format!("{base}/connections"))
        .header("cookie", &second_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(idle.status().as_u16(), 303, "the idle session is refused");
    assert!(
        walked.contains("✗ Authentication failed"),
        "a failed test is shown"
    );
    assert!(walked.contains("Saved <span aria-hidden=\"true\">••••</span>"));
    r.seen.push_str(&walked);

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

    // The walk covered the whole document.
    let missing: Vec<String> = r
        .operations
        .keys()
        .filter(|op| !r.exercised.contains_key(*op))
        .filter(|(m, p)| !EXEMPT.iter().any(|(em, ep, _)| em == m && ep == p))
        .map(|(m, p)| format!("{m} {p}"))
        .collect();
    assert!(
        missing.is_empty(),
        "operations neither exercised nor exempted (call them above, or add them to EXEMPT with a reason): {missing:?}"
    );

    server.stop();
    let logs = server.logs();
    assert!(logs.lines().count() > 50, "trace logging produced output");
    assert!(logs.contains("/v1/connections"), "requests are logged");
    let stdout = server.printed();
    assert!(stdout.contains("Patchbay listening on"), "{stdout}");
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
