//! Webhook deliveries (SPEC §4, Proxy and actions). `blocking` sends now and answers with the
//! receiver's response; `fire_and_forget` seals the request into the outbox table and answers
//! at once. Workers claim due rows under a lease (skipping rows other replicas hold on
//! PostgreSQL), send them signed the Standard Webhooks way with the same `webhook-id` on every
//! attempt, and write outcomes in batches: delivered, retried with exponential backoff and
//! jitter, or dead-lettered after the last attempt. A 410 disables the webhook connection.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use patchbay_domain::actions::{Delivery, DeliveryMode, WebhookAction, WebhookActionResult};
use patchbay_domain::spec::ConnectionSpec;
use patchbay_domain::{ConnectionId, DeliveryId, Kind, OrgId, Principal, Status, ValidationErrors};
use patchbay_store::{Completion, DeliveryRecord};
use reqwest::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

mod events;

pub use events::EventSink;

use crate::act::actions::{read_answer, require_kind};
use crate::connections::field_aad;
use crate::{EngineError, Hub, Result};

/// Deliveries in flight at once per process.
const CONCURRENCY: usize = 128;
/// How long a claim holds a row before another worker may take it.
const LEASE: Duration = Duration::from_secs(30);
/// How long one attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_ATTEMPTS: u32 = 5;
const DEFAULT_BACKOFF_MS: u64 = 1000;

/// What is sealed into a queued delivery.
#[derive(Debug, Serialize, Deserialize)]
struct Sealed {
    /// Only for deliveries without a connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    headers: BTreeMap<String, String>,
    body: String,
}

/// One request ready to send.
#[derive(Debug)]
struct Outgoing {
    org: OrgId,
    connection: Option<ConnectionId>,
    webhook_id: String,
    method: reqwest::Method,
    sealed: Sealed,
}

/// How one attempt ended.
#[derive(Debug)]
enum Attempt {
    Delivered(u16, Value),
    /// 410: the receiver is gone for good.
    Gone,
    /// Worth another attempt.
    Retry(Option<u16>, String),
    /// Not worth another attempt (blocked, the connection unusable).
    Permanent(Option<u16>, String),
}

/// The object a delivery's payload is bound to (with its organization and the field `payload`).
fn delivery_object(id: &DeliveryId) -> String {
    format!("delivery:{id}")
}

/// The wait before attempt `attempt + 1`: `backoff · 2^(attempt-1)`, at most an hour, ±20 %.
fn backoff(backoff_ms: u64, attempt: u32) -> Duration {
    let base = backoff_ms
        .saturating_mul(1u64 << attempt.saturating_sub(1).min(20))
        .min(3_600_000);
    let spread = base / 5;
    let jittered = if spread == 0 {
        base
    } else {
        base - spread + rand::random_range(0..=2 * spread)
    };
    Duration::from_millis(jittered)
}

fn view(d: &DeliveryRecord) -> Delivery {
    Delivery {
        id: d.id.clone(),
        connection: d.connection_id.clone(),
        webhook_id: d.webhook_id.clone(),
        method: d.method.clone(),
        target: d.target.clone(),
        status: d.status.clone(),
        attempts: u32::try_from(d.attempts).unwrap_or(0),
        max_attempts: u32::try_from(d.max_attempts).unwrap_or(0),
        next_attempt_at: d.next_attempt_at,
        last_status: d.last_status.and_then(|s| u16::try_from(s).ok()),
        last_error: d.last_error.clone(),
        caller: d.caller.clone(),
        created_at: d.created_at,
        delivered_at: d.delivered_at,
    }
}

/// The host a URL points at, for display.
fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default()
}

impl Hub {
    /// `POST /v1/actions/webhook`.
    pub async fn webhook_action(
        &self,
        p: &Principal,
        a: WebhookAction,
        caller: Option<String>,
    ) -> Result<WebhookActionResult> {
        let started = Instant::now();
        let mut errs = ValidationErrors::new();
        match (&a.connection, &a.url) {
            (Some(_), Some(_)) => errs.push("url", "give either connection or url, not both"),
            (None, None) => errs.push("connection", "is required (or url)"),
            (None, Some(u)) => match url::Url::parse(u) {
                Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {}
                _ => errs.push("url", "must be an http(s) URL"),
            },
            _ => {}
        }
        let method = match a.method.as_deref().map(str::to_ascii_uppercase).as_deref() {
            None => None,
            Some(m @ ("POST" | "PUT" | "PATCH")) => reqwest::Method::from_bytes(m.as_bytes()).ok(),
            Some(_) => {
                errs.push("method", "must be POST, PUT or PATCH");
                None
            }
        };
        let retry = a.retry.unwrap_or_default();
        let attempts = retry.attempts.unwrap_or(DEFAULT_ATTEMPTS);
        if attempts == 0 || attempts > 20 {
            errs.push("retry.attempts", "must be between 1 and 20");
        }
        let backoff_ms = retry.backoff_ms.unwrap_or(DEFAULT_BACKOFF_MS);
        if backoff_ms > 3_600_000 {
            errs.push("retry.backoff_ms", "must be at most 3600000");
        }
        let ctx = a.context.clone().unwrap_or_default();
        let mut headers = BTreeMap::new();
        for (k, v) in a.headers.iter().flatten() {
            let filled = match crate::connections::templates::fill(
                &Value::String(v.clone()),
                &ctx,
                &format!("headers.{k}"),
            )? {
                Value::String(s) => s,
                other => other.to_string(),
            };
            if HeaderName::from_bytes(k.as_bytes()).is_err()
                || HeaderValue::from_str(&filled).is_err()
            {
                errs.push(format!("headers.{k}"), "is not a valid header");
            }
            headers.insert(k.clone(), filled);
        }
        errs.into_result(())?;
        let body = match &a.body {
            Some(b) => crate::connections::templates::fill(b, &ctx, "body")?.to_string(),
            None => "{}".into(),
        };
        let (connection, target, method) = match &a.connection {
            Some(id) => {
                let prepared = self.prepared(p, id).await?;
                require_kind(&prepared, Kind::Webhook)?;
                let ConnectionSpec::Webhook(config) = &prepared.material.spec else {
                    return Err(EngineError::Conflict("not a webhook connection".into()));
                };
                let own = reqwest::Method::from_bytes(config.method.as_str().as_bytes()).ok();
                (
                    Some(id.clone()),
                    host_of(&config.url),
                    method.or(own).unwrap_or(reqwest::Method::POST),
                )
            }
            None => {
                if !p.can_use() {
                    return Err(EngineError::forbidden(
                        "acting through Patchbay needs an admin, member or executor token",
                    ));
                }
                let url = a.url.clone().unwrap_or_default();
                (None, host_of(&url), method.unwrap_or(reqwest::Method::POST))
            }
        };
        if let Some(expr) = &a.condition
            && !crate::connections::templates::condition(expr, &ctx, "condition")?
        {
            let skipped = WebhookActionResult {
                status: "skipped".into(),
                delivery: None,
                webhook_id: None,
                response_status: None,
                response_body: None,
                attempts: Some(0),
                error: None,
            };
            let audited = connection
                .as_ref()
                .map_or_else(|| format!("url:{target}"), ToString::to_string);
            self.audit_webhook(p, &audited, &target, &skipped, started)
                .await;
            return Ok(skipped);
        }
        let out = Outgoing {
            org: p.org_id.clone(),
            connection: connection.clone(),
            webhook_id: patchbay_connectors::webhook::message_id(),
            method,
            sealed: Sealed {
                url: a.url.clone(),
                headers,
                body,
            },
        };
        let result = match a.mode {
            DeliveryMode::FireAndForget => {
                let id = self
                    .enqueue(p, &out, &target, attempts, backoff_ms, caller.clone())
                    .await?;
                WebhookActionResult {
                    status: "pending".into(),
                    delivery: Some(id),
                    webhook_id: Some(out.webhook_id.clone()),
                    response_status: None,
                    response_body: None,
                    attempts: Some(0),
                    error: None,
                }
            }
            DeliveryMode::Blocking => self.deliver_now(&out, attempts, backoff_ms).await,
        };
        let audited = connection
            .as_ref()
            .map_or_else(|| format!("url:{target}"), ToString::to_string);
        self.audit_webhook(p, &audited, &target, &result, started)
            .await;
        if let Some(id) = &connection {
            self.record_use(p, id, None, caller, result.response_status, started);
        }
        Ok(result)
    }

    async fn audit_webhook(
        &self,
        p: &Principal,
        connection: &str,
        target: &str,
        r: &WebhookActionResult,
        started: Instant,
    ) {
        self.audit_action(
            p,
            "action.webhook",
            connection,
            r.status != "failed",
            json!({"host": target, "status": r.status, "delivery": r.delivery,
                "response_status": r.response_status, "attempts": r.attempts}),
            started,
        )
        .await;
    }

    /// Sends at once, retrying inline.
    async fn deliver_now(
        &self,
        out: &Outgoing,
        attempts: u32,
        backoff_ms: u64,
    ) -> WebhookActionResult {
        let mut n = 0;
        loop {
            n += 1;
            let attempt = self.attempt(out).await;
            let done =
                |status: &str, code: Option<u16>, body: Option<Value>, error: Option<String>| {
                    WebhookActionResult {
                        status: status.into(),
                        delivery: None,
                        webhook_id: Some(out.webhook_id.clone()),
                        response_status: code,
                        response_body: body,
                        attempts: Some(n),
                        error,
                    }
                };
            match attempt {
                Attempt::Delivered(code, body) => {
                    return done("delivered", Some(code), Some(body), None);
                }
                Attempt::Gone => {
                    self.endpoint_gone(out).await;
                    return done(
                        "failed",
                        Some(410),
                        None,
                        Some("the endpoint is gone (HTTP 410); the connection is disabled".into()),
                    );
                }
                Attempt::Permanent(code, e) => return done("failed", code, None, Some(e)),
                Attempt::Retry(code, e) if n >= attempts => {
                    return done("failed", code, None, Some(e));
                }
                Attempt::Retry(..) => tokio::time::sleep(backoff(backoff_ms, n)).await,
            }
        }
    }

    /// Seals and queues a delivery; wakes the workers.
    async fn enqueue(
        &self,
        p: &Principal,
        out: &Outgoing,
        target: &str,
        attempts: u32,
        backoff_ms: u64,
        caller: Option<String>,
    ) -> Result<DeliveryId> {
        let record = self.sealed_delivery(p, out, target, attempts, backoff_ms, caller)?;
        let id = record.id.clone();
        let mut w = self.write().await?;
        w.insert_delivery(&record).await?;
        w.commit().await?;
        self.queued();
        Ok(id)
    }

    /// Counts a queued delivery and wakes the workers (once its row is committed).
    pub(crate) fn queued(&self) {
        self.core().metrics.delivery("queued");
        self.inner.outbox_wake.notify_one();
    }

    /// A delivery of `body` (with `headers`) to the webhook connection `connection`, as
    /// `webhook_id`, sealed and ready to be inserted in the caller's change; then
    /// [`Hub::queued`].
    pub(crate) fn forward_record(
        &self,
        p: &Principal,
        connection: &ConnectionId,
        target: &str,
        webhook_id: String,
        headers: BTreeMap<String, String>,
        body: String,
    ) -> Result<DeliveryRecord> {
        let out = Outgoing {
            org: p.org_id.clone(),
            connection: Some(connection.clone()),
            webhook_id,
            method: reqwest::Method::POST,
            sealed: Sealed {
                url: None,
                headers,
                body,
            },
        };
        self.sealed_delivery(p, &out, target, DEFAULT_ATTEMPTS, DEFAULT_BACKOFF_MS, None)
    }

    fn sealed_delivery(
        &self,
        p: &Principal,
        out: &Outgoing,
        target: &str,
        attempts: u32,
        backoff_ms: u64,
        caller: Option<String>,
    ) -> Result<DeliveryRecord> {
        let id = DeliveryId::generate();
        let ring = self.vault().keyring()?;
        let plain =
            serde_json::to_vec(&out.sealed).map_err(|e| EngineError::Internal(e.to_string()))?;
        let object = delivery_object(&id);
        let payload = ring.seal(&field_aad(out.org.as_str(), &object, "payload"), &plain)?;
        let now = self.now();
        let record = DeliveryRecord {
            id: id.clone(),
            org_id: out.org.clone(),
            connection_id: out.connection.clone(),
            webhook_id: out.webhook_id.clone(),
            method: out.method.to_string(),
            target: target.to_owned(),
            key_version: i64::from(ring.current_version()),
            payload,
            status: "pending".into(),
            attempts: 0,
            max_attempts: i64::from(attempts),
            backoff_ms: i64::try_from(backoff_ms).unwrap_or(i64::MAX),
            next_attempt_at: now,
            last_status: None,
            last_error: None,
            created_by: p.actor(),
            caller,
            created_at: now,
            updated_at: now,
            delivered_at: None,
        };
        Ok(record)
    }

    /// One attempt: the connection's URL and signature, or the bare URL.
    async fn attempt(&self, out: &Outgoing) -> Attempt {
        let ts = chrono::Utc::now().timestamp();
        let body = out.sealed.body.clone().into_bytes();
        let mut used = None;
        let mut req = match &out.connection {
            Some(id) => {
                let prepared = match self.prepared(&crate::system(out.org.clone()), id).await {
                    Ok(p) => p,
                    Err(e @ (EngineError::Conflict(_) | EngineError::NotFound(_))) => {
                        return Attempt::Permanent(None, e.to_string());
                    }
                    Err(e) => return Attempt::Retry(None, e.to_string()),
                };
                let prepared = used.insert(prepared);
                match patchbay_connectors::webhook::signed_request(
                    &prepared.material,
                    &out.webhook_id,
                    ts,
                    body,
                    false,
                ) {
                    Ok(r) => r,
                    Err(e) => return Attempt::Permanent(None, e),
                }
            }
            None => {
                let Some(url) = out
                    .sealed
                    .url
                    .as_deref()
                    .and_then(|u| url::Url::parse(u).ok())
                else {
                    return Attempt::Permanent(None, "the delivery has no URL".into());
                };
                let mut r = reqwest::Request::new(out.method.clone(), url);
                let h = r.headers_mut();
                h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                if let Ok(v) = HeaderValue::from_str(&out.webhook_id) {
                    h.insert("webhook-id", v);
                }
                h.insert("webhook-timestamp", HeaderValue::from(ts));
                *r.body_mut() = Some(body.into());
                r
            }
        };
        *req.method_mut() = out.method.clone();
        for (k, v) in &out.sealed.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(v),
            ) && !name.as_str().starts_with("webhook-")
            {
                req.headers_mut().insert(name, value);
            }
        }
        *req.timeout_mut() = Some(ATTEMPT_TIMEOUT);
        match self.connectors().http().execute(req).await {
            Ok(resp) => {
                let code = resp.status().as_u16();
                match code {
                    200..=299 => {
                        let mut body = read_answer(reqwest::Body::from(resp))
                            .await
                            .unwrap_or(Value::Null);
                        // A receiver that echoes the connection's token does not hand it over.
                        if let Some(prepared) = &used {
                            prepared.material.redactor().scrub_json(&mut body);
                        }
                        Attempt::Delivered(code, body)
                    }
                    410 => Attempt::Gone,
                    _ => Attempt::Retry(Some(code), format!("the receiver answered HTTP {code}")),
                }
            }
            Err(patchbay_net::HttpError::Net(n)) if n.is_blocked() => {
                Attempt::Permanent(None, n.to_string())
            }
            Err(e) => Attempt::Retry(None, e.to_string()),
        }
    }

    /// A 410: the webhook connection is disabled (once), and says why.
    async fn endpoint_gone(&self, out: &Outgoing) {
        let Some(id) = &out.connection else {
            return;
        };
        let p = crate::system(out.org.clone());
        let result = async {
            let mut w = self.write().await?;
            w.set_status(&p.org_id, id, Status::Disabled, self.now())
                .await?;
            let mut event = self.core().event(
                &p,
                "connection.disabled",
                Some(id.to_string()),
                "success",
                json!({"reason": "the webhook endpoint answered HTTP 410 Gone"}),
            );
            event.actor = "system:outbox".into();
            w.audit(event);
            w.invalidates(crate::core::Change::connection(id));
            w.commit().await?;
            Ok::<_, EngineError>(())
        };
        if let Err(e) = result.await {
            tracing::warn!(connection = %id, error = %e, "could not disable a gone webhook endpoint");
        }
    }

    /// Opens a claimed delivery.
    async fn outgoing(&self, d: &DeliveryRecord) -> Result<Outgoing> {
        let object = delivery_object(&d.id);
        let plain = self
            .open_ciphertext(
                &field_aad(d.org_id.as_str(), &object, "payload"),
                &d.payload,
            )
            .await?;
        let sealed: Sealed = serde_json::from_slice(&plain)
            .map_err(|e| EngineError::Internal(format!("delivery payload: {e}")))?;
        Ok(Outgoing {
            org: d.org_id.clone(),
            connection: d.connection_id.clone(),
            webhook_id: d.webhook_id.clone(),
            method: reqwest::Method::from_bytes(d.method.as_bytes())
                .unwrap_or(reqwest::Method::POST),
            sealed,
        })
    }

    /// Attempts one claimed delivery; the outcome to write.
    async fn work(&self, d: DeliveryRecord) -> Completion {
        let attempt = match self.outgoing(&d).await {
            Ok(out) => {
                let a = self.attempt(&out).await;
                if matches!(a, Attempt::Gone) {
                    self.endpoint_gone(&out).await;
                }
                a
            }
            Err(e) => Attempt::Permanent(None, e.to_string()),
        };
        let last = d.attempts >= d.max_attempts;
        let done = match attempt {
            Attempt::Delivered(code, _) => Completion::Delivered {
                id: d.id,
                status: i64::from(code),
            },
            Attempt::Gone => Completion::Failed {
                id: d.id,
                status: Some(410),
                error: "the endpoint is gone (HTTP 410); the connection is disabled".into(),
            },
            Attempt::Permanent(code, error) => Completion::Failed {
                id: d.id,
                status: code.map(i64::from),
                error,
            },
            Attempt::Retry(code, error) if last => Completion::Failed {
                id: d.id,
                status: code.map(i64::from),
                error,
            },
            Attempt::Retry(code, error) => {
                let wait = backoff(
                    u64::try_from(d.backoff_ms).unwrap_or(DEFAULT_BACKOFF_MS),
                    u32::try_from(d.attempts).unwrap_or(1),
                );
                Completion::Retry {
                    id: d.id,
                    status: code.map(i64::from),
                    error,
                    next: self.now() + chrono::Duration::from_std(wait).unwrap_or_default(),
                }
            }
        };
        self.core().metrics.delivery(match &done {
            Completion::Delivered { .. } => "delivered",
            Completion::Retry { .. } => "retried",
            Completion::Failed { .. } => "dead",
        });
        done
    }

    /// The outbox worker: claims due deliveries and sends them, until stopped. On SQLite (one
    /// process owns the database) rows left claimed by a process that died are released at
    /// once; elsewhere their lease runs out.
    pub(crate) async fn run_outbox(&self) {
        if self.store().dialect() == patchbay_store::Dialect::Sqlite {
            match self.store().release_claims(self.now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    deliveries = n,
                    "released deliveries claimed before a restart"
                ),
                Err(e) => tracing::warn!(error = %e, "could not release earlier claims"),
            }
        }
        let mut inflight = FuturesUnordered::new();
        let mut done: Vec<Completion> = Vec::new();
        loop {
            let free = CONCURRENCY - inflight.len();
            if free > 0 && self.vault().sealed_reason().is_none() {
                let now = self.now();
                let lease = now + chrono::Duration::from_std(LEASE).unwrap_or_default();
                match self
                    .store()
                    .claim_deliveries(now, lease, free.min(256) as i64)
                    .await
                {
                    Ok(claimed) => {
                        for d in claimed {
                            let hub = self.clone();
                            inflight.push(async move { hub.work(d).await });
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "could not claim deliveries"),
                }
            }
            if inflight.is_empty() {
                self.idle_until_due().await;
                continue;
            }
            // Collect what finishes within a short window, then write it in one go.
            let window = tokio::time::sleep(Duration::from_millis(20));
            tokio::pin!(window);
            loop {
                tokio::select! {
                    Some(c) = inflight.next() => {
                        done.push(c);
                        if done.len() >= 256 { break; }
                    }
                    () = &mut window => break,
                    else => break,
                }
            }
            if !done.is_empty() {
                match self.store().complete_deliveries(&done, self.now()).await {
                    Ok(()) => done.clear(),
                    Err(e) => {
                        // The claims' leases make the rows due again; nothing is lost.
                        tracing::warn!(error = %e, "could not record delivery outcomes");
                        done.clear();
                    }
                }
            }
        }
    }

    /// Sleeps until the next delivery falls due, a new one is queued, or a second passes.
    async fn idle_until_due(&self) {
        let wait = match self.store().next_delivery_due().await {
            Ok(Some(at)) => (at - self.now())
                .to_std()
                .unwrap_or_default()
                .min(Duration::from_secs(1)),
            _ => Duration::from_secs(1),
        };
        if wait.is_zero() {
            tokio::time::sleep(Duration::from_millis(5)).await;
            return;
        }
        tokio::select! {
            () = self.inner.outbox_wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }

    pub async fn list_deliveries(
        &self,
        p: &Principal,
        status: Option<&str>,
        connection: Option<&ConnectionId>,
        cursor: Option<&DeliveryId>,
        limit: Option<u32>,
    ) -> Result<patchbay_domain::api::Page<Delivery>> {
        if let Some(s) = status
            && !["pending", "delivering", "delivered", "failed"].contains(&s)
        {
            return Err(ValidationErrors::single(
                "status",
                "must be pending, delivering, delivered or failed",
            )
            .into());
        }
        if limit.is_some_and(|l| !(1..=500).contains(&l)) {
            return Err(ValidationErrors::single("limit", "must be between 1 and 500").into());
        }
        let limit = i64::from(limit.unwrap_or(50));
        let rows = self
            .store()
            .list_deliveries(&p.org_id, status, connection, cursor, limit + 1)
            .await?;
        let more = rows.len() as i64 > limit;
        let items: Vec<Delivery> = rows.iter().take(limit as usize).map(view).collect();
        let next_cursor = if more {
            items.last().map(|d| d.id.to_string())
        } else {
            None
        };
        Ok(patchbay_domain::api::Page { items, next_cursor })
    }

    pub async fn get_delivery(&self, p: &Principal, id: &DeliveryId) -> Result<Delivery> {
        self.store()
            .get_delivery(&p.org_id, id)
            .await?
            .map(|d| view(&d))
            .ok_or(EngineError::NotFound("delivery"))
    }

    /// Queues a delivered or dead-lettered delivery again, with the same `webhook-id`.
    pub async fn replay_delivery(&self, p: &Principal, id: &DeliveryId) -> Result<Delivery> {
        let current = self.get_delivery(p, id).await?;
        if !p.can_use() {
            return Err(EngineError::forbidden(
                "replaying needs an admin, member or executor token",
            ));
        }
        let mut w = self.write().await?;
        if !w.replay_delivery(&p.org_id, id, self.now()).await? {
            return Err(EngineError::Conflict(format!(
                "the delivery is {}; only delivered or failed ones can be replayed",
                current.status
            )));
        }
        w.succeeded(p, "delivery.replay", id.to_string(), json!({}));
        w.commit().await?;
        self.inner.outbox_wake.notify_one();
        self.get_delivery(p, id).await
    }

    /// Counts of an organization's deliveries by status.
    pub async fn delivery_counts(&self, org: &OrgId) -> Result<BTreeMap<String, i64>> {
        Ok(self
            .store()
            .count_deliveries(org)
            .await?
            .into_iter()
            .collect())
    }
}
