//! A connection's plan: what every call through it shares, worked out once.

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use http::uri::PathAndQuery;
use patchbay_net::Destination;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use secrecy::ExposeSecret as _;

use super::retry::{RetryPolicy, policy_of, timeout_of};
use super::url::{base_url, check_path, path_safe, query_safe};
use super::{CallError, add_defaults};
use crate::Material;
use crate::auth::{Inject, credentials};

/// What every call through a connection shares, worked out the first time the connection is
/// used and kept with its material: where requests go, the base path and query, the default
/// headers, the credentials (for the auth types that need no request of their own), the
/// timeout and the retries. A connection whose calls cannot be planned (no or a bad base URL,
/// credentials missing or fetched per call) takes the general path, which says what is wrong;
/// so does a request whose path or query a URL would have to encode.
#[derive(Debug)]
pub struct Plan {
    pub(super) to: Destination,
    /// The base URL's path, as a URL serialises it.
    base_path: String,
    base_query: Option<String>,
    defaults: Vec<(HeaderName, HeaderValue)>,
    /// Credentials carried in headers and cookies, in order.
    headers: Vec<Inject>,
    /// Credentials carried in the query, encoded.
    query: Option<secrecy::SecretString>,
    pub(super) timeout: Duration,
    pub(super) policy: RetryPolicy,
}

/// A material's plan and the redactor of its answers, each made on first use.
#[derive(Default)]
pub struct PlanCell(OnceLock<Option<Plan>>, OnceLock<crate::redact::Redactor>);

impl std::fmt::Debug for PlanCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PlanCell")
    }
}

impl Material {
    /// How calls through this material are made, if they can be planned.
    pub(super) fn plan(&self) -> Option<&Plan> {
        self.plan.0.get_or_init(|| Plan::of(self)).as_ref()
    }

    /// What keeps this material's credential values out of the answers relayed to callers.
    pub fn redactor(&self) -> &crate::redact::Redactor {
        self.plan
            .1
            .get_or_init(|| crate::redact::Redactor::of(self))
    }
}

impl Plan {
    fn of(m: &Material) -> Option<Self> {
        let base = base_url(m).ok()?;
        // An empty query or a fragment the general path keeps (or refuses) as they are.
        if base.query() == Some("") || base.fragment().is_some() {
            return None;
        }
        let uri = http::Uri::try_from(base.as_str()).ok()?;
        let to = Destination::of(&uri).ok()?;
        let mut headers = Vec::new();
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        let mut queried = false;
        // None for an `aws_sigv4` connection too: the general path signs each request.
        for inject in credentials(m).ok()?? {
            match inject {
                Inject::Query(name, value) => {
                    query.append_pair(&name, value.expose_secret());
                    queried = true;
                }
                other => headers.push(other),
            }
        }
        Some(Self {
            to,
            base_path: base.path().to_owned(),
            base_query: base.query().map(str::to_owned),
            defaults: m.default_headers().collect(),
            headers,
            query: queried.then(|| query.finish().into()),
            timeout: timeout_of(m),
            policy: policy_of(m),
        })
    }

    /// The path and query of a call to `path` with `query`; `None` when they hold characters
    /// a URL would encode (the general path does that).
    pub(super) fn path_and_query(
        &self,
        path: &str,
        query: Option<&str>,
    ) -> Result<Option<PathAndQuery>, CallError> {
        let trimmed = path.trim_start_matches('/');
        check_path(trimmed)?;
        let query = query.filter(|q| !q.is_empty());
        if !trimmed.bytes().all(path_safe) || !query.unwrap_or("").bytes().all(query_safe) {
            return Ok(None);
        }
        let credentials = self.query.as_ref().map(|q| q.expose_secret());
        let parts = [self.base_query.as_deref(), query, credentials];
        let mut out = String::with_capacity(
            self.base_path.len()
                + 1
                + trimmed.len()
                + parts.iter().flatten().map(|p| p.len() + 1).sum::<usize>(),
        );
        if trimmed.is_empty() {
            out.push_str(&self.base_path);
        } else {
            out.push_str(self.base_path.trim_end_matches('/'));
            out.push('/');
            out.push_str(trimmed);
        }
        let mut separator = '?';
        for part in parts.into_iter().flatten() {
            out.push(separator);
            out.push_str(part);
            separator = '&';
        }
        PathAndQuery::from_maybe_shared(Bytes::from(out))
            .map(Some)
            .map_err(|_| CallError::Invalid("the URL cannot be sent".into()))
    }

    /// Adds the default headers the caller did not set, then the credentials.
    pub(super) fn fill(&self, headers: &mut HeaderMap) -> Result<(), CallError> {
        add_defaults(headers, self.defaults.iter().cloned());
        for inject in &self.headers {
            inject.to_headers(headers)?;
        }
        Ok(())
    }
}
