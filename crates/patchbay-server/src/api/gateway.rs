//! `ANY /mcp` and `ANY /mcp/c/{connection}`: Patchbay as an MCP server over Streamable HTTP.
//! `/mcp` offers the tools of every active MCP connection the caller's token sees, named
//! `{connection}__{tool}`; `/mcp/c/{connection}` one connection's, under their own names.
//!
//! Both protocol eras: a request whose `_meta` names 2026-07-28 is served statelessly (its
//! `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name` headers checked against its body);
//! otherwise `initialize` starts a session (`Mcp-Session-Id`, kept in the store, so any replica
//! continues it) and `DELETE` ends it. Patchbay tokens are the bearer; an `Origin` must be this
//! deployment's (DNS rebinding). Answers are single JSON objects, except a tool call that asks
//! for progress (or any of the session era, when the caller accepts events): an SSE stream of
//! the upstream's notifications (progress, log messages), then the result. A call runs in a
//! task of its own: the caller's going away or its `notifications/cancelled` cancels it
//! upstream, and it is audited either way.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Json, Router};
use base64::Engine as _;
use futures::StreamExt as _;
use patchbay_domain::{ConnectionId, Principal};
use patchbay_engine::EngineError;
use serde_json::{Map, Value, json};

use tokio_util::sync::CancellationToken;

use crate::extract::bearer;
use crate::startup::AppState;

/// The stateless revision.
const MODERN: &str = "2026-07-28";
/// The session era's revisions this server speaks, newest first.
const LEGACY: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26"];

const SESSION: &str = "mcp-session-id";
const VERSION: &str = "mcp-protocol-version";
const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";

// JSON-RPC and MCP error codes.
const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;
const INTERNAL: i64 = -32603;
const HEADER_MISMATCH: i64 = -32020;
const UNSUPPORTED_VERSION: i64 = -32022;
/// The token may not do this (a viewer calling a tool): outside JSON-RPC's reserved range.
const FORBIDDEN: i64 = -31003;
/// Too many requests: `data.retry_after` says when to try again.
const RATE_LIMITED: i64 = -31029;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/mcp", any(every_connection))
        .route("/mcp/c/{connection}", any(one_connection))
}

async fn every_connection(
    State(s): State<AppState>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(&s, None, method, &headers, &body).await
}

async fn one_connection(
    State(s): State<AppState>,
    Path(connection): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(id) = connection.parse::<ConnectionId>() else {
        return rpc_error(
            StatusCode::NOT_FOUND,
            Value::Null,
            INVALID_PARAMS,
            "no such connection",
        );
    };
    serve(&s, Some(&id), method, &headers, &body).await
}

/// A JSON-RPC error answer with `status`.
fn rpc_error(status: StatusCode, id: Value, code: i64, message: &str) -> Response {
    rpc_error_data(status, id, code, message, None)
}

fn rpc_error_data(
    status: StatusCode,
    id: Value,
    code: i64,
    message: &str,
    data: Option<Value>,
) -> Response {
    (status, Json(error_value(id, code, message, data))).into_response()
}

/// A JSON-RPC error message.
fn error_value(id: Value, code: i64, message: &str, data: Option<Value>) -> Value {
    let mut error = json!({"code": code, "message": message});
    if let Some(d) = data {
        error["data"] = d;
    }
    json!({"jsonrpc": "2.0", "id": id, "error": error})
}

/// A JSON-RPC result message; a modern one says its `resultType`.
fn result_value(id: Value, mut result: Value, result_type: Option<&str>) -> Value {
    if let (Some(t), Some(obj)) = (result_type, result.as_object_mut()) {
        obj.insert("resultType".into(), Value::String(t.into()));
    }
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// Whether `origin` is this deployment's (scheme, host and port of the public URL), or a
/// loopback origin when the deployment itself is on loopback.
fn same_origin(public_url: &str, origin: &str) -> bool {
    let (Ok(public), Ok(origin)) = (url::Url::parse(public_url), url::Url::parse(origin)) else {
        return false;
    };
    if public.origin() == origin.origin() {
        return true;
    }
    let loopback = |u: &url::Url| matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    loopback(&public)
        && loopback(&origin)
        && public.port_or_known_default() == origin.port_or_known_default()
}

/// What every request of the gateway is served with.
#[derive(Clone, Copy)]
struct Ctx<'a> {
    s: &'a AppState,
    p: &'a Principal,
    /// `/mcp/c/{connection}`'s connection.
    only: Option<&'a ConnectionId>,
    headers: &'a HeaderMap,
}

async fn serve(
    s: &AppState,
    only: Option<&ConnectionId>,
    method: Method,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or_default();
        if !same_origin(s.hub.public_url(), origin) {
            return rpc_error(
                StatusCode::FORBIDDEN,
                Value::Null,
                INVALID_REQUEST,
                "this Origin may not reach the MCP endpoint",
            );
        }
    }
    let principal = match bearer(headers) {
        Ok(token) => s.hub.authenticate(token).await,
        Err(e) => Err(e),
    };
    let p = match principal {
        Ok(p) => p,
        Err(EngineError::Unauthenticated) => return unauthenticated(s),
        Err(e) => return engine_error(Value::Null, e),
    };
    let ctx = Ctx {
        s,
        p: &p,
        only,
        headers,
    };
    match method {
        Method::POST => post(ctx, body).await,
        Method::DELETE => {
            let Some(id) = headers.get(SESSION).and_then(|v| v.to_str().ok()) else {
                return rpc_error(
                    StatusCode::BAD_REQUEST,
                    Value::Null,
                    INVALID_REQUEST,
                    "no Mcp-Session-Id to end",
                );
            };
            match s.hub.gateway_session_end(&p, id).await {
                Ok(true) => StatusCode::NO_CONTENT.into_response(),
                Ok(false) => rpc_error(
                    StatusCode::NOT_FOUND,
                    Value::Null,
                    INVALID_REQUEST,
                    "no such session",
                ),
                Err(e) => engine_error(Value::Null, e),
            }
        }
        _ => {
            let mut r = rpc_error(
                StatusCode::METHOD_NOT_ALLOWED,
                Value::Null,
                INVALID_REQUEST,
                "POST a JSON-RPC message (this server opens no stream of its own)",
            );
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST, DELETE"));
            r
        }
    }
}

/// 401 with the challenge MCP clients read.
fn unauthenticated(s: &AppState) -> Response {
    let mut r = rpc_error(
        StatusCode::UNAUTHORIZED,
        Value::Null,
        INVALID_REQUEST,
        "send a Patchbay token: Authorization: Bearer pb_…",
    );
    let challenge = format!(
        "Bearer realm=\"patchbay\", resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\"",
        s.hub.public_url().trim_end_matches('/')
    );
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}

/// An engine error as a JSON-RPC error answer.
fn engine_error(id: Value, e: EngineError) -> Response {
    let (status, code, message, data) = error_parts(e);
    rpc_error_data(status, id, code, &message, data)
}

/// An engine error as a JSON-RPC error message.
fn error_message(id: Value, e: EngineError) -> Value {
    let (_, code, message, data) = error_parts(e);
    error_value(id, code, &message, data)
}

fn error_parts(e: EngineError) -> (StatusCode, i64, String, Option<Value>) {
    match e {
        EngineError::Forbidden(m) => (StatusCode::OK, FORBIDDEN, m, None),
        EngineError::NotFound(what) => (
            StatusCode::OK,
            INVALID_PARAMS,
            format!("{what} not found"),
            None,
        ),
        EngineError::RateLimited(secs) => (
            StatusCode::OK,
            RATE_LIMITED,
            format!("too many requests: retry in {secs} s"),
            Some(json!({"retry_after": secs})),
        ),
        EngineError::Validation(errs) => {
            let fields: Vec<Value> = errs
                .errors()
                .iter()
                .map(|f| json!({"field": f.field, "reason": f.reason}))
                .collect();
            (
                StatusCode::OK,
                INVALID_PARAMS,
                "invalid arguments".into(),
                Some(json!(fields)),
            )
        }
        EngineError::Unauthenticated => (
            StatusCode::UNAUTHORIZED,
            INVALID_REQUEST,
            "the token is not valid".into(),
            None,
        ),
        other => {
            tracing::warn!(error = %other, "an MCP gateway request failed");
            (
                StatusCode::OK,
                INTERNAL,
                "the request could not be served".into(),
                None,
            )
        }
    }
}

/// A value as a header carries it, the Base64 sentinel form decoded.
fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    let raw = headers.get(name)?.to_str().ok()?;
    match raw
        .strip_prefix("=?base64?")
        .and_then(|r| r.strip_suffix("?="))
    {
        Some(b64) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .ok()
            .and_then(|b| String::from_utf8(b).ok()),
        None => Some(raw.to_owned()),
    }
}

async fn post(ctx: Ctx<'_>, body: &[u8]) -> Response {
    let Ctx {
        s,
        p,
        only,
        headers,
    } = ctx;
    let Ok(Value::Object(msg)) = serde_json::from_slice::<Value>(body) else {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            Value::Null,
            PARSE_ERROR,
            "the body is not a JSON-RPC message",
        );
    };
    let id = msg.get("id").cloned();
    let Some(method) = msg.get("method").and_then(Value::as_str) else {
        // A client's answer to a request this server never sends, or nonsense.
        if msg.contains_key("result") || msg.contains_key("error") {
            return StatusCode::ACCEPTED.into_response();
        }
        return rpc_error(
            StatusCode::BAD_REQUEST,
            id.unwrap_or_default(),
            INVALID_REQUEST,
            "no method",
        );
    };
    let Some(id) = id.filter(|i| !i.is_null()) else {
        // A notification: nothing to answer. A cancelled call is cancelled upstream too.
        if method == "notifications/cancelled" {
            cancel_call(p, msg.get("params"));
        }
        return StatusCode::ACCEPTED.into_response();
    };
    let params = msg
        .get("params")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let modern = params
        .get("_meta")
        .and_then(|m| m.get(META_VERSION))
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Some(version) = modern {
        return modern_request(ctx, id, method, &params, &version).await;
    }
    if method == "initialize" {
        let asked = params
            .get("protocolVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let version = LEGACY
            .iter()
            .find(|v| **v == asked)
            .copied()
            .unwrap_or(LEGACY[0]);
        let session = match s.hub.gateway_session_start(p, version).await {
            Ok(sid) => sid,
            Err(e) => return engine_error(id, e),
        };
        let result = json!({
            "protocolVersion": version,
            "capabilities": {"tools": {"listChanged": false}, "logging": {}},
            "serverInfo": server_info(),
            "instructions": instructions(only),
        });
        let mut r = Json(json!({"jsonrpc": "2.0", "id": id, "result": result})).into_response();
        if let Ok(v) = HeaderValue::from_str(&session) {
            r.headers_mut().insert(SESSION, v);
        }
        return r;
    }
    if method == "server/discover" {
        return listing(id, discover(only), Some("complete"));
    }
    let Some(session) = headers.get(SESSION).and_then(|v| v.to_str().ok()) else {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            id,
            INVALID_REQUEST,
            "no Mcp-Session-Id: start with initialize, or send the 2026-07-28 _meta",
        );
    };
    match s.hub.gateway_session(p, session).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            return rpc_error(
                StatusCode::NOT_FOUND,
                id,
                INVALID_REQUEST,
                "the session ended; initialize again",
            );
        }
        Err(e) => return engine_error(id, e),
    }
    dispatch(ctx, id, method, &params, None).await
}

/// A request of the stateless revision: its version supported, its headers matching its body.
async fn modern_request(
    ctx: Ctx<'_>,
    id: Value,
    method: &str,
    params: &Map<String, Value>,
    version: &str,
) -> Response {
    let headers = ctx.headers;
    if version != MODERN {
        return rpc_error_data(
            StatusCode::BAD_REQUEST,
            id,
            UNSUPPORTED_VERSION,
            "Unsupported protocol version",
            Some(json!({"supported": [MODERN], "requested": version})),
        );
    }
    let mismatch = |what: &str| {
        rpc_error(
            StatusCode::BAD_REQUEST,
            id.clone(),
            HEADER_MISMATCH,
            &format!("Header mismatch: {what}"),
        )
    };
    if header_text(headers, VERSION).as_deref() != Some(version) {
        return mismatch("MCP-Protocol-Version does not match _meta");
    }
    if header_text(headers, "mcp-method").as_deref() != Some(method) {
        return mismatch("Mcp-Method does not match the method");
    }
    if method == "tools/call" {
        let name = params.get("name").and_then(Value::as_str);
        if name.is_none() || header_text(headers, "mcp-name").as_deref() != name {
            return mismatch("Mcp-Name does not match params.name");
        }
    }
    dispatch(ctx, id, method, params, Some("complete")).await
}

/// A tool call as the caller asked it.
struct Call {
    name: String,
    arguments: Option<Map<String, Value>>,
    caller: Option<String>,
    /// The caller's `_meta.progressToken`: progress is relayed under it.
    progress: Option<Value>,
}

fn accepts_events(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/event-stream"))
}

/// The calls in flight on this process, by caller and request id, for
/// `notifications/cancelled`.
type InFlight = std::sync::Mutex<std::collections::HashMap<(String, String), CancellationToken>>;

fn in_flight() -> &'static InFlight {
    static CALLS: std::sync::OnceLock<InFlight> = std::sync::OnceLock::new();
    CALLS.get_or_init(Default::default)
}

fn flight_key(p: &Principal, id: &Value) -> (String, String) {
    (p.token_id.to_string(), id.to_string())
}

/// `notifications/cancelled`: cancels the caller's call of that request id (on this process).
fn cancel_call(p: &Principal, params: Option<&Value>) {
    let Some(request) = params.and_then(|p| p.get("requestId")) else {
        return;
    };
    let calls = in_flight()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(token) = calls.get(&flight_key(p, request)) {
        token.cancel();
    }
}

/// Runs a tool call in a task of its own, so that it is audited however the caller goes; the
/// caller's going (its connection closed) or its `notifications/cancelled` cancels it, which
/// cancels the upstream request. With `streams`, the call's notifications (progress under the
/// caller's token, log messages) are relayed: a call that sends any is answered with an SSE
/// stream of them and then its result; one that sends none, with its result as JSON.
async fn relayed_call(
    ctx: Ctx<'_>,
    id: Value,
    call: Call,
    streams: bool,
    result_type: Option<&str>,
) -> Response {
    let (notes_tx, mut notes_rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let (out_tx, out_rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let cancel = CancellationToken::new();
    let key = flight_key(ctx.p, &id);
    in_flight()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(key.clone(), cancel.clone());
    let hub = ctx.s.hub.clone();
    let p = ctx.p.clone();
    let only = ctx.only.cloned();
    let result_type = result_type.map(str::to_owned);
    let relay = patchbay_engine::Relay {
        notes: streams.then_some(notes_tx),
        cancel: Some(cancel.clone()),
    };
    let progress = call.progress.clone();
    tokio::spawn(async move {
        let forward = |note: Value| {
            let mut note = note;
            if note["method"] == "notifications/progress" {
                let Some(token) = &progress else { return };
                note["params"]["progressToken"] = token.clone();
            }
            note["jsonrpc"] = json!("2.0");
            let _ = out_tx.send(note);
        };
        let run = hub.gateway_call(
            &p,
            only.as_ref(),
            &call.name,
            call.arguments,
            call.caller,
            relay,
        );
        tokio::pin!(run);
        let outcome = loop {
            tokio::select! {
                biased;
                Some(note) = notes_rx.recv() => forward(note),
                outcome = &mut run => break outcome,
            }
        };
        while let Ok(note) = notes_rx.try_recv() {
            forward(note);
        }
        in_flight()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&key);
        let _ = out_tx.send(call_answer(id, &call.name, outcome, result_type.as_deref()));
    });
    let guard = cancel.drop_guard();
    let mut out_rx = out_rx;
    // The first message decides the answer: the result itself goes back as JSON; a
    // notification before it (only relayed to a caller that accepts events) starts an SSE
    // stream that carries it, the rest, then the result.
    match out_rx.recv().await {
        Some(note) if note.get("method").is_some() => {
            let first = futures::stream::once(std::future::ready(note));
            let rest = futures::stream::unfold((out_rx, guard), |(mut rx, guard)| async move {
                let message = rx.recv().await?;
                Some((message, (rx, guard)))
            });
            let events = first.chain(rest).map(|message| {
                Ok::<_, std::convert::Infallible>(
                    axum::response::sse::Event::default()
                        .event("message")
                        .data(message.to_string()),
                )
            });
            axum::response::sse::Sse::new(events).into_response()
        }
        Some(m) => {
            guard.disarm();
            Json(m).into_response()
        }
        None => {
            guard.disarm();
            rpc_error(
                StatusCode::OK,
                Value::Null,
                INTERNAL,
                "the call ended without an answer",
            )
        }
    }
}

/// The JSON-RPC answer of a finished call.
fn call_answer(
    id: Value,
    name: &str,
    outcome: Result<Option<patchbay_domain::actions::McpActionResult>, EngineError>,
    result_type: Option<&str>,
) -> Value {
    let result = |result: Value| result_value(id.clone(), result, result_type);
    match outcome {
        Ok(Some(r)) => result(serde_json::to_value(r).unwrap_or_default()),
        Ok(None) => error_value(
            id.clone(),
            INVALID_PARAMS,
            &format!("Unknown tool: {name}"),
            None,
        ),
        // The upstream failed: a tool execution error the model can read.
        Err(
            e @ (EngineError::Upstream(_)
            | EngineError::Timeout(_)
            | EngineError::Blocked(_)
            | EngineError::Conflict(_)),
        ) => result(json!({"content": [{"type": "text", "text": e.to_string()}], "isError": true})),
        Err(e) => error_message(id, e),
    }
}

fn server_info() -> Value {
    json!({"name": "patchbay", "title": "Patchbay MCP gateway", "version": env!("CARGO_PKG_VERSION")})
}

fn instructions(only: Option<&ConnectionId>) -> &'static str {
    match only {
        Some(_) => "The tools of one Patchbay MCP connection, under their own names.",
        None => "The tools of your Patchbay MCP connections, each named connection__tool.",
    }
}

fn discover(only: Option<&ConnectionId>) -> Value {
    json!({
        "supportedVersions": [MODERN],
        "capabilities": {"tools": {"listChanged": false}},
        "_meta": {"io.modelcontextprotocol/serverInfo": server_info()},
        "instructions": instructions(only),
    })
}

/// A result answer; a modern one says its `resultType`.
fn answer(id: Value, result: Value, result_type: Option<&str>) -> Response {
    Json(result_value(id, result, result_type)).into_response()
}

/// A listing's answer; a modern one also says how long it may be cached, and by whom: not at
/// all, and only by this caller (what a token sees is its own).
fn listing(id: Value, mut result: Value, result_type: Option<&str>) -> Response {
    if let (Some(_), Some(obj)) = (result_type, result.as_object_mut()) {
        obj.insert("ttlMs".into(), json!(0));
        obj.insert("cacheScope".into(), json!("private"));
    }
    answer(id, result, result_type)
}

async fn dispatch(
    ctx: Ctx<'_>,
    id: Value,
    method: &str,
    params: &Map<String, Value>,
    result_type: Option<&str>,
) -> Response {
    let Ctx {
        s,
        p,
        only,
        headers,
    } = ctx;
    match method {
        "ping" => answer(id, json!({}), result_type),
        "server/discover" => listing(id, discover(only), result_type),
        "tools/list" => match s.hub.gateway_tools(p, only).await {
            Ok(tools) => {
                let tools: Vec<Value> = tools.iter().map(|t| t.definition.clone()).collect();
                listing(id, json!({"tools": tools}), result_type)
            }
            Err(e) => engine_error(id, e),
        },
        "tools/call" => {
            let Some(name) = params.get("name").and_then(Value::as_str) else {
                return rpc_error(
                    StatusCode::OK,
                    id,
                    INVALID_PARAMS,
                    "params.name names the tool",
                );
            };
            let arguments = match params.get("arguments") {
                None | Some(Value::Null) => None,
                Some(Value::Object(a)) => Some(a.clone()),
                Some(_) => {
                    return rpc_error(
                        StatusCode::OK,
                        id,
                        INVALID_PARAMS,
                        "params.arguments must be an object",
                    );
                }
            };
            let call = Call {
                name: name.to_owned(),
                arguments,
                caller: crate::api::actions::caller(headers).ok().flatten(),
                progress: params
                    .get("_meta")
                    .and_then(|m| m.get("progressToken"))
                    .filter(|t| t.is_string() || t.is_number())
                    .cloned(),
            };
            let streams =
                accepts_events(headers) && (call.progress.is_some() || result_type.is_none());
            relayed_call(ctx, id, call, streams, result_type).await
        }
        "logging/setLevel" => answer(id, json!({}), result_type),
        "resources/list" => listing(id, json!({"resources": []}), result_type),
        "prompts/list" => listing(id, json!({"prompts": []}), result_type),
        _ => rpc_error(
            if result_type.is_some() {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::OK
            },
            id,
            METHOD_NOT_FOUND,
            &format!("Method not found: {method}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::same_origin;

    #[test]
    fn only_this_deployments_origin_passes() {
        let public = "https://hub.example.com";
        assert!(same_origin(public, "https://hub.example.com"));
        assert!(!same_origin(public, "https://evil.example.com"));
        assert!(!same_origin(public, "http://hub.example.com"));
        assert!(!same_origin(public, "null"));
        let local = "http://127.0.0.1:8750";
        assert!(same_origin(local, "http://localhost:8750"));
        assert!(!same_origin(local, "http://localhost:9999"));
        assert!(!same_origin(local, "http://rebound.example.com:8750"));
    }
}
