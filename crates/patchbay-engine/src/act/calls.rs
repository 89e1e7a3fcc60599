//! Acting through connections: the proxy's hot path and what every action shares.
//!
//! A connection about to be used is *prepared* — read, its token made fresh, its secrets
//! opened — and kept in a short-lived cache (entries zeroize their secrets when dropped; any
//! change to the connection in this process evicts it), so a proxied request normally costs no
//! database read. Use is recorded in memory and written once a second: `last_used_at`,
//! `used_by`, and one audit entry per principal, connection and second summarising the
//! requests (count, status classes, latency) — never a write per request.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use patchbay_connectors::Material;
use patchbay_connectors::call::{CallBody, CallError, CallRequest, RetryPolicy};
use patchbay_domain::connection::Connection;
use patchbay_domain::{ConnectionId, Kind, Principal, Status};
use serde_json::json;

use crate::{EngineError, Hub, Result};

/// An upstream's answer, its body read as it arrives.
pub type Answer = http::Response<patchbay_net::Answer>;

/// How long a prepared connection is reused before it is read again.
const PREPARED_TTL: Duration = Duration::from_secs(30);
/// Distinct caller labels kept per connection.
const MAX_CALLERS: usize = 50;

/// A connection ready to act through: as stored, and its decrypted material.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub connection: Connection,
    pub material: Material,
}

pub(crate) type PreparedCache = crate::core::Cached<String, Arc<Prepared>>;

pub(crate) fn prepared_cache() -> PreparedCache {
    crate::core::Cached::new(10_000, PREPARED_TTL)
}

impl crate::core::Forgets for PreparedCache {
    fn forget(&self, change: &crate::core::Change) {
        match change {
            crate::core::Change::Connection(id) => self.invalidate(id.as_str()),
            crate::core::Change::Connections => self.invalidate_all(),
            crate::core::Change::Principals | crate::core::Change::McpSession(_) => {}
        }
    }

    fn forget_all(&self) {
        self.invalidate_all();
    }

    fn stats(&self) -> (&'static str, crate::core::CacheStats) {
        ("prepared_connections", crate::core::Cached::stats(self))
    }
}

type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Uses waiting to be written, by token and connection (looked up without allocating).
#[derive(Debug, Default)]
pub(crate) struct UsageLog {
    entries: Map<String, Map<String, Usage>>,
}

/// Status classes counted per use, in the order of [`CLASSES`].
const CLASSES: [&str; 7] = ["1xx", "2xx", "3xx", "4xx", "5xx", "other", "failed"];

#[derive(Debug)]
struct Usage {
    principal: Principal,
    connection: ConnectionId,
    /// The summary audit entry's action; `None` when each use is audited on its own.
    action: Option<&'static str>,
    callers: BTreeSet<String>,
    count: u64,
    /// Uses per status class, indexed as [`CLASSES`].
    classes: [u64; CLASSES.len()],
    latency_total_ms: u64,
    latency_max_ms: u64,
}

/// A validated `Patchbay-Caller` label: 1–128 visible ASCII characters.
pub fn caller_label(raw: &str) -> Result<String> {
    let ok = !raw.is_empty() && raw.len() <= 128 && raw.chars().all(|c| c.is_ascii_graphic());
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(EngineError::BadRequest {
            code: "bad_header",
            message: "Patchbay-Caller must be 1-128 visible ASCII characters".into(),
        })
    }
}

/// A proxied request.
#[derive(Debug)]
pub struct ProxyCall {
    pub connection: ConnectionId,
    /// `Patchbay-Caller`: who uses the connection (a workflow id), kept in `used_by`.
    pub caller: Option<String>,
    pub request: CallRequest,
}

/// Only `active` connections (and `invalid` ones, whose last test may be stale) act.
fn usable_status(c: &Connection) -> Result<()> {
    match c.status {
        Status::Active | Status::Invalid => Ok(()),
        other => Err(EngineError::Conflict(format!(
            "the connection is {}: it cannot be used until it is active",
            other.as_str()
        ))),
    }
}

pub(crate) fn call_error(e: CallError) -> EngineError {
    use patchbay_net::{HttpError, NetError};
    match e {
        CallError::Invalid(m) => EngineError::BadRequest {
            code: "bad_request",
            message: m,
        },
        CallError::Unusable(m) => EngineError::Conflict(m),
        CallError::Http(HttpError::Net(n @ NetError::Blocked { .. })) => {
            EngineError::Blocked(n.to_string())
        }
        CallError::Http(HttpError::Timeout) => {
            EngineError::Timeout("the upstream did not answer in time".into())
        }
        CallError::Http(h) => EngineError::Upstream(format!("the upstream failed: {h}")),
    }
}

impl Hub {
    /// Counts an upstream call by its outcome (and a refusal of the egress policy).
    fn observe_upstream<T>(
        &self,
        sent: &std::result::Result<http::Response<T>, CallError>,
        took: std::time::Duration,
    ) {
        use patchbay_net::{HttpError, NetError};
        let metrics = &self.core().metrics;
        let outcome = match sent {
            Ok(r) => crate::core::metrics::status_class(r.status().as_u16()),
            Err(CallError::Http(HttpError::Net(NetError::Blocked { .. }))) => {
                metrics.blocked();
                "blocked"
            }
            Err(CallError::Http(HttpError::Timeout)) => "timeout",
            Err(_) => "error",
        };
        metrics.upstream(outcome, took);
    }

    /// The connection `id`, prepared for `p` to act through (see the module docs).
    pub(crate) async fn prepared(&self, p: &Principal, id: &ConnectionId) -> Result<Arc<Prepared>> {
        if !p.can_use() {
            return Err(EngineError::forbidden(
                "acting through connections needs an admin, member or executor token",
            ));
        }
        let cached = self.inner.prepared.get(id.as_str());
        // Cache misses read the database: their futures are boxed, so the hot path's stays small.
        let prepared = match cached {
            Some(c) => c,
            None => Box::pin(self.prepare(p, id)).await?,
        };
        let c = &prepared.connection;
        if c.org_id.as_ref() != Some(&p.org_id) || !p.sees_project(&c.project) {
            return Err(EngineError::NotFound("connection"));
        }
        usable_status(c)?;
        if self.renewal_due(c) {
            return Box::pin(self.prepare(p, id)).await;
        }
        Ok(prepared)
    }

    async fn prepare(&self, p: &Principal, id: &ConnectionId) -> Result<Arc<Prepared>> {
        let since = self.inner.prepared.epoch();
        let c = self.visible_connection(p, id).await?;
        usable_status(&c)?;
        let c = self.ensure_fresh(p, c).await?;
        let material = self.material(p, &c).await?;
        let prepared = Arc::new(Prepared {
            connection: c,
            material,
        });
        self.inner
            .prepared
            .insert_read_since(since, id.to_string(), prepared.clone());
        Ok(prepared)
    }

    /// The prepared connection after its token was refused (401): renewed once, prepared again.
    pub(crate) async fn prepared_after_rejection(
        &self,
        p: &Principal,
        used: &Prepared,
    ) -> Result<Arc<Prepared>> {
        let id = used.connection.id.clone();
        // The renewal's write dropped the prepared connection everywhere.
        self.renew_rejected(p, &used.connection).await?;
        self.prepare(p, &id).await
    }

    /// `ANY /v1/proxy/{path}`: the request sent through an HTTP connection with its auth; the
    /// upstream's answer as it came (a 401 first renews an OAuth token once and tries again).
    pub async fn proxy(&self, p: &Principal, call: ProxyCall) -> Result<Answer> {
        let started = Instant::now();
        let prepared = self.prepared(p, &call.connection).await?;
        if prepared.connection.kind != Kind::Http {
            return Err(EngineError::BadRequest {
                code: "not_http",
                message: "the proxy serves http connections; use the actions for other kinds"
                    .into(),
            });
        }
        let (resp, used) = self.send(p, prepared, call.request).await?;
        self.record_use(
            p,
            &used.connection.id,
            Some("proxy.request"),
            call.caller,
            Some(resp.status().as_u16()),
            started,
        );
        Ok(resp)
    }

    /// Sends `request` through a prepared HTTP connection; on a 401 to a renewable token, renews
    /// once and sends again when the body can be replayed.
    pub(crate) async fn send(
        &self,
        p: &Principal,
        prepared: Arc<Prepared>,
        request: CallRequest,
    ) -> Result<(Answer, Arc<Prepared>)> {
        let policy = RetryPolicy::of(&prepared.material);
        let again = match &request.body {
            CallBody::Bytes(b) if crate::connections::renewable(&prepared.connection) => {
                Some(CallRequest {
                    method: request.method.clone(),
                    path: request.path.clone(),
                    query: request.query.clone(),
                    headers: request.headers.clone(),
                    body: CallBody::Bytes(b.clone()),
                })
            }
            _ => None,
        };
        // Boxed (here and below): the call's future is large, and this one would otherwise
        // hold and move a copy of it.
        let started = Instant::now();
        let sent = Box::pin(self.connectors().call(&prepared.material, request, policy)).await;
        self.observe_upstream(&sent, started.elapsed());
        let mut resp = sent.map_err(call_error)?;
        let Some(again) = again.filter(|_| resp.status() == http::StatusCode::UNAUTHORIZED) else {
            // An answer never carries back the credentials that were injected.
            prepared
                .material
                .redactor()
                .scrub_headers(resp.headers_mut());
            return Ok((resp, prepared));
        };
        drop(resp);
        let renewed = Box::pin(self.prepared_after_rejection(p, &prepared)).await?;
        let started = Instant::now();
        let sent = Box::pin(self.connectors().call(&renewed.material, again, policy)).await;
        self.observe_upstream(&sent, started.elapsed());
        let mut resp = sent.map_err(call_error)?;
        renewed
            .material
            .redactor()
            .scrub_headers(resp.headers_mut());
        Ok((resp, renewed))
    }

    /// Notes one use for the next flush.
    pub(crate) fn record_use(
        &self,
        p: &Principal,
        id: &ConnectionId,
        action: Option<&'static str>,
        caller: Option<String>,
        status: Option<u16>,
        started: Instant,
    ) {
        let latency = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let class = match status.map(|s| s / 100) {
            Some(c @ 1..=5) => usize::from(c) - 1,
            Some(_) => 5,
            None => 6,
        };
        let mut log = self.inner.usage.lock().unwrap_or_else(|e| e.into_inner());
        let by_token = match log.entries.get_mut(p.token_id.as_str()) {
            Some(m) => m,
            None => log.entries.entry(p.token_id.to_string()).or_default(),
        };
        let entry = match by_token.get_mut(id.as_str()) {
            Some(e) => e,
            None => by_token.entry(id.to_string()).or_insert_with(|| Usage {
                principal: p.clone(),
                connection: id.clone(),
                action,
                callers: BTreeSet::new(),
                count: 0,
                classes: [0; CLASSES.len()],
                latency_total_ms: 0,
                latency_max_ms: 0,
            }),
        };
        entry.count += 1;
        entry.classes[class] += 1;
        entry.latency_total_ms = entry.latency_total_ms.saturating_add(latency);
        entry.latency_max_ms = entry.latency_max_ms.max(latency);
        if let Some(c) = caller
            && entry.callers.len() < MAX_CALLERS
        {
            entry.callers.insert(c);
        }
    }

    /// Writes the uses noted since the last flush: `last_used_at`, `used_by` and a summary audit
    /// entry each, in one transaction.
    pub async fn flush_usage(&self) -> Result<usize> {
        let entries: Vec<Usage> = {
            let mut log = self.inner.usage.lock().unwrap_or_else(|e| e.into_inner());
            log.entries
                .drain()
                .flat_map(|(_, by_connection)| by_connection.into_values())
                .collect()
        };
        if entries.is_empty() {
            return Ok(0);
        }
        // The uses are at most a flush interval old: they are dated when written.
        let now = self.now();
        let mut w = self.write().await?;
        for u in &entries {
            let callers: Vec<String> = u.callers.iter().cloned().collect();
            w.record_use(
                &u.principal.org_id,
                &u.connection,
                now,
                &callers,
                MAX_CALLERS,
            )
            .await?;
            let Some(action) = u.action else {
                continue;
            };
            let statuses: BTreeMap<&str, u64> = CLASSES
                .iter()
                .zip(u.classes)
                .filter(|(_, n)| *n > 0)
                .map(|(k, n)| (*k, n))
                .collect();
            let failed = statuses
                .iter()
                .filter(|(k, _)| !k.starts_with('2') && !k.starts_with('3'))
                .map(|(_, n)| n)
                .sum::<u64>();
            let outcome = if failed == 0 { "success" } else { "failure" };
            let event = self.core().event(
                &u.principal,
                action,
                Some(u.connection.to_string()),
                outcome,
                json!({
                    "count": u.count,
                    "statuses": statuses,
                    "latency_ms_avg": u.latency_total_ms / u.count.max(1),
                    "latency_ms_max": u.latency_max_ms,
                    "callers": callers,
                }),
            );
            w.audit(event);
        }
        w.commit().await?;
        Ok(entries.len())
    }
}
