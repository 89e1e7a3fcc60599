//! `POST /v1/nodes/run` with nodes in the seeds' JSON shapes, against a local server that
//! checks each request the way the real provider would (path, auth header, body shape) and
//! answers like it.

use std::sync::{Arc, Mutex};

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, allow_loopback};
use crate::upstream::Upstream;

type Seen = Arc<Mutex<Vec<(String, String, Value)>>>;

fn refuse(why: &str) -> axum::response::Response {
    (StatusCode::BAD_REQUEST, axum::Json(json!({"error": why}))).into_response()
}

/// Answers as Slack, Google Sheets, Microsoft Graph, GitHub, OpenAI and Anthropic do — after
/// checking what they check.
async fn providers() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let app = axum::Router::new().fallback(move |req: Request| {
        let log = log.clone();
        async move {
            let (parts, body) = req.into_parts();
            let body: Value = serde_json::from_slice(&axum::body::to_bytes(body, 1 << 20).await.unwrap())
                .unwrap_or(Value::Null);
            let h = |name: &str| {
                parts
                    .headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned()
            };
            let path = parts.uri.path().to_owned();
            let query = parts.uri.query().unwrap_or_default().to_owned();
            log.lock().unwrap().push((parts.method.to_string(), format!("{path}?{query}"), body.clone()));
            if h("content-type") != "application/json" {
                return refuse("content-type");
            }
            match path.as_str() {
                "/slack/api/chat.postMessage" => {
                    if h("authorization") != "Bearer xoxb-slack-bot" {
                        return axum::Json(json!({"ok": false, "error": "not_authed"})).into_response();
                    }
                    if body["channel"] == "#missing" {
                        return axum::Json(json!({"ok": false, "error": "channel_not_found"})).into_response();
                    }
                    if !body["channel"].is_string() || !body["text"].is_string() {
                        return axum::Json(json!({"ok": false, "error": "invalid_arguments"})).into_response();
                    }
                    axum::Json(json!({"ok": true, "channel": "C024BE91L", "ts": "1401383885.000061",
                        "message": {"text": body["text"], "type": "message"}})).into_response()
                }
                "/sheets/v4/spreadsheets/sheet-123/values/Sheet1%21A1:append" => {
                    if h("authorization") != "Bearer ya29.sheets" || query != "valueInputOption=USER_ENTERED" {
                        return (StatusCode::UNAUTHORIZED, "").into_response();
                    }
                    let rows = body["values"].as_array().filter(|r| r.iter().all(Value::is_array));
                    let Some(rows) = rows else { return refuse("values must be rows") };
                    axum::Json(json!({"spreadsheetId": "sheet-123", "updates": {"updatedRows": rows.len()}})).into_response()
                }
                "/graph/v1.0/me/events" => {
                    if h("authorization") != "Bearer eyJ.graph" {
                        return (StatusCode::UNAUTHORIZED, "").into_response();
                    }
                    if !body["start"]["dateTime"].is_string() || !body["subject"].is_string() {
                        return refuse("start.dateTime and subject");
                    }
                    (StatusCode::CREATED, axum::Json(json!({"id": "AAMkAGI2", "subject": body["subject"]}))).into_response()
                }
                "/github/repos/acme/site/issues" => {
                    if h("authorization") != "Bearer ghp_github" || h("accept") != "application/vnd.github+json" {
                        return (StatusCode::UNAUTHORIZED, "").into_response();
                    }
                    (StatusCode::CREATED, axum::Json(json!({"number": 42, "title": body["title"],
                        "html_url": "https://github.com/acme/site/issues/42"}))).into_response()
                }
                "/openai/v1/chat/completions" => {
                    if h("authorization") != "Bearer sk-openai" {
                        return (StatusCode::UNAUTHORIZED, axum::Json(json!({"error": {"message": "Incorrect API key"}}))).into_response();
                    }
                    let ok = body["model"] == "gpt-4" && body["messages"][0]["role"] == "user"
                        && body["messages"][0]["content"].is_string() && body["temperature"].is_number();
                    if !ok {
                        return refuse("model, messages, temperature");
                    }
                    axum::Json(json!({"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4",
                        "choices": [{"index": 0, "message": {"role": "assistant",
                            "content": format!("Summary of: {}", body["messages"][0]["content"].as_str().unwrap())},
                            "finish_reason": "stop"}]})).into_response()
                }
                "/anthropic/v1/messages" => {
                    if h("x-api-key") != "sk-ant-key" || h("anthropic-version") != "2023-06-01" {
                        return (StatusCode::UNAUTHORIZED, "").into_response();
                    }
                    if !body["max_tokens"].is_number() || body["messages"][0]["role"] != "user" {
                        return refuse("max_tokens and messages");
                    }
                    axum::Json(json!({"id": "msg_1", "type": "message", "role": "assistant",
                        "content": [{"type": "text", "text": "Claude says hi"}], "stop_reason": "end_turn"})).into_response()
                }
                _ => (StatusCode::NOT_FOUND, "").into_response(),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

async fn integration_and_llm_nodes_call_what_the_provider_expects(backend: Backend) {
    let app = TestApp::spawn_with(backend, Some(allow_loopback())).await;
    let (base, seen) = providers().await;
    let slack = app.connection(
        json!({"name": "slack", "kind": "http", "provider": "slack", "auth": {"type": "bearer"},
        "config": {"base_url": format!("{base}/slack/api")}, "secrets": {"token": "xoxb-slack-bot"}})).await;
    // The seed's node, verbatim but for the connection id.
    let node = json!({"type": "integration", "label": "Send Slack Notification", "config": {
        "service": "slack", "operation": "send_message", "connectionId": slack,
        "config": {"channel": "#notifications", "text": "Workflow completed: ${workflow.name}"}},
        "context": {"workflow": {"name": "Invoice sync"}}});
    let r = app.admin.run_node(&node).await.unwrap();
    assert_eq!(r.outputs["output"]["ok"], true);
    let (method, path, body) = seen.lock().unwrap().last().unwrap().clone();
    assert_eq!(
        (method.as_str(), path.as_str()),
        ("POST", "/slack/api/chat.postMessage?")
    );
    assert_eq!(
        body,
        json!({"channel": "#notifications", "text": "Workflow completed: Invoice sync"})
    );
    // Slack's ok: false is a failure.
    let mut missing = node.clone();
    missing["config"]["config"]["channel"] = json!("#missing");
    let e = app.admin.run_node(&missing).await.unwrap_err();
    assert!(e.to_string().contains("channel_not_found"), "{e}");

    let sheets = app.connection(
        json!({"name": "sheets", "kind": "http", "provider": "google-sheets", "auth": {"type": "bearer"},
        "config": {"base_url": format!("{base}/sheets/v4")}, "secrets": {"token": "ya29.sheets"}})).await;
    let r = app
        .admin
        .run_node(&json!({"type": "integration", "config": {"service": "google_sheets", "operation": "append_row",
            "connectionId": sheets, "outputVariable": "appended",
            "config": {"spreadsheet_id": "sheet-123", "range": "Sheet1!A1", "values": [["{{customer}}", "{{amount}}"]]}},
            "context": {"customer": "Acme", "amount": 1250}}))
        .await
        .unwrap();
    assert_eq!(r.outputs["appended"]["updates"]["updatedRows"], 1);
    assert_eq!(
        seen.lock().unwrap().last().unwrap().2,
        json!({"values": [["Acme", 1250]]})
    );

    let graph = app.connection(
        json!({"name": "graph", "kind": "http", "provider": "microsoft-graph", "auth": {"type": "bearer"},
        "config": {"base_url": format!("{base}/graph/v1.0")}, "secrets": {"token": "eyJ.graph"}})).await;
    let r = app
        .admin
        .run_node(&json!({"type": "integration", "config": {"service": "microsoft-graph", "operation": "create_calendar_event",
            "connectionId": graph, "config": {"subject": "flow8 Demo",
                "start": {"dateTime": "2026-04-05T10:00:00", "timeZone": "UTC"}, "end": {"dateTime": "2026-04-05T11:00:00", "timeZone": "UTC"}}}}))
        .await
        .unwrap();
    assert_eq!(r.outputs["output"]["id"], "AAMkAGI2");

    let github = app
        .connection(
            json!({"name": "gh", "kind": "http", "provider": "github", "auth": {"type": "bearer"},
        "config": {"base_url": format!("{base}/github")}, "secrets": {"token": "ghp_github"}}),
        )
        .await;
    let r = app
        .admin
        .run_node(&json!({"type": "integration", "config": {"service": "github", "operation": "create_issue",
            "connectionId": github, "config": {"owner": "acme", "repo": "site", "title": "Broken link on ${page}", "body": "Found by a workflow"}},
            "context": {"page": "/pricing"}}))
        .await
        .unwrap();
    assert_eq!(r.outputs["output"]["number"], 42);
    assert_eq!(
        seen.lock().unwrap().last().unwrap().2["title"],
        "Broken link on /pricing"
    );

    // The seed's llm node.
    let openai = app.connection(
        json!({"name": "openai", "kind": "http", "provider": "openai", "auth": {"type": "api_key"},
        "config": {"base_url": format!("{base}/openai/v1")}, "secrets": {"api_key": "sk-openai"}}),
    )
    .await;
    let r = app
        .admin
        .run_node(&json!({"type": "llm", "label": "Generate Summary", "config": {"provider": "openai", "model": "gpt-4",
            "connectionId": openai, "prompt": "Summarize: ${previous_step_output}", "temperature": 0.7, "outputVariable": "summary"},
            "context": {"previous_step_output": "Q3 revenue grew 12%"}}))
        .await
        .unwrap();
    assert_eq!(
        r.outputs["summary"],
        "Summary of: Summarize: Q3 revenue grew 12%"
    );
    let sent = seen.lock().unwrap().last().unwrap().2.clone();
    assert_eq!(sent["temperature"], 0.7);
    assert_eq!(
        sent["messages"],
        json!([{"role": "user", "content": "Summarize: Q3 revenue grew 12%"}])
    );

    let anthropic = app.connection(
        json!({"name": "claude", "kind": "http", "provider": "anthropic", "auth": {"type": "api_key"},
        "config": {"base_url": format!("{base}/anthropic/v1")}, "secrets": {"api_key": "sk-ant-key"}})).await;
    let r = app
        .admin
        .run_node(
            &json!({"type": "llm", "config": {"provider": "anthropic", "model": "claude-sonnet-4-5",
            // A name given as null does not hide the next one the node reads.
            "connectionId": null, "connection": anthropic, "prompt": "Say hi"}}),
        )
        .await
        .unwrap();
    assert_eq!(
        r.outputs["llmOutput"], "Claude says hi",
        "the seed's default output variable"
    );
    let sent = seen.lock().unwrap().last().unwrap().2.clone();
    assert_eq!(sent["max_tokens"], 1024);
    assert!(
        sent.get("temperature").is_none(),
        "an unset temperature is left out"
    );

    // Mismatches and bad nodes are named.
    for (node, field) in [
        (
            json!({"type": "llm", "config": {"provider": "anthropic", "model": "m", "connectionId": openai, "prompt": "x"}}),
            "config.connectionId",
        ),
        (
            json!({"type": "integration", "config": {"service": "slack", "operation": "nope", "connectionId": slack}}),
            "config.operation",
        ),
        (
            json!({"type": "integration", "config": {"service": "nowhere", "operation": "x", "connectionId": slack}}),
            "config.service",
        ),
        (
            json!({"type": "llm", "config": {"provider": "openai", "model": "m", "connectionId": openai, "prompt": "x", "temperature": 7}}),
            "config.temperature",
        ),
        (json!({"type": "teleport", "config": {}}), "type"),
        // A field of the wrong type is refused, before anything is sent, not ignored.
        (
            json!({"type": "llm", "config": {"provider": "openai", "model": "m", "connectionId": openai, "prompt": "x", "outputVariable": 7}}),
            "config.outputVariable",
        ),
        (
            json!({"type": "http", "config": {"connectionId": openai, "method": ["GET"]}}),
            "config.method",
        ),
        (
            json!({"type": "integration", "config": {"service": "slack", "operation": "send_message", "connectionId": slack,
            "config": {"channel": "#x", "text": "${absent}"}}}),
            "context.absent",
        ),
    ] {
        let calls = seen.lock().unwrap().len();
        let e = app.admin.run_node(&node).await.unwrap_err().to_string();
        assert!(e.starts_with("422") && e.contains(field), "{field}: {e}");
        assert_eq!(
            seen.lock().unwrap().len(),
            calls,
            "{field}: nothing was sent"
        );
    }
}

async fn http_sql_and_webhook_nodes_in_seed_shapes(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let sqlite_dir = dir.path().to_path_buf();
    let app = TestApp::spawn_with(
        backend,
        Some(Arc::new(move |s| {
            s.egress.allow_net = vec!["127.0.0.0/8".parse().unwrap()];
            s.egress.allow_sqlite_dirs = vec![sqlite_dir.clone()];
        })),
    )
    .await;
    let up = Upstream::start().await;
    let drive = app
        .connection(
            json!({"name": "drive", "kind": "http", "auth": {"type": "bearer"},
        "config": {"base_url": format!("{}/drive/v3", up.url)}, "secrets": {"token": "t"}}),
        )
        .await;
    // 001's http node: a path under the base URL and a JSONPath map.
    let r = app
        .admin
        .run_node(&json!({"type": "http", "config": {"connectionId": drive, "path": "/files/${folder}", "method": "GET",
            "map": [{"as": "files", "select": "$.path"}]}, "context": {"folder": "a b/c?d"}}))
        .await
        .unwrap();
    assert_eq!(
        r.outputs["files"], "/drive/v3/files/a%20b%2Fc%3Fd",
        "a value stays one segment"
    );
    // A value that would climb out of the base URL once decoded is refused outright.
    let e = app
        .admin
        .run_node(
            &json!({"type": "http", "config": {"connectionId": drive, "path": "/files/${folder}"},
            "context": {"folder": "../../admin"}}),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("400"), "{e}");
    // 003's SQL node: templates stay out of SQL; parameters carry values.
    let file = dir.path().join("n.db");
    std::fs::write(&file, b"").unwrap();
    let db = app.connection(
        json!({"name": "db", "kind": "database", "config": {"driver": "sqlite", "database": file.to_str().unwrap()}})).await;
    let e = app
        .admin
        .run_node(&json!({"type": "sql", "config": {"connectionId": db, "query": "SELECT * FROM users WHERE created > {{input}}"}}))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("config.query"), "{e}");
    let r = app
        .admin
        .run_node(&json!({"type": "sql", "config": {"connectionId": db, "query": "SELECT ? AS echoed, 2 AS two", "params": ["{{input}}"]},
            "context": {"input": "'); DROP TABLE users; --"}}))
        .await
        .unwrap();
    assert_eq!(r.outputs["count"], 1);
    assert_eq!(r.outputs["rows"][0]["echoed"], "'); DROP TABLE users; --");
    // 001's webhook node, fire-and-forget with a retry policy, to a bare URL.
    let r = app
        .admin
        .run_node(&json!({"type": "webhook", "config": {"url": format!("{}/hooks/T0/B0/XXXX", up.url), "method": "POST",
            "mode": "fire-and-forget", "body": {"text": "Workflow {{workflowName}} completed by {{userName}}"},
            "retryPolicy": {"attempts": 5, "backoffMs": 2000}}, "context": {"workflowName": "Billing", "userName": "Ada"}}))
        .await
        .unwrap();
    assert_eq!(r.outputs["output"]["status"], "pending");
    for _ in 0..100 {
        if up.count("/hooks/T0/B0/XXXX") > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let hook = up.last();
    assert_eq!(hook.path, "/hooks/T0/B0/XXXX");
    assert_eq!(
        serde_json::from_slice::<Value>(&hook.body).unwrap(),
        json!({"text": "Workflow Billing completed by Ada"})
    );
}

both_backends!(
    integration_and_llm_nodes_call_what_the_provider_expects,
    http_sql_and_webhook_nodes_in_seed_shapes,
);
