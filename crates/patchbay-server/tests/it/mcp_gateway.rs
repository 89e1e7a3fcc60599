//! Patchbay as an MCP server (`/mcp`, `/mcp/c/{connection}`), spoken to by the official Python
//! SDK's client in both eras: namespaced tools of two connections, calls that reach their
//! upstreams, 401 without a token, nothing for another organization, listing but no calling
//! for a viewer, and a session that continues on another replica.

use std::sync::Arc;
use std::time::Duration;

use patchbay_domain::Role;
use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, Tweak};
use crate::mcp::tweak;
use crate::peers;

/// The Python SDK's client: what it listed and what a call answered.
async fn python_client(url: &str, token: &str, mode: &str, call: Option<(&str, Value)>) -> Value {
    // Not blocking: the server under test runs on this test's runtime too.
    let mut cmd = tokio::process::Command::new(peers::python());
    cmd.arg(peers::repo_dir().join("tests/peers/mcp_gateway_client.py"))
        .args([url, token, mode]);
    if let Some((name, args)) = call {
        cmd.args([name.to_owned(), args.to_string()]);
    }
    let out = cmd.output().await.expect("python");
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|_| {
        panic!(
            "the client printed {text:?}; stderr {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn names(v: &Value) -> Vec<String> {
    v["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools: {v}"))
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect()
}

/// A token of `role` in `admin`'s organization: its value.
async fn token_value(admin: &patchbay_client::Client, role: Role) -> String {
    admin
        .create_token(&patchbay_domain::api::CreateToken {
            name: format!("{}-gateway", role.as_str()),
            role,
            project: None,
        })
        .await
        .unwrap()
        .value
}

async fn create(app: &TestApp, body: Value) -> String {
    let r = app
        .admin
        .raw(Method::POST, "/v1/connections", Some(&body), &[])
        .await
        .unwrap();
    let c = r.json();
    assert_eq!(r.status.as_u16(), 201, "{c}");
    assert_eq!(c["test_status"], "success", "{c}");
    c["id"].as_str().unwrap().to_owned()
}

async fn the_python_sdk_uses_the_gateway(backend: Backend) {
    let python = peers::mcp_python(&[]);
    let everything = peers::mcp_everything();
    let app = TestApp::spawn_with(backend, Some(tweak(vec![]))).await;
    let py = create(
        &app,
        json!({"name": "py", "kind": "mcp",
            "config": {"server_url": format!("http://127.0.0.1:{}/mcp", python.port)}}),
    )
    .await;
    create(
        &app,
        json!({"name": "everything", "kind": "mcp",
            "config": {"server_url": format!("http://127.0.0.1:{}/mcp", everything.port),
                "allowed_tools": ["echo", "get-sum"]}}),
    )
    .await;
    let gateway = format!("{}/mcp", app.url);

    for mode in ["legacy", "auto"] {
        let out = python_client(
            &gateway,
            &app.admin_token,
            mode,
            Some(("py__echo", json!({"message": "through the gateway"}))),
        )
        .await;
        let listed = names(&out);
        for wanted in [
            "py__echo",
            "py__add",
            "everything__echo",
            "everything__get-sum",
        ] {
            assert!(
                listed.contains(&wanted.to_owned()),
                "{mode}: {wanted} in {listed:?}"
            );
        }
        assert!(
            !listed.iter().any(|n| n.starts_with("everything__trigger")),
            "the allow-list holds: {listed:?}"
        );
        assert_eq!(
            out["call"]["content"][0]["text"], "Echo: through the gateway",
            "{mode}: {out}"
        );
        let version = out["protocol_version"].as_str().unwrap();
        if mode == "auto" {
            assert_eq!(version, "2026-07-28", "{out}");
        } else {
            assert_eq!(version, "2025-11-25", "{out}");
        }
        assert_eq!(out["server"], "patchbay");
    }
    let sum = python_client(
        &gateway,
        &app.admin_token,
        "auto",
        Some(("everything__get-sum", json!({"a": 40, "b": 2}))),
    )
    .await;
    assert!(
        sum["call"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("42"),
        "{sum}"
    );

    // One connection under its own names.
    let one = python_client(
        &format!("{}/mcp/c/{py}", app.url),
        &app.admin_token,
        "auto",
        Some(("add", json!({"a": 1, "b": 2}))),
    )
    .await;
    let listed = names(&one);
    assert!(
        listed.contains(&"echo".to_owned()) && listed.contains(&"add".to_owned()),
        "{one}"
    );
    assert_eq!(one["call"]["structuredContent"]["result"], 3, "{one}");

    // Without a token: refused.
    let anonymous = python_client(&gateway, "-", "legacy", None).await;
    let refused = anonymous["error"].as_str().unwrap();
    assert!(
        refused.contains("401") || refused.contains("send a Patchbay token"),
        "{anonymous}"
    );
    let r = reqwest::Client::new()
        .post(&gateway)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer ")
    );

    // Another organization's token sees none of these tools.
    let other = app.org("other").await;
    let other_token = token_value(&other, Role::Admin).await;
    let theirs = python_client(
        &gateway,
        &other_token,
        "auto",
        Some(("py__echo", json!({"message": "x"}))),
    )
    .await;
    assert_eq!(theirs["tools"], json!([]), "{theirs}");
    assert!(
        theirs["call_error"]
            .as_str()
            .unwrap()
            .contains("Unknown tool"),
        "{theirs}"
    );
    let their_one = python_client(
        &format!("{}/mcp/c/{py}", app.url),
        &other_token,
        "legacy",
        None,
    )
    .await;
    assert!(
        their_one.get("tools").is_none() || their_one["tools"] == json!([]),
        "{their_one}"
    );

    // A viewer lists, and may not call.
    let viewer = token_value(&app.admin, Role::Viewer).await;
    let seen = python_client(
        &gateway,
        &viewer,
        "auto",
        Some(("py__echo", json!({"message": "x"}))),
    )
    .await;
    assert!(names(&seen).contains(&"py__echo".to_owned()), "{seen}");
    assert!(
        seen["call_error"]
            .as_str()
            .unwrap()
            .contains("calling tools needs"),
        "{seen}"
    );

    // A foreign Origin is refused (DNS rebinding).
    let r = reqwest::Client::new()
        .post(&gateway)
        .bearer_auth(&app.admin_token)
        .header("Origin", "http://rebound.example.com")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // Calls through the gateway are audited as MCP actions.
    let audit = app
        .admin
        .raw(Method::GET, "/v1/audit?action=action.mcp", None, &[])
        .await
        .unwrap()
        .json();
    assert!(audit["items"].as_array().unwrap().len() >= 4, "{audit}");
    assert!(!audit.to_string().contains("through the gateway"));
}

/// Raw JSON-RPC over HTTP, for what the SDK's client does not show (the session header).
async fn rpc(url: &str, token: &str, session: Option<&str>, body: Value) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .header("Accept", "application/json, text/event-stream")
        .json(&body);
    if let Some(s) = session {
        req = req.header("Mcp-Session-Id", s);
    }
    req.send().await.unwrap()
}

/// The JSON-RPC messages of an answer: one JSON object, or the events of an SSE stream.
async fn messages(r: reqwest::Response) -> Vec<Value> {
    let events = r
        .headers()
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap().starts_with("text/event-stream"));
    let text = r.text().await.unwrap();
    if !events {
        return vec![serde_json::from_str(&text).unwrap()];
    }
    text.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| serde_json::from_str(d.trim()).unwrap())
        .collect()
}

async fn session_of(url: &str, token: &str) -> String {
    let r = rpc(
        url,
        token,
        None,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"}}}),
    )
    .await;
    r.headers()["mcp-session-id"].to_str().unwrap().to_owned()
}

/// Progress and log messages of the upstream reach the caller (progress under its own token)
/// before the result; a caller that goes away, or sends `notifications/cancelled`, cancels
/// the upstream call, which is audited.
async fn progress_is_relayed_and_calls_are_cancelled(backend: Backend) {
    let python = peers::mcp_python(&[]);
    let app = TestApp::spawn_with(backend, Some(tweak(vec![]))).await;
    create(
        &app,
        json!({"name": "py", "kind": "mcp",
            "config": {"server_url": format!("http://127.0.0.1:{}/mcp", python.port)}}),
    )
    .await;
    let url = format!("{}/mcp", app.url);
    let session = session_of(&url, &app.admin_token).await;
    let r = rpc(
        &url,
        &app.admin_token,
        Some(&session),
        json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
            "name": "py__progress", "arguments": {"steps": 3},
            "_meta": {"progressToken": "caller-token"}}}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let all = messages(r).await;
    let of =
        |method: &str| -> Vec<&Value> { all.iter().filter(|m| m["method"] == method).collect() };
    let progress = of("notifications/progress");
    assert_eq!(progress.len(), 3, "{all:?}");
    for (i, p) in progress.iter().enumerate() {
        assert_eq!(p["params"]["progressToken"], "caller-token", "{p}");
        assert_eq!(p["params"]["progress"], json!(i as f64 + 1.0), "{p}");
        assert_eq!(p["params"]["total"], json!(3.0), "{p}");
    }
    let logs = of("notifications/message");
    assert_eq!(logs.len(), 3, "{all:?}");
    assert_eq!(logs[0]["params"]["data"], "step 1 of 3");
    let last = all.last().unwrap();
    assert_eq!(last["id"], 7);
    assert_eq!(
        last["result"]["content"][0]["text"], "3 steps done",
        "{last}"
    );

    // Cancelled by notification: the call answers at once, not after its 30 s.
    let started = std::time::Instant::now();
    let call = tokio::spawn({
        let (url, token, session) = (url.clone(), app.admin_token.clone(), session.clone());
        async move {
            let r = rpc(
                &url,
                &token,
                Some(&session),
                json!({"jsonrpc": "2.0", "id": "slow-1", "method": "tools/call",
                    "params": {"name": "py__slow", "arguments": {"seconds": 30}}}),
            )
            .await;
            messages(r).await.pop().unwrap()
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = rpc(
        &url,
        &app.admin_token,
        Some(&session),
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
            "params": {"requestId": "slow-1", "reason": "the user gave up"}}),
    )
    .await;
    assert_eq!(r.status(), 202);
    let answer = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("the cancelled call answers")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(answer["result"]["isError"], true, "{answer}");
    assert!(answer.to_string().contains("cancelled"), "{answer}");

    // A caller that goes away: the call is cancelled and still audited.
    let quitter = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let gone = quitter
        .post(&url)
        .bearer_auth(&app.admin_token)
        .header("Accept", "application/json")
        .header("Mcp-Session-Id", &session)
        .json(
            &json!({"jsonrpc": "2.0", "id": "slow-2", "method": "tools/call",
            "params": {"name": "py__slow", "arguments": {"seconds": 30}}}),
        )
        .send()
        .await;
    assert!(gone.is_err(), "the caller gave up");
    let mut cancelled = 0;
    for _ in 0..50 {
        let audit = app
            .admin
            .raw(Method::GET, "/v1/audit?action=action.mcp", None, &[])
            .await
            .unwrap()
            .json();
        cancelled = audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["outcome"] == "failure" && e.to_string().contains("cancelled"))
            .count();
        if cancelled == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(cancelled, 2, "both cancelled calls are audited");
    assert!(started.elapsed() < Duration::from_secs(25));
}

/// Tool calls are limited per token: over the limit, a JSON-RPC error says when to retry, and
/// another token is not held back.
async fn tool_calls_are_rate_limited_per_token(backend: Backend) {
    let python = peers::mcp_python(&[]);
    let limited: Tweak = Arc::new(|s| {
        s.egress.allow_net = vec!["127.0.0.0/8".parse().unwrap()];
        s.limits.test_rate_per_minute = 0;
        s.limits.tool_call_rate_per_minute = 2;
    });
    let app = TestApp::spawn_with(backend, Some(limited)).await;
    create(
        &app,
        json!({"name": "py", "kind": "mcp",
            "config": {"server_url": format!("http://127.0.0.1:{}/mcp", python.port)}}),
    )
    .await;
    let url = format!("{}/mcp", app.url);
    let echo = |id: i64| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "py__echo", "arguments": {"message": "m"}}})
    };
    let session = session_of(&url, &app.admin_token).await;
    for id in 1..=2 {
        let r = rpc(&url, &app.admin_token, Some(&session), echo(id)).await;
        let m = messages(r).await.pop().unwrap();
        assert_eq!(m["result"]["content"][0]["text"], "Echo: m", "{m}");
    }
    let r = rpc(&url, &app.admin_token, Some(&session), echo(3)).await;
    let m = messages(r).await.pop().unwrap();
    assert_eq!(m["error"]["code"], -31029, "{m}");
    assert!(
        m["error"]["data"]["retry_after"].as_u64().unwrap() >= 1,
        "{m}"
    );
    // Listing is not a call: still answered.
    let r = rpc(
        &url,
        &app.admin_token,
        Some(&session),
        json!({"jsonrpc": "2.0", "id": 4, "method": "tools/list"}),
    )
    .await;
    assert!(messages(r).await[0]["result"]["tools"].is_array());
    // Another token has its own allowance.
    let member = token_value(&app.admin, Role::Member).await;
    let theirs = session_of(&url, &member).await;
    let r = rpc(&url, &member, Some(&theirs), echo(5)).await;
    let m = messages(r).await.pop().unwrap();
    assert_eq!(m["result"]["content"][0]["text"], "Echo: m", "{m}");
}

/// A GitHub-like upstream: issues created under /repos/acme/site (with the connection's token),
/// a 500 for any other repository.
async fn issue_tracker() -> String {
    use axum::http::{HeaderMap, StatusCode, Uri};
    use axum::response::IntoResponse;
    let app = axum::Router::new().fallback(
        |uri: Uri, headers: HeaderMap, body: axum::body::Bytes| async move {
            if headers.get("authorization").and_then(|v| v.to_str().ok())
                != Some("Bearer ghp_tools")
            {
                return StatusCode::UNAUTHORIZED.into_response();
            }
            if uri.path() != "/repos/acme/site/issues" {
                return (StatusCode::INTERNAL_SERVER_ERROR, "down").into_response();
            }
            let body: Value = serde_json::from_slice(&body).unwrap_or_default();
            (
                StatusCode::CREATED,
                axum::Json(json!({"number": 42, "title": body["title"]})),
            )
                .into_response()
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// An HTTP connection of a catalog provider offers its operations as tools when it opts in
/// (`config.mcp_tools`); one that does not offers none.
async fn catalog_operations_are_tools_when_asked(backend: Backend) {
    let app = TestApp::spawn_with(backend, Some(tweak(vec![]))).await;
    let upstream = issue_tracker().await;
    for (name, opt_in) in [("gh", true), ("quiet", false)] {
        let r = app
            .admin
            .raw(
                Method::POST,
                "/v1/connections",
                Some(&json!({"name": name, "kind": "http", "provider": "github",
                    "auth": {"type": "bearer"}, "secrets": {"token": "ghp_tools"},
                    "config": {"base_url": upstream, "mcp_tools": opt_in}})),
                &[],
            )
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    }
    let url = format!("{}/mcp", app.url);
    let session = session_of(&url, &app.admin_token).await;
    let r = rpc(
        &url,
        &app.admin_token,
        Some(&session),
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
    )
    .await;
    let listed = messages(r).await.pop().unwrap();
    let tools = listed["result"]["tools"].as_array().unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"gh__create_issue"), "{names:?}");
    assert!(names.contains(&"gh__get_user"), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("quiet__")), "{names:?}");
    let create = tools
        .iter()
        .find(|t| t["name"] == "gh__create_issue")
        .unwrap();
    assert_eq!(
        create["inputSchema"]["required"],
        json!(["owner", "repo"]),
        "{create}"
    );
    assert!(
        create["inputSchema"]["properties"]["title"].is_object(),
        "{create}"
    );
    assert_eq!(create["annotations"]["readOnlyHint"], false);

    let call = |id: i64, repo: &str| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
            "name": "gh__create_issue",
            "arguments": {"owner": "acme", "repo": repo, "title": "Broken", "body": "Found"}}})
    };
    let r = rpc(&url, &app.admin_token, Some(&session), call(2, "site")).await;
    let done = messages(r).await.pop().unwrap();
    assert_eq!(done["result"]["isError"], false, "{done}");
    assert_eq!(done["result"]["structuredContent"]["number"], 42, "{done}");
    assert_eq!(
        done["result"]["structuredContent"]["title"], "Broken",
        "{done}"
    );
    // The service failing is an error result the model can read.
    let r = rpc(&url, &app.admin_token, Some(&session), call(3, "other")).await;
    let failed = messages(r).await.pop().unwrap();
    assert_eq!(failed["result"]["isError"], true, "{failed}");
    assert!(failed.to_string().contains("HTTP 500"), "{failed}");
    // A missing path argument is the caller's error.
    let r = rpc(
        &url,
        &app.admin_token,
        Some(&session),
        json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
            "params": {"name": "gh__create_issue", "arguments": {"owner": "acme"}}}),
    )
    .await;
    let refused = messages(r).await.pop().unwrap();
    assert_eq!(refused["error"]["code"], -32602, "{refused}");
    assert!(refused.to_string().contains("repo"), "{refused}");
    // Each call is audited as the HTTP action it is.
    let audit = app
        .admin
        .raw(Method::GET, "/v1/audit?action=action.http", None, &[])
        .await
        .unwrap()
        .json();
    assert!(audit["items"].as_array().unwrap().len() >= 2, "{audit}");
}

async fn a_session_continues_on_another_replica(backend: Backend) {
    let python = peers::mcp_python(&[]);
    let app = TestApp::spawn_with(backend, Some(tweak(vec![]))).await;
    create(
        &app,
        json!({"name": "py", "kind": "mcp",
            "config": {"server_url": format!("http://127.0.0.1:{}/mcp", python.port)}}),
    )
    .await;
    let r = rpc(
        &format!("{}/mcp", app.url),
        &app.admin_token,
        None,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"}}}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let session = r.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    assert_eq!(
        r.json::<Value>().await.unwrap()["result"]["protocolVersion"],
        "2025-06-18"
    );

    let replica = app.replica().await;
    let other = format!("{}/mcp", replica.base_url().as_str().trim_end_matches('/'));
    let r = rpc(
        &other,
        &app.admin_token,
        Some(&session),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "py__echo", "arguments": {"message": "elsewhere"}}}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let v = messages(r).await.pop().unwrap();
    assert_eq!(v["result"]["content"][0]["text"], "Echo: elsewhere", "{v}");

    // Ended on the replica, it is gone on the first too.
    let ended = reqwest::Client::new()
        .delete(&other)
        .bearer_auth(&app.admin_token)
        .header("Mcp-Session-Id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), 204);
    let r = rpc(
        &format!("{}/mcp", app.url),
        &app.admin_token,
        Some(&session),
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}),
    )
    .await;
    assert_eq!(r.status(), 404);

    // Another token cannot use the session.
    let r = rpc(
        &format!("{}/mcp", app.url),
        &app.admin_token,
        None,
        json!({"jsonrpc": "2.0", "id": 4, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"}}}),
    )
    .await;
    let session = r.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    let member = token_value(&app.admin, Role::Member).await;
    let r = rpc(
        &format!("{}/mcp", app.url),
        &member,
        Some(&session),
        json!({"jsonrpc": "2.0", "id": 5, "method": "tools/list"}),
    )
    .await;
    assert_eq!(r.status(), 404);

    // The stateless revision: its headers must match its body.
    let modern = |name: &str| {
        json!({"jsonrpc": "2.0", "id": 6, "method": "tools/call", "params": {
            "name": name, "arguments": {"message": "m"},
            "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {}}}})
    };
    let send = |name_header: &'static str| {
        reqwest::Client::new()
            .post(format!("{}/mcp", app.url))
            .bearer_auth(&app.admin_token)
            .header("MCP-Protocol-Version", "2026-07-28")
            .header("Mcp-Method", "tools/call")
            .header("Mcp-Name", name_header)
            .json(&modern("py__echo"))
            .send()
    };
    let r = send("py__add").await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], -32020);
    let r = send("py__echo").await.unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["result"]["resultType"], "complete", "{v}");
    assert_eq!(v["result"]["content"][0]["text"], "Echo: m", "{v}");
}

both_backends!(
    the_python_sdk_uses_the_gateway,
    a_session_continues_on_another_replica,
    progress_is_relayed_and_calls_are_cancelled,
    tool_calls_are_rate_limited_per_token,
    catalog_operations_are_tools_when_asked,
);
