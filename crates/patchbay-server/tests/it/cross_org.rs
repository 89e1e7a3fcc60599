//! The cross-organization matrix, generated from the OpenAPI document: every operation is
//! called by another organization's admin and executor with this organization's objects — in
//! the path, or in the body for actions and nodes — and must answer 404 (or 403 for the
//! operator's routes) without touching or revealing them. An operation the document gains is
//! covered or the test fails until it is exempted here with a reason.

use std::collections::BTreeMap;

use patchbay_domain::Role;
use patchbay_domain::api::{CreateConnection, CreateOAuthApp, CreateProject, PutSecret};
use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, allow_loopback};

/// Operations with no object of an organization to reach, and why.
const EXEMPT: &[(&str, &str, &str)] = &[
    ("get", "/healthz", "public, organization-free"),
    ("get", "/readyz", "public, organization-free"),
    (
        "get",
        "/metrics",
        "process-wide counters, no organization's objects",
    ),
    ("get", "/v1/me", "describes the caller only"),
    (
        "get",
        "/v1/providers",
        "the catalog is shared by every organization",
    ),
    (
        "get",
        "/v1/providers/{key}",
        "the catalog is shared by every organization",
    ),
    (
        "post",
        "/v1/hooks/{endpoint}",
        "public: the provider's signature is its credential (refusals tested in inbound)",
    ),
    (
        "get",
        "/v1/oauth/callback",
        "public; the state it carries is tested in oauth_flow",
    ),
    (
        "post",
        "/v1/connections/test",
        "tests a draft: no stored object to reach",
    ),
    (
        "post",
        "/v1/mcp/discover",
        "discovers a draft: no stored object to reach",
    ),
    (
        "get",
        "/v1/mcp/providers",
        "the registry is shared by every organization",
    ),
    (
        "post",
        "/v1/keys/rotate",
        "operator only: answered 403 (asserted below)",
    ),
];

/// One object of each kind in an organization, by the path parameter it fills.
struct Objects {
    connection: String,
    database: String,
    mail: String,
    hook: String,
    tools: String,
    bucket: String,
    files: String,
    inbound: String,
    event: String,
    project: String,
    token: String,
    app: String,
    delivery: String,
}

/// Creates one object of each kind in `a`.
async fn objects(a: &patchbay_client::Client) -> Objects {
    let create = |v: Value| async move {
        a.create_connection(&serde_json::from_value::<CreateConnection>(v).unwrap())
            .await
            .unwrap()
            .id
            .to_string()
    };
    let connection = create(json!({"name": "alpha-api", "kind": "http", "auth": {"type": "bearer"},
        "config": {"base_url": "http://127.0.0.1:9/api"}, "secrets": {"token": "alpha-token-canary"}}))
    .await;
    let database = create(json!({"name": "alpha-db", "kind": "database", "config": {"driver": "postgresql",
        "host": "127.0.0.1", "database": "test", "username": "postgres"}, "secrets": {"password": ""}}))
    .await;
    let mail = create(
        json!({"name": "alpha-mail", "kind": "smtp", "config": {"host": "127.0.0.1",
        "port": 9, "encryption": "none", "from_address": "alpha@example.com"}}),
    )
    .await;
    let hook = create(json!({"name": "alpha-hook", "kind": "webhook", "auth": {"type": "hmac"},
        "config": {"url": "http://127.0.0.1:9/hook"}, "secrets": {"secret": "alpha-webhook-secret-canary"}}))
    .await;
    let project = a
        .create_project(&CreateProject {
            name: "alpha-payments".into(),
            description: None,
        })
        .await
        .unwrap()
        .id
        .to_string();
    a.put_secret(
        "alpha_key",
        &PutSecret {
            value: "alpha-secret-value".into(),
            description: None,
            projects: None,
        },
    )
    .await
    .unwrap();
    let token = a
        .create_token(&patchbay_domain::api::CreateToken {
            name: "alpha-ci".into(),
            role: Role::Executor,
            project: None,
        })
        .await
        .unwrap()
        .token
        .id
        .to_string();
    let oauth_app = a
        .create_app(&CreateOAuthApp {
            name: "alpha-slack".into(),
            provider: "slack".into(),
            client_id: "1234.5678".into(),
            client_secret: Some("alpha-app-secret-canary".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .id
        .to_string();
    // A delivery to a closed port: queued, and retried later.
    a.webhook_action(
        &serde_json::from_value(
            json!({"connection": hook, "body": {"n": 1}, "mode": "fire_and_forget"}),
        )
        .unwrap(),
    )
    .await
    .unwrap();
    let delivery = a
        .list_deliveries("")
        .await
        .unwrap()
        .items
        .first()
        .expect("the queued delivery")
        .id
        .to_string();
    let bucket = create(json!({"name": "alpha-bucket", "kind": "storage",
        "config": {"bucket": "alpha-files", "endpoint": "http://127.0.0.1:9", "prefix": "alpha/"},
        "secrets": {"access_key_id": "AKIAALPHA", "secret_access_key": "alpha-s3-secret-canary"}}))
    .await;
    let files = create(json!({"name": "alpha-files", "kind": "file_transfer",
        "config": {"protocol": "sftp", "host": "127.0.0.1", "port": 9, "username": "alpha"},
        "secrets": {"password": "alpha-sftp-password-canary"}}))
    .await;
    // An inbound endpoint holding one event.
    let endpoint = a
        .create_inbound(
            &serde_json::from_value(json!({"name": "alpha-hook", "scheme": "github",
                "secret": "alpha-inbound-secret"}))
            .unwrap(),
        )
        .await
        .unwrap()
        .endpoint;
    let headers = crate::inbound::sign(&[json!({"scheme": "github",
        "secret": "alpha-inbound-secret", "body": "{\"alpha\":1}", "id": "d-1"})]);
    let (_, got) = crate::inbound::deliver(&endpoint.url, &headers[0], "{\"alpha\":1}").await;
    let event = got["event"].as_str().expect("an event").to_owned();
    // An MCP server that is not there: created all the same (its discovery failed).
    let tools = create(json!({"name": "alpha-tools", "kind": "mcp",
        "config": {"server_url": "http://127.0.0.1:9/mcp"}}))
    .await;
    Objects {
        connection,
        database,
        mail,
        hook,
        tools,
        bucket,
        files,
        inbound: endpoint.id.to_string(),
        event,
        project,
        token,
        app: oauth_app,
        delivery,
    }
}

/// The path with `o`'s ids in its parameters, and a body naming them where the operation takes
/// one; `None` for an operation this matrix does not know.
fn request(method: &str, path: &str, o: &Objects) -> Option<(String, Option<Value>)> {
    let filled = path
        .replace(
            "/v1/connections/{id}",
            &format!("/v1/connections/{}", o.connection),
        )
        .replace("/v1/projects/{id}", &format!("/v1/projects/{}", o.project))
        .replace("/v1/tokens/{id}", &format!("/v1/tokens/{}", o.token))
        .replace("/v1/oauth/apps/{id}", &format!("/v1/oauth/apps/{}", o.app))
        .replace(
            "/v1/deliveries/{id}",
            &format!("/v1/deliveries/{}", o.delivery),
        )
        .replace("/v1/secrets/{name}", "/v1/secrets/alpha_key")
        .replace("/v1/inbound/{id}", &format!("/v1/inbound/{}", o.inbound))
        .replace("{endpoint}", &o.inbound)
        .replace("{event}", &o.event);
    if filled.contains('{') {
        return None;
    }
    let filled = if path == "/v1/oauth/start" {
        format!("{filled}?connection={}", o.connection)
    } else if (method, path) == ("delete", "/v1/connections") {
        // Every connection of the provider A's connections have: none of them is B's.
        format!("{filled}?provider=custom")
    } else {
        filled
    };
    let body = match (method, path) {
        ("post", "/v1/actions/http") => Some(json!({"connection": o.connection, "path": "/"})),
        ("post", "/v1/actions/sql") => Some(json!({"connection": o.database, "query": "SELECT 1"})),
        ("post", "/v1/actions/email") => {
            Some(json!({"connection": o.mail, "to": "x@example.com", "subject": "s", "text": "t"}))
        }
        ("post", "/v1/actions/webhook") => Some(json!({"connection": o.hook, "body": {}})),
        ("post", "/v1/actions/mcp") => Some(json!({"connection": o.tools, "tool": "echo"})),
        ("post", "/v1/actions/storage") => {
            Some(json!({"connection": o.bucket, "op": "presign", "key": "x"}))
        }
        ("post", "/v1/actions/files") => Some(json!({"connection": o.files, "op": "list"})),
        ("post", "/v1/nodes/run") => {
            Some(json!({"type": "http", "config": {"connectionId": o.connection, "path": "/"}}))
        }
        ("post", "/v1/orgs") => Some(json!({"name": "charlie"})),
        ("patch", _) => Some(json!({"name": "hijacked"})),
        ("put", "/v1/secrets/{name}") => Some(json!({"value": "hijacked-value"})),
        ("post", "/v1/connections/{id}/oauth/start") => Some(json!({})),
        _ => None,
    };
    Some((filled, body))
}

/// What another organization's call must answer.
fn expected(method: &str, path: &str) -> u16 {
    match (method, path) {
        // The operator's routes.
        ("get" | "post", "/v1/orgs") | ("get", "/v1/keys") => 403,
        // Lists and creations of one's own: answered, and checked for A's objects below.
        ("get", "/v1/oauth/start") => 404,
        ("get", p) if !p.contains('{') => 200,
        // A bulk delete by provider reaches only the caller's own organization's connections.
        ("delete", "/v1/connections") => 200,
        (
            "post",
            "/v1/projects" | "/v1/connections" | "/v1/tokens" | "/v1/secrets" | "/v1/inbound",
        )
        | ("post", "/v1/oauth/apps") => 0,
        // An upsert by name in the caller's own organization (A's secret of that name is
        // checked untouched below).
        ("put", "/v1/secrets/{name}") => 0,
        _ => 404,
    }
}

async fn another_organization_reaches_nothing_by_any_operation(backend: Backend) {
    let app = TestApp::spawn_with(backend, Some(allow_loopback())).await;
    let a = app.org("alpha").await;
    let b = app.org("bravo").await;
    let o = objects(&a).await;
    let before = a.get_connection(&o.connection).await.unwrap();
    let secrets_before = serde_json::to_value(a.list_secrets().await.unwrap()).unwrap();
    let doc = app.openapi().await;
    let b_executor = app.token(&b, Role::Executor, None).await;
    let mut covered = 0;
    let mut unknown = vec![];
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            if EXEMPT.iter().any(|(m, p, _)| *m == method && p == path) {
                continue;
            }
            let Some((url, body)) = request(method, path, &o) else {
                unknown.push(format!("{method} {path}"));
                continue;
            };
            let want = expected(method, path);
            if want == 0 {
                // Creating one's own object is not reaching another's.
                continue;
            }
            for client in [&b, &b_executor] {
                let m = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
                let r = client.raw(m, &url, body.as_ref(), &[]).await.unwrap();
                let status = r.status.as_u16();
                let text = r.text();
                // An executor may not list tokens or audit: refused, which is not reaching.
                let allowed = if want == 200 {
                    [200, 403]
                } else {
                    [want, want]
                };
                assert!(
                    allowed.contains(&status),
                    "{method} {path} answered {status} for another organization: {text}"
                );
                assert!(
                    !text.contains("alpha"),
                    "{method} {path} revealed the other organization's objects: {text}"
                );
            }
            covered += 1;
        }
    }
    assert!(
        unknown.is_empty(),
        "operations neither exercised nor exempted (add them to the matrix or to EXEMPT with a reason): {unknown:?}"
    );
    assert!(covered >= 30, "{covered} operations exercised");
    // The operator-only rotation is refused to an organization's admin.
    let r = b
        .raw(Method::POST, "/v1/keys/rotate", None, &[])
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 403, "{}", r.text());

    // A's objects are untouched.
    let after = a.get_connection(&o.connection).await.unwrap();
    assert_eq!(after.version, before.version);
    assert_eq!(after.name, before.name);
    assert!(a.get_delivery(&o.delivery).await.is_ok());
    assert_eq!(
        serde_json::to_value(a.list_secrets().await.unwrap()).unwrap(),
        secrets_before
    );
    assert!(
        a.list_tokens()
            .await
            .unwrap()
            .iter()
            .any(|t| t.id.to_string() == o.token)
    );
    let apps: BTreeMap<String, String> = a
        .list_apps()
        .await
        .unwrap()
        .into_iter()
        .map(|x| (x.id.to_string(), x.name))
        .collect();
    assert_eq!(apps.get(&o.app).map(String::as_str), Some("alpha-slack"));
}

both_backends!(another_organization_reaches_nothing_by_any_operation);
