//! Patchbay's MCP client (`patchbay-mcp`) against real servers: the reference server in its
//! three transports, servers of the official Python SDK in both protocol eras, and servers
//! that misbehave (never answer, repeat a cursor, answer 50 MB, die mid-call).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use patchbay_mcp::{Endpoint, Era, ErrorKind, Headers, Limits, Session, ToolServer};
use patchbay_net::{Gate, GateSettings, GatedHttp};
use serde_json::{Value, json};

use crate::peers;

fn http() -> GatedHttp {
    let gate = Gate::new(&GateSettings {
        allow_net: vec!["127.0.0.0/8".parse().unwrap()],
        dns_servers: vec![],
    })
    .unwrap();
    GatedHttp::new(gate, Duration::from_secs(15)).unwrap()
}

fn streamable(port: u16, path: &str, headers: Headers) -> Endpoint {
    Endpoint::StreamableHttp {
        url: format!("http://127.0.0.1:{port}{path}").parse().unwrap(),
        headers,
    }
}

fn stdio(program: &str, args: &[&str]) -> Endpoint {
    Endpoint::Stdio(patchbay_mcp::Command {
        program: program.into(),
        args: args.iter().map(|a| a.to_string()).collect(),
        env: BTreeMap::new(),
        redact: vec![],
        label: program.to_owned(),
    })
}

/// The misbehaving server over stdio in `mode`.
fn misbehaving_stdio(mode: &str) -> Endpoint {
    let script = peers::repo_dir().join("tests/peers/mcp_misbehaving.py");
    let py = peers::python();
    stdio(
        py.to_str().unwrap(),
        &[script.to_str().unwrap(), mode, "--stdio"],
    )
}

async fn connect(endpoint: &Endpoint) -> Result<Session, patchbay_mcp::McpError> {
    patchbay_mcp::connect(
        endpoint,
        &http(),
        Era::Unknown,
        Limits::default(),
        Duration::from_secs(20),
    )
    .await
}

const T: Duration = Duration::from_secs(15);

fn text(result: &Value) -> String {
    result["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["text"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

fn args(v: Value) -> Option<serde_json::Map<String, Value>> {
    v.as_object().cloned()
}

/// What every transport of the reference server must do.
async fn everything_works(endpoint: Endpoint) {
    let s = connect(&endpoint).await.expect("connects");
    assert!(
        s.summary().label().contains("everything"),
        "{:?}",
        s.summary()
    );
    let tools = s.list_tools(T).await.unwrap();
    let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
    for wanted in ["echo", "get-sum", "trigger-long-running-operation"] {
        assert!(names.contains(&wanted), "{wanted} in {names:?}");
    }
    let echo = tools.iter().find(|t| t["name"] == "echo").unwrap();
    assert_eq!(
        echo["inputSchema"]["type"], "object",
        "schemas pass through"
    );

    let r = s
        .call_tool("echo", args(json!({"message": "hello"})), T)
        .await
        .unwrap();
    assert_eq!(text(&r), "Echo: hello");
    assert_eq!(r["isError"], Value::Null, "{r}");
    let r = s
        .call_tool("get-sum", args(json!({"a": 2, "b": 40})), T)
        .await
        .unwrap();
    assert!(text(&r).contains("42"), "{r}");

    // Arguments the tool refuses: an error result, passed through as the server wrote it.
    let r = s
        .call_tool("get-sum", args(json!({"a": "two"})), T)
        .await
        .unwrap();
    assert_eq!(r["isError"], true, "{r}");

    // A tool that takes 10 s, cut at 1 s: a timeout, and the session goes on.
    let started = Instant::now();
    let e = s
        .call_tool(
            "trigger-long-running-operation",
            args(json!({"duration": 10, "steps": 2})),
            Duration::from_secs(1),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout, "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    let r = s
        .call_tool("echo", args(json!({"message": "after"})), T)
        .await
        .unwrap();
    assert_eq!(text(&r), "Echo: after");
    s.close().await;
}

#[tokio::test]
async fn the_reference_server_over_streamable_http() {
    let server = peers::mcp_everything();
    everything_works(streamable(server.port, "/mcp", Headers::new())).await;
}

#[tokio::test]
async fn the_reference_server_over_legacy_sse() {
    let server = peers::mcp_everything_sse();
    let endpoint = Endpoint::Sse {
        url: format!("http://127.0.0.1:{}/sse", server.port)
            .parse()
            .unwrap(),
        headers: Headers::new(),
    };
    let s = connect(&endpoint).await.unwrap();
    assert_eq!(s.summary().protocol_version, "2024-11-05");
    s.close().await;
    everything_works(endpoint).await;
}

#[tokio::test]
async fn the_reference_server_over_stdio() {
    let entry = peers::everything_entry();
    everything_works(stdio("node", &[entry.to_str().unwrap(), "stdio"])).await;
}

#[tokio::test]
async fn a_stateless_only_python_server_is_spoken_to_in_2026_07_28() {
    let server = peers::mcp_python(&["--era", "modern"]);
    let s = connect(&streamable(server.port, "/mcp", Headers::new()))
        .await
        .unwrap();
    assert_eq!(s.summary().protocol_version, "2026-07-28");
    assert_eq!(s.summary().era(), Era::Modern);
    assert_eq!(s.summary().server_info["name"], "patchbay-test-python");
    let tools = s.list_tools(T).await.unwrap();
    assert!(tools.iter().any(|t| t["name"] == "add"), "{tools:?}");
    let r = s
        .call_tool("add", args(json!({"a": 20, "b": 22})), T)
        .await
        .unwrap();
    assert_eq!(r["structuredContent"]["result"], 42, "{r}");
    let r = s.call_tool("fail", None, T).await.unwrap();
    assert_eq!(r["isError"], true, "{r}");
    s.close().await;

    // Asked in the era it spoke, it answers at once.
    let again = patchbay_mcp::connect(
        &streamable(server.port, "/mcp", Headers::new()),
        &http(),
        Era::Modern,
        Limits::default(),
        T,
    )
    .await
    .unwrap();
    assert_eq!(again.summary().protocol_version, "2026-07-28");
}

#[tokio::test]
async fn a_session_era_python_server_gets_initialize_after_the_modern_probe() {
    let server = peers::mcp_python(&["--era", "legacy"]);
    let endpoint = streamable(server.port, "/mcp", Headers::new());
    let s = connect(&endpoint).await.unwrap();
    assert_eq!(s.summary().era(), Era::Legacy, "{:?}", s.summary());
    let r = s
        .call_tool("echo", args(json!({"message": "old"})), T)
        .await
        .unwrap();
    assert_eq!(text(&r), "Echo: old");
    s.close().await;
    // Remembered as modern but legacy now (the server was replaced): probed again.
    let s = patchbay_mcp::connect(&endpoint, &http(), Era::Modern, Limits::default(), T)
        .await
        .unwrap();
    assert_eq!(s.summary().era(), Era::Legacy);
}

#[tokio::test]
async fn a_server_that_wants_a_bearer_refuses_without_it() {
    let server = peers::mcp_python(&["--bearer", "sesame-token"]);
    let e = connect(&streamable(server.port, "/mcp", Headers::new()))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Auth, "{e:?}");
    let mut headers = Headers::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        "Bearer sesame-token".parse().unwrap(),
    );
    let s = connect(&streamable(server.port, "/mcp", headers))
        .await
        .unwrap();
    assert!(!s.list_tools(T).await.unwrap().is_empty());
}

#[tokio::test]
async fn pages_of_tools_are_followed_and_a_repeated_cursor_ends_with_an_error() {
    let paged = peers::mcp_misbehaving("paged");
    let s = connect(&streamable(paged.port, "/", Headers::new()))
        .await
        .unwrap();
    let tools = s.list_tools(T).await.unwrap();
    assert_eq!(tools.len(), 7, "three pages: {tools:?}");

    let looping = peers::mcp_misbehaving("repeat-cursor");
    let s = connect(&streamable(looping.port, "/", Headers::new()))
        .await
        .unwrap();
    let started = Instant::now();
    let e = s.list_tools(T).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol);
    assert!(e.message.contains("repeated the cursor"), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_within_the_deadline() {
    let silent = peers::mcp_misbehaving("silent");
    let s = connect(&streamable(silent.port, "/", Headers::new()))
        .await
        .unwrap();
    let started = Instant::now();
    let e = s.list_tools(Duration::from_millis(800)).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout, "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(2));

    let endpoint = misbehaving_stdio("silent");
    let s = connect(&endpoint).await.unwrap();
    let e = s
        .call_tool("tool1", None, Duration::from_millis(800))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout, "{e:?}");
}

#[tokio::test]
async fn fifty_megabytes_are_refused_over_http_and_stdio() {
    let huge = peers::mcp_misbehaving("huge");
    let s = connect(&streamable(huge.port, "/", Headers::new()))
        .await
        .unwrap();
    let e = s.call_tool("tool1", None, T).await.unwrap_err();
    assert!(e.message.contains("larger than"), "{e:?}");

    let endpoint = misbehaving_stdio("huge");
    let s = connect(&endpoint).await.unwrap();
    let e = s.call_tool("tool1", None, T).await.unwrap_err();
    assert!(e.message.contains("larger than"), "{e:?}");
}

#[tokio::test]
async fn a_server_that_dies_mid_call_is_a_clear_error_and_leaves_no_process() {
    let dying = peers::mcp_misbehaving("die");
    let s = connect(&streamable(dying.port, "/", Headers::new()))
        .await
        .unwrap();
    let e = s.call_tool("tool1", None, T).await.unwrap_err();
    assert_ne!(e.kind, ErrorKind::Timeout, "{e:?}");

    let endpoint = misbehaving_stdio("die");
    let s = connect(&endpoint).await.unwrap();
    let pid = s.process_id().unwrap();
    let started = Instant::now();
    let e = s.call_tool("tool1", None, T).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(e.message.contains("closed"), "{e:?}");
    assert!(
        e.message.contains("dying in the middle"),
        "stderr kept: {e:?}"
    );
    drop(s);
    assert!(reaped(pid).await, "process {pid} left behind");
}

#[tokio::test]
async fn a_stdio_server_is_killed_with_its_session() {
    let entry = peers::everything_entry();
    let s = connect(&stdio("node", &[entry.to_str().unwrap(), "stdio"]))
        .await
        .unwrap();
    let pid = s.process_id().unwrap();
    assert!(alive(pid));
    drop(s);
    assert!(reaped(pid).await, "process {pid} left behind");
}

/// Whether the process exists (a zombie counts: it was not reaped).
fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

async fn reaped(pid: u32) -> bool {
    for _ in 0..50 {
        if !alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}
