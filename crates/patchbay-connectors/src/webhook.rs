//! Outbound webhooks signed the Standard Webhooks way: `webhook-id`, `webhook-timestamp` and
//! `webhook-signature: v1,<base64 HMAC-SHA256(id.timestamp.body)>`. The test sends a signed
//! payload marked `X-Test: true`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use patchbay_domain::api::ErrorKind;
use patchbay_domain::spec::{Auth, ConnectionSpec};
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use secrecy::ExposeSecret;
use sha2::Sha256;

use crate::{Connectors, Material, Outcome};

/// The HMAC key of a secret: the bytes after `whsec_` (base64), or the string itself.
pub fn signing_key(secret: &str) -> Vec<u8> {
    match secret
        .strip_prefix("whsec_")
        .and_then(|b| STANDARD.decode(b).ok())
    {
        Some(bytes) => bytes,
        None => secret.as_bytes().to_vec(),
    }
}

/// `v1,<signature>` over `{id}.{timestamp}.{body}`.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(&signing_key(secret))
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// A fresh message id, stable across the retries of one delivery.
pub fn message_id() -> String {
    format!("msg_{}", hex_id())
}

fn hex_id() -> String {
    rand::random::<[u8; 12]>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Builds a signed request for `body` to the webhook connection's URL.
pub fn signed_request(
    m: &Material,
    id: &str,
    timestamp: i64,
    body: Vec<u8>,
    test: bool,
) -> Result<reqwest::Request, String> {
    let ConnectionSpec::Webhook(config) = &m.spec else {
        return Err("not a webhook connection".into());
    };
    let url = url::Url::parse(&config.url).map_err(|e| format!("config.url: {e}"))?;
    let method = Method::from_bytes(config.method.as_str().as_bytes())
        .map_err(|_| "config.method".to_owned())?;
    let mut req = reqwest::Request::new(method, url);
    let h = req.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for (name, value) in m.default_headers() {
        h.insert(name, value);
    }
    let header = |v: &str| HeaderValue::from_str(v).map_err(|_| "header value".to_owned());
    h.insert("webhook-id", header(id)?);
    h.insert("webhook-timestamp", header(&timestamp.to_string())?);
    if test {
        h.insert("x-test", HeaderValue::from_static("true"));
    }
    if let Auth::Hmac = m.auth {
        let secret = m.secret("secret").ok_or("secrets.secret is not set")?;
        h.insert(
            "webhook-signature",
            header(&sign(secret.expose_secret(), id, timestamp, &body))?,
        );
    } else {
        // Bearer (or none): injected as every other kind's credentials are.
        let injects = crate::auth::credentials(m)
            .map_err(|e| e.to_string())?
            .unwrap_or_default();
        for inject in &injects {
            inject.to_headers(h).map_err(|e| e.to_string())?;
        }
    }
    *req.body_mut() = Some(body.into());
    Ok(req)
}

pub(crate) async fn test(c: &Connectors, m: &Material) -> Outcome {
    let id = message_id();
    let ts = chrono::Utc::now().timestamp();
    let body = serde_json::json!({"type": "patchbay.test", "timestamp": ts, "data": {"message": "Patchbay connection test"}});
    let req = match signed_request(m, &id, ts, body.to_string().into_bytes(), true) {
        Ok(r) => r,
        Err(e) => return Outcome::fail(ErrorKind::Protocol, e),
    };
    let resp = match c.http().execute_following(req).await {
        Ok(r) => r,
        Err(e) => return e.into(),
    };
    let code = resp.status().as_u16();
    match code {
        200..=299 => {
            Outcome::ok(format!("Delivered a signed test event (HTTP {code})")).status(code)
        }
        401 | 403 => {
            Outcome::fail(ErrorKind::Auth, format!("Authentication failed: {code}")).status(code)
        }
        410 => Outcome::fail(ErrorKind::Protocol, "the endpoint is gone (HTTP 410)").status(code),
        _ => Outcome::fail(
            ErrorKind::Protocol,
            format!("the endpoint answered HTTP {code}"),
        )
        .status(code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification.
    #[test]
    fn signature_matches_the_specification_example() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            sign(secret, id, 1_614_265_330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn raw_secrets_are_used_as_bytes() {
        assert_eq!(signing_key("plain-secret-value"), b"plain-secret-value");
        assert_eq!(signing_key("whsec_AAEC").len(), 3);
    }
}
