//! `kill -9` of the server with 10,000 webhook deliveries queued, then a restart: every
//! delivery arrives (duplicates allowed — the same `webhook-id` — and counted), none is lost.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::server::Server;

const QUEUED: usize = 10_000;
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Counts arrivals per webhook-id. While `open` is false it holds requests unanswered, so the
/// queue builds up without spending attempts.
#[derive(Clone, Default)]
struct Receiver {
    open: Arc<AtomicBool>,
    seen: Arc<Mutex<HashMap<String, u32>>>,
    bad_signatures: Arc<Mutex<u32>>,
}

impl Receiver {
    fn distinct(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

/// Standard Webhooks signature, computed here independently of Patchbay's code.
fn expected_signature(id: &str, ts: &str, body: &[u8]) -> String {
    use base64::Engine as _;
    use hmac::{Hmac, Mac};
    let key = base64::engine::general_purpose::STANDARD
        .decode(SECRET.trim_start_matches("whsec_"))
        .unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(body);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_with_ten_thousand_queued_loses_none() {
    let rx = Receiver::default();
    let shared = rx.clone();
    let app =
        axum::Router::new().fallback(move |h: axum::http::HeaderMap, body: axum::body::Bytes| {
            let rx = shared.clone();
            async move {
                let held = Instant::now();
                while !rx.open.load(Ordering::Relaxed) && held.elapsed() < Duration::from_secs(300)
                {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                let id = h["webhook-id"].to_str().unwrap().to_owned();
                let ts = h["webhook-timestamp"].to_str().unwrap();
                if h["webhook-signature"].to_str().unwrap() != expected_signature(&id, ts, &body) {
                    *rx.bad_signatures.lock().unwrap() += 1;
                }
                *rx.seen.lock().unwrap().entry(id).or_default() += 1;
                axum::http::StatusCode::NO_CONTENT
            }
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let args = ["--allow-net", "127.0.0.0/8"];
    let mut server = Server::start(&data, &args, &[]);
    let token = server.token.clone().unwrap();
    let api = patchbay_client::Client::new(&server.url, Some(token.clone())).unwrap();
    let hook = api
        .create_connection(
            &serde_json::from_value(
                json!({"name": "sink", "kind": "webhook", "auth": {"type": "hmac"},
                "config": {"url": format!("{receiver}/events")}, "secrets": {"secret": SECRET}}),
            )
            .unwrap(),
        )
        .await
        .unwrap()
        .id
        .to_string();

    // Queue 10,000 deliveries while the receiver holds its answers.
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..16 {
        let (api, hook) = (api.clone(), hook.clone());
        tasks.spawn(async move {
            let mut ids = Vec::new();
            for n in (worker..QUEUED).step_by(16) {
                let r = api
                    .webhook_action(
                        &serde_json::from_value(
                            json!({"connection": hook, "mode": "fire_and_forget",
                            "body": {"n": n}, "retry": {"attempts": 20, "backoff_ms": 100}}),
                        )
                        .unwrap(),
                    )
                    .await
                    .unwrap();
                ids.push(r.webhook_id.unwrap());
            }
            ids
        });
    }
    let mut queued = Vec::new();
    while let Some(ids) = tasks.join_next().await {
        queued.extend(ids.unwrap());
    }
    let enqueue_time = started.elapsed();
    assert_eq!(queued.len(), QUEUED);

    // Let them flow, and kill the server in the middle.
    rx.open.store(true, Ordering::Relaxed);
    let flowing = Instant::now();
    while rx.distinct() < QUEUED / 4 {
        assert!(
            flowing.elapsed() < Duration::from_secs(300),
            "deliveries do not flow:\n{}",
            server.logs()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    let at_kill = rx.distinct();
    assert!(
        at_kill < QUEUED,
        "everything arrived before the kill; nothing was tested"
    );

    server = Server::start(&data, &args, &[]);
    let restarted = Instant::now();
    while rx.distinct() < QUEUED {
        assert!(
            restarted.elapsed() < Duration::from_secs(120),
            "{} of {QUEUED} arrived after the restart:\n{}",
            rx.distinct(),
            server.logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seen = rx.seen.lock().unwrap().clone();
    for id in &queued {
        assert!(seen.contains_key(id), "{id} was lost");
    }
    let total: u32 = seen.values().sum();
    let duplicates = total as usize - QUEUED;
    assert_eq!(*rx.bad_signatures.lock().unwrap(), 0);
    // At most the deliveries in flight or awaiting their batch write at the kill repeat.
    assert!(duplicates <= 512, "{duplicates} duplicates");
    // The outbox agrees: all delivered.
    let api = patchbay_client::Client::new(&server.url, Some(token)).unwrap();
    let mut delivered = 0;
    for _ in 0..100 {
        delivered = api
            .list_deliveries("status=pending&limit=1")
            .await
            .unwrap()
            .items
            .len();
        if delivered == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(delivered, 0, "nothing left pending");
    eprintln!(
        "{QUEUED} queued in {enqueue_time:?}; {at_kill} arrived before the kill; all {QUEUED} after the restart, {duplicates} duplicates (same webhook-id)"
    );
}
