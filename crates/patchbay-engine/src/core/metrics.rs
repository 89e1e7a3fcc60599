//! What `/metrics` reports, in the Prometheus text format: the engine's counters (renewals,
//! connection tests, deliveries, blocked egress, upstream calls of the proxy and actions), the
//! HTTP layer's requests and latencies (recorded by the server through [`Metrics::request`]),
//! and gauges read when scraped (caches, the vault, open connections).
//!
//! The series every request touches (requests and their latency, upstream calls) are kept per
//! serving thread and summed when scraped, so that recording one is a few additions on the
//! thread's own memory: no shared counter bounces between cores on the hot path.
//!
//! Labels take values from fixed sets or from the server's own route templates, never from
//! what a caller or a provider sent, so a hostile peer cannot grow the series without bound.
//! No label or value is a secret.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::exponential_buckets;
use prometheus_client::registry::Registry;

/// Latency buckets (their upper bounds) from 0.1 ms to about 15 s.
const BUCKETS: usize = 14;

fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.0001, 2.5, BUCKETS as u16)
}

/// The count and latency of one series as one thread saw them.
#[derive(Debug, Clone, Default)]
struct Tally {
    count: u64,
    sum: f64,
    /// Observations per bucket (not cumulative), the last one past every bound.
    buckets: [u64; BUCKETS + 1],
}

impl Tally {
    fn add(&mut self, secs: f64, bounds: &[f64; BUCKETS]) {
        self.count += 1;
        self.sum += secs;
        let i = bounds.iter().position(|b| secs <= *b).unwrap_or(BUCKETS);
        self.buckets[i] += 1;
    }

    fn merge(&mut self, other: &Tally) {
        self.count += other.count;
        self.sum += other.sum;
        for (a, b) in self.buckets.iter_mut().zip(other.buckets) {
            *a += b;
        }
    }
}

type Series<K> = HashMap<K, Tally, foldhash::fast::RandomState>;

/// Series kept per thread: each thread locks only its own map (uncontended but for a scrape).
struct Sharded<K: Send> {
    shards: thread_local::ThreadLocal<Mutex<Series<K>>>,
    bounds: [f64; BUCKETS],
}

impl<K: Hash + Eq + Clone + Send> Sharded<K> {
    fn new() -> Self {
        let mut bounds = [0.0; BUCKETS];
        for (b, v) in bounds.iter_mut().zip(latency_buckets()) {
            *b = v;
        }
        Self {
            shards: thread_local::ThreadLocal::new(),
            bounds,
        }
    }

    fn record(&self, key: &K, took: Duration) {
        let secs = took.as_secs_f64();
        let mut series = self
            .shards
            .get_or_default()
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match series.get_mut(key) {
            Some(t) => t.add(secs, &self.bounds),
            None => series
                .entry(key.clone())
                .or_default()
                .add(secs, &self.bounds),
        }
    }

    /// Every thread's series, summed.
    fn merged(&self) -> Vec<(K, Tally)> {
        let mut all: Series<K> = HashMap::default();
        for shard in self.shards.iter() {
            let series = shard.lock().unwrap_or_else(|e| e.into_inner());
            for (k, t) in series.iter() {
                all.entry(k.clone()).or_default().merge(t);
            }
        }
        all.into_iter().collect()
    }

    /// Encodes the series as a counter family `counter` and a histogram family `histogram`.
    fn encode<S: EncodeLabelSet>(
        &self,
        encoder: &mut DescriptorEncoder,
        counter: (&str, &str),
        histogram: (&str, &str),
        labels: impl Fn(&K) -> S,
    ) -> Result<(), std::fmt::Error> {
        let merged = self.merged();
        let mut family =
            encoder.encode_descriptor(counter.0, counter.1, None, MetricType::Counter)?;
        for (k, t) in &merged {
            let set = labels(k);
            family
                .encode_family(&set)?
                .encode_counter::<NoLabelSet, _, u64>(&t.count, None)?;
        }
        let mut family =
            encoder.encode_descriptor(histogram.0, histogram.1, None, MetricType::Histogram)?;
        for (k, t) in &merged {
            let buckets: Vec<(f64, u64)> = self
                .bounds
                .iter()
                .copied()
                .chain(std::iter::once(f64::INFINITY))
                .zip(t.buckets)
                .collect();
            let set = labels(k);
            family
                .encode_family(&set)?
                .encode_histogram::<NoLabelSet>(t.sum, t.count, &buckets, None)?;
        }
        Ok(())
    }
}

impl<K: Send> std::fmt::Debug for Sharded<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sharded").finish_non_exhaustive()
    }
}

/// The per-thread series, encoded on each scrape.
#[derive(Debug)]
struct HotSeries {
    requests: Arc<Sharded<RequestLabels>>,
    upstream: Arc<Sharded<&'static str>>,
}

impl Collector for HotSeries {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        self.requests.encode(
            &mut encoder,
            (
                "http_requests",
                "HTTP requests answered, by route and status",
            ),
            (
                "http_request_duration_seconds",
                "Time to the answer's headers, by route and status",
            ),
            Clone::clone,
        )?;
        self.upstream.encode(
            &mut encoder,
            (
                "upstream_requests",
                "Requests sent upstream by the proxy and actions, by outcome (status class, timeout, blocked, error)",
            ),
            (
                "upstream_duration_seconds",
                "Time to an upstream's answer headers, by outcome",
            ),
            |outcome| OutcomeLabels { outcome },
        )
    }
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

/// The registry and the handles that record into it.
pub struct Metrics {
    registry: Registry,
    requests: Arc<Sharded<RequestLabels>>,
    upstream: Arc<Sharded<&'static str>>,
    renewals: Family<RenewalLabels, Counter>,
    tests: Family<OutcomeLabels, Counter>,
    deliveries: Family<OutcomeLabels, Counter>,
    tool_calls: Family<OutcomeLabels, Counter>,
    inbound: Family<OutcomeLabels, Counter>,
    blocked: Counter,
    cache_entries: Family<CacheLabels, Gauge>,
    cache_misses: Family<CacheLabels, Gauge>,
    cache_invalidations: Family<CacheLabels, Gauge>,
    sealed: Gauge,
    open_connections: Gauge,
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
        let requests = Arc::new(Sharded::new());
        let upstream = Arc::new(Sharded::new());
        registry.register_collector(Box::new(HotSeries {
            requests: requests.clone(),
            upstream: upstream.clone(),
        }));
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
        let tool_calls = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "mcp_tool_calls",
            "MCP tool calls (actions, nodes and the gateway), by outcome: success, tool_error (the tool answered isError), failure",
            tool_calls.clone(),
        );
        let inbound = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "inbound_deliveries",
            "Deliveries to inbound webhook endpoints: accepted, duplicate, or refused by reason (missing, malformed, mismatch, stale, too_large)",
            inbound.clone(),
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
            upstream,
            renewals,
            tests,
            deliveries,
            tool_calls,
            inbound,
            blocked,
            cache_entries,
            cache_misses,
            cache_invalidations,
            sealed,
            open_connections,
        }
    }
}

impl Metrics {
    /// One answered HTTP request.
    pub fn request(&self, labels: &RequestLabels, took: Duration) {
        self.requests.record(labels, took);
    }

    /// The client connections open now (read from the server's counters when scraped).
    pub fn set_open_connections(&self, n: i64) {
        self.open_connections.set(n);
    }

    /// One upstream call: `status` when it answered.
    pub(crate) fn upstream(&self, outcome: &'static str, took: Duration) {
        self.upstream.record(&outcome, took);
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

    /// A delivery to an inbound endpoint: `accepted`, `duplicate`, or why it was refused.
    pub(crate) fn inbound(&self, outcome: &'static str) {
        self.inbound.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    pub(crate) fn blocked(&self) {
        self.blocked.inc();
    }

    /// An MCP tool call: `success`, `tool_error` or `failure`.
    pub(crate) fn tool_call(&self, outcome: &'static str) {
        self.tool_calls
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
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
    fn series_of_every_thread_are_summed_into_counts_and_buckets() {
        let m = Arc::new(Metrics::default());
        let labels = RequestLabels {
            method: "GET",
            route: "/v1/proxy".into(),
            status: 200,
        };
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let (m, labels) = (m.clone(), labels.clone());
                std::thread::spawn(move || {
                    for i in 0..100u64 {
                        m.request(&labels, Duration::from_micros(50 + i * 1000));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        m.upstream("2xx", Duration::from_millis(2));
        let text = m.encode(&[], false);
        let line = |name: &str| {
            text.lines()
                .find(|l| l.starts_with(name))
                .unwrap_or_else(|| panic!("{name} in {text}"))
                .rsplit_once(' ')
                .unwrap()
                .1
                .to_owned()
        };
        let labels = r#"{method="GET",route="/v1/proxy",status="200"}"#;
        assert_eq!(
            line(&format!("patchbay_http_requests_total{labels}")),
            "300"
        );
        assert_eq!(
            line(&format!(
                "patchbay_http_request_duration_seconds_count{labels}"
            )),
            "300"
        );
        assert_eq!(
            line(r#"patchbay_http_request_duration_seconds_bucket{le="0.0001","#),
            "3",
            "one observation per thread under 0.1 ms"
        );
        assert_eq!(
            line(r#"patchbay_http_request_duration_seconds_bucket{le="+Inf","#),
            "300"
        );
        assert_eq!(
            line(r#"patchbay_upstream_requests_total{outcome="2xx"}"#),
            "1"
        );
    }

    #[test]
    fn status_classes() {
        assert_eq!(status_class(204), "2xx");
        assert_eq!(status_class(404), "4xx");
        assert_eq!(status_class(599), "5xx");
    }
}
