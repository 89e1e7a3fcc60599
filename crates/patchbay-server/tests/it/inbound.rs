//! Inbound webhooks: for every scheme, a delivery signed by the provider's own signer
//! (`tests/peers/sign_webhooks.py`: the providers' SDKs, or their documented recipe) is
//! accepted and forwarded exactly once to a receiver that is down for the first attempts; a
//! bad signature, a stale timestamp and a replayed id are refused. Then polling, inspection,
//! replay and the limits.

use std::collections::BTreeMap;

use patchbay_domain::Role;
use patchbay_domain::inbound::CreatedInbound;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, allow_loopback, err_status};
use crate::webhooks::{Receiver, hook};

/// The headers each delivery is signed with, by the providers' signers.
pub(crate) fn sign(deliveries: &[Value]) -> Vec<BTreeMap<String, String>> {
    let out = crate::peers::python_json("sign_webhooks.py", &Value::from(deliveries.to_vec()));
    serde_json::from_str(&out).unwrap()
}

/// Posts a delivery to an endpoint as a provider would: no Patchbay token.
pub(crate) async fn deliver(
    url: &str,
    headers: &BTreeMap<String, String>,
    body: &str,
) -> (u16, Value) {
    let mut req = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(url)
        .body(body.to_owned());
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

struct Case {
    scheme: &'static str,
    secret: &'static str,
    body: &'static str,
    /// Whether the scheme signs a timestamp (a stale one is refused).
    timestamped: bool,
    extra: Value,
}

fn cases() -> Vec<Case> {
    let json_body = r#"{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","type":"invoice.paid","amount":125}"#;
    vec![
        Case {
            scheme: "standard_webhooks",
            secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            body: json_body,
            timestamped: true,
            extra: json!({}),
        },
        Case {
            scheme: "github",
            secret: "It's a Secret to Everybody",
            body: r#"{"ref":"refs/heads/main","after":"0d1a26e6"}"#,
            timestamped: false,
            extra: json!({}),
        },
        Case {
            scheme: "stripe",
            secret: "whsec_test_secret_for_stripe",
            body: json_body,
            timestamped: true,
            extra: json!({}),
        },
        Case {
            scheme: "slack",
            secret: "8f742231b10e8888abcd99yyyzzz85a5",
            body: r#"{"type":"event_callback","event_id":"Ev08MFMKH6","event":{"type":"app_mention"}}"#,
            timestamped: true,
            extra: json!({}),
        },
        Case {
            scheme: "shopify",
            secret: "shopify-app-secret-1",
            body: r#"{"id":820982911946154508,"email":"jon@example.com"}"#,
            timestamped: false,
            extra: json!({}),
        },
        Case {
            scheme: "twilio",
            secret: "twilio-auth-token-1",
            body: "CallSid=CA1234567890ABCDE&From=%2B12349013030&To=%2B18005551212&Digits=1234",
            timestamped: false,
            extra: json!({}),
        },
        Case {
            scheme: "hmac",
            secret: "generic-hmac-secret",
            body: r#"{"event":"build.finished"}"#,
            timestamped: true,
            extra: json!({"hmac": {"header": "X-Signature", "prefix": "sha256=",
                "content": "{timestamp}.{body}", "timestamp_header": "X-Timestamp",
                "id_header": "X-Event-Id"}}),
        },
    ]
}

async fn one_scheme(app: &TestApp, c: &Case) {
    let (rx_url, rx) = Receiver::start().await;
    rx.answer(&[503, 503]);
    let target = hook(app, &rx_url).await;
    let mut body = json!({"name": format!("in-{}", c.scheme), "scheme": c.scheme,
        "secret": c.secret, "target": target});
    body.as_object_mut()
        .unwrap()
        .extend(c.extra.as_object().unwrap().clone());
    let created: CreatedInbound = app
        .admin
        .create_inbound(&serde_json::from_value(body).unwrap())
        .await
        .unwrap();
    assert_eq!(
        created.generated_secret, None,
        "the provider's secret was given"
    );
    let ep = created.endpoint;
    assert!(
        ep.url.ends_with(&format!("/v1/hooks/{}", ep.id)),
        "{}",
        ep.url
    );
    let now = app.hub.now().timestamp();
    let delivery = |body: &str, ts: i64, id: &str| {
        json!({"scheme": c.scheme, "secret": c.secret, "body": body, "timestamp": ts,
            "id": id, "url": ep.url})
    };
    let signed = sign(&[
        delivery(c.body, now, "delivery-1"),
        delivery(c.body, now - 3600, "delivery-2"),
        delivery(c.body, now, "delivery-3"),
    ]);

    // Accepted, and forwarded once the receiver is back.
    let (status, answer) = deliver(&ep.url, &signed[0], c.body).await;
    assert_eq!(status, 200, "{}: {answer}", c.scheme);
    let event = answer["event"].as_str().unwrap().to_owned();
    // The same delivery again (a replay): acknowledged, nothing more done.
    let (status, again) = deliver(&ep.url, &signed[0], c.body).await;
    assert_eq!(
        (status, &again["duplicate"]),
        (200, &json!(true)),
        "{}",
        c.scheme
    );
    // A bad signature: the body changed after signing.
    let tampered = format!("{} ", c.body);
    let (status, refused) = deliver(&ep.url, &signed[0], &tampered).await;
    assert_eq!(status, 401, "{}: a tampered body", c.scheme);
    assert_eq!(refused["code"], "signature");
    assert_eq!(refused["detail"], "signature", "nothing more is told");
    // A stale timestamp, signed correctly an hour ago.
    if c.timestamped {
        let (status, _) = deliver(&ep.url, &signed[1], c.body).await;
        assert_eq!(status, 401, "{}: a stale timestamp", c.scheme);
    }
    // Without any signature.
    let (status, _) = deliver(&ep.url, &BTreeMap::new(), c.body).await;
    assert_eq!(status, 401, "{}: unsigned", c.scheme);

    let page = app.admin.inbound_events(ep.id.as_str(), "").await.unwrap();
    assert_eq!(page.events.len(), 1, "{}: one event stored", c.scheme);
    assert_eq!(page.events[0].id.as_str(), event);
    let delivery = page.events[0].delivery.clone().expect("a delivery");
    let d = crate::webhooks::settled(app, delivery.as_str()).await;
    assert_eq!(d.status, "delivered", "{}: {d:?}", c.scheme);
    assert_eq!(d.attempts, 3, "{}: down for two attempts", c.scheme);
    let got = rx.got();
    assert_eq!(got.len(), 3, "{}", c.scheme);
    for (h, b) in &got {
        assert_eq!(b, c.body, "{}: the provider's body, as it came", c.scheme);
        assert_eq!(h["webhook-id"], format!("msg_{event}").as_str());
        assert_eq!(h["patchbay-event"], event.as_str());
    }
    let verdicts = crate::webhooks::verify(&got[2..]);
    assert_eq!(
        verdicts,
        [format!("ok msg_{event}")],
        "{}: signed by the target connection",
        c.scheme
    );
    // A second, different delivery is a second event.
    let (status, _) = deliver(&ep.url, &signed[2], c.body).await;
    // A new event only where the scheme signs the id the delivery names; elsewhere the same
    // body signs the same, and a changed id header alone cannot pass a replay off as new.
    let expect_new = c.scheme == "standard_webhooks";
    assert_eq!(status, 200, "{}", c.scheme);
    let page = app.admin.inbound_events(ep.id.as_str(), "").await.unwrap();
    assert_eq!(
        page.events.len(),
        if expect_new { 2 } else { 1 },
        "{}: a repeat is known by a signed id, or by its signature",
        c.scheme
    );
}

async fn every_scheme_accepts_its_providers_deliveries_once(backend: Backend) {
    let app = TestApp::spawn_with(backend, Some(allow_loopback())).await;
    let all = cases();
    futures::future::join_all(all.iter().map(|c| one_scheme(&app, c))).await;
    let metrics = reqwest::get(format!("{}/metrics", app.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for outcome in ["accepted", "duplicate", "mismatch", "stale", "missing"] {
        assert!(
            metrics.contains(&format!(
                "patchbay_inbound_deliveries_total{{outcome=\"{outcome}\"}}"
            )),
            "{outcome} is counted"
        );
    }
}

async fn held_events_are_polled_inspected_and_replayed(backend: Backend) {
    let app = TestApp::spawn_with(backend, Some(allow_loopback())).await;
    // No secret given: one is made and shown once.
    let created = app
        .admin
        .create_inbound(
            &serde_json::from_value(json!({"name": "held", "scheme": "standard_webhooks",
                "max_body": 4096}))
            .unwrap(),
        )
        .await
        .unwrap();
    let secret = created.generated_secret.clone().expect("a made secret");
    assert!(secret.starts_with("whsec_"));
    let ep = created.endpoint;
    let shown = app.admin.get_inbound(ep.id.as_str()).await.unwrap();
    assert!(!serde_json::to_string(&shown).unwrap().contains(&secret));
    let now = app.hub.now().timestamp();
    let bodies: Vec<String> = (0..5).map(|i| format!(r#"{{"n":{i}}}"#)).collect();
    let requests: Vec<Value> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| {
            json!({"scheme": "standard_webhooks", "secret": secret, "body": b,
                "timestamp": now, "id": format!("msg_{i}")})
        })
        .collect();
    for (h, b) in sign(&requests).iter().zip(&bodies) {
        let (status, _) = deliver(&ep.url, h, b).await;
        assert_eq!(status, 200);
    }
    // Polling: bodies, oldest first, in pages.
    let first = app
        .admin
        .poll_hook(ep.id.as_str(), "limit=2")
        .await
        .unwrap();
    let seen: Vec<_> = first
        .events
        .iter()
        .map(|e| e.body.clone().unwrap())
        .collect();
    assert_eq!(seen, bodies[..2]);
    let cursor = first.next_cursor.unwrap();
    let rest = app
        .admin
        .poll_hook(ep.id.as_str(), &format!("cursor={cursor}"))
        .await
        .unwrap();
    assert_eq!(rest.events.len(), 3);
    assert_eq!(rest.next_cursor, None);
    assert!(rest.events.iter().all(|e| e.status == "held"));
    // Headers and bodies: admins only.
    let member = app.token(&app.admin, Role::Member, None).await;
    let event = &rest.events[0];
    let full = app
        .admin
        .inbound_event(ep.id.as_str(), event.id.as_str())
        .await
        .unwrap();
    assert_eq!(full.headers.as_ref().unwrap()["webhook-id"], "msg_2");
    assert_eq!(full.body.as_deref(), Some(bodies[2].as_str()));
    let summary = member
        .inbound_event(ep.id.as_str(), event.id.as_str())
        .await
        .unwrap();
    assert_eq!((summary.headers, summary.body), (None, None));
    let listed = member.inbound_events(ep.id.as_str(), "").await.unwrap();
    assert!(listed.events.iter().all(|e| e.body.is_none()));
    // A viewer does not poll.
    let viewer = app.token(&app.admin, Role::Viewer, None).await;
    let (status, _) = err_status(viewer.poll_hook(ep.id.as_str(), "").await);
    assert_eq!(status, 403);

    // Replay needs a target; given one, the event goes there with its own webhook-id.
    let (status, _) = err_status(
        app.admin
            .replay_inbound_event(ep.id.as_str(), event.id.as_str())
            .await,
    );
    assert_eq!(status, 409);
    let (rx_url, rx) = Receiver::start().await;
    let target = hook(&app, &rx_url).await;
    app.admin
        .update_inbound(ep.id.as_str(), &json!({"target": target}))
        .await
        .unwrap();
    let replayed = app
        .admin
        .replay_inbound_event(ep.id.as_str(), event.id.as_str())
        .await
        .unwrap();
    let d = crate::webhooks::settled(&app, replayed.delivery.unwrap().as_str()).await;
    assert_eq!(d.status, "delivered");
    let got = rx.got();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1, bodies[2]);
    assert_eq!(got[0].0["webhook-id"], format!("msg_{}", event.id).as_str());

    // Limits and lifecycle.
    let big = "x".repeat(5000);
    let h = sign(&[
        json!({"scheme": "standard_webhooks", "secret": secret, "body": big,
        "timestamp": now, "id": "msg_big"}),
    ]);
    let (status, _) = deliver(&ep.url, &h[0], &big).await;
    assert_eq!(status, 413);
    let rotated = app
        .admin
        .update_inbound(
            ep.id.as_str(),
            &json!({"secret": "whsec_dGhpcyBpcyBhIG5ldyBzZWNyZXQgb2YgMzIgYnl0ZXMh"}),
        )
        .await
        .unwrap();
    assert_eq!(rotated.version, 3);
    let h = sign(&[
        json!({"scheme": "standard_webhooks", "secret": secret, "body": "{}",
        "timestamp": now, "id": "msg_old_secret"}),
    ]);
    let (status, _) = deliver(&ep.url, &h[0], "{}").await;
    assert_eq!(status, 401, "the old secret no longer verifies");
    app.admin.delete_inbound(ep.id.as_str()).await.unwrap();
    let (status, _) = deliver(&ep.url, &h[0], "{}").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn endpoints_name_their_bad_fields_and_stay_in_their_organization() {
    let app = TestApp::spawn_with(Backend::Sqlite, Some(allow_loopback())).await;
    let bad = |v: Value| {
        let app = &app;
        async move {
            let r = app
                .admin
                .raw(reqwest::Method::POST, "/v1/inbound", Some(&v), &[])
                .await
                .unwrap();
            assert_eq!(r.status, 422, "{v}");
            crate::helpers::error_fields(&r.json())
        }
    };
    assert_eq!(
        bad(json!({"name": "x", "scheme": "carrier-pigeon"})).await,
        ["scheme"]
    );
    assert_eq!(bad(json!({"name": "x", "scheme": "hmac"})).await, ["hmac"]);
    assert_eq!(
        bad(
            json!({"name": "x", "scheme": "hmac", "hmac": {"header": "bad header",
            "content": "{timestamp}"}})
        )
        .await,
        ["hmac.header", "hmac.content"]
    );
    assert_eq!(
        bad(
            json!({"name": "x", "scheme": "github", "secret": "short", "max_body": 0,
            "signing_url": "https://x.example/h"})
        )
        .await,
        ["secret", "max_body", "signing_url"]
    );
    let sql = app
        .connection(
            json!({"name": "db", "kind": "database", "config": {"driver": "sqlite",
            "database": "/nonexistent.db"}}),
        )
        .await;
    let r = app
        .admin
        .raw(
            reqwest::Method::POST,
            "/v1/inbound",
            Some(&json!({"name": "x", "scheme": "github", "target": sql})),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 422);
    assert_eq!(crate::helpers::error_fields(&r.json()), ["target"]);
    let (status, _) = err_status(
        app.admin
            .create_inbound(
                &serde_json::from_value(json!({"name": "x", "scheme": "github",
                    "target": "con_01m918z20mgcpkrh8cgxrqq1rz"}))
                .unwrap(),
            )
            .await,
    );
    assert_eq!(status, 404, "a target that does not exist");
    let created = app
        .admin
        .create_inbound(
            &serde_json::from_value(json!({"name": "mine", "scheme": "github"})).unwrap(),
        )
        .await
        .unwrap();
    let other = app.org("other").await;
    let (status, _) = err_status(other.get_inbound(created.endpoint.id.as_str()).await);
    assert_eq!(status, 404);
    assert!(other.list_inbound().await.unwrap().is_empty());
    let (status, _) = err_status(
        app.admin
            .create_inbound(
                &serde_json::from_value(json!({"name": "mine", "scheme": "slack",
                    "secret": "another-secret"}))
                .unwrap(),
            )
            .await,
    );
    assert_eq!(status, 409, "names are unique in an organization");
}

#[tokio::test]
async fn slack_url_verification_is_answered_with_its_challenge() {
    let app = TestApp::spawn_with(Backend::Sqlite, Some(allow_loopback())).await;
    let secret = "8f742231b10e8888abcd99yyyzzz85a5";
    let ep = app
        .admin
        .create_inbound(
            &serde_json::from_value(json!({"name": "slack", "scheme": "slack", "secret": secret}))
                .unwrap(),
        )
        .await
        .unwrap()
        .endpoint;
    let body = r#"{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
    let h = sign(&[json!({"scheme": "slack", "secret": secret, "body": body,
        "timestamp": app.hub.now().timestamp(), "id": ""})]);
    let (status, answer) = deliver(&ep.url, &h[0], body).await;
    assert_eq!(status, 200);
    assert_eq!(
        answer["challenge"],
        "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    );
    let page = app.admin.inbound_events(ep.id.as_str(), "").await.unwrap();
    assert!(page.events.is_empty(), "a challenge is not an event");
    let (status, _) = deliver(&ep.url, &h[0], &body.replace("3eZ", "4eZ")).await;
    assert_eq!(status, 401, "a challenge is verified too");
}

both_backends!(
    every_scheme_accepts_its_providers_deliveries_once,
    held_events_are_polled_inspected_and_replayed
);
