//! `mcp-bench serve PORT`: an MCP server (rmcp, Streamable HTTP at /mcp, sessions, JSON
//! answers) whose one tool, `echo`, answers its `text` at once.
//!
//! `mcp-bench load URL TOOL SESSIONS SECONDS [TOKEN]`: opens SESSIONS client sessions
//! (`initialize`, 2025-11-25) and calls TOOL in a loop on each for SECONDS; prints
//! `{"calls", "calls_per_s", "p50_us", "p99_us", "errors"}`.
//!
//! `mcp-bench forward PORT UPSTREAM_URL`: the least an MCP gateway does, as a yardstick: every
//! request to /mcp passed to UPSTREAM_URL as it came (method, body, the MCP headers), every
//! answer back as it came; no parsing, no auth, no audit.
//!
//! `mcp-bench idle URL COUNT TOKEN`: starts COUNT gateway sessions (`initialize` only) and
//! leaves them open; prints how many were started.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ClientCapabilities, ClientConfig,
    ContentBlock, Implementation, ListToolsResult, PaginatedRequestParams, ProtocolVersion,
    ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, RequestContext};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Map, Value, json};

#[derive(Clone)]
struct Echo;

impl ServerHandler for Echo {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let schema = json!({"type": "object", "properties": {"text": {"type": "string"}}});
        let Value::Object(schema) = schema else {
            unreachable!()
        };
        Ok(ListToolsResult::with_all_items(vec![Tool::new(
            "echo",
            "Answers its text.",
            Arc::new(schema),
        )]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let text = request
            .arguments
            .as_ref()
            .and_then(|a| a.get("text"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        Ok(CallToolResponse::Complete(CallToolResult::success(vec![
            ContentBlock::text(text),
        ])))
    }
}

async fn serve(port: u16) {
    let mut config = StreamableHttpServerConfig::default();
    config.json_response = true;
    config.sse_keep_alive = None;
    let service = StreamableHttpService::new(
        || Ok(Echo),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let app = axum::Router::new().nest_service("/mcp", service);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind");
    println!("READY");
    // Answers leave at once (no Nagle delay waiting for the client's delayed ACK).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await.expect("serve");
}

async fn forward(port: u16, upstream: String) {
    use axum::body::Bytes;
    use axum::http::{HeaderMap, Method, StatusCode};
    use axum::response::IntoResponse;
    let client = reqwest::Client::new();
    let handler = move |method: Method, headers: HeaderMap, body: Bytes| {
        let client = client.clone();
        let upstream = upstream.clone();
        async move {
            let mut req = client.request(method, &upstream).body(body);
            for name in [
                "content-type",
                "accept",
                "mcp-session-id",
                "mcp-protocol-version",
                "mcp-method",
                "mcp-name",
                "last-event-id",
            ] {
                if let Some(v) = headers.get(name) {
                    req = req.header(name, v);
                }
            }
            let Ok(answer) = req.send().await else {
                return StatusCode::BAD_GATEWAY.into_response();
            };
            let status = answer.status();
            let mut out = HeaderMap::new();
            for name in ["content-type", "mcp-session-id"] {
                if let Some(v) = answer.headers().get(name) {
                    out.insert(name, v.clone());
                }
            }
            let body = answer.bytes().await.unwrap_or_default();
            (status, out, body).into_response()
        }
    };
    let app = axum::Router::new().route("/mcp", axum::routing::any(handler));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind");
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    println!("READY");
    axum::serve(listener, app).await.expect("serve");
}

fn client_info() -> ClientConfig {
    ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("mcp-bench", "1.0.0"),
    )
}

async fn session(
    url: &str,
    token: Option<&str>,
) -> Result<rmcp::service::RunningService<rmcp::RoleClient, ClientConfig>, String> {
    let mut config = StreamableHttpClientTransportConfig::with_uri(url);
    if let Some(t) = token {
        config.auth_header = Some(t.to_owned());
    }
    let transport = StreamableHttpClientTransport::with_client(reqwest::Client::new(), config);
    let mode = if std::env::var_os("MCP_BENCH_MODERN").is_some() {
        ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        }
    } else {
        ClientLifecycleMode::Initialize
    };
    client_info()
        .serve_with_lifecycle(transport, mode)
        .await
        .map_err(|e| e.to_string())
}

async fn load(url: String, tool: String, sessions: usize, seconds: u64, token: Option<String>) {
    let mut clients = Vec::new();
    for _ in 0..sessions {
        clients.push(session(&url, token.as_deref()).await.expect("session"));
    }
    let until = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for client in clients {
        let tool = tool.clone();
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            let mut arguments = Map::new();
            arguments.insert("text".into(), json!("hello"));
            while Instant::now() < until {
                let mut params = CallToolRequestParams::new(tool.clone());
                params.arguments = Some(arguments.clone());
                let t = Instant::now();
                match client.call_tool(params).await {
                    Ok(r) if r.is_error != Some(true) => latencies.push(t.elapsed()),
                    _ => errors += 1,
                }
            }
            let _ = client.cancel().await;
            (latencies, errors)
        });
    }
    let mut all = Vec::new();
    let mut errors = 0;
    while let Some(done) = tasks.join_next().await {
        let (l, e) = done.expect("task");
        all.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    let at = |q: f64| {
        all.get(((all.len() as f64 * q) as usize).min(all.len().saturating_sub(1)))
            .map_or(0, |d| d.as_micros())
    };
    println!(
        "{}",
        json!({
            "calls": all.len(),
            "calls_per_s": all.len() as f64 / elapsed,
            "p50_us": at(0.50),
            "p99_us": at(0.99),
            "errors": errors,
        })
    );
}

async fn idle(url: String, count: usize, token: String) {
    let http = reqwest::Client::new();
    let mut started = 0;
    for i in 0..count {
        let body = json!({"jsonrpc": "2.0", "id": i, "method": "initialize", "params": {
            "protocolVersion": ProtocolVersion::V_2025_11_25, "capabilities": {},
            "clientInfo": {"name": "mcp-bench", "version": "1"}}});
        let r = http
            .post(&url)
            .bearer_auth(&token)
            .header("Accept", "application/json, text/event-stream")
            .json(&body)
            .send()
            .await
            .expect("initialize");
        if r.headers().contains_key("mcp-session-id") {
            started += 1;
        }
    }
    println!("{}", json!({"sessions": started}));
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") => serve(args[1].parse().expect("port")).await,
        Some("load") => {
            load(
                args[1].clone(),
                args[2].clone(),
                args[3].parse().expect("sessions"),
                args[4].parse().expect("seconds"),
                args.get(5).cloned(),
            )
            .await;
        }
        Some("forward") => forward(args[1].parse().expect("port"), args[2].clone()).await,
        Some("idle") => idle(args[1].clone(), args[2].parse().expect("count"), args[3].clone()).await,
        _ => {
            eprintln!("usage: mcp-bench serve PORT | forward PORT UPSTREAM_URL | load URL TOOL SESSIONS SECONDS [TOKEN] | idle URL COUNT TOKEN");
            std::process::exit(2);
        }
    }
}
