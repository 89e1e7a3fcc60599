//! HTTP connection test: the provider's verify request, or a GET of the base URL, with auth.
//! Redirects are followed by hand, each hop through the gate, so a redirect cannot lead a
//! test into a denied range.

use std::time::Duration;

use patchbay_domain::api::ErrorKind;
use reqwest::{Method, StatusCode};

use crate::{Connectors, Material, Outcome, apply_auth};

const MAX_REDIRECTS: usize = 5;

pub(crate) async fn test(c: &Connectors, m: &Material, timeout: Duration) -> Outcome {
    let Some(base) = m.config_str("base_url") else {
        return Outcome::fail(ErrorKind::Protocol, "config.base_url is not set");
    };
    let verify_path = m.config_str("verify_path");
    let mut url = match url::Url::parse(&format!(
        "{}{}",
        base.trim_end_matches('/'),
        verify_path.unwrap_or("")
    )) {
        Ok(u) => u,
        Err(e) => return Outcome::fail(ErrorKind::Protocol, format!("invalid URL: {e}")),
    };
    let base_host = url.host_str().map(str::to_owned);
    for _ in 0..=MAX_REDIRECTS {
        let mut req = reqwest::Request::new(Method::GET, url.clone());
        *req.timeout_mut() = Some(timeout);
        // Credentials go only to the connection's own host, never to a redirect target.
        if url.host_str().map(str::to_owned) == base_host {
            if let Err(e) = apply_auth(c.http(), m, &mut req).await {
                return e.into();
            }
        }
        let resp = match c.http().execute(req).await {
            Ok(r) => r,
            Err(e) => return e.into(),
        };
        let status = resp.status();
        if status.is_redirection() {
            let Some(next) = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
            else {
                return Outcome::fail(
                    ErrorKind::Protocol,
                    format!("HTTP {} without a Location", status.as_u16()),
                )
                .status(status.as_u16());
            };
            url = match url.join(next) {
                Ok(u) => u,
                Err(_) => {
                    return Outcome::fail(ErrorKind::Protocol, "a redirect to an invalid URL")
                        .status(status.as_u16());
                }
            };
            continue;
        }
        return verdict(status, verify_path.is_some());
    }
    Outcome::fail(
        ErrorKind::Protocol,
        format!("more than {MAX_REDIRECTS} redirects"),
    )
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
