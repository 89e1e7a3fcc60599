//! A local HTTP upstream that echoes what it received — method, path, query, every header and
//! the body — and records it, with scripted answers per path for retry and refusal tests:
//! - a queue of statuses (with optional `Retry-After`) per path, answered in order;
//! - bearer tokens it refuses (401), or `*` for all;
//! - `/slow/…` waits two seconds; `/big/N` answers N bytes; `/chunked/N` answers N bytes in
//!   64 KiB chunks without declaring the length;
//! - `/redirect` answers 302 to `/landed` with the request's query; `/reflect` answers the
//!   request's `Authorization` and query in headers and body.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One request as the upstream saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Default)]
struct State {
    seen: Vec<Seen>,
    scripts: HashMap<String, VecDeque<(u16, Option<&'static str>)>>,
    refused: Vec<String>,
}

#[derive(Clone)]
pub struct Upstream {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl Upstream {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let app = axum::Router::new().fallback(move |req: Request| {
            let shared = shared.clone();
            async move { answer(shared, req).await }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, state }
    }

    /// Answers the next requests to `path` with these statuses (and `Retry-After` values).
    pub fn script(&self, path: &str, answers: &[(u16, Option<&'static str>)]) {
        self.state
            .lock()
            .unwrap()
            .scripts
            .insert(path.to_owned(), answers.iter().copied().collect());
    }

    /// Refuses this bearer token (or every token, with `*`).
    pub fn refuse(&self, token: &str) {
        self.state.lock().unwrap().refused.push(token.to_owned());
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    pub fn last(&self) -> Seen {
        self.seen().pop().expect("the upstream saw no request")
    }

    pub fn count(&self, path: &str) -> usize {
        self.seen().iter().filter(|s| s.path == path).count()
    }
}

async fn answer(state: Arc<Mutex<State>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 64 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let seen = Seen {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers.clone(),
        body: body.clone(),
    };
    let (scripted, refused) = {
        let mut s = state.lock().unwrap();
        s.seen.push(seen.clone());
        let scripted = s.scripts.get_mut(&seen.path).and_then(VecDeque::pop_front);
        let auth = seen.header("authorization").unwrap_or_default().to_owned();
        let refused = s
            .refused
            .iter()
            .any(|t| t == "*" || auth == format!("Bearer {t}"));
        (scripted, refused)
    };
    if refused {
        return (StatusCode::UNAUTHORIZED, "refused").into_response();
    }
    if let Some((status, retry_after)) = scripted {
        let mut r = (
            StatusCode::from_u16(status).unwrap(),
            format!("scripted {status}"),
        )
            .into_response();
        if let Some(ra) = retry_after {
            r.headers_mut().insert("retry-after", ra.parse().unwrap());
        }
        return r;
    }
    // A redirect that carries the request's query along, and an answer that reflects the
    // credentials in its headers: what an upstream may echo back to a caller.
    if seen.path == "/redirect" {
        let to = format!("/landed?{}", seen.query.clone().unwrap_or_default());
        return (StatusCode::FOUND, [("location", to)], "moved").into_response();
    }
    if seen.path == "/reflect" {
        let auth = seen.header("authorization").unwrap_or_default().to_owned();
        let query = seen.query.clone().unwrap_or_default();
        return (
            StatusCode::OK,
            [("x-reflect", auth.clone()), ("x-query", query.clone())],
            format!("auth={auth} query={query}"),
        )
            .into_response();
    }
    if seen.path.starts_with("/slow/") {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
    if let Some(n) = seen.path.strip_prefix("/big/") {
        let n: usize = n.parse().unwrap_or(0);
        return (StatusCode::OK, vec![b'x'; n]).into_response();
    }
    if let Some(n) = seen.path.strip_prefix("/chunked/") {
        let n: usize = n.parse().unwrap_or(0);
        let chunks = (0..n.div_ceil(65_536)).map(move |i| {
            let len = (n - i * 65_536).min(65_536);
            Ok::<_, std::io::Error>(Bytes::from(vec![b'y'; len]))
        });
        return axum::body::Body::from_stream(futures::stream::iter(chunks)).into_response();
    }
    let headers: serde_json::Map<String, Value> = seen
        .headers
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or("<binary>"))))
        .collect();
    let mut r = axum::Json(json!({
        "method": seen.method,
        "path": seen.path,
        "query": seen.query,
        "headers": headers,
        "body": String::from_utf8_lossy(&seen.body),
    }))
    .into_response();
    // Hop-by-hop headers the proxy must not pass back.
    r.headers_mut()
        .insert("keep-alive", "timeout=5".parse().unwrap());
    r.headers_mut()
        .insert("x-upstream", "echo".parse().unwrap());
    r
}
