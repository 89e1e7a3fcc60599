//! Webhook actions and the durable outbox, against a local receiver whose answers the test
//! scripts; signatures are checked by the reference `standardwebhooks` package from PyPI.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use patchbay_domain::actions::WebhookAction;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, allow_loopback};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[derive(Clone, Default)]
pub(crate) struct Receiver {
    got: Arc<Mutex<Vec<(HeaderMap, String)>>>,
    /// Statuses to answer, in order; 200 once empty.
    script: Arc<Mutex<VecDeque<u16>>>,
}

impl Receiver {
    pub(crate) async fn start() -> (String, Self) {
        let r = Receiver::default();
        let shared = r.clone();
        let app = axum::Router::new().fallback(move |h: HeaderMap, body: String| {
            let shared = shared.clone();
            async move {
                shared.got.lock().unwrap().push((h, body));
                let status = shared.script.lock().unwrap().pop_front().unwrap_or(200);
                (
                    StatusCode::from_u16(status).unwrap(),
                    axum::Json(json!({"received": true})),
                )
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, r)
    }

    pub(crate) fn answer(&self, statuses: &[u16]) {
        self.script.lock().unwrap().extend(statuses);
    }

    pub(crate) fn got(&self) -> Vec<(HeaderMap, String)> {
        self.got.lock().unwrap().clone()
    }
}

/// Checks every message with the `standardwebhooks` package; one verdict line each.
pub(crate) fn verify(messages: &[(HeaderMap, String)]) -> Vec<String> {
    let input = json!({"secret": SECRET, "messages": messages.iter().map(|(h, b)| json!({
        "headers": h.iter().map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap()))).collect::<serde_json::Map<_, _>>(),
        "body": b,
    })).collect::<Vec<_>>()});
    crate::peers::python_json("verify_webhooks.py", &input)
        .lines()
        .map(str::to_owned)
        .collect()
}

pub(crate) fn action(v: Value) -> WebhookAction {
    serde_json::from_value(v).unwrap()
}

pub(crate) async fn hook(app: &TestApp, url: &str) -> String {
    app.admin
        .create_connection(
            &serde_json::from_value(json!({"name": format!("hook-{}", rand::random::<u32>()),
                "kind": "webhook", "auth": {"type": "hmac"}, "config": {"url": format!("{url}/in/secret-path-4411")},
                "secrets": {"secret": SECRET}}))
            .unwrap(),
        )
        .await
        .unwrap()
        .id
        .to_string()
}

pub(crate) async fn settled(app: &TestApp, id: &str) -> patchbay_domain::actions::Delivery {
    for _ in 0..200 {
        let d = app.admin.get_delivery(id).await.unwrap();
        if d.status == "delivered" || d.status == "failed" {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("delivery {id} never settled");
}

async fn deliveries_retry_until_delivered_once(backend: Backend) {
    let app = TestApp::spawn_with(backend, Some(allow_loopback())).await;
    let (url, rx) = Receiver::start().await;
    let id = hook(&app, &url).await;
    // Down for the first three attempts.
    rx.answer(&[503, 503, 500]);
    let r = app
        .admin
        .webhook_action(&action(json!({"connection": id, "mode": "fire_and_forget",
            "body": {"event": "invoice.paid", "amount": "{{amount}}", "who": "${user.name}"},
            "context": {"amount": 125, "user": {"name": "Ada"}}, "retry": {"attempts": 5, "backoff_ms": 50}})))
        .await
        .unwrap();
    assert_eq!(r.status, "pending");
    let delivery = r.delivery.unwrap().to_string();
    let d = settled(&app, &delivery).await;
    assert_eq!(d.status, "delivered", "{d:?}");
    assert_eq!(d.attempts, 4);
    assert_eq!(d.last_status, Some(200));
    let got = rx.got();
    assert_eq!(got.len(), 4, "three refusals, then one delivery");
    let ids: std::collections::BTreeSet<&str> = got
        .iter()
        .map(|(h, _)| h["webhook-id"].to_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 1, "the same webhook-id on every attempt");
    assert_eq!(Some(*ids.iter().next().unwrap()), r.webhook_id.as_deref());
    let body: Value = serde_json::from_str(&got[3].1).unwrap();
    assert_eq!(
        body,
        json!({"event": "invoice.paid", "amount": 125, "who": "Ada"})
    );
    let verdicts = verify(&got);
    assert!(
        verdicts.iter().all(|v| v.starts_with("ok ")),
        "{verdicts:?}"
    );
    // A tampered body fails the same verifier (the check can fail).
    let mut tampered = got[3].clone();
    tampered.1 = tampered.1.replace("125", "126");
    assert!(verify(&[tampered])[0].starts_with("bad"));

    // Down for every attempt: dead letter; a replay delivers it with the same id.
    rx.answer(&[500, 500, 500]);
    let r = app
        .admin
        .webhook_action(&action(
            json!({"connection": id, "mode": "fire-and-forget", "body": {"n": 2},
            "retryPolicy": {"attempts": 3, "backoffMs": 20}}),
        ))
        .await
        .unwrap();
    let dead = r.delivery.unwrap().to_string();
    let d = settled(&app, &dead).await;
    assert_eq!(
        (d.status.as_str(), d.attempts, d.last_status),
        ("failed", 3, Some(500))
    );
    assert!(d.last_error.unwrap().contains("500"));
    let failed = app.admin.list_deliveries("status=failed").await.unwrap();
    assert_eq!(failed.items.len(), 1);
    assert_eq!(failed.items[0].id.to_string(), dead);
    let replayed = app.admin.replay_delivery(&dead).await.unwrap();
    // Queued again (a worker may already have picked it up).
    assert!(
        ["pending", "delivering", "delivered"].contains(&replayed.status.as_str()),
        "{replayed:?}"
    );
    assert_eq!(replayed.webhook_id, d.webhook_id);
    let d = settled(&app, &dead).await;
    assert_eq!(d.status, "delivered");
    let last = rx.got().pop().unwrap();
    assert_eq!(last.0["webhook-id"].to_str().unwrap(), d.webhook_id);
    // Listing shows the receiver's host only, never the secret path or the body.
    let all = app.admin.list_deliveries("limit=10").await.unwrap();
    for bad in ["limit=0", "limit=501"] {
        assert_eq!(
            crate::helpers::err_status(app.admin.list_deliveries(bad).await),
            (422, "validation_failed".to_owned()),
            "{bad}"
        );
    }
    assert_eq!(all.items.len(), 2);
    let text = serde_json::to_string(&all).unwrap();
    assert!(
        !text.contains("secret-path-4411") && !text.contains("invoice.paid"),
        "{text}"
    );
    assert_eq!(all.items[0].target, "127.0.0.1");
    // At rest, the URL path and body are sealed.
    let pool = app.db().await;
    let payloads: Vec<Vec<u8>> = sqlx::query_scalar("SELECT payload FROM deliveries")
        .fetch_all(&pool)
        .await
        .unwrap();
    for p in payloads {
        assert!(!String::from_utf8_lossy(&p).contains("invoice.paid"));
    }
}

crate::both_backends!(deliveries_retry_until_delivered_once);

async fn blocking_conditions_urls_and_a_gone_endpoint(backend: Backend) {
    let app = TestApp::spawn_with(backend, Some(allow_loopback())).await;
    let (url, rx) = Receiver::start().await;
    let id = hook(&app, &url).await;
    // Blocking: the receiver's answer comes back; a retry happens inline.
    rx.answer(&[502]);
    let r = app
        .admin
        .webhook_action(&action(json!({"connection": id, "method": "PUT", "headers": {"X-Order": "{{order}}"},
            "body": {"order": "{{order}}"}, "context": {"order": "A-1"}, "retry": {"attempts": 2, "backoff_ms": 10}})))
        .await
        .unwrap();
    assert_eq!(
        (r.status.as_str(), r.response_status, r.attempts),
        ("delivered", Some(200), Some(2))
    );
    assert_eq!(r.response_body, Some(json!({"received": true})));
    assert!(r.delivery.is_none());
    let (h, body) = rx.got().pop().unwrap();
    assert_eq!(h["x-order"], "A-1");
    assert_eq!(body, r#"{"order":"A-1"}"#);
    // A false condition sends nothing; a true one sends.
    let before = rx.got().len();
    let r = app
        .admin
        .webhook_action(&action(
            json!({"connection": id, "condition": "totalAmount > 10000",
            "context": {"totalAmount": 500}, "body": {"alert": "high value"}}),
        ))
        .await
        .unwrap();
    assert_eq!(r.status, "skipped");
    assert_eq!(rx.got().len(), before);
    let r = app
        .admin
        .webhook_action(&action(json!({"connection": id, "condition": "totalAmount > 10000",
            "context": {"totalAmount": 25000}, "body": {"alert": "high value", "amount": "{{totalAmount}}"}})))
        .await
        .unwrap();
    assert_eq!(r.status, "delivered");
    assert_eq!(rx.got().len(), before + 1);
    // To a bare URL: sent unsigned (there is no secret), still with an id and timestamp.
    let r = app
        .admin
        .webhook_action(&action(
            json!({"url": format!("{url}/plain"), "body": {"k": 1}}),
        ))
        .await
        .unwrap();
    assert_eq!(r.status, "delivered");
    let (h, _) = rx.got().pop().unwrap();
    assert!(h.contains_key("webhook-id") && !h.contains_key("webhook-signature"));
    // Bad input names the field.
    for (body, field) in [
        (json!({"body": {}}), "connection"),
        (json!({"connection": id, "url": url, "body": {}}), "url"),
        (json!({"url": "ftp://x"}), "url"),
        (json!({"connection": id, "method": "GET"}), "method"),
        (
            json!({"connection": id, "retry": {"attempts": 0}}),
            "retry.attempts",
        ),
        (
            json!({"connection": id, "condition": "amount >"}),
            "condition",
        ),
        (
            json!({"connection": id, "body": {"a": "{{nope}}"}}),
            "context.nope",
        ),
    ] {
        let e = app.admin.webhook_action(&action(body)).await.unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with("422"), "{text}");
        assert!(text.contains(field), "{field}: {text}");
    }
    // 410: the delivery stops and the webhook connection is disabled.
    rx.answer(&[410]);
    let r = app
        .admin
        .webhook_action(&action(
            json!({"connection": id, "mode": "fire_and_forget", "body": {"bye": true}}),
        ))
        .await
        .unwrap();
    let d = settled(&app, &r.delivery.unwrap().to_string()).await;
    assert_eq!(
        (d.status.as_str(), d.attempts, d.last_status),
        ("failed", 1, Some(410))
    );
    let c = app.admin.get_connection(&id).await.unwrap();
    assert_eq!(c.status.as_str(), "disabled");
    let audit = app.admin.audit("action=connection.disabled").await.unwrap();
    assert_eq!(audit.items.len(), 1);
    let e = app
        .admin
        .webhook_action(&action(json!({"connection": id, "body": {}})))
        .await
        .unwrap_err();
    assert!(e.to_string().starts_with("409"), "{e}");
    // Webhook actions are audited without bodies.
    let audit = app
        .admin
        .audit("action=action.webhook&limit=50")
        .await
        .unwrap();
    let text = serde_json::to_string(&audit).unwrap();
    assert!(audit.items.len() >= 5);
    assert!(
        !text.contains("high value") && !text.contains("secret-path"),
        "{text}"
    );
}

both_backends!(blocking_conditions_urls_and_a_gone_endpoint,);
