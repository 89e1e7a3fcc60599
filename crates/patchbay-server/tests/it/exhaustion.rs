//! Clients that try to hold the server: connections that never finish their headers, idle
//! keep-alive connections, more connections than the cap, and a body made of bad fields.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::both_backends;
use crate::helpers::{Backend, TestApp, Tweak};

fn limits(header_timeout: Duration, max_connections: Option<usize>) -> Tweak {
    std::sync::Arc::new(move |s| {
        s.http.header_timeout = header_timeout;
        s.http.max_connections = max_connections;
    })
}

fn addr(app: &TestApp) -> String {
    app.url.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes the connection (or `within` passes); how long that took,
/// and what was read.
async fn until_closed(tcp: &mut TcpStream, within: Duration) -> (Option<Duration>, Vec<u8>) {
    let started = Instant::now();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = within.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (Some(started.elapsed()), seen),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
            Err(_) => return (None, seen),
        }
    }
}

async fn health(app: &TestApp) -> Value {
    reqwest::get(format!("{}/healthz", app.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn slow_and_idle_connections_are_closed_after_the_header_timeout(backend: Backend) {
    let app = TestApp::spawn_with(backend, Some(limits(Duration::from_millis(800), None))).await;
    // Silent from the start.
    let mut idle = TcpStream::connect(addr(&app)).await.unwrap();
    // Sends its request head a byte every 100 ms: it would take seconds to finish.
    let slow = TcpStream::connect(addr(&app)).await.unwrap();
    let (mut slow_in, mut slow_out) = slow.into_split();
    let dribble = tokio::spawn(async move {
        let head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
        for b in head {
            if slow_out.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let slow_closed = tokio::spawn(async move {
        let started = Instant::now();
        let mut buf = [0u8; 256];
        loop {
            match tokio::time::timeout(Duration::from_secs(5), slow_in.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
                Ok(Ok(_)) => {}
                Err(_) => return None,
            }
        }
    });
    // Kept alive after one answer, then silent.
    let mut kept = TcpStream::connect(addr(&app)).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 1024];
    let n = kept.read(&mut first).await.unwrap();
    assert!(first[..n].starts_with(b"HTTP/1.1 200"));

    let (closed, _) = until_closed(&mut idle, Duration::from_secs(5)).await;
    let closed = closed.expect("a silent connection stays open past the header timeout");
    assert!(
        closed >= Duration::from_millis(500),
        "closed too early: {closed:?}"
    );
    let (closed, _) = until_closed(&mut kept, Duration::from_secs(5)).await;
    assert!(closed.is_some(), "an idle keep-alive connection stays open");
    let closed = slow_closed.await.unwrap();
    dribble.abort();
    assert!(
        closed.is_some_and(|c| c < Duration::from_secs(3)),
        "a byte-a-tenth-second header was not cut off: {closed:?}"
    );
    // The server still answers, and counts nothing as refused.
    let h = health(&app).await;
    assert_eq!(h["status"], "ok");
    assert_eq!(h["connections"]["refused"], 0);
}

async fn connections_past_the_cap_are_refused_fast_and_counted(backend: Backend) {
    let cap = 8;
    let app = TestApp::spawn_with(backend, Some(limits(Duration::from_secs(30), Some(cap)))).await;
    let h = health(&app).await;
    assert_eq!(h["connections"]["limit"], cap);
    let mut held = Vec::new();
    for _ in 0..cap {
        held.push(TcpStream::connect(addr(&app)).await.unwrap());
    }
    // The held connections are accepted in turn; the next one past them is refused at once.
    let mut refused_answer = Vec::new();
    for _ in 0..50 {
        let mut extra = TcpStream::connect(addr(&app)).await.unwrap();
        let _ = extra
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await;
        let (closed, seen) = until_closed(&mut extra, Duration::from_secs(2)).await;
        if seen.starts_with(b"HTTP/1.1 503") {
            assert!(closed.is_some(), "a refused connection is closed");
            refused_answer = seen;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let text = String::from_utf8_lossy(&refused_answer);
    assert!(text.contains("Retry-After: 1"), "{text}");
    // Held connections closed, the server answers again and reports what it refused.
    drop(held);
    let started = Instant::now();
    let h = loop {
        match reqwest::get(format!("{}/healthz", app.url)).await {
            Ok(r) if r.status() == 200 => break r.json::<Value>().await.unwrap(),
            _ if started.elapsed() < Duration::from_secs(5) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => panic!("the server did not recover: {other:?}"),
        }
    };
    assert!(h["connections"]["refused"].as_u64().unwrap() >= 1, "{h}");
    assert!(
        h["connections"]["open"].as_u64().unwrap() <= cap as u64,
        "{h}"
    );
}

async fn a_megabyte_of_bad_fields_answers_a_bounded_problem(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut config = serde_json::Map::new();
    config.insert("base_url".into(), json!("https://api.example.com"));
    let mut n = 0;
    while serde_json::to_string(&config).unwrap().len() < 950 * 1024 {
        for _ in 0..1000 {
            config.insert(format!("unknown_field_{n:06}"), json!(n));
            n += 1;
        }
    }
    let body = json!({"name": "flood", "kind": "http", "config": config});
    let r = reqwest::Client::new()
        .post(format!("{}/v1/connections", app.url))
        .bearer_auth(&app.admin_token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let text = r.text().await.unwrap();
    assert!(
        text.len() < 32 * 1024,
        "a {} byte problem document",
        text.len()
    );
    let problem: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(problem["errors"].as_array().unwrap().len(), 100);
    let omitted = problem["errors_omitted"].as_u64().unwrap();
    assert_eq!(omitted as usize + 100, n, "every bad field is counted");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("more not listed"),
        "{}",
        problem["detail"]
    );
}

both_backends!(
    slow_and_idle_connections_are_closed_after_the_header_timeout,
    connections_past_the_cap_are_refused_fast_and_counted,
    a_megabyte_of_bad_fields_answers_a_bounded_problem,
);
