//! MCP connections through the API: discovery on create (kept as `mcp`), before saving and on
//! refresh; tool calls as actions and `mcp_tool` nodes through pooled upstream sessions; the
//! registry of known servers.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, Tweak, error_fields};
use crate::peers;

/// Loopback open, no test rate limit, 15 s tests, and `commands` allowed.
pub(crate) fn tweak(commands: Vec<String>) -> Tweak {
    Arc::new(move |s| {
        s.egress.allow_net = vec!["127.0.0.0/8".parse().unwrap()];
        s.limits.test_rate_per_minute = 0;
        s.egress.test_timeout = Duration::from_secs(15);
        s.egress.allow_commands = commands.clone();
    })
}

pub(crate) async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let r = app
        .admin
        .raw(method, path, body.as_ref(), &[])
        .await
        .unwrap();
    (r.status.as_u16(), r.json())
}

async fn create(app: &TestApp, body: Value) -> Value {
    let (status, c) = call(app, Method::POST, "/v1/connections", Some(body)).await;
    assert_eq!(status, 201, "{c}");
    c
}

pub(crate) async fn tool(
    app: &TestApp,
    connection: &str,
    tool: &str,
    arguments: Value,
) -> (u16, Value) {
    call(
        app,
        Method::POST,
        "/v1/actions/mcp",
        Some(json!({"connection": connection, "tool": tool, "arguments": arguments})),
    )
    .await
}

fn texts(result: &Value) -> String {
    result["content"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter_map(|b| b["text"].as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

async fn discovery_on_create_and_tool_calls(backend: Backend) {
    let server = peers::mcp_everything();
    let app = TestApp::spawn_with(backend, Some(tweak(vec![]))).await;
    let c = create(
        &app,
        json!({"name": "everything", "kind": "mcp",
            "config": {"server_url": format!("http://127.0.0.1:{}/mcp", server.port)}}),
    )
    .await;
    let mcp = &c["mcp"];
    assert!(
        mcp["server_info"]["name"]
            .as_str()
            .unwrap()
            .contains("everything"),
        "{c}"
    );
    assert!(mcp["protocol_version"].as_str().unwrap().starts_with("20"));
    assert!(mcp["tools_refreshed_at"].is_string());
    let tools = mcp["tools"].as_array().unwrap();
    assert!(tools.iter().any(|t| t["name"] == "echo"), "{mcp}");
    assert_eq!(c["test_status"], "success", "{c}");
    let id = c["id"].as_str().unwrap();

    let (status, r) = tool(&app, id, "echo", json!({"message": "hi"})).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(texts(&r), "Echo: hi");
    assert_eq!(r["isError"], false);
    let (status, r) = tool(&app, id, "get-sum", json!({"a": 1, "b": "x"})).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["isError"], true, "an error result passes through: {r}");

    // A call past its deadline answers 504, and the session serves the next call.
    let (status, r) = call(
        &app,
        Method::POST,
        "/v1/actions/mcp",
        Some(
            json!({"connection": id, "tool": "trigger-long-running-operation",
            "arguments": {"duration": 10, "steps": 2}, "timeout_ms": 500}),
        ),
    )
    .await;
    assert_eq!(status, 504, "{r}");
    let (status, r) = tool(&app, id, "echo", json!({"message": "again"})).await;
    assert_eq!(status, 200, "{r}");

    // The seed's node shape, its parameters filled from the context.
    let (status, r) = call(
        &app,
        Method::POST,
        "/v1/nodes/run",
        Some(json!({"type": "mcp_tool", "label": "Echo",
            "config": {"connectionId": id, "tool": "echo",
                "parameters": {"message": "hello ${who}"}, "outputVariable": "said"},
            "context": {"who": "world"}})),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(texts(&r["outputs"]["said"]), "Echo: hello world", "{r}");

    // Refresh lists the tools again.
    let (status, r) = call(
        &app,
        Method::POST,
        &format!("/v1/connections/{id}/refresh-tools"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["success"], true);
    assert!(r["tools_count"].as_u64().unwrap() >= 5, "{r}");

    // Counted by outcome in /metrics.
    let metrics = app
        .admin
        .raw(Method::GET, "/metrics", None, &[])
        .await
        .unwrap()
        .text();
    for outcome in ["success", "tool_error", "failure"] {
        let line = format!("patchbay_mcp_tool_calls_total{{outcome=\"{outcome}\"}}");
        assert!(metrics.contains(&line), "{line} in:\n{metrics}");
    }

    // Every call is audited with its tool and outcome, never its arguments.
    let (_, audit) = call(&app, Method::GET, "/v1/audit?action=action.mcp", None).await;
    let entries = audit["items"].as_array().unwrap();
    assert!(entries.len() >= 4, "{audit}");
    assert!(!audit.to_string().contains("hello world"));
    assert!(entries.iter().any(|e| e["details"]["tool"] == "echo"));
}

async fn upstream_sessions_are_reused_and_renewed_on_change(backend: Backend) {
    let server = peers::mcp_misbehaving("paged");
    let app = TestApp::spawn_with(backend, Some(tweak(vec![]))).await;
    let stats = || async {
        reqwest::get(format!("http://127.0.0.1:{}/stats", server.port))
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    let c = create(
        &app,
        json!({"name": "paged", "kind": "mcp",
            "config": {"server_url": format!("http://127.0.0.1:{}/", server.port)}}),
    )
    .await;
    assert_eq!(c["mcp"]["tools"].as_array().unwrap().len(), 7, "{c}");
    let id = c["id"].as_str().unwrap();
    let after_discovery = stats().await["initialize"].as_u64().unwrap();
    for _ in 0..5 {
        let (status, r) = tool(&app, id, "tool1", json!({})).await;
        assert_eq!(status, 200, "{r}");
    }
    let s = stats().await;
    assert_eq!(
        s["initialize"].as_u64().unwrap(),
        after_discovery + 1,
        "five calls, one session: {s}"
    );
    assert_eq!(s["tools/call"], 5);

    // A change of the connection ends its session; the next call starts another.
    let (status, r) = call(
        &app,
        Method::PATCH,
        &format!("/v1/connections/{id}"),
        Some(json!({"config": {"timeout_ms": 20000}})),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    let (status, _) = tool(&app, id, "tool1", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(
        stats().await["initialize"].as_u64().unwrap(),
        after_discovery + 2
    );
}

async fn discovery_before_saving(backend: Backend) {
    let server = peers::mcp_python(&["--era", "modern"]);
    let app = TestApp::spawn_with(backend, Some(tweak(vec![]))).await;
    let (status, r) = call(
        &app,
        Method::POST,
        "/v1/mcp/discover",
        Some(
            json!({"server_url": format!("http://127.0.0.1:{}/mcp", server.port),
            "transport": "streamable_http", "auth": {"type": "none"}}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["success"], true, "{r}");
    assert_eq!(r["protocol_version"], "2026-07-28");
    assert_eq!(r["server_info"]["name"], "patchbay-test-python");
    assert!(
        r["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "add")
    );

    // A failure answers like a connection test.
    let (status, r) = call(
        &app,
        Method::POST,
        "/v1/mcp/discover",
        Some(json!({"server_url": format!("http://127.0.0.1:{}/mcp", peers::free_port())})),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["success"], false);
    assert_eq!(r["error_kind"], "refused", "{r}");
    assert_eq!(r["tools"], json!([]));

    // Bad input names its field.
    let (status, r) = call(
        &app,
        Method::POST,
        "/v1/mcp/discover",
        Some(json!({"transport": "streamable_http"})),
    )
    .await;
    assert_eq!(status, 422, "{r}");
    assert_eq!(error_fields(&r), ["server_url"]);
    // Nothing was saved.
    let (_, list) = call(&app, Method::GET, "/v1/connections", None).await;
    assert_eq!(list["items"], json!([]));
}

async fn a_bearer_server_fails_auth_without_its_token(backend: Backend) {
    let server = peers::mcp_python(&["--bearer", "tool-token-123"]);
    let app = TestApp::spawn_with(backend, Some(tweak(vec![]))).await;
    let url = format!("http://127.0.0.1:{}/mcp", server.port);
    let c = create(
        &app,
        json!({"name": "no-token", "kind": "mcp", "config": {"server_url": url}}),
    )
    .await;
    assert_eq!(c["test_status"], "failed", "{c}");
    assert!(c["mcp"].is_null(), "{c}");
    let (_, r) = call(
        &app,
        Method::POST,
        &format!("/v1/connections/{}/test", c["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(r["error_kind"], "auth", "{r}");
    let c = create(
        &app,
        json!({"name": "token", "kind": "mcp", "config": {"server_url": url},
            "auth": {"type": "bearer"}, "secrets": {"token": "tool-token-123"}}),
    )
    .await;
    assert_eq!(c["test_status"], "success", "{c}");
    let (status, r) = tool(
        &app,
        c["id"].as_str().unwrap(),
        "echo",
        json!({"message": "x"}),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    assert!(!r.to_string().contains("tool-token-123"));
}

async fn a_stdio_server_gets_its_secrets_as_environment(backend: Backend) {
    let app = TestApp::spawn_with(backend, Some(tweak(vec!["node".into()]))).await;
    let entry = peers::everything_entry();
    let c = create(
        &app,
        json!({"name": "local", "kind": "mcp",
            "config": {"command": "node", "args": [entry.to_str().unwrap(), "stdio"],
                "env": {"PLAIN_SETTING": "visible-value"}},
            "secrets": {"SECRET_SETTING": "canary-env-secret-42"}}),
    )
    .await;
    assert_eq!(c["test_status"], "success", "{c}");
    assert_eq!(c["secrets"]["SECRET_SETTING"]["set"], true);
    let id = c["id"].as_str().unwrap();
    let (status, r) = tool(&app, id, "get-env", json!({})).await;
    assert_eq!(status, 200, "{r}");
    let text = r.to_string();
    assert!(text.contains("visible-value"), "{r}");
    assert!(text.contains("SECRET_SETTING"), "the variable is set: {r}");
    assert!(
        !text.contains("canary-env-secret-42"),
        "its value is redacted: {r}"
    );
    assert!(
        !text.contains("PATCHBAY_TEST_POSTGRES_URL"),
        "nothing of Patchbay's environment: {r}"
    );
}

async fn what_is_not_mcp_is_refused(backend: Backend) {
    let app = TestApp::spawn_with(backend, Some(tweak(vec![]))).await;
    let http = create(
        &app,
        json!({"name": "api", "kind": "http", "config": {"base_url": "https://api.example.com"}}),
    )
    .await;
    let id = http["id"].as_str().unwrap();
    let (status, r) = call(
        &app,
        Method::POST,
        &format!("/v1/connections/{id}/refresh-tools"),
        None,
    )
    .await;
    assert_eq!(status, 400, "{r}");
    assert_eq!(r["code"], "not_mcp");
    let (status, r) = tool(&app, id, "echo", json!({})).await;
    assert_eq!(status, 422, "{r}");
    assert_eq!(error_fields(&r), ["connection"]);
    let (status, r) = tool(&app, id, "", json!({})).await;
    assert_eq!(status, 422, "{r}");
    assert_eq!(error_fields(&r), ["tool"]);
    // A stdio command the operator did not allow: created, and its discovery says why.
    let c = create(
        &app,
        json!({"name": "local", "kind": "mcp", "config": {"command": "not-allowed-server"}}),
    )
    .await;
    assert_eq!(c["test_status"], "failed");
    assert!(
        c["test_message"]
            .as_str()
            .unwrap()
            .contains("--allow-command"),
        "{c}"
    );
    let (status, _) = tool(&app, c["id"].as_str().unwrap(), "x", json!({})).await;
    assert_eq!(status, 403, "blocked");
}

async fn the_registry_lists_known_servers(backend: Backend) {
    let app = TestApp::spawn_with(backend, Some(tweak(vec![]))).await;
    let (status, r) = call(&app, Method::GET, "/v1/mcp/providers", None).await;
    assert_eq!(status, 200, "{r}");
    let names: Vec<&str> = r
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for wanted in [
        "mcp-everything",
        "mcp-filesystem",
        "mcp-postgres",
        "github-mcp",
    ] {
        assert!(names.contains(&wanted), "{wanted} in {names:?}");
    }
    let github = r
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "github-mcp")
        .unwrap();
    assert_eq!(github["transport"], "streamable_http");
    assert!(github["default_server_url"].is_string());
    let (status, _) = app
        .anonymous()
        .raw(Method::GET, "/v1/mcp/providers", None, &[])
        .await
        .map(|r| (r.status.as_u16(), ()))
        .unwrap();
    assert_eq!(status, 401);
}

/// A server that says its tools changed is discovered again: in the session era on its own
/// word, in the stateless revision on the `subscriptions/listen` stream of the pooled session.
async fn a_changed_tool_list_is_discovered_again(backend: Backend) {
    let app = TestApp::spawn_with(backend, Some(tweak(vec![]))).await;
    for era in ["modern", "legacy"] {
        let server = peers::mcp_python(&["--era", era]);
        let c = create(
            &app,
            json!({"name": format!("growing-{era}"), "kind": "mcp",
                "config": {"server_url": format!("http://127.0.0.1:{}/mcp", server.port)}}),
        )
        .await;
        let id = c["id"].as_str().unwrap().to_owned();
        let has = |c: &Value, name: &str| {
            c["mcp"]["tools"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t["name"] == name))
        };
        assert!(!has(&c, "extra"), "{c}");
        // The pooled session (and its watch) starts with the first call.
        let (status, r) = tool(&app, &id, "echo", json!({"message": "first"})).await;
        assert_eq!(status, 200, "{era}: {r}");
        let (status, r) = tool(&app, &id, "grow", json!({"name": "extra"})).await;
        assert_eq!(status, 200, "{era}: {r}");
        let mut seen = false;
        for _ in 0..50 {
            // A call is what looks at the session's news.
            let _ = tool(&app, &id, "echo", json!({"message": "again"})).await;
            let (_, c) = call(&app, Method::GET, &format!("/v1/connections/{id}"), None).await;
            if has(&c, "extra") {
                seen = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(seen, "{era}: the new tool was never discovered");
    }
}

both_backends!(
    a_changed_tool_list_is_discovered_again,
    discovery_on_create_and_tool_calls,
    upstream_sessions_are_reused_and_renewed_on_change,
    discovery_before_saving,
    a_bearer_server_fails_auth_without_its_token,
    a_stdio_server_gets_its_secrets_as_environment,
    what_is_not_mcp_is_refused,
    the_registry_lists_known_servers,
);
