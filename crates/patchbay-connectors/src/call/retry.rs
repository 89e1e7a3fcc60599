//! When a call is tried again, and how long one may take.

use std::time::Duration;

use patchbay_domain::spec::HttpConfig;
use reqwest::header::{self, HeaderMap};
use reqwest::{Method, StatusCode};

use crate::Material;

/// How a connection retries: `config.retries` extra attempts, `config.backoff_ms` doubled
/// each time (defaults: [`HttpConfig`]), `Retry-After` honoured up to `max_wait`.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub retries: u32,
    pub backoff: Duration,
    pub max_wait: Duration,
}

impl RetryPolicy {
    pub fn of(m: &Material) -> Self {
        m.plan().map_or_else(|| policy_of(m), |p| p.policy)
    }
}

pub(super) fn policy_of(m: &Material) -> RetryPolicy {
    let config = m.spec.http();
    RetryPolicy {
        retries: config.map_or(HttpConfig::RETRIES, |c| c.retries),
        backoff: Duration::from_millis(config.map_or(HttpConfig::BACKOFF_MS, |c| c.backoff_ms)),
        max_wait: Duration::from_secs(30),
    }
}

pub(super) fn idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

pub(super) fn retryable(s: StatusCode) -> bool {
    s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error()
}

/// `Retry-After` as seconds or an HTTP date.
pub(super) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

/// The connection's timeout (`config.timeout_ms`; default [`HttpConfig::TIMEOUT_MS`]).
pub fn call_timeout(m: &Material) -> Duration {
    m.plan().map_or_else(|| timeout_of(m), |p| p.timeout)
}

pub(super) fn timeout_of(m: &Material) -> Duration {
    Duration::from_millis(
        m.spec
            .http()
            .map_or(HttpConfig::TIMEOUT_MS, |c| c.timeout_ms),
    )
}
