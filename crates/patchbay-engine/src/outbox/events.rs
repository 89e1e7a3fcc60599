//! System events (`connection.created`, `connection.expired`, `connection.refresh_failed`,
//! `connection.recovered`, `connection.revoked`) posted to the operator's event webhook, signed
//! the Standard Webhooks way, through the outbound gate, with a few retries. Best effort: an
//! unreachable receiver never fails the operation that caused the event.

use std::time::Duration;

use patchbay_domain::{ConnectionId, OrgId};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::Hub;

/// Where system events go.
#[derive(Debug, Clone)]
pub struct EventSink {
    pub url: url::Url,
    /// Standard Webhooks secret (`whsec_…` or raw).
    pub secret: SecretString,
}

const ATTEMPTS: u32 = 3;

impl Hub {
    /// Queues an event; returns at once.
    pub(crate) fn emit(
        &self,
        kind: &'static str,
        org: &OrgId,
        connection: &ConnectionId,
        data: serde_json::Value,
    ) {
        let Some(sink) = self.inner.settings.events.clone() else {
            return;
        };
        let id = patchbay_connectors::webhook::message_id();
        let now = self.now();
        let payload = json!({
            "type": kind,
            "timestamp": now,
            "data": {"org": org, "connection": connection, "details": data},
        })
        .to_string()
        .into_bytes();
        let http = self.connectors().http().clone();
        self.spawn_background(async move {
            for attempt in 0..ATTEMPTS {
                let ts = chrono::Utc::now().timestamp();
                let signature = patchbay_connectors::webhook::sign(
                    sink.secret.expose_secret(),
                    &id,
                    ts,
                    &payload,
                );
                let req = http
                    .client()
                    .post(sink.url.clone())
                    .header("content-type", "application/json")
                    .header("webhook-id", &id)
                    .header("webhook-timestamp", ts.to_string())
                    .header("webhook-signature", signature)
                    .body(payload.clone())
                    .build();
                let Ok(req) = req else { return };
                match http.execute(req).await {
                    Ok(r) if r.status().is_success() => return,
                    Ok(r) => tracing::warn!(
                        event = kind,
                        status = r.status().as_u16(),
                        attempt,
                        "event webhook refused"
                    ),
                    Err(e) => {
                        tracing::warn!(event = kind, error = %e, attempt, "event webhook unreachable")
                    }
                }
                tokio::time::sleep(Duration::from_millis(250 * 2u64.pow(attempt))).await;
            }
        });
    }
}
