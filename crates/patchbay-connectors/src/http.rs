//! HTTP connection test: the provider's verify request, or a GET of the base URL, with auth.
//! Redirects are followed through the gate, each hop checked, so a redirect cannot lead a
//! test into a denied range; credentials are not carried to another host.

use std::time::Duration;

use patchbay_domain::api::ErrorKind;
use patchbay_domain::spec::HttpConfig;
use reqwest::{Method, StatusCode};

use patchbay_net::read_capped;

use crate::{Connectors, Material, Outcome, apply_auth};

pub(crate) async fn test(
    c: &Connectors,
    m: &Material,
    config: &HttpConfig,
    timeout: Duration,
) -> Outcome {
    let Some(base) = config.base_url.as_deref() else {
        return Outcome::fail(ErrorKind::Protocol, "config.base_url is not set");
    };
    let verify = m.verify.as_ref();
    let url = match url::Url::parse(&format!(
        "{}{}",
        base.trim_end_matches('/'),
        verify.map_or("", |v| v.path.as_str())
    )) {
        Ok(u) => u,
        Err(e) => return Outcome::fail(ErrorKind::Protocol, format!("invalid URL: {e}")),
    };
    let method = verify
        .and_then(|v| Method::from_bytes(v.method.as_bytes()).ok())
        .unwrap_or(Method::GET);
    let mut req = reqwest::Request::new(method, url);
    *req.timeout_mut() = Some(timeout);
    for (name, value) in m.default_headers() {
        req.headers_mut().insert(name, value);
    }
    let applied = match &m.auth {
        patchbay_domain::spec::Auth::AwsSigv4(a) => sign_test(m, a, &mut req),
        _ => apply_auth(c.http(), m, &mut req).await,
    };
    if let Err(e) = applied {
        return e.into();
    }
    let resp = match c.http().execute_following(req).await {
        Ok(resp) => resp,
        Err(e) => return e.into(),
    };
    let status = resp.status();
    let Some(verify) = verify.filter(|_| status.is_success()) else {
        return verdict(status, verify.is_some());
    };
    let scopes = verify.scopes_header.as_deref().and_then(|h| {
        let listed = resp.headers().get(h)?.to_str().ok()?;
        Some(
            listed
                .split([',', ' '])
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>(),
        )
    });
    let body: Option<serde_json::Value> = if verify.account.is_some() || verify.ok_field.is_some() {
        match tokio::time::timeout(
            timeout,
            read_capped(reqwest::Body::from(resp), MAX_VERIFY_BODY),
        )
        .await
        {
            Ok(Ok(b)) => serde_json::from_slice(&b).ok(),
            _ => None,
        }
    } else {
        None
    };
    if let Some(field) = &verify.ok_field {
        let ok = body
            .as_ref()
            .and_then(|b| b.get(field))
            .and_then(serde_json::Value::as_bool);
        if ok != Some(true) {
            let error = body
                .as_ref()
                .and_then(|b| b.get("error"))
                .and_then(serde_json::Value::as_str)
                .map(|e| {
                    e.chars()
                        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .take(64)
                        .collect::<String>()
                })
                .unwrap_or_else(|| format!("{field} is not true"));
            let kind = if ["auth", "token", "account"]
                .iter()
                .any(|w| error.contains(w))
            {
                ErrorKind::Auth
            } else {
                ErrorKind::Protocol
            };
            return Outcome::fail(kind, format!("the provider answered {error}"))
                .status(status.as_u16());
        }
    }
    let mut outcome = verdict(status, true);
    outcome.account =
        verify
            .account
            .as_deref()
            .and_then(|pointer| match body.as_ref()?.pointer(pointer)? {
                serde_json::Value::String(s) if !s.is_empty() => {
                    Some(s.chars().take(256).collect())
                }
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            });
    outcome.scopes = scopes;
    outcome
}

/// Signs a connection test's request (it has no body).
fn sign_test(
    m: &Material,
    a: &patchbay_domain::spec::AwsSigv4Auth,
    req: &mut reqwest::Request,
) -> Result<(), crate::AuthError> {
    let scope = crate::sigv4::Scope::of(a);
    let url = req.url().clone();
    let host = crate::sigv4::host_of(&url)?;
    req.headers_mut().insert(
        reqwest::header::HOST,
        host.parse()
            .map_err(|_| crate::AuthError::Unsupported("the host is not valid".into()))?,
    );
    let method = req.method().clone();
    crate::sigv4::sign_headers(
        m,
        scope,
        &method,
        url.as_str(),
        req.headers_mut(),
        crate::sigv4::Payload::Bytes(b""),
        std::time::SystemTime::now(),
    )
}

/// Bodies of verify answers larger than this are not read for the account.
const MAX_VERIFY_BODY: usize = 1 << 20;

fn verdict(status: StatusCode, explicit_verify: bool) -> Outcome {
    let code = status.as_u16();
    match code {
        401 | 403 => {
            Outcome::fail(ErrorKind::Auth, format!("Authentication failed: {code}")).status(code)
        }
        200..=299 => Outcome::ok(format!("Connected (HTTP {code})")).status(code),
        500..=599 => Outcome::fail(
            ErrorKind::Protocol,
            format!("the server answered HTTP {code}"),
        )
        .status(code),
        _ if explicit_verify => Outcome::fail(
            ErrorKind::Protocol,
            format!("the verify request answered HTTP {code}"),
        )
        .status(code),
        // A base URL need not serve anything itself; reaching it without an auth refusal counts.
        _ => Outcome::ok(format!("Reachable (HTTP {code} on the base URL)")).status(code),
    }
}
