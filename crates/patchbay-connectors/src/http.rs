//! HTTP connection test: the provider's verify request, or a GET of the base URL, with auth.
//! Redirects are followed through the gate, each hop checked, so a redirect cannot lead a
//! test into a denied range; credentials are not carried to another host.

use std::time::Duration;

use patchbay_domain::api::ErrorKind;
use reqwest::{Method, StatusCode};

use crate::{Connectors, Material, Outcome, apply_auth};

pub(crate) async fn test(c: &Connectors, m: &Material, timeout: Duration) -> Outcome {
    let Some(base) = m.config_str("base_url") else {
        return Outcome::fail(ErrorKind::Protocol, "config.base_url is not set");
    };
    let verify_path = m.config_str("verify_path");
    let url = match url::Url::parse(&format!(
        "{}{}",
        base.trim_end_matches('/'),
        verify_path.unwrap_or("")
    )) {
        Ok(u) => u,
        Err(e) => return Outcome::fail(ErrorKind::Protocol, format!("invalid URL: {e}")),
    };
    let mut req = reqwest::Request::new(Method::GET, url);
    *req.timeout_mut() = Some(timeout);
    // The connection's default headers (never credentials: validation keeps those out).
    for (k, v) in m
        .config
        .get("headers")
        .and_then(serde_json::Value::as_object)
        .into_iter()
        .flatten()
    {
        if let (Ok(name), Some(Ok(value))) = (
            reqwest::header::HeaderName::from_bytes(k.as_bytes()),
            v.as_str().map(reqwest::header::HeaderValue::from_str),
        ) {
            req.headers_mut().insert(name, value);
        }
    }
    if let Err(e) = apply_auth(c.http(), m, &mut req).await {
        return e.into();
    }
    match c.http().execute_following(req).await {
        Ok(resp) => verdict(resp.status(), verify_path.is_some()),
        Err(e) => e.into(),
    }
}

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
