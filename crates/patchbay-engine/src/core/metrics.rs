//! What `/metrics` reports, in the Prometheus text format: the engine's counters (renewals,
//! connection tests, deliveries, blocked egress, upstream calls of the proxy and actions), the
//! HTTP layer's requests and latencies (recorded by the server through [`Metrics::request`]),
//! and gauges read when scraped (caches, the vault, open connections).
//!
//! Labels take values from fixed sets or from the server's own route templates, never from
//! what a caller or a provider sent, so a hostile peer cannot grow the series without bound.
//! No label or value is a secret.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Latency buckets from 0.1 ms to about 26 s.
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.0001, 2.5, 14)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: &'static str,
    /// The route template (`/v1/connections/{id}`), `/v1/proxy`, or `unmatched`.
    pub route: std::borrow::Cow<'static, str>,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RenewalLabels {
    grant: &'static str,
    outcome: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    cache: &'static str,
}

fn histogram() -> Histogram {
    Histogram::new(latency_buckets())
}

/// The registry and the handles that record into it.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Family<RequestLabels, Histogram, fn() -> Histogram>,
    upstream: Family<OutcomeLabels, Counter>,
    upstream_seconds: Family<OutcomeLabels, Histogram, fn() -> Histogram>,
    renewals: Family<RenewalLabels, Counter>,
    tests: Family<OutcomeLabels, Counter>,
    deliveries: Family<OutcomeLabels, Counter>,
    blocked: Counter,
    cache_entries: Family<CacheLabels, Gauge>,
    cache_misses: Family<CacheLabels, Gauge>,
    cache_invalidations: Family<CacheLabels, Gauge>,
    sealed: Gauge,
    open_connections: Gauge,
    open_now: AtomicI64,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// The OAuth error codes a renewal's failure is counted under; anything else is `other`.
const REASONS: [&str; 8] = [
    "invalid_grant",
    "invalid_client",
    "unauthorized_client",
    "invalid_scope",
    "invalid_request",
    "temporarily_unavailable",
    "server_error",
    "access_denied",
];

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("patchbay");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route and status",
            requests.clone(),
        );
        let request_seconds: Family<RequestLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time to the answer's headers, by route and status",
            request_seconds.clone(),
        );
        let upstream = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "upstream_requests",
            "Requests sent upstream by the proxy and actions, by outcome (status class, timeout, blocked, error)",
            upstream.clone(),
        );
        let upstream_seconds: Family<OutcomeLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(histogram);
        registry.register(
            "upstream_duration_seconds",
            "Time to an upstream's answer headers, by outcome",
            upstream_seconds.clone(),
        );
        let renewals = Family::<RenewalLabels, Counter>::default();
        registry.register(
            "token_renewals",
            "OAuth token renewals, by grant, outcome and the provider's reason",
            renewals.clone(),
        );
        let tests = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "connection_tests",
            "Connection tests, by outcome",
            tests.clone(),
        );
        let deliveries = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "deliveries",
            "Webhook deliveries queued, delivered, retried and dead-lettered",
            deliveries.clone(),
        );
        let blocked = Counter::default();
        registry.register(
            "egress_blocked",
            "Outbound connections the egress policy refused",
            blocked.clone(),
        );
        let cache_entries = Family::<CacheLabels, Gauge>::default();
        registry.register("cache_entries", "Entries in a cache", cache_entries.clone());
        let cache_misses = Family::<CacheLabels, Gauge>::default();
        registry.register(
            "cache_misses",
            "Lookups a cache could not answer, since start",
            cache_misses.clone(),
        );
        let cache_invalidations = Family::<CacheLabels, Gauge>::default();
        registry.register(
            "cache_invalidations",
            "Invalidations of a cache, since start",
            cache_invalidations.clone(),
        );
        let sealed = Gauge::default();
        registry.register(
            "vault_sealed",
            "1 when the vault is sealed (no secret can be used)",
            sealed.clone(),
        );
        let open_connections = Gauge::default();
        registry.register(
            "open_connections",
            "Client connections open now",
            open_connections.clone(),
        );
        Self {
            registry,
            requests,
            request_seconds,
            upstream,
            upstream_seconds,
            renewals,
            tests,
            deliveries,
            blocked,
            cache_entries,
            cache_misses,
            cache_invalidations,
            sealed,
            open_connections,
            open_now: AtomicI64::new(0),
        }
    }
}

impl Metrics {
    /// One answered HTTP request.
    pub fn request(&self, labels: &RequestLabels, took: Duration) {
        self.requests.get_or_create(labels).inc();
        self.request_seconds
            .get_or_create(labels)
            .observe(took.as_secs_f64());
    }

    /// The client connections open now (read from the server's counters when scraped).
    pub fn set_open_connections(&self, n: i64) {
        self.open_now.store(n, Ordering::Relaxed);
    }

    /// One upstream call: `status` when it answered.
    pub(crate) fn upstream(&self, outcome: &'static str, took: Duration) {
        let labels = OutcomeLabels { outcome };
        self.upstream.get_or_create(&labels).inc();
        self.upstream_seconds
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// One renewal; `error` is the provider's code or the failure, `None` when it worked.
    pub(crate) fn renewal(&self, grant: &'static str, error: Option<&str>) {
        let (outcome, reason) = match error {
            None => ("ok", ""),
            Some(e) => (
                "failed",
                REASONS
                    .iter()
                    .find(|r| **r == e)
                    .copied()
                    .unwrap_or("other"),
            ),
        };
        self.renewals
            .get_or_create(&RenewalLabels {
                grant,
                outcome,
                reason,
            })
            .inc();
    }

    pub(crate) fn test(&self, success: bool) {
        let outcome = if success { "success" } else { "failure" };
        self.tests.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    /// A delivery `queued`, `delivered`, `retried` or `dead`.
    pub(crate) fn delivery(&self, outcome: &'static str) {
        self.deliveries
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    pub(crate) fn blocked(&self) {
        self.blocked.inc();
    }

    /// The text exposition, with the gauges read now.
    pub(crate) fn encode(
        &self,
        caches: &[(&'static str, super::cache::CacheStats)],
        sealed: bool,
    ) -> String {
        for (cache, stats) in caches {
            let labels = CacheLabels { cache };
            let set = |family: &Family<CacheLabels, Gauge>, v: u64| {
                family
                    .get_or_create(&labels)
                    .set(i64::try_from(v).unwrap_or(i64::MAX));
            };
            set(&self.cache_entries, stats.entries);
            set(&self.cache_misses, stats.misses);
            set(&self.cache_invalidations, stats.invalidations);
        }
        self.sealed.set(i64::from(sealed));
        self.open_connections
            .set(self.open_now.load(Ordering::Relaxed));
        let mut out = String::with_capacity(16 * 1024);
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The outcome label of an upstream answer's status.
pub(crate) fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_reasons_come_from_a_fixed_set() {
        let m = Metrics::default();
        m.renewal("refresh_token", Some("invalid_grant"));
        m.renewal("refresh_token", Some("sk_live_not_a_code_at_all"));
        m.renewal("client_credentials", None);
        let text = m.encode(&[], false);
        assert!(text.contains(r#"patchbay_token_renewals_total{grant="refresh_token",outcome="failed",reason="invalid_grant"} 1"#), "{text}");
        assert!(text.contains(r#"reason="other"} 1"#), "{text}");
        assert!(!text.contains("sk_live"), "{text}");
        assert!(text.contains(r#"patchbay_token_renewals_total{grant="client_credentials",outcome="ok",reason=""} 1"#), "{text}");
        assert!(text.contains("patchbay_vault_sealed 0"), "{text}");
    }

    #[test]
    fn status_classes() {
        assert_eq!(status_class(204), "2xx");
        assert_eq!(status_class(404), "4xx");
        assert_eq!(status_class(599), "5xx");
    }
}
