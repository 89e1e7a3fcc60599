//! The upstream client's connection pool against a raw local HTTP/1.1 server that counts the
//! connections it accepts: connections are reused, one the server closed is replaced without
//! failing the request, and one whose answer was abandoned is not reused.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt as _;
use patchbay_net::{Gate, GateSettings, GatedHttp, SendBody};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::Mutex;

/// How the test server treats a connection after each answer.
#[derive(Clone, Copy)]
enum After {
    KeepOpen,
    /// Closes without announcing it (as an idle timeout would).
    Close,
}

struct Server {
    port: u16,
    accepted: Arc<AtomicUsize>,
    heads: Arc<Mutex<Vec<String>>>,
}

/// Answers each request with `body`; bounded: it stops with the test's runtime.
async fn server(after: After, body: &'static [u8]) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let heads = Arc::new(Mutex::new(Vec::new()));
    let (count, seen) = (accepted.clone(), heads.clone());
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let mut chunk = [0u8; 4096];
                    let n = match tcp.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                    buf.drain(..end + 4);
                    seen.lock().await.push(head);
                    let answer =
                        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                    if tcp.write_all(answer.as_bytes()).await.is_err()
                        || tcp.write_all(body).await.is_err()
                    {
                        return;
                    }
                    if matches!(after, After::Close) {
                        return;
                    }
                }
            });
        }
    });
    Server {
        port,
        accepted,
        heads,
    }
}

fn client() -> GatedHttp {
    let gate = Gate::new(&GateSettings {
        allow_net: vec!["127.0.0.0/8".parse().unwrap()],
        dns_servers: Vec::new(),
    })
    .unwrap();
    GatedHttp::new(gate, Duration::from_secs(5)).unwrap()
}

fn get(url: &str) -> http::Request<SendBody> {
    let body = http_body_util::Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut req = http::Request::new(body);
    *req.uri_mut() = url.parse().unwrap();
    req
}

async fn fetch(http: &GatedHttp, url: &str) -> Bytes {
    let resp = http
        .upstream()
        .send(get(url), Duration::from_secs(5))
        .await
        .expect("answered");
    assert_eq!(resp.status(), 200);
    resp.into_body().collect().await.unwrap().to_bytes()
}

#[tokio::test]
async fn connections_are_reused_and_requests_go_out_in_origin_form() {
    let up = server(After::KeepOpen, b"ok").await;
    let http = client();
    for _ in 0..5 {
        let url = format!("http://127.0.0.1:{}/items?page=2", up.port);
        assert_eq!(fetch(&http, &url).await.as_ref(), b"ok");
    }
    assert_eq!(
        up.accepted.load(Ordering::SeqCst),
        1,
        "one connection for all five"
    );
    let heads = up.heads.lock().await;
    assert_eq!(heads.len(), 5);
    let first = heads[0].to_ascii_lowercase();
    assert!(
        first.starts_with("get /items?page=2 http/1.1\r\n"),
        "{first}"
    );
    assert!(
        first.contains(&format!("\r\nhost: 127.0.0.1:{}", up.port)),
        "{first}"
    );
    assert!(first.contains("\r\nuser-agent: patchbay/"), "{first}");
}

#[tokio::test]
async fn a_connection_the_server_closed_is_replaced() {
    let up = server(After::Close, b"fine").await;
    let http = client();
    for round in 1..=3 {
        let url = format!("http://127.0.0.1:{}/", up.port);
        assert_eq!(fetch(&http, &url).await.as_ref(), b"fine", "round {round}");
        // Let the client notice the close before the next request.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(up.accepted.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_connection_whose_answer_was_abandoned_is_not_reused() {
    static BIG: [u8; 1 << 20] = [b'x'; 1 << 20];
    let up = server(After::KeepOpen, &BIG).await;
    let http = client();
    let url = format!("http://127.0.0.1:{}/", up.port);
    // Only the head is read, then the answer is dropped.
    let resp = http
        .upstream()
        .send(get(&url), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    drop(resp);
    assert_eq!(fetch(&http, &url).await.len(), 1 << 20);
    assert_eq!(
        up.accepted.load(Ordering::SeqCst),
        2,
        "the abandoned one was not lent again"
    );
    // Read to its end, the second connection serves the next request.
    assert_eq!(fetch(&http, &url).await.len(), 1 << 20);
    assert_eq!(up.accepted.load(Ordering::SeqCst), 2);
}
